import NIOCore

/// The fixed IPv6 header of RFC 8200 §3, as a value.
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |Version| Traffic Class |           Flow Label                  |
///     |         Payload Length        |  Next Header  |   Hop Limit   |
///     |                Source Address (128 bits)                      |
///     |             Destination Address (128 bits)                    |
public struct IPv6Header: Hashable, Sendable {
    /// Octets of the fixed header.
    public static let length = 40

    /// DSCP (high six bits) and ECN (low two bits), RFC 2474 / RFC 3168.
    public var trafficClass: UInt8
    /// The low 20 bits are the flow label.
    public var flowLabel: UInt32
    /// Octets after this header, extension headers included.
    public var payloadLength: UInt16
    /// The header that follows: an extension header or the upper-layer protocol (`IPProtocolNumber`).
    public var nextHeader: UInt8
    /// Hops left: each router decrements it and drops the datagram at zero.
    public var hopLimit: UInt8
    /// The source address.
    public var source: IPv6Address
    /// The destination address.
    public var destination: IPv6Address

    /// A header for `payloadLength` octets after it (extension headers included), the other fields as the
    /// properties of the same name; no traffic class, no flow label.
    public init(
        source: IPv6Address, destination: IPv6Address, nextHeader: UInt8, payloadLength: Int, hopLimit: UInt8 = 64
    ) {
        self.trafficClass = 0
        self.flowLabel = 0
        self.payloadLength = UInt16(truncatingIfNeeded: payloadLength)
        self.nextHeader = nextHeader
        self.hopLimit = hopLimit
        self.source = source
        self.destination = destination
    }

    /// Parses the header at `datagram`'s reader index. Validates the version and that the payload length
    /// fits in the buffer (a longer buffer is fine: link padding).
    public static func parse(_ datagram: ByteBuffer) throws(WireError) -> IPv6Header {
        let available = datagram.readableBytes
        guard available >= length else { throw .truncated }
        let first = datagram.wireUInt32(at: 0)
        guard first >> 28 == 6 else { throw .unsupportedVersion }
        let payloadLength = datagram.wireUInt16(at: 4)
        // DEVIATION(RFC 2675): a zero payload length means an empty payload, not a jumbogram.
        guard Int(payloadLength) <= available - length else { throw .badTotalLength }
        var header = IPv6Header(
            source: IPv6Address(high: datagram.wireUInt64(at: 8), low: datagram.wireUInt64(at: 16)),
            destination: IPv6Address(high: datagram.wireUInt64(at: 24), low: datagram.wireUInt64(at: 32)),
            nextHeader: datagram.wireUInt8(at: 6),
            payloadLength: Int(payloadLength),
            hopLimit: datagram.wireUInt8(at: 7)
        )
        header.trafficClass = UInt8(truncatingIfNeeded: first >> 20)
        header.flowLabel = first & 0x000F_FFFF
        return header
    }

    /// Writes the header into the headroom in front of `buffer`'s readable bytes and moves the reader index
    /// back over it; the payload length is the number of readable bytes.
    ///
    /// - Precondition: `buffer.readerIndex >= 40`, and the payload fits in 65535 octets.
    public func prepend(to buffer: inout ByteBuffer) {
        precondition(buffer.readerIndex >= IPv6Header.length, "no headroom for an IPv6 header")
        let payload = buffer.readableBytes
        precondition(payload <= Int(UInt16.max), "IPv6 payload of \(payload) octets")
        let first = 6 << 28 | UInt32(trafficClass) << 20 | flowLabel & 0x000F_FFFF
        buffer.prependWire(length: IPv6Header.length) { header in
            header.store(first, at: 0)
            header.store(UInt16(payload), at: 4)
            header.store(nextHeader, at: 6)
            header.store(hopLimit, at: 7)
            header.store(source.high, at: 8)
            header.store(source.low, at: 16)
            header.store(destination.high, at: 24)
            header.store(destination.low, at: 32)
        }
    }
}
