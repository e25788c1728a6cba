import NIOCore

/// The retransmission timer's duration, computed as RFC 6298 §2 says.
///
/// RFC names, for reading beside the RFC: `smoothedRTT` is SRTT, `rttVariance` is RTTVAR,
/// `retransmissionTimeout` is RTO, `clockGranularity` is G; K = 4, alpha = 1/8, beta = 1/4.
/// Times are kept in nanoseconds, so the divisions by 2, 4 and 8 lose nothing that matters.
///
/// Karn's rule (§3) is the caller's job: never sample a retransmitted segment, unless a timestamp
/// echo (RFC 7323 §4) says which transmission is being acknowledged.
struct RTTEstimator: Hashable, Sendable {
    /// RFC 6298 §2 (2.2): K.
    private static let k: Int64 = 4

    /// RFC 6298 §2 (2.1): the RTO before any measurement.
    let initialRTO: TimeAmount
    /// DEVIATION(RFC 6298 §2.4): the RFC rounds RTO up to 1 second; we use 200 ms by default, as Linux
    /// (TCP_RTO_MIN) does, because modern clocks and paths make 1 s needlessly slow to recover. Configurable.
    let minimumRTO: TimeAmount
    /// RFC 6298 §2 (2.5): a maximum of at least 60 seconds.
    let maximumRTO: TimeAmount
    /// RFC 6298 §2: G.
    let clockGranularity: TimeAmount

    /// SRTT; nil until the first measurement.
    private(set) var smoothedRTT: TimeAmount?
    /// The minimum bounds the variance term, RTO = SRTT + max(G, K·RTTVAR, minimum), not RTO itself
    /// (`TCPConfiguration.minimumRTOAddsToSRTT`). In the padding after `smoothedRTT`.
    let minimumAddsToSRTT: Bool
    /// RTTVAR; zero until the first measurement.
    private(set) var rttVariance: TimeAmount = .zero
    /// The smallest sample so far (RFC 8985 §6.2 step 1 RACK.min_RTT).
    /// DEVIATION(RFC 8985 §6.2 step 1): a global minimum, not the windowed filter the RFC recommends;
    /// a path that gets longer keeps its old, smaller minimum (RACK's window is then smaller than ideal).
    private(set) var minimumRTT: TimeAmount?
    /// How many times the timer has been doubled since the last measurement (RFC 6298 §5 (5.5)).
    private(set) var backoffCount: Int = 0

    init(
        initialRTO: TimeAmount = .seconds(1),
        minimumRTO: TimeAmount = .milliseconds(200),
        maximumRTO: TimeAmount = .seconds(60),
        clockGranularity: TimeAmount = .milliseconds(1),
        minimumAddsToSRTT: Bool = false
    ) {
        precondition(minimumRTO.nanoseconds > 0 && minimumRTO <= maximumRTO, "RTO bounds out of order")
        precondition(initialRTO.nanoseconds > 0 && clockGranularity.nanoseconds >= 0, "RTO parameters must be positive")
        self.initialRTO = initialRTO
        self.minimumRTO = minimumRTO
        self.maximumRTO = maximumRTO
        self.clockGranularity = clockGranularity
        self.minimumAddsToSRTT = minimumAddsToSRTT
    }

    /// RTO before backoff: RFC 6298 §2 (2.1) until the first sample, then SRTT + max(G, K*RTTVAR),
    /// kept within the minimum (2.4) and the maximum (2.5).
    var baseRetransmissionTimeout: TimeAmount {
        let base: Int64
        if let smoothedRTT {
            var variance = max(clockGranularity.nanoseconds, Self.k * rttVariance.nanoseconds)
            // DEVIATION(RFC 6298 §2.4), with `minimumAddsToSRTT`: the minimum bounds the variance term,
            // as Linux's (tcp_set_rto: RTO = SRTT + rttvar, rttvar at least tcp_rto_min), because
            // bounding RTO itself gives about one round trip on a long, steady path (205 ms at
            // 200 ms), and a retransmission's ACK, a round trip away, races the timer.
            if minimumAddsToSRTT { variance = max(variance, minimumRTO.nanoseconds) }
            base = smoothedRTT.nanoseconds + variance
        } else {
            base = initialRTO.nanoseconds
        }
        return .nanoseconds(min(max(base, minimumRTO.nanoseconds), maximumRTO.nanoseconds))
    }

    /// RTO: the base doubled once per backoff (RFC 6298 §5 (5.5)), never above the maximum (2.5).
    var retransmissionTimeout: TimeAmount {
        let base = baseRetransmissionTimeout.nanoseconds
        // base << backoffCount, saturating at the maximum without overflowing.
        guard backoffCount < 63, base <= maximumRTO.nanoseconds >> Int64(backoffCount) else { return maximumRTO }
        return .nanoseconds(min(base << Int64(backoffCount), maximumRTO.nanoseconds))
    }

    /// Takes an RTT measurement: RFC 6298 §2 (2.2) for the first, (2.3) for later ones.
    ///
    /// A measurement means the path answered, so the backoff is cleared too (the RFC 6298 §5 (5.7) intent).
    /// Samples are clamped to [0, maximumRTO]: with timestamps an RTT comes from a value the peer echoes,
    /// and no echo may overflow the arithmetic or park the timer beyond its maximum.
    mutating func addSample(_ rtt: TimeAmount) {
        let sample = min(max(rtt.nanoseconds, 0), maximumRTO.nanoseconds)
        if minimumRTT.map({ sample < $0.nanoseconds }) ?? true { minimumRTT = .nanoseconds(sample) }
        if let smoothedRTT {
            // RFC 6298 §2 (2.3): RTTVAR first, from the old SRTT; then SRTT. beta = 1/4, alpha = 1/8.
            let srtt = smoothedRTT.nanoseconds
            let deviation = abs(srtt - sample)
            let rttvar = rttVariance.nanoseconds
            rttVariance = .nanoseconds(rttvar - rttvar / 4 + deviation / 4)
            self.smoothedRTT = .nanoseconds(srtt - srtt / 8 + sample / 8)
        } else {
            // RFC 6298 §2 (2.2): SRTT <- R, RTTVAR <- R/2.
            smoothedRTT = .nanoseconds(sample)
            rttVariance = .nanoseconds(sample / 2)
        }
        backoffCount = 0
    }

    /// RFC 6298 §5 (5.5): the retransmission timer expired; double the RTO.
    mutating func backOff() {
        backoffCount += 1
    }

    /// Forgets the backoff without a new measurement (e.g. new data acknowledged, RFC 6298 §5 (5.7)).
    mutating func resetBackoff() {
        backoffCount = 0
    }
}
