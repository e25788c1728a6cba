import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// Intercept mode's UDP flows (a connected endpoint per 5-tuple, at the original destination, until
/// idle: RFC 4787 §4.3) and ICMP echo to any address. `IPTester`'s "local" addresses stand for any
/// destination: the stack owns none.
@Suite struct InterceptedFlowTests {
    static func intercepting(_ adjust: @escaping (inout InterceptionConfiguration) -> Void = { _ in }) -> IPTester {
        IPTester { configuration in
            configuration.addresses = []
            var interception = InterceptionConfiguration()
            adjust(&interception)
            configuration.interception = interception
        }
    }

    static func advance(_ t: inout IPTester, to seconds: Int64) {
        t.now = Instant(nanoseconds: seconds * 1_000_000_000)
        t.stack.advanceTime(to: t.now)
    }

    /// The first datagram of a 5-tuple makes a flow: a connected endpoint whose local address is the
    /// original destination; the datagram waits on it, later ones follow, and replies leave from the
    /// original destination — every byte as sent.
    @Test(arguments: [4, 6]) func firstDatagramMakesAFlowAndRepliesComeFromTheDestination(family: Int) throws {
        let t = Self.intercepting()
        let query = Array("query through the tunnel".utf8)
        t.inject(IPTester.udp(family: family, from: 40000, to: 5353, payload: query))
        guard case .udpFlow(let flow)? = t.stack.nextEvent() else {
            Issue.record("no flow event")
            return
        }
        // The datagram waiting on it makes it readable, as any endpoint's.
        #expect(t.stack.nextEvent() == .udpReadable(flow))
        #expect(t.stack.nextEvent() == nil)
        let status = try #require(t.stack.udpStatus(flow))
        #expect(status.localAddress == IPTester.local(family) && status.localPort == 5353)
        #expect(status.remote == Endpoint(IPTester.remote(family), 40000))
        let first = try #require(try t.stack.receive(flow))
        #expect(Array(first.payload.readableBytesView) == query)
        #expect(first.destination == Endpoint(IPTester.local(family), 5353))

        let second = Array("and another".utf8)
        t.inject(IPTester.udp(family: family, from: 40000, to: 5353, payload: second))
        #expect(t.stack.nextEvent() == .udpReadable(flow))
        #expect(try t.stack.receive(flow).map { Array($0.payload.readableBytesView) } == second)

        let answer = ByteBuffer(bytes: Array(repeating: 0xA5, count: 1200))
        try t.stack.send(flow, answer, now: t.now)
        let sent = try t.sent()
        try #require(sent.count == 1)
        #expect(sent[0].source == IPTester.local(family) && sent[0].destination == IPTester.remote(family))
        let (header, payload) = try UDPHeader.parse(sent[0].payload, source: sent[0].source, destination: sent[0].destination)
        #expect(header.sourcePort == 5353 && header.destinationPort == 40000)
        #expect(payload == answer)
        #expect(t.stack.counters.udpFlowsCreated == 1 && t.stack.udpFlowCount == 1)
        #expect(t.stack.counters.udpNoPorts == 0)

        // Another client port is another flow.
        t.inject(IPTester.udp(family: family, from: 40001, to: 5353, payload: query))
        guard case .udpFlow(let other)? = t.stack.nextEvent() else {
            Issue.record("no second flow")
            return
        }
        #expect(other != flow && t.stack.udpFlowCount == 2)
    }

    /// Idle flows expire after `udpFlowTimeout` (120 s, RFC 4787 §4.3 REQ-5), flows to port 53 after
    /// `dnsFlowTimeout`; traffic either way restarts the clock (REQ-6); expiry closes the endpoint
    /// and says so.
    @Test func idleFlowsExpire() throws {
        var t = Self.intercepting()
        t.inject(IPTester.udp(family: 4, from: 40000, to: 443, payload: [1]))
        t.inject(IPTester.udp(family: 4, from: 40002, to: 53, payload: [2]))
        guard case .udpFlow(let flow)? = t.stack.nextEvent(), case .udpFlow(let dns)? = t.stack.nextEvent() else {
            Issue.record("no flows")
            return
        }
        #expect(t.stack.nextEvent() == .udpReadable(flow) && t.stack.nextEvent() == .udpReadable(dns))
        Self.advance(&t, to: 9)
        #expect(t.stack.nextEvent() == nil)
        Self.advance(&t, to: 10)
        #expect(t.stack.nextEvent() == .udpFlowExpired(dns))
        #expect(t.stack.udpStatus(dns) == nil)

        Self.advance(&t, to: 100)
        try t.stack.send(flow, ByteBuffer(bytes: [3]), now: t.now)
        Self.advance(&t, to: 200)
        t.inject(IPTester.udp(family: 4, from: 40000, to: 443, payload: [4]))
        Self.advance(&t, to: 319)
        #expect(t.stack.udpStatus(flow) != nil)
        #expect(t.stack.nextEvent() == .udpReadable(flow))
        #expect(t.stack.nextEvent() == nil)
        Self.advance(&t, to: 320)
        #expect(t.stack.nextEvent() == .udpFlowExpired(flow))
        #expect(t.stack.udpStatus(flow) == nil && t.stack.udpFlowCount == 0)
        #expect(t.stack.counters.udpFlowsExpired == 2)
        #expect(t.stack.nextDeadline == nil)
    }

    /// The flow table is bounded: beyond `maxUDPFlows` a new 5-tuple's datagram is dropped (no ICMP:
    /// the address may well be reachable) and counted; a flow the application closes makes room.
    @Test func flowTableIsBounded() throws {
        let t = Self.intercepting { $0.maxUDPFlows = 2 }
        t.inject(IPTester.udp(family: 4, from: 40000, to: 1000, payload: [1]))
        t.inject(IPTester.udp(family: 4, from: 40001, to: 1000, payload: [1]))
        t.inject(IPTester.udp(family: 4, from: 40002, to: 1000, payload: [1]))
        guard case .udpFlow(let first)? = t.stack.nextEvent(), case .udpFlow(let second)? = t.stack.nextEvent() else {
            Issue.record("no flows")
            return
        }
        #expect(t.stack.nextEvent() == .udpReadable(first) && t.stack.nextEvent() == .udpReadable(second))
        #expect(t.stack.nextEvent() == nil)
        #expect(try t.sent().isEmpty)
        #expect(t.stack.counters.udpFlowTableFull == 1)
        t.stack.close(first)
        t.inject(IPTester.udp(family: 4, from: 40002, to: 1000, payload: [1]))
        guard case .udpFlow? = t.stack.nextEvent() else {
            Issue.record("no room made")
            return
        }
        #expect(t.stack.udpFlowCount == 2)
    }

    /// Echo requests to any address: answered by default, from the address asked (RFC 1122 §3.2.2.6,
    /// RFC 4443 §4.2), with the data byte for byte.
    @Test(arguments: [4, 6]) func echoToAnyAddressIsAnswered(family: Int) throws {
        let t = Self.intercepting()
        let data = Array(0..<56).map { UInt8($0) }
        t.inject(IPTester.echoRequest(family: family, identifier: 9, sequence: 3, data: data))
        let sent = try t.sent()
        try #require(sent.count == 1)
        #expect(sent[0].source == IPTester.local(family) && sent[0].destination == IPTester.remote(family))
        let reply = try Self.echoReply(sent[0])
        #expect(reply.identifier == 9 && reply.sequence == 3 && reply.data == data)
        #expect(t.stack.nextEvent() == nil)
    }

    /// `.deliver`: the application gets the request and answers it; `.drop`: nobody does.
    @Test(arguments: [4, 6]) func echoDeliveredOrDropped(family: Int) throws {
        let t = Self.intercepting { $0.icmpEcho = .deliver }
        let data: [UInt8] = [1, 2, 3, 4]
        t.inject(IPTester.echoRequest(family: family, identifier: 9, sequence: 3, data: data))
        #expect(try t.sent().isEmpty)
        guard case .echoRequest(let request)? = t.stack.nextEvent() else {
            Issue.record("no echo request event")
            return
        }
        #expect(request.source == IPTester.remote(family) && request.destination == IPTester.local(family))
        #expect(request.identifier == 9 && request.sequenceNumber == 3)
        t.stack.answer(request, now: t.now)
        let sent = try t.sent()
        try #require(sent.count == 1)
        #expect(sent[0].source == IPTester.local(family))
        let reply = try Self.echoReply(sent[0])
        #expect(reply.identifier == 9 && reply.sequence == 3 && reply.data == data)
        #expect(t.stack.counters.icmpEchoDelivered == 1)

        let dropping = Self.intercepting { $0.icmpEcho = .drop }
        dropping.inject(IPTester.echoRequest(family: family, data: data))
        #expect(try dropping.sent().isEmpty && dropping.stack.nextEvent() == nil)
        #expect(dropping.stack.counters.icmpEchoDropped == 1)
    }

    struct NotAnEchoReply: Error {}

    static func echoReply(_ ip: IPDatagram) throws -> (identifier: UInt16, sequence: UInt16, data: [UInt8]) {
        switch (ip.source, ip.destination) {
        case (.v4, .v4):
            let packet = try ICMPv4Packet.parse(ip.payload)
            guard case .echoReply(let identifier, let sequence) = packet.message else { throw NotAnEchoReply() }
            return (identifier, sequence, Array(packet.body.readableBytesView))
        case (.v6(let from), .v6(let to)):
            let packet = try ICMPv6Packet.parse(ip.payload, source: from, destination: to)
            guard case .echoReply(let identifier, let sequence) = packet.message else { throw NotAnEchoReply() }
            return (identifier, sequence, Array(packet.body.readableBytesView))
        default:
            throw NotAnEchoReply()
        }
    }
}
