import NIOCore
import Testing
@testable import TCPIP

/// Pacing (`TCPConfiguration.pacing`, Pacing.swift): a window spread over the round trip at Linux's
/// rate, 2 · cwnd / SRTT in slow start, in bursts of 1 ms or two segments, never beyond cwnd.
@Suite struct PacingTests {
    /// No RTT sample from the handshake (the SYN comes twice), so the first window goes unpaced
    /// and its ACK, 100 ms later, is the first sample: SRTT = 100 ms.
    private static let peer = TCPTester.Peer(repeatsSYN: true)

    /// `segments` full segments queued, the initial window of them out and acknowledged after
    /// 100 ms; what that ACK lets out is still to be read.
    private func initialWindowAcknowledged(pacing: Bool, segments: Int) throws -> TCPTester {
        var t = try TCPTester(.established, peer: Self.peer) { $0.tcp.pacing = pacing }
        try t.app.send(segments * 1460)
        // No SRTT yet: nothing to pace at, the initial window goes at once (as Linux's).
        for segment in 0..<10 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > . \(start):\(start + 1460)(1460) ack 1")
        }
        try t.inject("+.1 < . 1:1(0) ack \(1 + 10 * 1460) win 65535")
        #expect(t.status?.smoothedRTT == .milliseconds(100))
        return t
    }

    /// The initial window out and acknowledged after 100 ms; returns the segments sent at the
    /// instant of that ACK.
    private func firstRoundTrip(pacing: Bool) throws -> (TCPTester, [String]) {
        var t = try initialWindowAcknowledged(pacing: pacing, segments: 40)
        let atOnce = t.takeOutput()
        return (t, atOnce)
    }

    @Test func aPacedWindowLeavesOverHalfTheRoundTripInSlowStart() throws {
        var (t, atOnce) = try firstRoundTrip(pacing: true)
        let window = (t.status?.congestionWindow ?? 0) / 1460
        #expect(window == 11)
        // 2 · cwnd / SRTT: a segment every 100 ms / 22 ≈ 4.5 ms, in bursts of two segments' time
        // (9.1 ms, more than 1 ms), half a burst of credit after the pause: the ACK lets out a
        // burst, not the window.
        #expect(atOnce.count >= 2 && atOnce.count <= 4)
        var sent = atOnce.count
        var bursts = 1
        var elapsed = 0
        while sent < window && elapsed < 100 {
            t.advance(by: .milliseconds(1))
            elapsed += 1
            let burst = t.takeOutput()
            if !burst.isEmpty { bursts += 1 }
            #expect(burst.count <= 3)
            sent += burst.count
        }
        // The window is out in about half the round trip (the ratio of 2), in several bursts, and
        // nothing more goes: cwnd, not the pacing rate, bounds what is in flight.
        #expect(sent == window)
        #expect(elapsed >= 40 && elapsed <= 50)
        #expect(bursts >= 4)
        try t.expectNothing(for: .milliseconds(40))
        #expect(t.status.map { Int($0.sendNext &- $0.sendUnacknowledged) } == window * 1460)
    }

    @Test func unpacedTheWindowLeavesAsTheACKArrives() throws {
        let (t, atOnce) = try firstRoundTrip(pacing: false)
        #expect(atOnce.count == 11)
        #expect(atOnce.count == (t.status?.congestionWindow ?? 0) / 1460)
    }

    /// Paced, every octet still goes, once and in order (`expect` checks each payload), and the
    /// transfer completes.
    @Test func aPacedTransferSendsEveryOctetInOrder() throws {
        var t = try initialWindowAcknowledged(pacing: true, segments: 60)
        for segment in 10..<60 {
            let start = 1 + 1460 * segment
            try t.expect("* > \(segment == 59 ? "P." : ".") \(start):\(start + 1460)(1460) ack 1")
            if segment % 4 == 3 || segment == 59 {
                // At once, whatever else the burst holds (the next `expect` lines take it).
                t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(start + 1460) win 65535"))
            }
        }
        try t.expectNothing(for: .seconds(1))
        #expect(t.status?.sendQueue == 0)
        #expect(t.counters.segmentsRetransmitted == 0)
    }

    /// CUBIC (the default) in congestion avoidance, paced or not, with the same ACKs: a window's
    /// worth every 100 ms, one per segment, all at one instant (as a router's timer or a receiver's
    /// coalescing delivers them). Slow start from 10 segments to 40, a loss, recovery to 28, then
    /// `rounds` round trips. What the stack sends is not checked here (`aPacedTransferSendsEveryOctetInOrder`
    /// does that). Returns cwnd and ssthresh at the end.
    private func congestionAvoidanceWithBurstsOfACKs(pacing: Bool, rounds: Int) throws -> (cwnd: Int, ssthresh: Int) {
        let peer = TCPTester.Peer(windowScale: 7, sackPermitted: true, repeatsSYN: true)
        var t = try TCPTester(.established, peer: peer) {
            $0.tcp.pacing = pacing
            $0.tcp.sendBufferSize = 2 << 20
        }
        try t.app.send(1 << 20)
        var sendUnacknowledged: UInt32 { t.status.map { $0.sendUnacknowledged &- t.iss!.rawValue } ?? 0 }
        var sendNext: UInt32 { t.status.map { $0.sendNext &- t.iss!.rawValue } ?? 0 }
        for round in 0..<(3 + rounds) {
            // A round trip for the pacer to send what cwnd allows (at 120 % of cwnd per SRTT or more).
            t.advance(by: .milliseconds(100))
            _ = t.takeOutput()
            let una = sendUnacknowledged
            let end = sendNext
            if round == 2 {
                // The window's first segment is lost: the rest are SACKed, fast recovery begins.
                var sacked = una + 1460
                while sacked < end {
                    sacked += 1460
                    t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(una) win 65535 <sack \(una + 1460):\(min(sacked, end))>"))
                }
                #expect(t.status?.inRecovery == true)
            } else if round == 3 {
                // The retransmission is acknowledged with everything after it: recovery ends.
                t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(end) win 65535"))
                #expect(t.status?.inRecovery == false)
            } else {
                var acknowledged = una
                while acknowledged < end {
                    acknowledged = min(acknowledged + 1460, end)
                    t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(acknowledged) win 65535"))
                }
            }
            _ = t.takeOutput()
        }
        return (t.status?.congestionWindow ?? 0, t.status?.slowStartThreshold ?? 0)
    }

    /// RFC 9438 §5.8 holds back growth while the application limits the flow; a pacer that spreads
    /// a burst is not the application. With the ACKs of a window at one instant, the pacer lets a
    /// few segments go and the next ACKs find less than cwnd in flight. Counted per ACK as
    /// application-limited, they did not grow cwnd: the paced sender's slow start stopped at 24
    /// segments where the unpaced one's reached 40, and it ended at 22 segments against 38.
    @Test func pacingDoesNotHoldBackCubicsGrowth() throws {
        let unpaced = try congestionAvoidanceWithBurstsOfACKs(pacing: false, rounds: 15)
        let paced = try congestionAvoidanceWithBurstsOfACKs(pacing: true, rounds: 15)
        // Both left recovery at 0.7 · 40 segments (RFC 9438 §4.6) …
        #expect(unpaced.ssthresh == 28 * 1460)
        #expect(paced.ssthresh == unpaced.ssthresh)
        // … and grew along W_cubic towards W_max = 40 (K ≈ 3.1 s; W_cubic(1.6 s) ≈ 38.6): by the
        // same ACKs, paced or not, to within a segment.
        #expect(unpaced.cwnd >= 36 * 1460 && unpaced.cwnd <= 40 * 1460)
        #expect(abs(paced.cwnd - unpaced.cwnd) <= 1460)
    }
}
