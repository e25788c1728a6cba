import NIOCore
import TCPIP
import Testing

/// Knobs that model Linux where the RFCs leave room or Linux departs from them: G in RFC 6298's
/// RTO formula and the form of the zero-window probe. The defaults are pinned by the timer and
/// flow-control tests.
@Suite struct PlatformKnobTests {
    /// RFC 6298 (2.2): one sample of 100 ms gives RTO = SRTT + max(G, 4·RTTVAR) = 100 + max(G, 200).
    /// After ten more samples of 100 ms RTTVAR has shrunk to 50·(3/4)^10 ≈ 2.8 ms: with G = 1 ms the
    /// RTO is ≈ 111 ms, floored at 200 ms (2.4); with G = 200 ms, as Linux, it stays 300 ms.
    @Test(arguments: [(TimeAmount.milliseconds(1), TimeAmount.milliseconds(200)), (.milliseconds(200), .milliseconds(300))])
    func clockGranularityBoundsTheVarianceTerm(granularity: TimeAmount, rto: TimeAmount) throws {
        var t = try TCPTester(.synReceived) { $0.tcp.clockGranularity = granularity }
        try t.inject("+.1 < . 1:1(0) ack 1 win 65535")
        #expect(t.status?.retransmissionTimeout == .milliseconds(300))
        for segment in 0..<10 {
            let start = 1 + 100 * segment
            try t.app.send(100)
            try t.expect("+0 > P. \(start):\(start + 100)(100) ack 1")
            try t.inject("+.1 < . 1:1(0) ack \(start + 100) win 65535")
        }
        #expect(t.status?.smoothedRTT == .milliseconds(100))
        #expect(t.status?.retransmissionTimeout == rto)
    }

    /// RFC 9293 §3.8.6.1's probe (the default) carries an octet of new data; Linux's is a
    /// zero-length segment at SND.UNA − 1, which the peer answers with an ACK and its window.
    @Test func acknowledgmentRequestProbe() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true)) {
            $0.tcp.zeroWindowProbe = .acknowledgmentRequest
        }
        try t.inject("+0 < . 1:1(0) ack 1 win 0")
        try t.app.send(1000)
        try t.expectNothing()
        try t.expect("+1 > . 0:0(0) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 1 win 0")
        try t.expect("+1.99 > . 0:0(0) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 1 win 65535")
        try t.expect("+0 > P. 1:1001(1000) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 1001 win 65535")
        try t.expectNothing(for: .seconds(30))
        #expect(t.status?.zeroWindowProbes == 2)
        #expect(t.status?.retransmits == 0)
    }
}
