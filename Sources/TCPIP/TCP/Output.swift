import NIOCore
import TCPIPWire

/// Building and sending segments: the sender side of RFC 9293 §3.8.6 (windows, silly window
/// avoidance), §3.7.4 (Nagle) and RFC 5681 (cwnd).
extension TCPConnection {
    /// The options every non-SYN segment carries: timestamps (RFC 7323 §3.2) and, while we hold
    /// out-of-order data, SACK blocks (RFC 2018 §4).
    func segmentOptions(now: Instant) -> TCPOptions {
        var options = TCPOptions()
        if timestampsEnabled {
            options.timestamps = TCPTimestamps(value: timestampClock(now), echoReply: tsRecent)
        }
        if sackEnabled {
            let limit = timestampsEnabled ? 3 : 4
            if let duplicate = pendingDuplicateSACK {
                // RFC 2883 §4: the D-SACK block first. §4 (4): "If the D-SACK block reports a duplicate
                // contiguous sequence from a (possibly larger) block of data in the receiver's data
                // queue above the cumulative acknowledgement, then the second SACK block … should
                // specify that (possibly larger) block" — larger as in Example 3 (§4.1.3), or the
                // same. §4 (5): then the usual blocks of RFC 2018.
                options.sackBlocks.append(duplicate)
                if !reassembly.isEmpty {
                    let containing = reassembly.heldRange(containing: duplicate)
                    if let containing { options.sackBlocks.append(containing) }
                    for block in reassembly.sackBlocks(limit: limit) where block != containing && options.sackBlocks.count < limit {
                        options.sackBlocks.append(block)
                    }
                }
            } else if !reassembly.isEmpty {
                options.sackBlocks = reassembly.sackBlocks(limit: limit)
            }
        }
        return options
    }

    /// Octets of options `segmentOptions(now:)` encodes to, without building them when it is
    /// timestamps alone or nothing (no SACK blocks to report): what the output loop asks before each
    /// segment to size its payload, where building the options and measuring them cost some 90
    /// instructions a segment (`bench bulk` under callgrind). `SegmentOptionsLengthTests` holds it
    /// to `segmentOptions(now:).encodedLength`.
    ///
    /// `mutating` though it changes nothing: inlined into `output` as a non-mutating method, it made
    /// the compiler copy the whole TCB for its reads (+500 instructions a segment).
    @inline(__always)
    mutating func segmentOptionsLength(now: Instant) -> Int {
        if sackEnabled && (pendingDuplicateSACK != nil || !reassembly.isEmpty) {
            return segmentOptions(now: now).encodedLength
        }
        // NOP, NOP, TSopt (RFC 7323 Appendix A), as `TCPOptions.fixedLength` counts them.
        return timestampsEnabled ? 12 : 0
    }

    /// Sends one segment from this connection. `payloadOffset`/`payloadLength` select bytes of the
    /// send buffer. Every segment but the first SYN carries an ACK of everything received so far.
    ///
    /// - Parameter newData: the payload is new data, not a retransmission or a window probe: on an
    ///   ECN connection it goes as ECT(0) (RFC 3168 §6.1.2; §6.1.5 and §6.1.6 forbid ECT on the others,
    ///   §6.1.4 on pure ACKs).
    mutating func sendSegment(
        flags: TCPFlags,
        sequence: SequenceNumber,
        payloadOffset: Int = 0,
        payloadLength: Int = 0,
        options extraOptions: TCPOptions? = nil,
        newData: Bool = false,
        now: Instant,
        io: inout StackIO
    ) {
        var flags = flags
        let isSYN = flags.contains(.syn)
        if ecn.enabled && !isSYN && !flags.contains(.rst) {
            // RFC 3168 §6.1.3: every ACK echoes CE until CWR arrives; the bits are ours to set on
            // all other segments ("MUST correctly set/clear the CWR TCP bit on all subsequent packets").
            flags.remove([.ece, .cwr])
            if ecn.echoing && flags.contains(.ack) { flags.insert(.ece) }
            if newData && payloadLength > 0 && ecn.congestionWindowReducedPending {
                // §6.1.2: CWR "only on the first new data packet" after the reduction, never on a
                // retransmission.
                flags.insert(.cwr)
                ecn.congestionWindowReducedPending = false
                ecn.congestionWindowReducedSent &+= 1
                io.counters.congestionWindowReducedSent &+= 1
            }
        }
        let codepoint: ECNCodepoint = ecn.enabled && newData && payloadLength > 0 ? .ect0 : .notECT
        let options = extraOptions ?? segmentOptions(now: now)
        let window = advertiseWindow(isSYN: isSYN, io: &io, now: now)
        let acknowledges = flags.contains(.ack)
        let header = TCPHeader(
            sourcePort: tuple.local.port, destinationPort: tuple.remote.port,
            sequenceNumber: sequence, acknowledgmentNumber: acknowledges ? rcvNxt : SequenceNumber(0),
            flags: flags, window: window, options: options
        )
        io.transmit(
            header, from: sendBuffer, offset: payloadOffset, length: payloadLength,
            local: tuple.local.address, remote: tuple.remote.address, ecn: codepoint)
        if acknowledges {
            lastAckSent = rcvNxt
            ackDeferred = false
            delayedAckDeadline = nil
            segmentsSinceAck = 0
            bytesSinceAck = 0
        }
        if extraOptions == nil, pendingDuplicateSACK != nil {
            // Reported once (RFC 2883 §4 (1)).
            pendingDuplicateSACK = nil
            io.counters.dsackBlocksSent &+= 1
        }
        // RFC 5681 §4.1 measures idleness from the last *data* sent: bare ACKs don't count.
        if payloadLength > 0 { lastSendTime = now }
        let end = sequence + (payloadLength + (isSYN ? 1 : 0) + (flags.contains(.fin) ? 1 : 0))
        if !isSYN && sequence.isBefore(end) {
            // RFC 8985 §6.1: every (re)transmission is recorded with its time; RFC 6937: prr_out.
            scoreboard.recordSent(from: sequence, to: end, now: now)
            prr?.sent(Int(sequence.octets(to: end)))
        }
        if sndMax.isBefore(end) { sndMax = end }
    }

    /// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>: the ACK of RFC 9293 §3.10.7.4.
    ///
    /// After a retransmission timeout pulls SND.NXT back, a bare ACK carries the highest sequence
    /// number sent instead (as BSD does): the peer's RCV.NXT may already be past SND.NXT, and a
    /// zero-length segment below RCV.NXT fails its acceptability test — the ACK would be lost.
    mutating func sendAck(now: Instant, io: inout StackIO) {
        sendSegment(flags: .ack, sequence: sndMax, now: now, io: &io)
    }

    /// Owes the ACK of RFC 9293 §3.8.6.3 ("at least every second full-sized segment") and leaves it
    /// for the end of the batch (`TCPConfiguration.batchesAcknowledgments`; with batching off it is
    /// sent at once): `sendDeferredAck` builds it when the stack's caller next asks for a packet,
    /// unless a segment we send before then carries the acknowledgment. Either way it leaves at the
    /// same instant, acknowledging everything the batch brought.
    ///
    /// DEVIATION(RFC 9293 §3.8.6.3): a batch of more than two full-sized segments gets one ACK, a
    /// stretch ACK, as from Linux behind GRO. A sender that counts every octet an ACK covers (Linux;
    /// ours with `slowStartLimitSegments` nil) grows its window as fast; one held to RFC 5681's
    /// L = 1 SMSS per ACK (our default) grows more slowly in slow start after the quick ACKs, as it
    /// does behind any GRO receiver. `batchesAcknowledgments` turns this off.
    mutating func sendAckAtEndOfBatch(now: Instant, io: inout StackIO) {
        guard configuration.pointee.batchesAcknowledgments else {
            sendAck(now: now, io: &io)
            return
        }
        guard !ackDeferred else { return }
        ackDeferred = true
        io.deferAck(handle, now: now)
    }

    /// The deferred ACK, if no segment has carried it since (`sendAckAtEndOfBatch`) and the
    /// connection was not reset or aborted meanwhile.
    ///
    /// Not inlined: inlined into `Stack.sendDeferredAcks`' closure over the slab's slot, the segment
    /// it builds made the compiler copy the whole TCB (1.3 KB) and its send buffer around the calls
    /// that take `io` — 600 instructions a connection in `bench connrate` (docs/PERFORMANCE.md).
    ///
    /// Returns whether a deadline of the connection moved: only when the ACK cancelled a delayed-ACK
    /// timer, since a bare ACK changes nothing else that `nextDeadline` reads.
    @inline(never)
    mutating func sendDeferredAck(now: Instant, io: inout StackIO) -> Bool {
        guard ackDeferred else { return false }
        ackDeferred = false
        // No writer sent data with the handshake's ACK.
        handshakeAckAwaitsWriter = nil
        guard state.isSynchronized else { return false }
        let cancelsTimer = delayedAckDeadline != nil
        sendAck(now: now, io: &io)
        return cancelsTimer
    }

    /// The SYN (active open) or SYN-ACK (simultaneous open) with our options (RFC 9293 §3.10.1; RFC 7323; RFC 2018).
    ///
    /// - Parameters:
    ///   - fastOpen: RFC 7413's option for a client's first SYN: a cookie request or a cookie.
    ///   - dataLength: octets of the send buffer the SYN carries (RFC 7413 §4.2.2).
    mutating func sendSYN(
        acknowledging: Bool, peerOffered: TCPOptions?, fastOpen: TCPFastOpenCookie? = nil, dataLength: Int = 0,
        now: Instant, io: inout StackIO
    ) {
        // An active open's SYN announces no more than the path MTU ICMP reported allows (Linux's
        // tcp_advertise_mss takes the route's lowered advmss; RFC 1191 §3: the MSS follows the PMTU).
        let announced = !acknowledging && path.mtu > 0 ? min(receiveMSS, segmentSize(forMTU: Int(path.mtu))) : receiveMSS
        var options = TCPOptions(maximumSegmentSize: UInt16(clamping: announced))
        options.fastOpen = fastOpen
        options.layout = configuration.pointee.synOptionLayout
        let offerAll = peerOffered == nil
        if configuration.pointee.windowScaling && (offerAll || peerOffered?.windowScale != nil) {
            options.windowScale = rcvWindowShift
        }
        if configuration.pointee.selectiveAcknowledgments && (offerAll || peerOffered?.sackPermitted == true) {
            options.sackPermitted = true
        }
        if configuration.pointee.timestamps && (offerAll || peerOffered?.timestamps != nil) {
            options.timestamps = TCPTimestamps(value: timestampClock(now), echoReply: acknowledging ? tsRecent : 0)
        }
        var flags: TCPFlags = acknowledging ? [.syn, .ack] : .syn
        if acknowledging {
            // RFC 3168 §6.1.1: an ECN-setup SYN-ACK (ECE, not CWR) only in answer to an ECN-setup SYN.
            if ecn.enabled { flags.insert(.ece) }
        } else if configuration.pointee.explicitCongestionNotification == .request && sndNxt == iss {
            // RFC 3168 §6.1.1: the first SYN is an ECN-setup SYN. A retransmission goes without
            // ECE and CWR (§6.1.1.1: a middlebox may be dropping ECN-setup SYNs; Linux does the
            // same), and having sent a non-ECN-setup SYN we may not use ECN on this connection.
            flags.formUnion([.ece, .cwr])
            ecn.setupSent = true
        } else {
            ecn.setupSent = false
        }
        if !acknowledging, state == .synSent, sndNxt.isAfter(iss + 1), fastOpen == nil {
            // RFC 7413 §4.2.2: "when the SYN timer fires, the client SHOULD retransmit a SYN packet
            // without data and Fast Open options"; the data goes after the handshake.
            sndNxt = iss + 1
        }
        sendSegment(flags: flags, sequence: iss, payloadLength: dataLength, options: options, newData: dataLength > 0, now: now, io: &io)
        if sndNxt == iss { sndNxt = iss + 1 + dataLength }
        armRetransmissionTimer(now: now)
    }

    /// A Fast Open server's SYN-ACK is all that is outstanding: for Nagle (RFC 9293 §3.7.4) no
    /// data is, as Linux's child socket, whose SYN-ACK is not in its write queue.
    private var synIsAllInFlight: Bool { state == .synReceived && sndNxt == iss + 1 }

    /// RFC 9293 Appendix A.3 (Minshall): the short segment may go when no other short segment is
    /// unacknowledged (SND.UNA has passed the last one's end).
    private var minshallAllowsShortSegment: Bool {
        configuration.pointee.nagleMinshall && !(lastShortSegmentEnd.isAfter(sndUna) && lastShortSegmentEnd.isAtOrBefore(sndMax))
    }

    /// Sends what the windows and the send-side rules allow: RFC 9293 §3.8.6.2.1 (sender SWS
    /// avoidance), §3.7.4 (Nagle), RFC 5681 (cwnd), RFC 6675 §5 (C.1)–(C.5) (lost segments first, then
    /// new data, while cwnd − pipe allows) and, in fast recovery, RFC 6937 (PRR's sndcnt instead).
    ///
    /// - Parameters:
    ///   - probe: an RFC 8985 §7.3 loss probe: one segment of new data whatever cwnd says.
    ///   - overrideSWS: the RFC 9293 §3.8.6.2.1 override timeout expired: send what the window
    ///     allows even though it is less than the rule's thresholds.
    mutating func output(now: Instant, io: inout StackIO, probe: Bool = false, overrideSWS: Bool = false) {
        switch state {
        case .established, .closeWait, .finWait1, .closing, .lastAck:
            break
        case .synReceived where fastOpened:
            // RFC 7413 §4.2.2 step 6: a Fast Open server sends data before the handshake completes,
            // within the initial window of RFC 5681.
            break
        case .closed, .listen, .synSent, .synReceived, .finWait2, .timeWait:
            return
        }
        if !probe, !overrideSWS, unsentBytes == 0, finSequence == nil || finSent, !scoreboard.hasLostToRetransmit {
            // Nothing to send: no new data, no FIN, nothing lost to send again. Most calls are
            // these (after an ACK, a read, a FIN received). The idle restart below waits for the
            // next call that has something to send, which tests it then.
            updatePersistTimer(now: now, io: &io)
            return
        }
        if flightSize == 0, now - lastSendTime > rtt.retransmissionTimeout {
            // RFC 5681 §4.1: after an idle period longer than an RTO, restart from the initial window.
            // (No "never sent" sentinel: time zero is a valid instant, and min(IW, cwnd) is harmless.)
            congestion.restartAfterIdle(now: now)
        }
        var sentNewData = false
        let pacing = pacingRate(paced: !probe && !overrideSWS)
        while true {
            if let pacing, pacingHolds(pacing, now: now) { break }
            let inFlight = pipe
            var room = inFastRecovery
                ? prr?.sendQuota ?? 0
                : max(0, congestion.congestionWindow - inFlight)
            let payloadRoom = maximumSegmentSize - segmentOptionsLength(now: now)

            // RFC 6675 §5 (C.1), NextSeg rule (1): what is lost goes first.
            if !probe, scoreboard.hasLostToRetransmit {
                if let next = scoreboard.nextLostSegment(maximumLength: max(1, payloadRoom)) {
                    let length = Int(next.start.octets(to: next.end))
                    // (C.5) "cwnd - pipe >= 1 SMSS"; a shorter lost segment needs only its length. With
                    // nothing in flight one segment always goes, so recovery cannot stall.
                    guard length <= room || (inFlight == 0 && (room > 0 || !inFastRecovery)) else { break }
                    guard sendRange(from: next.start, to: next.end, now: now, io: &io) else { break }
                    if let pacing { paced(length, at: pacing, now: now) }
                    continue
                }
            }

            // NextSeg rule (2): new data, within the peer's window too.
            if probe { room = max(room, payloadRoom) }
            let windowRoom = max(0, Int(sndWnd) - flightSize)
            let usable = min(room, windowRoom)
            let offset = sendBufferNextOffset
            let unsent = sendBuffer.count - offset
            var length = min(unsent, usable, payloadRoom)
            // A record's end (MSG_EOR) ends the segment; the record's short tail is not held back.
            var endsRecord = false
            if !recordEnds.isEmpty {
                while let first = recordEnds.first, first.isAtOrBefore(sndUna) { recordEnds.removeFirst() }
                if let end = recordEnds.first(where: { $0.isAfter(sndNxt) }) {
                    let toEnd = Int(sndNxt.octets(to: end))
                    if toEnd <= length {
                        length = toEnd
                        endsRecord = true
                    }
                }
            }
            var isMTUProbe = false
            if path.search != nil, !probe, !endsRecord, let probePayload = mtuProbePayload(
                unsent: unsent, room: room, windowRoom: windowRoom,
                optionsLength: maximumSegmentSize - payloadRoom, now: now)
            {
                // RFC 4821 §7.3: this segment is the probe, larger than the MSS in use.
                length = probePayload
                isMTUProbe = true
            }
            let finPending = finSequence != nil && !finSent
            let carriesFIN = finPending && length == unsent

            if length == 0 {
                // Only a bare FIN is left (RFC 9293 §3.10.4): it takes no window space worth waiting for.
                if carriesFIN {
                    sendSegment(flags: [.fin, .ack], sequence: sndNxt, now: now, io: &io)
                    sndNxt = sndNxt + 1
                    armRetransmissionTimer(now: now)
                    sentNewData = true
                }
                break
            }
            // During recovery only full segments (or the tail of the data) go, so PRR's byte
            // allowance does not turn into a string of small segments.
            if inFastRecovery && length < min(unsent, payloadRoom) { break }
            // RFC 9293 §3.8.6.2.1 (RFC 1122 §4.2.3.4), sender SWS avoidance: send (1) a full
            // segment; or (2) all that is queued when nothing is outstanding (Nagle, §3.7.4) or
            // Nagle is off; or (3) at least Fs·Max(SND.WND) with Fs = 1/2. Otherwise wait: for an
            // ACK if data is outstanding, else for the override timeout (`updatePersistTimer`),
            // on whose expiry the window's worth goes (4).
            let sendNow =
                length == sendMSS || length >= payloadRoom || endsRecord
                || (length == unsent && (!nagle || flightSize == 0 || synIsAllInFlight || minshallAllowsShortSegment))
                || (maxSndWnd > 0 && length >= Int(maxSndWnd / 2))
                || overrideSWS
                // RFC 9293 §3.9.1.4: "Close also implies push function" — no more data can come to
                // fill the segment, so the tail goes with the FIN at once (Linux exempts the FIN from Nagle).
                || carriesFIN
                || probe
            guard sendNow else { break }

            var flags: TCPFlags = [.ack]
            if length == unsent { flags.insert(.psh) }
            if carriesFIN { flags.insert(.fin) }
            let isRetransmission = sndNxt.isBefore(sndMax)
            sendSegment(
                flags: flags, sequence: sndNxt, payloadOffset: offset, payloadLength: length,
                newData: !isRetransmission, now: now, io: &io)
            if let pacing { paced(length, at: pacing, now: now) }
            if isMTUProbe { mtuProbeSent(from: sndNxt, to: sndNxt + length, now: now, io: &io) }
            if isRetransmission {
                retransmittedSegments &+= 1
                io.counters.segmentsRetransmitted &+= 1
            } else if rttTimedSequence == nil && !timestampsEnabled {
                // RFC 6298 §3: time one segment per round trip (Karn: never a retransmitted one).
                rttTimedSequence = sndNxt + length
                rttTimedAt = now
            }
            sndNxt = sndNxt + (length + (carriesFIN ? 1 : 0))
            if length < sendMSS && !isRetransmission { lastShortSegmentEnd = sndNxt }
            if let arrival = handshakeAckAwaitsWriter {
                // Data written as the handshake completed carries its ACK: a writer was waiting, and
                // Linux, which delayed that ACK for it (tcp_rcv_synsent_state_process: quick-ACK
                // mode, ATO armed), takes the data sent within ATO as a reply and the connection as
                // interactive (tcp_event_data_sent; `interactiveDelayedAcks`).
                handshakeAckAwaitsWriter = nil
                if !isRetransmission, let timeout = delayedAckTimeout, now - arrival < timeout { interactive = true }
            }
            armRetransmissionTimer(now: now)
            sentNewData = true
            if probe || overrideSWS { break }
        }
        // RFC 8985 §7.2: (re)start the PTO after sending new data (not for the probe itself).
        if sentNewData && !probe { scheduleLossProbe(now: now) }
        updatePersistTimer(now: now, io: &io)
    }

    /// RFC 6298 §5 (5.1): start the timer when data is outstanding and it isn't running.
    mutating func armRetransmissionTimer(now: Instant) {
        if retransmissionDeadline == nil {
            retransmissionDeadline = now + rtt.retransmissionTimeout
        }
    }

    /// RFC 9293 §3.8.6.1: when the peer's window is zero and we have something to send, the
    /// persist timer makes sure we keep asking.
    ///
    /// The same deadline serves as the override timer of sender SWS avoidance (§3.8.6.2.1: "It may
    /// be convenient to combine this timer with the timer used to probe zero windows"): when the
    /// window is open but too small for the rule to send and nothing is outstanding, no ACK will
    /// come to clock the data out, so after the override timeout the window's worth goes anyway.
    mutating func updatePersistTimer(now: Instant, io: inout StackIO) {
        let hasSomethingToSend = unsentBytes > 0 || (finSequence != nil && !finSent)
        if sndWnd == 0 && hasSomethingToSend && flightSize <= 1 {
            if persistDeadline == nil {
                let timeout = persistTimeout
                persistDeadline = now + timeout
                if flightSize == 0 { retransmissionDeadline = nil }
                io.decision(
                    "RFC 9293 §3.8.6.1", "peer window is zero; persist timer \(timeout.milliseconds) ms",
                    connection: tuple, now: now)
            }
        } else if sndWnd > 0 && unsentBytes > 0 && flightSize == 0 && state.sendsData {
            // `output` had the window and declined: the SWS rule is waiting (with nothing in flight
            // neither cwnd nor Nagle holds data back).
            if persistDeadline == nil {
                let timeout = overrideTimeout
                persistDeadline = now + timeout
                io.decision(
                    "RFC 9293 §3.8.6.2.1", "window of \(sndWnd) octets too small to send into; override timer \(timeout.milliseconds) ms",
                    connection: tuple, now: now)
            }
        } else if persistDeadline != nil {
            persistDeadline = nil
            persistBackoff = 0
        }
    }

    /// RFC 9293 §3.8.6.2.1: "The timeout should be in the range 0.1 - 1.0 seconds": the persist
    /// interval (RTO-based, at least `minimumPersistTimeout`), at most one second.
    var overrideTimeout: TimeAmount {
        .nanoseconds(min(persistTimeout.nanoseconds, TimeAmount.seconds(1).nanoseconds))
    }

    /// RTO-based persist interval, backed off exponentially and bounded (RFC 1122 §4.2.2.17).
    var persistTimeout: TimeAmount {
        let base = max(rtt.retransmissionTimeout.nanoseconds, configuration.pointee.minimumPersistTimeout.nanoseconds)
        let shifted = base << min(persistBackoff, 16)
        return .nanoseconds(min(shifted, configuration.pointee.maximumPersistTimeout.nanoseconds))
    }
}

extension TimeAmount {
    var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
