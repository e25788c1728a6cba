import NIOCore
import TCPIPWire

/// The algorithm that sizes cwnd: NewReno here, CUBIC and later BBR behind the same protocol.
///
/// Division of labour. *Loss detection* and *loss recovery* belong to the connection: duplicate ACKs,
/// the SACK scoreboard and RFC 6675, RACK-TLP (RFC 8985), NewReno's `recover` (RFC 6582), and the
/// spurious-retransmission checks. The algorithm answers two questions only: how big may cwnd be while
/// no recovery is under way, and what ssthresh should be after a congestion event.
///
/// The contract, event by event (the connection calls nothing else, and in this order):
///
///     established ──acknowledged(_:)──▶ grow cwnd (slow start / avoidance / CUBIC's curve)
///          │
///          ├─ loss detected ─▶ congestionEvent(.loss)   ─▶ ssthresh set; cwnd is *not used* until
///          │                                                recoveryEnded: PRR (RFC 6937) in the
///          │                                                connection paces sending meanwhile
///          │                                  recoveryEnded(now:) ─▶ cwnd = ssthresh (RFC 6937 §3.1)
///          ├─ ECE ──────────▶ congestionEvent(.explicitCongestionNotification) ─▶ ssthresh set,
///          │                                                cwnd = min(cwnd, ssthresh) at once (RFC 3168 §6.1.2)
///          ├─ RTO ──────────▶ congestionEvent(.retransmissionTimeout) ─▶ ssthresh set, cwnd = loss
///          │                                                window (1 SMSS, RFC 5681 §3.1); growth
///          │                                                resumes through `acknowledged(_:)`
///          ├─ spurious ─────▶ undo(now:)  ─▶ back to the state saved by the last event that started
///          │                                  an episode (RFC 3522 / RFC 4015 response)
///          └─ idle > RTO ───▶ restartAfterIdle(now:) (RFC 5681 §4.1)
///
/// - `acknowledged(_:)` comes only outside recovery, once per ACK that advances SND.UNA.
/// - A `CongestionEvent` with `startsEpisode` saves the algorithm's state (cwnd, ssthresh and whatever
///   else it keeps, such as CUBIC's W_max and epoch) for `undo`; events inside an episode that is still
///   open (an RTO during fast recovery) pass `startsEpisode == false` and must keep the saved state.
/// - `undo(now:)` is called at most once per episode, possibly after `recoveryEnded`; it must restore
///   ssthresh and cwnd to no less than the saved values, and the algorithm's own saved state.
/// - Values are bytes; the algorithm must never report a cwnd below one SMSS.
public protocol CongestionControl: Sendable {
    /// cwnd, in bytes. Outside recovery it bounds what may be in flight (RFC 5681 §2).
    var congestionWindow: Int { get }
    /// ssthresh, in bytes: during recovery, PRR's target (RFC 6937 §3).
    var slowStartThreshold: Int { get }
    /// The algorithm's name as `ss -i` prints it.
    var name: String { get }

    /// New data was cumulatively acknowledged outside of loss recovery.
    mutating func acknowledged(_ sample: AcknowledgmentSample)
    /// Loss was detected, or a retransmission timeout fired: choose ssthresh (and, for a timeout, cwnd).
    mutating func congestionEvent(_ event: CongestionEvent)
    /// Fast recovery is over (the ACK beyond `recover` arrived): leave with cwnd = ssthresh.
    mutating func recoveryEnded(now: Instant)
    /// The episode's retransmissions were spurious: restore the state saved when it began.
    mutating func undo(now: Instant)
    /// The connection sat idle for longer than an RTO (RFC 5681 §4.1: restart from the initial window).
    mutating func restartAfterIdle(now: Instant)
    /// An ACK advanced SND.UNA (in or out of recovery), with its RTT sample if it gave one: HyStart++'s
    /// rounds and samples (RFC 9406 §4.2). An algorithm without HyStart++ has nothing to do.
    /// - Returns: the change of slow-start phase this ACK made, for the connection's trace.
    mutating func roundTripSampled(
        acknowledged: SequenceNumber, highestSent: SequenceNumber, rtt: TimeAmount?
    ) -> HyStart.Transition?
}

extension CongestionControl {
    public mutating func roundTripSampled(
        acknowledged: SequenceNumber, highestSent: SequenceNumber, rtt: TimeAmount?
    ) -> HyStart.Transition? { nil }
}

/// What one ACK outside recovery tells the algorithm.
public struct AcknowledgmentSample: Sendable {
    /// Octets newly acknowledged by this ACK (cumulative and selective).
    public var bytesAcknowledged: Int
    /// RFC 6937 §3 DeliveredData: what this ACK is the first to report delivered — octets SACKed
    /// (or, without SACK, announced by duplicate ACKs) earlier were reported then. nil: all of
    /// `bytesAcknowledged`.
    public var deliveredData: Int?
    /// FlightSize before the ACK (RFC 5681 §2).
    public var flightSize: Int
    /// When the ACK arrived, data the peer's window had room for was waiting for the pacing rate
    /// (Pacing.swift): the sender is not application-limited (RFC 9438 §5.8), whatever FlightSize says.
    public var heldByPacing = false
    /// When the ACK arrived.
    public var now: Instant
    /// SRTT (RFC 6298), nil before the first measurement.
    public var smoothedRTT: TimeAmount?
    /// The smallest RTT seen (RFC 8985 §6.2 step 1), nil before the first measurement.
    public var minimumRTT: TimeAmount?

    /// A sample with these values; `deliveredData` is left nil (all of `bytesAcknowledged`).
    public init(
        bytesAcknowledged: Int, flightSize: Int, now: Instant, smoothedRTT: TimeAmount?, minimumRTT: TimeAmount?
    ) {
        self.bytesAcknowledged = bytesAcknowledged
        self.flightSize = flightSize
        self.now = now
        self.smoothedRTT = smoothedRTT
        self.minimumRTT = minimumRTT
    }
}

/// A congestion signal the connection has decided on.
public struct CongestionEvent: Sendable {
    /// What signalled congestion.
    public enum Kind: Sendable, Hashable {
        /// Loss detected by duplicate ACKs, SACK (RFC 6675), RACK or a tail loss probe (RFC 8985):
        /// fast recovery follows.
        case loss
        /// The retransmission timer expired (RFC 6298 §5).
        case retransmissionTimeout
        /// An ACK echoed a CE mark (RFC 3168 §6.1.2): "treated just as a congestion loss" — ssthresh
        /// as for a loss and cwnd down to it at once (no recovery follows: nothing was lost), never
        /// growing it. The connection sends these at most once per window, with `startsEpisode` false.
        case explicitCongestionNotification
    }

    /// What signalled it.
    public var kind: Kind
    /// FlightSize when the event was detected (RFC 5681 §3.1 equation 4).
    public var flightSize: Int
    /// When it was detected.
    public var now: Instant
    /// This event opens a new episode: save the state `undo(now:)` will restore.
    public var startsEpisode: Bool

    /// An event with these values.
    public init(kind: Kind, flightSize: Int, now: Instant, startsEpisode: Bool) {
        self.kind = kind
        self.flightSize = flightSize
        self.now = now
        self.startsEpisode = startsEpisode
    }
}

/// The window of a connection whose algorithm has not started: before the handshake, sized from
/// our MSS (nothing cwnd limits is sent then: SYNs, SYN-ACKs, a TIME-WAIT record's ACKs); after
/// the peer's SYN, the algorithm's initial window (`adoptPeerOptions`). The algorithm itself is
/// made at its first event (`startCongestionControl`), as Linux initialises congestion control only
/// once a connection is established (tcp_init_transfer): a connection that closes without
/// sending data never allocates it.
///
/// Two words, so that it fits in the existential's inline buffer: no allocation. Under `tcpip bench
/// connrate`, whose connections send only their FINs, that is two mallocs and frees per cycle fewer.
struct HandshakeWindow: CongestionControl {
    let algorithm: CongestionControlAlgorithm
    let congestionWindow: Int
    var slowStartThreshold: Int { .max }
    var name: String { algorithm.rawValue }

    /// The initial window `NewReno` and `Cubic` start from for this MSS: what the algorithm, once
    /// made, will hold until its first event.
    init(algorithm: CongestionControlAlgorithm, maximumSegmentSize: Int, initialWindowSegments: Int) {
        self.algorithm = algorithm
        congestionWindow = CongestionControlAlgorithm.initialWindow(
            maximumSegmentSize: maximumSegmentSize, segments: initialWindowSegments)
    }

    func acknowledged(_ sample: AcknowledgmentSample) {}
    func congestionEvent(_ event: CongestionEvent) {}
    func recoveryEnded(now: Instant) {}
    func undo(now: Instant) {}
    func restartAfterIdle(now: Instant) {}
}

/// Which algorithm a connection uses.
public enum CongestionControlAlgorithm: String, Sendable, CaseIterable {
    /// NewReno (RFC 5681, RFC 6582), spelled `reno` as Linux spells it.
    case newReno = "reno"
    /// CUBIC (RFC 9438), Linux's default.
    case cubic = "cubic"

    func make(
        maximumSegmentSize: Int, initialWindowSegments: Int, slowStartLimitSegments: Int? = 1, hyStart: Bool = false
    ) -> any CongestionControl {
        switch self {
        case .newReno:
            NewReno(maximumSegmentSize: maximumSegmentSize, initialWindowSegments: initialWindowSegments,
                    slowStartLimitSegments: slowStartLimitSegments, hyStart: hyStart)
        case .cubic:
            Cubic(maximumSegmentSize: maximumSegmentSize, initialWindowSegments: initialWindowSegments,
                  slowStartLimitSegments: slowStartLimitSegments, hyStart: hyStart)
        }
    }

    /// The initial window in bytes: `segments` segments of `maximumSegmentSize` (each at least 1).
    static func initialWindow(maximumSegmentSize: Int, segments: Int) -> Int {
        max(1, maximumSegmentSize) * max(1, segments)
    }

    /// RFC 3465 §2 (Appropriate Byte Counting): in slow start cwnd grows by the octets an ACK
    /// acknowledges, at most L per ACK. RFC 5681 §3.1 fixes L = 1 SMSS for the standard
    /// ("cwnd += min (N, SMSS)"); nil counts every octet acknowledged, as Linux (tcp_slow_start).
    ///
    /// Without a limit the ACK counts the octets it is the first to report delivered (RFC 6937 §3
    /// DeliveredData): those SACKed, or announced by duplicate ACKs, earlier were reported by their
    /// own ACKs — as Linux counts each delivered segment once.
    static func slowStartIncrease(acknowledged bytes: Int, delivered: Int?, mss: Int, limitSegments: Int?) -> Int {
        guard let limitSegments else {
            // DEVIATION(RFC 5681 §3.1): with no limit a stretch ACK grows cwnd by all it delivers,
            // because a receiver that acknowledges once per burst (Linux's, when its reader drains
            // a flight at once) would otherwise hold slow start to one segment per round trip.
            return max(0, min(bytes, delivered ?? bytes))
        }
        let (limit, overflow) = mss.multipliedReportingOverflow(by: max(1, limitSegments))
        return min(bytes, overflow ? .max : limit)
    }
}

/// RFC 5681 slow start and congestion avoidance. NewReno's loss recovery (RFC 6582) lives in the
/// connection; this is the window arithmetic around it.
public struct NewReno: CongestionControl {
    public private(set) var congestionWindow: Int
    public private(set) var slowStartThreshold: Int = .max
    public var name: String { "reno" }
    private let mss: Int
    private let initialWindow: Int
    /// Bytes acknowledged since cwnd last grew in congestion avoidance (RFC 5681 §3.1, byte counting).
    private var bytesAckedInAvoidance = 0
    /// cwnd, ssthresh and HyStart++ before the episode's first congestion event, for `undo`.
    private var saved: (congestionWindow: Int, slowStartThreshold: Int, hyStart: HyStart?)?

    /// RFC 3465's L in segments (nil: no limit); see `CongestionControlAlgorithm.slowStartIncrease`.
    private let slowStartLimitSegments: Int?
    /// HyStart++ (RFC 9406) while the first slow start lasts; nil without it, and after.
    public private(set) var hyStart: HyStart?

    /// NewReno for segments of `maximumSegmentSize`, starting at `initialWindowSegments` segments (RFC 6928's
    /// 10 by default), with RFC 3465's L and HyStart++ (RFC 9406) as asked.
    public init(maximumSegmentSize: Int, initialWindowSegments: Int, slowStartLimitSegments: Int? = 1, hyStart: Bool = false) {
        mss = max(1, maximumSegmentSize)
        initialWindow = CongestionControlAlgorithm.initialWindow(
            maximumSegmentSize: mss, segments: initialWindowSegments)
        congestionWindow = initialWindow
        self.slowStartLimitSegments = slowStartLimitSegments
        self.hyStart = hyStart ? HyStart() : nil
    }

    public mutating func acknowledged(_ sample: AcknowledgmentSample) {
        if congestionWindow < slowStartThreshold {
            // RFC 5681 §3.1 (equation 2): cwnd += min(N, L) per ACK during slow start, L = SMSS by
            // default (RFC 3465 §2); RFC 9406 §4.2: a quarter of that in Conservative Slow Start.
            let increase = CongestionControlAlgorithm.slowStartIncrease(
                acknowledged: sample.bytesAcknowledged, delivered: sample.deliveredData, mss: mss,
                limitSegments: slowStartLimitSegments)
            congestionWindow += hyStart?.slowStartIncrease(increase) ?? increase
        } else {
            // RFC 5681 §3.1: in congestion avoidance, one SMSS per RTT, counted in bytes acknowledged.
            bytesAckedInAvoidance += sample.bytesAcknowledged
            if bytesAckedInAvoidance >= congestionWindow {
                bytesAckedInAvoidance -= congestionWindow
                congestionWindow += mss
            }
        }
    }

    public mutating func congestionEvent(_ event: CongestionEvent) {
        if event.startsEpisode || saved == nil {
            saved = (congestionWindow, slowStartThreshold, hyStart)
        }
        // RFC 9406 §4.2: loss or ECN during slow start or CSS ends HyStart++; the response is the
        // algorithm's own. §4.3: later slow starts are standard ones, up to the ssthresh set here.
        hyStart = nil
        // RFC 5681 §3.1 (equation 4) and §3.2 step 2: ssthresh = max(FlightSize / 2, 2*SMSS).
        slowStartThreshold = max(event.flightSize / 2, 2 * mss)
        bytesAckedInAvoidance = 0
        switch event.kind {
        case .loss:
            // During recovery PRR paces sending; cwnd is set when recovery ends.
            break
        case .retransmissionTimeout:
            // RFC 5681 §3.1: the loss window, cwnd = 1 SMSS.
            congestionWindow = mss
        case .explicitCongestionNotification:
            // RFC 3168 §6.1.2: "halves the congestion window ... and reduces the slow start
            // threshold"; never below one SMSS, never up (a small cwnd after a timeout stays).
            congestionWindow = max(mss, min(congestionWindow, slowStartThreshold))
        }
    }

    public mutating func recoveryEnded(now: Instant) {
        // RFC 6937 §3.1 (and RFC 6675 §5 through ssthresh): leave recovery with cwnd = ssthresh.
        congestionWindow = max(mss, slowStartThreshold)
    }

    public mutating func undo(now: Instant) {
        // RFC 4015 §3.2's response, as Linux's tcp_undo_cwnd: never less than before the event.
        guard let saved else { return }
        congestionWindow = max(congestionWindow, saved.congestionWindow)
        slowStartThreshold = max(slowStartThreshold, saved.slowStartThreshold)
        // A spurious loss did not end the first slow start: HyStart++ watches it again.
        hyStart = saved.hyStart
        self.saved = nil
    }

    public mutating func restartAfterIdle(now: Instant) {
        // RFC 5681 §4.1: restart window = min(IW, cwnd).
        congestionWindow = min(initialWindow, congestionWindow)
    }

    public mutating func roundTripSampled(
        acknowledged: SequenceNumber, highestSent: SequenceNumber, rtt: TimeAmount?
    ) -> HyStart.Transition? {
        HyStart.sample(
            &hyStart, acknowledged: acknowledged, highestSent: highestSent, rtt: rtt,
            congestionWindow: congestionWindow, slowStartThreshold: &slowStartThreshold)
    }
}
