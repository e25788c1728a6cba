import TCPIPWire

/// An ICMP or ICMPv6 error about a TCP segment we sent, as TCP needs it: what kind of error, and
/// what the error quotes of our datagram (RFC 792; RFC 4443 §2.4 (c); RFC 1812 §4.3.2.3 for how
/// much a router quotes — at least the first 8 octets of TCP, which hold the ports and the
/// sequence number).
///
/// Parsing the ICMP message is the IP layer's business; `Stack.icmpErrorArrived(_:now:)` takes
/// this and does the TCP side (RFC 5927, RFC 1122 §4.2.3.9, RFC 1191, RFC 8201).
public struct TCPICMPError: Hashable, Sendable {
    /// What the error means for TCP.
    public enum Kind: Hashable, Sendable {
        /// RFC 792 type 3 code 4 with RFC 1191 §4's next-hop MTU (0 from a router that predates it).
        case fragmentationNeeded(nextHopMTU: Int)
        /// RFC 4443 §3.2 type 2.
        case packetTooBig(mtu: Int)
        /// An error that aborts a connection still opening (RFC 5461 §4), with the error the user sees.
        case hard(TCPError)
        /// An error TCP only notes (RFC 1122 §4.2.3.9), reported if the connection then times out.
        case soft(TCPError)
    }

    /// What it means for TCP.
    public var kind: Kind
    /// The quoted datagram's source: our address and port.
    public var local: Endpoint
    /// The quoted datagram's destination: the peer's address and port.
    public var remote: Endpoint
    /// The quoted TCP header's sequence number.
    public var sequenceNumber: SequenceNumber
    /// The quoted IP header's total length (IPv4) or payload length plus 40 (IPv6), when known: the
    /// RFC 1191 §5 plateau search starts below it.
    public var quotedLength: Int?
    /// Who sent the error (a router, or the peer), for traces.
    public var reporter: IPAddress?

    /// An error with these fields (see each property).
    public init(
        kind: Kind, local: Endpoint, remote: Endpoint, sequenceNumber: SequenceNumber,
        quotedLength: Int? = nil, reporter: IPAddress? = nil
    ) {
        self.kind = kind
        self.local = local
        self.remote = remote
        self.sequenceNumber = sequenceNumber
        self.quotedLength = quotedLength
        self.reporter = reporter
    }

    /// The TCP meaning of an ICMP (IPv4) error, from its type and code (RFC 792), or nil for one TCP
    /// ignores.
    ///
    /// RFC 1122 §4.2.3.9: Destination Unreachable codes 0, 1 and 5 (net, host, source route failed)
    /// are soft; codes 2 and 3 (protocol, port) are hard; code 4 is PMTUD's (RFC 1191). RFC 5461 §4:
    /// the administrative codes (9, 10, 13) and the rest of unreachable are soft too — a firewall's
    /// opinion may change. Time Exceeded and Parameter Problem are soft (§4.2.3.9); Source Quench is
    /// ignored (RFC 6633).
    public static func ipv4Kind(type: UInt8, code: UInt8, nextHopMTU: UInt16 = 0) -> Kind? {
        switch type {
        case 3:
            switch code {
            case 0, 6, 9: .soft(.networkUnreachable)
            case 2: .hard(.protocolUnreachable)
            case 3: .hard(.connectionRefused)
            case 4: .fragmentationNeeded(nextHopMTU: Int(nextHopMTU))
            default: .soft(.hostUnreachable)
            }
        case 11, 12: .soft(.hostUnreachable)
        default: nil
        }
    }

    /// The TCP meaning of an ICMPv6 error (RFC 4443), or nil for one TCP ignores.
    ///
    /// RFC 4443 §3.1: Destination Unreachable code 4 (port unreachable) is the hard error RFC 5461
    /// §4 names; the others (no route, administratively prohibited, beyond scope, address
    /// unreachable, policy, reject route) are soft. §3.4 Parameter Problem code 1 (unrecognized Next
    /// Header) is IPv6's protocol unreachable: hard. Time Exceeded is soft.
    public static func ipv6Kind(type: UInt8, code: UInt8, mtu: UInt32 = 0) -> Kind? {
        switch type {
        case 1:
            switch code {
            case 0: .soft(.networkUnreachable)
            case 4: .hard(.connectionRefused)
            default: .soft(.hostUnreachable)
            }
        case 2: .packetTooBig(mtu: Int(clamping: mtu))
        case 3: .soft(.hostUnreachable)
        case 4: code == 1 ? .hard(.protocolUnreachable) : .soft(.protocolUnreachable)
        default: nil
        }
    }
}
