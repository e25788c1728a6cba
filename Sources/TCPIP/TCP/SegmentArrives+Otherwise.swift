import NIOCore
import TCPIPWire

/// RFC 9293 §3.10.7.4, "Otherwise": SYN-RECEIVED and every synchronized state, step by step.
extension TCPConnection {
    /// The segment is `consuming` so that trimming it (`checkSequenceNumber`) needs no copy.
    mutating func otherwiseSegmentArrives(_ segment: consuming IncomingSegment, now: Instant, io: inout StackIO) {
        if state == .synReceived, segment.syn, segment.flags.contains(.ack), segment.seq == irs {
            // RFC 9293 Figure 8, line 6 (simultaneous open): the peer's SYN-ACK repeats the SYN we
            // hold and acknowledges ours, and enters ESTABLISHED. The first check would call it old
            // and only ACK it, and a peer with nothing to send (Linux) would leave us waiting for
            // our SYN-ACK's retransmission; so, as Linux does, drop the SYN and take the ACK.
            segment.syn = false
            segment.seq = segment.seq + 1
        }

        // RFC 7323 §5.3 (R1–R3): PAWS comes before the sequence-number check.
        guard passesPAWS(segment, now: now, io: &io) else { return }

        // First, check sequence number.
        guard checkSequenceNumber(&segment, now: now, io: &io) else { return }

        // Second, check the RST bit.
        if segment.flags.contains(.rst) {
            resetArrives(segment, now: now, io: &io)
            return
        }

        // Third: security/compartment is not implemented (RFC 9293 §3.10.7.4 permits ignoring it; RFC 9293 §3.9.1).

        // Fourth, check the SYN bit (RFC 5961 §4: a SYN in a synchronized state gets a challenge ACK).
        if segment.syn {
            if state == .synReceived && segment.seq == irs {
                // A retransmission of the SYN that created us: answer with the SYN-ACK again.
                sendSYN(acknowledging: true, peerOffered: segment.header.options, now: now, io: &io)
                return
            }
            synInWindowArrives(now: now, io: &io)
            return
        }

        // Fifth, check the ACK field.
        guard segment.flags.contains(.ack) else {
            io.counters.droppedNoAckFlag &+= 1
            return
        }
        if case .timeWait = state, configuration.pointee.acknowledgesSegmentsInTimeWait,
           acknowledgedInTimeWait(segment, now: now, io: &io) {
            return
        }
        guard acknowledgmentArrives(segment, now: now, io: &io) else { return }
        if textInSYN != nil, state.isSynchronized { processTextInSYN(segment, now: now, io: &io) }

        // Sixth, check the URG bit: urgent data is delivered inline (RFC 6093 §5); nothing to do.

        // The ECN field and CWR of an acceptable segment (RFC 3168 §6.1.3), before the text is
        // acknowledged: the ACK it draws must already echo a CE mark.
        explicitCongestionArrives(segment, now: now, io: &io)

        // Seventh and eighth: segment text, then the FIN bit.
        processText(segment, now: now, io: &io)

        // Anything the ACK or window opened up can now go out.
        output(now: now, io: &io)
    }

    // The rare branches of `otherwiseSegmentArrives`, out of line: inlined, their segment copies and
    // calls made the function that every segment runs twice its size.

    /// FreeBSD's tcp_twcheck: "Acknowledge the segment if it has data or is not a duplicate ACK" —
    /// RFC 9293 §3.8.6.3 allows an ACK at any time; the text itself is ignored (§3.10.7.4, seventh),
    /// and only a FIN's retransmission restarts the 2·MSL timeout (eighth). Returns whether it was
    /// (and the segment's processing is over).
    @inline(never)
    private mutating func acknowledgedInTimeWait(_ segment: IncomingSegment, now: Instant, io: inout StackIO) -> Bool {
        let duplicate = segment.payload.readableBytes == 0 && !segment.fin && segment.seq == rcvNxt && segment.ack == sndNxt
        guard !duplicate else { return false }
        io.decision("RFC 9293 §3.8.6.3", "segment in TIME-WAIT acknowledged (as FreeBSD's tcp_twcheck)", connection: tuple, now: now)
        sendAck(now: now, io: &io)
        return true
    }

    /// RFC 9293 §3.10.7.3: the text a simultaneous open's SYN carried, now that the connection is
    /// ESTABLISHED, in sequence before `segment`'s.
    @inline(never)
    private mutating func processTextInSYN(_ segment: IncomingSegment, now: Instant, io: inout StackIO) {
        guard let text = textInSYN else { return }
        var queued = IncomingSegment(header: segment.header, payload: text, ecn: segment.ecn)
        queued.header.sequenceNumber = irs + 1
        queued.syn = false
        queued.fin = false
        textInSYN = nil
        processText(queued, now: now, io: &io)
    }

    /// The fourth check's SYN in a synchronized state: RFC 5961 §4's challenge ACK, or (configured)
    /// RFC 793's reset.
    @inline(never)
    private mutating func synInWindowArrives(now: Instant, io: inout StackIO) {
        if configuration.pointee.resetsOnSYNInWindow {
            // DEVIATION(RFC 5961 §4): configured for RFC 793 §3.9 (FreeBSD's insecure_syn): "If
            // the SYN is in the window it is an error, send a reset, … enter the CLOSED state."
            // The segment passed the acceptability test, so it is in the window.
            io.decision("RFC 793 §3.9", "SYN in the window: connection reset", connection: tuple, now: now)
            let sequence = sndMax
            enterClosed(error: .connectionReset, io: &io, now: now)
            sendReset(sequence: sequence, acknowledging: rcvNxt, now: now, io: &io)
            return
        }
        sendChallengeAck(reason: "SYN in \(state.rfcName)", now: now, io: &io)
    }

    // MARK: RFC 7323 §5.3 — PAWS

    private mutating func passesPAWS(_ segment: IncomingSegment, now: Instant, io: inout StackIO) -> Bool {
        // DEVIATION(RFC 7323 §3.2): a non-RST segment without TSopt on a connection that negotiated
        // timestamps is accepted, not dropped (the RFC's SHOULD), as Linux and FreeBSD do — middleboxes
        // strip options, and dropping would stall the connection for nothing PAWS could catch.
        guard timestampsEnabled, let timestamps = segment.header.options.timestamps else { return true }
        guard !segment.flags.contains(.rst) else { return true }
        // R1: SEG.TSval < TS.Recent means an old duplicate — unless TS.Recent is more than 24 days
        // old (§5.5), in which case it is no longer trusted.
        let isOlder = Int32(bitPattern: timestamps.value &- tsRecent) < 0
        if isOlder {
            if now - tsRecentTime > .hours(24 * 24) {
                tsRecent = timestamps.value
                tsRecentTime = now
                return true
            }
            io.counters.pawsRejected &+= 1
            io.decision("RFC 7323 §5.3", "PAWS: TSval \(timestamps.value) older than TS.Recent \(tsRecent); segment dropped",
                        connection: tuple, now: now)
            // "Send an acknowledgement in reply" — rate-limited when it answers a bare ACK, as for the
            // other unacceptable segments: a TS.Recent that a forged segment pushed ahead makes every
            // ACK of the peer fail PAWS, and two ends answering each other's ACKs never stop (found
            // by the stack fuzzer; Linux rate-limits this reply too, tcp_oow_rate_limited).
            if segment.length == 0 {
                sendAckToInvalidAck(reason: "PAWS", now: now, io: &io)
            } else {
                sendAck(now: now, io: &io)
            }
            return false
        }
        return true
    }

    // MARK: First — check sequence number

    /// The four acceptability cases of RFC 9293 §3.10.7.4, then trimming to the window.
    private mutating func checkSequenceNumber(_ segment: inout IncomingSegment, now: Instant, io: inout StackIO) -> Bool {
        let window = acceptanceWindow
        let length = segment.length
        let acceptable: Bool
        switch (length == 0, window == 0) {
        case (true, true):
            acceptable = segment.seq == rcvNxt
        case (true, false):
            acceptable = segment.seq.isInWindow(start: rcvNxt, length: window)
        case (false, true):
            acceptable = false
        case (false, false):
            acceptable = segment.seq.isInWindow(start: rcvNxt, length: window)
                || (segment.seq + (length - 1)).isInWindow(start: rcvNxt, length: window)
        }
        // RFC 9293 §3.10.7.4: "special allowance should be made to accept valid ACKs, URGs, and RSTs"
        // when the window is zero — a zero-length segment at RCV.NXT was accepted above; a probe
        // carrying data is not, and is answered below with an ACK that repeats the zero window.
        guard acceptable else {
            if segment.flags.contains(.rst) {
                io.counters.droppedResetOutOfWindow &+= 1
                return false
            }
            if case .timeWait = state, configuration.pointee.acknowledgesSegmentsInTimeWait,
               !segment.flags.contains(.ack), !segment.syn {
                // FreeBSD's tcp_twcheck: "Drop the segment if it does not contain an ACK" — before
                // any answer, even to an old FIN. (A SYN keeps RFC 5961 §4's challenge ACK.)
                io.counters.droppedNoAckFlag &+= 1
                return false
            }
            if length > 0 && segment.end.isAtOrBefore(rcvNxt) {
                io.counters.duplicateSegments &+= 1
                // RFC 2883 §4 (1): report the duplicate in a D-SACK block.
                let payloadLength = segment.payload.readableBytes
                if sackEnabled, payloadLength > 0, !segment.syn {
                    pendingDuplicateSACK = SACKBlock(start: segment.seq, end: segment.seq + payloadLength)
                }
            } else {
                io.counters.droppedOutOfWindow &+= 1
            }
            // RFC 9293 §3.10.7.4, eighth, TIME-WAIT: a retransmission of the remote FIN is
            // acknowledged and "restart[s] the 2 MSL timeout" — but, being old, it fails this check.
            if case .timeWait = state, segment.fin, segment.end == rcvNxt {
                enterTimeWait(now: now, io: &io)
            }
            // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> — rate-limited when it answers a bare ACK.
            if length == 0 {
                sendAckToInvalidAck(reason: "ACK out of window (SEG.SEQ \(segment.seq), RCV.NXT \(rcvNxt))", now: now, io: &io)
            } else {
                sendAck(now: now, io: &io)
            }
            // The ACK field of an unacceptable segment still counts in a zero window: the peer's
            // window updates and acknowledgments must get through (RFC 9293 §3.10.7.4).
            if window == 0 && segment.flags.contains(.ack) && !segment.syn && !segment.flags.contains(.rst) {
                var bare = segment
                bare.payload = bare.payload.getSlice(at: bare.payload.readerIndex, length: 0) ?? bare.payload
                bare.fin = false
                _ = acknowledgmentArrives(bare, now: now, io: &io)
                output(now: now, io: &io)
            }
            return false
        }

        // Trim the part before RCV.NXT ("already received") and past the right edge.
        if segment.seq.isBefore(rcvNxt) {
            var overlap = Int(segment.seq.octets(to: rcvNxt))
            if segment.syn {
                segment.syn = false
                overlap -= 1
                segment.seq = segment.seq + 1
            }
            let dataTrim = min(overlap, segment.payload.readableBytes)
            if sackEnabled, dataTrim > 0 {
                // RFC 2883 §4 (1): the part already received is reported in a D-SACK block.
                pendingDuplicateSACK = SACKBlock(start: segment.seq, end: segment.seq + dataTrim)
            }
            segment.payload.moveReaderIndex(forwardBy: dataTrim)
            segment.seq = segment.seq + dataTrim
        }
        let rightEdge = rcvNxt + window
        let dataEnd = segment.seq + segment.payload.readableBytes
        if rightEdge.isBefore(dataEnd) {
            let keep = max(0, segment.payload.readableBytes - Int(rightEdge.octets(to: dataEnd)))
            segment.payload = segment.payload.getSlice(at: segment.payload.readerIndex, length: keep) ?? segment.payload
            segment.fin = false
        }
        // DEVIATION(RFC 9293 §3.10.7.4): a FIN just past the window's last octet is kept, as Linux
        // does — it needs no buffer space, and dropping it would cost the peer a retransmission timeout.
        return true
    }

    // MARK: Second — check the RST bit

    private mutating func resetArrives(_ segment: IncomingSegment, now: Instant, io: inout StackIO) {
        io.counters.resetsReceived &+= 1
        // RFC 5961 §3.2: act only on an RST whose sequence number is exactly RCV.NXT; any other
        // in-window RST gets a challenge ACK.
        // DEVIATION(RFC 5961 §3.2) when configured for RFC 793 §3.9 (FreeBSD's insecure_rst): any
        // RST in the window resets; it passed the acceptability test to get here.
        guard segment.seq == rcvNxt || configuration.pointee.acceptsAnyResetInWindow else {
            sendChallengeAck(reason: "RST at \(segment.seq) is in the window but not RCV.NXT", now: now, io: &io)
            return
        }
        switch state {
        case .synReceived where fastOpened:
            // RFC 7413 §4.2.2: a Fast Open connection was the application's from its SYN (its data
            // delivered, the connection in the accept queue): an RST resets it, as an established one.
            io.counters.establishedResets &+= 1
            io.decision("RFC 7413 §4.2.2", "RST at RCV.NXT in SYN-RECEIVED of a Fast Open connection: connection reset",
                        connection: tuple, now: now)
            enterClosed(error: .connectionReset, io: &io, now: now)
        case .synReceived:
            // Passive opens wait in the listener and never reach here; an active (simultaneous)
            // open is refused.
            io.counters.failedConnectionAttempts &+= 1
            enterClosed(error: .connectionRefused, io: &io, now: now)
        case .established, .finWait1, .finWait2, .closeWait:
            io.counters.establishedResets &+= 1
            io.decision("RFC 9293 §3.10.7.4", "RST at RCV.NXT: connection reset", connection: tuple, now: now)
            enterClosed(error: .connectionReset, io: &io, now: now)
        case .closing, .lastAck:
            enterClosed(error: nil, io: &io, now: now)
        case .timeWait:
            // RFC 1337 §3 (TIME-WAIT assassination, fix F1): ignore RST in TIME-WAIT.
            io.decision("RFC 1337", "RST ignored in TIME-WAIT", connection: tuple, now: now)
        case .closed, .listen, .synSent:
            preconditionFailure("resetArrives in \(state)")
        }
    }

    /// RFC 5961 §3.2 / §4 / §5: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, so a blind attacker learns nothing
    /// and a genuine peer that lost state answers with a valid RST.
    mutating func sendChallengeAck(reason: String, now: Instant, io: inout StackIO) {
        guard io.challengeAcks.allow(now: now) else {
            io.counters.challengeAcksSuppressed &+= 1
            io.decision("RFC 5961 §7", "challenge ACK rate limit reached: \(reason), no ACK", connection: tuple, now: now)
            return
        }
        io.counters.challengeAcksSent &+= 1
        io.decision("RFC 5961", "challenge ACK: \(reason)", connection: tuple, now: now)
        sendAck(now: now, io: &io)
    }
}

extension TCPConnection {
    /// The ACK that answers a bare ACK failing the sequence or acknowledgment check, sent within the
    /// RFC 5961 §7 limit. Two ends that disagree about the sequence space (one lost state, or a blind
    /// attacker desynchronised them) would otherwise answer each other's ACKs without end — the ACK
    /// exchange RFC 5961 §10 warns of, which the fuzzer found between two of our stacks. Linux does
    /// the same (tcp_oow_rate_limited). Segments with data, SYN or FIN are always answered: their
    /// sender needs the ACK to know they were not taken.
    mutating func sendAckToInvalidAck(reason: String, now: Instant, io: inout StackIO) {
        guard io.challengeAcks.allow(now: now) else {
            io.counters.invalidAckRepliesSuppressed &+= 1
            io.decision("RFC 5961 §7", "ACK rate limit reached: \(reason), no ACK", connection: tuple, now: now)
            return
        }
        sendAck(now: now, io: &io)
    }
}

extension TimeAmount {
    static func hours(_ count: Int64) -> TimeAmount { .seconds(count * 3600) }
}
