import NIOCore
import TCPIPWire

/// HyStart++ (RFC 9406): slow start that watches the round-trip time, and leaves for congestion
/// avoidance when a queue starts to build instead of when it overflows.
///
/// Slow start doubles the window each round trip until a loss stops it; against a drop-tail queue of
/// one bandwidth-delay product that overshoots by up to a window, and the recovery that follows costs
/// more than slow start won. HyStart++ takes the smallest RTT sample of each round (one window of
/// data); when it rises by more than an eighth of the last round's (4–16 ms), the queue is filling,
/// and growth slows to a quarter (Conservative Slow Start) for five rounds before congestion avoidance
/// takes over with ssthresh = cwnd. A rise that was jitter — a CSS round whose minimum falls back
/// below the one that started CSS — returns to slow start.
///
///     slow start ──RTT rose ≥ threshold──▶ CSS ──5 rounds──▶ done (ssthresh = cwnd)
///         ▲                                 │
///         └──── RTT fell below baseline ────┘      loss or ECN, in either: done (the algorithm's response)
///
/// Its own unit: the algorithm (`NewReno`, `Cubic`) holds one while slow start is HyStart++'s, asks
/// it how much an ACK grows cwnd, and tells it of each ACK's RTT sample; the connection's loss
/// recovery knows nothing of it. Used only for the first slow start (RFC 9406 §4.3: later ones
/// have the ssthresh a congestion event set).
public struct HyStart: Sendable, Hashable {
    /// RFC 9406 §4.3: MIN_RTT_THRESH, the least rise in RTT that ends slow start.
    public static let minimumRTTThreshold = TimeAmount.milliseconds(4)
    /// RFC 9406 §4.3: MAX_RTT_THRESH, the most a rise must be to end it.
    public static let maximumRTTThreshold = TimeAmount.milliseconds(16)
    /// RFC 9406 §4.3: MIN_RTT_DIVISOR, the threshold as a fraction of the last round's minimum.
    public static let minimumRTTDivisor: Int64 = 8
    /// RFC 9406 §4.3: N_RTT_SAMPLE, samples a round needs before its minimum is compared.
    public static let samplesPerRound = 8
    /// RFC 9406 §4.3: CSS_GROWTH_DIVISOR, how much slower CSS grows than slow start.
    public static let growthDivisor = 4
    /// RFC 9406 §4.3: CSS_ROUNDS, rounds of CSS before congestion avoidance.
    public static let conservativeRounds = 5

    /// Where the first slow start is.
    public enum Phase: Sendable, Hashable {
        /// Standard slow start, watching each round's minimum RTT.
        case slowStart
        /// Conservative Slow Start (RFC 9406 §4.2), entered when a round's minimum was `baseline`
        /// (cssBaselineMinRtt); `rounds` rounds have ended in it.
        case conservative(baseline: TimeAmount, rounds: Int)
    }

    /// What an ACK changed, for the connection's trace.
    public enum Transition: Sendable, Hashable {
        /// The round's minimum RTT rose from `lastRound` to `currentRound`, at least `threshold`: CSS.
        case enteredConservativeSlowStart(lastRound: TimeAmount, currentRound: TimeAmount, threshold: TimeAmount)
        /// A CSS round's minimum fell below the baseline: the exit was spurious, slow start again.
        case resumedSlowStart(currentRound: TimeAmount, baseline: TimeAmount)
        /// CSS_ROUNDS rounds of CSS ended: congestion avoidance with ssthresh = cwnd.
        case leftSlowStart
    }

    /// Where the first slow start is: standard slow start, or conservative slow start (RFC 9406 §4.2).
    public private(set) var phase = Phase.slowStart
    /// windowEnd: the round ends when an ACK covers it (SND.NXT when the round began); nil before
    /// the first ACK.
    private var windowEnd: SequenceNumber?
    /// lastRoundMinRTT and currentRoundMinRTT; nil is the RFC's infinity.
    private var lastRoundMinimumRTT: TimeAmount?
    private var currentRoundMinimumRTT: TimeAmount?
    /// rttSampleCount: samples taken in the current round.
    private var samples = 0

    /// HyStart++ at the start of slow start.
    public init() {}

    /// RFC 9406 §4.2: cwnd grows by `increase` (min(N, L·SMSS)) in slow start, by a
    /// CSS_GROWTH_DIVISOR-th of it in CSS.
    public func slowStartIncrease(_ increase: Int) -> Int {
        switch phase {
        case .slowStart: increase
        case .conservative: increase / Self.growthDivisor
        }
    }

    /// One ACK's RTT sample for a congestion controller's HyStart++ (`nil` once it has ended). On
    /// leaving slow start, RFC 9406 §4.2: congestion avoidance begins with ssthresh = cwnd, and
    /// HyStart++ ends for the connection.
    static func sample(
        _ hyStart: inout HyStart?, acknowledged: SequenceNumber, highestSent: SequenceNumber, rtt: TimeAmount?,
        congestionWindow: Int, slowStartThreshold: inout Int
    ) -> Transition? {
        guard hyStart != nil else { return nil }
        let transition = hyStart?.acknowledgment(acknowledged: acknowledged, highestSent: highestSent, rtt: rtt)
        if transition == .leftSlowStart {
            slowStartThreshold = congestionWindow
            hyStart = nil
        }
        return transition
    }

    /// An ACK that advanced SND.UNA during the first slow start (RFC 9406 §4.2).
    ///
    /// - Parameters:
    ///   - acknowledged: SEG.ACK; a round ends when it reaches the round's windowEnd.
    ///   - highestSent: SND.NXT (the highest sent), the next round's windowEnd.
    ///   - rtt: this ACK's RTT sample, nil when it gave none (Karn's rule without timestamps).
    /// - Returns: a change of phase, nil when there was none.
    public mutating func acknowledgment(
        acknowledged: SequenceNumber, highestSent: SequenceNumber, rtt: TimeAmount?
    ) -> Transition? {
        if windowEnd.map({ acknowledged.isAtOrAfter($0) }) ?? true {
            // RFC 9406 §4.2: at the start of each round, lastRoundMinRTT = currentRoundMinRTT,
            // currentRoundMinRTT = infinity, rttSampleCount = 0, windowEnd = SND.NXT.
            let firstRound = windowEnd == nil
            lastRoundMinimumRTT = currentRoundMinimumRTT
            currentRoundMinimumRTT = nil
            samples = 0
            windowEnd = highestSent
            if !firstRound, case .conservative(let baseline, let rounds) = phase {
                // RFC 9406 §4.2: "If CSS_ROUNDS rounds are complete during CSS, enter congestion
                // avoidance by setting the ssthresh to the current cwnd."
                guard rounds + 1 < Self.conservativeRounds else { return .leftSlowStart }
                phase = .conservative(baseline: baseline, rounds: rounds + 1)
            }
        }
        guard let rtt else { return nil }
        // RFC 9406 §4.2: currentRoundMinRTT = min(currentRoundMinRTT, currRTT); rttSampleCount += 1.
        let current = min(currentRoundMinimumRTT ?? rtt, rtt)
        currentRoundMinimumRTT = current
        samples += 1
        guard samples >= Self.samplesPerRound else { return nil }
        switch phase {
        case .slowStart:
            // RFC 9406 §4.2: with N_RTT_SAMPLE samples and both minima known,
            // RttThresh = max(MIN_RTT_THRESH, min(lastRoundMinRTT / MIN_RTT_DIVISOR, MAX_RTT_THRESH));
            // a round whose minimum is at least lastRoundMinRTT + RttThresh enters CSS.
            guard let last = lastRoundMinimumRTT else { return nil }
            let threshold = max(
                Self.minimumRTTThreshold,
                min(.nanoseconds(last.nanoseconds / Self.minimumRTTDivisor), Self.maximumRTTThreshold))
            guard current >= last + threshold else { return nil }
            phase = .conservative(baseline: current, rounds: 0)
            return .enteredConservativeSlowStart(lastRound: last, currentRound: current, threshold: threshold)
        case .conservative(let baseline, _):
            // RFC 9406 §4.2: "if (currentRoundMinRTT < cssBaselineMinRtt)": the exit was spurious;
            // cssBaselineMinRtt = infinity, and slow start resumes, HyStart++ included.
            guard current < baseline else { return nil }
            phase = .slowStart
            return .resumedSlowStart(currentRound: current, baseline: baseline)
        }
    }
}
