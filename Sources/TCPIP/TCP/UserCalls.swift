import NIOCore
import TCPIPWire

/// What `read` found.
public enum ReceiveResult: Hashable, Sendable {
    /// Bytes read, in order.
    case data(ByteBuffer)
    /// Nothing buffered yet; the connection is still open for reading.
    case wouldBlock
    /// The peer's FIN has been read past: the stream is over.
    case endOfStream
}

/// The user calls of RFC 9293 §3.10.2–§3.10.6 on one connection. OPEN is the stack's
/// (it chooses ports and ISNs), see `Stack.connect` and `Stack.listen`.
extension TCPConnection {
    /// §3.10.2 SEND: queues as much as the send buffer takes, then sends what the windows allow.
    mutating func send(_ bytes: ByteBuffer, endOfRecord: Bool = false, now: Instant, io: inout StackIO) throws(TCPError) -> Int {
        guard state.acceptsUserData else {
            if let error { throw error }
            throw state == .closed ? .connectionDoesNotExist : .connectionClosing
        }
        let taken = sendBuffer.append(bytes, pool: &io.packedChunks)
        if endOfRecord && taken > 0 { recordEnds.append(sendBufferStart + sendBuffer.count) }
        if taken > 0 { output(now: now, io: &io) }
        return taken
    }

    /// §3.10.3 RECEIVE: hands over buffered bytes and, if that opens the window far enough,
    /// tells the peer (a window update, RFC 9293 §3.8.6.2.2).
    ///
    /// A segment of its own is worth it only when the peer may be held back: when the window it
    /// knows is at most half of what we could offer now (as Linux's tcp_cleanup_rbuf). Otherwise the
    /// larger window rides on the next ACK.
    ///
    /// - Parameter chunk: return at most the bytes of one arrival, without copying (`ReceiveBuffer.readChunk`).
    mutating func read(upTo maxLength: Int, chunk: Bool = false, now: Instant, io: inout StackIO) throws(TCPError) -> ReceiveResult {
        if let bytes = chunk ? receiveBuffer.readChunk(upTo: maxLength) : receiveBuffer.read(upTo: maxLength) {
            if receiveAutotuning { adjustReceiveSpace(now: now, io: &io) }
            let windowPeerKnows = max(0, Int(rcvNxt.distance(to: rcvAdvertisedEdge)))
            let worthASegment = min(receiveSpace, maximumAdvertisableWindow) >= 2 * windowPeerKnows
            if state.isSynchronized && !state.hasReceivedFIN && worthASegment
                && potentialWindowIncrease >= windowOpeningThreshold {
                let wasZero = rcvWnd == 0
                io.counters.windowUpdatesSent &+= 1
                io.decision("RFC 9293 §3.8.6.2.2", wasZero
                    ? "application read; window update reopens the zero window"
                    : "application read; window update (right edge moves ≥ min(RCV.BUFF/2, MSS))",
                    connection: tuple, now: now)
                sendAck(now: now, io: &io)
            }
            return .data(bytes)
        }
        if state.hasReceivedFIN { return .endOfStream }
        if state == .closed {
            if let error { throw error }
            return .endOfStream
        }
        return .wouldBlock
    }

    /// MSG_PEEK: the bytes `read` would return, left in place.
    func peek(upTo maxLength: Int) -> ByteBuffer? {
        receiveBuffer.peek(upTo: maxLength)
    }

    /// §3.10.4 CLOSE: "I have no more to send." Queues a FIN behind the data; reading goes on.
    mutating func close(now: Instant, io: inout StackIO) throws(TCPError) {
        switch state {
        case .synSent:
            // "Delete the TCB and return 'error: closing' responses to any queued SENDs."
            enterClosed(error: nil, io: &io, now: now)
        case .synReceived, .established:
            queueFIN()
            state = .finWait1
            output(now: now, io: &io)
        case .closeWait:
            queueFIN()
            state = .lastAck
            output(now: now, io: &io)
        case .finWait1, .finWait2, .closing, .lastAck, .timeWait:
            throw .connectionClosing
        case .closed, .listen:
            break
        }
    }

    private mutating func queueFIN() {
        finSequence = sendBufferStart + sendBuffer.count
    }

    /// §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST> in the synchronized states, then CLOSED.
    mutating func abort(now: Instant, io: inout StackIO) {
        switch state {
        case .synReceived, .established, .finWait1, .finWait2, .closeWait:
            sendAbortReset(now: now, io: &io)
        case .synSent, .closing, .lastAck, .timeWait, .closed, .listen:
            break
        }
        if state != .closed { enterClosed(error: .aborted, io: &io, now: now) }
    }

    /// The RST of §3.10.5 ABORT, <SEQ=SND.NXT><CTL=RST>, also sent when a timeout gives up.
    /// RFC 7323 §3.2: TSopt "SHOULD be sent in an <RST> segment".
    /// DEVIATION(RFC 9293 §3.10.5): the ACK bit is set, with RCV.NXT, as Linux and FreeBSD do; the
    /// peer validates an RST by its sequence number alone (RFC 5961 §3.2).
    mutating func sendAbortReset(now: Instant, io: inout StackIO) {
        var options = TCPOptions()
        if timestampsEnabled {
            options.timestamps = TCPTimestamps(value: timestampClock(now), echoReply: tsRecent)
        }
        sendSegment(flags: [.rst, .ack], sequence: sndNxt, options: options, now: now, io: &io)
    }

    /// §3.10.6 STATUS.
    func status(now: Instant) -> ConnectionStatus {
        var status = ConnectionStatus(
            state: state, local: tuple.local, remote: tuple.remote,
            receiveQueue: receiveBuffer.count, sendQueue: sendBuffer.count,
            sendUnacknowledged: sndUna.rawValue, sendNext: sndNxt.rawValue, receiveNext: rcvNxt.rawValue,
            sendWindow: Int(sndWnd), receiveWindow: Int(rcvWnd),
            sendWindowScale: Int(sndWindowShift), receiveWindowScale: Int(rcvWindowShift),
            maximumSegmentSize: sendMSS, receiveMSS: receiveMSS,
            smoothedRTT: rtt.smoothedRTT, rttVariance: rtt.rttVariance, retransmissionTimeout: rtt.retransmissionTimeout,
            // RFC 6937 §3: during recovery cwnd is what PRR allows, pipe + sndcnt.
            congestionWindow: inFastRecovery ? pipe + (prr?.sendQuota ?? 0) : congestion.congestionWindow,
            slowStartThreshold: congestion.slowStartThreshold,
            congestionControl: congestion.name, inRecovery: inFastRecovery,
            sackedBytes: scoreboard.sackedBytes, sackedSegments: scoreboard.sackedSegments,
            lostBytes: scoreboard.lostBytes, retransmittedBytes: scoreboard.retransmittedBytes, pipe: pipe,
            reorderingSeen: rack.reorderingSeen, rack: rackEnabled, fastRecoveries: UInt64(fastRecoveries),
            tailLossProbes: UInt64(tailLossProbes), spuriousRetransmissionsUndone: UInt64(spuriousEpisodesUndone),
            dsacksReceived: UInt64(dsacksReceived),
            retransmits: UInt64(retransmittedSegments), timeouts: UInt64(timeouts), zeroWindowProbes: UInt64(zeroWindowProbes),
            zeroWindowAdvertisements: UInt64(zeroWindowAdvertisementsSent),
            outOfOrderBytes: reassembly.byteCount, timestamps: timestampsEnabled, sack: sackEnabled,
            bytesAcked: bytesAcked, bytesReceived: bytesReceived, error: error)
        status.ecn = ecn.enabled
        status.softError = softError
        if path.mtu > 0 || path.search != nil { status.pathMTU = mtu(forSegmentSize: maximumSegmentSize) }
        status.congestionExperiencedReceived = UInt64(ecn.congestionExperiencedReceived)
        status.ecnEchoesReceived = UInt64(ecn.echoesReceived)
        status.ecnWindowReductions = UInt64(ecn.windowReductions)
        status.congestionWindowReducedSent = UInt64(ecn.congestionWindowReducedSent)
        let tcp = configuration.pointee
        status.receiveSpace = Int(receiveTuning.space)
        status.receiveRTT = receiveTuning.rtt > 0 ? .microseconds(Int64(receiveTuning.rtt)) : nil
        status.receiveBuffer = receiveBufferCapacity
        status.receiveBufferMaximum = max(receiveBufferCapacity, tcp.receiveBufferMaximum ?? 0)
        status.sendBuffer = sendBuffer.capacity
        status.sendBufferMaximum = sendBufferLocked ? sendBuffer.capacity : max(sendBuffer.capacity, tcp.sendBufferMaximum ?? 0)
        status.autotuning = receiveAutotuning || (tcp.sendBufferMaximum ?? 0) > tcp.sendBufferSize
        return status
    }
}
