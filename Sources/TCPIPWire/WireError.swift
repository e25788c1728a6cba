/// Why a packet could not be parsed.
///
/// Everything a peer controls is checked before it is used; a malformed packet becomes one of
/// these values, never a trap. Each case has a short, stable `counterName` for drop counters.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Fewer bytes than a header or a length field says.
    case truncated
    /// The IP version nibble is neither 4 nor 6.
    case unsupportedVersion
    /// IPv4 IHL below 5, or a header running past the datagram.
    case badHeaderLength
    /// IPv4 total length below the header length or beyond the buffer; IPv6 payload length beyond the buffer.
    case badTotalLength
    /// The IPv4 header checksum, or a TCP, UDP or ICMP checksum, does not verify.
    case badChecksum
    /// An IPv4 fragment (MF set or nonzero offset) or an IPv6 Fragment header: not reassembled yet.
    case fragment
    /// An IPv6 extension header running past the datagram, or a chain longer than we walk.
    case badExtensionHeader
    /// TCP data offset below 5 or past the end of the segment.
    case badDataOffset
    /// A TCP option with length below 2, running past the header, or of the wrong length for its kind.
    case badOptionLength
    /// SYN together with FIN: dropped, as Linux does.
    case invalidFlags
    /// A UDP length field below 8 or past the IP payload (RFC 768).
    case badLength
    /// A UDP datagram over IPv6 with a zero checksum (RFC 8200 §8.1).
    case missingChecksum
    /// The datagram an ICMP error quotes is not an IP header of the right family followed by at least
    /// eight octets of its payload (RFC 792, RFC 4443 §2.4(c)).
    case badQuotedDatagram

    /// A short, stable name for drop counters, e.g. `"bad_checksum"`.
    public var counterName: String {
        switch self {
        case .truncated: "truncated"
        case .unsupportedVersion: "unsupported_version"
        case .badHeaderLength: "bad_header_length"
        case .badTotalLength: "bad_total_length"
        case .badChecksum: "bad_checksum"
        case .fragment: "fragment"
        case .badExtensionHeader: "bad_extension_header"
        case .badDataOffset: "bad_data_offset"
        case .badOptionLength: "bad_option_length"
        case .invalidFlags: "invalid_flags"
        case .badLength: "bad_length"
        case .missingChecksum: "missing_checksum"
        case .badQuotedDatagram: "bad_quoted_datagram"
        }
    }

    public var description: String { counterName }
}
