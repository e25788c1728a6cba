import NIOCore
import TCPIPWire

/// A connection's ECN state (RFC 3168 §6.1): what the handshake agreed, and the two halves of the
/// signal — the receiver echoing CE marks with ECE until it sees CWR (§6.1.3), the sender answering
/// ECE with one cwnd reduction per window and a CWR (§6.1.2).
struct ECNState: Hashable, Sendable {
    /// We sent an ECN-setup SYN and no non-ECN-setup SYN since (§6.1.1).
    var setupSent = false
    /// Both ends sent ECN-setup SYNs / SYN-ACKs: our data is ECT(0), CE and ECE are acted on (§6.1.1).
    var enabled = false
    /// Receiver: a CE-marked segment arrived and no CWR after it: every ACK carries ECE (§6.1.3).
    var echoing = false
    /// Sender: cwnd was reduced; the next new data segment carries CWR (§6.1.2).
    var congestionWindowReducedPending = false
    /// Sender: SND.MAX when cwnd was last reduced for an ECE; ECEs for data up to it are the same
    /// congestion (§6.1.2: "reduced only once in response to a series of ... CE packets from a
    /// single window of data").
    var recover: SequenceNumber?

    /// Statistics, 32 bits each as in Linux's `tcp_info` (`ConnectionCount`).
    var congestionExperiencedReceived = ConnectionCount()
    var echoesReceived = ConnectionCount()
    var windowReductions = ConnectionCount()
    var congestionWindowReducedSent = ConnectionCount()

    /// §6.1.1: "a SYN packet with the ECE and CWR flags set".
    static func isSetupSYN(_ flags: TCPFlags) -> Bool { flags.isSuperset(of: [.ece, .cwr]) }
    /// §6.1.1: "a SYN-ACK packet with only the ECE flag set but the CWR flag not set".
    static func isSetupSYNACK(_ flags: TCPFlags) -> Bool { flags.contains(.ece) && !flags.contains(.cwr) }
}

extension TCPConnection {
    /// RFC 3168 §6.1.3 and §6.1.5, for a segment that passed the sequence-number check (the ECN field
    /// of one outside the window is ignored, §6.1.5): CWR ends the echo, a CE mark on data starts it.
    mutating func explicitCongestionArrives(_ segment: IncomingSegment, now: Instant, io: inout StackIO) {
        guard ecn.enabled else { return }
        if segment.flags.contains(.cwr), ecn.echoing {
            // "until it receives a CWR packet": the sender has reduced cwnd after the marked data.
            ecn.echoing = false
            io.decision("RFC 3168 §6.1.3", "CWR received: ACKs stop echoing ECE", connection: tuple, now: now)
        }
        // A CE mark on a pure ACK says nothing about our data (§6.1.4); only data packets count.
        if segment.ecn == .congestionExperienced, segment.payload.readableBytes > 0 {
            ecn.congestionExperiencedReceived &+= 1
            io.counters.congestionExperiencedReceived &+= 1
            if !ecn.echoing {
                ecn.echoing = true
                io.decision("RFC 3168 §6.1.3", "CE-marked data: ACKs echo ECE until CWR", connection: tuple, now: now)
            }
        }
    }

    /// Counts an acceptable ACK carrying ECE (RFC 3168 §6.1.2), whatever the sender does about it.
    mutating func countExplicitCongestionEcho(_ segment: IncomingSegment, io: inout StackIO) {
        guard ecn.enabled, segment.flags.contains(.ece), !segment.syn else { return }
        ecn.echoesReceived &+= 1
        io.counters.ecnEchoesReceived &+= 1
    }

    /// RFC 3168 §6.1.2: an ACK with ECE is a congestion signal "treated just as a congestion loss":
    /// ssthresh and cwnd come down at once — nothing is retransmitted — at most once per window of
    /// data and not within a window already reduced for loss; CWR goes on the next new data.
    /// - Returns: whether the ACK echoed congestion (cwnd must then not grow on it, §6.1.2).
    mutating func explicitCongestionEchoArrives(_ segment: IncomingSegment, now: Instant, io: inout StackIO) -> Bool {
        guard ecn.enabled, segment.flags.contains(.ece), !segment.syn else { return false }
        if inFastRecovery || inTimeoutRecovery { return true }
        if let recover = ecn.recover, sndUna.isAtOrBefore(recover) { return true }
        // A loss episode of this window already halved cwnd (RFC 6582 `recover`).
        if recover != iss, sndUna.isAtOrBefore(recover) { return true }
        let oneSegment = congestion.congestionWindow <= sendMSS
        startCongestionControl()
        congestion.congestionEvent(CongestionEvent(
            kind: .explicitCongestionNotification, flightSize: flightSize, now: now, startsEpisode: false))
        // Whatever loss episode might still be undone, this congestion is real (RFC 3168 §6.1.2).
        episode = nil
        ecn.recover = sndMax
        ecn.congestionWindowReducedPending = true
        ecn.windowReductions &+= 1
        io.counters.ecnWindowReductions &+= 1
        if oneSegment, flightSize > 0 {
            // "the sending TCP MUST reset the retransmit timer on receiving the ECN-Echo packet when
            // the congestion window is one."
            retransmissionDeadline = now + rtt.retransmissionTimeout
        }
        io.decision("RFC 3168 §6.1.2", "ECE: cwnd reduced to \(congestion.congestionWindow), ssthresh \(congestion.slowStartThreshold); CWR on the next new data",
                    connection: tuple, now: now)
        return true
    }

    /// RFC 3168 §6.1.2: "When an ECN-Capable TCP sender reduces its congestion window for any reason
    /// (because of a retransmit timeout, a Fast Retransmit, or in response to an ECN Notification),
    /// the TCP sender sets the CWR flag in the TCP header of the first new data packet sent after".
    mutating func congestionWindowReduced() {
        if ecn.enabled { ecn.congestionWindowReducedPending = true }
    }
}
