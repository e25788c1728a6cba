import NIOCore
import Testing
import TCPIPWire

@Suite struct IPv4HeaderTests {
    /// The header of ChecksumTests.ipv4HeaderByHand, parsed.
    @Test func parsesKnownHeader() throws {
        let header: [UInt8] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xB8, 0x61,
            0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0xC7,
        ]
        let parsed = try IPv4Header.parse(ByteBuffer(bytes: header + [UInt8](repeating: 0, count: 0x73 - 20)))
        #expect(parsed.totalLength == 0x73)
        #expect(parsed.protocolNumber == IPProtocolNumber.udp)
        #expect(parsed.timeToLive == 64)
        #expect(parsed.dontFragment && !parsed.moreFragments && !parsed.isFragment)
        #expect(parsed.headerChecksum == 0xB861)
        #expect(parsed.source == IPv4Address(192, 168, 0, 1))
        #expect(parsed.destination == IPv4Address(192, 168, 0, 199))
        #expect(parsed.headerLength == 20)
    }

    @Test func roundTrip() throws {
        var buffer = PacketBuffer.make(payloadCapacity: 100)
        buffer.writeBytes([UInt8](repeating: 0xAB, count: 100))
        var header = IPv4Header(
            source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocolNumber: 6,
            payloadLength: 100, timeToLive: 17, identification: 0xBEEF, dontFragment: false, typeOfService: 0xB8
        )
        header.prepend(to: &buffer)
        #expect(buffer.readerIndex == PacketBuffer.headroom - 20)
        #expect(buffer.readableBytes == 120)
        var parsed = try IPv4Header.parse(buffer)
        #expect(parsed.headerChecksum != 0)
        parsed.headerChecksum = 0
        header.totalLength = 120
        #expect(parsed == header)
    }

    @Test func skipsOptions() throws {
        let datagram = rawIPv4(options: [1, 1, 1, 0], payload: [9, 8, 7])
        let header = try IPv4Header.parse(datagram)
        #expect(header.headerLength == 24)
        let parsed = try IPDatagram.parse(datagram)
        #expect(parsed.payload.bytes == [9, 8, 7])
    }

    @Test func truncated() {
        let datagram = rawIPv4(payload: [1, 2, 3])
        for length in 0..<IPv4Header.minimumLength {
            let prefix = datagram.getSlice(at: 0, length: length)!
            #expect(throws: WireError.truncated) { try IPv4Header.parse(prefix) }
            #expect(throws: WireError.truncated) { try IPDatagram.parse(prefix) }
        }
    }

    @Test func badVersion() {
        #expect(throws: WireError.unsupportedVersion) { try IPv4Header.parse(rawIPv4(version: 6)) }
        #expect(throws: WireError.unsupportedVersion) { try IPDatagram.parse(rawIPv4(version: 5)) }
    }

    @Test func badHeaderLength() {
        #expect(throws: WireError.badHeaderLength) { try IPv4Header.parse(rawIPv4(ihl: 4)) }
        #expect(throws: WireError.badHeaderLength) { try IPv4Header.parse(rawIPv4(ihl: 0)) }
        // IHL 15 says 60 octets; there are 24.
        #expect(throws: WireError.badHeaderLength) { try IPv4Header.parse(rawIPv4(ihl: 15, payload: [0, 0, 0, 0])) }
    }

    @Test func totalLengthLies() throws {
        #expect(throws: WireError.badTotalLength) { try IPv4Header.parse(rawIPv4(totalLength: 19)) }
        #expect(throws: WireError.badTotalLength) { try IPv4Header.parse(rawIPv4(totalLength: 0)) }
        #expect(throws: WireError.badTotalLength) { try IPv4Header.parse(rawIPv4(totalLength: 24, payload: [1, 2, 3])) }
        // IHL 6 with a total length of 20: shorter than the header.
        #expect(throws: WireError.badTotalLength) {
            try IPv4Header.parse(rawIPv4(totalLength: 20, options: [1, 1, 1, 1], payload: [1]))
        }
        // Link padding beyond the total length is trimmed off the payload.
        let padded = try IPDatagram.parse(rawIPv4(payload: [1, 2, 3], padding: 7))
        #expect(padded.payload.bytes == [1, 2, 3])
    }

    @Test func badChecksum() throws {
        var datagram = rawIPv4(payload: [1, 2, 3])
        datagram.setInteger(UInt8(63), at: 8)                  // TTL changed, checksum not updated
        #expect(throws: WireError.badChecksum) { try IPv4Header.parse(datagram) }
        #expect(throws: WireError.badChecksum) { try IPDatagram.parse(datagram) }
        #expect(try IPv4Header.parse(datagram, verifyChecksum: false).timeToLive == 63)
    }

    /// The header checksum of a 20-octet header is summed from the fields already read, of a longer
    /// one from the buffer: a change to any octet of either is caught, and the unchanged ones parse.
    @Test(arguments: [[], [1, 1, 1, 0], [7, 7, 4, 0, 0, 0, 0, 1]] as [[UInt8]])
    func badChecksumAtEveryOctet(_ options: [UInt8]) throws {
        let datagram = rawIPv4(options: options, payload: [1, 2, 3])
        #expect(try IPv4Header.parse(datagram).headerLength == 20 + options.count)
        for offset in 0..<(20 + options.count) {
            // The version, IHL and total length octets have checks of their own before the checksum.
            guard offset != 0, offset != 2, offset != 3 else { continue }
            for bit in 0..<8 {
                var corrupt = datagram
                corrupt.setInteger(datagram.getInteger(at: offset, as: UInt8.self)! ^ UInt8(1 << bit), at: offset)
                #expect(throws: WireError.badChecksum) { try IPv4Header.parse(corrupt) }
                #expect(throws: WireError.badChecksum) { try IPDatagram.parse(corrupt) }
            }
        }
    }

    @Test func fragments() throws {
        // More Fragments set.
        #expect(throws: WireError.fragment) { try IPDatagram.parse(rawIPv4(flagsAndOffset: 0x2000, payload: [1])) }
        // A later fragment: offset 185 (1480 octets).
        #expect(throws: WireError.fragment) { try IPDatagram.parse(rawIPv4(flagsAndOffset: 185, payload: [1])) }
        let header = try IPv4Header.parse(rawIPv4(flagsAndOffset: 0x2000 | 185, payload: [1]))
        #expect(header.moreFragments && header.fragmentOffset == 185 && !header.dontFragment && header.isFragment)
        // Neither DF nor MF: a whole datagram.
        #expect(try IPDatagram.parse(rawIPv4(flagsAndOffset: 0, payload: [1])).payload.bytes == [1])
    }

    @Test func datagramAddresses() throws {
        let parsed = try IPDatagram.parse(rawIPv4(protocolNumber: 17, payload: [5]))
        #expect(parsed.source == v4Source)
        #expect(parsed.destination == v4Destination)
        #expect(parsed.upperLayerProtocol == IPProtocolNumber.udp)
        guard case .v4(let header) = parsed.header else {
            Issue.record("expected an IPv4 header")
            return
        }
        #expect(header.totalLength == 21)
    }

    @Test func emptyDatagram() {
        #expect(throws: WireError.truncated) { try IPDatagram.parse(ByteBuffer()) }
    }
}
