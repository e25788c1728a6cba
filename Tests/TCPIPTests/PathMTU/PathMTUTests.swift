import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// RFC 1191 / RFC 8201 path MTU discovery and RFC 5927 validation of the ICMP errors that drive it.
@Suite struct PathMTUTests {
    /// RFC 1191 §6.1 and §6.4 (Linux's tcp_simple_retransmit): a validated fragmentation-needed
    /// lowers the MSS at once, and what is in flight and too big goes again, re-cut, without an RTO
    /// and without touching cwnd.
    @Test func fragmentationNeededRecutsWhatIsInFlight() throws {
        var t = try TCPTester(.established)
        t.stack.tracing = true
        try t.app.send(2920)
        try t.expect("+0 > . 1:1461(1460) ack 1")
        try t.expect("+0 > P. 1461:2921(1460) ack 1")
        let cwnd = t.status?.congestionWindow
        t.icmp(.fragmentationNeeded(nextHopMTU: 1280), quoting: 1)
        try t.expect("+0 > . 1:1241(1240) ack 1")
        try t.expect("+0 > . 1241:1461(220) ack 1")
        try t.expect("+0 > . 1461:2701(1240) ack 1")
        try t.expect("+0 > P. 2701:2921(220) ack 1")
        try t.expectNothing()
        #expect(t.status?.maximumSegmentSize == 1240)
        #expect(t.status?.pathMTU == 1280)
        #expect(t.status?.congestionWindow == cwnd)
        #expect(t.counters.pathMTUReductions == 1)
        #expect(t.counters.retransmissionTimeouts == 0)
        #expect(t.stack.drainTrace().contains { $0.description.hasPrefix("RFC 1191 §6.1: PMTU lowered to 1280") })
        // New data is cut for the new MSS too.
        try t.inject("+.1 < . 1:1(0) ack 2921 win 65535")
        try t.app.send(2480)
        try t.expect("+0 > . 2921:4161(1240) ack 1")
        try t.expect("+0 > P. 4161:5401(1240) ack 1")
        #expect(t.stack.pathMTU(to: t.remoteAddress, now: .zero) == 1280)
    }

    /// RFC 5927 §4.1: an error whose quoted sequence number is not in SND.UNA..SND.NXT is a blind
    /// attack (or stale): ignored and counted.
    @Test func blindErrorsAreIgnored() throws {
        var t = try TCPTester(.established)
        try t.app.send(1000)
        try t.expect("+0 > P. 1:1001(1000) ack 1")
        t.icmp(.fragmentationNeeded(nextHopMTU: 576), quoting: 1001)
        t.icmp(.fragmentationNeeded(nextHopMTU: 576), quoting: 0)
        t.icmp(.fragmentationNeeded(nextHopMTU: 576), quoting: 0x8000_0000)
        t.icmp(.hard(.connectionRefused), quoting: 5000)
        t.icmp(.soft(.hostUnreachable), quoting: 0xFFFF_FFFF)
        try t.expectNothing()
        #expect(t.counters.icmpErrorsOutOfWindow == 5)
        #expect(t.status?.maximumSegmentSize == 1460)
        #expect(t.status?.softError == nil)
        #expect(t.state == .established)
        // Another port: no connection.
        var other = t.report(.hard(.connectionRefused), quoting: 1)
        other.remote.port = 5002
        t.stack.icmpErrorArrived(other, now: .zero)
        #expect(t.counters.icmpErrorsNoConnection == 1)
        #expect(t.stack.pathMTUCacheCount == 0)
    }

    /// RFC 8201 §4: a packet-too-big below 1280 does not take the MTU below 1280.
    @Test func packetTooBigNeverBelow1280() throws {
        var t = try TCPTester(.established, peer: .init(maximumSegmentSize: 1440, ipv6: true))
        t.stack.tracing = true
        try t.app.send(1440)
        try t.expect("+0 > P. 1:1441(1440) ack 1")
        t.icmp(.packetTooBig(mtu: 600), quoting: 1)
        try t.expect("+0 > . 1:1221(1220) ack 1")
        try t.expect("+0 > P. 1221:1441(220) ack 1")
        #expect(t.status?.pathMTU == 1280)
        #expect(t.stack.drainTrace().contains { $0.description.hasPrefix("RFC 8201 §4: PMTU lowered to 1280") })
        // Already at the minimum: another changes nothing.
        t.icmp(.packetTooBig(mtu: 1000), quoting: 1)
        try t.expectNothing()
        #expect(t.counters.pathMTUReductions == 1)
    }

    /// RFC 1191 §5 and §7: a router that reports no next-hop MTU gets the next plateau below the
    /// quoted datagram's length; the IPv4 floor is 576 (PathMTUConfiguration.minimumIPv4).
    @Test func plateauWhenTheRouterSaysNothing() throws {
        var t = try TCPTester(.established)
        try t.app.send(1460)
        try t.expect("+0 > P. 1:1461(1460) ack 1")
        t.icmp(.fragmentationNeeded(nextHopMTU: 0), quoting: 1, quotedLength: 1500)
        try t.expect("+0 > . 1:1453(1452) ack 1")
        try t.expect("+0 > P. 1453:1461(8) ack 1")
        #expect(t.status?.pathMTU == 1492)
        t.icmp(.fragmentationNeeded(nextHopMTU: 0), quoting: 1, quotedLength: 1492)
        try t.expect("+0 > . 1:967(966) ack 1")
        try t.expect("+0 > . 967:1453(486) ack 1")
        #expect(t.status?.pathMTU == 1006)
        // 296 would be the next; 576 is as low as we go.
        t.icmp(.fragmentationNeeded(nextHopMTU: 100), quoting: 1)
        try t.expect("+0 > . 1:537(536) ack 1")
        try t.expect("+0 > . 537:967(430) ack 1")
        try t.expectNothing()
        #expect(t.status?.pathMTU == 576)
    }

    /// RFC 1191 §6.1: "MUST NOT increase its estimate of the Path MTU in response to the contents
    /// of a Datagram Too Big message".
    @Test func neverIncreases() throws {
        var t = try TCPTester(.established)
        try t.app.send(1460)
        try t.expect("+0 > P. 1:1461(1460) ack 1")
        t.icmp(.fragmentationNeeded(nextHopMTU: 1000), quoting: 1)
        try t.expect("+0 > . 1:961(960) ack 1")
        try t.expect("+0 > P. 961:1461(500) ack 1")
        t.icmp(.fragmentationNeeded(nextHopMTU: 1400), quoting: 1)
        try t.expectNothing()
        #expect(t.status?.pathMTU == 1000)
        #expect(t.stack.pathMTU(to: t.remoteAddress, now: .zero) == 1000)
    }

    /// RFC 1191 §5: the estimate is kept per destination, so the next connection starts with it;
    /// §6.3: after 10 minutes it is forgotten and the link MTU is tried again.
    @Test func cacheServesNewConnectionsAndAges() throws {
        var t = try TCPTester(.established)
        try t.app.send(1460)
        try t.expect("+0 > P. 1:1461(1460) ack 1")
        t.icmp(.fragmentationNeeded(nextHopMTU: 1200), quoting: 1)
        try t.expect("+0 > . 1:1161(1160) ack 1")
        try t.expect("+0 > P. 1161:1461(300) ack 1")
        let remote = Endpoint(t.remoteAddress, 5001)
        let second = try t.stack.connect(to: Endpoint(remote.address, 80), now: t.now)
        _ = t.takeSegments()
        #expect(t.stack.pathMTU(to: remote.address, now: t.now + .seconds(599)) == 1200)
        #expect(t.stack.pathMTU(to: remote.address, now: t.now + .seconds(600)) == nil)
        #expect(t.stack.pathMTUCacheCount == 0)
        _ = second
    }

    /// RFC 1191 §6.3 / RFC 8201 §5.3: when the estimate ages out, the connection that lowered its
    /// MSS for it gets the handshake's MSS back (the peer's option, 1440 here over IPv6, and our
    /// link's): full-sized segments again, every octet verified by the tester, and nothing
    /// retransmitted for the increase. A minute before, the segments are still cut small.
    @Test(arguments: [false, true])
    func mssRisesAgainWhenTheEstimateAgesOut(ipv6: Bool) throws {
        let mss = ipv6 ? 1440 : 1460
        let small = ipv6 ? 1220 : 1240
        var t = try TCPTester(.established, peer: .init(maximumSegmentSize: UInt16(mss), ipv6: ipv6))
        t.stack.tracing = true
        try t.app.send(mss)
        try t.expect("+0 > P. 1:\(1 + mss)(\(mss)) ack 1")
        t.icmp(ipv6 ? .packetTooBig(mtu: 1280) : .fragmentationNeeded(nextHopMTU: 1280), quoting: 1)
        try t.expect("+0 > . 1:\(1 + small)(\(small)) ack 1")
        try t.expect("+0 > P. \(1 + small):\(1 + mss)(\(mss - small)) ack 1")
        try t.inject("+.1 < . 1:1(0) ack \(1 + mss) win 65535")
        #expect(t.status?.maximumSegmentSize == small)

        // At 599.1 s the estimate still holds.
        t.advance(by: .seconds(599))
        var next = 1 + mss
        try t.app.send(2 * small)
        try t.expect("+0 > . \(next):\(next + small)(\(small)) ack 1")
        try t.expect("+0 > P. \(next + small):\(next + 2 * small)(\(small)) ack 1")
        next += 2 * small
        try t.inject("+.1 < . 1:1(0) ack \(next) win 65535")
        #expect(t.stack.pathMTU(to: t.remoteAddress, now: t.now) == 1280)

        // At 600 s it ages out: the MSS goes back up, with nothing sent for it.
        t.advance(by: .seconds(1))
        try t.expectNothing()
        #expect(t.status?.maximumSegmentSize == mss)
        #expect(t.status?.pathMTU == nil)
        #expect(t.stack.pathMTU(to: t.remoteAddress, now: t.now) == nil && t.stack.pathMTUCacheCount == 0)
        #expect(t.counters.pathMTUIncreases == 1 && t.counters.pathMTUReductions == 1)
        let rule = ipv6 ? "RFC 8201 §5.3" : "RFC 1191 §6.3"
        #expect(t.stack.drainTrace().contains { $0.description.hasPrefix("\(rule): PMTU estimate 1280 aged out: MSS \(small) -> \(mss)") })
        let retransmitted = t.counters.segmentsRetransmitted

        // Larger segments again.
        try t.app.send(2 * mss)
        try t.expect("+0 > . \(next):\(next + mss)(\(mss)) ack 1")
        try t.expect("+0 > P. \(next + mss):\(next + 2 * mss)(\(mss)) ack 1")
        try t.inject("+.1 < . 1:1(0) ack \(next + 2 * mss) win 65535")
        try t.expectNothing()
        #expect(t.counters.segmentsRetransmitted == retransmitted)
    }

    /// RFC 1191 §6.3: "a means for changing the timeout duration, including setting it to
    /// 'infinity'": an estimate that never ages keeps the MSS down and sets no deadline.
    @Test func ageingSetToInfinityNeverRaises() throws {
        var t = try TCPTester(.established) { $0.tcp.pathMTU.ageing = .nanoseconds(.max) }
        try t.app.send(1460)
        try t.expect("+0 > P. 1:1461(1460) ack 1")
        t.icmp(.fragmentationNeeded(nextHopMTU: 1280), quoting: 1)
        try t.expect("+0 > . 1:1241(1240) ack 1")
        try t.expect("+0 > P. 1241:1461(220) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        t.advance(by: .seconds(24 * 3600))
        #expect(t.status?.maximumSegmentSize == 1240 && t.counters.pathMTUIncreases == 0)
        #expect(t.stack.pathMTU(to: t.remoteAddress, now: t.now) == 1280)
        try t.app.send(2480)
        try t.expect("+0 > . 1461:2701(1240) ack 1")
        try t.expect("+0 > P. 2701:3941(1240) ack 1")
    }

    /// The cache is bounded: the entry closest to expiry goes first.
    @Test func cacheIsBounded() throws {
        var configuration = StackConfiguration(addresses: [.v4(IPv4Address(198, 18, 0, 1))], seed: 1)
        configuration.tcp.pathMTU.cacheLimit = 4
        let stack = Stack(configuration)
        for host in 0..<10 {
            let now = Instant.zero + .seconds(Int64(host))
            let remote = Endpoint(.v4(IPv4Address(198, 18, 1, UInt8(host))), 80)
            let id = try stack.connect(to: remote, now: now)
            let status = try #require(stack.status(id))
            stack.icmpErrorArrived(
                TCPICMPError(
                    kind: .fragmentationNeeded(nextHopMTU: 1000), local: status.local, remote: remote,
                    sequenceNumber: SequenceNumber(status.sendUnacknowledged)),
                now: now)
        }
        #expect(stack.pathMTUCacheCount == 4)
        #expect(stack.pathMTU(to: .v4(IPv4Address(198, 18, 1, 9)), now: .zero + .seconds(10)) == 1000)
        #expect(stack.pathMTU(to: .v4(IPv4Address(198, 18, 1, 0)), now: .zero + .seconds(10)) == nil)
    }

    /// IPv4 segments go with DF set (RFC 1191 §3: PMTUD needs it; TCP never relies on fragmentation).
    @Test func segmentsCarryDontFragment() throws {
        let stack = Stack(StackConfiguration(addresses: [.v4(IPv4Address(198, 18, 0, 1))], seed: 1))
        _ = try stack.connect(to: Endpoint(.v4(IPv4Address(198, 18, 0, 2)), 80), now: .zero)
        let syn = try #require(stack.nextPacketToSend())
        #expect(try IPv4Header.parse(syn).dontFragment)
    }
}
