import NIOCore
import TCPIP
import TCPIPWire

/// connect(2) and what connections report to system calls: the active OPEN, with Fast Open
/// (RFC 7413) when the socket asks for it, and the errno a connection's error becomes.
extension ScriptRunner {
    func connect(_ state: inout PendingCall) throws -> CallResult {
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

    /// `Stack.connectWithFastOpen` for socket `fd` with `data` zeros; returns what the SYN carries.
    @discardableResult
    func openWithFastOpen(_ fd: Int, data: Int) throws -> Int {
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
    func connectionError(_ fd: Int, _ error: TCPError, reading: Bool = false) throws -> CallResult {
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
}
