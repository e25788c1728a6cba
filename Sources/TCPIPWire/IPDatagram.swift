import NIOCore

/// One IP datagram with its upper-layer header located.
///
/// `payload` is the input buffer itself (no copy), its indices moved to the upper-layer bytes and
/// trimmed to the length the IP header gives, so link padding never reaches TCP.
public struct IPDatagram: Hashable, Sendable {
    /// The datagram's IP header, of either version.
    public enum Header: Hashable, Sendable {
        /// An IPv4 header (RFC 791).
        case v4(IPv4Header)
        /// An IPv6 header (RFC 8200); its extension headers are walked, not kept.
        case v6(IPv6Header)

        /// Whether this is an IPv4 header.
        @inlinable
        public var isV4: Bool {
            if case .v4 = self { true } else { false }
        }
    }

    /// The IP header as parsed.
    public var header: Header
    /// The source address, of either version.
    public var source: IPAddress
    /// The destination address, of either version.
    public var destination: IPAddress
    /// The protocol of `payload`: for IPv6, the next header after the hop-by-hop, routing and destination-options
    /// headers have been walked.
    public var upperLayerProtocol: UInt8
    /// The upper-layer bytes; of a fragment, its part of the fragmentable bytes.
    public var payload: ByteBuffer
    /// Where this datagram is a fragment of a larger one (parsed with `keepingFragments`), what the
    /// reassembler needs to know; nil for a whole datagram.
    public var fragment: IPFragmentInfo?

    /// The upper-layer bytes, the datagram used up: handed over, where reading `payload` of a datagram
    /// still alive shares its buffer (a retain now, a release when the datagram goes).
    @inlinable
    public consuming func takePayload() -> ByteBuffer {
        payload
    }

    /// The most IPv6 extension headers walked before giving up; real traffic has one or two.
    public static let maximumExtensionHeaders = 8

    /// A datagram with these fields (each as the property of the same name).
    public init(
        header: Header, source: IPAddress, destination: IPAddress, upperLayerProtocol: UInt8, payload: ByteBuffer,
        fragment: IPFragmentInfo? = nil
    ) {
        self.header = header
        self.source = source
        self.destination = destination
        self.upperLayerProtocol = upperLayerProtocol
        self.payload = payload
        self.fragment = fragment
    }

    /// Parses an IPv4 or IPv6 datagram at `datagram`'s reader index.
    ///
    /// Fragments (IPv4 MF or offset, an IPv6 Fragment header) throw `.fragment`, unless
    /// `keepingFragments`: then a fragment parses with `fragment` set, its `payload` the fragment's
    /// part of the fragmentable bytes, and (IPv6) `upperLayerProtocol` the Fragment header's next
    /// header. An IPv6 atomic fragment (offset 0, M clear) is then a whole datagram (RFC 6946 §4),
    /// its chain walked on past the Fragment header, `fragment` set with `isAtomic`.
    /// `verifyChecksum` applies to the IPv4 header checksum.
    ///
    /// `consuming`: the buffer becomes `payload` by moving its indices, where a slice of it cost a
    /// retain and a release per datagram (a caller that keeps its buffer passes a copy). The octets
    /// in front of `payload` stay in the buffer, so the headers of a fragment can be read back.
    public static func parse(
        _ datagram: consuming ByteBuffer, verifyChecksum: Bool = true, keepingFragments: Bool = false
    ) throws(WireError) -> IPDatagram {
        guard datagram.readableBytes > 0 else { throw .truncated }
        // The version and, should it be 4, the rest of IPv4's fixed header in one look at the
        // buffer: each look is a dynamic exclusivity check on its storage (76 instructions).
        let fixed = IPv4Header.FixedFields(datagram)
        switch fixed.versionAndIHL >> 4 {
        case 4:
            let header = try IPv4Header.parse(fixed, of: datagram, verifyChecksum: verifyChecksum)
            var fragment: IPFragmentInfo?
            if header.isFragment {
                guard keepingFragments else { throw .fragment }
                fragment = IPFragmentInfo(
                    identification: UInt32(header.identification), offset: Int(header.fragmentOffset) * 8,
                    moreFragments: header.moreFragments, headerLength: header.headerLength, nextHeaderField: 9)
            }
            let payloadLength = Int(header.totalLength) - header.headerLength
            try datagram.narrow(toOffset: header.headerLength, length: payloadLength)
            return IPDatagram(
                header: .v4(header), source: .v4(header.source), destination: .v4(header.destination),
                upperLayerProtocol: header.protocolNumber, payload: datagram, fragment: fragment
            )
        case 6:
            let header = try IPv6Header.parse(datagram)
            var offset = IPv6Header.length
            let end = IPv6Header.length + Int(header.payloadLength)
            var nextHeader = header.nextHeader
            var nextHeaderField = 6
            var walked = 0
            var fragment: IPFragmentInfo?
            extensionHeaders: while true {
                switch nextHeader {
                case IPProtocolNumber.hopByHop, IPProtocolNumber.routing, IPProtocolNumber.destinationOptions:
                    // RFC 8200 §4.3: Hop-by-Hop Options may only follow the IPv6 header itself.
                    if nextHeader == IPProtocolNumber.hopByHop && walked > 0 { throw .badExtensionHeader }
                    guard walked < maximumExtensionHeaders else { throw .badExtensionHeader }
                    // RFC 8200 §4.3–4.6: next header, then length in 8-octet units not counting the first 8.
                    guard end - offset >= 8 else { throw .badExtensionHeader }
                    let length = (Int(datagram.wireUInt8(at: offset + 1)) + 1) * 8
                    guard length <= end - offset else { throw .badExtensionHeader }
                    // RFC 8200 §4.4: we route nothing, so a routing header with segments left is for
                    // someone else; we can't act on it.
                    if nextHeader == IPProtocolNumber.routing && datagram.wireUInt8(at: offset + 3) != 0 {
                        throw .badExtensionHeader
                    }
                    nextHeader = datagram.wireUInt8(at: offset)
                    nextHeaderField = offset
                    offset += length
                    walked += 1
                case IPProtocolNumber.fragment:
                    // RFC 8200 §4.1: a Fragment header occurs at most once.
                    guard keepingFragments else { throw .fragment }
                    guard fragment == nil, walked < maximumExtensionHeaders else { throw .badExtensionHeader }
                    guard end - offset >= IPv6FragmentHeader.length else { throw .truncated }
                    let fragmentHeader = IPv6FragmentHeader(datagram, at: offset)
                    let info = IPFragmentInfo(
                        identification: fragmentHeader.identification, offset: fragmentHeader.offset,
                        moreFragments: fragmentHeader.moreFragments,
                        headerLength: offset + IPv6FragmentHeader.length, nextHeaderField: nextHeaderField)
                    nextHeader = fragmentHeader.nextHeader
                    nextHeaderField = offset
                    offset += IPv6FragmentHeader.length
                    walked += 1
                    if info.isAtomic {
                        // RFC 6946 §4: processed in isolation, as the whole datagram it is.
                        fragment = info
                        continue extensionHeaders
                    }
                    fragment = info
                    break extensionHeaders
                default:
                    break extensionHeaders
                }
            }
            try datagram.narrow(toOffset: offset, length: end - offset)
            return IPDatagram(
                header: .v6(header), source: .v6(header.source), destination: .v6(header.destination),
                upperLayerProtocol: nextHeader, payload: datagram, fragment: fragment
            )
        default:
            throw .unsupportedVersion
        }
    }
}

extension ByteBuffer {
    /// Makes the readable bytes the `length` octets at `offset` from the reader index (what
    /// `getSlice(at: readerIndex + offset, length:)` returns, without a second reference to the storage).
    @inlinable
    mutating func narrow(toOffset offset: Int, length: Int) throws(WireError) {
        guard offset >= 0, length >= 0, offset <= readableBytes, length <= readableBytes - offset else {
            throw .truncated
        }
        moveWriterIndex(to: readerIndex + offset + length)
        moveReaderIndex(forwardBy: offset)
    }
}
