import NIOCore
import TCPIP
import Testing

/// The two receive-window knobs that model FreeBSD: its receiver SWS avoidance (RFC 9293
/// §3.8.6.2.2, MUST-39, by 4.4BSD's algorithm) and its RCV.WND for acceptability (RFC 9293
/// §3.10.7.4). The defaults are the RFC's suggested algorithm and the window announced; the other
/// flow-control tests pin those.
@Suite struct ReceiveWindowPolicyTests {
    /// 8000 octets of buffer; 1000 arrive, are read, 500 more arrive. The read frees less than
    /// min(RCV.BUFF/2, MSS), so no window update goes by either rule. Then the right-edge rule keeps
    /// RCV.NXT+RCV.WND where it was (8001: window 6500); 4.4BSD's offers the free space (7500).
    @Test(arguments: [(ReceiverSWSAvoidance.rightEdge, 6500), (.smallWindows, 7500)])
    func windowAfterASmallRead(policy: ReceiverSWSAvoidance, window: Int) throws {
        var t = try TCPTester(.established) {
            $0.tcp.receiveBufferSize = 8000
            $0.tcp.receiverSWSAvoidance = policy
        }
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 1001 win 7000")
        #expect(try t.app.read(upTo: 1000) == .data(TCPTester.payload(from: 1, count: 1000)))
        try t.expectNothing()
        try t.inject("+.1 < . 1001:1501(500) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 1501 win \(window)")
    }

    /// 4.4BSD's rule offers no window below both RCV.BUFF/4 and the MSS: 200 octets read from a
    /// full 2000-octet buffer leave the zero window closed (200 < min(500, 1460)); 700 are offered
    /// on the next segment we send — a pure window update still waits for min(RCV.BUFF/2, MSS).
    @Test func smallWindowsAreNotOffered() throws {
        var t = try TCPTester(.established) {
            $0.tcp.receiveBufferSize = 2000
            $0.tcp.receiverSWSAvoidance = .smallWindows
        }
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.inject("+0 < . 1001:2001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 0")
        #expect(try t.app.read(upTo: 200) == .data(TCPTester.payload(from: 1, count: 200)))
        try t.expectNothing()
        // A probe is answered with the zero window still: 200 octets are not offered.
        try t.inject("+.1 < . 2001:2002(1) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 0")
        #expect(try t.app.read(upTo: 500) == .data(TCPTester.payload(from: 201, count: 500)))
        try t.expectNothing()
        try t.inject("+.1 < . 2001:2002(1) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 700")
    }

    /// Without window scaling a 256 KiB buffer announces 65535. By default that is RCV.WND: an RST
    /// at RCV.NXT+66000 is outside it and dropped, and so is text there. Taking the buffer's free
    /// space as FreeBSD does, the RST is in the window (a challenge ACK, RFC 5961 §3.2) and the
    /// text is held out of order.
    @Test(arguments: [ReceiveWindowForAcceptance.announced, .bufferSpace])
    func acceptanceBeyondTheAnnouncedWindow(policy: ReceiveWindowForAcceptance) throws {
        var t = try TCPTester(.established) { $0.tcp.receiveWindowForAcceptance = policy }
        try t.inject("+0 < R 66001:66001(0) win 0")
        if policy == .announced {
            try t.expectNothing()
            #expect(t.counters.droppedResetOutOfWindow == 1)
        } else {
            try t.expect("+0 > . 1:1(0) ack 1 win 65535")
            #expect(t.counters.challengeAcksSent == 1)
        }
        #expect(t.state == .established)
        try t.inject("+.1 < . 70001:71001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1 win 65535")
        #expect(t.counters.droppedOutOfWindow == (policy == .announced ? 1 : 0))
    }
}
