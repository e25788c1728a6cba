import NIOCore
import TCPIP
import Testing

/// RFC 9293 §3.10.7.1: a segment for which no connection and no listener exists.
@Suite struct SegmentArrivesClosedTests {
    /// "If the ACK bit is off, sequence number zero is used, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>".
    @Test func segmentWithoutAckGetsResetAcknowledgingIt() throws {
        var t = try TCPTester(.closed)
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+0 > R. 0:0(0) ack 1")
        try t.inject("+0 < P 1:101(100) win 65535")
        try t.expect("+0 > R. 0:0(0) ack 101")
        try t.inject("+0 < F 1:1(0) win 65535")
        try t.expect("+0 > R. 0:0(0) ack 2")
        try t.expectNothing()
        #expect(t.counters.resetsSent == 3)
    }

    /// "If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>" — here across the wrap of SEG.ACK.
    @Test func segmentWithAckGetsResetAtItsAcknowledgment() throws {
        var t = try TCPTester(.closed)   // no ISS yet: acknowledgment numbers are absolute
        try t.inject("+0 < . 1:1(0) ack 12345 win 65535")
        try t.expect("+0 > R 12345:12345(0)")
        try t.inject("+0 < P. 1:1001(1000) ack 4294967295 win 65535")
        try t.expect("+0 > R 4294967295:4294967295(0)")
        try t.inject("+0 < S. 0:0(0) ack 7 win 65535")
        try t.expect("+0 > R 7:7(0)")
        try t.expectNothing()
    }

    /// "An incoming segment containing a RST is discarded."
    @Test func resetIsDiscarded() throws {
        var t = try TCPTester(.closed)
        try t.inject("+0 < R 0:0(0) win 0")
        try t.inject("+0 < R. 0:0(0) ack 1 win 0")
        try t.expectNothing()
        #expect(t.counters.resetsSent == 0)
        #expect(t.counters.resetsReceived == 2)
    }

    /// Without checksum offload a damaged segment is dropped and counted before TCP sees it
    /// (RFC 9293 §3.1, MUST-2/MUST-3): no SYN-ACK, and the listener keeps listening.
    @Test func badChecksumIsDroppedAndCounted() throws {
        var t = try TCPTester(.listen) { $0.checksumOffload = false }
        var datagram = try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>")
        let last = datagram.writerIndex - 1
        datagram.setInteger(datagram.getInteger(at: last, as: UInt8.self)! ^ 0x01, at: last)
        t.inject(datagram: datagram)
        try t.expectNothing()
        #expect(t.counters.badChecksums == 1)
        #expect(t.counters.segmentsReceived == 0)
        #expect(t.state == .listen)

        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+0 > S. 0:0(0) ack 1 <mss 1460>")
        #expect(t.counters.badChecksums == 1)
    }

    /// A connection that ended (timed out, refused, reset) but whose handle the application still
    /// holds is CLOSED too: a late segment gets the RST of §3.10.7.1, not silence.
    @Test func lateSegmentsForAnEndedConnectionGetReset() throws {
        var t = try TCPTester(.synSent) { $0.tcp.maximumSYNRetransmissions = 1 }
        try t.expect("+0 > S 0:0(0)")
        try t.expect("+1 > S 0:0(0)")
        try t.expectNothing(for: .seconds(2))
        #expect(t.state == .closed)
        try t.inject("+1 < S. 0:0(0) ack 1 win 65535 <mss 1460>")
        try t.expect("+0 > R 1:1(0)")

        var reset = try TCPTester(.established)
        try reset.inject("+0 < R 1:1(0) win 0")
        try reset.inject("+.2 < P. 1:101(100) ack 1 win 65535")
        try reset.expect("+0 > R 1:1(0)")
        try reset.inject("+0 < R. 1:1(0) ack 1 win 0")
        try reset.expectNothing()
    }
}
