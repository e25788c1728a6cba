import NIOCore
import TCPIP
import Testing

/// RFC 9293 §3.8.6 flow control: the peer's zero window and the persist timer, receiver and
/// sender silly-window avoidance, Nagle (§3.7.4), window scaling (RFC 7323 §2) and MSS (§3.7.1).
@Suite struct FlowControlTests {
    /// RFC 9293 §3.8.6.1: with a zero window and data to send, probe with one octet when the
    /// persist timer expires, backing off (RFC 1122 §4.2.2.17); a window update resumes sending.
    @Test func zeroWindowProbesThenWindowUpdate() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try t.inject("+0 < . 1:1(0) ack 1 win 0")
        try t.app.send(1000)
        try t.expectNothing()
        try t.expect("+1 > . 1:2(1) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 1 win 0")
        try t.expect("+1.99 > . 1:2(1) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 1 win 0")
        try t.expect("+3.99 > . 1:2(1) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 1 win 65535")
        try t.expect("+0 > P. 1:1001(1000) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 1001 win 65535")
        try t.expectNothing(for: .seconds(30))
        #expect(t.status?.zeroWindowProbes == 3)
        #expect(t.status?.retransmits == 0)
    }

    /// A probe octet the peer takes is acknowledged like any data; the window it then opens lets
    /// the rest go.
    @Test func acceptedProbe() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try t.inject("+0 < . 1:1(0) ack 1 win 0")
        try t.app.send(100)
        try t.expect("+1 > . 1:2(1) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 2 win 1000")
        try t.expect("+0 > P. 2:101(99) ack 1")
    }

    /// A FIN waiting behind a zero window is probed for as well.
    @Test func finBehindZeroWindow() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < . 1:1(0) ack 1 win 0")
        try t.app.close()
        try t.expect("+0 > F. 1:1(0) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 2 win 0")
        #expect(t.state == .finWait2)
    }

    /// RFC 9293 §3.8.6.2.2 (receiver SWS avoidance, MUST-39): after a zero window, the window is
    /// reopened only once min(RCV.BUFF/2, MSS) has been freed — 1,000 octets of a 2,000 buffer.
    @Test func receiverSillyWindowAvoidance() throws {
        var t = try TCPTester(.established) { $0.tcp.receiveBufferSize = 2000 }
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.inject("+0 < . 1001:2001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 0")
        #expect(try t.app.read(upTo: 400) == .data(TCPTester.payload(from: 1, count: 400)))
        #expect(try t.app.read(upTo: 599) == .data(TCPTester.payload(from: 401, count: 599)))
        try t.expectNothing()
        #expect(try t.app.read(upTo: 1) == .data(TCPTester.payload(from: 1000, count: 1)))
        try t.expect("+0 > . 1:1(0) ack 2001 win 1000")
        #expect(t.counters.zeroWindowAdvertisements == 1)
        // Small reads that don't move the edge far enough stay quiet.
        #expect(try t.app.read(upTo: 500) == .data(TCPTester.payload(from: 1001, count: 500)))
        try t.expectNothing()
    }

    /// RFC 9293 §3.8.6.2.1 (sender SWS avoidance): with the usable window under both an MSS and
    /// half the largest window the peer offered, wait rather than send a sliver.
    @Test func senderSillyWindowAvoidance() throws {
        var t = try TCPTester(.established, peer: .init(window: 4000))
        try t.app.send(5000)
        try t.expect("+0 > . 1:1461(1460) ack 1")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        // Usable: 1080, under an MSS and under 4000 / 2.
        try t.expectNothing()
        try t.inject("+.1 < . 1:1(0) ack 1461 win 1500")   // usable: 40
        try t.expectNothing()
        try t.inject("+0 < . 1:1(0) ack 2921 win 4000")
        try t.expect("+0 > . 2921:4381(1460) ack 1")
        try t.expectNothing()                               // 620 left: Nagle waits for the ACK
        try t.inject("+.1 < . 1:1(0) ack 4381 win 4000")
        try t.expect("+0 > P. 4381:5001(620) ack 1")
    }

    /// RFC 9293 §3.8.6.2.1: with nothing outstanding no ACK will come to clock the data out, so a
    /// window too small for the rule is filled when the override timeout (0.1–1 s; the persist
    /// interval, max(RTO, 200 ms)) expires — unless a window update comes first.
    @Test func overrideTimerSendsIntoASmallWindow() throws {
        var t = try TCPTester(.established, peer: .init(window: 4000, repeatsSYN: true))
        try t.app.send(2920)
        try t.expect("+0 > . 1:1461(1460) ack 1")
        try t.expect("+0 > P. 1461:2921(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 2921 win 1000")    // 1000 < 1460 and < 4000 / 2
        try t.app.send(3000)
        try t.expectNothing(for: .milliseconds(250))
        try t.expect("+.05 > . 2921:3921(1000) ack 1")      // RTO 300 ms after one 100 ms sample
        #expect(t.counters.sillyWindowOverrides == 1)
        // The window update beats the timer: full segments go at once.
        try t.inject("+.1 < . 1:1(0) ack 3921 win 500")
        try t.expectNothing(for: .milliseconds(100))
        try t.inject("+0 < . 1:1(0) ack 3921 win 4000")
        try t.expect("+0 > . 3921:5381(1460) ack 1")
        try t.expectNothing()                                // the 540 left: Nagle waits for the ACK
        try t.inject("+.1 < . 1:1(0) ack 5381 win 4000")
        try t.expect("+0 > P. 5381:5921(540) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 5921 win 4000")
        try t.expectNothing()
        #expect(t.counters.sillyWindowOverrides == 1)
        #expect(t.counters.zeroWindowProbesSent == 0)
    }

    /// Nagle (RFC 9293 §3.7.4): a small segment waits while data is outstanding.
    @Test func nagleHoldsSmallSegments() throws {
        var t = try TCPTester(.established)
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        try t.app.send(100)
        try t.app.send(100)
        try t.expectNothing()
        try t.inject("+.1 < . 1:1(0) ack 101 win 65535")
        try t.expect("+0 > P. 101:301(200) ack 1")
    }

    /// TCP_NODELAY turns Nagle off: every write goes at once.
    @Test func noDelaySendsAtOnce() throws {
        var t = try TCPTester(.established)
        try t.app.setNoDelay(true)
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        try t.app.send(100)
        try t.expect("+0 > P. 101:201(100) ack 1")
    }

    /// Turning Nagle off releases what it held.
    @Test func noDelayFlushes() throws {
        var t = try TCPTester(.established)
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        try t.app.send(100)
        try t.expectNothing()
        try t.app.setNoDelay(true)
        try t.expect("+0 > P. 101:201(100) ack 1")
    }

    /// RFC 7323 §2: both SYNs carried wscale, so the peer's window fields are shifted by its 7
    /// and ours by our 3; the SYN-ACK's own window is never scaled (§2.2).
    @Test func windowScalingNegotiatedAndApplied() throws {
        var t = try TCPTester(.listen)
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460,nop,wscale 7>")
        try t.expect("+0 > S. 0:0(0) ack 1 win 65535 <mss 1460,nop,wscale 3>")
        try t.inject("+0 < . 1:1(0) ack 1 win 10")
        #expect(t.status?.sendWindow == 1280)
        #expect(t.status?.sendWindowScale == 7 && t.status?.receiveWindowScale == 3)
        try t.app.send(5000)
        try t.expect("+0 > . 1:1281(1280) ack 1")
        try t.inject("+0 < P. 1:1001(1000) ack 1281 win 20")
        // The window is now 20 << 7 = 2560; ours is 256 KiB less 1,000 unread, shifted by 3: 32643.
        try t.expect("+0 > . 1281:2741(1460) ack 1001 win 32643")
        try t.expectNothing()   // 1100 usable: under an MSS and under half of 2560
    }

    /// Without the peer's wscale neither side scales, even though we would have (RFC 7323 §1.3).
    @Test func noScalingUnlessBothOffer() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < P. 1:1001(1000) ack 1 win 100")
        #expect(t.status?.sendWindow == 100)
        #expect(t.status?.receiveWindowScale == 0)
        // 256 KiB of buffer is far more than the field carries: the window stays at the cap
        // (RFC 9293 §3.8.6.2.2: RCV.BUFF − RCV.USER − RCV.WND is well over an MSS).
        try t.expect("+.04 > . 1:1(0) ack 1001 win 65535")
    }

    /// RFC 9293 §3.8.6.2.2 with a buffer beyond what an unscaled field carries: the octet a FIN
    /// takes does not leave the window one short (FreeBSD's suite checks `win 65535` after the FIN).
    @Test func finDoesNotShrinkACappedWindow() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < F. 1:1(0) ack 1 win 100")
        try t.expect("+0 > . 1:1(0) ack 2 win 65535")
    }

    /// RFC 9293 §3.7.1: segments never exceed the MSS the peer announced.
    @Test func peerMSSIsHonoured() throws {
        var t = try TCPTester(.established, peer: .init(maximumSegmentSize: 536))
        try t.app.send(1200)
        try t.expect("+0 > . 1:537(536) ack 1")
        try t.expect("+0 > . 537:1073(536) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1073 win 65535")
        try t.expect("+0 > P. 1073:1201(128) ack 1")
    }

    /// Without an MSS option the default is 536 over IPv4 (RFC 9293 §3.7.1, MUST-15) and 1220
    /// over IPv6 (RFC 8200 §5's minimum MTU less 60 octets of headers).
    @Test func defaultMSSWithoutTheOption() throws {
        var t = try TCPTester(.established, peer: .init(maximumSegmentSize: nil))
        try t.app.send(600)
        try t.expect("+0 > . 1:537(536) ack 1")
        var v6 = try TCPTester(.established, peer: .init(maximumSegmentSize: nil, ipv6: true))
        try v6.app.send(1300)
        try v6.expect("+0 > . 1:1221(1220) ack 1")
    }

    /// The peer shrinks its window to zero with data in flight (RFC 9293 §3.8.6.2.1 allows it, and
    /// asks senders to cope): the retransmission timer expires, finds no window, and hands over to
    /// the persist timer, which probes with backoff until the window reopens.
    @Test func windowShrunkToZeroWithDataInFlight() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try t.app.send(2920)
        try t.expect("+0 > . 1:1461(1460) ack 1")
        try t.expect("+0 > P. 1461:2921(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1461 win 0")   // RTT 100 ms: RTO 300 ms
        // RTO at +0.3 s (backed off to 600 ms); the persist timer takes over from there.
        try t.expect("+.9 > . 1461:1462(1) ack 1")
        try t.expect("+1.2 > . 1461:1462(1) ack 1")
        try t.expect("+2.4 > . 1461:1462(1) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 1461 win 65535")
        try t.expect("+0 > P. 1461:2921(1460) ack 1")
    }
}
