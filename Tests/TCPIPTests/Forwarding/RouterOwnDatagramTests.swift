import NIOCore
@testable import TCPIP
import TCPIPWire
import Testing

/// The router's own datagrams — the ICMP errors it builds about what it cannot forward, and what its
/// stack answers (echo replies, port unreachables) — are routed before output and postrouting, as
/// Linux routes a datagram of its own before NF_INET_LOCAL_OUT: `oifname` matches them at both hooks.
extension RouterTests {
    /// What a host on a sends that draws an answer from the router itself, by `family`: a TTL of one
    /// (time exceeded), too big for b (fragmentation needed / packet too big), no route (network
    /// unreachable), a ping and a UDP datagram to a closed port of the router (its stack's echo
    /// reply and port unreachable).
    static func ownAnswersFromA(family: Int) -> [ByteBuffer] {
        if family == 4 {
            return [
                udp4(size: 100, ttl: 1),
                udp4(size: 1400),
                udp4(size: 100, to: IPv4Address(198, 19, 0, 1)),
                PacketBuffer.icmpv4Datagram(
                    message: .echoRequest(identifier: 7, sequenceNumber: 1), body: ByteBuffer(bytes: [1, 2, 3]),
                    source: hostA4, destination: routerA4),
                udp4(size: 100, to: routerA4),
            ]
        }
        return [
            udp6(size: 100, hopLimit: 1),
            udp6(size: 1400),
            udp6(size: 100, to: IPv6Address("2001:db8:9::1")!),
            PacketBuffer.icmpv6Datagram(
                message: .echoRequest(identifier: 7, sequenceNumber: 1), body: ByteBuffer(bytes: [1, 2, 3]),
                source: hostA6, destination: routerA6),
            udp6(size: 100, to: routerA6),
        ]
    }

    /// A ping from a host on b to the router's address there: its stack answers on b.
    static func pingFromB(family: Int) -> ByteBuffer {
        family == 4
            ? PacketBuffer.icmpv4Datagram(
                message: .echoRequest(identifier: 8, sequenceNumber: 1), body: ByteBuffer(bytes: [4, 5, 6]),
                source: hostB4, destination: routerB4)
            : PacketBuffer.icmpv6Datagram(
                message: .echoRequest(identifier: 8, sequenceNumber: 1), body: ByteBuffer(bytes: [4, 5, 6]),
                source: hostB6, destination: routerB6)
    }

    static func router(mtuB: Int = 1500, rules: String) throws -> Router {
        var configuration = router(mtuB: mtuB).configuration
        configuration.rules = try FilterRuleset(parsing: rules)
        return Router(configuration)
    }

    /// Five answers leave by a (three errors of the router's, two of its stack's), one by b (an echo
    /// reply); output and postrouting count each by the link it leaves on, and postrouting also the
    /// datagram forwarded from a to b.
    @Test(arguments: [4, 6])
    func ownDatagramsAreRoutedBeforeOutputAndPostrouting(family: Int) throws {
        let router = try Self.router(mtuB: 1280, rules: """
            table inet t {
                chain out { type filter hook output priority 0; oifname "a" counter; oifname "b" counter; counter }
                chain post { type filter hook postrouting priority 0; oifname "a" counter; oifname "b" counter }
            }
            """)
        for datagram in Self.ownAnswersFromA(family: family) { router.receive(datagram, from: 0, now: .zero) }
        router.receive(Self.pingFromB(family: family), from: 1, now: .zero)
        router.receive(family == 4 ? Self.udp4(size: 200) : Self.udp6(size: 200), from: 0, now: .zero)
        let onA = Self.drain(router, link: 0)
        let onB = Self.drain(router, link: 1)
        #expect(onA.count == 5)
        #expect(onB.count == 2)
        #expect(onA.allSatisfy { (try? IPDatagram.parse($0).destination) == (family == 4 ? .v4(Self.hostA4) : .v6(Self.hostA6)) })
        let stack = router.stack
        #expect(stack.ruleCounter("out", 0) == 5)   // oifname "a": time exceeded, too big, unreachable, reply, port unreachable
        #expect(stack.ruleCounter("out", 1) == 1)   // oifname "b": the echo reply to b
        #expect(stack.ruleCounter("out", 2) == 6)
        #expect(stack.ruleCounter("post", 0) == 5)
        #expect(stack.ruleCounter("post", 1) == 2)  // the echo reply and the forwarded datagram
        #expect(router.counters.icmpErrorsSent == 3)
        #expect(router.counters.sentLocally == 3)
        #expect(router.counters.forwarded == 1)
        #expect(router.counters.filtered == 0)
    }

    /// A rule on the output link stops the router's own datagrams there and not elsewhere: `drop`
    /// at output for a, `reject` at postrouting for b (its answer goes back to the router's stack).
    @Test(arguments: [4, 6])
    func dropAndRejectByOutputLinkStopTheRoutersOwnDatagrams(family: Int) throws {
        let router = try Self.router(mtuB: 1280, rules: """
            table inet t {
                chain out { type filter hook output priority 0; oifname "a" counter drop }
                chain post { type filter hook postrouting priority 0; oifname "b" counter reject }
            }
            """)
        for datagram in Self.ownAnswersFromA(family: family) { router.receive(datagram, from: 0, now: .zero) }
        router.receive(Self.pingFromB(family: family), from: 1, now: .zero)
        #expect(Self.drain(router, link: 0).isEmpty)
        #expect(Self.drain(router, link: 1).isEmpty)
        let stack = router.stack
        #expect(stack.ruleCounter("out", 0) == 5)
        #expect(stack.ruleCounter("post", 0) == 1)
        #expect(stack.counters.filterDropped == 5)
        #expect(stack.counters.filterRejected == 1)
        #expect(router.counters.filtered == 6)
        // Forwarding through the same router is untouched by the output hook.
        router.receive(family == 4 ? Self.udp4(size: 200, to: Self.hostA4) : Self.udp6(size: 200, to: Self.hostA6), from: 1, now: .zero)
        #expect(Self.drain(router, link: 0).count == 1)
    }

    /// An `impair delay` at postrouting for one link holds the router's time exceeded on that link
    /// and lets its echo reply by the same link go at once; released, the error leaves by the link
    /// it was routed to.
    @Test(arguments: [4, 6])
    func heldOwnDatagramLeavesByItsLinkWhenReleased(family: Int) throws {
        let router = try Self.router(rules: """
            table inet t {
                chain post {
                    type filter hook postrouting priority 0;
                    oifname "a" icmp type time-exceeded impair delay 10ms
                    oifname "a" icmpv6 type time-exceeded impair delay 10ms
                }
            }
            """)
        let answers = Self.ownAnswersFromA(family: family)
        router.receive(answers[0], from: 0, now: .zero)   // TTL 1: time exceeded
        router.receive(answers[3], from: 0, now: .zero)   // ping: echo reply
        let now = Self.drain(router, link: 0)
        try #require(now.count == 1)
        let reply = try IPDatagram.parse(now[0])
        #expect(reply.upperLayerProtocol == (family == 4 ? IPProtocolNumber.icmp : IPProtocolNumber.icmpv6))
        #expect(reply.payload.getInteger(at: reply.payload.readerIndex, as: UInt8.self) == (family == 4 ? 0 : 129))
        let release = try #require(router.nextDeadline)
        #expect(release == .zero + .milliseconds(10))
        router.advanceTime(to: release)
        #expect(Self.drain(router, link: 1).isEmpty)
        let late = Self.drain(router, link: 0)
        try #require(late.count == 1)
        let error = try IPDatagram.parse(late[0])
        #expect(error.source == (family == 4 ? .v4(Self.routerA4) : .v6(Self.routerA6)))
        #expect(error.payload.getInteger(at: error.payload.readerIndex, as: UInt8.self) == (family == 4 ? 11 : 3))
        #expect(router.stack.counters.filterImpairDelayed == 1)
    }
}
