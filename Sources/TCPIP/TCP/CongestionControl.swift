import NIOCore

/// The algorithm that sizes cwnd. Loss *detection* (duplicate ACKs, timeouts, NewReno's
/// `recover`) lives in the connection; the algorithm only answers "how big may the window
/// be now". NewReno is here; CUBIC, and later BBR, implement the same protocol.
public protocol CongestionControl: Sendable {
    /// cwnd, in bytes.
    var congestionWindow: Int { get }
    /// ssthresh, in bytes.
    var slowStartThreshold: Int { get }
    /// The algorithm's name as `ss -i` prints it.
    var name: String { get }

    /// New data was cumulatively acknowledged outside of loss recovery.
    mutating func acknowledged(bytes: Int, flightSize: Int, now: Instant, smoothedRTT: TimeAmount?)
    /// Three duplicate ACKs (or SACK evidence) started fast recovery.
    mutating func enteredRecovery(flightSize: Int, now: Instant)
    /// Another duplicate ACK arrived during recovery: a segment has left the network.
    mutating func duplicateAckDuringRecovery()
    /// A partial ACK during recovery acknowledged `bytes`.
    mutating func partialAckDuringRecovery(bytes: Int)
    /// The ACK covering `recover` arrived: recovery is over.
    mutating func exitedRecovery(flightSize: Int)
    /// The retransmission timer expired.
    mutating func retransmissionTimeout(flightSize: Int, now: Instant)
    /// The connection sat idle for longer than an RTO (RFC 5681 §4.1: restart from the initial window).
    mutating func restartAfterIdle()
}

/// Which algorithm a connection uses.
public enum CongestionControlAlgorithm: String, Sendable, CaseIterable {
    case newReno = "reno"
    case cubic = "cubic"

    func make(maximumSegmentSize: Int, initialWindowSegments: Int) -> any CongestionControl {
        switch self {
        case .newReno: NewReno(maximumSegmentSize: maximumSegmentSize, initialWindowSegments: initialWindowSegments)
        case .cubic: Cubic(maximumSegmentSize: maximumSegmentSize, initialWindowSegments: initialWindowSegments)
        }
    }
}

/// RFC 5681 slow start and congestion avoidance, with the NewReno modification of fast
/// recovery (RFC 6582).
public struct NewReno: CongestionControl {
    public private(set) var congestionWindow: Int
    public private(set) var slowStartThreshold: Int = .max
    public var name: String { "reno" }
    private let mss: Int
    private let initialWindow: Int
    /// Bytes acknowledged since cwnd last grew in congestion avoidance (RFC 5681 §3.1, byte counting).
    private var bytesAckedInAvoidance = 0

    public init(maximumSegmentSize: Int, initialWindowSegments: Int) {
        mss = max(1, maximumSegmentSize)
        initialWindow = mss * max(1, initialWindowSegments)
        congestionWindow = initialWindow
    }

    public mutating func acknowledged(bytes: Int, flightSize: Int, now: Instant, smoothedRTT: TimeAmount?) {
        if congestionWindow < slowStartThreshold {
            // RFC 5681 §3.1 (equation 2): cwnd += min(N, SMSS) per ACK during slow start.
            congestionWindow += min(bytes, mss)
        } else {
            // RFC 5681 §3.1: in congestion avoidance, one SMSS per RTT, counted in bytes acknowledged.
            bytesAckedInAvoidance += bytes
            if bytesAckedInAvoidance >= congestionWindow {
                bytesAckedInAvoidance -= congestionWindow
                congestionWindow += mss
            }
        }
    }

    public mutating func enteredRecovery(flightSize: Int, now: Instant) {
        // RFC 5681 §3.2 step 2 (equation 4): ssthresh = max(FlightSize / 2, 2*SMSS).
        slowStartThreshold = max(flightSize / 2, 2 * mss)
        // RFC 6582 §3.2 step 2 / RFC 5681 §3.2 step 3: cwnd = ssthresh + 3*SMSS.
        congestionWindow = slowStartThreshold + 3 * mss
        bytesAckedInAvoidance = 0
    }

    public mutating func duplicateAckDuringRecovery() {
        // RFC 5681 §3.2 step 4: inflate by one SMSS for each additional duplicate ACK.
        congestionWindow += mss
    }

    public mutating func partialAckDuringRecovery(bytes: Int) {
        // RFC 6582 §3.2 step 5: deflate by the amount acknowledged, add back one SMSS if
        // that was at least one SMSS.
        congestionWindow = max(mss, congestionWindow - bytes)
        if bytes >= mss { congestionWindow += mss }
    }

    public mutating func exitedRecovery(flightSize: Int) {
        // RFC 6582 §3.2 step 3, option (1) with the guard against a burst:
        // cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
        congestionWindow = min(slowStartThreshold, max(flightSize, mss) + mss)
    }

    public mutating func retransmissionTimeout(flightSize: Int, now: Instant) {
        // RFC 5681 §3.1 (equation 4) and the loss window: cwnd = 1 SMSS.
        slowStartThreshold = max(flightSize / 2, 2 * mss)
        congestionWindow = mss
        bytesAckedInAvoidance = 0
    }

    public mutating func restartAfterIdle() {
        // RFC 5681 §4.1: restart window = min(IW, cwnd).
        congestionWindow = min(initialWindow, congestionWindow)
    }
}
