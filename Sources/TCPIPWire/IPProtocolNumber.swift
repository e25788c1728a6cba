/// IANA "Assigned Internet Protocol Numbers": the IPv4 protocol field and the IPv6 next-header field.
public enum IPProtocolNumber {
    /// IPv6 Hop-by-Hop Options header (RFC 8200 §4.3).
    public static let hopByHop: UInt8 = 0
    /// ICMP (RFC 792).
    public static let icmp: UInt8 = 1
    /// TCP (RFC 9293).
    public static let tcp: UInt8 = 6
    /// UDP (RFC 768).
    public static let udp: UInt8 = 17
    /// IPv6 Routing header (RFC 8200 §4.4).
    public static let routing: UInt8 = 43
    /// IPv6 Fragment header (RFC 8200 §4.5).
    public static let fragment: UInt8 = 44
    /// ICMPv6 (RFC 4443).
    public static let icmpv6: UInt8 = 58
    /// IPv6 "No Next Header" (RFC 8200 §4.7).
    public static let noNextHeader: UInt8 = 59
    /// IPv6 Destination Options header (RFC 8200 §4.6).
    public static let destinationOptions: UInt8 = 60
}
