import NIOCore
import TCPIPWire

/// SEGMENT ARRIVES (RFC 9293 §3.10.7) for a connection that has a TCB: SYN-SENT (§3.10.7.3)
/// and every other state (§3.10.7.4). LISTEN and CLOSED are the stack's (Listener.swift, Stack+Input.swift).
extension TCPConnection {
    mutating func segmentArrives(_ segment: consuming IncomingSegment, now: Instant, io: inout StackIO) {
        // RFC 1122 §4.2.3.6: keep-alive probes only when nothing has been heard for the interval;
        // an idle connection gives its grown buffers back the same way (`bufferReclaimDeadline`).
        lastHeardFrom = now
        if keepalive != nil { keepaliveProbesSent = 0 }
        switch state {
        case .synSent:
            synSentSegmentArrives(segment, now: now, io: &io)
        case .synReceived, .established, .finWait1, .finWait2, .closeWait, .closing, .lastAck, .timeWait:
            otherwiseSegmentArrives(segment, now: now, io: &io)
        case .closed, .listen:
            // A TCB in CLOSED is only waiting for its user to let go: to the peer the connection does
            // not exist, and RFC 9293 §3.10.7.1 answers as for one that never did.
            io.counters.droppedInClosedState &+= 1
            if segment.flags.contains(.rst) { return }
            if segment.flags.contains(.ack) {
                sendReset(sequence: segment.ack, now: now, io: &io)
            } else {
                sendReset(sequence: SequenceNumber(0), acknowledging: segment.seq + segment.length, now: now, io: &io)
            }
        }
    }

    // MARK: RFC 9293 §3.10.7.3 — SYN-SENT

    private mutating func synSentSegmentArrives(_ segment: IncomingSegment, now: Instant, io: inout StackIO) {
        // First, check the ACK bit: an ACK outside ISS < SEG.ACK =< SND.NXT is unacceptable.
        // (SND.MAX: a Fast Open SYN's data counts even after a retransmitted SYN left it out.)
        let ackIsAcceptable = segment.ack.isBetween(after: iss, atOrBefore: sndMax)
        if segment.flags.contains(.ack) && !ackIsAcceptable {
            if !segment.flags.contains(.rst) {
                // <SEQ=SEG.ACK><CTL=RST>
                sendReset(sequence: segment.ack, now: now, io: &io)
            }
            io.counters.droppedUnacceptableAck &+= 1
            return
        }
        // Second, check the RST bit (RFC 5961 §3.2: in SYN-SENT only an RST acknowledging our SYN counts).
        if segment.flags.contains(.rst) {
            io.counters.resetsReceived &+= 1
            if segment.flags.contains(.ack) {
                io.decision("RFC 9293 §3.10.7.3", "RST acknowledges our SYN: connection refused", connection: tuple, now: now)
                io.counters.failedConnectionAttempts &+= 1
                enterClosed(error: .connectionRefused, io: &io, now: now)
            } else {
                io.counters.droppedResetOutOfWindow &+= 1
            }
            return
        }
        // Fourth, check the SYN bit.
        guard segment.syn else {
            // Fifth: neither SYN nor RST — drop.
            io.counters.badSegments &+= 1
            return
        }
        irs = segment.seq
        rcvNxt = segment.seq + 1
        // What our SYN advertised, unscaled (RFC 7323 §2.2).
        rcvAdvertisedEdge = rcvNxt + UInt32(min(receiveSpace, 65535))
        adoptPeerOptions(segment.header.options, now: now)
        if timestampsEnabled, let timestamps = segment.header.options.timestamps {
            tsRecent = timestamps.value
            tsRecentTime = now
        }
        if segment.flags.contains(.ack) {
            acknowledgeSYN(ack: segment.ack, now: now, io: &io)
            if fastOpenRequested { fastOpenSYNACKArrives(segment, now: now, io: &io) }
            if timestampsEnabled, let echo = segment.header.options.timestamps?.echoReply, echo != 0 {
                rtt.addSample(.milliseconds(Int64(timestampClock(now) &- echo)))
            }
        }
        if sndUna.isAfter(iss) {
            // Our SYN has been acknowledged: ESTABLISHED. <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            // RFC 3168 §6.1.1: ECN if our ECN-setup SYN met an ECN-setup SYN-ACK.
            negotiateECN(peerAgreed: ECNState.isSetupSYNACK(segment.flags), now: now, io: &io)
            updateSendWindow(segment, force: true)
            state = .established
            io.decision("RFC 9293 §3.10.7.3", "SYN,ACK received: ESTABLISHED", connection: tuple, now: now)
            post(.established, io: &io)
            // Data or controls in the SYN-ACK are processed from the sixth step on.
            var rest = segment
            rest.seq = segment.seq + 1
            rest.syn = false
            var acknowledged = false
            if rest.payload.readableBytes > 0 || rest.fin {
                let sent = io.counters.segmentsSent
                processText(rest, now: now, io: &io)
                // Text acknowledged at once (a quick ACK) needs no second ACK.
                acknowledged = io.counters.segmentsSent != sent && lastAckSent == rcvNxt
            }
            // RFC 9293 §3.10.7.3: "Data or controls that were queued for transmission MAY be
            // included" in the ACK. Data queued in SYN-SENT (§3.10.2), or a Fast Open SYN's data the
            // SYN-ACK did not acknowledge, goes at once and carries it: no bare ACK before it (as
            // Linux saves the ACK when a write is pending, and tcp_rcv_fastopen_synack).
            // The ACK waits for the end of the batch (`sendAckAtEndOfBatch`, the same instant): an
            // application woken by ESTABLISHED that writes before the stack's caller next asks for a
            // packet sends its data with it — as Linux delays this ACK while a writer waits
            // (tcp_rcv_synsent_state_process, sk_write_pending).
            let sentBefore = io.counters.segmentsSent
            output(now: now, io: &io)
            if !acknowledged && io.counters.segmentsSent == sentBefore {
                if configuration.pointee.interactiveDelayedAcks { handshakeAckAwaitsWriter = now }
                sendAckAtEndOfBatch(now: now, io: &io)
            }
        } else {
            // Simultaneous open: <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>, enter SYN-RECEIVED.
            state = .synReceived
            io.decision("RFC 9293 §3.10.7.3", "SYN without ACK in SYN-SENT: simultaneous open, SYN-RECEIVED",
                        connection: tuple, now: now)
            sndWnd = UInt32(segment.header.window)
            sndWl1 = segment.seq
            sndWl2 = segment.ack
            retransmissionDeadline = nil
            // RFC 3168 §6.1.1: both SYNs ECN-setup; our SYN-ACK then says so too.
            negotiateECN(peerAgreed: ECNState.isSetupSYN(segment.flags), now: now, io: &io)
            // "If there are other controls or text in the segment, queue them for processing after
            // the ESTABLISHED state has been reached" (RFC 9293 §3.10.7.3); our SYN-ACK acknowledges
            // the SYN alone. A FIN with it is ignored (as FreeBSD; Linux drops such a SYN).
            if segment.payload.readableBytes > 0 { textInSYN = segment.payload }
            sendSYN(acknowledging: true, peerOffered: segment.header.options, now: now, io: &io)
        }
    }

    /// RFC 3168 §6.1.1: ECN is on when we sent an ECN-setup SYN (and no other since) and the peer's
    /// SYN or SYN-ACK was ECN-setup too.
    mutating func negotiateECN(peerAgreed: Bool, now: Instant, io: inout StackIO) {
        ecn.enabled = ecn.setupSent && peerAgreed
        if ecn.enabled {
            io.counters.ecnConnections &+= 1
            io.decision("RFC 3168 §6.1.1", "ECN negotiated: data goes as ECT(0)", connection: tuple, now: now)
        }
    }

    /// Records what the peer's SYN offered (RFC 7323 §2.2, §3.2; RFC 2018 §2; RFC 9293 §3.7.1).
    mutating func adoptPeerOptions(_ options: TCPOptions, now: Instant) {
        // RFC 9293 §3.7.1 (MUST-15): without an MSS option assume 536 (IPv4) / 1220 (IPv6, RFC 8200 §5).
        let defaultMSS = if case .v6 = tuple.remote.address { 1220 } else { 536 }
        let peerMSS = options.maximumSegmentSize.map { Int($0) } ?? defaultMSS
        maximumSegmentSize = max(64, min(peerMSS, receiveMSS))
        path.negotiatedMSS = Int32(clamping: maximumSegmentSize)
        // RFC 1191 §3: a path MTU already known (ICMP while opening, the stack's cache) bounds it too.
        if path.mtu > 0 { applyPathLimits() }
        if configuration.pointee.windowScaling, let shift = options.windowScale {
            sndWindowShift = min(shift, 14)
        } else {
            sndWindowShift = 0
            rcvWindowShift = 0
        }
        timestampsEnabled = configuration.pointee.timestamps && options.timestamps != nil
        sackEnabled = configuration.pointee.selectiveAcknowledgments && options.sackPermitted
        // The window the algorithm will start from, sized now the MSS is known; the algorithm
        // itself starts when it has something to do (`startCongestionControl`).
        congestion = HandshakeWindow(
            algorithm: congestionAlgorithm, maximumSegmentSize: sendMSS,
            initialWindowSegments: configuration.pointee.initialWindowSegments)
        congestionControlStarted = false
    }

    /// Replaces the `HandshakeWindow` by the connection's algorithm, before the algorithm's first
    /// event: an acknowledgment of data, a congestion signal. An algorithm that has seen no event is
    /// its initial window and nothing else, which is what the placeholder holds, so the connection
    /// behaves as if the algorithm had run from the start. One whose data is all acknowledged
    /// without an event — a connection that sends nothing but its FIN — never allocates the
    /// algorithm's state (CUBIC's box: one malloc and free per connection).
    mutating func startCongestionControl() {
        guard !congestionControlStarted else { return }
        congestionControlStarted = true
        congestion = congestionAlgorithm.make(
            maximumSegmentSize: sendMSS, initialWindowSegments: configuration.pointee.initialWindowSegments,
            slowStartLimitSegments: configuration.pointee.slowStartLimitSegments,
            hyStart: configuration.pointee.hyStart)
    }

    /// What the peer's SYN offered, as far as it shapes our SYN-ACK — rebuilt from what was agreed,
    /// for retransmitting the SYN-ACK of a simultaneous open. Scaling agreed with both shifts 0 is
    /// left out: it means the same as none.
    var agreedPeerOptions: TCPOptions {
        var options = TCPOptions()
        if sndWindowShift != 0 || rcvWindowShift != 0 { options.windowScale = sndWindowShift }
        options.sackPermitted = sackEnabled
        if timestampsEnabled { options.timestamps = TCPTimestamps(value: tsRecent, echoReply: 0) }
        return options
    }

    /// SND.UNA advances past our SYN.
    mutating func acknowledgeSYN(ack: SequenceNumber, now: Instant, io: inout StackIO) {
        sndUna = ack
        retransmissionDeadline = nil
        consecutiveTimeouts = 0
        rtt.resetBackoff()
    }

    /// <SEQ=seq><CTL=RST>, or <SEQ=seq><ACK=ack><CTL=RST,ACK> when `acknowledging`.
    mutating func sendReset(sequence: SequenceNumber, acknowledging: SequenceNumber? = nil, now: Instant, io: inout StackIO) {
        io.transmitReset(for: tuple, sequence: sequence, acknowledging: acknowledging)
    }
}
