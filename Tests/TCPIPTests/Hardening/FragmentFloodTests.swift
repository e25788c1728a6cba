import NIOCore
@testable import TCPIP
import TCPIPSimulation
import TCPIPFuzzing
import TCPIPWire
import Testing

/// Fragment attacks — floods of datagrams that never complete, overlaps, teardrop offsets, 8-octet
/// fragments (some inside 64 KiB buffers), chains beyond 65,535 octets, more than 64 fragments —
/// fed to a stack in the middle of two TCP transfers. The reassembly memory stays under its bound,
/// every attack is counted, and the transfers finish byte for byte.
@Suite struct FragmentFloodTests {
    static let client4 = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    static let server4 = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    static let client6 = IPAddress("2001:db8::1")!
    static let server6 = IPAddress("2001:db8::2")!
    static let memoryLimit = 256 * 1024

    /// A generator of hostile fragments addressed to `target`.
    struct Attack {
        var random: SeededGenerator
        let target: [IPAddress]

        mutating func source(_ ipv6: Bool) -> IPAddress {
            let host = random.next()
            return ipv6 ? .v6(IPv6Address(high: 0x2001_0db8_0000_0000 | (host >> 48), low: host))
                : .v4(IPv4Address(rawValue: 0xC612_0000 | UInt32(truncatingIfNeeded: host & 0xFFFF)))
        }

        mutating func bytes(_ count: Int) -> [UInt8] {
            (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }

        /// One fragment, by hand: any offset, flag, protocol and payload.
        func fragment(from source: IPAddress, to destination: IPAddress, identification: UInt32, offset: Int, more: Bool,
                      protocolNumber: UInt8, payload: [UInt8], capacity: Int = 0) -> ByteBuffer {
            var buffer = PacketBuffer.make(payloadCapacity: max(capacity, payload.count + 8))
            switch (source, destination) {
            case (.v4(let s), .v4(let d)):
                buffer.writeBytes(payload)
                var header = IPv4Header(source: s, destination: d, protocolNumber: protocolNumber, payloadLength: payload.count,
                                        identification: UInt16(truncatingIfNeeded: identification), dontFragment: false)
                header.moreFragments = more
                header.fragmentOffset = UInt16(offset / 8)
                header.prepend(to: &buffer)
            case (.v6(let s), .v6(let d)):
                buffer.writeBytes(IPv6FragmentHeader(nextHeader: protocolNumber, offset: offset, moreFragments: more,
                                                     identification: identification).bytes + payload)
                IPv6Header(source: s, destination: d, nextHeader: IPProtocolNumber.fragment,
                           payloadLength: buffer.readableBytes).prepend(to: &buffer)
            default:
                preconditionFailure("mixed families")
            }
            return buffer
        }

        /// The next attack: a few datagrams.
        mutating func next() -> [ByteBuffer] {
            let ipv6 = random.next() % 2 == 0
            let destination = target[ipv6 ? 1 : 0]
            let from = source(ipv6)
            let identification = UInt32(truncatingIfNeeded: random.next())
            let proto = random.next() % 2 == 0 ? IPProtocolNumber.tcp : IPProtocolNumber.udp
            switch random.next() % 6 {
            case 0:
                // Flood: a fragment of a datagram whose other fragments never come.
                let offset = Int(random.next() % 8000) * 8
                return [fragment(from: from, to: destination, identification: identification, offset: offset, more: true,
                                 protocolNumber: IPProtocolNumber.udp, payload: bytes(1024))]
            case 1:
                // Teardrop: a fragment, then one lying inside it with other bytes.
                return [
                    fragment(from: from, to: destination, identification: identification, offset: 0, more: true,
                             protocolNumber: proto, payload: bytes(1000)),
                    fragment(from: from, to: destination, identification: identification, offset: 24, more: false,
                             protocolNumber: proto, payload: bytes(100)),
                ]
            case 2:
                // 8-octet fragments, each sliced from a 64 KiB buffer.
                return (0..<Int(random.next() % 20 + 1)).map { index in
                    fragment(from: from, to: destination, identification: identification, offset: 16 + index * 8, more: true,
                             protocolNumber: IPProtocolNumber.udp, payload: bytes(8), capacity: 65_536)
                }
            case 3:
                // A chain beyond 65,535 octets.
                return [
                    fragment(from: from, to: destination, identification: identification, offset: 0, more: true,
                             protocolNumber: proto, payload: bytes(1400)),
                    fragment(from: from, to: destination, identification: identification, offset: 65_000, more: false,
                             protocolNumber: proto, payload: bytes(1000)),
                ]
            case 4:
                // More than 64 fragments.
                return (0..<70).map { index in
                    fragment(from: from, to: destination, identification: identification, offset: index * 16, more: true,
                             protocolNumber: IPProtocolNumber.udp, payload: bytes(16))
                }
            default:
                // A tiny first TCP fragment, then one at offset 8.
                return [
                    fragment(from: from, to: destination, identification: identification, offset: 0, more: true,
                             protocolNumber: IPProtocolNumber.tcp, payload: bytes(8)),
                    fragment(from: from, to: destination, identification: identification, offset: 8, more: true,
                             protocolNumber: IPProtocolNumber.tcp, payload: bytes(1000)),
                ]
            }
        }
    }

    @Test func fragmentFloodBesideTCPTransfers() throws {
        let bytesPerConnection = 1_000_000
        let (a, b) = MemoryLink.pair(.init(delay: .milliseconds(2), bandwidthBitsPerSecond: 20_000_000, queueLimitBytes: 256 * 1024, checksumOffload: false))
        var serverConfiguration = StackConfiguration(addresses: [Self.server4, Self.server6], checksumOffload: false, seed: 12)
        serverConfiguration.fragments.memoryLimit = Self.memoryLimit
        let client = Stack(StackConfiguration(addresses: [Self.client4, Self.client6], checksumOffload: false, seed: 11))
        let server = Stack(serverConfiguration)
        let network = VirtualNetwork()
        network.addHost(client, link: a)
        network.addHost(server, link: b)
        let listener = try server.listen(on: 5001, backlog: 8)
        let clients = [try client.connect(to: Endpoint(Self.server4, 5001), now: network.now),
                       try client.connect(to: Endpoint(Self.server6, 5001), now: network.now)]
        var servers: [ConnectionID?] = [nil, nil]
        var written = [0, 0]
        var received = [0, 0]
        var finished = [false, false]
        var mismatch = false
        func expected(_ offset: Int, _ stream: Int, _ length: Int) -> [UInt8] {
            (0..<length).map { UInt8(truncatingIfNeeded: (offset + $0 + stream * 37) % 251) }
        }

        func pump() {
            network.settle()
            while let id = server.accept(listener) {
                let remote = server.status(id)!.remote
                if let index = clients.firstIndex(where: { client.status($0)?.local == remote }) { servers[index] = id }
            }
            while server.nextEvent() != nil {}
            while client.nextEvent() != nil {}
            for index in 0..<2 {
                while written[index] < bytesPerConnection, client.state(clients[index]) == .established {
                    let length = min(16_384, bytesPerConnection - written[index])
                    let taken = (try? client.send(clients[index], ByteBuffer(bytes: expected(written[index], index, length)),
                                                  now: network.now)) ?? 0
                    written[index] += taken
                    if taken < length { break }
                }
                if written[index] == bytesPerConnection, client.state(clients[index]) == .established {
                    try? client.close(clients[index], now: network.now)
                }
                guard let id = servers[index] else { continue }
                readLoop: while true {
                    switch (try? server.read(id, upTo: 65_536, now: network.now)) ?? .endOfStream {
                    case .data(let bytes):
                        if Array(bytes.readableBytesView) != expected(received[index], index, bytes.readableBytes) { mismatch = true }
                        received[index] += bytes.readableBytes
                    case .endOfStream:
                        if !finished[index] { try? server.close(id, now: network.now) }
                        finished[index] = true
                        break readLoop
                    case .wouldBlock:
                        break readLoop
                    }
                }
            }
            network.settle()
        }

        func run(for duration: TimeAmount) {
            let until = network.now + duration
            while network.now < until {
                pump()
                network.advance(notAfter: until)
            }
        }

        run(for: .milliseconds(50))
        #expect(clients.allSatisfy { client.state($0) == .established })
        var attack = Attack(random: SeededGenerator(seed: 18), target: [Self.server4, Self.server6])
        var delivered = 0
        var mostPinned = 0
        while delivered < 50_000 {
            for _ in 0..<200 {
                for datagram in attack.next() {
                    server.receive(datagram, now: network.now)
                    delivered += 1
                }
            }
            while server.nextPacketToSend() != nil {}
            mostPinned = max(mostPinned, server.reassemblyStatus.pinnedBytes)
            #expect(server.reassemblyStatus.pinnedBytes <= Self.memoryLimit)
            run(for: .milliseconds(5))
        }
        #expect(finished.allSatisfy { !$0 }, "the attack should overlap the transfers")
        // Then the transfers run to completion, and the reassembly table empties as its timers run out.
        var rounds = 0
        while !finished.allSatisfy({ $0 }) && rounds < 100_000 {
            pump()
            if !network.advance() { break }
            rounds += 1
        }
        #expect(finished == [true, true])
        #expect(received == [bytesPerConnection, bytesPerConnection])
        #expect(!mismatch)
        network.run(until: network.now + .seconds(61))
        #expect(server.reassemblyStatus.datagrams == 0 && server.reassemblyStatus.pinnedBytes == 0)

        let counters = server.counters
        #expect(mostPinned > Self.memoryLimit / 2, "the flood should have filled the table")
        #expect(counters.ipReassemblyRequired >= UInt64(delivered))
        #expect(counters.ipReassemblyEvictions > 0)
        #expect(counters.ipFragmentOverlaps > 0)
        #expect(counters.ipFragmentsDropped > 0)
        #expect(counters.ipReassemblyTimeouts > 0)
        #expect(counters.ipReassembled == 0, "no hostile datagram should have been completed")
    }

    /// The reassembly fuzz target's seeds reach what they were made for (each replays in
    /// `FuzzRegressionTests` too): real datagrams reassembled, and each attack refused and counted.
    @Test func reassemblyFuzzSeedsReachTheirStates() {
        let seeds = Dictionary(uniqueKeysWithValues: ReassemblyFuzzing.seeds)
        func counters(_ name: String) -> StackCounters {
            seeds[name]!.withUnsafeBytes { ReassemblyFuzzing.run($0) }.counters
        }
        #expect(counters("real-v4").ipReassembled == 2)
        #expect(counters("real-v6").ipReassembled == 2)
        #expect(counters("in-order-v4").ipReassembled == 1)
        #expect(counters("in-order-v6").ipReassembled == 1)
        #expect(counters("overlap").ipFragmentOverlaps == 1)
        #expect(counters("teardrop").ipFragmentOverlaps == 1)
        #expect(counters("tiny-tcp").ipFragmentsDropped == 2)
        #expect(counters("beyond-65535").ipFragmentsDropped == 1)
        #expect(counters("many-fragments").ipReassemblyFailures >= 1)
        let flood = counters("flood-and-time")
        #expect(flood.ipReassembled == 1 && flood.ipReassemblyEvictions > 0 && flood.ipReassemblyTimeouts > 0)
    }
}
