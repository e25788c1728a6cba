import NIOCore
import Testing
@testable import TCPIP

/// RFC 9438's arithmetic, one behaviour per test. Windows are driven a round trip at a time:
/// a cwnd-limited sender gets one ACK per segment of its window, spread over the RTT.
@Suite struct CubicTests {
    static let mss = 1000

    /// A cubic sender with a window of `segments` that has just had a congestion event at it.
    static func afterCongestionEvent(atSegments segments: Int) -> Cubic {
        var cubic = Cubic(maximumSegmentSize: mss, initialWindowSegments: segments)
        cubic.congestionEvent(flightSize: segments * mss, now: .zero)
        cubic.recoveryEnded()
        return cubic
    }

    /// Acknowledges one window's worth of segments, evenly over `rtt`, starting at `start`;
    /// returns the instant after the round trip.
    @discardableResult
    static func roundTrip(_ cubic: inout Cubic, start: Instant, rtt: TimeAmount) -> Instant {
        let segments = max(1, cubic.congestionWindow / mss)
        let step = TimeAmount.nanoseconds(rtt.nanoseconds / Int64(segments))
        var now = start
        for _ in 0..<segments {
            now += step
            cubic.acknowledged(bytes: mss, flightSize: cubic.congestionWindow, now: now, smoothedRTT: rtt)
        }
        return start + rtt
    }

    @Test func cubeRootIsAccurate() {
        #expect(abs(Cubic.cubeRoot(27) - 3) < 1e-9)
        #expect(abs(Cubic.cubeRoot(75) - 4.217163326508746) < 1e-9)
        #expect(abs(Cubic.cubeRoot(0.001) - 0.1) < 1e-9)
        #expect(Cubic.cubeRoot(0) == 0)
        #expect(Cubic.cubeRoot(-5) == 0)
    }

    @Test func multiplicativeDecreaseIsBetaCubic() {
        // RFC 9438 §4.6: ssthresh = cwnd · 0.7; cwnd = ssthresh when recovery ends.
        let cubic = Self.afterCongestionEvent(atSegments: 100)
        #expect(cubic.slowStartThreshold == 70_000)
        #expect(cubic.congestionWindow == 70_000)
    }

    @Test func reductionNeverGoesBelowTwoSegments() {
        let cubic = Self.afterCongestionEvent(atSegments: 2)
        #expect(cubic.slowStartThreshold == 2 * Self.mss)
    }

    @Test func windowReturnsToWMaxAroundK() {
        // RFC 9438 §4.2: after a reduction from W_max = 100 to 70 segments,
        // K = ∛((100 − 70)/0.4) = ∛75 ≈ 4.22 s; the window is concave below W_max before K
        // and passes it (convex) after. With a 100 ms RTT, cubic growth dominates Reno's.
        var cubic = Self.afterCongestionEvent(atSegments: 100)
        var now = Instant.zero
        let rtt = TimeAmount.milliseconds(100)
        var windowAt: [Int: Int] = [:]  // tenths of a second → segments
        for tick in 1...80 {
            now = Self.roundTrip(&cubic, start: now, rtt: rtt)
            windowAt[tick] = cubic.congestionWindow / Self.mss
        }
        // Concave: most of the distance is covered early, then growth slows near W_max.
        #expect(windowAt[10]! > 80 && windowAt[10]! < 100)
        #expect(windowAt[30]! >= 95 && windowAt[30]! <= 100)
        let plateau = windowAt[42]! - windowAt[38]!
        let early = windowAt[5]! - windowAt[1]!
        #expect(plateau < early)
        // Convex beyond K: growth speeds up again (W_cubic(8.1 s) ≈ 0.4·3.88³ + 100 ≈ 123).
        #expect(windowAt[80]! >= 118 && windowAt[80]! <= 126)
        #expect(windowAt[80]! - windowAt[76]! > plateau)
    }

    @Test func theWindowReachesWMaxOnThePlateauAndAnEventThereDoesNotCutItAgain() {
        // From W_max = 100 to 70 segments, K ≈ 4.22 s. Counted in whole segments (Linux's
        // arithmetic), W_cubic is W_max for |t − K| < ∛(1/0.4) ≈ 1.36 s: by 3.5 s the window is
        // 100 segments, not a fraction under, and an event there is at W_max, not below it
        // (RFC 9438 §4.7): no fast convergence, W_max stays 100 (with the exact curve: about
        // 99.9 segments at the event, and W_max cut to 84.9).
        var cubic = Self.afterCongestionEvent(atSegments: 100)
        var now = Instant.zero
        while now < .milliseconds(3500) {
            now = Self.roundTrip(&cubic, start: now, rtt: .milliseconds(100))
        }
        #expect(cubic.congestionWindow == 100_000)
        #expect(cubic.targetWindow(secondsSinceEpoch: 3.0) == 100)
        #expect(cubic.targetWindow(secondsSinceEpoch: 2.0) == 100 - 4)  // 0.4 · 2.22³ = 4.4
        #expect(cubic.targetWindow(secondsSinceEpoch: 8.1) == 100 + 23)  // 0.4 · 3.88³ = 23.4
        cubic.congestionEvent(flightSize: cubic.congestionWindow, now: now)
        #expect(abs(cubic.epoch.windowMax - 100) < 1e-9)
        #expect(cubic.slowStartThreshold == 70_000)
    }

    @Test func growthPerRoundTripIsBoundedByHalfTheWindow() {
        // RFC 9438 §4.4: target ≤ 1.5·cwnd, so a round trip adds at most half the window.
        var cubic = Self.afterCongestionEvent(atSegments: 10)
        var now = Instant.zero
        for _ in 0..<200 {
            let before = cubic.congestionWindow
            now = Self.roundTrip(&cubic, start: now, rtt: .milliseconds(100))
            #expect(cubic.congestionWindow <= before + before / 2 + Self.mss)
            #expect(cubic.congestionWindow >= before)
        }
    }

    @Test func renoFriendlyRegionOnShortRoundTrips() {
        // RFC 9438 §4.3: with a 1 ms RTT, W_cubic barely moves in 200 round trips (0.2 s), but
        // W_est grows by α_cubic ≈ 0.53 segment per RTT until cwnd_prior, then 1: CUBIC is at least
        // as fast as Reno at the same β. From 70: 30 segments in ~57 RTTs, then ~143 more ≈ 243.
        var cubic = Self.afterCongestionEvent(atSegments: 100)
        var now = Instant.zero
        for _ in 0..<200 {
            now = Self.roundTrip(&cubic, start: now, rtt: .milliseconds(1))
        }
        let segments = Double(cubic.congestionWindow) / Double(Self.mss)
        // The cubic curve alone would be at W_cubic(0.2 s) = 0.4·(0.2 − 4.22)³ + 100 ≈ 74 segments.
        #expect(segments > 235)
        #expect(segments < 250)
        #expect(cubic.congestionWindow > Int(cubic.cubicWindow(secondsSinceEpoch: 0.2) * Double(Self.mss)))
    }

    @Test func fastConvergenceLowersWMaxWhenTheWindowShrinks() {
        // RFC 9438 §4.7: a second event below the previous W_max sets W_max = cwnd·(1 + β)/2.
        var cubic = Self.afterCongestionEvent(atSegments: 100)  // W_max = 100, cwnd = 70
        cubic.congestionEvent(flightSize: cubic.congestionWindow, now: .seconds(1))
        cubic.recoveryEnded()
        // cwnd was 70 < 100: W_max = 70 · 0.85 = 59.5; cwnd = 49; K = ∛(10.5/0.4) ≈ 2.97 s.
        #expect(cubic.congestionWindow == 49_000)
        #expect(abs(cubic.epoch.windowMax - 59.5) < 1e-9)
        Self.roundTrip(&cubic, start: .seconds(1), rtt: .milliseconds(100))
        #expect(abs(cubic.epoch.k - Cubic.cubeRoot(10.5 / 0.4)) < 1e-9)
    }

    @Test func fastConvergenceComparesWithWMaxNotTheLastEventsWindow() {
        // RFC 9438 §4.7: "if cwnd < W_max", W_max being what the last event set, after its own
        // fast convergence (Linux's last_max_cwnd). Events at 100 and 70 segments leave W_max at
        // 59.5; a third at 65, past that W_max but below the 70 of the event before, is not a
        // further fall of the saturation point: W_max = 65, not 65 · 0.85 = 55.25.
        var cubic = Self.afterCongestionEvent(atSegments: 100)
        cubic.congestionEvent(flightSize: cubic.congestionWindow, now: .seconds(1))
        cubic.recoveryEnded()
        #expect(abs(cubic.epoch.windowMax - 59.5) < 1e-9)
        var now = Instant.seconds(1)
        while cubic.congestionWindow < 65_000 {
            now = Self.roundTrip(&cubic, start: now, rtt: .milliseconds(100))
        }
        let cwnd = Double(cubic.congestionWindow) / Double(Self.mss)
        #expect(cwnd >= 65 && cwnd < 70)
        cubic.congestionEvent(flightSize: cubic.congestionWindow, now: now)
        cubic.recoveryEnded()
        #expect(abs(cubic.epoch.windowMax - cwnd) < 1e-9)
        // Below that W_max, the next event reduces it again.
        cubic.congestionEvent(flightSize: cubic.congestionWindow, now: now + .seconds(1))
        #expect(abs(cubic.epoch.windowMax - cwnd * 0.7 * 0.85) < 1e-3)
    }

    @Test func timeoutReducesAndRestartsFromOneSegment() {
        // RFC 9438 §4.8: ssthresh by β_cubic, cwnd = 1 SMSS, then slow start.
        var cubic = Cubic(maximumSegmentSize: Self.mss, initialWindowSegments: 40)
        cubic.timeout(flightSize: 40_000, now: .zero)
        #expect(cubic.congestionWindow == Self.mss)
        #expect(cubic.slowStartThreshold == 28_000)
        cubic.acknowledged(bytes: Self.mss, flightSize: Self.mss, now: .milliseconds(10), smoothedRTT: .milliseconds(10))
        #expect(cubic.congestionWindow == 2 * Self.mss)
    }

    @Test func undoRestoresTheStateBeforeASpuriousEvent() {
        // RFC 9438 §4.9: a spurious congestion event is undone: cwnd, ssthresh and W_max come back.
        var cubic = Cubic(maximumSegmentSize: Self.mss, initialWindowSegments: 50)
        let before = (cubic.congestionWindow, cubic.slowStartThreshold)
        cubic.congestionEvent(flightSize: 50_000, now: .zero)
        cubic.recoveryEnded()
        #expect(cubic.congestionWindow == 35_000)
        cubic.undoLastCongestionEvent()
        #expect(cubic.congestionWindow == before.0)
        #expect(cubic.slowStartThreshold == before.1)
    }

    @Test func applicationLimitedSenderDoesNotGrow() {
        // RFC 9438 §5.8: no growth while the application, not cwnd, limits the flow.
        var cubic = Self.afterCongestionEvent(atSegments: 100)
        for step in 1...100 {
            cubic.acknowledged(bytes: Self.mss, flightSize: 10 * Self.mss, now: .milliseconds(Int64(step * 10)), smoothedRTT: .milliseconds(100))
        }
        #expect(cubic.congestionWindow == 70_000)
    }

    @Test func lossTakesCwndForFlightSizeAsLinuxDoes() {
        // RFC 9438 §4.6 allows cwnd in place of flight_size (Linux's bictcp_recalc_ssthresh): a
        // loss while the receiver's window held 10 segments in flight, cwnd at 20, reduces from 20.
        var cubic = Cubic(maximumSegmentSize: Self.mss, initialWindowSegments: 20)
        cubic.congestionEvent(CongestionEvent(kind: .loss, flightSize: 10 * Self.mss, now: .zero, startsEpisode: true))
        #expect(cubic.slowStartThreshold == 14_000)
        cubic.recoveryEnded(now: .milliseconds(100))
        #expect(cubic.congestionWindow == 14_000)
        // A timeout still takes FlightSize (cwnd is one segment in a repeated one).
        var timedOut = Cubic(maximumSegmentSize: Self.mss, initialWindowSegments: 20)
        timedOut.congestionEvent(
            CongestionEvent(kind: .retransmissionTimeout, flightSize: 10 * Self.mss, now: .zero, startsEpisode: true))
        #expect(timedOut.slowStartThreshold == 7_000)
        #expect(timedOut.congestionWindow == Self.mss)
    }

    @Test func slowStartAddsOneSegmentPerAckUpToSSThresh() {
        var cubic = Cubic(maximumSegmentSize: Self.mss, initialWindowSegments: 10)
        for step in 1...10 {
            cubic.acknowledged(bytes: Self.mss, flightSize: cubic.congestionWindow, now: .milliseconds(Int64(step)), smoothedRTT: nil)
        }
        #expect(cubic.congestionWindow == 20 * Self.mss)
    }

    /// The algorithm starts at its first event (`startCongestionControl`): a connection that sends
    /// only its FIN never allocates it, and one that sends data starts it on the first ACK of data,
    /// from the initial window the placeholder held.
    @Test func algorithmStartsAtItsFirstEvent() throws {
        func hasStarted(_ t: TCPTester) -> Bool? {
            t.stack.connections.withElement(t.connection!.handle) { $0.congestionControlStarted }
        }
        var closing = try TCPTester(.finWait1)
        try closing.expect("+0 > F. 1:1(0) ack 1")
        #expect(hasStarted(closing) == false)
        #expect(closing.status?.congestionWindow == 14_600)
        try closing.inject("+.01 < . 1:1(0) ack 2 win 65535")
        #expect(closing.state == .finWait2)
        #expect(hasStarted(closing) == false)

        var sending = try TCPTester(.established)
        #expect(hasStarted(sending) == false)
        try sending.app.send(20_000)
        for segment in 0..<10 {
            let start = 1 + 1460 * segment
            try sending.expect("+0 > . \(start):\(start + 1460)(1460) ack 1")
        }
        #expect(hasStarted(sending) == false)
        #expect(sending.status?.congestionWindow == 14_600)
        try sending.inject("+.1 < . 1:1(0) ack 2921 win 65535")
        #expect(hasStarted(sending) == true)
        // RFC 5681 §3.1 slow start from the initial window, as if CUBIC had run from the start.
        #expect(sending.status?.congestionWindow == 16_060)
    }
}

extension Instant {
    fileprivate static func seconds(_ s: Int64) -> Instant { Instant(nanoseconds: s * 1_000_000_000) }
    fileprivate static func milliseconds(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

}
