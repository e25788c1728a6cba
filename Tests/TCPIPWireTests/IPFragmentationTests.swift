import NIOCore
import TCPIPWire
import Testing

/// The fragment wire parts: `IPDatagram.parse(keepingFragments:)`, the IPv6 Fragment header, and
/// output fragmentation (RFC 791 §3.2, RFC 8200 §4.5).
@Suite struct IPFragmentationTests {
    static let source = IPv4Address(198, 18, 0, 2)
    static let destination = IPv4Address(198, 18, 0, 1)

    static func ipv4(payloadLength: Int, options: [UInt8] = [], dontFragment: Bool = false) -> ByteBuffer {
        var header: [UInt8] = [0x45, 0, 0, 0, 0xAB, 0xCD, dontFragment ? 0x40 : 0, 0, 64, 17, 0, 0,
                               198, 18, 0, 2, 198, 18, 0, 1] + options
        header[0] = 0x40 | UInt8(header.count / 4)
        let total = header.count + payloadLength
        header[2] = UInt8(total >> 8)
        header[3] = UInt8(total & 0xFF)
        var buffer = ByteBuffer(bytes: header + (0..<payloadLength).map { UInt8(truncatingIfNeeded: $0 % 253) })
        var sum = InternetChecksum()
        buffer.withUnsafeReadableBytes { sum.add(UnsafeRawBufferPointer(rebasing: $0[0..<header.count])) }
        buffer.setInteger(sum.checksum, at: 10)
        return buffer
    }

    @Test func parseKeepsIPv4FragmentsOnlyWhenAsked() throws {
        let fragments = try IPFragmentation.fragment(Self.ipv4(payloadLength: 2000), mtu: 1000, identification: 0x1_ABCD)
        #expect(fragments.count == 3)
        for fragment in fragments {
            #expect(throws: WireError.fragment) { try IPDatagram.parse(fragment) }
        }
        let second = try IPDatagram.parse(fragments[1], keepingFragments: true)
        let info = try #require(second.fragment)
        #expect(info.identification == 0xABCD && info.offset == 976 && info.moreFragments && info.headerLength == 20)
        #expect(second.payload.readableBytes == 976 && second.upperLayerProtocol == 17)
        let last = try IPDatagram.parse(fragments[2], keepingFragments: true)
        #expect(last.fragment?.moreFragments == false && last.fragment?.offset == 1952 && last.payload.readableBytes == 48)
        // A whole datagram has no fragment info.
        #expect(try IPDatagram.parse(Self.ipv4(payloadLength: 10), keepingFragments: true).fragment == nil)
    }

    /// RFC 791 §3.2: each fragment within the MTU, data in multiples of 8 but the last, offsets
    /// contiguous, MF on all but the last, a valid header checksum on each.
    @Test(arguments: [68, 100, 576, 1006, 1500])
    func ipv4FragmentsAreWellFormed(mtu: Int) throws {
        let original = Self.ipv4(payloadLength: 5000)
        let fragments = try IPFragmentation.fragment(original, mtu: mtu, identification: 7)
        var expectedOffset = 0
        var data: [UInt8] = []
        for (index, fragment) in fragments.enumerated() {
            #expect(fragment.readableBytes <= mtu)
            let header = try IPv4Header.parse(fragment, verifyChecksum: true)
            let length = Int(header.totalLength) - header.headerLength
            #expect(Int(header.fragmentOffset) * 8 == expectedOffset)
            #expect(header.moreFragments == (index < fragments.count - 1))
            #expect(header.identification == 7 && !header.dontFragment && header.protocolNumber == 17)
            if header.moreFragments { #expect(length % 8 == 0) }
            expectedOffset += length
            data += fragment.readableBytesView.dropFirst(header.headerLength)
        }
        #expect(data == Array(original.readableBytesView.dropFirst(20)))
    }

    /// RFC 791 §3.1: options with the copied flag go into every fragment, the others only into the first.
    @Test func onlyCopiedOptionsFollowIntoLaterFragments() throws {
        // Router Alert (148, copied) and Record Route (7, not copied), then End of Option List.
        let options: [UInt8] = [148, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0]
        let fragments = try IPFragmentation.fragment(Self.ipv4(payloadLength: 1000, options: options), mtu: 576, identification: 1)
        #expect(try IPv4Header.parse(fragments[0]).headerLength == 32)
        #expect(Array(fragments[0].readableBytesView.dropFirst(20).prefix(12)) == options)
        let later = try IPv4Header.parse(fragments[1])
        #expect(later.headerLength == 24)
        #expect(Array(fragments[1].readableBytesView.dropFirst(20).prefix(4)) == [148, 4, 0, 0])
    }

    @Test func refusals() throws {
        #expect(throws: FragmentationError.dontFragment) {
            try IPFragmentation.fragment(Self.ipv4(payloadLength: 2000, dontFragment: true), mtu: 1500, identification: 1)
        }
        #expect(throws: FragmentationError.mtuTooSmall) {
            try IPFragmentation.fragment(Self.ipv4(payloadLength: 2000), mtu: 27, identification: 1)
        }
        #expect(throws: FragmentationError.malformed(.truncated)) {
            try IPFragmentation.fragment(ByteBuffer(), mtu: 1500, identification: 1)
        }
        // DF does not matter when nothing needs cutting.
        #expect(try IPFragmentation.fragment(Self.ipv4(payloadLength: 100, dontFragment: true), mtu: 1500, identification: 1).count == 1)
    }

    static func ipv6(chain: [UInt8], payloadLength: Int) -> ByteBuffer {
        var bytes: [UInt8] = [0x60, 0, 0, 0, 0, 0, chain.first ?? 17, 64]
        bytes += [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [2]
        bytes += [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
        for (index, kind) in chain.enumerated() {
            let next = index + 1 < chain.count ? chain[index + 1] : 17
            bytes += kind == IPProtocolNumber.routing ? [next, 0, 0, 0, 0, 0, 0, 0] : [next, 0, 1, 4, 0, 0, 0, 0]
        }
        bytes += (0..<payloadLength).map { UInt8(truncatingIfNeeded: $0 % 253) }
        let payload = bytes.count - 40
        bytes[4] = UInt8(payload >> 8)
        bytes[5] = UInt8(payload & 0xFF)
        return ByteBuffer(bytes: bytes)
    }

    /// RFC 8200 §4.5: the Unfragmentable Part (through the Routing header, else the Hop-by-Hop
    /// header) is repeated in each fragment, followed by a Fragment header naming the first header
    /// of the Fragmentable Part.
    @Test func ipv6FragmentsCarryTheUnfragmentablePart() throws {
        let hbh = IPProtocolNumber.hopByHop, dst = IPProtocolNumber.destinationOptions, rt = IPProtocolNumber.routing
        let original = Self.ipv6(chain: [hbh, dst, rt, dst], payloadLength: 4000)
        let fragments = try IPFragmentation.fragment(original, mtu: 1280, identification: 0xDEAD_BEEF)
        var expectedOffset = 0
        for (index, fragment) in fragments.enumerated() {
            #expect(fragment.readableBytes <= 1280)
            let parsed = try IPDatagram.parse(fragment, keepingFragments: true)
            let info = try #require(parsed.fragment)
            #expect(info.headerLength == 40 + 24 + 8 && info.nextHeaderField == 40 + 16)
            #expect(info.identification == 0xDEAD_BEEF && info.offset == expectedOffset)
            #expect(info.moreFragments == (index < fragments.count - 1))
            #expect(parsed.upperLayerProtocol == dst)
            // The routing header now names the Fragment header.
            #expect(fragment.getInteger(at: 56, as: UInt8.self) == IPProtocolNumber.fragment)
            #expect(Array(fragment.readableBytesView.prefix(56).dropFirst(8)) == Array(original.readableBytesView.prefix(56).dropFirst(8)))
            expectedOffset += parsed.payload.readableBytes
        }
        #expect(expectedOffset == original.readableBytes - 64)
        // Without extension headers the fixed header's Next Header is rewritten.
        let plain = try IPFragmentation.fragment(Self.ipv6(chain: [], payloadLength: 3000), mtu: 1280, identification: 1)
        #expect(plain.count == 3)
        #expect(plain.allSatisfy { $0.getInteger(at: 6, as: UInt8.self) == IPProtocolNumber.fragment })
        #expect(try IPDatagram.parse(plain[0], keepingFragments: true).upperLayerProtocol == 17)
    }

    /// RFC 6946: offset 0 and M clear — an atomic fragment is a whole datagram; the chain is walked on.
    @Test func atomicFragmentParsesAsAWholeDatagram() throws {
        var bytes = Array(Self.ipv6(chain: [], payloadLength: 20).readableBytesView)
        bytes[6] = IPProtocolNumber.fragment
        bytes.insert(contentsOf: IPv6FragmentHeader(nextHeader: IPProtocolNumber.destinationOptions, offset: 0,
                                                    moreFragments: false, identification: 5).bytes + [17, 0, 1, 4, 0, 0, 0, 0], at: 40)
        bytes[5] += 16
        let parsed = try IPDatagram.parse(ByteBuffer(bytes: bytes), keepingFragments: true)
        #expect(parsed.fragment?.isAtomic == true)
        #expect(parsed.upperLayerProtocol == 17 && parsed.payload.readableBytes == 20)
        // Two Fragment headers in one chain are malformed (RFC 8200 §4.1).
        var twice = bytes
        twice[48] = IPProtocolNumber.fragment
        twice.replaceSubrange(56..<64, with: IPv6FragmentHeader(nextHeader: 17, offset: 0, moreFragments: false, identification: 6).bytes)
        #expect(throws: WireError.badExtensionHeader) { try IPDatagram.parse(ByteBuffer(bytes: twice), keepingFragments: true) }
        // Without `keepingFragments`, as before: a fragment.
        #expect(throws: WireError.fragment) { try IPDatagram.parse(ByteBuffer(bytes: bytes)) }
    }

    @Test func fragmentHeaderRoundTrip() {
        let header = IPv6FragmentHeader(nextHeader: 6, offset: 65_528, moreFragments: true, identification: 0x0102_0304)
        #expect(header.bytes == [6, 0, 0xFF, 0xF9, 1, 2, 3, 4])
        #expect(IPv6FragmentHeader(ByteBuffer(bytes: header.bytes), at: 0) == header)
    }
}
