import NIOCore
import Testing
import TCPIPWire
@testable import TCPIP

/// HyStart++ (RFC 9406 §4.2–§4.3), one rule per test, on a sender driven a round trip at a time: the
/// receiver acknowledges every segment, each ACK carries an RTT sample, and the sender refills its
/// window after each ACK — the ACK clock of slow start. The lines read like packetdrill's: a round
/// at an RTT, then what cwnd, ssthresh and the phase became.
@Suite struct HyStartTests {
    static let mss = 1000

    /// A sender in slow start with HyStart++, and the sequence space it has used.
    struct Sender {
        var algorithm: any CongestionControl
        var una = SequenceNumber(0xFFFF_F000)
        var sent: SequenceNumber
        var now = Instant.zero
        var transitions: [HyStart.Transition] = []

        init(_ algorithm: CongestionControlAlgorithm = .newReno, initialSegments: Int = 10) {
            self.algorithm = algorithm.make(
                maximumSegmentSize: HyStartTests.mss, initialWindowSegments: initialSegments, slowStartLimitSegments: 1,
                hyStart: true)
            sent = una + self.algorithm.congestionWindow
        }

        var hyStart: HyStart? {
            switch algorithm {
            case let reno as NewReno: reno.hyStart
            case let cubic as Cubic: cubic.hyStart
            default: nil
            }
        }
        var cwnd: Int { algorithm.congestionWindow }
        var ssthresh: Int { algorithm.slowStartThreshold }
        var inCSS: Bool { if case .conservative = hyStart?.phase { true } else { false } }

        /// One round trip, as HyStart++ counts them: its first ACK acknowledges the segment that
        /// ended the last round (windowEnd) and starts this one, whose windowEnd is SND.NXT then;
        /// the ACKs that follow, one per segment, run up to the segment before that. Each ACK carries
        /// the RTT sample `rtt` (every `samplesEvery`-th one does; the rest none), and the window
        /// is refilled after each.
        mutating func round(rtt milliseconds: Int64?, samplesEvery: Int = 1) {
            let rtt = milliseconds.map { TimeAmount.milliseconds($0) }
            let end = sent
            var index = 0
            repeat {
                now = now + .milliseconds(1)
                let flight = Int(una.octets(to: sent))
                una = una + HyStartTests.mss
                let sample = index % samplesEvery == 0 ? rtt : nil
                index += 1
                if let transition = algorithm.roundTripSampled(acknowledged: una, highestSent: sent, rtt: sample) {
                    transitions.append(transition)
                }
                algorithm.acknowledged(AcknowledgmentSample(
                    bytesAcknowledged: HyStartTests.mss, flightSize: flight, now: now, smoothedRTT: rtt, minimumRTT: rtt))
                if Int(una.octets(to: sent)) < cwnd { sent = una + cwnd }
            } while una.isBefore(end - UInt32(HyStartTests.mss))
        }
    }

    /// RFC 9406 §4.2: a round whose minimum RTT is at least lastRoundMinRTT + RttThresh enters CSS;
    /// RttThresh is an eighth of the last round's minimum (here 100 ms / 8 = 12.5 ms).
    @Test func riseOfAnEighthEntersConservativeSlowStart() {
        var s = Sender()
        s.round(rtt: 100)                      // the first round: nothing to compare with
        s.round(rtt: 100)
        s.round(rtt: 112)                      // +12 ms < 12.5 ms: slow start goes on
        #expect(s.hyStart?.phase == .slowStart)
        #expect(s.transitions.isEmpty)
        s.round(rtt: 125)                      // +13 ms over 112 ms: threshold 14 ms, still slow start
        #expect(s.hyStart?.phase == .slowStart)
        s.round(rtt: 141)                      // +16 ms over 125 ms (threshold 15.625 ms): CSS
        #expect(s.inCSS)
        #expect(s.transitions == [.enteredConservativeSlowStart(
            lastRound: .milliseconds(125), currentRound: .milliseconds(141), threshold: .microseconds(15_625))])
        #expect(s.ssthresh == .max)
    }

    /// RFC 9406 §4.3: RttThresh is at least MIN_RTT_THRESH (4 ms) on short paths, where an eighth
    /// of the RTT is less than the jitter of a queue of a few packets.
    @Test func thresholdIsAtLeastFourMilliseconds() {
        var s = Sender()
        s.round(rtt: 20)
        s.round(rtt: 23)                       // +3 ms: below 4 ms (20/8 = 2.5 would have exited)
        #expect(s.hyStart?.phase == .slowStart)
        s.round(rtt: 27)                       // +4 ms over 23: CSS
        #expect(s.inCSS)
    }

    /// RFC 9406 §4.3: RttThresh is at most MAX_RTT_THRESH (16 ms) on long paths, so a 200 ms path
    /// does not need 25 ms of queue before it reacts.
    @Test func thresholdIsAtMostSixteenMilliseconds() {
        var s = Sender()
        s.round(rtt: 200)
        s.round(rtt: 215)                      // +15 ms
        #expect(s.hyStart?.phase == .slowStart)
        s.round(rtt: 231)                      // +16 ms over 215: CSS (215/8 would ask for 26.9 ms)
        #expect(s.inCSS)
    }

    /// RFC 9406 §4.2: a round is compared only once it has N_RTT_SAMPLE (8) samples.
    @Test func aRoundNeedsEightSamples() {
        var s = Sender(initialSegments: 7)
        s.round(rtt: 100)                      // 6 ACKs
        s.round(rtt: 100)                      // 12 ACKs
        s.round(rtt: 150, samplesEvery: 4)     // 24 ACKs, 6 samples: not compared
        #expect(s.hyStart?.phase == .slowStart)
        s.round(rtt: 150, samplesEvery: 6)     // 48 ACKs, 8 samples: compared with the last round's 150 ms
        #expect(s.hyStart?.phase == .slowStart)
        s.round(rtt: 170, samplesEvery: 12)    // 96 ACKs, 8 samples, +20 ms (threshold 18.75 ms): CSS
        #expect(s.inCSS)
    }

    /// RFC 9406 §4.2: in CSS, cwnd grows by min(N, L·SMSS) / CSS_GROWTH_DIVISOR per ACK, a quarter
    /// of slow start's.
    @Test func conservativeSlowStartGrowsByAQuarter() {
        var s = Sender()
        s.round(rtt: 100)
        s.round(rtt: 100)
        s.round(rtt: 120)
        #expect(s.inCSS)
        let before = s.cwnd
        s.algorithm.acknowledged(AcknowledgmentSample(
            bytesAcknowledged: Self.mss, flightSize: s.cwnd, now: s.now, smoothedRTT: nil, minimumRTT: nil))
        #expect(s.cwnd == before + Self.mss / HyStart.growthDivisor)
    }

    /// RFC 9406 §4.2: after CSS_ROUNDS (5) rounds of CSS, congestion avoidance with ssthresh = cwnd.
    @Test func fiveRoundsOfConservativeSlowStartEndIt() {
        var s = Sender()
        s.round(rtt: 100)
        s.round(rtt: 100)
        s.round(rtt: 120)                      // CSS begins in this round
        for round in 1...4 {
            s.round(rtt: 120)
            #expect(s.inCSS, "CSS round \(round)")
        }
        let window = s.cwnd
        s.round(rtt: 120)                      // the fifth round ends on its first ACK
        #expect(s.hyStart == nil)
        #expect(s.transitions.last == .leftSlowStart)
        #expect(s.ssthresh >= window && s.ssthresh < window + 2 * Self.mss)
        #expect(s.cwnd >= s.ssthresh)
    }

    /// RFC 9406 §4.2: a CSS round whose minimum falls below the baseline that started CSS shows the
    /// rise was jitter: back to slow start, HyStart++ still watching.
    @Test func fallingRTTInConservativeSlowStartResumesSlowStart() {
        var s = Sender()
        s.round(rtt: 100)
        s.round(rtt: 100)
        s.round(rtt: 120)
        #expect(s.inCSS)
        s.round(rtt: 121)                      // not below the baseline of 120 ms: CSS goes on
        #expect(s.inCSS)
        s.round(rtt: 110)
        #expect(s.hyStart?.phase == .slowStart)
        #expect(s.transitions.last == .resumedSlowStart(currentRound: .milliseconds(110), baseline: .milliseconds(120)))
        // Slow start grows by a whole segment per ACK again (one round: a window less the segment
        // that ended the last), and HyStart++ can leave it later.
        let before = s.cwnd
        s.round(rtt: 110)
        #expect(s.cwnd >= 2 * before - 2 * Self.mss)
        s.round(rtt: 130)
        #expect(s.inCSS)
    }

    /// RFC 9406 §4.2: loss (or ECN) in slow start or CSS ends HyStart++ with the algorithm's own
    /// response; §4.3: the slow start after a timeout is the standard one.
    @Test(arguments: [CongestionControlAlgorithm.newReno, .cubic])
    func lossEndsHyStart(_ algorithm: CongestionControlAlgorithm) {
        var s = Sender(algorithm)
        s.round(rtt: 100)
        s.round(rtt: 100)
        s.round(rtt: 120)
        #expect(s.inCSS)
        s.algorithm.congestionEvent(CongestionEvent(
            kind: .retransmissionTimeout, flightSize: s.cwnd, now: s.now, startsEpisode: true))
        #expect(s.hyStart == nil)
        #expect(s.cwnd == Self.mss)
        s.sent = s.una + s.cwnd                // SND.NXT back to SND.UNA, one segment out
        for _ in 0..<4 { s.round(rtt: 100) }
        for _ in 0..<4 { s.round(rtt: 200) }   // no HyStart++ to notice
        #expect(s.transitions.count == 1)
        #expect(s.cwnd > 16 * Self.mss)
    }

    /// A congestion event undone as spurious (RFC 3522 / RFC 4015) did not end the first slow start:
    /// HyStart++ comes back with the window.
    @Test(arguments: [CongestionControlAlgorithm.newReno, .cubic])
    func undoneLossBringsHyStartBack(_ algorithm: CongestionControlAlgorithm) {
        var s = Sender(algorithm)
        s.round(rtt: 100)
        s.round(rtt: 100)
        s.algorithm.congestionEvent(CongestionEvent(kind: .loss, flightSize: s.cwnd, now: s.now, startsEpisode: true))
        #expect(s.hyStart == nil)
        s.algorithm.undo(now: s.now)
        #expect(s.hyStart?.phase == .slowStart)
        #expect(s.ssthresh == .max)
    }

    /// CUBIC (RFC 9438 §4.10) uses the same rules: CSS on the rise, congestion avoidance after five
    /// rounds, from where its curve starts with W_max = cwnd.
    @Test func cubicLeavesSlowStartThroughCSS() {
        var s = Sender(.cubic)
        s.round(rtt: 50)
        s.round(rtt: 50)
        s.round(rtt: 60)
        #expect(s.inCSS)
        for _ in 0..<5 { s.round(rtt: 60) }
        #expect(s.hyStart == nil)
        #expect(s.ssthresh < .max && s.cwnd >= s.ssthresh)
    }

    /// Without HyStart++ (the default configuration) slow start ignores the RTT.
    @Test func withoutHyStartSlowStartDoubles() {
        var s = Sender()
        s.algorithm = CongestionControlAlgorithm.newReno.make(
            maximumSegmentSize: Self.mss, initialWindowSegments: 10, slowStartLimitSegments: 1)
        s.round(rtt: 100)
        s.round(rtt: 100)
        s.round(rtt: 300)
        #expect(s.transitions.isEmpty)
        #expect(s.cwnd == 73 * Self.mss)       // 10 → 19 → 37 → 73
    }
}

/// HyStart++ through real segments: the connection takes each ACK's RTT sample from its timestamp
/// echo (RFC 7323 §4.1) and the algorithm's rounds follow SND.NXT.
@Suite struct HyStartConnectionTests {
    /// The peer acknowledges every segment of a round one RTT after the round was sent, echoing the
    /// TSval the round was sent with. Rounds of 100, 100 and 120 ms: the third round's minimum is
    /// 20 ms above the second's (threshold 12.5 ms), so from its eighth sample on cwnd grows by a
    /// quarter of a segment per ACK instead of a segment (1,448 octets with timestamps).
    @Test func risingRTTSlowsSlowStart() throws {
        var t = try TCPTester(.established, peer: .init(timestampValue: 1000)) { configuration in
            configuration.tcp.congestionControl = .newReno
            configuration.tcp.hyStart = true
        }
        try t.app.send(200_000)
        var outstanding = t.takeSegments().count
        #expect(outstanding == 10)
        var acknowledged = 1
        var peerClock: UInt32 = 1000
        var growth: [Int] = []
        for rtt in [100, 100, 120] as [Int64] {
            let echo = try #require(t.latestTSval)
            t.advance(by: .milliseconds(rtt))
            peerClock += UInt32(rtt)
            var sentThisRound = 0
            for _ in 0..<outstanding {
                let before = t.status?.congestionWindow ?? 0
                acknowledged += 1448   // the MSS less the timestamps option
                try t.inject("+0 < . 1:1(0) ack \(acknowledged) win 65535 <nop,nop,TS val \(peerClock) ecr \(echo)>")
                growth.append((t.status?.congestionWindow ?? 0) - before)
                sentThisRound += t.takeSegments().count
            }
            outstanding = sentThisRound
        }
        // Rounds one and two (10 and 20 ACKs): a segment per ACK. Round three: HyStart++'s round
        // begins with the ACK that covers SND.NXT as it was when its last round began, and its
        // eighth sample of 120 ms enters CSS; every ACK after that grows cwnd by 1448 / 4.
        #expect(growth[0..<30].allSatisfy { $0 == 1448 })
        let third = Array(growth[30...])
        let css = try #require(third.firstIndex(of: 362), "round three: \(third)")
        #expect(css >= 8)
        #expect(third[..<css].allSatisfy { $0 == 1448 }, "round three: \(third)")
        #expect(third[css...].allSatisfy { $0 == 362 }, "round three: \(third)")
    }
}
