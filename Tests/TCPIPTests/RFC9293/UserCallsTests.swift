import NIOCore
import TCPIP
import Testing

/// The user calls of RFC 9293 §3.10.1–§3.10.6 as the peer sees them on the wire.
@Suite struct UserCallsTests {
    /// §3.10.4 CLOSE is a half-close: our FIN goes out, but reading goes on until the peer's FIN.
    @Test func halfClose() throws {
        var t = try TCPTester(.established)
        try t.app.close()
        try t.expect("+0 > F. 1:1(0) ack 1")
        #expect(throws: TCPError.connectionClosing) { try t.app.send(10) }
        try t.inject("+.05 < . 1:1(0) ack 2 win 65535")
        #expect(t.state == .finWait2)
        try t.inject("+.05 < P. 1:1001(1000) ack 2 win 65535")
        try t.inject("+0 < P. 1001:2001(1000) ack 2 win 65535")
        try t.expect("+0 > . 2:2(0) ack 2001")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 2000)))
        try t.inject("+.05 < F. 2001:2001(0) ack 2 win 65535")
        try t.expect("+0 > . 2:2(0) ack 2002")
        #expect(try t.app.read() == .endOfStream)
        #expect(t.state.rfcName == "TIME-WAIT")
    }

    /// CLOSE in CLOSE-WAIT sends our FIN and waits in LAST-ACK.
    @Test func closeInCloseWait() throws {
        var t = try TCPTester(.closeWait)
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 2")
        try t.app.close()
        try t.expect("+0 > F. 101:101(0) ack 2")
        #expect(t.state == .lastAck)
        try t.inject("+.01 < . 2:2(0) ack 102 win 65535")
        #expect(t.state == .closed)
    }

    /// CLOSE in SYN-RECEIVED: "If no SENDs have been issued and there is no pending data to send,
    /// then form a FIN segment and send it, and enter FIN-WAIT-1 state."
    @Test func closeInSynReceived() throws {
        var t = try TCPTester(.synReceivedSimultaneous)
        try t.app.close()
        try t.expect("+0 > F. 1:1(0) ack 1")
        #expect(t.state == .finWait1)
        try t.inject("+.01 < . 1:1(0) ack 2 win 65535")
        try t.expectNothing()
        #expect(t.state == .finWait2)
    }

    /// The FIN queues behind data Nagle was holding back and leaves with it at once: after CLOSE
    /// nothing can come to fill the segment (as Linux, which exempts the final FIN from Nagle).
    @Test func finFollowsQueuedData() throws {
        var t = try TCPTester(.established)
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        try t.app.send(100)
        try t.expectNothing()
        try t.app.close()
        try t.expect("+0 > FP. 101:201(100) ack 1")
        try t.inject("+.05 < . 1:1(0) ack 202 win 65535")
        #expect(t.state == .finWait2)
    }

    /// The FIN still waits behind data the peer's window has no room for.
    @Test func finWaitsForTheWindow() throws {
        var t = try TCPTester(.established, peer: .init(window: 1000))
        try t.app.send(1500)
        try t.expect("+0 > . 1:1001(1000) ack 1")
        try t.app.close()
        try t.expectNothing()
        try t.inject("+.05 < . 1:1(0) ack 1001 win 1000")
        try t.expect("+0 > FP. 1001:1501(500) ack 1")
    }

    /// §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST> (with the ACK bit, as Linux and FreeBSD), queued
    /// data discarded, the connection gone.
    @Test func abortSendsReset() throws {
        var t = try TCPTester(.established)
        try t.app.send(1000)
        try t.expect("+0 > P. 1:1001(1000) ack 1")
        try t.app.abort()
        try t.expect("+0 > R. 1001:1001(0) ack 1")
        try t.expectNothing(for: .seconds(5))
        #expect(t.state == .closed)
        try t.inject("+0 < . 1:1(0) ack 1001 win 65535")
        try t.expect("+0 > R 1001:1001(0)")
    }

    /// ABORT in LAST-ACK (and CLOSING, TIME-WAIT): "respond with ok and delete the TCB" — no RST.
    @Test func abortInLastAckSendsNothing() throws {
        var t = try TCPTester(.lastAck)
        try t.expect("+0 > F. 1:1(0) ack 2")
        try t.app.abort()
        try t.expectNothing(for: .seconds(5))
        #expect(t.state == .closed)
    }

    /// ABORT in SYN-SENT: nothing to reset on the wire.
    @Test func abortInSynSent() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        try t.app.abort()
        try t.expectNothing(for: .seconds(5))
        #expect(t.state == .closed)
    }

    /// §3.10.2 SEND in SYN-SENT: "queue the data for transmission after entering ESTABLISHED";
    /// §3.10.7.3: the handshake's ACK — "Data or controls that were queued for transmission MAY be
    /// included" — is the data's segment, with no bare ACK before it.
    @Test func sendInSynSentWaitsForTheHandshake() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        #expect(try t.app.send(100) == 100)
        try t.expectNothing()
        try t.inject("+.1 < S. 0:0(0) ack 1 win 65535 <mss 1460>")
        try t.expect("+0 > P. 1:101(100) ack 1")
        try t.expectNothing()
    }

    /// SEND takes only what fits in the send buffer.
    @Test func sendReturnsWhatTheBufferTook() throws {
        var t = try TCPTester(.established) { $0.tcp.sendBufferSize = 3000 }
        #expect(try t.app.send(5000) == 3000)
        #expect(try t.app.send(10) == 0)
        try t.expect("+0 > . 1:1461(1460) ack 1")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        // The 80-octet tail waits for every outstanding octet to be acknowledged (Nagle, RFC 9293 §3.7.4).
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        try t.expectNothing()
        #expect(try t.app.send(5000) == 1460)
        // Now a full segment's worth is queued: it goes, and the new tail waits in turn.
        try t.expect("+0 > . 2921:4381(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 4381 win 65535")
        try t.expect("+0 > P. 4381:4461(80) ack 1")
    }

    /// §3.10.6 STATUS reports what the handshake negotiated and the windows.
    @Test func statusAfterHandshake() throws {
        let t = try TCPTester(.established, peer: .init(maximumSegmentSize: 1000, window: 30000))
        let status = try #require(t.status)
        #expect(status.state == .established)
        #expect(status.maximumSegmentSize == 1000)
        #expect(status.receiveMSS == 1460)
        #expect(status.sendWindow == 30000)
        #expect(status.sendWindowScale == 0 && status.receiveWindowScale == 0)
        #expect(!status.timestamps && !status.sack)
        #expect(status.sendNext == status.sendUnacknowledged)
        #expect(status.receiveNext == 0xFFFF_FF01)
    }

    /// IPv6 end to end with real checksums (no offload): the pseudo-header is right both ways,
    /// and the MSS leaves room for the 40-octet header.
    @Test func transferOverIPv6WithChecksums() throws {
        var t = try TCPTester(.establishedActive, peer: .init(maximumSegmentSize: 1440, ipv6: true)) {
            $0.checksumOffload = false
        }
        try t.app.send(3000)
        try t.expect("+0 > . 1:1441(1440) ack 1")
        try t.expect("+0 > . 1441:2881(1440) ack 1")
        try t.inject("+.05 < P. 1:501(500) ack 2881 win 65535")
        try t.expect("+0 > P. 2881:3001(120) ack 501")   // Nagle's tail goes, carrying the ACK
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 500)))
        #expect(t.counters.badChecksums == 0)
    }

    /// Closing a listener (§3.10.4 CLOSE in LISTEN) takes its half-open connections with it: no
    /// more SYN-ACKs, and the late final ACK finds a closed port.
    @Test func closingAListenerDropsItsHalfOpenConnections() throws {
        var t = try TCPTester(.synReceived)
        t.stack.closeListener(try #require(t.listener), now: .zero)
        t.listener = nil
        try t.expectNothing(for: .seconds(10))
        #expect(t.stack.halfOpenCount == 0)
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        try t.expect("+0 > R 1:1(0)")
    }
}
