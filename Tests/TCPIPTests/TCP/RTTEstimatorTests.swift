import NIOCore
import Testing
@testable import TCPIP

@Suite struct RTTEstimatorTests {
    @Test func beforeAnySampleTheRTOIsTheInitialOne() {
        // RFC 6298 §2 (2.1): RTO <- 1 second.
        let estimator = RTTEstimator()
        #expect(estimator.smoothedRTT == nil)
        #expect(estimator.retransmissionTimeout == .seconds(1))
    }

    @Test func firstSampleSetsSRTTAndHalfOfItAsRTTVAR() {
        // RFC 6298 §2 (2.2): SRTT <- R, RTTVAR <- R/2, RTO <- SRTT + max(G, K*RTTVAR).
        var estimator = RTTEstimator()
        estimator.addSample(.milliseconds(100))
        #expect(estimator.smoothedRTT == .milliseconds(100))
        #expect(estimator.rttVariance == .milliseconds(50))
        #expect(estimator.retransmissionTimeout == .milliseconds(300))
    }

    @Test func laterSamplesUpdateRTTVARFromTheOldSRTT() {
        // RFC 6298 §2 (2.3), alpha = 1/8, beta = 1/4:
        // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5 ms; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5 ms;
        // RTO = 112.5 + 4 * 62.5 = 362.5 ms.
        var estimator = RTTEstimator()
        estimator.addSample(.milliseconds(100))
        estimator.addSample(.milliseconds(200))
        #expect(estimator.rttVariance == .microseconds(62_500))
        #expect(estimator.smoothedRTT == .microseconds(112_500))
        #expect(estimator.retransmissionTimeout == .microseconds(362_500))

        // A third, equal to SRTT: RTTVAR decays by a quarter, SRTT stays.
        estimator.addSample(.microseconds(112_500))
        #expect(estimator.rttVariance == .nanoseconds(46_875_000))
        #expect(estimator.smoothedRTT == .microseconds(112_500))
        #expect(estimator.retransmissionTimeout == .nanoseconds(112_500_000 + 4 * 46_875_000))
    }

    @Test func rtoIsRoundedUpToTheMinimum() {
        // 10 ms path: SRTT + 4*RTTVAR = 30 ms, below the 200 ms floor.
        var linux = RTTEstimator()
        linux.addSample(.milliseconds(10))
        #expect(linux.retransmissionTimeout == .milliseconds(200))

        // RFC 6298 §2 (2.4) as written: 1 second.
        var rfc = RTTEstimator(minimumRTO: .seconds(1))
        rfc.addSample(.milliseconds(10))
        #expect(rfc.retransmissionTimeout == .seconds(1))
    }

    /// `minimumAddsToSRTT` (Linux's tcp_set_rto): the minimum bounds the variance term. A steady
    /// 200 ms path: RTTVAR decays to nothing, RTO to 200 ms + G with the floor on RTO — one round
    /// trip — and to SRTT + 200 ms with the floor on the variance term.
    @Test func minimumOnTheVarianceTermKeepsRTOARoundTripAboveSRTT() {
        var onRTO = RTTEstimator()
        var onVariance = RTTEstimator(minimumAddsToSRTT: true)
        for _ in 0..<50 {
            onRTO.addSample(.milliseconds(200))
            onVariance.addSample(.milliseconds(200))
        }
        #expect(onRTO.retransmissionTimeout == .milliseconds(201))
        #expect(onVariance.retransmissionTimeout == .milliseconds(400))
        // A short path keeps the same floor either way, to within SRTT: 10 ms + 200 ms.
        var short = RTTEstimator(minimumAddsToSRTT: true)
        short.addSample(.milliseconds(10))
        #expect(short.retransmissionTimeout == .milliseconds(210))
    }

    @Test func clockGranularityBoundsTheVarianceTerm() {
        // RFC 6298 §2 (2.2): max(G, K*RTTVAR); with G = 100 ms and K*RTTVAR = 8 ms, G wins.
        var estimator = RTTEstimator(minimumRTO: .milliseconds(1), clockGranularity: .milliseconds(100))
        estimator.addSample(.milliseconds(4))
        #expect(estimator.retransmissionTimeout == .milliseconds(104))
    }

    @Test func backoffDoublesUpToTheSixtySecondCap() {
        // RFC 6298 §5 (5.5) doubling, §2 (2.5) maximum.
        var estimator = RTTEstimator()
        var seen: [TimeAmount] = []
        for _ in 0..<8 {
            seen.append(estimator.retransmissionTimeout)
            estimator.backOff()
        }
        #expect(seen == [1, 2, 4, 8, 16, 32, 60, 60].map { TimeAmount.seconds($0) })
        #expect(estimator.backoffCount == 8)
        for _ in 0..<100 { estimator.backOff() }
        #expect(estimator.retransmissionTimeout == .seconds(60))
    }

    @Test func aSampleClearsTheBackoff() {
        var estimator = RTTEstimator()
        estimator.addSample(.milliseconds(100))
        estimator.backOff()
        estimator.backOff()
        #expect(estimator.retransmissionTimeout == .milliseconds(1200))
        estimator.addSample(.milliseconds(100))
        #expect(estimator.backoffCount == 0)
        estimator.backOff()
        estimator.resetBackoff()
        #expect(estimator.backoffCount == 0)
    }

    @Test func absurdSamplesNeitherTrapNorExceedTheMaximum() {
        // With timestamps a sample comes from a value the peer echoes.
        var estimator = RTTEstimator()
        estimator.addSample(.nanoseconds(.max))
        estimator.addSample(.nanoseconds(.max))
        #expect(estimator.retransmissionTimeout == .seconds(60))
        estimator.addSample(.nanoseconds(.min))
        #expect(estimator.retransmissionTimeout <= .seconds(60))
        #expect(estimator.retransmissionTimeout >= .milliseconds(200))
    }
}
