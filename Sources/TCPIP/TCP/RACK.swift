import NIOCore
import TCPIPWire

/// RFC 8985 RACK's per-connection state (§5.2): the most recently sent segment known delivered, the
/// reordering seen so far and the window that tolerates it. The scoreboard walks the segments; this
/// holds what the walk is measured against.
struct RecentAcknowledgment: Hashable, Sendable {
    /// RACK.xmit_ts and RACK.end_seq: the most recently (re)transmitted segment delivered so far.
    private(set) var sentAt: Instant?
    private(set) var end = SequenceNumber(0)
    /// RACK.rtt: the RTT of that segment's delivery.
    private(set) var rtt = TimeAmount.zero
    /// RACK.fack: the highest sequence number selectively or cumulatively acknowledged.
    private(set) var forwardAcknowledged: SequenceNumber?
    /// RACK.fack as it was before the ACK being processed: the ACK's own SACK blocks lie above its
    /// cumulative acknowledgment, which must not make what it acknowledges look reordered.
    private var forwardAcknowledgedBeforeAck: SequenceNumber?
    /// RACK.reordering_seen.
    private(set) var reorderingSeen = false
    /// RACK.reo_wnd_mult, RACK.reo_wnd_persist and RACK.dsack_round (§6.2 step 4).
    private(set) var reorderingWindowMultiplier = 1
    private var reorderingWindowPersist = 0
    private var dsackRound: SequenceNumber?

    init() {}

    /// §6.2 steps 2 and 3 for one segment newly delivered (cumulatively or selectively).
    ///
    /// - Parameter acknowledgesRetransmission: for a segment sent more than once, whether the ACK's
    ///   TSecr shows it acknowledges the latest transmission; nil without timestamps.
    mutating func delivered(
        _ segment: Scoreboard.Segment, now: Instant, minimumRTT: TimeAmount?, acknowledgesRetransmission: Bool?
    ) {
        let sampleRTT = now - segment.sentAt
        // Step 3: original data delivered below RACK.fack was reordered.
        if let fack = forwardAcknowledgedBeforeAck, segment.end.isBefore(fack),
           !segment.flags.contains(.everRetransmitted) {
            reorderingSeen = true
        }
        if forwardAcknowledged.map({ segment.end.isAfter($0) }) ?? true {
            forwardAcknowledged = segment.end
        }
        // Step 2: skip samples that may belong to an earlier transmission.
        if segment.flags.contains(.everRetransmitted) {
            if acknowledgesRetransmission == false { return }
            if let minimumRTT, sampleRTT < minimumRTT { return }
        }
        rtt = sampleRTT
        if let sentAt, !(segment.sentAt > sentAt || (segment.sentAt == sentAt && segment.end.isAfter(end))) {
            return
        }
        sentAt = segment.sentAt
        end = segment.end
    }

    /// An ACK arrives: its segments are compared with RACK.fack as it stands now (§6.2 step 3).
    mutating func acknowledgmentArrives() {
        forwardAcknowledgedBeforeAck = forwardAcknowledged
    }

    /// Reordering reported by other means (a D-SACK for data never retransmitted, an undone episode).
    mutating func noteReordering() {
        reorderingSeen = true
    }

    /// §6.2 step 4, first half: a D-SACK widens the window by min_RTT/4 once per round trip, for 16 recoveries.
    mutating func dsackReceived(sndUna: SequenceNumber, sndNxt: SequenceNumber) {
        if let round = dsackRound, sndUna.isAtOrAfter(round) { dsackRound = nil }
        guard dsackRound == nil else { return }
        dsackRound = sndNxt
        reorderingWindowMultiplier += 1
        reorderingWindowPersist = 16
    }

    /// §6.2 step 4: "Else if exiting Fast or RTO recovery".
    mutating func recoveryEnded() {
        reorderingWindowPersist -= 1
        if reorderingWindowPersist <= 0 { reorderingWindowMultiplier = 1 }
    }

    /// §6.2 step 4 RACK_update_reo_wnd's value.
    ///
    /// - Parameter minimumRTT: RACK.min_RTT. Before any RTT sample (no timestamps, and the handshake not
    ///   timed) the caller passes RACK.rtt, the delivery time just measured: a window of zero would call
    ///   every segment sent in the same burst as a SACKed one lost on the first SACK.
    func reorderingWindow(
        inRecovery: Bool, sackedSegments: Int, minimumRTT: TimeAmount?, smoothedRTT: TimeAmount?
    ) -> TimeAmount {
        if !reorderingSeen && (inRecovery || sackedSegments >= TCPConnection.duplicateThreshold) {
            return .zero
        }
        guard let minimumRTT else { return .zero }
        let window = minimumRTT.nanoseconds / 4 * Int64(reorderingWindowMultiplier)
        return .nanoseconds(min(window, smoothedRTT?.nanoseconds ?? window))
    }
}

/// RFC 8985 §7 TLP state.
struct TailLossProbe: Hashable, Sendable {
    /// TLP.end_seq: the end of the probe in flight, if any.
    var end: SequenceNumber?
    /// TLP.is_retrans.
    var isRetransmission = false
    /// §7.3 condition 2: an RTT sample arrived since the last probe.
    var rttSampledSinceProbe = true
    /// When the PTO fires.
    var deadline: Instant?

    /// TLP.max_ack_delay (RFC 8985 §7.2: "implementation specific"; Linux's 200 ms delayed-ACK bound).
    static let maximumAckDelay = TimeAmount.milliseconds(200)
}

/// The bookkeeping of one loss episode, to decide afterwards whether it was spurious
/// (RFC 3522 with timestamps, RFC 2883 §4.1 with D-SACK).
struct RecoveryEpisode: Hashable, Sendable {
    /// Segments retransmitted during the episode.
    var retransmissions = 0
    /// D-SACK blocks reporting that retransmissions were duplicates.
    var duplicateRetransmissions = 0
    /// RFC 3522 §2: the TSval of the episode's first retransmission.
    var firstRetransmissionTSval: UInt32?
    /// Where the first retransmitted segment ends: only an ACK at or past it acknowledges it.
    var firstRetransmissionEnd: SequenceNumber?
    /// The Eifel check runs once, on the first ACK acknowledging the retransmitted segment.
    var eifelChecked = false
    /// SND.UNA and SND.MAX when the episode began: only D-SACKs between them can concern its
    /// retransmissions (others, even a peer's inventions, are not counted towards an undo).
    var lowWater: SequenceNumber
    var highWater: SequenceNumber
    /// The episode closes when SND.UNA passes this (set when recovery ends): no more evidence can come.
    var closesAt: SequenceNumber?
    var kind: CongestionEvent.Kind
}
