import NIOCore
import TCPIPWire

/// CUBIC congestion control (RFC 9438).
///
/// Window growth in congestion avoidance is a cubic function of the time since the last
/// congestion event, centred on W_max, the window where that event happened (§4.2): concave
/// while approaching W_max, a plateau around it, convex beyond it. A Reno-friendly estimate
/// W_est (§4.3) keeps CUBIC at least as aggressive as Reno on short-RTT paths. After a
/// congestion event the window shrinks to β_cubic = 0.7 of what it was (§4.6), with fast
/// convergence (§4.7) releasing bandwidth to newer flows.
///
/// The algorithm works in segments, as the RFC does; cwnd and ssthresh are kept in bytes for
/// the connection. Time is whatever `Instant` the connection passes: the stack reads no clock.
public struct Cubic: Sendable {
    /// RFC 9438 §5: C = 0.4 (segments per second cubed).
    public static let c = 0.4
    /// RFC 9438 §4.6: β_cubic = 0.7.
    public static let beta = 0.7
    /// RFC 9438 §4.3: α_cubic = 3·(1 − β_cubic)/(1 + β_cubic), Reno's average rate for β_cubic.
    public static let alpha = 3 * (1 - beta) / (1 + beta)

    public private(set) var congestionWindow: Int
    public private(set) var slowStartThreshold: Int = .max

    private let mss: Int
    private let initialWindow: Int
    /// The state a congestion event changes: kept whole so a spurious event can be undone (§4.9).
    private(set) var epoch = Epoch()
    private var undo: (epoch: Epoch, cwnd: Int, ssthresh: Int, hyStart: HyStart?)?
    /// HyStart++ (RFC 9406) while the first slow start lasts; nil without it, and after.
    public private(set) var hyStart: HyStart?

    struct Epoch: Sendable {
        /// W_max: the window, in segments, just before the last reduction (after fast convergence).
        var windowMax: Double = 0
        /// W_max as the last congestion event set it (after fast convergence), for the next
        /// event's comparison (§4.7: "if cwnd < W_max"); `avoid` may move `windowMax` up to cwnd at
        /// an epoch's start (the plateau), this keeps the event's value, as Linux's last_max_cwnd.
        var lastWindowMax: Double = 0
        /// When the current congestion-avoidance stage began (t = 0); nil until its first ACK.
        var start: Instant?
        /// K: when W_cubic(t) reaches W_max again, in seconds after `start`.
        var k: Double = 0
        /// W_est: the Reno-friendly estimate, in segments (§4.3).
        var renoEstimate: Double = 0
        /// cwnd_prior: the window just before the last reduction, in segments (§4.3's switch to α = 1).
        var windowPrior: Double = 0
        /// When the last acknowledgment was handled, to skip time the sender spent application-limited.
        var lastAcknowledgment: Instant?
    }

    /// RFC 3465's L in segments (nil: no limit); see `CongestionControlAlgorithm.slowStartIncrease`.
    private let slowStartLimitSegments: Int?

    /// CUBIC for segments of `maximumSegmentSize`, starting at `initialWindowSegments` segments, with RFC
    /// 3465's L and HyStart++ (RFC 9406) as asked.
    public init(maximumSegmentSize: Int, initialWindowSegments: Int, slowStartLimitSegments: Int? = 1, hyStart: Bool = false) {
        mss = max(1, maximumSegmentSize)
        initialWindow = CongestionControlAlgorithm.initialWindow(
            maximumSegmentSize: mss, segments: initialWindowSegments)
        congestionWindow = initialWindow
        self.slowStartLimitSegments = slowStartLimitSegments
        self.hyStart = hyStart ? HyStart() : nil
    }

    private var windowSegments: Double { Double(congestionWindow) / Double(mss) }

    /// W_cubic(t) = C·(t − K)³ + W_max (RFC 9438 §4.2, equation 1), in segments.
    func cubicWindow(secondsSinceEpoch t: Double) -> Double {
        let offset = t - epoch.k
        return Cubic.c * offset * offset * offset + epoch.windowMax
    }

    /// W_cubic(t) as a window that moves in whole segments: its distance from W_max, C·|t − K|³,
    /// counted in whole segments (rounded towards W_max). RFC 9438 leaves the arithmetic to the
    /// implementation; this is Linux's (`bictcp_update`: delta = ⌊C·|t − K|³⌋ segments), and it
    /// makes the plateau flat: for |t − K| < ∛(1/C) ≈ 1.36 s the target is W_max itself, where the
    /// exact curve stays a fraction of a segment under it until K — and an event there would
    /// count as "cwnd < W_max" (§4.7) and cut W_max again, though the flow is at the same
    /// saturation point as far as whole segments on the wire can tell (issue 20, 200 ms / 0.1 %).
    func targetWindow(secondsSinceEpoch t: Double) -> Double {
        let offset = t - epoch.k
        let distance = (Cubic.c * abs(offset) * offset * offset).rounded(.down)
        return offset < 0 ? epoch.windowMax - distance : epoch.windowMax + distance
    }

    /// Bytes newly acknowledged outside of recovery.
    ///
    /// - Parameters:
    ///   - bytes: octets this acknowledgment newly covers.
    ///   - flightSize: bytes outstanding before this acknowledgment.
    ///   - now: the time of the acknowledgment, for t in W_cubic(t).
    ///   - smoothedRTT: SRTT, for the target W_cubic(t + RTT); nil before the first sample.
    ///   - delivered: RFC 6937 §3 DeliveredData of the ACK (for slow start without a limit); nil: `bytes`.
    ///   - heldByPacing: data the peer's window had room for was waiting for the pacing rate.
    public mutating func acknowledged(
        bytes: Int, delivered: Int? = nil, flightSize: Int, heldByPacing: Bool = false, now: Instant, smoothedRTT: TimeAmount?
    ) {
        guard bytes > 0 else { return }
        defer { epoch.lastAcknowledgment = now }
        // RFC 9438 §5.8: no growth while the application, not cwnd, limits the flow (as Linux's
        // tcp_is_cwnd_limited: in slow start, half the window in flight is enough); and the time
        // spent so does not count towards t, or the window would jump when the sender resumes.
        // A sender whose pacing holds data back is not limited by its application, though less
        // than cwnd is in flight: ACKs that come in bursts (a router's timer, a receiver's
        // coalescing) find the flight a few segments short while the pacer spreads the burst out.
        // (Linux's check is per window, not per ACK: tcp_cwnd_validate keeps is_cwnd_limited for
        // the window in which cwnd was once full.) Counting those ACKs as application-limited kept
        // cwnd below W_cubic (issue 20, 200 ms / 0.1 %: a third of the ACKs at a window of 260
        // segments, 25 segments behind the curve after 1.7 s).
        let inSlowStart = congestionWindow < slowStartThreshold
        let cwndLimited = heldByPacing
            || (inSlowStart ? flightSize * 2 >= congestionWindow : flightSize + 3 * mss >= congestionWindow)
        guard cwndLimited else {
            if let start = epoch.start, let last = epoch.lastAcknowledgment, now > last {
                epoch.start = start + (now - last)
            }
            return
        }
        if inSlowStart {
            // RFC 9438 §4.10: slow start as RFC 5681 §3.1 (cwnd += min(N, L) per ACK, L = SMSS by
            // default, RFC 3465 §2), up to ssthresh; RFC 9406 §4.2: a quarter of that in CSS.
            let increase = CongestionControlAlgorithm.slowStartIncrease(
                acknowledged: bytes, delivered: delivered, mss: mss, limitSegments: slowStartLimitSegments)
            congestionWindow = min(congestionWindow + (hyStart?.slowStartIncrease(increase) ?? increase), slowStartThreshold)
            return
        }
        avoid(bytes: bytes, now: now, rtt: smoothedRTT)
    }

    /// RFC 9438 §4.2–§4.5: congestion avoidance.
    private mutating func avoid(bytes: Int, now: Instant, rtt: TimeAmount?) {
        let cwnd = windowSegments
        if epoch.start == nil {
            // The first ACK of a congestion-avoidance stage starts the epoch (§4.2: t = 0).
            epoch.start = now
            if epoch.windowMax <= cwnd {
                // No congestion event yet, or the window already passed W_max (after an RTO
                // or an undo): the plateau is here and growth is convex from now on.
                epoch.k = 0
                epoch.windowMax = cwnd
            } else {
                // K = ∛((W_max − cwnd_epoch)/C) (§4.2, equation 2).
                epoch.k = Cubic.cubeRoot((epoch.windowMax - cwnd) / Cubic.c)
            }
            epoch.renoEstimate = cwnd
        }
        let start = epoch.start ?? now
        let segmentsAcked = Double(bytes) / Double(mss)
        let rttSeconds = Double((rtt ?? .milliseconds(100)).nanoseconds) / 1e9
        let t = Double((now - start).nanoseconds) / 1e9

        // §4.3: W_est grows by α_cubic segments per window acknowledged; α becomes 1 once
        // W_est reaches cwnd_prior, where Reno would have been before the reduction.
        let alpha = epoch.renoEstimate >= epoch.windowPrior ? 1.0 : Cubic.alpha
        epoch.renoEstimate += alpha * segmentsAcked / cwnd

        let next: Double
        if cubicWindow(secondsSinceEpoch: t) < epoch.renoEstimate {
            // §4.3: the Reno-friendly region: cwnd = W_est.
            next = epoch.renoEstimate
        } else {
            // §4.4/§4.5: target = W_cubic(t + RTT), kept within [cwnd, 1.5·cwnd]; cwnd grows
            // by (target − cwnd)/cwnd per segment acknowledged. A gap of less than a segment
            // closes at one segment per window acknowledged, as an integer window's would (Linux:
            // cnt = cwnd/(target − cwnd), the difference at least 1), and cwnd stops at the
            // target: on the plateau the window reaches W_max instead of creeping towards it.
            let target = min(max(targetWindow(secondsSinceEpoch: t + rttSeconds), cwnd), 1.5 * cwnd)
            let gap = target > cwnd ? max(target - cwnd, 1) : 0
            next = min(cwnd + gap / cwnd * segmentsAcked, target)
        }
        // Whole bytes; never below what we had, never a jump of more than the bytes acknowledged (§4.4's
        // bound of 1.5·cwnd per RTT spread over the ACKs of that RTT).
        let grown = Int((next * Double(mss)).rounded(.down))
        congestionWindow = max(congestionWindow, min(grown, congestionWindow + bytes))
    }

    /// A congestion event (fast retransmit or a RACK-detected loss) at `now`: RFC 9438 §4.6/§4.7.
    /// An event inside an episode still open (`startsEpisode` false) keeps the state `undo` restores.
    public mutating func congestionEvent(flightSize: Int, now: Instant, startsEpisode: Bool = true) {
        if startsEpisode || undo == nil { undo = (epoch, congestionWindow, slowStartThreshold, hyStart) }
        // RFC 9406 §4.2: loss or ECN during slow start or CSS ends HyStart++, with CUBIC's response;
        // §4.3: later slow starts are standard ones, up to the ssthresh set here.
        hyStart = nil
        let cwnd = windowSegments
        // §4.7 fast convergence: an event below W_max (the one the last event set, reduced or not)
        // means the flow's saturation point fell; W_max goes further down, to cwnd·(1 + β)/2.
        // (Comparing with the last event's cwnd instead, as RFC 8312 §4.6's W_last_max did, reduces
        // W_max again whenever cwnd has not climbed back past that cwnd, though it passed W_max.)
        // Compared in whole octets, as the window is kept: a window that reached W_max on the
        // plateau (`targetWindow`) is not below it by the fraction of an octet W_max carries.
        if congestionWindow < Int((epoch.lastWindowMax * Double(mss)).rounded(.down)) {
            epoch.windowMax = cwnd * (1 + Cubic.beta) / 2
        } else {
            epoch.windowMax = cwnd
        }
        epoch.lastWindowMax = epoch.windowMax
        epoch.windowPrior = cwnd
        epoch.start = nil
        // §4.6 (Figure 5): ssthresh = flight_size·β_cubic, at least 2 segments.
        slowStartThreshold = max(Int((Double(flightSize) * Cubic.beta).rounded(.down)), 2 * mss)
    }

    /// §4.6: the window after the reduction, once recovery ends.
    public mutating func recoveryEnded() {
        congestionWindow = max(slowStartThreshold, 2 * mss)
        epoch.start = nil
    }

    /// §4.8: a retransmission timeout: the reduction of §4.6, then cwnd = 1 SMSS and slow start.
    public mutating func timeout(flightSize: Int, now: Instant, startsEpisode: Bool = true) {
        congestionEvent(flightSize: flightSize, now: now, startsEpisode: startsEpisode)
        congestionWindow = mss
    }

    /// §4.9: the last congestion event was spurious: go back to the state before it.
    public mutating func undoLastCongestionEvent() {
        guard let saved = undo else { return }
        epoch = saved.epoch
        congestionWindow = max(congestionWindow, saved.cwnd)
        slowStartThreshold = saved.ssthresh
        // A spurious loss did not end the first slow start: HyStart++ watches it again.
        hyStart = saved.hyStart
        undo = nil
    }

    /// RFC 5681 §4.1 restart window after idle; a new epoch begins with the next growth.
    public mutating func idleRestart() {
        congestionWindow = min(initialWindow, congestionWindow)
        epoch.start = nil
    }

    /// ∛x for x ≥ 0, by Newton's method (TCPIP imports no libm).
    static func cubeRoot(_ x: Double) -> Double {
        guard x > 0 else { return 0 }
        var y = x > 1 ? x / 3 : 1
        for _ in 0..<100 {
            let next = y - (y * y * y - x) / (3 * y * y)
            if abs(next - y) <= 1e-12 * max(1, next) { return next }
            y = next
        }
        return y
    }
}

extension Cubic: CongestionControl {
    public var name: String { "cubic" }

    public mutating func acknowledged(_ sample: AcknowledgmentSample) {
        acknowledged(
            bytes: sample.bytesAcknowledged, delivered: sample.deliveredData, flightSize: sample.flightSize,
            heldByPacing: sample.heldByPacing, now: sample.now, smoothedRTT: sample.smoothedRTT)
    }

    public mutating func congestionEvent(_ event: CongestionEvent) {
        switch event.kind {
        case .loss:
            // §4.6: ssthresh and W_max at once; PRR (RFC 6937) in the connection paces recovery.
            // §4.6 allows cwnd in place of flight_size where cwnd does not grow while less is in
            // flight (`acknowledged`: §5.8's check); Linux's CUBIC takes cwnd (bictcp_recalc_ssthresh).
            // DEVIATION(RFC 9438 §4.6): that check lets slow start grow cwnd while half of it is in
            // flight (as Linux's tcp_is_cwnd_limited), so ssthresh may come out above β·FlightSize,
            // because a sender held in slow start by the receiver's window otherwise leaves recovery
            // at β times that window when the receiver opens it: behind a Linux receiver's 79 KB
            // (which stayed so until the first loss, for Linux's sender and ours alike), at 200 ms
            // and 0.1 % loss, 29 segments where Linux's CUBIC, from the same slow start with cwnd at
            // 136, left at 95 (docs/vs-kernel-under-loss.md, fifth pass).
            congestionEvent(flightSize: congestionWindow, now: event.now, startsEpisode: event.startsEpisode)
        case .retransmissionTimeout:
            timeout(flightSize: event.flightSize, now: event.now, startsEpisode: event.startsEpisode)
        case .explicitCongestionNotification:
            // RFC 9438 §4.6 applies β_cubic to "a congestion event ... ECN-Echo" as to a loss; with
            // no recovery to wait for, cwnd takes the reduced value at once (RFC 3168 §6.1.2).
            congestionEvent(flightSize: event.flightSize, now: event.now, startsEpisode: event.startsEpisode)
            congestionWindow = max(mss, min(congestionWindow, slowStartThreshold))
        }
    }

    public mutating func recoveryEnded(now: Instant) {
        recoveryEnded()
    }

    public mutating func undo(now: Instant) {
        undoLastCongestionEvent()
    }

    public mutating func restartAfterIdle(now: Instant) {
        idleRestart()
    }

    public mutating func roundTripSampled(
        acknowledged: SequenceNumber, highestSent: SequenceNumber, rtt: TimeAmount?
    ) -> HyStart.Transition? {
        // RFC 9438 §4.10: after HyStart++, CUBIC's curve starts from ssthresh = cwnd, with W_max = cwnd.
        HyStart.sample(
            &hyStart, acknowledged: acknowledged, highestSent: highestSent, rtt: rtt,
            congestionWindow: congestionWindow, slowStartThreshold: &slowStartThreshold)
    }
}
