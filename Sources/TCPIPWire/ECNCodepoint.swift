/// The ECN field of the IP header (RFC 3168 §5): the low two bits of the IPv4 TOS octet and of the
/// IPv6 Traffic Class.
///
///     0 1 2 3 4 5 6 7
///     +-----+-----+
///     | DSCP      |ECN|
public enum ECNCodepoint: UInt8, Hashable, Sendable, CaseIterable {
    /// Not-ECT: the transport does not take part in ECN.
    case notECT = 0b00
    /// ECT(1), ECN-Capable Transport; RFC 8311 §4.2 leaves it to experiments (L4S).
    case ect1 = 0b01
    /// ECT(0): what an RFC 3168 sender sets on its data (§6.1.2 "ECT(0) SHOULD be used").
    case ect0 = 0b10
    /// CE, Congestion Experienced: set by a router instead of dropping the packet.
    case congestionExperienced = 0b11

    /// The codepoint of a TOS / Traffic Class octet.
    @inlinable
    public init(trafficClass: UInt8) {
        self = ECNCodepoint(rawValue: trafficClass & 0b11)!
    }

    /// `trafficClass` with its ECN bits replaced by this codepoint (the DSCP bits kept).
    @inlinable
    public func applied(to trafficClass: UInt8) -> UInt8 {
        (trafficClass & ~0b11) | rawValue
    }

    /// Either ECT codepoint: the sender is ECN-capable (a router may mark instead of dropping).
    public var isECNCapable: Bool { self == .ect0 || self == .ect1 }
}

extension IPDatagram {
    /// The ECN field of the datagram's header (RFC 3168 §5).
    public var ecn: ECNCodepoint {
        switch header {
        case .v4(let header): ECNCodepoint(trafficClass: header.typeOfService)
        case .v6(let header): ECNCodepoint(trafficClass: header.trafficClass)
        }
    }
}
