import NIOCore
import Testing
@testable import TCPIP

/// CUBIC's answer to a loss, through a real stack (the default algorithm): ssthresh = β_cubic · cwnd
/// (RFC 9438 §4.6, as Linux's bictcp_recalc_ssthresh), also when the receiver's window, not cwnd,
/// held what was in flight.
@Suite struct CubicLossResponseTests {
    /// A peer that offers SACK and a 10-segment window it never opens (a Linux receiver before its
    /// buffer autotuning grows the window).
    private static let narrowPeer = TCPTester.Peer(sackPermitted: true, window: 14_600, repeatsSYN: true)

    /// Slow start behind a window of 10 segments: every ACK of two segments slides the window by
    /// two, and cwnd grows while half of it is in flight (RFC 9438 §5.8's check, as Linux's
    /// tcp_is_cwnd_limited), to twice the window. Returns the tester and the next byte to acknowledge.
    private func slowStartBehindTheReceiversWindow() throws -> (TCPTester, Int) {
        var t = try TCPTester(.established, peer: Self.narrowPeer)
        try t.app.send(60 * 1460)
        for segment in 0..<10 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > . \(start):\(start + 1460)(1460) ack 1")
        }
        var acknowledged = 1
        for _ in 0..<3 {
            for ack in 0..<5 {
                acknowledged += 2920
                try t.inject("\(ack == 0 ? "+.1" : "+0") < . 1:1(0) ack \(acknowledged) win 14600")
                // The window slides by two segments: two new ones go, never more than it allows.
                #expect(t.takeOutput().filter { $0.contains("(1460)") }.count == 2)
            }
        }
        return (t, acknowledged)
    }

    @Test func lossBehindTheReceiversWindowReducesFromCwndNotFlightSize() throws {
        let (tester, una) = try slowStartBehindTheReceiversWindow()
        var t = tester
        let cwnd = try #require(t.status?.congestionWindow)
        // The window held 10 segments in flight; cwnd grew to twice that, and no further.
        #expect(cwnd >= 2 * 14_600 && cwnd <= 2 * 14_600 + 1460)
        #expect(t.status?.slowStartThreshold ?? 0 > 1 << 30)
        // The segment at `una` is lost; the next three are SACKed (RFC 8985 §6.2: no reordering seen,
        // three SACKed, reo_wnd 0): loss, fast recovery.
        var sent: [String] = []
        for sacked in 1...3 {
            try t.inject("\(sacked == 1 ? "+.1" : "+0") < . 1:1(0) ack \(una) win 14600 <sack \(una + 1460):\(una + 1460 + 1460 * sacked)>")
            sent += t.takeOutput()
        }
        #expect(sent.count == 1 && sent[0].contains("\(una):\(una + 1460)(1460)"))
        #expect(t.status?.inRecovery == true)
        #expect(t.counters.fastRetransmits == 1)
        // RFC 9438 §4.6 with cwnd for flight_size (as Linux): 0.7 · cwnd, where β · FlightSize
        // (the 10 segments the window let out) would have been 10,220.
        let expected = Int((Double(cwnd) * Cubic.beta).rounded(.down))
        #expect(t.status?.slowStartThreshold == expected)
        #expect(expected > 14_600)
        // Nothing past the window went: the fast retransmit only. The full ACK ends recovery at
        // cwnd = ssthresh (RFC 6937 §3.1).
        try t.inject("+.1 < . 1:1(0) ack \(una + 14_600) win 14600")
        _ = t.takeOutput()
        #expect(t.status?.inRecovery == false)
        #expect(t.status?.congestionWindow == expected)
    }
}
