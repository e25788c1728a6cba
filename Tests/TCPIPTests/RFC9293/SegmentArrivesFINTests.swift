import NIOCore
import TCPIP
import Testing

/// RFC 9293 §3.10.7.4, eighth (check the FIN bit) in every state, simultaneous close, and the
/// TIME-WAIT timeout of §3.10.8.
@Suite struct SegmentArrivesFINTests {
    /// ESTABLISHED: "Enter the CLOSE-WAIT state", acknowledge the FIN at once, and the application
    /// reads to the end of the stream.
    @Test func finInEstablished() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535")
        try t.inject("+0 < F. 101:101(0) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 102")
        #expect(t.state == .closeWait)
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 100)))
        #expect(try t.app.read() == .endOfStream)
    }

    /// CLOSE-WAIT: a retransmitted FIN is acknowledged again; text after the FIN is ignored.
    /// The ACK of a FIN that moves us to CLOSE-WAIT waits for the end of the batch
    /// (`batchesAcknowledgments`): an application that closes before then sends one FIN carrying
    /// it, and the close takes three segments; one that does not gets the ACK at the same instant.
    @Test func finAckRidesOnTheApplicationsFIN() throws {
        var t = try TCPTester(.established)
        t.stack.receive(try t.datagram("+0 < F. 1:1(0) ack 1 win 65535"), now: t.now)
        #expect(t.state == .closeWait)
        try t.app.close()
        try t.expect("+0 > F. 1:1(0) ack 2")
        try t.expectNothing()
        try t.inject("+.01 < . 2:2(0) ack 2 win 65535")
        #expect(t.state == .closed)

        var u = try TCPTester(.established)
        try u.inject("+0 < F. 1:1(0) ack 1 win 65535")
        try u.expect("+0 > . 1:1(0) ack 2")
        try u.app.close()
        try u.expect("+0 > F. 1:1(0) ack 2")
    }

    @Test func finAndTextInCloseWait() throws {
        var t = try TCPTester(.closeWait)
        try t.inject("+.2 < F. 1:1(0) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2")
        try t.inject("+0 < P. 2:102(100) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2")
        try t.expectNothing()
        #expect(t.state == .closeWait)
        #expect(try t.app.read() == .endOfStream)
    }

    /// FIN-WAIT-1: our FIN acknowledged → FIN-WAIT-2.
    @Test func ackOfFinInFinWait1() throws {
        var t = try TCPTester(.finWait1)
        try t.expect("+0 > F. 1:1(0) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 2 win 65535")
        try t.expectNothing()
        #expect(t.state == .finWait2)
    }

    /// FIN-WAIT-1: a FIN that also acknowledges ours → TIME-WAIT directly.
    @Test func finAndAckInFinWait1() throws {
        var t = try TCPTester(.finWait1)
        try t.expect("+0 > F. 1:1(0) ack 1")
        try t.inject("+.01 < F. 1:1(0) ack 2 win 65535")
        try t.expect("+0 > . 2:2(0) ack 2")
        #expect(t.state.rfcName == "TIME-WAIT")
    }

    /// FIN-WAIT-2: text is still accepted (half-close), then the FIN → TIME-WAIT.
    @Test func dataThenFinInFinWait2() throws {
        var t = try TCPTester(.finWait2)
        try t.inject("+0 < P. 1:1001(1000) ack 2 win 65535")
        try t.expect("+.04 > . 2:2(0) ack 1001")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 1000)))
        try t.inject("+1 < F. 1001:1001(0) ack 2 win 65535")
        try t.expect("+0 > . 2:2(0) ack 1002")
        #expect(t.state.rfcName == "TIME-WAIT")
    }

    /// Simultaneous close (RFC 9293 Figure 13): FIN-WAIT-1, the peer's FIN crosses ours → CLOSING;
    /// the ACK of our FIN → TIME-WAIT.
    @Test func simultaneousClose() throws {
        var t = try TCPTester(.finWait1)
        try t.expect("+0 > F. 1:1(0) ack 1")
        try t.inject("+0 < F. 1:1(0) ack 1 win 65535")
        try t.expect("+0 > . 2:2(0) ack 2")
        #expect(t.state == .closing)
        try t.inject("+.01 < . 2:2(0) ack 2 win 65535")
        try t.expectNothing()
        #expect(t.state.rfcName == "TIME-WAIT")
    }

    /// CLOSING: our FIN is retransmitted until acknowledged.
    @Test func finRetransmittedInClosing() throws {
        var t = try TCPTester(.closing, peer: .init(repeatsSYN: true))
        try t.expect("+1 > F. 1:1(0) ack 2")
        try t.inject("+0 < . 2:2(0) ack 2 win 65535")
        try t.expectNothing()
        #expect(t.state.rfcName == "TIME-WAIT")
    }

    /// LAST-ACK: the ACK of our FIN → CLOSED.
    @Test func ackOfFinInLastAck() throws {
        var t = try TCPTester(.lastAck)
        try t.expect("+0 > F. 1:1(0) ack 2")
        try t.inject("+.01 < . 2:2(0) ack 2 win 65535")
        try t.expectNothing()
        #expect(t.state == .closed)
    }

    /// TIME-WAIT lasts 2·MSL (RFC 9293 §3.10.8), then the connection is gone and a new segment
    /// finds a closed port.
    @Test func timeWaitLastsTwiceMSL() throws {
        var t = try TCPTester(.timeWait)
        try t.expectNothing(for: .seconds(59))
        #expect(t.state.rfcName == "TIME-WAIT")
        try t.expectNothing(for: .seconds(1))
        #expect(t.state == .closed)
        #expect(t.stack.connectionCount == 0)
        try t.inject("+0 < . 2:2(0) ack 2 win 65535")
        try t.expect("+0 > R 2:2(0)")
    }

    /// TIME-WAIT: "The only thing that can arrive in this state is a retransmission of the remote
    /// FIN. Acknowledge it, and restart the 2 MSL timeout."
    @Test func retransmittedFinRestartsTimeWait() throws {
        var t = try TCPTester(.timeWait)
        try t.inject("+30 < F. 1:1(0) ack 2 win 65535")
        try t.expect("+0 > . 2:2(0) ack 2")
        try t.expectNothing(for: .seconds(59))
        #expect(t.state.rfcName == "TIME-WAIT")
        try t.expectNothing(for: .seconds(1))
        #expect(t.state == .closed)
    }
}
