import TCPIP
import NIOCore

/// Socket options, poll, and the state assertions of shell and Python lines.
extension ScriptRunner {
    func setOption(_ arguments: [ScriptExpression]) throws -> CallResult {
        let fd = try descriptor(arguments)
        let option = arguments[safe: 2]?.description ?? ""
        switch option {
        case "SO_REUSEADDR", "SO_REUSEPORT":
            return .value(0)
        case "TCP_INQ":
            sockets[fd]!.inq = try pointee(arguments, 3) != 0
            return .value(0)
        case "SO_MARK":
            // A mark for policy routing: the runner has no routes, and the stack sends every
            // segment the same way whatever the mark.
            return .value(0)
        case "SO_ZEROCOPY":
            // sock_setsockopt: 0 or 1; MSG_ZEROCOPY sends are notified only with it set.
            let value = try pointee(arguments, 3)
            guard value == 0 || value == 1 else { return .error("EINVAL") }
            sockets[fd]!.zeroCopy.enabled = value == 1
            return .value(0)
        case "IP_MTU_DISCOVER", "IP_TOS":
            // The stack keeps no per-socket route, DF or TOS: these change nothing it does, and the
            // runner compares neither field (docs/CONFORMANCE.md, runner choices).
            return .value(0)
        case "SO_SNDBUF" where stackStorage != nil:
            let size = Int(try pointee(arguments, 3))
            sockets[fd]!.sendBuffer = size
            if let connection = sockets[fd]!.connection { stack.setSendBufferSize(connection, profile.reportedBufferSize(size, true, nil), now: now) }
            return .value(0)
        case "SO_RCVBUF", "SO_SNDBUF":
            guard stackStorage == nil else {
                // The stack's buffer sizes are per stack, fixed when it is made (TCPConfiguration).
                throw ScriptSkip(reason: "\(option) after the first connection: the Stack has no per-connection buffer sizes")
            }
            let size = Int(try pointee(arguments, 3))
            if option == "SO_RCVBUF" {
                sockets[fd]!.receiveBuffer = size
                configuration.tcp.receiveBufferSize = size
                if profile.windowScaleFollowsSetReceiveBuffer { configuration.tcp.windowScaleShift = nil }
            } else {
                sockets[fd]!.sendBuffer = size
                configuration.tcp.sendBufferSize = profile.reportedBufferSize(size, true, nil)
            }
            return .value(0)
        case "TCP_NODELAY":
            let on = try pointee(arguments, 3) != 0
            sockets[fd]!.noDelay = on
            if let connection = sockets[fd]!.connection { stack.setNoDelay(connection, on, now: now) }
            collect()
            return .value(0)
        case "TCP_MAXSEG":
            let size = Int(try pointee(arguments, 3))
            guard sockets[fd]!.connection == nil else {
                throw ScriptSkip(reason: "TCP_MAXSEG on a connected socket: the Stack sets the MSS at OPEN")
            }
            sockets[fd]!.maximumSegmentSize = size
            if let listener = sockets[fd]!.listener {
                do { try stack.setMaximumSegmentSize(listener, size) } catch { return .error("EINVAL") }
            }
            return .value(0)
        case "SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT":
            let value = try pointee(arguments, 3)
            switch option {
            case "SO_KEEPALIVE": sockets[fd]!.keepaliveOn = value != 0
            case "TCP_KEEPIDLE": sockets[fd]!.keepalive.idle = .seconds(value)
            case "TCP_KEEPINTVL": sockets[fd]!.keepalive.interval = .seconds(value)
            case "TCP_KEEPCNT": sockets[fd]!.keepalive.probes = Int(value)
            default: sockets[fd]!.userTimeout = value
            }
            if let connection = sockets[fd]!.connection { applyKeepalive(sockets[fd]!, connection) }
            collect()
            return .value(0)
        case "TCP_KEEPINIT", "TCP_SYNCNT":
            let value = try pointee(arguments, 3)
            if option == "TCP_SYNCNT" {
                guard (1...127).contains(value) else { return .error("EINVAL") }
                sockets[fd]!.synRetransmissions = Int(value)
            } else {
                guard value >= 0 else { return .error("EINVAL") }
                sockets[fd]!.connectionTimeout = value
            }
            if let connection = sockets[fd]!.connection { applyKeepalive(sockets[fd]!, connection) }
            collect()
            return .value(0)
        case "TCP_FASTOPEN":
            // The listener's limit of pending Fast Open connections (RFC 7413 §5.1), Linux's qlen.
            let limit = Int(try pointee(arguments, 3))
            guard limit >= 0 else { return .error("EINVAL") }
            sockets[fd]!.fastOpenQueueLimit = limit
            if let listener = sockets[fd]!.listener { try? stack.setFastOpen(listener, queueLimit: limit) }
            return .value(0)
        case "TCP_FASTOPEN_CONNECT":
            // do_tcp_setsockopt: EOPNOTSUPP unless net.ipv4.tcp_fastopen has the client bit.
            guard (stackStorage?.configuration.tcp ?? configuration.tcp).fastOpen.client else { return .error("EOPNOTSUPP") }
            sockets[fd]!.fastOpenConnect = try pointee(arguments, 3) != 0
            return .value(0)
        case "TCP_FASTOPEN_NO_COOKIE":
            guard stackStorage == nil else {
                throw ScriptSkip(reason: "TCP_FASTOPEN_NO_COOKIE after the first connection: the stack's Fast Open settings are per stack")
            }
            let on = try pointee(arguments, 3) != 0
            configuration.tcp.fastOpen.clientRequiresCookie = !on
            configuration.tcp.fastOpen.serverRequiresCookie = !on
            return .value(0)
        case "TCP_FASTOPEN_KEY":
            // DEVIATION: Linux keeps the key per listener; the stack has one key (Stack.setFastOpenKey).
            guard case .string(let text)? = arguments[safe: 3], let key = FastOpenKey(bytes: Self.escapedBytes(text)) else {
                return .error("EINVAL")
            }
            stack.setFastOpenKey(key)
            return .value(0)
        case "SO_LINGER":
            guard case .structure(let fields)? = arguments[safe: 3] else { throw ScriptSkip(reason: "SO_LINGER without a struct") }
            let values = fields.compactMap { ScriptSymbols.evaluate($0.value) }
            sockets[fd]!.lingerZero = values.count == 2 && values[0] != 0 && values[1] == 0
            if values.count == 2 && values[0] != 0 && values[1] != 0 {
                throw ScriptSkip(reason: "SO_LINGER with a timeout: the Stack's CLOSE has no linger time")
            }
            return .value(0)
        default:
            throw ScriptSkip(reason: "setsockopt \(option): \(Self.feature(ofOption: option))")
        }
    }

    /// The octets of a C string literal's text (`\xf7\x63…`, other characters as themselves).
    static func escapedBytes(_ text: String) -> [UInt8] {
        // The lexer keeps an escaped character without its backslash: `\xf7\x63` reads `xf7x63`.
        let groups = text.split(separator: "x", omittingEmptySubsequences: true)
        if text.first == "x", groups.count * 3 == text.count, case let decoded = groups.compactMap({ UInt8($0, radix: 16) }),
           decoded.count == groups.count {
            return decoded
        }
        var bytes: [UInt8] = []
        var characters = Substring(text)
        while let first = characters.first {
            if first == "\\", characters.dropFirst().first == "x", let byte = UInt8(characters.dropFirst(2).prefix(2), radix: 16) {
                bytes.append(byte)
                characters = characters.dropFirst(4)
            } else {
                bytes += Array(String(first).utf8)
                characters = characters.dropFirst()
            }
        }
        return bytes
    }

    /// The feature a socket option the runner does not map belongs to, for the reason of a skip.
    static func feature(ofOption option: String) -> String {
        switch option {
        case "SO_TIMESTAMPING": "Linux's transmit and receive timestamps on the error queue, which the stack does not have"
        case "TCP_NOTSENT_LOWAT": "Linux's low-water mark of unsent data for poll, which the stack does not have"
        case "TCP_INQ": "Linux's count of unread octets in a control message, which the stack does not have"
        case "TCP_CORK": "Linux's corking of partial segments, which the stack does not have"
        case "IP_FREEBIND": "Linux's binding to an address not configured, which the stack does not allow"
        case "TCP_INFO": "Linux's tcp_info structure; the runner checks tcpi_state only"
        case "TCP_CONGESTION": "choosing the congestion control per socket, which the Stack API does not offer"
        default: "not mapped onto the stack by the runner"
        }
    }

    /// SO_KEEPALIVE and TCP_KEEP* map to `Stack.setKeepalive`, TCP_USER_TIMEOUT (milliseconds) to
    /// `Stack.setUserTimeout`, TCP_KEEPINIT (seconds; 0 keeps the default) to
    /// `Stack.setConnectionTimeout`, TCP_SYNCNT to `Stack.setSYNRetransmissions`.
    func applyKeepalive(_ socket: ScriptSocket, _ connection: ConnectionID) {
        stack.setKeepalive(connection, socket.keepaliveOn ? socket.keepalive : nil, now: now)
        stack.setUserTimeout(connection, socket.userTimeout.map { .milliseconds($0) }, now: now)
        if let seconds = socket.connectionTimeout, seconds > 0 {
            stack.setConnectionTimeout(connection, .seconds(seconds), now: now)
        }
        if let count = socket.synRetransmissions {
            try? stack.setSYNRetransmissions(connection, count, now: now)
        }
    }

    func getOption(_ arguments: [ScriptExpression]) throws -> CallResult {
        let fd = try descriptor(arguments)
        let socket = sockets[fd]!
        let option = arguments[safe: 2]?.description ?? ""
        let actual: Int64
        switch option {
        case "SO_ERROR":
            if let connection = socket.connection, let error = stack.status(connection)?.error, !socket.reportedError {
                sockets[fd]!.reportedError = true
                actual = ScriptSymbols.value(errno(error)) ?? -1
            } else if let error = socket.lostError, !socket.reportedError {
                sockets[fd]!.reportedError = true
                actual = ScriptSymbols.value(errno(error)) ?? -1
            } else if let connection = socket.connection, stack.state(connection) == nil, !socket.reportedError {
                sockets[fd]!.reportedError = true
                actual = ScriptSymbols.value("ECONNREFUSED")!
            } else {
                actual = 0
            }
        case "SO_RCVBUF", "SO_SNDBUF":
            let set = option == "SO_RCVBUF" ? socket.receiveBuffer : socket.sendBuffer
            let size = set ?? (option == "SO_RCVBUF" ? profile.defaultReportedReceiveBuffer : profile.defaultReportedSendBuffer)
            // Known once the peer's SYN arrived: in SYN-RECEIVED too (FreeBSD's tcp_mss runs on the SYN).
            let mss = socket.connection.flatMap { stack.status($0) }.flatMap {
                $0.state.isSynchronized || $0.state == .synReceived ? $0.maximumSegmentSize : nil
            }
            actual = Int64(profile.reportedBufferSize(size, set != nil, mss))
        case "TCP_NODELAY":
            actual = socket.noDelay ? 1 : 0
        case "TCP_MAXSEG":
            if let connection = socket.connection, let status = stack.status(connection), status.state.isSynchronized {
                // ConnectionStatus.maximumSegmentSize is already Eff.snd.MSS less the options.
                actual = Int64(status.maximumSegmentSize)
            } else if let size = socket.maximumSegmentSize {
                actual = Int64(size)
            } else {
                throw ScriptSkip(reason: "TCP_MAXSEG before a connection exists, unset")
            }
        default:
            throw ScriptSkip(reason: "getsockopt \(option): \(Self.feature(ofOption: option))")
        }
        let expected = try pointee(arguments, 3)
        if actual != expected {
            throw failure("getsockopt(\(option)) reports \(actual)", expected: "[\(expected)]", actual: "[\(actual)]")
        }
        return .value(0)
    }

    /// `poll([{fd=N, events=E, revents=R}], 1, timeout) = k`: which of E hold now.
    func poll(_ arguments: [ScriptExpression], blocking: Bool) throws -> CallResult {
        guard case .list(let entries)? = arguments.first else { throw ScriptSkip(reason: "poll without a pollfd list") }
        var ready = 0
        var mismatches: [String] = []
        for entry in entries {
            guard case .structure(let fields) = entry else { throw ScriptSkip(reason: "poll entry `\(entry)`") }
            func field(_ name: String) -> Int64? {
                fields.first(where: { $0.name == .symbol(name) }).flatMap { ScriptSymbols.evaluate($0.value) }
            }
            guard let fd = field("fd"), sockets[Int(fd)] != nil else { throw failure("poll on a descriptor that is not open") }
            let events = field("events") ?? 0
            let revents = pollMask(Int(fd)) & (events | 0x8 | 0x10)
            if revents != 0 { ready += 1 }
            if let expected = field("revents"), expected != revents {
                mismatches.append("fd \(fd): revents \(revents) instead of \(expected)")
            }
        }
        let timeout = try integer(arguments, 2, default: 0)
        if ready == 0 && (blocking || timeout != 0) && (mismatches.isEmpty == false) { return .wouldBlock }
        if !mismatches.isEmpty { throw failure("poll: " + mismatches.joined(separator: "; ")) }
        return .value(Int64(ready))
    }

    /// What poll(2) reports for `fd` now (tcp_poll), every event bit included; the caller masks.
    func pollMask(_ fd: Int) -> Int64 {
        completeZeroCopy(fd)
        guard let socket = sockets[fd] else { return 0x20 }
        // tcp_poll: a pending error or a non-empty error queue (MSG_ZEROCOPY notifications) is EPOLLERR.
        return revents(socket) | (socket.zeroCopy.queue.isEmpty ? 0 : 0x8)
    }

    private func revents(_ socket: ScriptSocket) -> Int64 {
        if let listener = socket.listener {
            // Readable when the accept queue has a connection; checked without taking it.
            _ = listener
            return 0
        }
        // tcp_poll: a Fast Open connect() deferred to the first write (TCP_FASTOPEN_CONNECT,
        // defer_connect in SYN-SENT) is writable, so that the application writes the SYN's data.
        if socket.deferredConnect { return 0x4 }
        guard let connection = socket.connection else { return 0x10 }
        guard let status = stack.status(connection) else { return 0x10 | 0x1 }
        var events: Int64 = 0
        // Linux's tcp_poll after tcp_reset (state CLOSE, SHUTDOWN_MASK): POLLHUP, POLLIN (RCV_SHUTDOWN),
        // POLLOUT (SEND_SHUTDOWN: a write fails at once) and POLLERR (sk_err).
        if status.error != nil { events |= 0x8 | 0x10 | 0x1 | 0x4 }
        if status.receiveQueue > 0 { events |= 0x1 }
        if case .closeWait = status.state { events |= 0x1 | 0x2000 }
        if case .lastAck = status.state { events |= 0x1 | 0x2000 }
        if case .closing = status.state { events |= 0x1 | 0x2000 }
        if case .timeWait = status.state { events |= 0x1 | 0x2000 | 0x10 }
        if status.state.isSynchronized && !socket.writeShut && status.sendQueue < configuration.tcp.sendBufferSize {
            switch status.state {
            case .established, .closeWait: events |= 0x4
            default: break
            }
        }
        return events
    }

    // MARK: Shell and Python

    /// Shell commands are skipped (tc, ethtool), except sysctls that map onto the configuration
    /// (`applySysctls`): before the stack is made, any of them; after, those `Stack.reconfigure`
    /// may change. A FreeBSD `sockstat` state check would need the socket's state, which the runner
    /// has, but its output format is not modelled.
    func shell(_ command: String) throws {
        guard let stack = stackStorage else {
            Self.applySysctls(command, to: &configuration.tcp, segmentSize: segmentSize)
            return
        }
        // Once the stack exists, a sysctl changes the running stack as it changes a running Linux
        // (`Stack.reconfigure`); one that sizes state at creation cannot be played.
        var tcp = stack.configuration.tcp
        let applied = Self.applySysctls(command, to: &tcp, segmentSize: segmentSize)
        if let fixed = applied.first(where: { !Self.reconfigurableSysctls.contains($0) }) {
            // One that only says again what the stack was made with (a script restoring defaults) is fine.
            var unchanged = tcp
            unchanged.reconfigurable = stack.configuration.tcp.reconfigurable
            if String(describing: unchanged) != String(describing: stack.configuration.tcp) {
                throw ScriptSkip(reason: "sysctl \(fixed) after the stack is made: the value shapes a stack when it is made")
            }
        }
        if !applied.isEmpty {
            stack.reconfigure { $0 = tcp.reconfigurable }
            configuration.tcp.reconfigurable = tcp.reconfigurable
        }
        // `ip tcp_metrics flush all` empties Linux's per-destination metrics, the Fast Open cookies with them.
        if command.contains("tcp_metrics flush") { stack.flushFastOpenCookies() }
    }

    /// `assert tcpi_state == TCPI_X` becomes a query of the connection's state; any other Python is skipped.
    func python(_ code: String) throws {
        for statement in code.split(whereSeparator: { $0 == "\n" || $0 == ";" }) {
            let words = statement.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            guard words.count >= 4, words[0] == "assert", words[1] == "tcpi_state", words[2] == "==" else { continue }
            guard let expected = ScriptSymbols.tcpiStates[words[3]] else { continue }
            let actual = stateOfSocketUnderTest()
            if actual != expected {
                throw failure("tcpi_state is \(actual)", expected: words[3], actual: actual)
            }
        }
    }

    /// The state of the most recent connection, or LISTEN / CLOSED.
    private func stateOfSocketUnderTest() -> String {
        let sorted = sockets.sorted { $0.key > $1.key }
        for (_, socket) in sorted {
            if let connection = socket.connection { return stack.state(connection)?.description ?? "CLOSED" }
        }
        // After close(), packetdrill still reports the connection the script last used.
        // Once closed, its TIME-WAIT may be held as a record the handle no longer reaches.
        if let lastConnection {
            let state = stack.state(lastConnection) ?? lastConnectionTuple.flatMap { stack.state(of: $0) }
            return state?.description ?? "CLOSED"
        }
        if let stack = stackStorage, stack.halfOpenCount > 0 { return "SYN-RECEIVED" }
        if sorted.contains(where: { $0.value.listener != nil }) { return "LISTEN" }
        return "CLOSED"
    }

    /// Notes the connection the script used last, and its 4-tuple.
    func remember(_ connection: ConnectionID) {
        lastConnection = connection
        lastConnectionTuple = stack.status(connection).map { FourTuple(local: $0.local, remote: $0.remote) }
    }
}
