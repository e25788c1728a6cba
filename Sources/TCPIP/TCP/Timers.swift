import NIOCore
import TCPIPWire

/// TIMEOUTS (RFC 9293 §3.10.8): retransmission (RFC 6298 §5), persist (§3.8.6.1), delayed ACK
/// (§3.8.6.3) and TIME-WAIT.
extension TCPConnection {
    /// Runs every timer whose deadline has passed.
    mutating func timersFired(now: Instant, io: inout StackIO) {
        if case .timeWait(let until) = state, until <= now {
            // "If the time-wait timeout expires on a connection, delete the TCB, enter the CLOSED state."
            io.decision("RFC 9293 §3.10.8", "2·MSL elapsed: TIME-WAIT -> CLOSED", connection: tuple, now: now)
            enterClosed(error: nil, io: &io, now: now)
            return
        }
        if let deadline = establishmentDeadline, deadline <= now {
            connectionTimeoutFired(now: now, io: &io)
            return
        }
        if let deadline = reorderingDeadline, deadline <= now {
            reorderingDeadline = nil
            reorderingTimerFired(now: now, io: &io)
        }
        // RFC 8985 §7.2: a PTO due at the same time as the RTO goes first ("schedules a TLP to be sent
        // at that RTO time"), and re-arms the RTO.
        if let deadline = lossProbe.deadline, deadline <= now {
            lossProbe.deadline = nil
            lossProbeFired(now: now, io: &io)
        }
        if let deadline = retransmissionDeadline, deadline <= now {
            retransmissionDeadline = nil
            retransmissionTimeoutFired(now: now, io: &io)
            if state == .closed { return }
        }
        if let deadline = persistDeadline, deadline <= now {
            persistDeadline = nil
            persistTimerFired(now: now, io: &io)
        }
        if pacingTimerArmed, pacingReleaseTime <= now {
            // The pacing rate allows the next burst (Pacing.swift); it carries any ACK owed.
            pacingTimerArmed = false
            output(now: now, io: &io)
        }
        if let deadline = delayedAckDeadline, deadline <= now {
            delayedAckDeadline = nil
            io.counters.delayedAcksSent &+= 1
            // No reply carried it: the connection is not interactive after all (tcp_delack_timer_handler).
            interactive = false
            sendAck(now: now, io: &io)
        }
        if let deadline = keepaliveDeadline, deadline <= now {
            keepaliveTimerFired(now: now, io: &io)
        }
        if let deadline = bufferReclaimDeadline, deadline <= now {
            reclaimIdleBuffers(now: now, io: &io)
        }
    }

    /// When an active OPEN still in SYN-SENT (or SYN-RECEIVED, simultaneous open) runs out of time.
    var establishmentDeadline: Instant? {
        guard let connectionTimeout, state == .synSent || state == .synReceived else { return nil }
        return openedAt + connectionTimeout
    }

    /// TCP_KEEPINIT expired before the handshake completed: the OPEN fails with ETIMEDOUT (RFC 9293
    /// §3.8.3 R2, as a time). From SYN-SENT nothing is sent (the peer holds no state of ours, as
    /// for R2 below); from SYN-RECEIVED an RST tells the peer, as FreeBSD's tcp_drop.
    private mutating func connectionTimeoutFired(now: Instant, io: inout StackIO) {
        io.counters.connectionsTimedOut &+= 1
        io.counters.failedConnectionAttempts &+= 1
        io.decision("RFC 9293 §3.8.3", "connection not established within \(connectionTimeout?.milliseconds ?? 0) ms: timed out",
                    connection: tuple, now: now)
        if state == .synReceived { sendReset(sequence: sndNxt, now: now, io: &io) }
        enterClosed(error: .timedOut, io: &io, now: now)
    }

    /// When the next keep-alive probe is due: idle time after the peer was last heard from, then
    /// the probe interval — only in ESTABLISHED or CLOSE-WAIT with nothing outstanding (otherwise the
    /// retransmission and persist timers are already asking the peer).
    ///
    /// Asked each time the connection's next deadline is: inlined up to the test that fails for a
    /// connection without keep-alives, the default.
    @inline(__always)
    var keepaliveDeadline: Instant? {
        guard keepalive != nil else { return nil }
        return enabledKeepaliveDeadline
    }

    @inline(never)
    private var enabledKeepaliveDeadline: Instant? {
        guard let keepalive, state == .established || state == .closeWait, flightSize == 0, sendBuffer.count == 0
        else { return nil }
        return keepaliveProbesSent == 0 ? lastHeardFrom + keepalive.idle : lastKeepaliveProbe + keepalive.interval
    }

    /// RFC 1122 §4.2.3.6: a keep-alive is <SEQ=SND.NXT-1> with no data, which the peer must answer
    /// with an ACK; after `probes` unanswered ones the connection is dead.
    private mutating func keepaliveTimerFired(now: Instant, io: inout StackIO) {
        guard let keepalive else { return }
        if keepaliveProbesSent >= keepalive.probes {
            io.counters.keepaliveTimeouts &+= 1
            timedOut(rule: "RFC 1122 §4.2.3.6", "\(keepaliveProbesSent) keep-alives unanswered", now: now, io: &io)
            return
        }
        keepaliveProbesSent += 1
        lastKeepaliveProbe = now
        io.counters.keepaliveProbesSent &+= 1
        io.decision("RFC 1122 §4.2.3.6", "idle: keep-alive probe \(keepaliveProbesSent) of \(keepalive.probes)",
                    connection: tuple, now: now)
        sendSegment(flags: .ack, sequence: sndNxt - 1, now: now, io: &io)
    }

    /// A timer gave up on the peer: RST (with TSopt, as ABORT's), CLOSED, and ETIMEDOUT for the user.
    private mutating func timedOut(rule: StaticString, _ why: String, now: Instant, io: inout StackIO) {
        io.counters.connectionsTimedOut &+= 1
        io.decision(rule, "\(why): connection timed out", connection: tuple, now: now)
        sendAbortReset(now: now, io: &io)
        enterClosed(error: .timedOut, io: &io, now: now)
    }

    /// RFC 6298 §5 (5.4)–(5.7), with the retry limit of RFC 9293 §3.8.3 (R2).
    private mutating func retransmissionTimeoutFired(now: Instant, io: inout StackIO) {
        guard flightSize > 0 else { return }
        consecutiveTimeouts += 1
        timeouts &+= 1
        io.counters.retransmissionTimeouts &+= 1
        let isHandshake = state == .synSent || state == .synReceived
        let limit = isHandshake ? synRetransmissionLimit : configuration.pointee.maximumRetransmissions
        if consecutiveTimeouts == 1 {
            // The head segment was last sent one RTO ago: RFC 5482's clock starts there.
            timeoutsStartedAt = now + .nanoseconds(-rtt.retransmissionTimeout.nanoseconds)
        }
        if !isHandshake, let userTimeout, let started = timeoutsStartedAt, now - started >= userTimeout {
            // RFC 5482 §2: the user timeout replaces R2's count (checked at each timeout).
            timedOut(rule: "RFC 5482", "data unacknowledged for the user timeout (\(userTimeout.nanoseconds / 1_000_000) ms)",
                     now: now, io: &io)
            return
        }
        if consecutiveTimeouts > limit && (userTimeout == nil || isHandshake) {
            io.counters.connectionsTimedOut &+= 1
            io.decision("RFC 9293 §3.8.3", "R2 reached after \(limit) retransmissions: connection timed out",
                        connection: tuple, now: now)
            if state != .synSent {
                sendReset(sequence: sndNxt, now: now, io: &io)
            }
            if isHandshake { io.counters.failedConnectionAttempts &+= 1 }
            enterClosed(error: .timedOut, io: &io, now: now)
            return
        }
        // (5.5) back off the timer; Karn: the sample in progress is void.
        rtt.backOff()
        rttTimedSequence = nil
        io.decision("RFC 6298 §5.5", "retransmission timeout; RTO backed off to \(rtt.retransmissionTimeout.milliseconds) ms",
                    connection: tuple, now: now)
        switch state {
        case .synSent:
            retransmittedSegments &+= 1
            io.counters.segmentsRetransmitted &+= 1
            sendSYN(acknowledging: false, peerOffered: nil, now: now, io: &io)
        case .synReceived:
            retransmittedSegments &+= 1
            io.counters.segmentsRetransmitted &+= 1
            // RFC 7323 §2.2, §3.2 and RFC 2018 §2: a SYN-ACK carries only options the SYN offered.
            sendSYN(acknowledging: true, peerOffered: agreedPeerOptions, now: now, io: &io)
        case .established, .finWait1, .closeWait, .closing, .lastAck, .finWait2:
            // RFC 4821 §7.5: repeated timeouts on full-sized segments may be a black hole.
            if configuration.pointee.mtuProbing != nil { suspectBlackHole(now: now, io: &io) }
            // RFC 5681 §3.1: ssthresh = max(FlightSize/2, 2*SMSS), cwnd = 1 SMSS; RFC 6582 §3.2
            // step 4: recover = the highest sequence number sent.
            beginEpisode(.retransmissionTimeout, now: now, io: &io)
            inFastRecovery = false
            prr = nil
            inTimeoutRecovery = true
            duplicateAcks = 0
            recover = sndMax - 1
            reorderingDeadline = nil
            lossProbe = TailLossProbe(rttSampledSinceProbe: lossProbe.rttSampledSinceProbe)
            if sndWnd == 0 {
                // The peer's window is closed: go back to SND.UNA and let the persist timer probe.
                sndNxt = sndUna
                scoreboard.removeAll(from: sndUna)
            } else {
                // RFC 6675 §5.1 and RFC 8985 §6.3: what is not SACKed is lost (with RACK: the first
                // segment, and those sent longer than RACK.rtt + reo_wnd ago), and goes again in order
                // as cwnd allows — SACKed segments are not resent.
                let rackWindow: TimeAmount? = rackEnabled && rack.sentAt != nil
                    ? rack.rtt + rack.reorderingWindow(
                        inRecovery: true, sackedSegments: scoreboard.sackedSegments,
                        minimumRTT: rtt.minimumRTT ?? rack.rtt, smoothedRTT: rtt.smoothedRTT)
                    : nil
                scoreboard.markLostOnTimeout(now: now, rackWindow: rackWindow)
            }
            output(now: now, io: &io)
            if flightSize == 0 && sndWnd == 0 {
                // The peer's window is closed: the persist timer takes over from here.
                updatePersistTimer(now: now, io: &io)
            } else {
                armRetransmissionTimer(now: now)
            }
        case .timeWait, .closed, .listen:
            break
        }
    }

    /// RFC 9293 §3.8.6.1: "The sending TCP peer must regularly transmit at least one octet of new
    /// data (if available), or retransmit to the receiving TCP peer even if the send window is zero."
    private mutating func persistTimerFired(now: Instant, io: inout StackIO) {
        if sndWnd > 0 {
            // RFC 9293 §3.8.6.2.1: the override timeout of sender SWS avoidance expired with the
            // window still too small for the rule: send what it allows.
            guard flightSize == 0, unsentBytes > 0 else { return }
            io.counters.sillyWindowOverrides &+= 1
            io.decision("RFC 9293 §3.8.6.2.1", "override timeout: sending into a window of \(sndWnd) octets",
                        connection: tuple, now: now)
            output(now: now, io: &io, overrideSWS: true)
            return
        }
        if sendBuffer.count > 0 && configuration.pointee.zeroWindowProbe == .acknowledgmentRequest {
            // Linux's form: <SEQ=SND.UNA-1><ACK=RCV.NXT><CTL=ACK>, no data (`ZeroWindowProbe`).
            sendSegment(flags: [.ack], sequence: sndUna - 1, now: now, io: &io)
        } else if sendBuffer.count > 0 {
            sendSegment(flags: [.ack], sequence: sndUna, payloadOffset: 0, payloadLength: 1, now: now, io: &io)
            if sndNxt == sndUna { sndNxt = sndUna + 1 }
        } else if let finSequence, !finSequence.isBefore(sndNxt) || finSent {
            sendSegment(flags: [.fin, .ack], sequence: finSequence, now: now, io: &io)
            if sndNxt == finSequence { sndNxt = finSequence + 1 }
        } else {
            return
        }
        zeroWindowProbes &+= 1
        io.counters.zeroWindowProbesSent &+= 1
        persistBackoff += 1
        let timeout = persistTimeout
        persistDeadline = now + timeout
        io.decision("RFC 9293 §3.8.6.1", "zero-window probe sent; persist timer backed off to \(timeout.milliseconds) ms",
                    connection: tuple, now: now)
    }
}
