import NIOCore
import Testing
import TCPIPWire

@Suite struct ChecksumTests {
    /// RFC 1071 §3, "Numerical Examples": the sum of 00 01 f2 03 f4 f5 f6 f7 is dd f2.
    @Test func rfc1071Example() {
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        var sum = InternetChecksum()
        bytes.withUnsafeBytes { sum.add($0) }
        #expect(sum.checksum == ~UInt16(0xDDF2))
    }

    /// An IPv4 header summed by hand: 4500 + 0073 + 0000 + 4000 + 4011 + c0a8 + 0001 + c0a8 + 00c7
    /// = 0x2479c, folded 0x479e, complemented 0xb861.
    @Test func ipv4HeaderByHand() {
        let header: [UInt8] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
            0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0xC7,
        ]
        var sum = InternetChecksum()
        sum.add(ByteBuffer(bytes: header))
        #expect(sum.checksum == 0xB861)

        var withChecksum = header
        withChecksum[10] = 0xB8
        withChecksum[11] = 0x61
        var verify = InternetChecksum()
        verify.add(ByteBuffer(bytes: withChecksum))
        #expect(verify.checksum == 0)
    }

    @Test func oddLengthPadsWithZero() {
        var sum = InternetChecksum()
        sum.add(ByteBuffer(bytes: [0x01]))
        #expect(sum.checksum == ~UInt16(0x0100))
        var empty = InternetChecksum()
        empty.add(ByteBuffer())
        #expect(empty.checksum == 0xFFFF)
    }

    @Test func wordsAndBytesAgree() {
        var words = InternetChecksum()
        words.add(UInt16(0x0001))
        words.add(UInt16(0xF203))
        var bytes = InternetChecksum()
        bytes.add(ByteBuffer(bytes: [0x00, 0x01, 0xF2, 0x03]))
        #expect(words.checksum == bytes.checksum)
        // After an odd number of bytes, a word continues the byte stream.
        var odd = InternetChecksum()
        odd.add(ByteBuffer(bytes: [0x12]))
        odd.add(UInt16(0x3456))
        #expect(odd.checksum == referenceChecksum([0x12, 0x34, 0x56]))
    }

    /// Every length from 0 to 300, split into chunks at random points (odd ones included), agrees with
    /// the word-at-a-time definition.
    @Test func chunkedSumsMatchReference() {
        var random = WireTestGenerator(seed: 1071)
        for length in 0...300 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            var whole = InternetChecksum()
            bytes.withUnsafeBytes { whole.add($0) }
            #expect(whole.checksum == referenceChecksum(bytes), "length \(length)")

            var chunked = InternetChecksum()
            var start = 0
            while start < length {
                let end = min(length, start + Int.random(in: 0...40, using: &random))
                bytes[start..<end].withUnsafeBytes { chunked.add($0) }
                start = end
            }
            #expect(chunked.checksum == whole.checksum, "length \(length)")
        }
    }

    /// All-ones data makes every eight-byte addition carry out of bit 63.
    @Test func carriesOutOfSixtyFourBits() {
        for length in [8, 64, 4096, 65535] {
            let bytes = [UInt8](repeating: 0xFF, count: length)
            var sum = InternetChecksum()
            bytes.withUnsafeBytes { sum.add($0) }
            #expect(sum.checksum == referenceChecksum(bytes), "length \(length)")
        }
    }

    /// RFC 9293 §3.1: source, destination, zero, protocol, TCP length.
    @Test func ipv4PseudoHeader() {
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: v4Source, destination: v4Destination, protocolNumber: 6, upperLayerLength: 20)
        let bytes: [UInt8] = [198, 18, 0, 1, 198, 18, 0, 2, 0, 6, 0, 20]
        #expect(sum.checksum == referenceChecksum(bytes))
    }

    /// RFC 8200 §8.1: source, destination, 32-bit upper-layer length, three zero octets, next header.
    @Test func ipv6PseudoHeader() {
        var sum = InternetChecksum()
        sum.addPseudoHeader(source: v6Source, destination: v6Destination, protocolNumber: 6, upperLayerLength: 70000)
        var bytes: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
        bytes += [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [2]
        bytes += be32(70000) + [0, 0, 0, 6]
        #expect(sum.checksum == referenceChecksum(bytes))
    }
}
