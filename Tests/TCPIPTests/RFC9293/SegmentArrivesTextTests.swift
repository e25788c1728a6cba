import NIOCore
import TCPIP
import Testing

/// RFC 9293 §3.10.7.4, seventh (segment text) and the acknowledgment policy of §3.8.6.3 and
/// RFC 5681 §4.2: in order, out of order, filling holes, across the 2^32 wrap.
@Suite struct SegmentArrivesTextTests {
    /// In-order text is delivered; the first segment's ACK is delayed (40 ms), the second forces
    /// one at once ("an ACK SHOULD be generated for at least every second full-sized segment").
    @Test func inOrderDataAndDelayedAck() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < P. 1:1001(1000) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 1001")
        try t.inject("+.1 < . 1001:2461(1460) ack 1 win 65535")
        try t.inject("+0 < . 2461:3921(1460) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 3921")
        try t.expectNothing(for: .seconds(1))
        #expect(t.counters.delayedAcksSent == 1)
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 3920)))
    }

    /// With delayed ACKs off every segment is acknowledged at once.
    @Test func delayedAcksOff() throws {
        var t = try TCPTester(.established) { $0.tcp.delayedAcks = false }
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 101")
        try t.inject("+0 < P. 101:201(100) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 201")
        try t.expectNothing()
    }

    /// Out-of-order text is held and answered by an immediate duplicate ACK (RFC 5681 §4.2) so the
    /// sender can fast-retransmit; the segment filling the hole is acknowledged at once, up to the
    /// end of what was held.
    @Test func outOfOrderThenFilled() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < . 1001:2001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1")
        try t.inject("+0 < . 2001:3001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1")
        #expect(try t.app.read() == .wouldBlock)
        #expect(t.status?.outOfOrderBytes == 2000)
        try t.inject("+.01 < . 1:1001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 3001")
        try t.expectNothing()
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 3000)))
        #expect(t.counters.outOfOrderSegments == 2)
    }

    /// With SACK agreed, the duplicate ACKs carry the blocks held (RFC 2018 §4), most recent first.
    @Test func outOfOrderWithSack() throws {
        var t = try TCPTester(.established, peer: .init(sackPermitted: true))
        try t.inject("+0 < . 1001:2001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1 <sack 1001:2001>")
        try t.inject("+0 < . 3001:4001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1 <sack 3001:4001 1001:2001>")
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 <sack 3001:4001>")
        try t.inject("+0 < . 2001:3001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 4001")
        try t.expectNothing()
    }

    /// A FIN that arrives out of order waits for the hole to fill, then counts.
    @Test func outOfOrderFin() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < F. 1001:1001(0) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1")
        #expect(t.state == .established)
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1002")
        #expect(t.state == .closeWait)
    }

    /// The peer's sequence numbers start at 2^32 - 256: ten segments carry them across the wrap,
    /// and every octet arrives where it belongs.
    @Test func sequenceNumbersCrossTheWrap() throws {
        var t = try TCPTester(.established)
        for segment in 0..<10 {
            let start = 1 + 1000 * segment
            try t.inject("+0 < . \(start):\(start + 1000)(1000) ack 1 win 65535")
            if segment % 2 == 1 { try t.expect("+0 > . 1:1(0) ack \(start + 1000)") }
        }
        try t.expectNothing()
        #expect(t.status?.receiveNext == 0xFFFF_FF00 &+ 10_001)
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 10_000)))
    }

    /// Data the application does not read fills the buffer; the window shrinks by what arrived and
    /// the right edge never moves left (RFC 9293 §3.8.6).
    @Test func windowShrinksWithUnreadData() throws {
        var t = try TCPTester(.established) { $0.tcp.receiveBufferSize = 10_000 }
        try t.inject("+0 < . 1:1461(1460) ack 1 win 65535")
        try t.inject("+0 < . 1461:2921(1460) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2921 win 7080")
        #expect(t.status?.receiveQueue == 2920)
    }
}
