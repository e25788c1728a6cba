import NIOCore
import Testing
import TCPIP
import TCPIPWire

@Suite struct UDPStackTests {
    /// A wildcard endpoint receives on every address with the source and the address it was sent to,
    /// and answers from that address; every byte arrives as sent.
    @Test(arguments: [4, 6]) func boundEndpointReceivesAndAnswers(family: Int) throws {
        let t = IPTester()
        let server = try t.stack.bindUDP(port: 7)
        let data = Array("ping over UDP".utf8)
        t.inject(IPTester.udp(family: family, from: 40000, to: 7, payload: data))
        #expect(t.stack.nextEvent() == .udpReadable(server))
        let datagram = try #require(try t.stack.receive(server))
        #expect(datagram.source == Endpoint(IPTester.remote(family), 40000))
        #expect(datagram.destination == Endpoint(IPTester.local(family), 7))
        #expect(Array(datagram.payload.readableBytesView) == data)
        #expect(try t.stack.receive(server) == nil)

        try t.stack.send(server, datagram.payload, to: datagram.source, from: datagram.destination.address, now: t.now)
        let sent = try t.sent()
        try #require(sent.count == 1)
        #expect(sent[0].source == IPTester.local(family) && sent[0].destination == IPTester.remote(family))
        let (header, payload) = try UDPHeader.parse(sent[0].payload, source: sent[0].source, destination: sent[0].destination)
        #expect(header.sourcePort == 7 && header.destinationPort == 40000)
        #expect(header.checksum != 0)
        #expect(Array(payload.readableBytesView) == data)
        #expect(t.stack.counters.udpInDatagrams == 1 && t.stack.counters.udpOutDatagrams == 1)
    }

    /// A specific binding wins over the wildcard of another family's address, and overlapping binds
    /// are refused.
    @Test func bindingsOverlapAsSocketsDo() throws {
        let t = IPTester()
        _ = try t.stack.bindUDP(port: 53, address: IPTester.local(4))
        #expect(throws: UDPError.addressInUse) { try t.stack.bindUDP(port: 53) }
        #expect(throws: UDPError.addressInUse) { try t.stack.bindUDP(port: 53, address: IPTester.local(4)) }
        let v6 = try t.stack.bindUDP(port: 53, address: IPTester.local(6))
        #expect(throws: UDPError.addressUnavailable) { try t.stack.bindUDP(port: 54, address: .v4(IPv4Address(10, 0, 0, 1))) }
        t.stack.close(v6)
        _ = try t.stack.bindUDP(port: 53, address: IPTester.local(6))
    }

    /// A connected endpoint takes only its peer's datagrams; another source gets port unreachable.
    @Test func connectedEndpointFiltersByPeer() throws {
        let t = IPTester()
        let client = try t.stack.connectUDP(to: Endpoint(IPTester.remote(4), 53))
        let port = try #require(t.stack.udpStatus(client)).localPort
        #expect((49152...65535).contains(port))
        try t.stack.send(client, ByteBuffer(string: "query"), now: t.now)
        let query = try #require(try t.sent().first)
        let (header, _) = try UDPHeader.parse(query.payload, source: query.source, destination: query.destination)
        #expect(header.sourcePort == port && header.destinationPort == 53)

        t.inject(IPTester.udp(family: 4, from: 53, to: port, payload: [1]))
        t.inject(IPTester.udp(family: 4, from: 54, to: port, payload: [2]))
        #expect(try t.stack.receive(client)?.payload == ByteBuffer(bytes: [1]))
        #expect(try t.stack.receive(client) == nil)
        #expect(t.stack.counters.udpNoPorts == 1)
        #expect(try t.sent().count == 1)     // the port unreachable for port 54's datagram
    }

    /// RFC 1122 §4.1.3.3: port unreachable for a connected endpoint's datagram surfaces once, as
    /// ECONNREFUSED does, on the next receive.
    @Test(arguments: [4, 6]) func portUnreachableIsAnErrorOnTheNextReceive(family: Int) throws {
        let t = IPTester()
        let client = try t.stack.connectUDP(to: Endpoint(IPTester.remote(family), 9))
        try t.stack.send(client, ByteBuffer(string: "anyone?"), now: t.now)
        let ours = try #require(t.stack.nextPacketToSend())
        let error = if family == 4 {
            PacketBuffer.icmpv4Datagram(
                message: .destinationUnreachable(.portUnreachable, nextHopMTU: 0), body: ours,
                source: IPTester.remote4, destination: IPTester.local4)
        } else {
            PacketBuffer.icmpv6Datagram(
                message: .destinationUnreachable(.portUnreachable), body: ours,
                source: IPTester.remote6, destination: IPTester.local6)
        }
        t.inject(error)
        #expect(t.stack.nextEvent() == .udpReadable(client))
        #expect(throws: UDPError.connectionRefused) { try t.stack.receive(client) }
        #expect(try t.stack.receive(client) == nil)
    }

    /// The receive queue is bounded by the storage its datagrams pin; drops are counted.
    @Test func receiveQueueIsBoundedByPinnedBytes() throws {
        let t = IPTester { $0.udp.receiveBufferSize = 16 * 1024 }
        let server = try t.stack.bindUDP(port: 7)
        for index in 0..<100 {
            t.inject(IPTester.udp(family: 4, to: 7, payload: [UInt8](repeating: UInt8(index), count: 1000)))
        }
        let status = try #require(t.stack.udpStatus(server))
        #expect(status.queuedPinnedBytes <= 16 * 1024)
        #expect(status.queuedDatagrams > 0 && status.queuedDatagrams < 100)
        #expect(status.drops == UInt64(100 - status.queuedDatagrams))
        #expect(t.stack.counters.udpReceiveBufferErrors == status.drops)
        // What was queued is the first datagrams, in order and intact.
        var index = 0
        while let datagram = try t.stack.receive(server) {
            #expect(datagram.payload == ByteBuffer(bytes: [UInt8](repeating: UInt8(index), count: 1000)))
            index += 1
        }
        #expect(index == status.queuedDatagrams)
        #expect(t.stack.udpStatus(server)?.queuedPinnedBytes == 0)
    }

    /// RFC 768: a datagram to a closed port gets port unreachable quoting it; bad checksums and
    /// IPv6 zero checksums are dropped silently.
    @Test func closedPortsAndBadDatagrams() throws {
        let t = IPTester()
        let offending = IPTester.udp(family: 6, to: 9, payload: [1, 2, 3])
        t.inject(offending)
        let sent = try t.sent()
        try #require(sent.count == 1)
        guard case .v6(let from) = sent[0].source, case .v6(let to) = sent[0].destination else { return }
        let error = try ICMPv6Packet.parse(sent[0].payload, source: from, destination: to)
        #expect(error.message == .destinationUnreachable(.portUnreachable))
        #expect(error.body == offending)

        _ = try t.stack.bindUDP(port: 7)
        var zero = IPTester.udp(family: 6, to: 7, payload: [1])
        zero.setInteger(UInt16(0), at: zero.readerIndex + 46)
        t.inject(zero)
        var corrupt = IPTester.udp(family: 4, to: 7, payload: [1])
        corrupt.setInteger(UInt8(2), at: corrupt.writerIndex - 1)
        t.inject(corrupt)
        #expect(try t.sent().isEmpty)
        #expect(t.stack.counters.udpInChecksumErrors == 2 && t.stack.counters.udpInDatagrams == 0)
    }

    /// A datagram larger than the MTU goes out in fragments that reassemble to it; one larger than
    /// UDP can carry is a typed error.
    @Test(arguments: [4, 6]) func oversizeDatagramsAreFragmentedOrRefused(family: Int) throws {
        let t = IPTester()
        let client = try t.stack.connectUDP(to: Endpoint(IPTester.remote(family), 7))
        var random = SeededGenerator(seed: 8200)
        let data = (0..<30_000).map { _ in UInt8.random(in: 0...255, using: &random) }
        try t.stack.send(client, ByteBuffer(bytes: data), now: t.now)
        var fragments: [ByteBuffer] = []
        while let fragment = t.stack.nextPacketToSend() { fragments.append(fragment) }
        #expect(fragments.count == 21 && fragments.allSatisfy { $0.readableBytes <= 1500 })
        // The peer reassembles them: a second stack at the peer's addresses with an endpoint on port 7.
        let peer = Stack(StackConfiguration(addresses: [IPTester.remote(4), IPTester.remote(6)]))
        let server = try peer.bindUDP(port: 7)
        for fragment in fragments.reversed() { peer.receive(fragment, now: t.now) }
        let datagram = try #require(try peer.receive(server))
        #expect(Array(datagram.payload.readableBytesView) == data)

        let largest = family == 4 ? 65_507 : 65_527
        #expect(throws: UDPError.messageTooLong) {
            try t.stack.send(client, ByteBuffer(bytes: [UInt8](repeating: 1, count: largest + 1)), now: t.now)
        }
    }

    /// UDP draws ephemeral ports from TCP's allocator (RFC 6056 Algorithm 4): in the configured
    /// range and never one already bound.
    @Test func ephemeralPortsComeFromTCPsAllocator() throws {
        let t = IPTester()
        var ports: Set<UInt16> = []
        for _ in 0..<200 {
            let udp = try t.stack.bindUDP()
            let port = try #require(t.stack.udpStatus(udp)).localPort
            #expect(t.stack.configuration.ephemeralPorts.contains(port))
            #expect(ports.insert(port).inserted, "port \(port) handed out twice")
        }
        let tcp = try t.stack.connect(to: Endpoint(IPTester.remote(4), 80), now: t.now)
        #expect(t.stack.configuration.ephemeralPorts.contains(try #require(t.stack.status(tcp)).local.port))
    }
}
