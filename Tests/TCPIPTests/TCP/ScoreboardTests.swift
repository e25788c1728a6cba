import NIOCore
import Testing
import TCPIPWire
@testable import TCPIP

/// Fixtures start just below 2^32 so that every test crosses the wrap.
private let base = SequenceNumber(0xFFFF_FF00)
private let smss = 1000

/// Ten segments of 1000 octets sent at time zero, as RFC 6675 §3's examples assume.
private func tenSegments() -> Scoreboard {
    var board = Scoreboard()
    for segment in 0..<10 {
        board.recordSent(from: base + segment * smss, to: base + (segment + 1) * smss, now: .zero)
    }
    return board
}

private func block(_ first: Int, _ last: Int) -> SACKBlock {
    SACKBlock(start: base + first * smss, end: base + (last + 1) * smss)
}

/// RFC 6675 §4's routines — Update, IsLost, SetPipe, NextSeg — on the sender's scoreboard.
@Suite struct ScoreboardTests {
    /// Nothing SACKed or lost: pipe is FlightSize (RFC 6675 §4 SetPipe), and NextSeg rule (1) finds nothing.
    @Test func pipeIsFlightSizeWithoutSACKs() {
        var board = tenSegments()
        #expect(board.pipe(flightSize: 10 * smss) == 10 * smss)
        #expect(board.nextLostSegment(maximumLength: smss) == nil)
        #expect(board.markLostByDuplicateThreshold(3, smss: smss) == 0)
    }

    /// IsLost(SeqNum): true once DupThresh (3) discontiguous SACKed segments lie above it. With segments
    /// 2 and 4 SACKed nothing is lost yet; with 5 SACKed too, segments 0 and 1 have three SACKed segments
    /// above them, while segment 3 has two — 2000 octets, not more than (DupThresh − 1)·SMSS.
    @Test func isLostNeedsDupThreshSACKedSegmentsAbove() {
        var board = tenSegments()
        board.sack(block(2, 2)) { _ in }
        board.sack(block(4, 4)) { _ in }
        #expect(board.markLostByDuplicateThreshold(3, smss: smss) == 0)
        board.sack(block(5, 5)) { _ in }
        #expect(board.markLostByDuplicateThreshold(3, smss: smss) == 2 * smss)
        #expect(board.sackedBytes == 3 * smss)
        #expect(board.lostBytes == 2 * smss)
        // SetPipe: 10 in flight − 3 SACKed − 2 lost.
        #expect(board.pipe(flightSize: 10 * smss) == 5 * smss)
    }

    /// IsLost's second rule: more than (DupThresh − 1)·SMSS octets SACKed above, even in one segment
    /// (here one 3000-octet entry, as a large send makes).
    @Test func isLostByOctetsSACKedAbove() {
        var board = Scoreboard()
        board.recordSent(from: base, to: base + smss, now: .zero)
        board.recordSent(from: base + smss, to: base + 4 * smss, now: .zero)
        board.sack(SACKBlock(start: base + smss, end: base + 4 * smss)) { _ in }
        #expect(board.sackedSegments == 1)
        #expect(board.markLostByDuplicateThreshold(3, smss: smss) == smss)
    }

    /// NextSeg rule (1): the lowest lost segment not yet retransmitted; retransmitting it puts it back
    /// in pipe (RFC 6675 §4: "retransmitted" octets count once more).
    @Test func nextSegReturnsTheLowestLostSegmentOnce() {
        var board = tenSegments()
        board.sack(block(3, 5)) { _ in }
        #expect(board.markLostByDuplicateThreshold(3, smss: smss) == 3 * smss)
        #expect(board.pipe(flightSize: 10 * smss) == 4 * smss)
        let first = board.nextLostSegment(maximumLength: smss)
        #expect(first?.start == base && first?.end == base + smss)
        board.recordSent(from: base, to: base + smss, now: .zero + .milliseconds(100))
        #expect(board.pipe(flightSize: 10 * smss) == 5 * smss)
        let second = board.nextLostSegment(maximumLength: smss)
        #expect(second?.start == base + smss)
        // A retransmission longer than allowed is split: only what is sent leaves the lost set.
        let half = board.nextLostSegment(maximumLength: 400)
        #expect(half?.start == base + smss && half?.end == base + smss + 400)
    }

    /// The cumulative ACK drops what it covers and reports the octets that had been SACKed, for
    /// RFC 6937's DeliveredData.
    @Test func cumulativeAckReportsPreviouslySACKedOctets() {
        var board = tenSegments()
        board.sack(block(1, 2)) { _ in }
        var delivered: [SequenceNumber] = []
        let previouslySacked = board.acknowledge(upTo: base + 3 * smss) { delivered.append($0.start) }
        #expect(previouslySacked == 2 * smss)
        #expect(delivered == [base])
        #expect(board.count == 7)
        #expect(board.sackedBytes == 0 && board.highestSacked == nil)
    }

    /// RFC 8985 §6.2 step 5: a segment sent before the most recently delivered one is lost once RACK.rtt
    /// plus the reordering window has passed since it was sent; until then the timer waits for it.
    @Test func rackMarksLossesAfterTheReorderingWindow() {
        var board = Scoreboard()
        for segment in 0..<4 {
            let sent = Instant.zero + .milliseconds(Int64(segment))
            board.recordSent(from: base + segment * smss, to: base + (segment + 1) * smss, now: sent)
        }
        board.sack(block(3, 3)) { _ in }
        // The SACKed segment was sent at 3 ms and delivered at 103 ms: RACK.rtt = 100 ms. Window 25 ms.
        let early = board.detectLossesRACK(
            rackSentAt: .zero + .milliseconds(3), rackEnd: base + 4 * smss, rtt: .milliseconds(100),
            reorderingWindow: .milliseconds(25), now: .zero + .milliseconds(103))
        #expect(early.newlyLost == 0)
        // Segment 0 expires first (0 + 100 + 25), segment 2 last: the timer covers the latest.
        #expect(early.timeout == .milliseconds(24))
        let late = board.detectLossesRACK(
            rackSentAt: .zero + .milliseconds(3), rackEnd: base + 4 * smss, rtt: .milliseconds(100),
            reorderingWindow: .milliseconds(25), now: .zero + .milliseconds(127))
        #expect(late.newlyLost == 3 * smss)
        #expect(late.timeout == nil)
    }

    /// RFC 6675 NextSeg rule (1) and RFC 8985 §6.2: a retransmission is lost again only when a segment
    /// sent strictly after it is delivered. A SACK for data sent at the same instant (RACK.rtt zero, no
    /// window) must not re-mark the holes retransmitted at that instant, or every duplicate ACK resends them.
    @Test func rackDoesNotReMarkRetransmissionsSentAtTheSameInstant() {
        var board = Scoreboard()
        for segment in 0..<4 {
            board.recordSent(from: base + segment * smss, to: base + (segment + 1) * smss, now: .zero)
        }
        board.sack(block(3, 3)) { _ in }
        let first = board.detectLossesRACK(
            rackSentAt: .zero, rackEnd: base + 4 * smss, rtt: .zero, reorderingWindow: .zero, now: .zero)
        #expect(first.newlyLost == 3 * smss)
        // The holes go again at 10 ms, and new data with them; the new data is SACKed at once.
        let resent = Instant.zero + .milliseconds(10)
        while let hole = board.nextLostSegment(maximumLength: smss) {
            board.recordSent(from: hole.start, to: hole.end, now: resent)
        }
        board.recordSent(from: base + 4 * smss, to: base + 5 * smss, now: resent)
        board.sack(block(4, 4)) { _ in }
        for _ in 0..<3 {
            let again = board.detectLossesRACK(
                rackSentAt: resent, rackEnd: base + 5 * smss, rtt: .zero, reorderingWindow: .zero, now: resent)
            #expect(again.newlyLost == 0)
            #expect(!board.hasLostToRetransmit)
        }
        // Once a segment sent later is delivered and its RTT has passed, the retransmissions are lost again.
        let later = Instant.zero + .milliseconds(20)
        board.recordSent(from: base + 5 * smss, to: base + 6 * smss, now: later)
        board.sack(block(5, 5)) { _ in }
        let lost = board.detectLossesRACK(
            rackSentAt: later, rackEnd: base + 6 * smss, rtt: .milliseconds(10), reorderingWindow: .zero,
            now: .zero + .milliseconds(30))
        #expect(lost.newlyLost == 3 * smss)
        #expect(board.hasLostToRetransmit)
    }

    /// A long fat path's window: 6,000 full-sized segments in flight (50 ms at 500 Mbit/s) each keep an
    /// entry of their own, past `maximumSegments`, so a SACK block high in the window marks exactly what
    /// it covers and the retransmissions that follow are the holes only, not SACKed octets the receiver
    /// would D-SACK (which once undid a real recovery as spurious, RFC 2883 §4.1).
    @Test func aWindowOfSixThousandSegmentsKeepsAnEntryEach() {
        var board = Scoreboard()
        let segments = 6_000
        for segment in 0..<segments {
            board.recordSent(from: base + segment * 1448, to: base + (segment + 1) * 1448, now: .zero)
        }
        #expect(board.count == segments)
        #expect(board.refusedSplits == 0)
        // Segments 5,000–5,009 SACKed; 3,000 (and all below it) have at least DupThresh SACKed above.
        board.sack(SACKBlock(start: base + 5_000 * 1448, end: base + 5_010 * 1448)) { _ in }
        #expect(board.sackedBytes == 10 * 1448)
        #expect(board.refusedSplits == 0)
        #expect(board.markLostByDuplicateThreshold(3, smss: 1448) == 5_000 * 1448)
        #expect(board.pipe(flightSize: segments * 1448) == (segments - 5_010) * 1448)
        // What goes again starts at the first hole, a segment at a time.
        let next = board.nextLostSegment(maximumLength: 1448)
        #expect(next?.start == base && next?.end == base + 1448)
    }

    /// Peer-controlled SACK blocks cost precision, never memory: splits stop at the bound and are counted.
    @Test func hostileSACKBlocksAreBounded() {
        var board = Scoreboard()
        // One large entry (as when the bound merged many small sends), then a block per other octet.
        board.recordSent(from: base, to: base + 10_000, now: .zero)
        for octet in stride(from: 1, to: 10_000, by: 2) {
            board.sack(SACKBlock(start: base + octet, end: base + octet + 1)) { _ in }
        }
        #expect(board.count <= Scoreboard.maximumSegments)
        #expect(board.refusedSplits > 0)
        #expect(board.pipe(flightSize: 10_000) >= 0)
        board.acknowledge(upTo: base + 10_000) { _ in }
        #expect(board.isEmpty && board.sackedBytes == 0 && board.lostBytes == 0)
    }

    /// After a timeout without RACK everything not SACKed is lost (RFC 6675 §5.1), and a lost
    /// retransmission is lost again.
    @Test func timeoutMarksEverythingNotSACKed() {
        var board = tenSegments()
        board.sack(block(5, 5)) { _ in }
        board.markLostOnTimeout(now: .zero + .seconds(1), rackWindow: nil)
        #expect(board.lostBytes == 9 * smss)
        #expect(board.pipe(flightSize: 10 * smss) == 0)
        board.recordSent(from: base, to: base + smss, now: .zero + .seconds(1))
        #expect(board.pipe(flightSize: 10 * smss) == smss)
        board.markLostOnTimeout(now: .zero + .seconds(2), rackWindow: nil)
        #expect(board.pipe(flightSize: 10 * smss) == 0)
        #expect(board.nextLostSegment(maximumLength: smss)?.start == base)
    }
}

/// A closed connection's empty scoreboard storage goes to the next connection opened, so a
/// connection's life allocates no array for it (`Stack.recycledScoreboards`).
@Suite struct ScoreboardRecyclingTests {
    @Test func closedConnectionsLendTheirStorageToNewOnes() throws {
        var t = try TCPTester(.lastAck)
        try t.expect("+0 > F. 1:1(0) ack 2")
        #expect(t.stack.recycledScoreboards.isEmpty)
        try t.inject("+.01 < . 2:2(0) ack 2 win 65535")
        #expect(t.stack.connectionCount == 0)
        #expect(t.stack.recycledScoreboards.count == 1)
        #expect(t.stack.recycledScoreboards.first?.capacity ?? 0 > 0)
        let id = try t.stack.connect(to: Endpoint(t.remoteAddress, 6000), now: t.now)
        #expect(t.stack.recycledScoreboards.isEmpty)
        #expect(t.stack.state(id) == .synSent)
    }

    @Test func storageThatGrewLargeIsNotKept() {
        var scoreboard = Scoreboard()
        var sequence = SequenceNumber(1)
        for _ in 0..<(Scoreboard.recycledCapacityLimit + 1) {
            scoreboard.recordSent(from: sequence, to: sequence + 100, now: .zero)
            sequence = sequence + 100
        }
        #expect(scoreboard.takeStorage() == nil)
        var small = Scoreboard()
        small.recordSent(from: SequenceNumber(1), to: SequenceNumber(2), now: .zero)
        let storage = small.takeStorage()
        #expect(storage?.isEmpty == true)
        #expect(small.isEmpty)
        var adopting = Scoreboard()
        adopting.adoptStorage(storage!)
        adopting.recordSent(from: SequenceNumber(1), to: SequenceNumber(2), now: .zero)
        #expect(adopting.count == 1)
    }
}

