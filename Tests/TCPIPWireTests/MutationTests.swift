import NIOCore
import Testing
import TCPIPWire

/// Hostile input never traps: seeded random and mutated datagrams through the whole parse path.
@Suite struct MutationTests {
    /// Well-formed datagrams to mutate: both families, options, payloads, IPv6 extension headers.
    private static func seeds() -> [ByteBuffer] {
        var seeds: [ByteBuffer] = []
        var blocks = SACKBlocks()
        blocks.append(SACKBlock(start: SequenceNumber(1), end: SequenceNumber(2)))
        blocks.append(SACKBlock(start: SequenceNumber(3), end: SequenceNumber(4)))
        let optionSets = [
            TCPOptions(),
            TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                       timestamps: TCPTimestamps(value: 1, echoReply: 2)),
            TCPOptions(timestamps: TCPTimestamps(value: 3, echoReply: 4), sackBlocks: blocks),
        ]
        for (source, destination) in [(v4Source, v4Destination), (v6Source, v6Destination)] {
            for options in optionSets {
                for payloadLength in [0, 1, 37] {
                    let header = TCPHeader(
                        sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(0xFFFF_FFF0),
                        acknowledgmentNumber: SequenceNumber(5), flags: [.syn, .ack], window: 100, options: options
                    )
                    let payload = ByteBuffer(bytes: [UInt8](repeating: 0x33, count: payloadLength))
                    seeds.append(PacketBuffer.tcpDatagram(
                        header: header, payload: payload, source: source, destination: destination
                    ))
                }
            }
        }
        let segment = rawTCPSegment(
            options: [2, 4, 5, 0xB4], payload: [1, 2], source: v6Source, destination: v6Destination
        )
        let chain = extensionHeader(next: IPProtocolNumber.routing)
            + extensionHeader(next: IPProtocolNumber.destinationOptions, units: 1)
            + extensionHeader(next: IPProtocolNumber.tcp)
        seeds.append(rawIPv6(nextHeader: IPProtocolNumber.hopByHop, rest: chain + segment.bytes))
        seeds.append(rawIPv4(options: [1, 1, 1, 0], payload: rawTCPSegment(options: [3, 3, 9]).bytes))
        return seeds
    }

    @Test func randomAndMutatedDatagramsNeverTrap() {
        var random = WireTestGenerator(seed: 0x5EED)
        let seeds = MutationTests.seeds()
        var outcomes: [String: Int] = [:]
        for _ in 0..<200_000 {
            var bytes: [UInt8]
            switch Int.random(in: 0..<10, using: &random) {
            case 0:
                // Pure noise, with a plausible version nibble half the time.
                let length = Int.random(in: 0...100, using: &random)
                bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
                if !bytes.isEmpty && Bool.random(using: &random) {
                    bytes[0] = (Bool.random(using: &random) ? 0x40 : 0x60) | (bytes[0] & 0x0F)
                }
            default:
                bytes = seeds[Int.random(in: 0..<seeds.count, using: &random)].bytes
                for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
                    let index = Int.random(in: 0..<bytes.count, using: &random)
                    switch Int.random(in: 0..<4, using: &random) {
                    case 0: bytes[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
                    case 1: bytes[index] = UInt8.random(in: 0...255, using: &random)
                    case 2: bytes[index] = [0, 1, 0xFF, 0x7F, 0x80][Int.random(in: 0..<5, using: &random)]
                    default: bytes.removeLast(Int.random(in: 0...min(bytes.count, 20), using: &random))
                    }
                }
            }
            let verify = Bool.random(using: &random)
            do {
                let datagram = try IPDatagram.parse(ByteBuffer(bytes: bytes), verifyChecksum: verify)
                let (header, payload) = try TCPHeader.parse(
                    datagram.payload, source: datagram.source, destination: datagram.destination, verifyChecksum: verify
                )
                // Whatever parses must describe and re-encode without trapping.
                _ = header.description(payloadLength: payload.readableBytes, sequenceBase: 0xFFFF_FFFF)
                #expect(header.options.encodedLength <= 40)
                #expect(header.options.windowScale.map { $0 <= 14 } ?? true)
                _ = PacketBuffer.tcpDatagram(header: header, payload: payload, source: datagram.source,
                                             destination: datagram.destination)
                outcomes["parsed", default: 0] += 1
            } catch {
                outcomes[error.counterName, default: 0] += 1
            }
        }
        // The mutations reach deep: a good share still parses, and most error kinds turn up.
        #expect(outcomes["parsed", default: 0] > 10_000)
        for name in ["truncated", "unsupported_version", "bad_header_length", "bad_total_length", "bad_checksum",
                     "fragment", "bad_extension_header", "bad_data_offset", "bad_option_length", "invalid_flags"] {
            #expect(outcomes[name, default: 0] > 0, "no \(name) in \(outcomes)")
        }
    }
}
