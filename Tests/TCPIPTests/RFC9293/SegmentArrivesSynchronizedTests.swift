import NIOCore
import TCPIP
import Testing

/// RFC 9293 §3.10.7.4 in the synchronized states: the first (sequence number), second (RST),
/// fourth (SYN) and fifth (ACK) checks, with RFC 5961's challenge ACKs.
@Suite struct SegmentArrivesSynchronizedTests {
    // MARK: First — the four acceptability cases

    /// SEG.LEN = 0, RCV.WND > 0: acceptable if RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND; otherwise
    /// "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" and drop.
    @Test func emptySegmentOpenWindow() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        try t.inject("+0 < . 65535:65535(0) ack 1 win 65535")   // the last sequence number of the window
        try t.expectNothing()
        try t.inject("+0 < . 0:0(0) ack 1 win 65535")           // just before RCV.NXT
        try t.expect("+0 > . 1:1(0) ack 1 win 65535")
        try t.inject("+0 < . 65536:65536(0) ack 1 win 65535")   // just past the window
        try t.expect("+0 > . 1:1(0) ack 1 win 65535")
        try t.expectNothing()
        #expect(t.counters.droppedOutOfWindow == 2)
    }

    /// SEG.LEN > 0, RCV.WND > 0: acceptable if its first or last octet is in the window; the part
    /// before RCV.NXT is trimmed off, the part past the window too.
    @Test func segmentWithTextOpenWindow() throws {
        var t = try TCPTester(.established) { $0.tcp.receiveBufferSize = 3000 }
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 1001 win 2000")
        // Starts before RCV.NXT, ends inside: the new half is taken.
        try t.inject("+0 < . 501:1501(1000) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 1501 win 1500")
        // Starts inside, ends past the right edge (1+3000): trimmed to the window.
        try t.inject("+0 < . 1501:3501(2000) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 3001 win 0")
        // Entirely past the window: not acceptable.
        try t.inject("+0 < . 4001:5001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 3001 win 0")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 3000)))
    }

    /// RCV.WND = 0: an empty segment is acceptable only at exactly RCV.NXT; one with text never is,
    /// and is answered with an ACK repeating the zero window.
    @Test func zeroWindowCases() throws {
        var t = try TCPTester(.established) { $0.tcp.receiveBufferSize = 2000 }
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.inject("+0 < . 1001:2001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 0")
        // SEG.LEN = 0, RCV.WND = 0, SEG.SEQ = RCV.NXT: acceptable (a pure ACK, nothing to answer).
        try t.inject("+0 < . 2001:2001(0) ack 1 win 65535")
        try t.expectNothing()
        // SEG.LEN = 0, RCV.WND = 0, SEG.SEQ != RCV.NXT: not acceptable.
        try t.inject("+0 < . 2002:2002(0) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 0")
        // SEG.LEN > 0, RCV.WND = 0: never acceptable — a zero-window probe.
        try t.inject("+0 < . 2001:2002(1) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 0")
        try t.expectNothing()
        #expect(t.status?.receiveQueue == 2000)
    }

    /// A duplicate is not acceptable: acknowledged at once (so a peer whose ACK was lost learns)
    /// and counted, its text dropped.
    @Test func duplicateSegmentIsAcknowledgedAndDropped() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < P. 1:1001(1000) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 1001")
        try t.inject("+.2 < P. 1:1001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1001")
        try t.expectNothing()
        #expect(t.counters.duplicateSegments == 1)
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 1000)))
        #expect(try t.app.read() == .wouldBlock)
    }

    // MARK: Second — RST (RFC 5961 §3.2)

    /// An RST exactly at RCV.NXT resets the connection: "enter the CLOSED state, delete the TCB"
    /// and the user hears "connection reset".
    @Test func resetAtReceiveNextResets() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535")
        try t.inject("+0 < R 101:101(0) win 0")
        try t.expectNothing()
        #expect(t.state == .closed)
        #expect(t.status?.error == .connectionReset)
        #expect(throws: TCPError.connectionReset) { try t.app.send(10) }
        #expect(t.counters.establishedResets == 1)
    }

    /// An RST inside the window but not at RCV.NXT gets a challenge ACK; the connection stays.
    @Test func resetInWindowGetsChallengeAck() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < R 2:2(0) win 0")
        try t.expect("+0 > . 1:1(0) ack 1")
        try t.inject("+0 < R. 60000:60000(0) ack 1 win 0")
        try t.expect("+0 > . 1:1(0) ack 1")
        try t.expectNothing()
        #expect(t.state == .established)
        #expect(t.counters.challengeAcksSent == 2)
        // The genuine peer answers the challenge with an RST at RCV.NXT.
        try t.inject("+0 < R 1:1(0) win 0")
        #expect(t.state == .closed)
    }

    /// An RST outside the window is dropped silently.
    @Test func resetOutsideWindowIsDropped() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < R 0:0(0) win 0")
        try t.inject("+0 < R 70000:70000(0) win 0")
        try t.expectNothing()
        #expect(t.state == .established)
        #expect(t.counters.droppedResetOutOfWindow == 2)
    }

    /// RFC 1337 (TIME-WAIT assassination): an RST in TIME-WAIT is ignored, even at RCV.NXT.
    @Test func resetInTimeWaitIsIgnored() throws {
        var t = try TCPTester(.timeWait)
        try t.inject("+1 < R 2:2(0) win 0")
        try t.expectNothing()
        #expect(t.state.rfcName == "TIME-WAIT")
    }

    /// In CLOSING and LAST-ACK an RST at RCV.NXT simply closes (no error for the user).
    @Test func resetInLastAckCloses() throws {
        var t = try TCPTester(.lastAck)
        try t.expect("+0 > F. 1:1(0) ack 2")
        try t.inject("+0 < R 2:2(0) win 0")
        try t.expectNothing()
        #expect(t.state == .closed)
    }

    /// A simultaneous open (SYN-RECEIVED with a TCB) that is reset at RCV.NXT is refused.
    @Test func resetInSimultaneousSynReceivedRefuses() throws {
        var t = try TCPTester(.synReceivedSimultaneous)
        try t.inject("+0 < R 1:1(0) win 0")
        #expect(t.state == .closed)
        #expect(t.status?.error == .connectionRefused)
    }

    // MARK: Fourth — SYN (RFC 5961 §4)

    /// A SYN in a synchronized state, in the window or not, gets a challenge ACK and changes nothing.
    @Test func synInEstablishedGetsChallengeAck() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < S 1000:1000(0) win 65535 <mss 1460>")
        try t.expect("+0 > . 1:1(0) ack 1")
        #expect(t.counters.challengeAcksSent == 1)
        // Outside the window the first check answers it already, with the same ACK.
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+0 > . 1:1(0) ack 1")
        try t.expectNothing()
        #expect(t.state == .established)
    }

    // MARK: Fifth — the ACK field

    /// "If the ACK bit is off, drop the segment and return" — its text is not taken.
    @Test func segmentWithoutAckIsDropped() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < P 1:101(100) win 65535")
        try t.expectNothing(for: .seconds(1))
        #expect(try t.app.read() == .wouldBlock)
        #expect(t.counters.droppedNoAckFlag == 1)
    }

    /// "If the ACK acks something not yet sent (SEG.ACK > SND.NXT), then send an ACK, drop the
    /// segment, and return" — its text too.
    @Test func ackOfUnsentDataGetsAckAndIsDropped() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < . 1:1(0) ack 100 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1")
        try t.inject("+0 < P. 1:101(100) ack 2 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1")
        try t.expectNothing()
        #expect(try t.app.read() == .wouldBlock)
        #expect(t.state == .established)
    }

    /// "If the ACK is a duplicate (SEG.ACK < SND.UNA), it can be ignored"; older than
    /// SND.UNA - MAX.SND.WND it gets a challenge ACK instead (RFC 5961 §5.2).
    @Test func oldAckIsIgnored() throws {
        var t = try TCPTester(.established)
        try t.app.send(1000)
        try t.expect("+0 > P. 1:1001(1000) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1001 win 65535")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        try t.inject("+0 < P. 1:101(100) ack 500 win 65535")   // its text still counts
        try t.expect("+.04 > . 1001:1001(0) ack 101")
        try t.expectNothing()
        #expect(t.status?.sendUnacknowledged == t.status?.sendNext)
        // 1001 - 65535 - 1, across the wrap: older than any window the peer offered.
        try t.inject("+0 < . 101:101(0) ack 4294902761 win 65535")
        try t.expect("+0 > . 1001:1001(0) ack 101")
        #expect(t.counters.challengeAcksSent == 1)
    }

    /// The send window is taken only from a segment newer than the last update (SND.WL1 < SEG.SEQ,
    /// or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK): a reordered older segment can't shrink it.
    @Test func windowUpdateUsesOnlyNewerSegments() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < . 101:201(100) ack 1 win 5000")
        try t.expect("+0 > . 1:1(0) ack 1")
        #expect(t.status?.sendWindow == 5000)
        // Fills the hole, but SEG.SEQ < SND.WL1: its window is stale.
        try t.inject("+0 < . 1:101(100) ack 1 win 100")
        try t.expect("+0 > . 1:1(0) ack 201")
        #expect(t.status?.sendWindow == 5000)
        try t.inject("+0 < . 201:201(0) ack 1 win 7000")
        #expect(t.status?.sendWindow == 7000)
        try t.expectNothing()
    }

    /// RCV.WND = 0: "special allowance should be made to accept valid ACKs" — a probe carrying an
    /// ACK of our data is refused, but its acknowledgment is taken.
    @Test func zeroWindowStillTakesAcks() throws {
        var t = try TCPTester(.established) { $0.tcp.receiveBufferSize = 2000 }
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.inject("+0 < . 1001:2001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 0")
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 2001 win 0")
        try t.inject("+.1 < . 2001:2002(1) ack 101 win 65535")
        try t.expect("+0 > . 101:101(0) ack 2001 win 0")
        #expect(t.status?.sendQueue == 0)
        // ... and an RST at RCV.NXT still resets.
        try t.inject("+0 < R 2001:2001(0) win 0")
        #expect(t.state == .closed)
    }

    /// SYN-RECEIVED of a simultaneous open: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>.
    @Test func badAckInSimultaneousSynReceived() throws {
        var t = try TCPTester(.synReceivedSimultaneous)
        try t.inject("+0 < . 1:1(0) ack 5 win 65535")
        try t.expect("+0 > R 5:5(0)")
        #expect(t.state == .synReceived)
    }

    /// URG: urgent data is delivered inline with the rest (RFC 6093 §5); the flag changes nothing.
    @Test func urgentDataIsInline() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < PU. 1:101(100) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 101")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 100)))
    }
}
