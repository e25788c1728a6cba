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

/// System-call lines: the socket API mapped onto the stack's user calls (RFC 9293 §3.10). Here the
/// dispatch and the calls on sockets themselves (socket, bind, listen, accept, close, shutdown,
/// fcntl, ioctl); connect in `ScriptRunner+Connect.swift`, the read and write families in
/// `ScriptRunner+ReadWrite.swift`, options in `ScriptRunner+Options.swift`.
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
