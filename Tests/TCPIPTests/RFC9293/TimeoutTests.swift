import NIOCore
import TCPIP
import Testing

/// RFC 9293 §3.10.8 and RFC 6298: the retransmission timer, its backoff and Karn's rule, the
/// retry limit (§3.8.3 R2).
@Suite struct TimeoutTests {
    /// RFC 6298 §2.1: RTO is 1 s before any measurement; (5.5) it doubles on every expiry; and
    /// by Karn's rule (§3) the ACK of a retransmitted segment gives no sample, so the backed-off
    /// RTO stays until a fresh segment is measured (§5, "collapsing" RTO after a new measurement).
    @Test func retransmissionBackoffAndKarn() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try t.app.send(1000)
        try t.expect("+0 > P. 1:1001(1000) ack 1")
        try t.expect("+1 > P. 1:1001(1000) ack 1")
        try t.expect("+2 > P. 1:1001(1000) ack 1")
        try t.expect("+4 > P. 1:1001(1000) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1001 win 65535")
        #expect(t.status?.smoothedRTT == nil)
        #expect(t.status?.retransmissionTimeout == .seconds(8))
        try t.app.send(1000)
        try t.expect("+0 > P. 1001:2001(1000) ack 1")
        try t.expect("+8 > P. 1001:2001(1000) ack 1")
        // This ACK is for a retransmission too: still no sample.
        try t.inject("+.1 < . 1:1(0) ack 2001 win 65535")
        try t.app.send(1000)
        try t.expect("+0 > P. 2001:3001(1000) ack 1")
        // A segment sent once and acknowledged is measured: 100 ms, RTO = SRTT + 4·RTTVAR = 300 ms.
        try t.inject("+.1 < . 1:1(0) ack 3001 win 65535")
        #expect(t.status?.smoothedRTT == .milliseconds(100))
        #expect(t.status?.retransmissionTimeout == .milliseconds(300))
        #expect(t.counters.retransmissionTimeouts == 4)
    }

    /// RFC 6298 §2.2: the first measurement sets SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR.
    @Test func firstMeasurementSetsTheTimer() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try t.app.send(1000)
        try t.expect("+0 > P. 1:1001(1000) ack 1")
        try t.inject("+.05 < . 1:1(0) ack 1001 win 65535")
        #expect(t.status?.retransmissionTimeout == .milliseconds(200))   // 50 + 4·25 = 150, floored at 200 ms
        try t.app.send(1000)
        try t.expect("+0 > P. 1001:2001(1000) ack 1")
        try t.expect("+.2 > P. 1001:2001(1000) ack 1")
    }

    /// RFC 6298 §3: on a passive open without timestamps the SYN-ACK is timed; the ACK that
    /// completes the handshake is the first sample (§2 (2.2)): 100 ms, RTO = 100 + 4·50 = 300 ms.
    @Test func handshakeACKIsTheFirstSample() throws {
        var t = try TCPTester(.synReceived)
        try t.inject("+.1 < . 1:1(0) ack 1 win 65535")
        #expect(t.status?.smoothedRTT == .milliseconds(100))
        #expect(t.status?.retransmissionTimeout == .milliseconds(300))
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        try t.expect("+.3 > P. 1:101(100) ack 1")
    }

    /// Karn (RFC 6298 §3): a SYN-ACK sent twice — on a timeout, or for the peer's repeated SYN —
    /// makes the handshake's ACK ambiguous: no sample, and the RTO stays as it was.
    @Test func retransmittedSYNACKGivesNoSample() throws {
        var t = try TCPTester(.synReceived)
        try t.expect("+1 > S. 0:0(0) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1 win 65535")
        #expect(t.status?.smoothedRTT == nil)
        var repeated = try TCPTester(.synReceived, peer: .init(repeatsSYN: true))
        try repeated.inject("+.1 < . 1:1(0) ack 1 win 65535")
        #expect(repeated.status?.smoothedRTT == nil)
        #expect(repeated.status?.retransmissionTimeout == .seconds(1))
    }

    /// RFC 9293 §3.8.3 R2: after the retry limit the connection is aborted with an RST and the
    /// user hears "connection timed out".
    @Test func retryLimitClosesWithTimeout() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true)) { $0.tcp.maximumRetransmissions = 3 }
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        try t.expect("+1 > P. 1:101(100) ack 1")
        try t.expect("+2 > P. 1:101(100) ack 1")
        try t.expect("+4 > P. 1:101(100) ack 1")
        try t.expect("+8 > R 101:101(0)")
        try t.expectNothing(for: .seconds(60))
        #expect(t.state == .closed)
        #expect(t.status?.error == .timedOut)
        #expect(throws: TCPError.timedOut) { try t.app.read() }
        #expect(t.counters.connectionsTimedOut == 1)
    }

    /// RFC 9293 §3.8.3 R2 for a SYN, per connection (TCP_SYNCNT): after that many retransmissions
    /// the OPEN fails with ETIMEDOUT at the next timeout, sending nothing (the peer holds no state).
    @Test func synRetransmissionLimitPerConnection() throws {
        var t = try TCPTester(.synSent)
        let id = try #require(t.connection)
        #expect(throws: TCPError.invalidArgument) { try t.stack.setSYNRetransmissions(id, 0, now: t.now) }
        try t.stack.setSYNRetransmissions(id, 2, now: t.now)
        try t.expect("+0 > S 0:0(0)")
        try t.expect("+1 > S 0:0(0)")
        try t.expect("+2 > S 0:0(0)")
        try t.expectNothing(for: .seconds(60))
        #expect(t.state == .closed)
        #expect(t.status?.error == .timedOut)
        #expect(t.counters.failedConnectionAttempts == 1)
    }

    /// TCP_KEEPINIT: the OPEN may take this long, whatever the SYN count allows; then ETIMEDOUT.
    @Test func connectionTimeoutEndsTheOpen() throws {
        var t = try TCPTester(.synSent) { $0.tcp.connectionTimeout = .seconds(10) }
        try t.expect("+0 > S 0:0(0)")
        try t.expect("+1 > S 0:0(0)")
        try t.expect("+2 > S 0:0(0)")
        try t.expect("+4 > S 0:0(0)")
        t.advance(by: .milliseconds(2990))
        #expect(t.state == .synSent)
        try t.expectNothing(for: .seconds(60))   // 10 s from the first SYN; the next was due at 15 s
        #expect(t.state == .closed)
        #expect(t.status?.error == .timedOut)
        #expect(t.counters.connectionsTimedOut == 1)
    }

    /// Once established, the connection timeout is spent: it ends nothing.
    @Test func connectionTimeoutDoesNotOutliveTheHandshake() throws {
        var t = try TCPTester(.establishedActive) { $0.tcp.connectionTimeout = .seconds(1) }
        try t.expectNothing(for: .seconds(5))
        #expect(t.state == .established)
        let id = try #require(t.connection)
        t.stack.setConnectionTimeout(id, .milliseconds(1), now: t.now)
        try t.expectNothing(for: .seconds(5))
        #expect(t.state == .established)
    }

    /// Our FIN is retransmitted like data until acknowledged.
    @Test func finIsRetransmitted() throws {
        var t = try TCPTester(.finWait1, peer: .init(repeatsSYN: true))
        try t.expect("+0 > F. 1:1(0) ack 1")
        try t.expect("+1 > F. 1:1(0) ack 1")
        try t.expect("+2 > F. 1:1(0) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 2 win 65535")
        try t.expectNothing(for: .seconds(10))
        #expect(t.state == .finWait2)
    }

    /// The delayed-ACK timer (RFC 9293 §3.8.6.3): 40 ms after a lone segment, and never when an
    /// ACK went out in between.
    @Test func delayedAckTimer() throws {
        var t = try TCPTester(.established) { $0.tcp.delayedAckTimeout = .milliseconds(100) }
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535")
        try t.expect("+.1 > . 1:1(0) ack 101")
        try t.inject("+.5 < P. 101:201(100) ack 1 win 65535")
        try t.app.send(10)   // the data carries the ACK, and the timer has nothing left to do
        try t.expect("+0 > P. 1:11(10) ack 201")
        try t.inject("+.05 < . 201:201(0) ack 11 win 65535")
        try t.expectNothing(for: .seconds(1))
    }

    /// RFC 6298 §5 (5.3): an ACK of new data restarts the timer, so the remaining segment times
    /// out one RTO after that ACK, not after it was sent.
    @Test func ackRestartsTheTimer() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try t.app.send(2920)
        try t.expect("+0 > . 1:1461(1460) ack 1")
        try t.expect("+0 > P. 1461:2921(1460) ack 1")
        // 500 ms sample: SRTT 500, RTTVAR 250, RTO 1.5 s from now.
        try t.inject("+.5 < . 1:1(0) ack 1461 win 65535")
        try t.expect("+1.5 > P. 1461:2921(1460) ack 1")
    }

    /// RFC 6298 §2 (2.5): the backed-off RTO stops at the maximum (60 s).
    @Test func backoffStopsAtTheMaximum() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        for interval in [1, 2, 4, 8, 16, 32, 60, 60] {
            try t.expect("+\(interval) > P. 1:101(100) ack 1")
        }
        #expect(t.status?.retransmissionTimeout == .seconds(60))
    }

    /// After a timeout, everything after SND.UNA is sent again as the ACKs reopen cwnd (go-back-N
    /// in slow start, RFC 5681 §3.1), each counted as a retransmission.
    @Test func goBackNAfterTimeout() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try t.app.send(5840)
        for segment in 0..<4 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > \(segment == 3 ? "P." : ".") \(start):\(start + 1460)(1460) ack 1")
        }
        try t.expect("+1 > . 1:1461(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        try t.expect("+0 > . 2921:4381(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 4381 win 65535")
        try t.expect("+0 > P. 4381:5841(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 5841 win 65535")
        try t.expectNothing(for: .seconds(5))
        #expect(t.status?.retransmits == 4)
    }

    /// The retry limit applies in FIN-WAIT-1 too: an unanswered FIN ends in an RST and CLOSED.
    @Test func unansweredFinTimesOut() throws {
        var t = try TCPTester(.finWait1, peer: .init(repeatsSYN: true)) { $0.tcp.maximumRetransmissions = 2 }
        try t.expect("+0 > F. 1:1(0) ack 1")
        try t.expect("+1 > F. 1:1(0) ack 1")
        try t.expect("+2 > F. 1:1(0) ack 1")
        try t.expect("+4 > R 2:2(0)")
        #expect(t.state == .closed)
    }
}
