import NIOCore
import TCPIP
import Testing

/// RFC 9293 §3.10.7.2 (LISTEN) and the passive side of SYN-RECEIVED, which waits in the listener's
/// SYN queue as a half-open entry until the handshake completes.
@Suite struct SegmentArrivesListenTests {
    /// "First, check for a RST: An incoming RST segment could not be valid ... ignore it."
    @Test func resetIsIgnored() throws {
        var t = try TCPTester(.listen)
        try t.inject("+0 < R 0:0(0) win 0")
        try t.inject("+0 < R. 0:0(0) ack 1 win 0")
        try t.expectNothing()
        #expect(t.state == .listen)
    }

    /// "Second, check for an ACK: any acknowledgment is bad ... <SEQ=SEG.ACK><CTL=RST>."
    @Test func ackGetsReset() throws {
        var t = try TCPTester(.listen)
        try t.inject("+0 < . 1:1(0) ack 100 win 65535")
        try t.expect("+0 > R 100:100(0)")
        try t.inject("+0 < S. 0:0(0) ack 4294967000 win 65535")
        try t.expect("+0 > R 4294967000:4294967000(0)")
        try t.expectNothing()
        #expect(t.state == .listen)
    }

    /// "Third, check for a SYN: ... <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>", with only the options the
    /// peer offered: MSS alone here, so no wscale, sackOK or TS (RFC 7323 §1.3, RFC 2018 §2).
    @Test func synGetsSynAck() throws {
        var t = try TCPTester(.listen)
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1000>")
        try t.expect("+0 > S. 0:0(0) ack 1 win 65535 <mss 1460>")
        try t.expectNothing()
        #expect(t.state == .synReceived)
        #expect(t.counters.synsReceived == 1)
    }

    /// Every option offered is answered: MSS from the MTU, SACK-permitted, our timestamp echoing
    /// the peer's, and the smallest shift covering a 256 KiB buffer (RFC 7323 §2.3).
    @Test func synWithEveryOptionGetsThemAllBack() throws {
        var t = try TCPTester(.listen)
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1000,sackOK,TS val 700 ecr 0,nop,wscale 7>")
        try t.expect("+0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val * ecr 700,nop,wscale 3>")
        try t.expectNothing()
    }

    /// Over IPv6 the MSS we announce leaves room for the 40-octet header (RFC 9293 §3.7.1).
    @Test func synOverIPv6AnnouncesTheIPv6MSS() throws {
        var t = try TCPTester(.listen, peer: .init(ipv6: true))
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1440>")
        try t.expect("+0 > S. 0:0(0) ack 1 win 65535 <mss 1440>")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        #expect(t.state == .established)
    }

    /// Text in a SYN is not queued (RFC 9293 §3.10.7.2 permits either); the SYN-ACK acknowledges
    /// only the SYN and the peer sends the data again.
    @Test func dataInSynIsNotAcknowledged() throws {
        var t = try TCPTester(.listen)
        try t.inject("+0 < S 0:100(100) win 65535 <mss 1460>")
        try t.expect("+0 > S. 0:0(0) ack 1")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 100)))
    }

    /// "Fourth, other data or control: ... drop the segment, and return."
    @Test func segmentWithoutSynOrAckIsDropped() throws {
        var t = try TCPTester(.listen)
        try t.inject("+0 < P 1:11(10) win 65535")
        try t.inject("+0 < F 1:1(0) win 65535")
        try t.expectNothing()
        #expect(t.state == .listen)
    }

    // MARK: SYN-RECEIVED, passive

    /// "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED" — and the listener can accept it.
    @Test func ackOfSynAckEstablishes() throws {
        var t = try TCPTester(.synReceived)
        #expect(t.connection == nil)
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        try t.expectNothing()
        #expect(t.connection != nil)
        #expect(t.state == .established)
        #expect(t.counters.passiveOpens == 1)
    }

    /// The ACK completing the handshake may carry data: it is delivered as in ESTABLISHED.
    @Test func finalAckCarryingData() throws {
        var t = try TCPTester(.synReceived)
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 101")
        #expect(t.state == .established)
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 100)))
    }

    /// ... or a FIN: ESTABLISHED, then at once CLOSE-WAIT.
    @Test func finalAckCarryingFin() throws {
        var t = try TCPTester(.synReceived)
        try t.inject("+0 < F. 1:1(0) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2")
        #expect(t.state == .closeWait)
        #expect(try t.app.read() == .endOfStream)
    }

    /// "If the segment acknowledgment is not acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST>."
    @Test func badAckInSynReceivedGetsReset() throws {
        var t = try TCPTester(.synReceived)
        try t.inject("+0 < . 1:1(0) ack 2 win 65535")
        try t.expect("+0 > R 2:2(0)")
        try t.inject("+0 < . 1:1(0) ack 0 win 65535")
        try t.expect("+0 > R 0:0(0)")
        try t.expectNothing()
        #expect(t.state == .synReceived)
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        #expect(t.state == .established)
    }

    /// An RST at RCV.NXT returns a passive open to LISTEN (RFC 9293 §3.10.7.4, second); one
    /// elsewhere in the window draws a challenge ACK (RFC 5961 §3.2), as from any synchronized state.
    @Test func resetInSynReceivedReturnsToListen() throws {
        var t = try TCPTester(.synReceived)
        try t.inject("+0 < R 5:5(0) win 0")
        try t.expect("+0 > . 1:1(0) ack 1")
        #expect(t.state == .synReceived)
        try t.inject("+0 < R 1:1(0) win 0")
        try t.expectNothing()
        #expect(t.state == .listen)
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        try t.expect("+0 > R 1:1(0)")
    }

    /// A retransmitted SYN means our SYN-ACK was lost: say it again.
    @Test func retransmittedSynGetsSynAckAgain() throws {
        var t = try TCPTester(.synReceived)
        try t.inject("+0.5 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+0 > S. 0:0(0) ack 1 <mss 1460>")
        try t.expectNothing()
    }

    /// The SYN-ACK is retransmitted with exponential backoff from the initial RTO (RFC 6298 §2.1,
    /// §5.5), up to the SYN retry limit, then the half-open entry is forgotten.
    @Test func synAckRetransmissionBacksOffThenGivesUp() throws {
        var t = try TCPTester(.synReceived) { $0.tcp.maximumSYNRetransmissions = 3 }
        try t.expect("+1 > S. 0:0(0) ack 1 <mss 1460>")
        try t.expect("+2 > S. 0:0(0) ack 1 <mss 1460>")
        try t.expect("+4 > S. 0:0(0) ack 1 <mss 1460>")
        try t.expectNothing(for: .seconds(8))
        #expect(t.state == .listen)
        #expect(t.stack.halfOpenCount == 0)
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        try t.expect("+0 > R 1:1(0)")
    }

    /// An unacceptable segment in SYN-RECEIVED is answered <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and
    /// dropped (RFC 9293 §3.10.7.4, first) — even one whose ACK would complete the handshake; the
    /// half-open connection waits for a proper ACK and is then handed to the application.
    @Test func outOfWindowFinalAckIsAnsweredAndDropped() throws {
        var t = try TCPTester(.synReceived)
        try t.inject("+0 < . 70000:70000(0) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1")
        #expect(t.state == .synReceived)
        #expect(t.stack.connectionCount == 0)
        try t.inject("+.01 < . 1:1(0) ack 1 win 65535")
        try t.expectNothing()
        #expect(t.connection != nil)
        #expect(t.state == .established)
    }

    /// The same for a final ACK that fails PAWS (RFC 7323 §5.3): its TSval is older than the SYN's.
    @Test func finalAckFailingPAWSIsAnsweredAndDropped() throws {
        var t = try TCPTester(.synReceived, peer: .init(timestampValue: 1000))
        try t.inject("+0 < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 999 ecr *>")
        try t.expect("+0 > . 1:1(0) ack 1 <nop,nop,TS val * ecr 1000>")
        #expect(t.stack.connectionCount == 0)
        try t.inject("+0 < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 1001 ecr *>")
        #expect(t.connection != nil)
        #expect(t.state == .established)
    }

    /// Every completed handshake frees its place in the SYN queue: a listener keeps accepting
    /// long after it has completed more handshakes than its SYN queue holds.
    @Test func completedHandshakesFreeTheirSynQueueSlots() throws {
        var t = try TCPTester(.closed) { $0.tcp.synQueueLimit = 2 }
        let listener = try t.stack.listen(on: TCPTester.listenPort, backlog: 2)
        var accepted = 0
        for port in 7000..<7010 as Range<UInt16> {
            t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: port))
            let synAck = try #require(t.takeSegments().first, "no SYN-ACK for port \(port)")
            let ack = synAck.sequenceNumber.rawValue &+ 1   // absolute: the tester has no ISS of its own here
            t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(ack) win 65535", fromPort: port))
            #expect(t.takeSegments().isEmpty)
            if t.stack.accept(listener) != nil { accepted += 1 }
        }
        #expect(accepted == 10)
        #expect(t.counters.synQueueDrops == 0)
    }

    /// A full accept queue drops the final ACK and keeps the half-open entry (as Linux with
    /// tcp_abort_on_overflow = 0); the SYN-ACK retransmission brings the ACK again once there is room.
    @Test func fullAcceptQueueDropsTheFinalAck() throws {
        var t = try TCPTester(.closed)
        let listener = try t.stack.listen(on: TCPTester.listenPort, backlog: 1)
        var acks: [UInt16: UInt32] = [:]
        for port in [7000, 7001] as [UInt16] {
            t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: port))
            acks[port] = try #require(t.takeSegments().first).sequenceNumber.rawValue &+ 1
            t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(acks[port]!) win 65535", fromPort: port))
        }
        #expect(t.takeSegments().isEmpty)
        #expect(t.counters.listenOverflows == 1)
        #expect(t.stack.halfOpenCount == 1)
        #expect(t.stack.accept(listener) != nil)
        #expect(t.stack.accept(listener) == nil)
        t.advance(by: .seconds(1))
        let retransmitted = t.takeSegments()
        #expect(retransmitted.count == 1 && retransmitted.first?.destinationPort == 7001)
        t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(acks[7001]!) win 65535", fromPort: 7001))
        #expect(t.stack.accept(listener) != nil)
        #expect(t.stack.halfOpenCount == 0)
    }
}
