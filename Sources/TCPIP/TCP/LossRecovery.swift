import NIOCore
import TCPIPWire

/// Loss detection and recovery, on top of the fifth step of RFC 9293 §3.10.7.4:
///
/// - SACK (RFC 2018) into the scoreboard, D-SACK (RFC 2883) out of it;
/// - loss detection by RACK (RFC 8985) where SACK is negotiated, by RFC 6675's IsLost when RACK is off,
///   by three duplicate ACKs (RFC 5681 §3.2) without SACK;
/// - fast recovery with PRR (RFC 6937) pacing, RFC 6675 NextSeg choosing what to send, RFC 6582's
///   `recover` bounding the episode, and limited transmit (RFC 3042) through pipe;
/// - tail loss probes (RFC 8985 §7);
/// - undo of spurious episodes: Eifel with timestamps (RFC 3522), D-SACK (RFC 2883 §4.1, as Linux).
extension TCPConnection {
    /// RFC 6675 §2 DupThresh.
    static let duplicateThreshold = 3

    /// RACK-TLP runs where SACK was negotiated (RFC 8985 §3.1 needs SACK for its scoreboard).
    @inline(__always)
    var rackEnabled: Bool { sackEnabled && configuration.pointee.recentAcknowledgment }

    /// RFC 6675 §4 SetPipe: octets the sender thinks are in the network.
    ///
    /// Without SACK nothing tells which segments left the network, only that some did: each duplicate
    /// ACK stands for one (as Linux's Reno "SACK emulation"), which is what gives limited transmit
    /// (RFC 3042) its two segments and PRR its DeliveredData (RFC 6937 §3).
    ///
    /// Not inlined: inlined into `output`'s loop, it made the compiler copy the whole TCB (1.2 KB,
    /// with a retain of each reference in it) at the top of every iteration to read it.
    @inline(never)
    var pipe: Int {
        let base = scoreboard.pipe(flightSize: flightSize)
        guard !sackEnabled, duplicateAcks > 0, inFastRecovery || scoreboard.lostBytes == 0 else { return base }
        let leftNetwork = min(duplicateAcks, max(0, scoreboard.count - 1)) * sendMSS
        return max(0, base - leftNetwork)
    }

    /// What the SACK option of one ACK said.
    struct SACKOutcome {
        /// Octets newly SACKed.
        var newlySacked = 0
        /// The D-SACK block, if the first block was one (RFC 2883 §4).
        var duplicate: SACKBlock?
        /// The ACK carried any SACK block.
        var present = false
    }

    /// RFC 6675 §4 Update() for the SACK blocks of an acceptable ACK; RFC 2883 §4 tells a D-SACK
    /// block from the others. Blocks outside (SND.UNA, SND.MAX] are ignored and counted.
    mutating func sackOptionArrives(_ segment: IncomingSegment, now: Instant, io: inout StackIO) -> SACKOutcome {
        let blocks = segment.header.options.sackBlocks
        var outcome = SACKOutcome()
        guard !blocks.isEmpty else { return outcome }
        outcome.present = true
        io.counters.sackBlocksReceived &+= UInt64(blocks.count)
        var rack = self.rack
        let echo = transmissionEcho(segment)
        let minimumRTT = rtt.minimumRTT
        let lowestOffset = max(0, Int(sndUna.distance(to: segment.ack)))
        let outstanding = Int(sndUna.octets(to: sndMax))
        var clipped = SACKBlocks()
        for (position, block) in blocks.enumerated() {
            // Offsets from SND.UNA (each within ±2^31, so the arithmetic is exact).
            let startOffset = Int(sndUna.distance(to: block.start))
            let endOffset = Int(sndUna.distance(to: block.end))
            guard startOffset < endOffset else {
                io.counters.sackBlocksInvalid &+= 1
                continue
            }
            // RFC 2883 §4: the first block is a D-SACK if the cumulative ACK covers it, or if the
            // second block contains it.
            if position == 0 {
                let covered = block.end.isAtOrBefore(segment.ack)
                let inSecond = blocks.count > 1 && blocks[1].start.isAtOrBefore(block.start)
                    && block.end.isAtOrBefore(blocks[1].end)
                if covered || inSecond {
                    outcome.duplicate = block
                    io.counters.dsackBlocksReceived &+= 1
                    dsacksReceived &+= 1
                    continue
                }
            }
            // Clip to what is outstanding; a block entirely outside it says nothing (RFC 2018 §8 / RFC 6675 §4).
            let start = max(startOffset, lowestOffset)
            let end = min(endOffset, outstanding)
            guard start < end else {
                io.counters.sackBlocksInvalid &+= 1
                continue
            }
            // Kept in ascending order (the option lists the most recent first), so that RACK sees the
            // newly SACKed segments "in ascending order of Segment.end_seq" (RFC 8985 §6.2 step 3) and
            // does not take a lower block for reordering.
            var index = clipped.count
            clipped.append(SACKBlock(start: sndUna + start, end: sndUna + end))
            while index > 0, sndUna.distance(to: clipped[index - 1].start) > Int32(start) {
                let lower = clipped[index - 1]
                clipped[index - 1] = clipped[index]
                clipped[index] = lower
                index -= 1
            }
        }
        for block in clipped {
            outcome.newlySacked += scoreboard.sack(block) { delivered in
                rack.delivered(delivered, now: now, minimumRTT: minimumRTT, acknowledgesRetransmission: echo.acknowledgesLatest(delivered))
            }
        }
        self.rack = rack
        if let duplicate = outcome.duplicate {
            duplicateSACKArrives(duplicate, now: now, io: &io)
        }
        return outcome
    }

    /// The ACK's TSecr, for RFC 8985 §6.2 step 2 condition 1.
    func transmissionEcho(_ segment: IncomingSegment) -> TransmissionEcho {
        TransmissionEcho(
            echoReply: timestampsEnabled ? segment.header.options.timestamps?.echoReply : nil,
            timestampOffset: timestampOffset)
    }

    /// A D-SACK: the receiver got something twice. It widens RACK's reordering window (RFC 8985 §6.2
    /// step 4), may close a TLP episode (§7.4.2 case 1), and counts towards undoing the episode whose
    /// retransmissions it reports (RFC 2883 §4.1).
    private mutating func duplicateSACKArrives(_ block: SACKBlock, now: Instant, io: inout StackIO) {
        rack.dsackReceived(sndUna: sndUna, sndNxt: sndMax)
        // DEVIATION(RFC 8985 §6.2 step 4): a D-SACK also counts as reordering seen, as Linux treats
        // it. Otherwise, with three segments SACKed, reo_wnd stays zero whatever the D-SACKs say, and
        // the multiplier they raise never applies: a path whose ACKs (and so SACK blocks) are lost keeps
        // retransmitting what arrived.
        rack.noteReordering()
        if let end = lossProbe.end, lossProbe.isRetransmission, block.end == end {
            lossProbe.end = nil
        }
        guard var episode, episode.retransmissions > 0,
              block.start.isAtOrAfter(episode.lowWater), block.end.isAtOrBefore(episode.highWater),
              block.start.isBefore(block.end)
        else { return }
        episode.duplicateRetransmissions += 1
        self.episode = episode
        if episode.duplicateRetransmissions >= episode.retransmissions {
            undoEpisode(reason: "RFC 2883 §4.1", "every retransmission of the episode was D-SACKed", now: now, io: &io)
        }
    }

    /// Everything after the cumulative ACK and the SACK blocks have been taken in: spurious checks,
    /// loss detection, and the fast-recovery state machine.
    ///
    /// - Parameters:
    ///   - acknowledged: octets SND.UNA advanced by.
    ///   - previouslySacked: of those, octets that had been SACKed before.
    ///   - isDuplicate: an RFC 5681 §2 duplicate ACK.
    mutating func recoveryOnAcknowledgment(
        _ segment: IncomingSegment, acknowledged: Int, previouslySacked: Int, sack: SACKOutcome,
        isDuplicate: Bool, duplicateAcksBefore: Int, flightBefore: Int, now: Instant, io: inout StackIO
    ) {
        if acknowledged > 0 { checkForSpuriousRetransmission(segment, now: now, io: &io) }
        if var episode, let closesAt = episode.closesAt, sndUna.isAtOrAfter(closesAt) {
            episode.closesAt = nil
            self.episode = nil
        }
        if inTimeoutRecovery, sndUna.isAfter(recover) {
            inTimeoutRecovery = false
            rack.recoveryEnded()
            episode?.closesAt = sndMax
        }
        tailLossProbeAcknowledgment(segment, isDuplicate: isDuplicate, sack: sack, now: now, io: &io)
        // RFC 8985 §7.2: with segments SACKed the reordering timer, not the PTO, watches the tail.
        if scoreboard.sackedSegments > 0 { lossProbe.deadline = nil }

        // Loss detection.
        if rackEnabled {
            _ = detectLossesRACK(now: now)
        } else if sackEnabled {
            // RFC 6675 §4 IsLost.
            _ = scoreboard.markLostByDuplicateThreshold(Self.duplicateThreshold, smss: sendMSS)
        }

        // RFC 6937 §3 DeliveredData: the change in SND.UNA plus the change in SACKed octets; without
        // SACK, one SMSS per duplicate ACK and, on a later ACK, the change in SND.UNA less those.
        var deliveredData = acknowledged + sack.newlySacked - previouslySacked
        if !sackEnabled {
            if isDuplicate {
                deliveredData = sendMSS
            } else if acknowledged > 0 {
                deliveredData = max(0, acknowledged - duplicateAcksBefore * sendMSS)
            }
        }

        if inFastRecovery {
            if sndUna.isAfter(recover) {
                endFastRecovery(now: now, io: &io)
                return
            }
            if !sackEnabled && acknowledged > 0 {
                // RFC 6582 §3.2 step 5: a partial ACK; retransmit the first unacknowledged segment.
                scoreboard.markFirstLost()
                io.decision("RFC 6582 §3.2", "partial ACK: retransmitting \(sndUna)", connection: tuple, now: now)
                retransmitNextLost(now: now, io: &io)
            }
            let inFlight = pipe
            prr?.acknowledgment(deliveredData: deliveredData, pipe: inFlight)
            return
        }

        // RFC 6675 §5: DupAcks >= DupThresh, or loss marked (IsLost(HighACK+1), or RACK); without SACK,
        // RFC 5681 §3.2 step 2: the third duplicate ACK. RFC 6582 §3.2 step 2 (and RFC 6675 §5 (4)):
        // only when the ACK covers more than `recover`, so one loss event is not answered twice.
        let lossSignalled: Bool
        if rackEnabled {
            lossSignalled = scoreboard.hasLostToRetransmit
        } else if sackEnabled {
            lossSignalled = scoreboard.hasLostToRetransmit || (isDuplicate && duplicateAcks >= Self.duplicateThreshold)
        } else {
            lossSignalled = isDuplicate && duplicateAcks == Self.duplicateThreshold
        }
        if lossSignalled && !inTimeoutRecovery && (segment.ack.isAfter(recover) || recover == iss) {
            enterFastRecovery(deliveredData: deliveredData, now: now, io: &io)
            return
        }
        // RFC 3168 §6.1.2: "The sending TCP SHOULD NOT increase the congestion window in response to
        // the receipt of an ECN-Echo ACK packet."
        if explicitCongestionEchoArrives(segment, now: now, io: &io) {
            if acknowledged > 0 { scheduleLossProbe(now: now) }
            return
        }
        if acknowledged > 0 {
            var sample = AcknowledgmentSample(
                bytesAcknowledged: acknowledged, flightSize: flightBefore, now: now,
                smoothedRTT: rtt.smoothedRTT, minimumRTT: rtt.minimumRTT)
            sample.deliveredData = deliveredData
            // The pacing timer is armed only while `output` holds something to send for it
            // (Pacing.swift); the peer's window must have had room for it too.
            sample.heldByPacing = pacingTimerArmed && unsentBytes > 0 && Int(sndWnd) > flightBefore
            // Once our FIN is acknowledged nothing more will be sent, and cwnd no longer matters:
            // an algorithm not started yet is not started for it.
            if congestionControlStarted || !(finSent && sndUna == sndMax) {
                startCongestionControl()
                congestion.acknowledged(sample)
            }
            scheduleLossProbe(now: now)
        }
    }

    /// RFC 6675 §5 (4.1)–(4.3), RFC 6937 §3 initialisation, RFC 8985 §7.1 TLP_init.
    mutating func enterFastRecovery(deliveredData: Int, now: Instant, io: inout StackIO) {
        let flight = flightSize
        beginEpisode(.loss, now: now, io: &io)
        inFastRecovery = true
        fastRecoveries &+= 1
        // (4.1) RecoveryPoint = HighData.
        recover = sndMax - 1
        lossProbe = TailLossProbe()
        if !scoreboard.hasLostToRetransmit {
            // (4.3): the first segment is presumed dropped (three duplicate ACKs, no SACK verdict yet).
            scoreboard.markFirstLost()
        }
        prr = ProportionalRateReduction(
            slowStartThreshold: congestion.slowStartThreshold, recoverFS: flight, mss: sendMSS)
        let inFlight = pipe
        prr?.acknowledgment(deliveredData: deliveredData, pipe: inFlight)
        io.counters.fastRetransmits &+= 1
        io.decision(
            sackEnabled ? "RFC 6675 §5" : "RFC 5681 §3.2",
            "loss detected: fast retransmit of \(sndUna), ssthresh \(congestion.slowStartThreshold), pipe \(pipe)",
            connection: tuple, now: now)
        // The fast retransmit goes whatever PRR says (RFC 6937 §3: prr_out is zero).
        retransmitNextLost(now: now, io: &io)
    }

    /// RFC 6675 §5: the ACK covering RecoveryPoint ends recovery; RFC 6937 §3.1: cwnd = ssthresh.
    private mutating func endFastRecovery(now: Instant, io: inout StackIO) {
        inFastRecovery = false
        prr = nil
        startCongestionControl()
        congestion.recoveryEnded(now: now)
        rack.recoveryEnded()
        episode?.closesAt = sndMax
        io.decision(
            sackEnabled ? "RFC 6675 §5" : "RFC 6582 §3.2",
            "full ACK: leaving fast recovery, cwnd \(congestion.congestionWindow)", connection: tuple, now: now)
    }

    /// Starts (or continues) a loss episode and tells the algorithm.
    mutating func beginEpisode(_ kind: CongestionEvent.Kind, now: Instant, io: inout StackIO) {
        if path.search != nil { mtuProbeLost(now: now, io: &io) }
        congestionWindowReduced()
        let starts = episode == nil || episode?.closesAt != nil
        if starts {
            episode = RecoveryEpisode(lowWater: sndUna, highWater: sndMax, kind: kind)
        }
        startCongestionControl()
        // RFC 5681 §3.2 step 2: ssthresh "no more than" equation (4), data sent by limited
        // transmit not counted. DEVIATION(RFC 5681 §3.1 eq. (4)): a loss found by ACKs passes
        // min(FlightSize, cwnd), not FlightSize alone, because SND.NXT − SND.UNA also counts
        // limited transmit's segments and what the receiver holds out of order behind a hole. A
        // loss found inside an episode (a lost retransmission) comes while SND.UNA still waits at
        // the hole and SND.NXT has moved on by up to the peer's out-of-order queue: with a 16 MiB
        // queue, FlightSize reached 2 MiB on a path that holds 250 kB, ssthresh then 1.4 MiB, and
        // each recovery ended in a window that overflowed the queue again (`tcpip simulate`
        // 100 Mbit/s × 10 ms: 32,013 retransmissions for 34,530 segments). NewReno halves this;
        // CUBIC takes its own cwnd for a loss, as Linux's (RFC 9438 §4.6, see `Cubic`), never more
        // than cwnd either. A timeout keeps FlightSize: cwnd is already one segment in a repeated one.
        let outstanding = kind == .retransmissionTimeout ? flightSize : min(flightSize, congestion.congestionWindow)
        congestion.congestionEvent(CongestionEvent(kind: kind, flightSize: outstanding, now: now, startsEpisode: starts))
    }

    // MARK: Retransmitting

    /// RFC 6675 §5 (C.1) with NextSeg rule (1): sends the lowest lost segment not yet retransmitted.
    /// - Returns: whether a segment went out.
    @discardableResult
    mutating func retransmitNextLost(now: Instant, io: inout StackIO) -> Bool {
        let payloadRoom = maximumSegmentSize - segmentOptionsLength(now: now)
        guard let next = scoreboard.nextLostSegment(maximumLength: max(1, payloadRoom)) else { return false }
        return sendRange(from: next.start, to: next.end, now: now, io: &io)
    }

    /// Sends `start ..< end` again from the send buffer (a FIN included if the range ends past it).
    @discardableResult
    mutating func sendRange(from start: SequenceNumber, to end: SequenceNumber, now: Instant, io: inout StackIO) -> Bool {
        let bufferStart = sendBufferStart
        guard bufferStart.isAtOrBefore(start), start.isBefore(end) else { return false }
        var length = Int(start.octets(to: end))
        var flags: TCPFlags = [.ack]
        if let finSequence, finSent, end == finSequence + 1 {
            flags.insert(.fin)
            length -= 1
        }
        let offset = Int(bufferStart.octets(to: start))
        guard offset + length <= sendBuffer.count else { return false }
        if length > 0 && offset + length == sendBuffer.count { flags.insert(.psh) }
        // At most a segment at a time (RFC 9293 §3.7.1): at the scoreboard's bound
        // (`Scoreboard.isFull`: small segments in a large window) an entry spans several segments,
        // and one datagram the size of it would not fit the path.
        let room = max(1, maximumSegmentSize - segmentOptionsLength(now: now))
        var sent = 0
        repeat {
            let piece = min(length - sent, room)
            let last = sent + piece == length
            sendSegment(flags: last ? flags : [.ack], sequence: start + sent, payloadOffset: offset + sent,
                        payloadLength: piece, now: now, io: &io)
            retransmittedSegments &+= 1
            io.counters.segmentsRetransmitted &+= 1
            sent += piece
        } while sent < length
        // Karn (RFC 6298 §3): the segment being timed may be this one.
        rttTimedSequence = nil
        if var episode {
            episode.retransmissions += 1
            if episode.firstRetransmissionTSval == nil, timestampsEnabled {
                episode.firstRetransmissionTSval = timestampClock(now)
                episode.firstRetransmissionEnd = start + max(length, 1)
            }
            self.episode = episode
        }
        if start == sndUna {
            // As Linux does: the timer restarts when the segment at SND.UNA is sent again. Left running
            // from the last ACK it would expire one RTO after that ACK — barely after one RTT when RTTVAR
            // is small — before the retransmission's ACK can return: a spurious timeout per recovery.
            retransmissionDeadline = now + rtt.retransmissionTimeout
        } else {
            armRetransmissionTimer(now: now)
        }
        return true
    }

    // MARK: RACK (RFC 8985 §6)

    /// §6.2 step 5 RACK_detect_loss_and_arm_timer. Returns the octets newly marked lost.
    mutating func detectLossesRACK(now: Instant) -> Int {
        guard let sentAt = rack.sentAt else { return 0 }
        let window = rack.reorderingWindow(
            inRecovery: inFastRecovery || inTimeoutRecovery, sackedSegments: scoreboard.sackedSegments,
            minimumRTT: rtt.minimumRTT ?? rack.rtt, smoothedRTT: rtt.smoothedRTT)
        let (newlyLost, timeout) = scoreboard.detectLossesRACK(
            rackSentAt: sentAt, rackEnd: rack.end, rtt: rack.rtt, reorderingWindow: window, now: now)
        reorderingDeadline = timeout.map { now + $0 }
        if newlyLost > 0 { lostSegmentsDetected &+= 1 }
        return newlyLost
    }

    /// The RACK reordering timer (§6.2 step 5): the window has passed for segments sent before the
    /// RACK segment.
    mutating func reorderingTimerFired(now: Instant, io: inout StackIO) {
        guard detectLossesRACK(now: now) > 0 else { return }
        io.decision("RFC 8985 §6.2", "reordering window passed: segments marked lost", connection: tuple, now: now)
        if !inFastRecovery && !inTimeoutRecovery && (sndUna.isAfter(recover) || recover == iss) {
            enterFastRecovery(deliveredData: 0, now: now, io: &io)
        }
        output(now: now, io: &io)
    }

    // MARK: TLP (RFC 8985 §7)

    /// §7.2: (re)starts the PTO after new data was sent or SND.UNA advanced, unless recovery, SACKed
    /// segments or an unanswered probe make it moot.
    mutating func scheduleLossProbe(now: Instant) {
        guard rackEnabled, flightSize > 0, !inFastRecovery, !inTimeoutRecovery, scoreboard.sackedSegments == 0,
              lossProbe.end == nil, state.sendsData
        else {
            lossProbe.deadline = nil
            return
        }
        var timeout: TimeAmount
        if let srtt = rtt.smoothedRTT {
            timeout = .nanoseconds(2 * srtt.nanoseconds)
            timeout = timeout + (flightSize <= sendMSS ? TailLossProbe.maximumAckDelay : configuration.pointee.lossProbeSlack)
        } else {
            timeout = .seconds(1)
        }
        var deadline = now + timeout
        if let rto = retransmissionDeadline, rto < deadline { deadline = rto }
        lossProbe.deadline = deadline
    }

    /// §7.3 TLP_send_probe.
    mutating func lossProbeFired(now: Instant, io: inout StackIO) {
        guard flightSize > 0, state.sendsData else { return }
        let moot = inFastRecovery || inTimeoutRecovery || scoreboard.sackedSegments > 0
        if !moot && lossProbe.end == nil && lossProbe.rttSampledSinceProbe {
            let before = sndMax
            if unsentBytes > 0 {
                output(now: now, io: &io, probe: true)
            }
            if sndMax == before, let last = scoreboard.last {
                // No new data could go: retransmit the highest-sequence segment sent.
                let payloadRoom = maximumSegmentSize - segmentOptionsLength(now: now)
                let start = last.length > payloadRoom ? last.end - UInt32(max(1, payloadRoom)) : last.start
                if sendRange(from: start, to: last.end, now: now, io: &io) {
                    lossProbe.isRetransmission = true
                }
            } else {
                lossProbe.isRetransmission = false
            }
            if sndMax != before || lossProbe.isRetransmission {
                lossProbe.end = sndMax
                lossProbe.rttSampledSinceProbe = false
                tailLossProbes &+= 1
                io.counters.tailLossProbes &+= 1
                io.decision("RFC 8985 §7.3", "PTO: tail loss probe\(lossProbe.isRetransmission ? " (retransmission)" : ""), end \(sndMax)",
                            connection: tuple, now: now)
            }
        }
        // "the sender MUST re-arm the RTO timer, not the PTO timer, if the FlightSize is not zero".
        if flightSize > 0 { retransmissionDeadline = now + rtt.retransmissionTimeout }
    }

    /// §7.4.2 TLP_process_ack.
    private mutating func tailLossProbeAcknowledgment(
        _ segment: IncomingSegment, isDuplicate: Bool, sack: SACKOutcome, now: Instant, io: inout StackIO
    ) {
        guard let end = lossProbe.end, segment.ack.isAtOrAfter(end) else { return }
        if !lossProbe.isRetransmission {
            lossProbe.end = nil
        } else if sack.duplicate?.end == end {
            lossProbe.end = nil
        } else if segment.ack.isAfter(end) {
            lossProbe.end = nil
            // The probe repaired a single loss: react as fast recovery would, at once.
            io.decision("RFC 8985 §7.4.2", "the loss probe repaired a loss: congestion response", connection: tuple, now: now)
            beginEpisode(.loss, now: now, io: &io)
            startCongestionControl()
            congestion.recoveryEnded(now: now)
            episode?.closesAt = sndMax
        } else if isDuplicate && !sack.present {
            lossProbe.end = nil
        }
    }

    // MARK: Spurious retransmissions (RFC 3522, RFC 2883 §4.1)

    /// RFC 3522 §2 (Eifel detection): the first ACK for the retransmitted segment echoes a timestamp
    /// older than the retransmission's, so the original arrived and the retransmission was spurious.
    private mutating func checkForSpuriousRetransmission(_ segment: IncomingSegment, now: Instant, io: inout StackIO) {
        guard var episode, !episode.eifelChecked, let retransmitted = episode.firstRetransmissionTSval else { return }
        // Only the ACK that acknowledges the retransmitted segment says which copy arrived: an earlier
        // one (an older hole filled by the last episode's retransmission) echoes an older TSval and
        // would make a real loss look spurious.
        if let end = episode.firstRetransmissionEnd, segment.ack.isBefore(end) { return }
        episode.eifelChecked = true
        self.episode = episode
        guard let echo = segment.header.options.timestamps?.echoReply, echo != 0 else { return }
        if Int32(bitPattern: echo &- retransmitted) < 0 {
            undoEpisode(reason: "RFC 3522 §2", "ACK echoes TSval \(echo), older than the retransmission's \(retransmitted)",
                        now: now, io: &io)
        }
    }

    /// Undoes the episode: the algorithm restores its state (RFC 4015's response), lost marks go,
    /// recovery ends, and the path is known to reorder (RFC 8985 §6.2 step 3).
    mutating func undoEpisode(reason: StaticString, _ detail: String, now: Instant, io: inout StackIO) {
        guard let episode else { return }
        startCongestionControl()
        congestion.undo(now: now)
        scoreboard.clearLost()
        if inFastRecovery {
            inFastRecovery = false
            prr = nil
        }
        if inTimeoutRecovery {
            inTimeoutRecovery = false
            rtt.resetBackoff()
        }
        rack.noteReordering()
        // The undone episode no longer bounds the next one (RFC 6582's `recover`): a real loss found
        // after the undo must get its own congestion response, not retransmissions at the restored cwnd.
        recover = iss
        self.episode = nil
        spuriousEpisodesUndone &+= 1
        io.counters.spuriousRetransmissionsUndone &+= 1
        io.decision(reason, "spurious \(episode.kind == .loss ? "fast retransmit" : "timeout") (\(detail)): undo, cwnd \(congestion.congestionWindow)",
                    connection: tuple, now: now)
    }
}

/// An ACK's TSecr, to tell which transmission of a segment it acknowledges (RFC 8985 §6.2 step 2).
struct TransmissionEcho {
    let echoReply: UInt32?
    let timestampOffset: UInt32

    /// For a segment sent more than once: whether the TSecr shows the ACK is for its latest transmission
    /// (nil without timestamps).
    func acknowledgesLatest(_ segment: Scoreboard.Segment) -> Bool? {
        guard let echoReply, echoReply != 0 else { return nil }
        let sentClock = UInt32(truncatingIfNeeded: segment.sentAt.nanoseconds / 1_000_000) &+ timestampOffset
        return Int32(bitPattern: echoReply &- sentClock) >= 0
    }
}

extension TCPState {
    /// States in which we may have data or a FIN of ours in flight.
    var sendsData: Bool {
        switch self {
        case .established, .closeWait, .finWait1, .closing, .lastAck: true
        case .closed, .listen, .synSent, .synReceived, .finWait2, .timeWait: false
        }
    }
}
