import NIOCore
@testable import TCPIP
@testable import TCPIPFuzzing
import TCPIPSimulation
import TCPIPWire
import Testing

/// A router between two links: a at 198.18.0.0/24 and 2001:db8:0::/64, b at 198.18.2.0/24 and
/// 2001:db8:2::/64, the router .254 / ::fe on each. Datagrams are crafted by the wire layer and what
/// the router sends is read back from each link's queue.
@Suite struct RouterTests {
    static let hostA4 = IPv4Address(198, 18, 0, 1)
    static let hostB4 = IPv4Address(198, 18, 2, 1)
    static let routerA4 = IPv4Address(198, 18, 0, 254)
    static let routerB4 = IPv4Address(198, 18, 2, 254)
    static let hostA6 = IPv6Address("2001:db8::1")!
    static let hostB6 = IPv6Address("2001:db8:2::1")!
    static let routerA6 = IPv6Address("2001:db8::fe")!
    static let routerB6 = IPv6Address("2001:db8:2::fe")!

    static func router(mtuB: Int = 1500) -> Router {
        Router(RouterConfiguration(
            links: [RouterLink(name: "a", addresses: [.v4(routerA4), .v6(routerA6)]),
                    RouterLink(name: "b", mtu: mtuB, addresses: [.v4(routerB4), .v6(routerB6)])],
            routes: [RoutingTable.Route(IPPrefix("198.18.0.0/24")!, link: 0), RoutingTable.Route(IPPrefix("2001:db8::/64")!, link: 0),
                     RoutingTable.Route(IPPrefix("198.18.2.0/24")!, link: 1), RoutingTable.Route(IPPrefix("2001:db8:2::/64")!, link: 1)],
            seed: 20))
    }

    static func udp4(size: Int, ttl: UInt8 = 64, dontFragment: Bool = true, to destination: IPv4Address = hostB4) -> ByteBuffer {
        var datagram = PacketBuffer.make(payloadCapacity: size)
        datagram.writeBytes((0..<size - 28).map { UInt8(truncatingIfNeeded: $0 * 13) })
        UDPHeader(sourcePort: 40000, destinationPort: 9).prepend(
            to: &datagram, source: .v4(hostA4), destination: .v4(destination))
        IPv4Header(source: hostA4, destination: destination, protocolNumber: IPProtocolNumber.udp,
                   payloadLength: datagram.readableBytes, timeToLive: ttl, dontFragment: dontFragment).prepend(to: &datagram)
        return datagram
    }

    static func udp6(size: Int, hopLimit: UInt8 = 64, to destination: IPv6Address = hostB6) -> ByteBuffer {
        var datagram = PacketBuffer.make(payloadCapacity: size)
        datagram.writeBytes((0..<size - 48).map { UInt8(truncatingIfNeeded: $0 * 13) })
        UDPHeader(sourcePort: 40000, destinationPort: 9).prepend(
            to: &datagram, source: .v6(hostA6), destination: .v6(destination))
        IPv6Header(source: hostA6, destination: destination, nextHeader: IPProtocolNumber.udp,
                   payloadLength: datagram.readableBytes, hopLimit: hopLimit).prepend(to: &datagram)
        return datagram
    }

    static func drain(_ router: Router, link: Int) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        while let packet = router.nextPacketToSend(on: link) { out.append(packet) }
        return out
    }

    // MARK: Forwarding

    /// RFC 1812 §5.3.1 / RFC 1624: the datagram leaves by b, byte for byte what came in but for the
    /// TTL one less and a header checksum that still verifies.
    @Test func forwardsIPv4DecrementingTTL() throws {
        let router = Self.router()
        let input = Self.udp4(size: 1500)
        router.receive(input, from: 0, now: .zero)
        #expect(Self.drain(router, link: 0).isEmpty)
        let out = Self.drain(router, link: 1)
        try #require(out.count == 1)
        let header = try IPv4Header.parse(out[0], verifyChecksum: true)
        #expect(header.timeToLive == 63)
        var expected = Array(input.readableBytesView)
        expected[8] = 63
        expected[10] = out[0].getInteger(at: out[0].readerIndex + 10, as: UInt8.self)!
        expected[11] = out[0].getInteger(at: out[0].readerIndex + 11, as: UInt8.self)!
        #expect(Array(out[0].readableBytesView) == expected)
        #expect(router.counters.forwarded == 1)
        #expect(router.counters.bytesForwarded == 1500)
    }

    /// RFC 1624 eqn. 3 agrees with a checksum computed from scratch for every TTL and protocol.
    @Test func incrementalChecksumMatchesRecomputation() throws {
        for ttl in UInt8(2)...255 {
            for protocolNumber: UInt8 in [1, 6, 17, 58, 255, 0] {
                var datagram = PacketBuffer.make(payloadCapacity: 0)
                IPv4Header(source: Self.hostA4, destination: Self.hostB4, protocolNumber: protocolNumber,
                           payloadLength: 0, timeToLive: ttl).prepend(to: &datagram)
                let router = Self.router()
                router.receive(datagram, from: 0, now: .zero)
                let out = try #require(router.nextPacketToSend(on: 1))
                #expect((try? IPv4Header.parse(out, verifyChecksum: true)) != nil, "ttl \(ttl) protocol \(protocolNumber)")
            }
        }
    }

    /// RFC 8200 §3: the hop limit one less; IPv6 has no header checksum.
    @Test func forwardsIPv6DecrementingHopLimit() throws {
        let router = Self.router()
        let input = Self.udp6(size: 1500)
        router.receive(input, from: 0, now: .zero)
        let out = Self.drain(router, link: 1)
        try #require(out.count == 1)
        var expected = Array(input.readableBytesView)
        expected[7] = 63
        #expect(Array(out[0].readableBytesView) == expected)
    }

    /// Forwarding moves the datagram: the buffer that leaves is the one that came in.
    @Test func forwardingDoesNotCopyThePayload() throws {
        let router = Self.router()
        let input = Self.udp4(size: 1500)
        let address = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        router.receive(consume input, from: 0, now: .zero)
        let out = try #require(router.nextPacketToSend(on: 1))
        #expect(out.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == address)
    }

    // MARK: The forward hook (docs/NETFILTER.md)

    /// Rules on the forward hook see the router's datagrams with their links: one is dropped by
    /// `iifname`/`dport`, another passes with its TTL decremented after the hook, and an `impair`
    /// delay holds a third until `advanceTime` releases it.
    @Test func forwardHookRulesApply() throws {
        var configuration = Self.router().configuration
        configuration.rules = try FilterRuleset(parsing: """
            table inet filter {
                chain fwd {
                    type filter hook forward priority 0; policy accept;
                    iifname "a" oifname "b" udp dport 9 drop
                    udp dport 7 impair delay 20ms
                }
            }
            """)
        let router = Router(configuration)
        router.receive(Self.udp4(size: 100), from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).isEmpty)
        #expect(router.counters.filtered == 1)
        var other = Self.udp4(size: 100)
        other.setInteger(UInt16(10), at: other.readerIndex + 22)
        other.setInteger(UInt16(0), at: other.readerIndex + 26)  // no UDP checksum (RFC 768)
        router.receive(other, from: 0, now: .zero)
        let passed = Self.drain(router, link: 1)
        try #require(passed.count == 1)
        #expect(try IPv4Header.parse(passed[0], verifyChecksum: true).timeToLive == 63)
        var delayed = Self.udp4(size: 100)
        delayed.setInteger(UInt16(7), at: delayed.readerIndex + 22)
        delayed.setInteger(UInt16(0), at: delayed.readerIndex + 26)
        router.receive(delayed, from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).isEmpty)
        let release = try #require(router.nextDeadline)
        #expect(release == .zero + .milliseconds(20))
        router.advanceTime(to: release)
        let late = Self.drain(router, link: 1)
        try #require(late.count == 1)
        #expect(try IPv4Header.parse(late[0], verifyChecksum: true).timeToLive == 63)
    }

    /// Every hook where netfilter has it: a forwarded datagram walks prerouting → forward →
    /// postrouting, one for the router itself prerouting → input, what it sends output →
    /// postrouting; IPv4 and IPv6 alike, with the link names it came and left by.
    @Test func everyHookCountsForwardedLocalInAndLocalOut() throws {
        var configuration = Self.router().configuration
        configuration.rules = try FilterRuleset(parsing: """
            table inet t {
                chain pre { type filter hook prerouting priority 0; iifname "a" counter; counter }
                chain in { type filter hook input priority 0; iifname "a" counter; counter }
                chain fwd { type filter hook forward priority 0; iifname "a" oifname "b" counter; counter }
                chain out { type filter hook output priority 0; counter }
                chain post { type filter hook postrouting priority 0; counter }
            }
            """)
        let router = Router(configuration)
        // Forwarded: three IPv4 and two IPv6 datagrams from a to b.
        for _ in 0..<3 { router.receive(Self.udp4(size: 200), from: 0, now: .zero) }
        for _ in 0..<2 { router.receive(Self.udp6(size: 200), from: 0, now: .zero) }
        #expect(Self.drain(router, link: 1).count == 5)
        // Local in and out: a ping of each family to the router's address on a, answered.
        router.receive(PacketBuffer.icmpv4Datagram(
            message: .echoRequest(identifier: 7, sequenceNumber: 1), body: ByteBuffer(bytes: [1, 2, 3]),
            source: Self.hostA4, destination: Self.routerA4), from: 0, now: .zero)
        router.receive(PacketBuffer.icmpv6Datagram(
            message: .echoRequest(identifier: 7, sequenceNumber: 1), body: ByteBuffer(bytes: [1, 2, 3]),
            source: Self.hostA6, destination: Self.routerA6), from: 0, now: .zero)
        #expect(Self.drain(router, link: 0).count == 2)
        let stack = router.stack
        #expect(stack.ruleCounter("pre", 0) == 7)    // 5 forwarded + 2 local, all by a
        #expect(stack.ruleCounter("pre", 1) == 7)
        #expect(stack.ruleCounter("in", 0) == 2)
        #expect(stack.ruleCounter("fwd", 0) == 5)
        #expect(stack.ruleCounter("out", 0) == 2)
        #expect(stack.ruleCounter("post", 0) == 7)   // 5 forwarded + 2 replies
        #expect(router.counters.forwarded == 5)
    }

    /// Prerouting comes before the routing decision: a datagram it drops gets no ICMP time exceeded
    /// and no network unreachable, and one it delays is routed, TTL decremented, when released.
    @Test func preroutingRunsBeforeTheRoutingDecision() throws {
        var configuration = Self.router().configuration
        configuration.rules = try FilterRuleset(parsing: """
            table ip t {
                chain pre {
                    type filter hook prerouting priority 0;
                    ip daddr 198.19.9.9 drop
                    udp dport 9 drop
                    udp dport 7 impair delay 30ms
                }
            }
            """)
        let router = Router(configuration)
        router.receive(Self.udp4(size: 100, ttl: 1), from: 0, now: .zero)
        router.receive(Self.udp4(size: 100, to: IPv4Address(198, 19, 9, 9)), from: 0, now: .zero)
        #expect(Self.drain(router, link: 0).isEmpty)
        #expect(router.counters.timeExceeded == 0)
        #expect(router.counters.noRoute == 0)
        #expect(router.counters.filtered == 2)
        var delayed = Self.udp4(size: 100)
        delayed.setInteger(UInt16(7), at: delayed.readerIndex + 22)
        delayed.setInteger(UInt16(0), at: delayed.readerIndex + 26)  // no UDP checksum (RFC 768)
        router.receive(delayed, from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).isEmpty)
        let release = try #require(router.nextDeadline)
        #expect(release == .zero + .milliseconds(30))
        router.advanceTime(to: release)
        let late = Self.drain(router, link: 1)
        try #require(late.count == 1)
        #expect(try IPv4Header.parse(late[0], verifyChecksum: true).timeToLive == 63)
        #expect(router.counters.forwarded == 1)
    }

    // MARK: TTL expiry (RFC 792, RFC 4443 §3.3)

    @Test func ttlOfOneGetsTimeExceededFromTheIncomingLinksAddress() throws {
        let router = Self.router()
        let input = Self.udp4(size: 100, ttl: 1)
        router.receive(input, from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).isEmpty)
        let back = Self.drain(router, link: 0)
        try #require(back.count == 1)
        let ip = try IPDatagram.parse(back[0])
        #expect(ip.source == .v4(Self.routerA4))
        #expect(ip.destination == .v4(Self.hostA4))
        let icmp = try ICMPv4Packet.parse(ip.payload, verifyChecksum: true)
        #expect(icmp.message == .timeExceeded(code: 0))
        // The quote is the datagram as it arrived, TTL 1.
        #expect(Array(icmp.body.readableBytesView) == Array(input.readableBytesView))
        #expect(router.counters.timeExceeded == 1)
    }

    @Test func hopLimitOfOneGetsTimeExceeded() throws {
        let router = Self.router()
        router.receive(Self.udp6(size: 100, hopLimit: 1), from: 0, now: .zero)
        let back = Self.drain(router, link: 0)
        try #require(back.count == 1)
        let ip = try IPDatagram.parse(back[0])
        #expect(ip.source == .v6(Self.routerA6))
        let icmp = try ICMPv6Packet.parse(ip.payload, source: Self.routerA6, destination: Self.hostA6, verifyChecksum: true)
        #expect(icmp.message == .timeExceeded(code: 0))
    }

    @Test func ttlZeroIsNotForwardedEither() {
        let router = Self.router()
        router.receive(Self.udp4(size: 100, ttl: 0), from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).isEmpty)
        #expect(router.counters.timeExceeded == 1)
    }

    /// RFC 1812 §4.3.2.7: no error about an ICMP error.
    @Test func noTimeExceededAboutAnICMPError() throws {
        let router = Self.router()
        let error = PacketBuffer.icmpv4Datagram(
            message: .destinationUnreachable(.portUnreachable, nextHopMTU: 0), body: ByteBuffer(bytes: [0x45, 0, 0, 20]),
            source: Self.hostA4, destination: Self.hostB4, timeToLive: 1)
        router.receive(error, from: 0, now: .zero)
        #expect(Self.drain(router, link: 0).isEmpty)
        #expect(router.counters.icmpErrorsSuppressed == 1)
    }

    // MARK: Too big (RFC 1191 §4, RFC 4443 §3.2)

    @Test func dontFragmentTooBigGetsFragmentationNeededWithTheNextHopMTU() throws {
        let router = Self.router(mtuB: 1280)
        router.receive(Self.udp4(size: 1400), from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).isEmpty)
        let back = Self.drain(router, link: 0)
        try #require(back.count == 1)
        let ip = try IPDatagram.parse(back[0])
        let icmp = try ICMPv4Packet.parse(ip.payload, verifyChecksum: true)
        #expect(icmp.message == .destinationUnreachable(.fragmentationNeeded, nextHopMTU: 1280))
        #expect(router.counters.tooBig == 1)
        // The largest that fits goes through.
        router.receive(Self.udp4(size: 1280), from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).count == 1)
    }

    @Test func ipv6TooBigGetsPacketTooBig() throws {
        let router = Self.router(mtuB: 1280)
        router.receive(Self.udp6(size: 1500), from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).isEmpty)
        let back = Self.drain(router, link: 0)
        try #require(back.count == 1)
        let ip = try IPDatagram.parse(back[0])
        let icmp = try ICMPv6Packet.parse(ip.payload, source: Self.routerA6, destination: Self.hostA6, verifyChecksum: true)
        #expect(icmp.message == .packetTooBig(mtu: 1280))
        // RFC 4443 §2.4(c): the quote keeps the error within the minimum MTU.
        #expect(back[0].readableBytes == 1280)
    }

    /// RFC 1812 §5.2.6: without DF the router fragments; the fragments reassemble to the datagram.
    @Test func withoutDontFragmentTheRouterFragments() throws {
        let router = Self.router(mtuB: 576)
        let input = Self.udp4(size: 1500, dontFragment: false)
        router.receive(input, from: 0, now: .zero)
        let fragments = Self.drain(router, link: 1)
        #expect(fragments.count == 3)
        #expect(fragments.allSatisfy { $0.readableBytes <= 576 })
        var payload: [UInt8] = []
        for fragment in fragments {
            let header = try IPv4Header.parse(fragment, verifyChecksum: true)
            #expect(header.timeToLive == 63)
            payload += fragment.readableBytesView.dropFirst(header.headerLength)
        }
        #expect(payload == Array(input.readableBytesView.dropFirst(20)))
        #expect(router.counters.fragmented == 1)
    }

    // MARK: What is not forwarded

    @Test func noRouteGetsNetworkUnreachable() throws {
        let router = Self.router()
        router.receive(Self.udp4(size: 100, to: IPv4Address(198, 19, 0, 1)), from: 0, now: .zero)
        let back = Self.drain(router, link: 0)
        try #require(back.count == 1)
        let icmp = try ICMPv4Packet.parse(try IPDatagram.parse(back[0]).payload, verifyChecksum: true)
        #expect(icmp.message == .destinationUnreachable(.networkUnreachable, nextHopMTU: 0))
        #expect(router.counters.noRoute == 1)
    }

    @Test func badHeaderChecksumIsDroppedAndCounted() {
        let router = Self.router()
        var input = Self.udp4(size: 100)
        input.setInteger(UInt8(0x77), at: input.readerIndex + 10)
        router.receive(input, from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).isEmpty)
        #expect(router.counters.badChecksum == 1)
    }

    @Test func garbageIsDroppedAndCounted() {
        let router = Self.router()
        for bytes: [UInt8] in [[], [0x45], [0x60, 0, 0], [0x15, 1, 2, 3], Array(repeating: 0x45, count: 40)] {
            router.receive(ByteBuffer(bytes: bytes), from: 1, now: .zero)
        }
        #expect(Self.drain(router, link: 0).isEmpty && Self.drain(router, link: 1).isEmpty)
        #expect(router.counters.malformed + router.counters.badChecksum == 5)
    }

    @Test func broadcastAndLinkLocalAreNotForwarded() {
        let router = Self.router()
        router.receive(Self.udp4(size: 100, to: IPv4Address(255, 255, 255, 255)), from: 0, now: .zero)
        router.receive(Self.udp6(size: 100, to: IPv6Address("fe80::1")!), from: 0, now: .zero)
        router.receive(Self.udp6(size: 100, to: IPv6Address("ff02::1")!), from: 0, now: .zero)
        #expect(Self.drain(router, link: 1).isEmpty)
        #expect(router.counters.notForwardable == 3)
    }

    /// RFC 1812 §4.3.2.8: the errors come from a token bucket.
    @Test func errorsAreRateLimited() {
        let router = Self.router()
        for _ in 0..<200 { router.receive(Self.udp4(size: 100, ttl: 1), from: 0, now: .zero) }
        #expect(Self.drain(router, link: 0).count == 50)
        #expect(router.counters.icmpErrorsRateLimited == 150)
    }

    // MARK: The router's own addresses

    /// Ping of the router: its own stack answers, on either link's address, by the link it came from.
    @Test(arguments: [routerA4, routerB4])
    func routerAnswersPing(address: IPv4Address) throws {
        let router = Self.router()
        let request = PacketBuffer.icmpv4Datagram(
            message: .echoRequest(identifier: 7, sequenceNumber: 1), body: ByteBuffer(bytes: [1, 2, 3]),
            source: Self.hostA4, destination: address)
        router.receive(request, from: 0, now: .zero)
        let back = Self.drain(router, link: 0)
        try #require(back.count == 1)
        let ip = try IPDatagram.parse(back[0])
        #expect(ip.source == .v4(address))
        let icmp = try ICMPv4Packet.parse(ip.payload, verifyChecksum: true)
        #expect(icmp.message == .echoReply(identifier: 7, sequenceNumber: 1))
        #expect(router.counters.deliveredLocally == 1)
    }

    // MARK: Two stacks behind the router (virtual time)

    static let stackA = IPAddress.v4(hostA4)
    static let stackB = IPAddress.v4(hostB4)

    @Test(arguments: [4, 6])
    func transferThroughTheRouterArrivesByteForByte(family: Int) throws {
        let router = Self.router()
        let network = RoutedNetwork(router: router)
        let a = Stack(StackConfiguration(addresses: [family == 4 ? .v4(Self.hostA4) : .v6(Self.hostA6)], seed: 1))
        let b = Stack(StackConfiguration(addresses: [family == 4 ? .v4(Self.hostB4) : .v6(Self.hostB6)], seed: 2))
        let link = MemoryLink.Configuration(delay: .milliseconds(5), bandwidthBitsPerSecond: 100_000_000, checksumOffload: false)
        network.attach(a, link: link)
        network.attach(b, link: link)
        let (sent, received) = try network.transfer(
            2_000_000, from: a, to: b, serverAddress: family == 4 ? .v4(Self.hostB4) : .v6(Self.hostB6))
        #expect(received.count == sent.count)
        #expect(received == sent)
        #expect(router.counters.forwarded > 1_300)
        #expect(router.counters.malformed == 0 && router.counters.badChecksum == 0)
        #expect(a.counters.badChecksums == 0 && b.counters.badChecksums == 0)
    }

    /// A narrower link b: the hosts' 1500-byte segments draw fragmentation needed / packet too big
    /// from the router, their TCP learns the path MTU (RFC 1191, RFC 8201), and the transfer
    /// completes through segments that fit.
    @Test(arguments: [4, 6])
    func pathMTUDiscoveryThroughTheRouter(family: Int) throws {
        let router = Self.router(mtuB: 1280)
        let network = RoutedNetwork(router: router)
        network.capturing = true
        let a = Stack(StackConfiguration(addresses: [family == 4 ? .v4(Self.hostA4) : .v6(Self.hostA6)], seed: 3))
        let b = Stack(StackConfiguration(addresses: [family == 4 ? .v4(Self.hostB4) : .v6(Self.hostB6)], seed: 4))
        network.attach(a, link: .init(delay: .milliseconds(2), checksumOffload: false))
        network.attach(b, link: .init(mtu: 1280, delay: .milliseconds(2), checksumOffload: false))
        let (sent, received) = try network.transfer(
            500_000, from: a, to: b, serverAddress: family == 4 ? .v4(Self.hostB4) : .v6(Self.hostB6))
        #expect(received == sent)
        #expect(router.counters.tooBig >= 1)
        #expect(router.counters.icmpErrorsSent >= 1)
        #expect(network.captured[1].allSatisfy { $0.readableBytes <= 1280 })
    }

    /// Traceroute's first probe (TTL 1) draws time exceeded from the router; the second (TTL 2)
    /// reaches b, whose closed port answers through the router.
    @Test func tracerouteSeesTheHop() throws {
        let router = Self.router()
        let network = RoutedNetwork(router: router)
        let a = Stack(StackConfiguration(addresses: [.v4(Self.hostA4)], seed: 5))
        let b = Stack(StackConfiguration(addresses: [.v4(Self.hostB4)], seed: 6))
        network.attach(a, link: .init(delay: .milliseconds(1)))
        network.attach(b, link: .init(delay: .milliseconds(1)))
        network.settle()
        for ttl: UInt8 in [1, 2] {
            router.receive(Self.udp4(size: 60, ttl: ttl, to: Self.hostB4), from: 0, now: network.now)
            _ = network.advance()
            _ = network.advance()
            _ = network.advance()
        }
        #expect(router.counters.timeExceeded == 1)
        #expect(a.counters.icmpInTimeExceeded == 1)
        #expect(a.counters.icmpInDestinationUnreachables == 1)
    }
}

/// The `forward` fuzz target's seeds and a few thousand random inputs: no trap, every invariant held.
@Suite struct ForwardFuzzingTests {
    @Test func seedsAndRandomInputsHoldTheInvariants() {
        for (_, bytes) in ForwardFuzzing.seeds {
            bytes.withUnsafeBytes { ForwardFuzzing.forward($0) }
        }
        var random = SeededGenerator(seed: 20)
        for _ in 0..<2_000 {
            let bytes = (0..<Int(random.next() % 400)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            bytes.withUnsafeBytes { ForwardFuzzing.forward($0) }
        }
    }
}
