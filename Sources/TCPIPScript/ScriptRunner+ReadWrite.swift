import NIOCore
import TCPIP
import TCPIPWire

/// The read and write families (read, readv, recv, recvfrom, recvmsg; write, writev, send, sendto,
/// sendmsg): RECEIVE and SEND of RFC 9293 §3.10 on the socket's connection.
extension ScriptRunner {
    func read(_ call: ScriptSystemCall, blocking: Bool) throws -> CallResult {
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

    func write(_ state: inout PendingCall) throws -> CallResult {
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
}
