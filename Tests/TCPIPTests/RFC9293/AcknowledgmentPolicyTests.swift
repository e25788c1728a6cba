import NIOCore
import TCPIP
import Testing

/// RFC 9293 §3.8.6.3 when to acknowledge, and what closing with unread data does (RFC 1122 §4.2.2.13).
@Suite struct AcknowledgmentPolicyTests {
    // TCPTester turns quick-ACK mode off unless a test asks for it.

    /// The first data segments of a connection are acknowledged at once (quick-ACK, as Linux),
    /// then every second segment with the 40 ms timer for a lone one.
    @Test func firstSegmentsAreAcknowledgedAtOnce() throws {
        var t = try TCPTester(.established) { $0.tcp.quickAcks = 2 }
        try t.inject("+0 < P. 1:1001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1001")
        try t.inject("+.01 < P. 1001:2001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001")
        // Quick ACKs spent: the next lone segment waits for the delayed-ACK timer.
        try t.inject("+.01 < P. 2001:3001(1000) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 3001")
    }

    /// MUST-58: "an ACK SHOULD be generated for at least every second full-sized segment" — one
    /// segment carrying two full-sized segments' worth (a coalesced one) is acknowledged at once.
    /// The full size is the segment the peer sends when it can: min(its MSS, ours), 1000 here.
    @Test func oneSegmentOfTwoFullSizesIsAcknowledgedAtOnce() throws {
        var t = try TCPTester(.established, peer: TCPTester.Peer(maximumSegmentSize: 1000))
        try t.inject("+0 < P. 1:2001(2000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001")
        try t.inject("+.01 < P. 2001:3001(1000) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 3001")
    }

    /// Hands the stack `count` in-order segments of 1000 octets from `start` in one batch: no
    /// packet is asked for between them, as a link that read them together would.
    private func receiveBatch(_ t: inout TCPTester, from start: Int, count: Int) throws {
        for index in 0..<count {
            let first = start + 1000 * index
            t.stack.receive(try t.datagram("+0 < P. \(first):\(first + 1000)(1000) ack 1 win 65535"), now: t.now)
        }
    }

    /// The every-second-segment ACK waits for the end of the batch: six segments taken in
    /// together are acknowledged once, for all of them (`batchesAcknowledgments`).
    @Test func segmentsTakenTogetherAreAcknowledgedOnce() throws {
        var t = try TCPTester(.established)
        try receiveBatch(&t, from: 1, count: 6)
        try t.expect("+0 > . 1:1(0) ack 6001")
        try t.expectNothing(for: .seconds(1))
        // One at a time, every second segment is acknowledged as before.
        try t.inject("+0 < P. 6001:7001(1000) ack 1 win 65535")
        try t.expectNothing()
        try t.inject("+0 < P. 7001:8001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 8001")
    }

    @Test func withoutBatchingEverySecondSegmentOfABatchIsAcknowledged() throws {
        var t = try TCPTester(.established) { $0.tcp.batchesAcknowledgments = false }
        try receiveBatch(&t, from: 1, count: 6)
        try t.expect("+0 > . 1:1(0) ack 2001")
        try t.expect("+0 > . 1:1(0) ack 4001")
        try t.expect("+0 > . 1:1(0) ack 6001")
        try t.expectNothing(for: .seconds(1))
    }

    /// Data the application sends before the batch ends carries the owed ACK: no bare ACK besides.
    @Test func deferredAckRidesOnData() throws {
        var t = try TCPTester(.established)
        try receiveBatch(&t, from: 1, count: 2)
        #expect(try t.app.send(500) == 500)
        try t.expect("+0 > P. 1:501(500) ack 2001")
        try t.expectNothing()
    }

    /// A segment out of order is answered at once with a duplicate ACK (RFC 5681 §4.2), batch or
    /// not; it acknowledges what the deferred ACK would have, which then is not sent.
    @Test func outOfOrderSegmentInABatchIsAnsweredAtOnce() throws {
        var t = try TCPTester(.established)
        try receiveBatch(&t, from: 1, count: 2)
        t.stack.receive(try t.datagram("+0 < P. 3001:4001(1000) ack 1 win 65535"), now: t.now)
        try t.expect("+0 > . 1:1(0) ack 2001")
        try t.expectNothing()
        try t.inject("+0 < P. 2001:3001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 4001")
    }

    /// A read that frees space is worth a window update of its own only when the window the peer
    /// knows is at most half of what we could offer (so a bulk receiver does not double its ACKs).
    @Test func windowUpdateOnlyWhenThePeerMayBeHeldBack() throws {
        var t = try TCPTester(.established) { $0.tcp.receiveBufferSize = 8000 }
        try t.inject("+0 < P. 1:1001(1000) ack 1 win 65535")
        try t.inject("+0 < P. 1001:2001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 6000")
        // The peer still sees 6000 of 8000: reading the 2000 is not worth a segment.
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 2000)))
        try t.expectNothing()
        try t.inject("+.01 < P. 2001:4001(2000) ack 1 win 65535")
        try t.inject("+0 < P. 4001:6001(2000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 6001 win 4000")
        try t.inject("+0 < P. 6001:8001(2000) ack 1 win 65535")
        try t.inject("+0 < P. 8001:10001(2000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 10001 win 0")
        // Now the peer sees 0 of 8000: reading frees the window and says so.
        #expect(try t.app.read() == .data(TCPTester.payload(from: 2001, count: 8000)))
        try t.expect("+0 > . 1:1(0) ack 10001 win 8000")
    }

    /// RFC 1122 §4.2.2.13: closing with received data still unread SHOULD send an RST; with
    /// timestamps the RST carries TSopt (RFC 7323 §3.2).
    @Test func releaseWithUnreadDataResets() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 101")
        try t.app.release()
        try t.expect("+0 > R. 1:1(0) ack 101")
        #expect(t.state == .closed)
        #expect(t.stack.counters.resetsOnCloseWithUnreadData == 1)
    }

    /// With nothing unread, releasing is CLOSE: a FIN; text arriving afterwards is answered with an
    /// RST — the application will never read it (RFC 1122 §4.2.2.13).
    @Test func textAfterReleaseResets() throws {
        var t = try TCPTester(.established)
        try t.app.release()
        try t.expect("+0 > F. 1:1(0) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 2 win 65535")
        #expect(t.state == .finWait2)
        try t.inject("+.01 < P. 1:101(100) ack 2 win 65535")
        // Answered as by a closed connection (RFC 9293 §3.10.7.1): <SEQ=SEG.ACK><CTL=RST>.
        try t.expect("+0 > R 2:2(0)")
        #expect(t.state == .closed)
        #expect(t.stack.counters.resetsOnCloseWithUnreadData == 1)
    }
}
