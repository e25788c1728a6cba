import NIOCore
import TCPIP
import Testing

/// RFC 5681 congestion control with the NewReno modification (RFC 6582).
/// These tests check NewReno's arithmetic (RFC 5681); they pin it whatever the stack's default.
private func newReno(_ configuration: inout StackConfiguration) { configuration.tcp.congestionControl = .newReno }

@Suite struct CongestionTests {
    /// The initial window is ten segments (RFC 6928, as Linux); slow start then grows cwnd by one
    /// SMSS per ACK (RFC 5681 §3.1).
    @Test func initialWindowAndSlowStart() throws {
        var t = try TCPTester(.established, configure: newReno)
        try t.app.send(20_000)
        for segment in 0..<10 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > . \(start):\(start + 1460)(1460) ack 1")
        }
        try t.expectNothing()
        #expect(t.status?.congestionWindow == 14_600)
        try t.inject("+.1 < . 1:1(0) ack 2921 win 65535")
        #expect(t.status?.congestionWindow == 16_060)
        try t.expect("+0 > . 14601:16061(1460) ack 1")
        try t.expect("+0 > . 16061:17521(1460) ack 1")
        try t.expect("+0 > . 17521:18981(1460) ack 1")
        try t.expectNothing()
    }

    /// Three duplicate ACKs trigger fast retransmit (RFC 5681 §3.2): ssthresh = FlightSize/2, and PRR
    /// (RFC 6937) paces what follows. A partial ACK retransmits the next hole at once and stays in
    /// recovery (RFC 6582 §3.2 step 5); the ACK past `recover` ends it.
    @Test func fastRetransmitAndNewRenoPartialAck() throws {
        var t = try TCPTester(.established, configure: newReno)
        try t.app.send(8760)
        for segment in 0..<6 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > \(segment == 5 ? "P." : ".") \(start):\(start + 1460)(1460) ack 1")
        }
        // Segments 2 and 4 (1461 and 4381) are lost.
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535")
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535")
        try t.expectNothing()
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        #expect(t.status?.inRecovery == true)
        #expect(t.status?.slowStartThreshold == 3650)
        // RFC 6937 §3: cwnd = pipe + sndcnt. pipe = 7300 in flight − 1460 lost − 3 × 1460 that the duplicate
        // ACKs say left the network + 1460 retransmitted = 2920; PRR-SSRB allowed min(3650 − 1460, 2920) =
        // 2190 on the third duplicate ACK, of which the fast retransmit took 1460.
        #expect(t.status?.congestionWindow == 2920 + 730)
        #expect(t.counters.fastRetransmits == 1)
        // Partial ACK: up to the second hole.
        try t.inject("+.1 < . 1:1(0) ack 4381 win 65535")
        try t.expect("+0 > . 4381:5841(1460) ack 1")
        #expect(t.status?.inRecovery == true)
        // Full ACK: everything sent before recovery began.
        try t.inject("+.1 < . 1:1(0) ack 8761 win 65535")
        try t.expectNothing()
        #expect(t.status?.inRecovery == false)
        // RFC 6937 §3.1: recovery ends with cwnd = ssthresh.
        #expect(t.status?.congestionWindow == 3650)
    }

    /// Duplicate ACKs that change the window, or carry data, are not duplicates (RFC 5681 §2).
    @Test func windowUpdatesAreNotDuplicateAcks() throws {
        var t = try TCPTester(.established, configure: newReno)
        try t.app.send(5840)
        for segment in 0..<4 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > \(segment == 3 ? "P." : ".") \(start):\(start + 1460)(1460) ack 1")
        }
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        try t.inject("+0 < . 1:1(0) ack 1461 win 60000")
        try t.inject("+0 < . 1:1(0) ack 1461 win 50000")
        try t.inject("+0 < P. 1:101(100) ack 1461 win 50000")
        try t.inject("+0 < . 101:101(0) ack 1461 win 40000")
        try t.expect("+.04 > . 5841:5841(0) ack 101")
        #expect(t.counters.fastRetransmits == 0)
    }

    /// A retransmission timeout collapses cwnd to one segment (RFC 5681 §3.1, equation 4): only
    /// the first segment goes again, and slow start resumes from the ACKs.
    @Test func timeoutCollapsesTheWindow() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true), configure: newReno)
        try t.app.send(4380)
        try t.expect("+0 > . 1:1461(1460) ack 1")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        try t.expect("+0 > P. 2921:4381(1460) ack 1")
        try t.expect("+1 > . 1:1461(1460) ack 1")
        try t.expectNothing()
        #expect(t.status?.congestionWindow == 1460)
        #expect(t.status?.slowStartThreshold == 2920)
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        try t.expect("+0 > P. 2921:4381(1460) ack 1")
    }

    /// RFC 6582 §4.1: duplicate ACKs for data sent before a timeout (at or below `recover`) do
    /// not start another fast retransmit.
    @Test func duplicateAcksAfterTimeoutDoNotFastRetransmit() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true), configure: newReno)
        try t.app.send(5840)
        for segment in 0..<4 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > \(segment == 3 ? "P." : ".") \(start):\(start + 1460)(1460) ack 1")
        }
        try t.expect("+1 > . 1:1461(1460) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 1461 win 65535")
        try t.expect("+0 > . 1461:2921(1460) ack 1")   // slow start from cwnd 1: two segments
        try t.expect("+0 > . 2921:4381(1460) ack 1")
        for _ in 0..<3 { try t.inject("+0 < . 1:1(0) ack 1461 win 65535") }
        try t.expectNothing()
        #expect(t.counters.fastRetransmits == 0)
    }

    /// RFC 5681 §4.1: after an idle period longer than an RTO, cwnd restarts from the initial
    /// window (min(IW, cwnd)).
    @Test func restartAfterIdle() throws {
        var t = try TCPTester(.established, configure: newReno)
        try t.app.send(14_600)
        for segment in 0..<10 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > \(segment == 9 ? "P." : ".") \(start):\(start + 1460)(1460) ack 1")
        }
        try t.inject("+.1 < . 1:1(0) ack 14601 win 65535")
        #expect(t.status?.congestionWindow == 16_060)
        t.advance(by: .seconds(5))
        try t.app.send(20_000)
        for segment in 0..<10 {
            let start = 14_601 + 1460 * segment
            try t.expect("+0 > . \(start):\(start + 1460)(1460) ack 1")
        }
        try t.expectNothing()
        #expect(t.status?.congestionWindow == 14_600)
    }

    /// "Has not sent data in an interval exceeding the retransmission timeout": the ACKs we kept
    /// sending for the peer's data don't count as activity.
    @Test func restartAfterIdleDespiteSendingAcks() throws {
        var t = try TCPTester(.established, configure: newReno)
        try t.app.send(14_600)
        for segment in 0..<10 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > \(segment == 9 ? "P." : ".") \(start):\(start + 1460)(1460) ack 1")
        }
        try t.inject("+.1 < . 1:1(0) ack 14601 win 65535")
        // The peer's data every 200 ms, under the 300 ms RTO: our ACKs are never idle that long.
        for round in 0..<5 {
            let start = 1 + 200 * round
            try t.inject("+.2 < P. \(start):\(start + 100)(100) ack 14601 win 65535")
            try t.inject("+0 < P. \(start + 100):\(start + 200)(100) ack 14601 win 65535")
            try t.expect("+0 > . 14601:14601(0) ack \(start + 200)")
        }
        try t.app.send(20_000)
        for segment in 0..<10 {
            let start = 14_601 + 1460 * segment
            try t.expect("+0 > . \(start):\(start + 1460)(1460) ack 1001")
        }
        try t.expectNothing()
    }

    /// Congestion avoidance (RFC 5681 §3.1): above ssthresh cwnd grows by one SMSS per window of
    /// data acknowledged, counted in bytes.
    @Test func congestionAvoidanceGrowsByOneSegmentPerWindow() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true), configure: newReno)
        try t.app.send(4380)
        try t.expect("+0 > . 1:1461(1460) ack 1")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        try t.expect("+0 > P. 2921:4381(1460) ack 1")
        try t.expect("+1 > . 1:1461(1460) ack 1")    // timeout: ssthresh 2920, cwnd 1460
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        #expect(t.status?.congestionWindow == 2920)   // slow start up to ssthresh
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        try t.expect("+0 > P. 2921:4381(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 2921 win 65535")
        #expect(t.status?.congestionWindow == 2920)   // 1460 of 2920 counted
        try t.inject("+0 < . 1:1(0) ack 4381 win 65535")
        #expect(t.status?.congestionWindow == 4380)   // a full window acknowledged: + 1 SMSS
    }
}
