import NIOCore
import TCPIPWire

/// RFC 9293 §3.10.7.4, fifth: check the ACK field — and, with it, RTT measurement (RFC 6298,
/// RFC 7323 §4) and the SACK scoreboard; loss recovery follows in LossRecovery.swift.
extension TCPConnection {
    /// - Returns: whether processing continues to the sixth step.
    mutating func acknowledgmentArrives(_ segment: IncomingSegment, now: Instant, io: inout StackIO) -> Bool {
        if state == .synReceived {
            // SYN-RECEIVED: if SND.UNA < SEG.ACK =< SND.NXT, enter ESTABLISHED.
            guard segment.ack.isBetween(after: sndUna, atOrBefore: sndNxt) else {
                // <SEQ=SEG.ACK><CTL=RST>
                io.counters.droppedUnacceptableAck &+= 1
                sendReset(sequence: segment.ack, now: now, io: &io)
                return false
            }
            // Data a Fast Open server sent in SYN-RECEIVED (RFC 7413 §4.2.2) is acknowledged below,
            // as any data: here only the SYN.
            acknowledgeSYN(ack: sndMax == iss + 1 ? segment.ack : iss + 1, now: now, io: &io)
            updateSendWindow(segment, force: true)
            state = .established
            io.decision("RFC 9293 §3.10.7.4", "ACK of our SYN: ESTABLISHED", connection: tuple, now: now)
            post(.established, io: &io)
            if let echo = segment.header.options.timestamps?.echoReply, timestampsEnabled, echo != 0 {
                rtt.addSample(.milliseconds(Int64(timestampClock(now) &- echo)))
            } else if let timed = rttTimedSequence, timed.isAtOrBefore(segment.ack) {
                // RFC 6298 §3: the ACK of a SYN-ACK sent once (a passive open sets it up).
                rtt.addSample(now - rttTimedAt)
                rttTimedSequence = nil
            }
            // Fall through: the ACK may carry data, a FIN, or (simultaneous open) more.
        }

        // RFC 5961 §5.2: acceptable if (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT.
        let oldestAcceptable = sndUna - max(maxSndWnd, 1)
        if segment.ack.isAfter(sndMax) {
            // "If the ACK acks something not yet sent (SEG.ACK > SND.NXT), then send an ACK, drop the segment."
            // (SND.NXT may have been pulled back by a retransmission timeout; what was sent before still counts.)
            io.counters.droppedUnacceptableAck &+= 1
            if segment.length == 0 {
                sendAckToInvalidAck(reason: "ACK \(segment.ack) beyond SND.NXT", now: now, io: &io)
            } else {
                sendAck(now: now, io: &io)
            }
            return false
        }
        if segment.ack.isBefore(oldestAcceptable) {
            io.counters.droppedUnacceptableAck &+= 1
            sendChallengeAck(reason: "ACK \(segment.ack) is older than SND.UNA - MAX.SND.WND", now: now, io: &io)
            return false
        }

        countExplicitCongestionEcho(segment, io: &io)
        let previousWindow = sndWnd
        let previousUna = sndUna
        let flightBefore = flightSize
        let duplicateAcksBefore = duplicateAcks
        rack.acknowledgmentArrives()
        // RFC 6675 §4 Update(): the SACK blocks first, so that what the cumulative ACK then covers is
        // known to have been SACKed before (RFC 6937 DeliveredData).
        let sack = sackEnabled && state != .synReceived
            ? sackOptionArrives(segment, now: now, io: &io) : SACKOutcome()
        var previouslySacked = 0
        var isDuplicate = false
        if segment.ack.isAfter(sndUna) {
            previouslySacked = newDataAcknowledged(segment, now: now, io: &io)
        } else if segment.ack == sndUna {
            isDuplicate = duplicateAckCandidate(segment, previousWindow: previousWindow, now: now, io: &io)
        }
        if state.sendsData {
            recoveryOnAcknowledgment(
                segment, acknowledged: Int(previousUna.octets(to: sndUna)), previouslySacked: previouslySacked,
                sack: sack, isDuplicate: isDuplicate, duplicateAcksBefore: duplicateAcksBefore,
                flightBefore: flightBefore, now: now, io: &io)
        }

        // RFC 9293 §3.10.7.4: update the send window if SND.UNA =< SEG.ACK =< SND.NXT and the
        // segment is newer than the last window update (SND.WL1 < SEG.SEQ, or equal with SND.WL2 =< SEG.ACK).
        if segment.ack.isAtOrAfter(sndUna) {
            updateSendWindow(segment, force: false)
        }
        if sndWnd > 0 && previousWindow == 0 {
            io.decision("RFC 9293 §3.8.6.1", "peer window reopened to \(sndWnd) bytes", connection: tuple, now: now)
            persistDeadline = nil
            persistBackoff = 0
            if finSequence.map({ !$0.isBefore(sndNxt) }) ?? true, flightSize == 1 {
                // Only a zero-window probe's byte is outstanding, and the peer probably dropped it:
                // send it again with what follows instead of waiting a retransmission timeout.
                // The peer's ACK says it never took the byte, so resending it is not a retransmission
                // (Linux and tshark count none for probes): SND.MAX goes back too.
                sndNxt = sndUna
                sndMax = sndUna
                scoreboard.removeAll(from: sndUna)
            }
            if flightSize > 0 { armRetransmissionTimer(now: now) }
        }

        // The state-specific parts of the fifth step.
        let finAcknowledged = finSequence.map { $0.isBefore(sndUna) } ?? false
        switch state {
        case .finWait1:
            if finAcknowledged {
                state = .finWait2
                io.decision("RFC 9293 §3.10.7.4", "our FIN is acknowledged: FIN-WAIT-2", connection: tuple, now: now)
            }
        case .closing:
            // "If the ACK acknowledges our FIN, then enter the TIME-WAIT state; otherwise, ignore the
            // segment" — its text, that is: data queued before our FIN may still need sending.
            if finAcknowledged {
                enterTimeWait(now: now, io: &io)
                return false
            }
        case .lastAck:
            if finAcknowledged {
                io.decision("RFC 9293 §3.10.7.4", "our FIN is acknowledged in LAST-ACK: CLOSED", connection: tuple, now: now)
                enterClosed(error: nil, io: &io, now: now)
                return false
            }
        case .timeWait:
            // Only a retransmitted FIN can arrive here; it is acknowledged in the eighth step.
            break
        case .established, .finWait2, .closeWait, .synReceived:
            break
        case .closed, .listen, .synSent:
            preconditionFailure("acknowledgmentArrives in \(state)")
        }
        return true
    }

    /// SND.UNA < SEG.ACK =< SND.NXT: "set SND.UNA <- SEG.ACK", release the acknowledged bytes, measure.
    /// - Returns: octets of what was acknowledged that had been SACKed before.
    private mutating func newDataAcknowledged(_ segment: IncomingSegment, now: Instant, io: inout StackIO) -> Int {
        // Bytes of the send buffer covered: the SYN and FIN take sequence space but no buffer.
        let bufferStart = sendBufferStart
        let dataAcked = segment.ack.isAfter(bufferStart)
            ? min(sendBuffer.count, Int(bufferStart.octets(to: segment.ack))) : 0
        let hadFullSendBuffer = sendBuffer.freeSpace == 0
        if dataAcked > 0 { sendBuffer.removeFirst(dataAcked, pool: &io.packedChunks) }
        bytesAcked &+= UInt64(dataAcked)
        sndUna = segment.ack
        if sndNxt.isBefore(sndUna) {
            // An ACK for data sent before a retransmission timeout pulled SND.NXT back.
            sndNxt = sndUna
        }
        duplicateAcks = 0
        consecutiveTimeouts = 0
        // Something got through: the soft error is history (as Linux clears sk_err_soft on an ACK).
        softError = nil
        if path.search != nil { mtuProbeAcknowledged(now: now, io: &io) }

        // RFC 8985 §6.2 steps 2–3 for what the cumulative ACK delivers.
        var rack = self.rack
        let echo = transmissionEcho(segment)
        let minimumRTT = rtt.minimumRTT
        let previouslySacked = scoreboard.acknowledge(upTo: sndUna) { delivered in
            rack.delivered(delivered, now: now, minimumRTT: minimumRTT, acknowledgesRetransmission: echo.acknowledgesLatest(delivered))
        }
        self.rack = rack

        // RTT: RFC 7323 §4.1 with timestamps (every ACK), else RFC 6298 §3 with Karn's rule.
        var rttSample: TimeAmount?
        if timestampsEnabled, let echo = segment.header.options.timestamps?.echoReply, echo != 0 {
            let milliseconds = Int64(Int32(bitPattern: timestampClock(now) &- echo))
            if milliseconds >= 0 {
                rttSample = .milliseconds(max(1, milliseconds))
            }
        } else if let timed = rttTimedSequence, timed.isAtOrBefore(segment.ack) {
            rttSample = now - rttTimedAt
            rttTimedSequence = nil
        }
        if let rttSample {
            rtt.addSample(rttSample)
            lossProbe.rttSampledSinceProbe = true
        }
        if configuration.pointee.hyStart && congestionControlStarted {
            watchSlowStart(rttSample: rttSample, now: now, io: &io)
        }
        // Karn (RFC 6298 §3, §5): the backed-off RTO stays until a new measurement (which clears
        // the backoff in `addSample`); the ACK of a retransmission alone must not collapse it.

        // RFC 6298 §5 (5.2) stop the timer when everything is acknowledged, (5.3) else restart it.
        retransmissionDeadline = nil
        if flightSize > 0 { armRetransmissionTimer(now: now) } else { lossProbe.deadline = nil }

        if dataAcked > 0 { adjustSendBuffer(now: now, io: &io) }
        if dataAcked > 0 && (hadFullSendBuffer || sendBuffer.freeSpace > 0) && state.acceptsUserData {
            post(.writable, io: &io)
        }
        return previouslySacked
    }

    /// HyStart++ (RFC 9406 §4.2): the algorithm counts the rounds and samples; the connection traces
    /// what it decided.
    private mutating func watchSlowStart(rttSample: TimeAmount?, now: Instant, io: inout StackIO) {
        guard let transition = congestion.roundTripSampled(acknowledged: sndUna, highestSent: sndMax, rtt: rttSample)
        else { return }
        switch transition {
        case .enteredConservativeSlowStart(let lastRound, let currentRound, let threshold):
            io.decision(
                "RFC 9406 §4.2",
                "round's minimum RTT \(currentRound.nanoseconds / 1000) µs ≥ last round's \(lastRound.nanoseconds / 1000) µs + \(threshold.nanoseconds / 1000) µs: Conservative Slow Start, cwnd \(congestion.congestionWindow)",
                connection: tuple, now: now)
        case .resumedSlowStart(let currentRound, let baseline):
            io.decision(
                "RFC 9406 §4.2",
                "round's minimum RTT \(currentRound.nanoseconds / 1000) µs < CSS baseline \(baseline.nanoseconds / 1000) µs: spurious exit, slow start again",
                connection: tuple, now: now)
        case .leftSlowStart:
            io.decision(
                "RFC 9406 §4.2",
                "\(HyStart.conservativeRounds) rounds of Conservative Slow Start: congestion avoidance, ssthresh = cwnd \(congestion.congestionWindow)",
                connection: tuple, now: now)
        }
    }

    /// RFC 5681 §2 "DUPLICATE ACKNOWLEDGMENT": outstanding data, no payload, no SYN/FIN,
    /// SEG.ACK = SND.UNA, and the same window. Counts it; `recoveryOnAcknowledgment` acts on the count.
    private mutating func duplicateAckCandidate(
        _ segment: IncomingSegment, previousWindow: UInt32, now: Instant, io: inout StackIO
    ) -> Bool {
        let window = UInt32(segment.header.window) << UInt32(sndWindowShift)
        guard flightSize > 0, segment.payload.readableBytes == 0, !segment.fin,
              window == previousWindow, window > 0, !finSentAlone
        else {
            return false
        }
        duplicateAcks += 1
        io.counters.duplicateAcksReceived &+= 1
        return true
    }

    /// Only our FIN is outstanding: duplicate ACKs say nothing about data loss then.
    private var finSentAlone: Bool {
        guard let finSequence else { return false }
        return finSent && sndUna == finSequence
    }

    /// RFC 9293 §3.10.7.4: SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <- SEG.ACK, when the
    /// segment is not older than the last update.
    mutating func updateSendWindow(_ segment: IncomingSegment, force: Bool) {
        guard force || sndWl1.isBefore(segment.seq) || (sndWl1 == segment.seq && sndWl2.isAtOrBefore(segment.ack))
        else { return }
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        let shift = segment.syn ? 0 : UInt32(sndWindowShift)
        sndWnd = UInt32(segment.header.window) << shift
        sndWl1 = segment.seq
        sndWl2 = segment.ack
        maxSndWnd = max(maxSndWnd, sndWnd)
    }

    /// TIME-WAIT for 2·MSL (RFC 9293 §3.10.7.4; MUST-13 allows a shorter wait only with timestamps).
    mutating func enterTimeWait(now: Instant, io: inout StackIO) {
        let until = now + .nanoseconds(2 * configuration.pointee.maximumSegmentLifetime.nanoseconds)
        state = .timeWait(until: until)
        retransmissionDeadline = nil
        persistDeadline = nil
        reorderingDeadline = nil
        lossProbe.deadline = nil
        scoreboard.removeAll()
        sendBuffer.removeAll()
        io.decision("RFC 9293 §3.10.7.4", "TIME-WAIT for 2·MSL (\(2 * configuration.pointee.maximumSegmentLifetime.milliseconds) ms)",
                    connection: tuple, now: now)
        post(.readable, io: &io)
    }
}
