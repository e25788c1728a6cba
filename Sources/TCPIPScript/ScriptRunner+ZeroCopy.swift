import TCPIP

/// The completion notifications of Linux's `MSG_ZEROCOPY` sends (Documentation/networking/msg_zerocopy.rst).
///
/// With `SO_ZEROCOPY` set, each send with `MSG_ZEROCOPY` that queues data takes the socket's next
/// notification id (net/core/skbuff.c, msg_zerocopy_alloc: `sk_zckey`; a send that fails gives its
/// id back, msg_zerocopy_put_abort). When the peer has acknowledged every octet of the send, the
/// kernel frees the skbs and queues a notification on the socket's error queue
/// (__msg_zerocopy_callback): the range `ee_info`…`ee_data` of ids, merged into the queue's last
/// notification when the ids follow on (skb_zerocopy_notify_extend). `recvmsg(MSG_ERRQUEUE)` takes
/// the first; an empty queue is EAGAIN. A non-empty queue is EPOLLERR to poll and epoll.
///
/// The stack sends from its own buffer, so the runner reports every send as copied
/// (`SO_EE_CODE_ZEROCOPY_COPIED`), as Linux does for data that had to be copied on the way — over
/// packetdrill's tun device, every send. Acknowledged octets are those written less the Send-Q.
struct ZeroCopyNotifications {
    /// SO_ZEROCOPY.
    var enabled = false
    /// The id the next MSG_ZEROCOPY send takes.
    var nextID: UInt32 = 0
    /// Sends whose octets are not all acknowledged: their id, and the stream offset after their last octet.
    var inFlight: [(id: UInt32, end: Int64)] = []
    /// The error queue: ranges of ids, oldest first.
    var queue: [(low: UInt32, high: UInt32)] = []
    /// Notifications made so far (each is an sk_error_report wake-up, for epoll's edge-triggered items).
    var reports = 0

    /// A MSG_ZEROCOPY send queued data up to stream offset `end`.
    mutating func sent(endingAt end: Int64) {
        inFlight.append((nextID, end))
        nextID &+= 1
    }

    /// The peer acknowledged the first `acknowledged` octets of the stream.
    mutating func complete(acknowledged: Int64) {
        while let first = inFlight.first, first.end <= acknowledged {
            inFlight.removeFirst()
            reports += 1
            // skb_zerocopy_notify_extend: the next id extends the last notification still queued.
            if let last = queue.last, last.high &+ 1 == first.id, last.high &- last.low < UInt32.max - 1 {
                queue[queue.count - 1].high = first.id
            } else {
                queue.append((first.id, first.id))
            }
        }
    }
}

extension ScriptRunner {
    /// Whether a write call is a MSG_ZEROCOPY send the socket notifies (SO_ZEROCOPY set; Linux
    /// ignores the flag without it, tcp_sendmsg_locked).
    func isZeroCopySend(_ call: ScriptSystemCall) throws -> Bool {
        let fd = try descriptor(call.arguments)
        guard sockets[fd]!.zeroCopy.enabled else { return false }
        let flagsIndex = call.name == "sendmsg" ? 2 : 3
        guard call.name.hasPrefix("send"), let argument = call.arguments[safe: flagsIndex],
            let flags = ScriptSymbols.evaluate(argument) else { return false }
        return flags & ScriptSymbols.value("MSG_ZEROCOPY")! != 0
    }

    /// Where a zero-copy send's full skbs end, as offsets into its data: each skb holds at most
    /// MAX_SKB_FRAGS (17) page fragments, and each non-empty iovec is a fragment of its own
    /// (skb_zerocopy_iter_stream → __zerocopy_sg_from_iter), so 18 one-octet iovecs are two skbs of
    /// 17 and 1 octets, which Linux sends as two segments.
    func zeroCopySkbEnds(_ call: ScriptSystemCall) throws -> [Int64] {
        let maximumFragments = 17
        var ends: [Int64] = []
        var offset: Int64 = 0
        var fragments = 0
        for length in try iovecLengths(call) where length > 0 {
            offset += length
            fragments += 1
            if fragments == maximumFragments {
                ends.append(offset)
                fragments = 0
            }
        }
        return ends
    }

    /// Queues the notifications of socket `fd`'s zero-copy sends the peer has acknowledged since.
    func completeZeroCopy(_ fd: Int) {
        guard let socket = sockets[fd], !socket.zeroCopy.inFlight.isEmpty else { return }
        // A connection the stack freed freed its buffers too.
        let unacknowledged = socket.connection.flatMap { stack.status($0) }.map { Int64($0.sendQueue) } ?? 0
        sockets[fd]!.zeroCopy.complete(acknowledged: socket.octetsWritten - unacknowledged)
    }

    /// `recvmsg(fd, {…, msg_control=[{…, cmsg_data={ee_errno=0, ee_origin=…, ee_code=…, ee_info=LO,
    /// ee_data=HI}}]}, MSG_ERRQUEUE)`: takes the first notification and compares its fields with
    /// those the script names; EAGAIN when the queue is empty (sock_recv_errqueue).
    func readErrorQueue(_ call: ScriptSystemCall) throws -> CallResult {
        let fd = try descriptor(call.arguments)
        completeZeroCopy(fd)
        guard !sockets[fd]!.zeroCopy.queue.isEmpty else { return .error("EAGAIN") }
        let notification = sockets[fd]!.zeroCopy.queue.removeFirst()
        let actual: [String: Int64] = [
            "ee_errno": 0, "ee_origin": ScriptSymbols.value("SO_EE_ORIGIN_ZEROCOPY")!, "ee_type": 0,
            "ee_code": ScriptSymbols.value("SO_EE_CODE_ZEROCOPY_COPIED")!,
            "ee_info": Int64(notification.low), "ee_data": Int64(notification.high),
        ]
        guard case .structure(let message)? = call.arguments[safe: 1],
            case .list(let messages)? = message.first(where: { $0.name == .symbol("msg_control") })?.value else {
            return .value(0)
        }
        for case .structure(let header) in messages {
            guard case .structure(let data)? = header.first(where: { $0.name == .symbol("cmsg_data") })?.value else { continue }
            for field in data {
                guard case .symbol(let name)? = field.name, let value = actual[name] else { continue }
                guard let expected = ScriptSymbols.evaluate(field.value) else {
                    throw ScriptSkip(reason: "error-queue field \(name)=\(field.value) is not a known integer or symbol")
                }
                if expected != value {
                    throw failure("recvmsg(MSG_ERRQUEUE): \(name) is \(value)", expected: "\(name)=\(expected)", actual: "\(name)=\(value)")
                }
            }
        }
        return .value(0)
    }
}
