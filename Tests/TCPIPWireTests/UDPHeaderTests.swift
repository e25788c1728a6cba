import NIOCore
import Testing
import TCPIPWire

@Suite struct UDPHeaderTests {
    /// "hello" from 198.18.0.1:5000 to 198.18.0.2:7, and over IPv6 between 2001:db8::1 and ::2: checksums
    /// summed word by word (RFC 1071) over pseudo-header, header and data, independently of the stack.
    @Test func knownChecksumVectors() throws {
        for (source, destination, expected) in [(v4Source, v4Destination, UInt16(0x1C4B)),
                                               (v6Source, v6Destination, UInt16(0x4CFE))] {
            var buffer = PacketBuffer.make(payloadCapacity: 5)
            buffer.writeString("hello")
            UDPHeader(sourcePort: 5000, destinationPort: 7).prepend(to: &buffer, source: source, destination: destination)
            #expect(buffer.bytes == be16(5000) + be16(7) + be16(13) + be16(expected) + Array("hello".utf8))
            let (header, payload) = try UDPHeader.parse(buffer, source: source, destination: destination)
            #expect(header.checksum == expected)
            #expect(String(buffer: payload) == "hello")
        }
    }

    @Test func roundTripTrimsIPPaddingAndChecksAgainstReference() throws {
        var random = WireTestGenerator(seed: 768)
        for length in [0, 1, 7, 8, 9, 255, 1472] {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            for (source, destination) in [(v4Source, v4Destination), (v6Source, v6Destination)] {
                var buffer = PacketBuffer.make(payloadCapacity: length + 3)
                buffer.writeBytes(data)
                UDPHeader(sourcePort: 40000, destinationPort: 53).prepend(to: &buffer, source: source, destination: destination)
                buffer.writeBytes([0xEE, 0xEE, 0xEE])    // link padding beyond the UDP length
                let (header, payload) = try UDPHeader.parse(buffer, source: source, destination: destination)
                #expect(header.sourcePort == 40000 && header.destinationPort == 53)
                #expect(Int(header.length) == 8 + length)
                #expect(payload.bytes == data)
                #expect(header.checksum != 0)
            }
        }
    }

    /// RFC 768: a checksum that computes to zero is sent as all ones.
    @Test func computedZeroIsSentAsAllOnes() throws {
        // Find data whose checksum computes to zero by fixing its last word.
        var buffer = PacketBuffer.make(payloadCapacity: 2)
        buffer.writeInteger(UInt16(0))
        UDPHeader(sourcePort: 1, destinationPort: 2).prepend(to: &buffer, source: v4Source, destination: v4Destination)
        let checksum = buffer.getInteger(at: buffer.readerIndex + 6, as: UInt16.self)!
        // Adding `checksum` to the data makes the sum all ones, so the checksum computes to zero.
        var zeroing = PacketBuffer.make(payloadCapacity: 2)
        zeroing.writeInteger(checksum == 0xFFFF ? 0 : checksum)
        UDPHeader(sourcePort: 1, destinationPort: 2).prepend(to: &zeroing, source: v4Source, destination: v4Destination)
        #expect(zeroing.getInteger(at: zeroing.readerIndex + 6, as: UInt16.self) == 0xFFFF)
        _ = try UDPHeader.parse(zeroing, source: v4Source, destination: v4Destination)
    }

    /// RFC 1122 §4.1.3.4: zero means no checksum over IPv4, accepted; RFC 8200 §8.1: dropped over IPv6.
    @Test func zeroChecksumAcceptedOverIPv4DroppedOverIPv6() throws {
        let bytes = be16(9) + be16(9) + be16(10) + be16(0) + [1, 2]
        let (_, payload) = try UDPHeader.parse(ByteBuffer(bytes: bytes), source: v4Source, destination: v4Destination)
        #expect(payload.bytes == [1, 2])
        #expect(throws: WireError.missingChecksum) {
            try UDPHeader.parse(ByteBuffer(bytes: bytes), source: v6Source, destination: v6Destination)
        }
    }

    @Test func badLengthsAndChecksumsAreTypedErrors() {
        #expect(throws: WireError.truncated) {
            try UDPHeader.parse(ByteBuffer(bytes: [0, 1, 0, 2, 0]), source: v4Source, destination: v4Destination)
        }
        for length: UInt16 in [0, 7, 11] {
            #expect(throws: WireError.badLength) {
                try UDPHeader.parse(ByteBuffer(bytes: be16(1) + be16(2) + be16(length) + be16(0) + [1, 2]),
                                    source: v4Source, destination: v4Destination)
            }
        }
        var buffer = PacketBuffer.make(payloadCapacity: 4)
        buffer.writeBytes([1, 2, 3, 4])
        UDPHeader(sourcePort: 1, destinationPort: 2).prepend(to: &buffer, source: v6Source, destination: v6Destination)
        buffer.setInteger(UInt8(9), at: buffer.writerIndex - 1)
        #expect(throws: WireError.badChecksum) {
            try UDPHeader.parse(buffer, source: v6Source, destination: v6Destination)
        }
    }

    @Test func descriptionIsTcpdumps() {
        var header = UDPHeader(sourcePort: 5000, destinationPort: 7)
        header.length = 13
        #expect(header.description == "UDP, length 5")
    }
}
