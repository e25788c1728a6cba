import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// SYN cookies (RFC 4987 §3.6): a SYN answered with no state kept, the final ACK that brings the
/// state back, and the ACKs that must not.
@Suite struct SYNCookieTests {
    /// `always`: no half-open entry at all. Without timestamps there is nowhere to keep window scale
    /// and SACK-permitted, so the cookie SYN-ACK offers only the MSS (as Linux).
    @Test func alwaysAnswersWithACookieAndTheAckEstablishes() throws {
        var t = try TCPTester(.listen) { $0.tcp.synCookies = .always }
        try t.run("""
            +0 < S 0:0(0) win 65535 <mss 1400,sackOK,nop,wscale 7>
            +0 > S. 0:0(0) ack 1 win 65535 <mss 1460>
            """)
        #expect(t.stack.halfOpenCount == 0)
        #expect(t.counters.synCookiesSent == 1)
        try t.inject("+.01 < . 1:1(0) ack 1 win 65535")
        try t.expectNothing()
        #expect(t.connection != nil)
        #expect(t.state == .established)
        #expect(t.counters.synCookiesValidated == 1)
        #expect(t.counters.passiveOpens == 1)
        // The peer's 1400 rounds down to the MSS table's 1300.
        #expect(t.status?.maximumSegmentSize == 1300)
        #expect(t.status?.sendWindowScale == 0 && t.status?.sack == false)
        // And it carries data like any other connection.
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 101")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 100)))
    }

    /// With timestamps, the cookie connection keeps window scale and SACK (carried in the low bits
    /// of our TSval and echoed back), as Linux's and unlike gVisor's.
    @Test func cookieConnectionKeepsWindowScaleAndSACKWithTimestamps() throws {
        var t = try TCPTester(.listen) { $0.tcp.synCookies = .always }
        try t.run("""
            +0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 700 ecr 0,nop,wscale 7>
            +0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val * ecr 700,nop,wscale 3>
            +.01 < . 1:1(0) ack 1 win 512 <nop,nop,TS val 710 ecr *>
            """)
        #expect(t.state == .established)
        let status = try #require(t.status)
        #expect(status.sendWindowScale == 7)
        #expect(status.receiveWindowScale == 3)
        #expect(status.sendWindow == 512 << 7)
        #expect(status.timestamps && status.sack)
        #expect(status.maximumSegmentSize == 1460 - 12)
        // SACK at work: out-of-order data is reported in a SACK block (and, being out of order,
        // does not update TS.Recent: RFC 7323 §4.3).
        try t.run("""
            +0 < P. 1001:2001(1000) ack 1 win 512 <nop,nop,TS val 720 ecr *>
            +0 > . 1:1(0) ack 1 <nop,nop,TS val * ecr 710,nop,nop,sack 1001:2001>
            """)
    }

    /// The TSval of a cookie SYN-ACK never runs ahead of the connection's clock: the ACK that later
    /// segments carry is never older than the SYN-ACK's (RFC 7323 §5.4 monotonicity).
    @Test func cookieTimestampsStayMonotonic() throws {
        var t = try TCPTester(.listen, peer: .init(timestampValue: 700)) { $0.tcp.synCookies = .always }
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 700 ecr 0,nop,wscale 7>")
        let synAck = try #require(t.takeSegments().first?.options.timestamps?.value)
        try t.inject("+.5 < . 1:1(0) ack 1 win 512 <nop,nop,TS val 710 ecr \(synAck)>")
        try t.app.send(10)
        let data = try #require(t.takeSegments().first?.options.timestamps?.value)
        #expect(Int32(bitPattern: data &- synAck) > 0)
    }

    /// Default mode: cookies only once the SYN queue is full; the half-open entry before it and
    /// the cookie after it both complete.
    @Test func overflowModeSendsCookiesOnlyWhenTheSynQueueIsFull() throws {
        var t = try TCPTester(.closed) { $0.tcp.synQueueLimit = 1 }
        t.listener = try t.stack.listen(on: TCPTester.listenPort, backlog: 1)
        t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: 7000))
        let first = try #require(t.takeSegments().first)
        #expect(t.stack.halfOpenCount == 1)
        #expect(t.counters.synCookiesSent == 0)
        try t.run("""
            +0 < S 0:0(0) win 65535 <mss 1460>
            +0 > S. 0:0(0) ack 1 <mss 1460>
            """)
        #expect(t.counters.synCookiesSent == 1)
        #expect(t.stack.halfOpenCount == 1)
        try t.inject("+.01 < . 1:1(0) ack 1 win 65535")
        #expect(t.state == .established)
        #expect(t.counters.synCookiesValidated == 1)
        // The half-open one still completes from its entry once the accept queue has room. (Its
        // ACK number is written relative to the tester's ISS, learnt from the cookie.)
        let ack = first.sequenceNumber.rawValue &- (t.iss?.rawValue ?? 0) &+ 1
        t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(ack) win 65535", fromPort: 7000))
        #expect(t.stack.halfOpenCount == 0)
        #expect(t.counters.synCookiesValidated == 1)
    }

    /// With cookies off a full SYN queue drops the SYN: the flood's win.
    @Test func offModeDropsSynsWhenTheQueueIsFull() throws {
        var t = try TCPTester(.closed) {
            $0.tcp.synQueueLimit = 1
            $0.tcp.synCookies = .off
        }
        t.listener = try t.stack.listen(on: TCPTester.listenPort, backlog: 1)
        t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: 7000))
        _ = t.takeSegments()
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        try t.expectNothing()
        #expect(t.counters.synQueueDrops == 1)
        #expect(t.counters.synCookiesSent == 0)
    }

    // MARK: Forged and stale cookies

    /// A cookie with a wrong MAC is an ACK for no connection: RST, and counted.
    @Test func forgedCookieIsRejected() throws {
        var t = try TCPTester(.listen) { $0.tcp.synCookies = .always }
        try t.run("""
            +0 < S 0:0(0) win 65535 <mss 1460>
            +0 > S. 0:0(0) ack 1 <mss 1460>
            +.01 < . 1:1(0) ack 2 win 65535
            +0 > R 2:2(0)
            """)
        #expect(t.counters.synCookiesFailed == 1)
        #expect(t.connection == nil)
        // A different peer ISN (SEG.SEQ - 1) than the SYN's fails the MAC too.
        try t.run("""
            +0 < . 2:2(0) ack 1 win 65535
            +0 > R 1:1(0)
            """)
        #expect(t.counters.synCookiesFailed == 2)
        // The genuine ACK still works.
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        #expect(t.state == .established)
    }

    /// The MSS index sits in bits 28–29 of the cookie, under the MAC: changing it fails.
    @Test func cookieWithAnotherMSSIndexIsRejected() throws {
        var t = try TCPTester(.listen) { $0.tcp.synCookies = .always }
        try t.run("""
            +0 < S 0:0(0) win 65535 <mss 536>
            +0 > S. 0:0(0) ack 1 <mss 1460>
            """)
        for index in 1...3 as ClosedRange<UInt32> {
            let ack = 1 &+ (index << 28)
            try t.run("""
                +0 < . 1:1(0) ack \(ack) win 65535
                +0 > R \(ack):\(ack)(0)
                """)
        }
        #expect(t.counters.synCookiesFailed == 3)
        #expect(t.connection == nil)
    }

    /// Cookies of the current tick (64 s) and the one before are valid; older ones are not.
    @Test func cookieOfThePreviousTickIsValid() throws {
        var t = try TCPTester(.listen) { $0.tcp.synCookies = .always }
        try t.run("""
            +63 < S 0:0(0) win 65535 <mss 1460>
            +0 > S. 0:0(0) ack 1 <mss 1460>
            +2 < . 1:1(0) ack 1 win 65535
            """)
        #expect(t.state == .established)
    }

    @Test func staleCookieIsRejected() throws {
        var t = try TCPTester(.listen) { $0.tcp.synCookies = .always }
        try t.run("""
            +1 < S 0:0(0) win 65535 <mss 1460>
            +0 > S. 0:0(0) ack 1 <mss 1460>
            +130 < . 1:1(0) ack 1 win 65535
            +0 > R 1:1(0)
            """)
        #expect(t.counters.synCookiesFailed == 1)
        #expect(t.connection == nil)
    }

    /// In the default mode an ACK is checked as a cookie only while one sent could still be valid:
    /// without a recent overflow every stray ACK is simply reset, and no MAC is there to guess.
    @Test func noCookieChecksWithoutARecentOverflow() throws {
        var t = try TCPTester(.listen)
        try t.run("""
            +0 < . 1:1(0) ack 100 win 65535
            +0 > R 100:100(0)
            """)
        #expect(t.counters.synCookiesFailed == 0)
    }

    /// A valid cookie meeting a full accept queue is dropped (the peer's data brings it again), or
    /// reset when the listener is configured so.
    @Test func validCookieWithFullAcceptQueue() throws {
        for overflow in [AcceptQueueOverflow.dropAck, .reset] {
            var t = try TCPTester(.closed) {
                $0.tcp.synCookies = .always
                $0.tcp.acceptQueueOverflow = overflow
            }
            // Not the tester's listener: nothing accepts, so the first connection fills the queue.
            _ = try t.stack.listen(on: TCPTester.listenPort, backlog: 1)
            t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: 7000))
            let ack = try #require(t.takeSegments().first).sequenceNumber.rawValue &+ 1
            t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(ack) win 65535", fromPort: 7000))
            #expect(t.stack.connectionCount == 1)
            try t.run("""
                +0 < S 0:0(0) win 65535 <mss 1460>
                +0 > S. 0:0(0) ack 1 <mss 1460>
                +0 < . 1:1(0) ack 1 win 65535
                """)
            if overflow == .reset { try t.expect("+0 > R 1:1(0)") }
            try t.expectNothing()
            #expect(t.stack.connectionCount == 1)
            #expect(t.counters.listenOverflows == 1)
        }
    }
}
