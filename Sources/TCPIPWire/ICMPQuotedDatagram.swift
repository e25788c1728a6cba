import NIOCore

/// The datagram an ICMP or ICMPv6 error message quotes: the IP header of a datagram we (or someone
/// claiming to be us) sent, and the first octets of its payload.
///
/// RFC 792: "Internet Header + 64 bits of Original Data Datagram"; RFC 1812 §4.3.2.3 and RFC 4443
/// §2.4(c): as much as fits. The quoted header's length fields describe the original datagram, not the
/// quote, so they are not checked against it; the quoted IPv4 header checksum is not verified (Linux
/// does not either: routers rewrite the TTL and some do not fix the checksum).
///
/// Parsing requires at least eight octets of the upper-layer header — the ports of TCP and UDP and
/// the TCP sequence number — as Linux's `icmp_socket_deliver` / `icmpv6_notify` do, because an error
/// that does not say which flow it is about cannot be acted on.
public struct ICMPQuotedDatagram: Hashable, Sendable {
    /// The least of the upper-layer header that must be quoted.
    public static let minimumUpperLayerLength = 8

    /// The quoted IP header. For IPv4, `totalLength` and `headerChecksum` are the original's.
    public var header: IPDatagram.Header
    /// The quoted datagram's source: normally one of our addresses.
    public var source: IPAddress
    /// The quoted datagram's destination: the peer it was sent to.
    public var destination: IPAddress
    /// For IPv6, the next header after the extension headers in the quote have been walked.
    public var upperLayerProtocol: UInt8
    /// The quoted octets of the upper-layer payload: at least `minimumUpperLayerLength`.
    public var upperLayerBytes: ByteBuffer
    /// Whether the quoted datagram was a fragment other than the first, so `upperLayerBytes` do not begin
    /// with a transport header.
    public var isNonFirstFragment: Bool

    /// A quote with these fields (each as the property of the same name).
    public init(
        header: IPDatagram.Header, source: IPAddress, destination: IPAddress, upperLayerProtocol: UInt8,
        upperLayerBytes: ByteBuffer, isNonFirstFragment: Bool = false
    ) {
        self.header = header
        self.source = source
        self.destination = destination
        self.upperLayerProtocol = upperLayerProtocol
        self.upperLayerBytes = upperLayerBytes
        self.isNonFirstFragment = isNonFirstFragment
    }

    /// The quoted TCP or UDP source port (the first two octets of the upper-layer header), or nil when the
    /// quote is a non-first fragment.
    public var sourcePort: UInt16? {
        isNonFirstFragment ? nil : upperLayerBytes.wireUInt16(at: 0)
    }

    /// The quoted TCP or UDP destination port, or nil when the quote is a non-first fragment.
    public var destinationPort: UInt16? {
        isNonFirstFragment ? nil : upperLayerBytes.wireUInt16(at: 2)
    }

    /// The quoted TCP sequence number (octets 4–7), when the quote is of a TCP segment's first octets.
    public var tcpSequenceNumber: SequenceNumber? {
        guard upperLayerProtocol == IPProtocolNumber.tcp, !isNonFirstFragment else { return nil }
        return SequenceNumber(upperLayerBytes.wireUInt32(at: 4))
    }

    /// Parses the quote at `quote`'s reader index; it must be of `family` (4 or 6), the family of the ICMP
    /// message that carries it.
    public static func parse(_ quote: ByteBuffer, family: Int) throws(WireError) -> ICMPQuotedDatagram {
        switch family {
        case 4: return try parseIPv4(quote)
        case 6: return try parseIPv6(quote)
        default: throw .badQuotedDatagram
        }
    }

    static func parseIPv4(_ quote: ByteBuffer) throws(WireError) -> ICMPQuotedDatagram {
        let available = quote.readableBytes
        guard available >= IPv4Header.minimumLength else { throw .badQuotedDatagram }
        let fixed = IPv4Header.FixedFields(quote)
        guard fixed.versionAndIHL >> 4 == 4 else { throw .badQuotedDatagram }
        let headerLength = Int(fixed.versionAndIHL & 0x0F) * 4
        guard headerLength >= IPv4Header.minimumLength, Int(fixed.totalLength) >= headerLength else {
            throw .badQuotedDatagram
        }
        // The quote may be cut short of the original, or padded beyond it: the upper-layer octets are
        // the ones both the quote and the original datagram hold.
        let upperLength = min(available, Int(fixed.totalLength)) - headerLength
        guard upperLength >= minimumUpperLayerLength else { throw .badQuotedDatagram }
        var header = IPv4Header(
            source: IPv4Address(rawValue: fixed.source), destination: IPv4Address(rawValue: fixed.destination),
            protocolNumber: fixed.protocolNumber, payloadLength: 0, timeToLive: fixed.timeToLive,
            identification: fixed.identification, dontFragment: fixed.flagsAndOffset & 0x4000 != 0,
            typeOfService: fixed.typeOfService)
        header.totalLength = fixed.totalLength
        header.moreFragments = fixed.flagsAndOffset & 0x2000 != 0
        header.fragmentOffset = fixed.flagsAndOffset & 0x1FFF
        header.headerChecksum = fixed.checksum
        header.headerLength = headerLength
        var upper = quote
        try upper.narrow(toOffset: headerLength, length: upperLength)
        return ICMPQuotedDatagram(
            header: .v4(header), source: .v4(header.source), destination: .v4(header.destination),
            upperLayerProtocol: header.protocolNumber, upperLayerBytes: upper,
            isNonFirstFragment: header.fragmentOffset != 0)
    }

    static func parseIPv6(_ quote: ByteBuffer) throws(WireError) -> ICMPQuotedDatagram {
        let available = quote.readableBytes
        guard available >= IPv6Header.length else { throw .badQuotedDatagram }
        let first = quote.wireUInt32(at: 0)
        guard first >> 28 == 6 else { throw .badQuotedDatagram }
        var header = IPv6Header(
            source: IPv6Address(high: quote.wireUInt64(at: 8), low: quote.wireUInt64(at: 16)),
            destination: IPv6Address(high: quote.wireUInt64(at: 24), low: quote.wireUInt64(at: 32)),
            nextHeader: quote.wireUInt8(at: 6), payloadLength: Int(quote.wireUInt16(at: 4)),
            hopLimit: quote.wireUInt8(at: 7))
        header.trafficClass = UInt8(truncatingIfNeeded: first >> 20)
        header.flowLabel = first & 0x000F_FFFF
        let end = min(available, IPv6Header.length + Int(header.payloadLength))
        var offset = IPv6Header.length
        var nextHeader = header.nextHeader
        var nonFirstFragment = false
        var walked = 0
        // RFC 4443 §2.4(c)/(d): the upper-layer protocol is found by walking the quoted extension headers.
        extensionHeaders: while true {
            switch nextHeader {
            case IPProtocolNumber.hopByHop, IPProtocolNumber.routing, IPProtocolNumber.destinationOptions,
                IPProtocolNumber.fragment:
                guard walked < IPDatagram.maximumExtensionHeaders, end - offset >= 8 else {
                    throw .badQuotedDatagram
                }
                let length: Int
                if nextHeader == IPProtocolNumber.fragment {
                    // RFC 8200 §4.5: a fixed 8 octets; the offset is the high 13 bits of octets 2–3.
                    length = 8
                    nonFirstFragment = quote.wireUInt16(at: offset + 2) >> 3 != 0
                } else {
                    length = (Int(quote.wireUInt8(at: offset + 1)) + 1) * 8
                }
                guard length <= end - offset else { throw .badQuotedDatagram }
                nextHeader = quote.wireUInt8(at: offset)
                offset += length
                walked += 1
            default:
                break extensionHeaders
            }
        }
        let upperLength = end - offset
        guard upperLength >= minimumUpperLayerLength else { throw .badQuotedDatagram }
        var upper = quote
        try upper.narrow(toOffset: offset, length: upperLength)
        return ICMPQuotedDatagram(
            header: .v6(header), source: .v6(header.source), destination: .v6(header.destination),
            upperLayerProtocol: nextHeader, upperLayerBytes: upper, isNonFirstFragment: nonFirstFragment)
    }
}

extension ICMPQuotedDatagram: CustomStringConvertible {
    /// What tcpdump prints for the quoted datagram's destination: `198.18.0.2 udp port 9`,
    /// `2001:db8::2 tcp port 80`, or `198.18.0.2 protocol 253`.
    public var description: String {
        switch (upperLayerProtocol, destinationPort) {
        case (IPProtocolNumber.udp, let port?): "\(destination) udp port \(port)"
        case (IPProtocolNumber.tcp, let port?): "\(destination) tcp port \(port)"
        default: "\(destination) protocol \(upperLayerProtocol)"
        }
    }
}
