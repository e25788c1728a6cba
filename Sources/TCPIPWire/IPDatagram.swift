import NIOCore

/// One IP datagram with its upper-layer header located.
///
/// `payload` is the input buffer itself (no copy), its indices moved to the upper-layer bytes and
/// trimmed to the length the IP header gives, so link padding never reaches TCP.
public struct IPDatagram: Hashable, Sendable {
    public enum Header: Hashable, Sendable {
        case v4(IPv4Header)
        case v6(IPv6Header)

        /// Whether this is an IPv4 header.
        @inlinable
        public var isV4: Bool {
            if case .v4 = self { true } else { false }
        }
    }

    public var header: Header
    public var source: IPAddress
    public var destination: IPAddress
    /// The protocol of `payload`: for IPv6, the next header after the hop-by-hop, routing and destination-options
    /// headers have been walked.
    public var upperLayerProtocol: UInt8
    /// The upper-layer bytes.
    public var payload: ByteBuffer

    /// The upper-layer bytes, the datagram used up: handed over, where reading `payload` of a datagram
    /// still alive shares its buffer (a retain now, a release when the datagram goes).
    @inlinable
    public consuming func takePayload() -> ByteBuffer {
        payload
    }

    /// The most IPv6 extension headers walked before giving up; real traffic has one or two.
    public static let maximumExtensionHeaders = 8

    public init(
        header: Header, source: IPAddress, destination: IPAddress, upperLayerProtocol: UInt8, payload: ByteBuffer
    ) {
        self.header = header
        self.source = source
        self.destination = destination
        self.upperLayerProtocol = upperLayerProtocol
        self.payload = payload
    }

    /// Parses an IPv4 or IPv6 datagram at `datagram`'s reader index.
    ///
    /// Fragments (IPv4 MF or offset, an IPv6 Fragment header) throw `.fragment`: we do not reassemble.
    /// `verifyChecksum` applies to the IPv4 header checksum.
    ///
    /// `consuming`: the buffer becomes `payload` by moving its indices, where a slice of it cost a
    /// retain and a release per datagram (a caller that keeps its buffer passes a copy).
    public static func parse(_ datagram: consuming ByteBuffer, verifyChecksum: Bool = true) throws(WireError) -> IPDatagram {
        guard datagram.readableBytes > 0 else { throw .truncated }
        // The version and, should it be 4, the rest of IPv4's fixed header in one look at the
        // buffer: each look is a dynamic exclusivity check on its storage (76 instructions).
        let fixed = IPv4Header.FixedFields(datagram)
        switch fixed.versionAndIHL >> 4 {
        case 4:
            let header = try IPv4Header.parse(fixed, of: datagram, verifyChecksum: verifyChecksum)
            guard !header.isFragment else { throw .fragment }
            let payloadLength = Int(header.totalLength) - header.headerLength
            try datagram.narrow(toOffset: header.headerLength, length: payloadLength)
            return IPDatagram(
                header: .v4(header), source: .v4(header.source), destination: .v4(header.destination),
                upperLayerProtocol: header.protocolNumber, payload: datagram
            )
        case 6:
            let header = try IPv6Header.parse(datagram)
            var offset = IPv6Header.length
            let end = IPv6Header.length + Int(header.payloadLength)
            var nextHeader = header.nextHeader
            var walked = 0
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
                    offset += length
                    walked += 1
                case IPProtocolNumber.fragment:
                    throw .fragment
                default:
                    break extensionHeaders
                }
            }
            try datagram.narrow(toOffset: offset, length: end - offset)
            return IPDatagram(
                header: .v6(header), source: .v6(header.source), destination: .v6(header.destination),
                upperLayerProtocol: nextHeader, payload: datagram
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
