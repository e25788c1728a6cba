import NIOCore
import TCPIP
import Testing

/// RFC 9293 §3.10.7.3: SEGMENT ARRIVES in SYN-SENT, and the SYN that got us there (§3.10.1).
@Suite struct SegmentArrivesSynSentTests {
    /// OPEN sends <SEQ=ISS><CTL=SYN> offering everything configured: MSS from the MTU, SACK,
    /// timestamps (TS.ecr zero) and window scaling (RFC 9293 §3.10.1; RFC 7323; RFC 2018).
    @Test func activeOpenSendsSynWithOptions() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0) win 65535 <mss 1460,sackOK,TS val * ecr 0,nop,wscale 3>")
        try t.expectNothing()
        #expect(t.state == .synSent)
        #expect(t.counters.activeOpens == 1)
    }

    /// "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset <SEQ=SEG.ACK><CTL=RST>" and stay.
    @Test func badAckGetsReset() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        try t.inject("+0 < S. 0:0(0) ack 2 win 65535")
        try t.expect("+0 > R 2:2(0)")
        try t.inject("+0 < . 0:0(0) ack 0 win 65535")
        try t.expect("+0 > R 0:0(0)")
        // "... unless the RST bit is set, if so drop the segment and return."
        try t.inject("+0 < R. 0:0(0) ack 5 win 0")
        try t.expectNothing()
        #expect(t.state == .synSent)
    }

    /// "If the ACK was acceptable, then signal to the user 'error: connection reset', drop the
    /// segment, enter CLOSED" — refused, as the application sees it.
    @Test func resetWithGoodAckRefusesTheConnection() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        try t.inject("+0.01 < R. 0:0(0) ack 1 win 0")
        try t.expectNothing()
        #expect(t.state == .closed)
        #expect(t.status?.error == .connectionRefused)
        #expect(throws: TCPError.connectionRefused) { try t.app.read() }
        #expect(t.counters.failedConnectionAttempts == 1)
        try t.expectNothing(for: .seconds(10))   // no SYN retransmission
    }

    /// "If the ACK bit is off": an RST without ACK can't be tied to our SYN (RFC 5961 §3.2): drop.
    @Test func resetWithoutAckIsDropped() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        try t.inject("+0 < R 0:0(0) win 0")
        try t.expectNothing()
        #expect(t.state == .synSent)
    }

    /// "If SND.UNA > ISS (our SYN has been ACKed), change the connection state to ESTABLISHED ...
    /// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>."
    @Test func synAckEstablishes() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        try t.inject("+0.1 < S. 0:0(0) ack 1 win 29200 <mss 1460>")
        try t.expect("+0 > . 1:1(0) ack 1 win 65535")
        try t.expectNothing()
        #expect(t.state == .established)
        #expect(t.status?.sendWindow == 29200)
    }

    /// Data in a SYN-ACK is processed from the sixth step on: queued and acknowledged.
    @Test func dataInSynAckIsDelivered() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        try t.inject("+0 < S. 0:10(10) ack 1 win 65535 <mss 1460>")
        try t.expect("+0 > . 1:1(0) ack 11")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 10)))
    }

    /// A segment with neither SYN nor RST: "drop the segment and return."
    @Test func segmentWithoutSynIsDropped() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        try t.inject("+0 < P 1:11(10) win 65535")
        try t.expectNothing()
        #expect(t.state == .synSent)
    }

    /// Simultaneous open (RFC 9293 Figure 8): a SYN without ACK moves to SYN-RECEIVED and is
    /// answered <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>; the peer's ACK then establishes.
    @Test func simultaneousOpen() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0) <mss 1460,sackOK,TS val * ecr 0,nop,wscale 3>")
        try t.inject("+0.05 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+0 > S. 0:0(0) ack 1 <mss 1460>")
        #expect(t.state == .synReceived)
        try t.inject("+0.05 < . 1:1(0) ack 1 win 65535")
        try t.expectNothing()
        #expect(t.state == .established)
    }

    /// Simultaneous open as RFC 9293 Figure 8 draws it: each side answers the other's SYN with a
    /// SYN-ACK, and the peer's SYN-ACK (SEG.SEQ = IRS, acknowledging our SYN) completes ours.
    @Test func simultaneousOpenCompletedBySynAck() throws {
        var t = try TCPTester(.synReceivedSimultaneous)
        try t.inject("+.05 < S. 0:0(0) ack 1 win 65535 <mss 1460>")
        try t.expectNothing()   // both SYNs are acknowledged already: nothing to say
        #expect(t.state == .established)
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
    }

    /// The same SYN-ACK acknowledging something we never sent gets <SEQ=SEG.ACK><CTL=RST>.
    @Test func simultaneousOpenSynAckWithBadAck() throws {
        var t = try TCPTester(.synReceivedSimultaneous)
        try t.inject("+.05 < S. 0:0(0) ack 5 win 65535 <mss 1460>")
        try t.expect("+0 > R 5:5(0)")
        #expect(t.state == .synReceived)
    }

    /// The SYN-ACK of a simultaneous open is retransmitted with the options of the first one —
    /// only those the peer's SYN offered (RFC 7323 §2.2, §3.2; RFC 2018 §2).
    @Test func simultaneousOpenSynAckRetransmission() throws {
        var t = try TCPTester(.synReceivedSimultaneous)
        try t.expect("+1 > S. 0:0(0) ack 1 <mss 1460>")
        try t.expect("+2 > S. 0:0(0) ack 1 <mss 1460>")
        try t.inject("+.1 < . 1:1(0) ack 1 win 65535")
        #expect(t.state == .established)

        var scaled = try TCPTester(.synReceivedSimultaneous, peer: .init(windowScale: 2, timestampValue: 50))
        try scaled.expect("+1 > S. 0:0(0) ack 1 <mss 1460,nop,nop,TS val * ecr 50,nop,wscale 3>")
    }

    /// The SYN is retransmitted after the initial RTO of 1 s and then at doubling intervals
    /// (RFC 6298 §2.1, §5.5); after the SYN retry limit the open fails with a timeout.
    @Test func synRetransmissionsThenTimeout() throws {
        var t = try TCPTester(.synSent) { $0.tcp.maximumSYNRetransmissions = 4 }
        try t.expect("+0 > S 0:0(0)")
        try t.expect("+1 > S 0:0(0)")
        try t.expect("+2 > S 0:0(0)")
        try t.expect("+4 > S 0:0(0)")
        try t.expect("+8 > S 0:0(0)")
        // The fourth retransmission's timer, 16 s, expires at 31 s: no fifth SYN, the open fails.
        try t.expectNothing(for: .seconds(16))
        #expect(t.elapsed == .seconds(31))
        #expect(t.state == .closed)
        #expect(t.status?.error == .timedOut)
        #expect(t.counters.failedConnectionAttempts == 1)
    }

    /// CLOSE in SYN-SENT: "Delete the TCB" — nothing is sent, and the peer's late SYN-ACK finds no one.
    @Test func closeInSynSentDeletesTheConnection() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        try t.app.close()
        try t.expectNothing(for: .seconds(5))
        #expect(t.state == .closed)
        try t.inject("+0 < S. 0:0(0) ack 1 win 65535")
        try t.expect("+0 > R 1:1(0)")
    }
}
