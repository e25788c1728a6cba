import NIOCore
import TCPIP
import TCPIPWire

/// A socket of the script's file-descriptor table.
struct ScriptSocket {
    var nonBlocking = false
    var listener: ListenerID?
    var connection: ConnectionID?
    var readShut = false
    var writeShut = false
    var lingerZero = false
    var noDelay = false
    /// TCP_MAXSEG set before connect or on a listener.
    var maximumSegmentSize: Int?
    /// SO_KEEPALIVE and its TCP_KEEP* parameters (Linux defaults until set).
    var keepaliveOn = false
    var keepalive = Keepalive()
    var userTimeout: Int64?
    /// TCP_KEEPINIT (FreeBSD, seconds) and TCP_SYNCNT (Linux): how long / how many SYNs an OPEN may take.
    var connectionTimeout: Int64?
    var synRetransmissions: Int?
    var receiveBuffer: Int?
    var sendBuffer: Int?
    var connecting = false
    /// An error reported once by SO_ERROR or the next call, as sockets do.
    var reportedError = false
    /// The error of a connection the stack already freed (see `inject`).
    var lostError: TCPError?
    /// TCP_FASTOPEN: the limit of pending Fast Open connections of the listener this socket becomes.
    var fastOpenQueueLimit: Int?
    /// TCP_FASTOPEN_CONNECT: connect() opens with the first write's data in the SYN.
    var fastOpenConnect = false
    /// An accepted socket: a Fast Open connection may be written to in SYN-RECEIVED.
    var accepted = false
    /// connect() with TCP_FASTOPEN_CONNECT and a cookie cached: the SYN waits for the first write.
    var deferredConnect = false
    /// `SOCK_DGRAM`: a UDP socket, played by `ScriptRunner+UDP.swift`, and its endpoint once bound.
    var datagram = false
    var udp: UDPEndpointID?
    /// Octets the stack took from this socket's writes (Fast Open SYN data included): with the
    /// connection's Send-Q, how many the peer has acknowledged (`ScriptRunner+ZeroCopy.swift`).
    var octetsWritten: Int64 = 0
    /// SO_ZEROCOPY and the completion notifications of MSG_ZEROCOPY sends.
    var zeroCopy = ZeroCopyNotifications()
    /// TCP_INQ: recvmsg reports the octets left to read in a TCP_CM_INQ control message.
    var inq = false
}

/// A blocking system call still waiting for the stack (packetdrill runs them on a second thread).
struct PendingCall {
    var call: ScriptSystemCall
    var line: Int
    var end: Instant?
    var started: Instant
    /// Bytes a blocking write has queued so far.
    var written: Int64 = 0
    /// The call opened the connection with Fast Open: until the handshake completes, its errors
    /// are the connection's (ECONNREFUSED, ETIMEDOUT), whatever the SYN carried.
    var openedWithFastOpen = false
}

/// What a system call did: returned a value, failed with an errno name, or would block.
enum CallResult: Equatable {
    case value(Int64)
    case error(String)
    case wouldBlock
}

/// System-call lines: the socket API mapped onto the stack's user calls (RFC 9293 §3.10).
extension ScriptRunner {
    func start(_ call: ScriptSystemCall, line: Int, blockingUntil end: Instant?) throws {
        if let pending {
            throw failure("\(call.name)() while the blocking \(pending.call.name)() of line \(pending.line) has not returned")
        }
        var state = PendingCall(call: call, line: line, end: end, started: now)
        let result = try attempt(&state)
        if result == .wouldBlock {
            pending = state
            return
        }
        try check(result, of: state)
    }

    /// Retries the pending blocking call; checks its result and return time once it completes.
    func completePending() throws {
        guard var state = pending else { return }
        let result = try attempt(&state)
        if result == .wouldBlock {
            pending = state
            return
        }
        pending = nil
        try check(result, of: state)
    }

    /// Fails when a blocking call is still waiting past its END plus tolerance.
    func checkPendingDeadline(before time: Instant) throws {
        guard let state = pending, let end = state.end else { return }
        let limit = end + tolerance(for: end)
        if time > limit {
            try completePending()
            if pending != nil {
                throw failure("blocking \(state.call.name)() had not returned by \(format(end))", line: state.line)
            }
        }
    }

    private func check(_ result: CallResult, of state: PendingCall) throws {
        let call = state.call
        let line = state.line
        if let end = state.end {
            let tolerance = tolerance(for: end)
            if now < end - tolerance || now > end + tolerance {
                throw failure("\(call.name)() returned at \(format(now)), expected at \(format(end))", line: line)
            }
        }
        let expected = call.errno.map { "\(call.result) \($0)" } ?? "\(call.result)"
        switch result {
        case .value(let value):
            let matches = (call.name == "socket" || call.name == "accept") ? (value >= 0) == (call.result >= 0) : value == call.result
            if !matches || call.errno != nil && call.result < 0 {
                throw failure("\(call.name)() returned \(value)", line: line, expected: expected, actual: "\(value)")
            }
        case .error(let errno):
            // EWOULDBLOCK is EAGAIN on Linux and FreeBSD (the FreeBSD suite writes the former).
            let written = call.errno == "EWOULDBLOCK" ? "EAGAIN" : call.errno
            if call.result != -1 || (written != nil && written != errno) {
                throw failure("\(call.name)() failed with \(errno)", line: line, expected: expected, actual: "-1 \(errno)")
            }
        case .wouldBlock:
            preconditionFailure("a blocking call is not checked")
        }
    }

    // MARK: The calls

    func attempt(_ state: inout PendingCall) throws -> CallResult {
        let call = state.call
        let arguments = call.arguments
        let blocking = state.end != nil
        if let result = try attemptUDP(call, blocking: blocking) { return result }
        switch call.name {
        case "socket":
            let type = try integer(arguments, 1)
            let fd = Int(call.result >= 0 ? call.result : Int64((sockets.keys.max() ?? 2) + 1))
            var socket = ScriptSocket()
            socket.nonBlocking = type & ScriptSymbols.value("SOCK_NONBLOCK")! != 0
            sockets[fd] = socket
            underTest = .new(fd: fd, injected: nil)
            return .value(Int64(fd))
        case "bind":
            _ = try socket(arguments)
            return .value(0)
        case "listen":
            let fd = try descriptor(arguments)
            let backlog = try integer(arguments, 1)
            let listener = try stack.listen(on: header.bindPort, backlog: Int(max(1, backlog)))
            sockets[fd]!.listener = listener
            if let limit = sockets[fd]!.fastOpenQueueLimit { try? stack.setFastOpen(listener, queueLimit: limit) }
            if let size = sockets[fd]!.maximumSegmentSize { try stack.setMaximumSegmentSize(listener, size) }
            return .value(0)
        case "accept", "accept4":
            let fd = try descriptor(arguments)
            guard let listener = sockets[fd]!.listener else { return .error("EINVAL") }
            guard let connection = stack.accept(listener) else {
                return sockets[fd]!.nonBlocking && !blocking ? .error("EAGAIN") : .wouldBlock
            }
            // The child inherits the listener's options, as sockets do.
            var child = ScriptSocket()
            child.noDelay = sockets[fd]!.noDelay
            child.maximumSegmentSize = sockets[fd]!.maximumSegmentSize
            child.keepaliveOn = sockets[fd]!.keepaliveOn
            child.keepalive = sockets[fd]!.keepalive
            child.userTimeout = sockets[fd]!.userTimeout
            child.receiveBuffer = sockets[fd]!.receiveBuffer
            child.sendBuffer = sockets[fd]!.sendBuffer
            child.lingerZero = sockets[fd]!.lingerZero
            // SOCK_ZEROCOPY is a socket flag the child inherits; its notification counter starts at 0
            // (sk_clone_lock: sk_zckey).
            child.zeroCopy.enabled = sockets[fd]!.zeroCopy.enabled
            child.accepted = true
            if child.noDelay { stack.setNoDelay(connection, true, now: now) }
            if let size = child.sendBuffer { stack.setSendBufferSize(connection, profile.reportedBufferSize(size, true, nil), now: now) }
            child.connection = connection
            applyKeepalive(child, connection)
            remember(connection)
            let childFD = Int(call.result >= 0 ? call.result : Int64((sockets.keys.max() ?? 2) + 1))
            sockets[childFD] = child
            return .value(Int64(childFD))
        case "connect":
            return try connect(&state)
        case "recvmsg" where (arguments[safe: 2].flatMap(ScriptSymbols.evaluate) ?? 0) & ScriptSymbols.value("MSG_ERRQUEUE")! != 0:
            return try readErrorQueue(call)
        case "read", "readv", "recv", "recvfrom", "recvmsg":
            return try read(call, blocking: blocking)
        case "write", "writev", "send", "sendto", "sendmsg":
            let result = try write(&state)
            if case .value(let taken) = result, taken > 0, try isZeroCopySend(call) {
                let fd = try descriptor(arguments)
                sockets[fd]!.zeroCopy.sent(endingAt: sockets[fd]!.octetsWritten)
            }
            return result
        case "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait":
            return try epoll(call, blocking: blocking)
        case "close" where epolls[(try? integer(arguments, 0)).map { Int($0) } ?? -1] != nil:
            epolls[Int(try integer(arguments, 0))] = nil
            return .value(0)
        case "close":
            let fd = try descriptor(arguments)
            let socket = sockets.removeValue(forKey: fd)!
            if let listener = socket.listener { stack.closeListener(listener, now: now) }
            if let connection = socket.connection {
                if socket.lingerZero {
                    stack.abort(connection, now: now)
                } else {
                    // close(2) releases the socket: unread data means RST (RFC 1122 §4.2.2.13).
                    stack.release(connection, now: now)
                }
            }
            collect()
            return .value(0)
        case "shutdown":
            let fd = try descriptor(arguments)
            let how = try integer(arguments, 1)
            guard let connection = sockets[fd]!.connection else { return .error("ENOTCONN") }
            if how == 0 || how == 2 { sockets[fd]!.readShut = true }
            if (how == 1 || how == 2) && !sockets[fd]!.writeShut {
                sockets[fd]!.writeShut = true
                try? stack.close(connection, now: now)
                collect()
            }
            return .value(0)
        case "fcntl":
            let fd = try descriptor(arguments)
            let command = try integer(arguments, 1)
            if command == ScriptSymbols.value("F_GETFL") {
                return .value(2 | (sockets[fd]!.nonBlocking ? 0x800 : 0))
            }
            if command == ScriptSymbols.value("F_SETFL") {
                sockets[fd]!.nonBlocking = try integer(arguments, 2) & 0x800 != 0
                return .value(0)
            }
            throw ScriptSkip(reason: "fcntl command \(arguments[1])")
        case "ioctl":
            let fd = try descriptor(arguments)
            guard case .symbol(let request) = arguments[safe: 1], request == "SIOCINQ" || request == "FIONREAD" else {
                throw ScriptSkip(reason: "ioctl \(arguments[safe: 1].map(\.description) ?? "")")
            }
            let queued = sockets[fd]!.connection.flatMap { stack.status($0)?.receiveQueue } ?? 0
            let expected = try pointee(arguments, 2)
            if Int64(queued) != expected {
                throw failure("ioctl(\(request)) reports \(queued) bytes", expected: "[\(expected)]", actual: "[\(queued)]")
            }
            return .value(0)
        case "setsockopt":
            return try setOption(arguments)
        case "getsockopt":
            return try getOption(arguments)
        case "poll":
            return try poll(arguments, blocking: blocking)
        default:
            let feature = ["open", "sendfile", "splice", "pipe"].contains(call.name) ? "files and pipes, which a TCP stack's runner has no use for"
                : "a call the runner does not map onto the Stack API"
            throw ScriptSkip(reason: "system call \(call.name)(): \(feature)")
        }
    }

    private func connect(_ state: inout PendingCall) throws -> CallResult {
        let fd = try descriptor(state.call.arguments)
        var socket = sockets[fd]!
        if let connection = socket.connection {
            let status = stack.status(connection)
            switch status?.state {
            case .synSent?, .synReceived?:
                return socket.nonBlocking && state.end == nil ? .error("EALREADY") : .wouldBlock
            case nil, .closed?:
                return .error(errno(status?.error ?? .connectionRefused))
            default:
                if socket.connecting {
                    sockets[fd]!.connecting = false
                    return state.end != nil || !socket.nonBlocking ? .value(0) : .error("EISCONN")
                }
                return .error("EISCONN")
            }
        }
        remotePort = header.connectPort
        if let receive = socket.receiveBuffer { configuration.tcp.receiveBufferSize = receive }
        if let send = socket.sendBuffer { configuration.tcp.sendBufferSize = send }
        if socket.fastOpenConnect {
            // TCP_FASTOPEN_CONNECT: with a cookie, connect() returns at once and the SYN goes with
            // the first write's data; without one, the SYN asks for a cookie (RFC 7413 §4.2.1).
            // A second connect() while the SYN waits for the first write: __inet_stream_connect
            // finds SS_CONNECTING with DEFER_CONNECT, and says EISCONN to connect() (inet_stream_connect).
            if socket.deferredConnect { return .error("EISCONN") }
            if stack.hasFastOpenCookie(for: remoteAddress) {
                sockets[fd]!.deferredConnect = true
                return .value(0)
            }
            try openWithFastOpen(fd, data: 0)
            if socket.nonBlocking && state.end == nil { return .error("EINPROGRESS") }
            return .wouldBlock
        }
        let connection = try stack.connect(
            to: Endpoint(remoteAddress, header.connectPort), maximumSegmentSize: sockets[fd]!.maximumSegmentSize, now: now)
        if socket.noDelay { stack.setNoDelay(connection, true, now: now) }
        collect()
        socket.connection = connection
        applyKeepalive(socket, connection)
        remember(connection)
        socket.connecting = true
        sockets[fd] = socket
        if socket.nonBlocking && state.end == nil { return .error("EINPROGRESS") }
        return .wouldBlock
    }

    private func read(_ call: ScriptSystemCall, blocking: Bool) throws -> CallResult {
        let fd = try descriptor(call.arguments)
        let socket = sockets[fd]!
        // recvmsg's buffer is its msg_iov, its flags the third argument.
        let count = call.name == "recvmsg" ? Int(try writeCount(call)) : Int(try integer(call.arguments, 2, default: 65536))
        guard let connection = socket.connection else {
            // A Fast Open connect() deferred to the first write is in SYN-SENT for Linux
            // (tcp_v4_connect, defer_connect): a read waits for data — EAGAIN without blocking.
            guard socket.deferredConnect else { return .error("ENOTCONN") }
            return socket.nonBlocking && !blocking ? .error("EAGAIN") : .wouldBlock
        }
        // A bad buffer: tcp_recvmsg_locked's copy to user memory fails once there is data to copy,
        // and the call says EFAULT with the data still queued (nothing copied).
        if Self.isBadBuffer(call.arguments[safe: 1]), count > 0, (stack.status(connection)?.receiveQueue ?? 0) > 0 {
            return .error("EFAULT")
        }
        let flags = call.name == "recv" || call.name == "recvfrom" ? try integer(call.arguments, 3, default: 0)
            : call.name == "recvmsg" ? try integer(call.arguments, 2, default: 0) : 0
        let nonBlocking = socket.nonBlocking || flags & 0x40 != 0
        if flags & 1 != 0 { throw ScriptSkip(reason: "MSG_OOB: the stack delivers urgent data inline (RFC 6093 §5) and has no out-of-band read") }
        // After shutdown(SHUT_RD) Linux's recvmsg still hands over what is queued — data that arrives
        // later included (tcp_data_queue does not look at RCV_SHUTDOWN) — and returns 0, end of
        // stream, only when the queue is empty instead of blocking.
        if socket.readShut, (stack.status(connection)?.receiveQueue ?? 0) == 0 { return .value(0) }
        if flags & 2 != 0 {
            if let bytes = stack.peek(connection, upTo: count) { return .value(Int64(bytes.readableBytes)) }
        } else {
            do {
                switch try stack.read(connection, upTo: count, now: now) {
                case .data(let bytes):
                    collect()
                    if socket.inq, call.name == "recvmsg" { try checkInq(call, connection) }
                    return .value(Int64(bytes.readableBytes))
                case .endOfStream: return .value(0)
                case .wouldBlock: break
                }
            } catch let error as TCPError {
                return try connectionError(fd, error, reading: true)
            }
        }
        if let error = stack.status(connection)?.error { return try connectionError(fd, error, reading: true) }
        if stack.state(connection) == nil { return .error("ENOTCONN") }
        return nonBlocking && !blocking ? .error("EAGAIN") : .wouldBlock
    }

    /// TCP_INQ (tcp_recvmsg → tcp_inq_hint): after a recvmsg the TCP_CM_INQ control message holds
    /// the octets still queued, and 1 when none is left but the peer's FIN has arrived (SOCK_DONE),
    /// so that the application knows the next read returns end of stream. Compared with the
    /// `cmsg_data` of the script's TCP_CM_INQ message.
    private func checkInq(_ call: ScriptSystemCall, _ connection: ConnectionID) throws {
        guard case .structure(let message)? = call.arguments[safe: 1],
            case .list(let messages)? = message.first(where: { $0.name == .symbol("msg_control") })?.value else { return }
        for case .structure(let header) in messages where header.contains(where: { $0.value == .symbol("TCP_CM_INQ") }) {
            guard let expected = header.first(where: { $0.name == .symbol("cmsg_data") }).flatMap({ ScriptSymbols.evaluate($0.value) }) else { continue }
            let status = stack.status(connection)
            var inq = Int64(status?.receiveQueue ?? 0)
            switch status?.state {
            case .closeWait?, .lastAck?, .closing?, .timeWait?, nil: if inq == 0 { inq = 1 }
            default: break
            }
            if inq != expected {
                throw failure("recvmsg: TCP_CM_INQ is \(inq)", expected: "cmsg_data=\(expected)", actual: "cmsg_data=\(inq)")
            }
        }
    }

    /// Send flags and buffers the stack has no equivalent for: the script is skipped, naming the feature.
    private func checkSendable(_ call: ScriptSystemCall) throws {
        let flagsIndex = call.name == "sendmsg" ? 2 : 3
        guard call.name.hasPrefix("send"), let argument = call.arguments[safe: flagsIndex],
            let flags = ScriptSymbols.evaluate(argument) else { return }
        let unsupported: [(Int64, String)] = [
            (0x8000, "MSG_MORE: Linux's corking of a write with the next"),
            (0x1, "MSG_OOB: the stack has no out-of-band send"),
        ]
        for (bit, reason) in unsupported where flags & bit != 0 { throw ScriptSkip(reason: reason) }
    }

    /// A buffer argument that is no user memory: `NULL` or a number (packetdrill passes either as the
    /// pointer itself).
    static func isBadBuffer(_ argument: ScriptExpression?) -> Bool {
        argument == .symbol("NULL") || argument.flatMap(ScriptSymbols.evaluate) != nil
    }

    private func write(_ state: inout PendingCall) throws -> CallResult {
        let call = state.call
        try checkSendable(call)
        let fd = try descriptor(call.arguments)
        let count = try writeCount(call)
        // A bad buffer (write(4, NULL, 1000)): the copy from user memory fails before anything is
        // queued, and the call says EFAULT (tcp_sendmsg_locked: skb_copy_to_page_nocache, then
        // `copied ? copied : err`). With MSG_FASTOPEN Linux still sends the SYN, without data
        // (tcp_send_syn_data's fallback); the runner opens nothing — the suite's scripts check only
        // the -1.
        if Self.isBadBuffer(call.arguments[safe: 1]), count > 0 { return .error("EFAULT") }
        let flags: Int64 = switch call.name {
        case "sendto", "send": ScriptSymbols.evaluate(call.arguments[safe: 3] ?? .integer(0)) ?? 0
        case "sendmsg": ScriptSymbols.evaluate(call.arguments[safe: 2] ?? .integer(0)) ?? 0
        default: 0
        }
        // FreeBSD: sendto() on an unconnected socket with TCP_FASTOPEN set is the Fast Open connect.
        let freeBSDFastOpen = profile.name == .freebsd && call.name == "sendto" && sockets[fd]!.listener == nil
            && (sockets[fd]!.fastOpenQueueLimit ?? 0) > 0
        if sockets[fd]!.connection == nil && (sockets[fd]!.deferredConnect || flags & 0x2000_0000 != 0 || freeBSDFastOpen) {
            // sendto(MSG_FASTOPEN), or the first write after connect() with TCP_FASTOPEN_CONNECT:
            // OPEN with the data in the SYN (RFC 7413 §4.2.2). Without a cookie the SYN carries
            // none: a non-blocking call says EINPROGRESS, a blocking one sends after the handshake.
            // Linux's tcp_sendmsg_fastopen refuses first, with EOPNOTSUPP, when net.ipv4.tcp_fastopen's
            // client bit is off or the address is AF_UNSPEC (the stack's own OPEN would fall back to
            // a plain SYN).
            if !stack.configuration.tcp.fastOpen.client || call.arguments[safe: 4] == .symbol("AF_UNSPEC") {
                return .error("EOPNOTSUPP")
            }
            let taken = try openWithFastOpen(fd, data: Int(count))
            sockets[fd]!.octetsWritten += Int64(taken)
            state.written = Int64(taken)
            state.openedWithFastOpen = true
            // MSG_DONTWAIT (0x40) makes this one call non-blocking.
            if (sockets[fd]!.nonBlocking || flags & 0x40 != 0) && state.end == nil {
                return taken > 0 ? .value(Int64(taken)) : .error("EINPROGRESS")
            }
            // What the SYN does not carry of a blocking call's data waits in the send buffer
            // (RFC 9293 §3.10.2 queues a SEND in SYN-SENT), so it leaves with the handshake's ACK,
            // as Linux's waiting writer's does. With a cookie the SYN carried some: the rest is
            // written when the SYN-ACK wakes the call (`inject`), after the stack has dealt with
            // the SYN's data, as Linux's tcp_sendmsg goes on once connected.
            if taken == 0, let connection = sockets[fd]!.connection, count > 0 {
                var rest = ByteBufferAllocator().buffer(capacity: Int(count - state.written))
                rest.writeRepeatingByte(0, count: Int(count - state.written))
                let queued = Int64((try? stack.send(connection, rest, now: now)) ?? 0)
                sockets[fd]!.octetsWritten += queued
                state.written += queued
            }
            return .wouldBlock
        }
        let socket = sockets[fd]!
        guard let connection = socket.connection else { return .error(profile.unconnectedWriteErrno) }
        if socket.writeShut { return .error("EPIPE") }
        let nonBlocking = socket.nonBlocking || flags & 0x40 != 0
        // MSG_FASTOPEN on a connection another call is opening: tcp_sendmsg_fastopen's
        // __inet_stream_connect finds SS_CONNECTING, says EALREADY without waiting, waits with.
        if flags & 0x2000_0000 != 0, !state.openedWithFastOpen, nonBlocking, state.end == nil,
           stack.status(connection)?.state == .synSent {
            return .error("EALREADY")
        }
        // A Fast Open server's connection is accepted in SYN-RECEIVED and may send (RFC 7413 §4.2.2).
        if let status = stack.status(connection), status.state == .synSent || (status.state == .synReceived && !socket.accepted) {
            return nonBlocking && state.end == nil ? .error("EAGAIN") : .wouldBlock
        }
        // MSG_ZEROCOPY: each skb holds at most MAX_SKB_FRAGS (17) pages, one per iovec
        // (skb_zerocopy_iter_stream), so a full skb ends what one segment may carry.
        let ends = try isZeroCopySend(call) ? try zeroCopySkbEnds(call) : []
        do {
            while state.written < count {
                let end = ends.first { $0 > state.written } ?? count
                let piece = end - state.written
                var bytes = ByteBufferAllocator().buffer(capacity: Int(piece))
                bytes.writeRepeatingByte(0, count: Int(piece))
                // MSG_EOR (0x80): the end of this write ends a record (Stack.send(_:_:endOfRecord:now:)).
                let endOfRecord = ends.contains(end) || flags & 0x80 != 0
                let taken = Int64(try stack.send(connection, bytes, endOfRecord: endOfRecord, now: now))
                collect()
                state.written += taken
                sockets[fd]!.octetsWritten += taken
                if taken < piece { break }
            }
        } catch {
            if state.written > 0 && !state.openedWithFastOpen { return .value(state.written) }
            return try connectionError(fd, error)
        }
        if state.written == count { return .value(count) }
        if nonBlocking && state.end == nil {
            return state.written > 0 ? .value(state.written) : .error("EAGAIN")
        }
        return .wouldBlock
    }

    /// The octets a write call hands over: write/send/sendto's count, the total of writev's iovec
    /// array, or of sendmsg's `msg_iov` (`{..., msg_iov(3)=[{..., 500}, {..., 1000}], ...}`).
    func writeCount(_ call: ScriptSystemCall) throws -> Int64 {
        try iovecLengths(call).reduce(0, +)
    }

    /// The lengths of a write call's buffers: write/send/sendto's count, writev's iovec array, or
    /// sendmsg's (and recvmsg's) `msg_iov` (`{..., msg_iov(3)=[{..., 500}, {..., 1000}], ...}`).
    func iovecLengths(_ call: ScriptSystemCall) throws -> [Int64] {
        func lengths(_ iovec: ScriptExpression?) throws -> [Int64] {
            guard case .list(let entries)? = iovec else { throw ScriptSkip(reason: "\(call.name) without an iovec array") }
            return try entries.map { entry in
                guard case .structure(let fields) = entry, let length = fields.last.flatMap({ ScriptSymbols.evaluate($0.value) }) else {
                    throw ScriptSkip(reason: "iovec entry `\(entry)` has no length")
                }
                return length
            }
        }
        switch call.name {
        case "writev":
            return try lengths(call.arguments[safe: 1])
        case "sendmsg", "recvmsg":
            guard case .structure(let fields)? = call.arguments[safe: 1],
                let iovec = fields.first(where: { if case .call("msg_iov", _)? = $0.name { true } else { false } }) else {
                throw ScriptSkip(reason: "sendmsg without msg_iov")
            }
            return try lengths(iovec.value)
        default:
            return [try integer(call.arguments, 2, default: 0)]
        }
    }

    /// `Stack.connectWithFastOpen` for socket `fd` with `data` zeros; returns what the SYN carries.
    @discardableResult
    private func openWithFastOpen(_ fd: Int, data: Int) throws -> Int {
        var bytes = ByteBufferAllocator().buffer(capacity: data)
        bytes.writeRepeatingByte(0, count: data)
        remotePort = header.connectPort
        let (connection, taken) = try stack.connectWithFastOpen(
            to: Endpoint(remoteAddress, header.connectPort), data: bytes, maximumSegmentSize: sockets[fd]!.maximumSegmentSize, now: now)
        if sockets[fd]!.noDelay { stack.setNoDelay(connection, true, now: now) }
        collect()
        sockets[fd]!.connection = connection
        sockets[fd]!.deferredConnect = false
        sockets[fd]!.connecting = true
        applyKeepalive(sockets[fd]!, connection)
        remember(connection)
        return taken
    }

    /// - Parameter reading: a read after the error was reported returns 0, end of stream (Linux's
    ///   tcp_reset shuts the socket down both ways: recvmsg finds RCV_SHUTDOWN).
    private func connectionError(_ fd: Int, _ error: TCPError, reading: Bool = false) throws -> CallResult {
        if sockets[fd]!.reportedError, reading, error == .connectionReset { return .value(0) }
        if sockets[fd]!.reportedError { return .error(error == .connectionClosing ? "EPIPE" : "ENOTCONN") }
        sockets[fd]!.reportedError = true
        return .error(errno(error))
    }

    func errno(_ error: TCPError) -> String {
        switch error {
        case .connectionReset: "ECONNRESET"
        case .connectionRefused: "ECONNREFUSED"
        case .timedOut: "ETIMEDOUT"
        case .aborted: "ECONNABORTED"
        case .connectionClosing: "EPIPE"
        case .connectionDoesNotExist: "ENOTCONN"
        case .addressInUse: "EADDRINUSE"
        case .addressUnavailable: "EADDRNOTAVAIL"
        case .resourcesExhausted: "ENOBUFS"
        case .invalidArgument: "EINVAL"
        case .networkUnreachable: "ENETUNREACH"
        case .hostUnreachable: "EHOSTUNREACH"
        case .protocolUnreachable: "ENOPROTOOPT"
        }
    }

    // MARK: Arguments

    func descriptor(_ arguments: [ScriptExpression]) throws -> Int {
        let fd = Int(try integer(arguments, 0))
        guard sockets[fd] != nil else { throw failure("file descriptor \(fd) is not open") }
        return fd
    }

    private func socket(_ arguments: [ScriptExpression]) throws -> ScriptSocket {
        sockets[try descriptor(arguments)]!
    }

    func integer(_ arguments: [ScriptExpression], _ index: Int, default value: Int64? = nil) throws -> Int64 {
        guard let argument = arguments[safe: index] else {
            if let value { return value }
            throw failure("missing argument \(index + 1)")
        }
        if argument == .ellipsis, let value { return value }
        guard let result = ScriptSymbols.evaluate(argument) else {
            throw ScriptSkip(reason: "argument `\(argument)` is not a known integer or symbol")
        }
        return result
    }

    /// `[N]`: an integer passed by pointer.
    func pointee(_ arguments: [ScriptExpression], _ index: Int) throws -> Int64 {
        if case .list(let items)? = arguments[safe: index], let first = items.first, let value = ScriptSymbols.evaluate(first) {
            return value
        }
        return try integer(arguments, index)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
