import NIOCore
import TCPIP
import TCPIPWire

/// The seed corpus of the fuzz targets in `Fuzz/`: real datagrams and segments from our own stacks
/// (the fuzz fixture driven through a transfer, an abort and a close), and event sequences for the
/// stack target that replay them and the attacks of `Tests/TCPIPTests/Hardening/`.
/// `tcpip fuzz-corpus DIR` writes it out; the files are committed under `Fuzz/Corpus/<target>/`.
public enum FuzzCorpus {
    public struct Seed: Sendable {
        public var target: String
        public var name: String
        public var bytes: [UInt8]
    }

    /// The fuzz targets, by the name of their executable's suffix and corpus folder.
    public static let targets = ["ipv4", "ipv6", "datagram", "tcp", "address", "stack", "udp", "icmp", "reassembly", "rules", "filter", "forward"]

    public static func generate() -> [Seed] {
        var seeds: [Seed] = []
        let (datagrams, replay) = recordedTraffic()
        for (index, datagram) in datagrams.enumerated() {
            let bytes = Array(datagram.readableBytesView)
            let name = "sim-\(index)"
            seeds.append(Seed(target: "datagram", name: name, bytes: bytes))
            if bytes.first.map({ $0 >> 4 }) == 4 {
                seeds.append(Seed(target: "ipv4", name: name, bytes: bytes))
            } else {
                seeds.append(Seed(target: "ipv6", name: name, bytes: bytes))
                for (label, chain) in extensionChains {
                    seeds.append(Seed(target: "datagram", name: "\(name)-\(label)", bytes: withExtensionHeaders(bytes, chain)))
                }
            }
            if let ip = try? IPDatagram.parse(datagram, verifyChecksum: false) {
                seeds.append(Seed(target: "tcp", name: name, bytes: Array(ip.payload.readableBytesView)))
            }
        }
        for (index, text) in ["198.18.0.1", "2001:db8::1", "::ffff:198.18.0.1", "fe80::1:2:3:4", "::", "1::", "255.255.255.255",
                              "2001:db8:0:0:1:0:0:1", "::1.2.3.4"].enumerated() {
            seeds.append(Seed(target: "address", name: "text-\(index)", bytes: Array(text.utf8)))
        }
        for (index, datagram) in udpAndICMPDatagrams().enumerated() {
            let bytes = Array(datagram.readableBytesView)
            seeds.append(Seed(target: "datagram", name: "ip-\(index)", bytes: bytes))
            seeds.append(Seed(target: "stack", name: "ip-\(index)", bytes: rawDatagramEvent(datagram)))
            if let ip = try? IPDatagram.parse(datagram, verifyChecksum: false) {
                let target = ip.upperLayerProtocol == IPProtocolNumber.udp ? "udp" : "icmp"
                seeds.append(Seed(target: target, name: "ip-\(index)", bytes: Array(ip.payload.readableBytesView)))
            }
        }
        for (name, text) in RuleFuzzing.seeds {
            seeds.append(Seed(target: "rules", name: name, bytes: Array(text.utf8)))
        }
        seeds.append(Seed(target: "stack", name: "replay", bytes: replay))
        for (name, events) in attackEvents {
            seeds.append(Seed(target: "stack", name: name, bytes: events))
        }
        for (name, events) in ForwardFuzzing.seeds {
            seeds.append(Seed(target: "forward", name: name, bytes: events))
        }
        for (name, events) in ReassemblyFuzzing.seeds {
            seeds.append(Seed(target: "reassembly", name: name, bytes: events))
        }
        return seeds
    }

    /// The fixture driven through more traffic: every datagram either stack sent, and the client's
    /// datagrams to the server as stack-target events (raw datagrams between time steps).
    static func recordedTraffic() -> (datagrams: [ByteBuffer], events: [UInt8]) {
        let fixture = StackFuzzing.Fixture()
        var all: [ByteBuffer] = []
        var events: [UInt8] = []
        func phase(_ body: () -> Void) {
            fixture.record(true)
            body()
            fixture.exchange()
            for datagram in fixture.record(false) {
                all.append(datagram)
                events += rawDatagramEvent(datagram)
            }
            events += [3, 10]
            fixture.advance(by: .milliseconds(100))
            fixture.record(true)
            fixture.exchange()
            for datagram in fixture.record(false) {
                all.append(datagram)
                events += rawDatagramEvent(datagram)
            }
        }
        let client = fixture.client
        phase {
            for id in fixture.clientConnections { _ = try? client.send(id, StackFuzzing.pattern(count: 4000), now: fixture.now) }
        }
        phase {
            for id in fixture.serverConnections { _ = try? fixture.server.send(id, StackFuzzing.pattern(count: 3000), now: fixture.now) }
        }
        phase {
            try? client.close(fixture.clientConnections[0], now: fixture.now)
            client.abort(fixture.clientConnections[1], now: fixture.now)
            _ = try? client.connect(to: Endpoint(StackFuzzing.serverV6, StackFuzzing.port), now: fixture.now)
        }
        phase {
            for id in fixture.serverConnections { try? fixture.server.close(id, now: fixture.now) }
        }
        // What the server sent, for the parsers: the client recorded only its own side.
        let server = StackFuzzing.Fixture()
        _ = try? server.server.send(server.serverConnections[0], StackFuzzing.pattern(count: 1000), now: server.now)
        while let datagram = server.server.nextPacketToSend() { all.append(datagram) }
        return (all, events)
    }

    /// UDP and ICMP datagrams from the client to the fuzz fixture's server: echo requests, UDP to a
    /// closed port, the errors that quote our own datagrams (port unreachable, fragmentation needed,
    /// packet too big, time exceeded), and a protocol nobody speaks.
    static func udpAndICMPDatagrams() -> [ByteBuffer] {
        guard case .v4(let client4) = StackFuzzing.clientV4, case .v4(let server4) = StackFuzzing.serverV4,
              case .v6(let client6) = StackFuzzing.clientV6, case .v6(let server6) = StackFuzzing.serverV6 else { return [] }
        var datagrams: [ByteBuffer] = []
        let data = StackFuzzing.pattern(count: 56)
        datagrams.append(PacketBuffer.icmpv4Datagram(
            message: .echoRequest(identifier: 1, sequenceNumber: 1), body: data, source: client4, destination: server4))
        datagrams.append(PacketBuffer.icmpv6Datagram(
            message: .echoRequest(identifier: 1, sequenceNumber: 1), body: data, source: client6, destination: server6))
        for (client, server) in [(StackFuzzing.clientV4, StackFuzzing.serverV4), (StackFuzzing.clientV6, StackFuzzing.serverV6)] {
            datagrams.append(PacketBuffer.udpDatagram(
                header: UDPHeader(sourcePort: 40000, destinationPort: 53), payload: StackFuzzing.pattern(count: 30),
                source: client, destination: server))
        }
        // What the server sent, as routers and the client quote it back.
        let ours4 = PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: 53, destinationPort: 40000), payload: StackFuzzing.pattern(count: 30),
            source: StackFuzzing.serverV4, destination: StackFuzzing.clientV4)
        let ours6 = PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: 53, destinationPort: 40000), payload: StackFuzzing.pattern(count: 30),
            source: StackFuzzing.serverV6, destination: StackFuzzing.clientV6)
        let segment4 = PacketBuffer.tcpDatagram(
            header: TCPHeader(sourcePort: StackFuzzing.port, destinationPort: 40000, sequenceNumber: SequenceNumber(1),
                              acknowledgmentNumber: SequenceNumber(1), flags: .ack, window: 100),
            payload: StackFuzzing.pattern(count: 100), source: StackFuzzing.serverV4, destination: StackFuzzing.clientV4)
        let segment6 = PacketBuffer.tcpDatagram(
            header: TCPHeader(sourcePort: StackFuzzing.port, destinationPort: 40000, sequenceNumber: SequenceNumber(1),
                              acknowledgmentNumber: SequenceNumber(1), flags: .ack, window: 100),
            payload: StackFuzzing.pattern(count: 100), source: StackFuzzing.serverV6, destination: StackFuzzing.clientV6)
        for (message, quote) in [(ICMPv4Message.destinationUnreachable(.portUnreachable, nextHopMTU: 0), ours4),
                                 (.destinationUnreachable(.fragmentationNeeded, nextHopMTU: 1280), segment4),
                                 (.timeExceeded(code: 0), segment4)] {
            datagrams.append(PacketBuffer.icmpv4Datagram(message: message, body: quote, source: client4, destination: server4))
        }
        for (message, quote) in [(ICMPv6Message.destinationUnreachable(.portUnreachable), ours6),
                                 (.packetTooBig(mtu: 1280), segment6), (.parameterProblem(code: 1, pointer: 6), segment6)] {
            datagrams.append(PacketBuffer.icmpv6Datagram(message: message, body: quote, source: client6, destination: server6))
        }
        var unknown = PacketBuffer.make(payloadCapacity: 20)
        unknown.writeImmutableBuffer(StackFuzzing.pattern(count: 20))
        PacketBuffer.prependIPHeader(
            to: &unknown, source: StackFuzzing.clientV4, destination: StackFuzzing.serverV4, protocolNumber: 253)
        datagrams.append(unknown)
        return datagrams
    }

    static func rawDatagramEvent(_ datagram: ByteBuffer) -> [UInt8] {
        let count = datagram.readableBytes
        return [0, UInt8(count >> 8), UInt8(count & 0xFF)] + Array(datagram.readableBytesView)
    }

    /// op 2: target, flags, seq offset, ack offset, window, options, payload length.
    static func relative(
        _ target: UInt8, _ flags: TCPFlags, seq: Int16, ack: Int16, window: UInt16 = 8192, options: UInt8 = 0, payload: UInt8 = 0
    ) -> [UInt8] {
        let s = UInt16(bitPattern: seq), a = UInt16(bitPattern: ack)
        return [2, target, flags.rawValue, UInt8(s >> 8), UInt8(s & 0xFF), UInt8(a >> 8), UInt8(a & 0xFF),
                UInt8(window >> 8), UInt8(window & 0xFF), options, payload]
    }

    /// The attacks of Tests/TCPIPTests/Hardening/ as event sequences.
    static let attackEvents: [(String, [UInt8])] = [
        ("rst-in-window", relative(0, .rst, seq: 100, ack: 0)),
        ("rst-exact", relative(1, .rst, seq: 0, ack: 0)),
        ("syn-on-established", relative(2, .syn, seq: -5, ack: 0, options: 0x0F)),
        ("unacceptable-ack", relative(0, [.ack, .psh], seq: 0, ack: 20_000, payload: 100)),
        ("one-byte-out-of-order", (1..<200).flatMap { relative(UInt8($0 % 4), .ack, seq: Int16($0 * 2), ack: 0, options: 0x08, payload: 1) }),
        ("sack-and-time", relative(1, .ack, seq: 0, ack: 0, options: 0x18) + [3, 200] + relative(1, .ack, seq: 0, ack: 0, options: 0x18)),
        ("time-wait-rst", [5, 0, 4, 3, 3, 10] + relative(0, .rst, seq: 0, ack: 0) + [3, 255, 3, 255]),
        ("syn-flood", (0..<40).flatMap { relative(4, .syn, seq: Int16($0 * 77), ack: 0, options: UInt8($0)) } + [4, 5]),
        ("cookie-ack", (0..<8).flatMap { _ in relative(4, .syn, seq: 0, ack: 0, options: 0x0F) + relative(4, .ack, seq: 1, ack: 1) }),
        ("closed-port", relative(5, .syn, seq: 0, ack: 0) + relative(5, .ack, seq: 0, ack: 0)),
        ("app-calls", [4, 0x01, 4, 0x0A, 5, 0x13, 4, 0x03, 3, 40, 4, 0x20, 5, 0x04, 3, 255]),
    ]

    /// IPv6 extension-header chains to put in front of TCP: hop-by-hop, destination options, routing
    /// with no segments left, all three.
    static let extensionChains: [(String, [UInt8])] = [
        ("hbh", [IPProtocolNumber.hopByHop]),
        ("dst", [IPProtocolNumber.destinationOptions]),
        ("chain", [IPProtocolNumber.hopByHop, IPProtocolNumber.destinationOptions, IPProtocolNumber.routing]),
    ]

    /// An IPv6 datagram with 8-octet extension headers of the given kinds inserted after the fixed header.
    static func withExtensionHeaders(_ datagram: [UInt8], _ kinds: [UInt8]) -> [UInt8] {
        guard datagram.count >= 40 else { return datagram }
        var result = Array(datagram[0..<40])
        let upper = datagram[6]
        result[6] = kinds[0]
        for (index, kind) in kinds.enumerated() {
            let next = index + 1 < kinds.count ? kinds[index + 1] : upper
            // Options headers: one PadN of 4. A routing header: type 0, no segments left (RFC 8200 §4.4).
            result += kind == IPProtocolNumber.routing ? [next, 0, 0, 0, 0, 0, 0, 0] : [next, 0, 1, 4, 0, 0, 0, 0]
        }
        result += datagram[40...]
        let payloadLength = result.count - 40
        result[4] = UInt8(payloadLength >> 8)
        result[5] = UInt8(payloadLength & 0xFF)
        return result
    }
}
