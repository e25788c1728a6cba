/// What a `Router` did with the datagrams it was given, as `netstat -s`'s Ip section and Linux's
/// `IpExt` counters (`ip -s`): forwarded, delivered, and each reason one was not.
public struct ForwardingCounters: Hashable, Sendable {
    /// Datagrams handed to `receive`.
    public var received: UInt64 = 0
    /// Datagrams queued on an outgoing link (fragments each count), and their bytes (`ForwDatagrams`).
    public var forwarded: UInt64 = 0
    /// Bytes of the datagrams forwarded.
    public var bytesForwarded: UInt64 = 0
    /// Datagrams to one of the router's own addresses, handed to its stack.
    public var deliveredLocally: UInt64 = 0
    /// Datagrams the router's own stack sent (echo replies, port unreachables).
    public var sentLocally: UInt64 = 0
    /// Unparsable headers, bad lengths, unknown versions (`InHdrErrors`).
    public var malformed: UInt64 = 0
    /// IPv4 headers whose checksum did not verify (`InCsumErrors`).
    public var badChecksum: UInt64 = 0
    /// No route to the destination (`OutNoRoutes`).
    public var noRoute: UInt64 = 0
    /// Source or destination a router must not forward (broadcast, multicast, link-local, martian).
    public var notForwardable: UInt64 = 0
    /// TTL or hop limit ran out (ICMP time exceeded).
    public var timeExceeded: UInt64 = 0
    /// Larger than the next link and not to be fragmented (ICMP fragmentation needed / packet too big).
    public var tooBig: UInt64 = 0
    /// IPv4 datagrams without DF cut into fragments for a narrower next link (`FragOKs`).
    public var fragmented: UInt64 = 0
    /// Stopped by a rule — at prerouting, forward or postrouting for a datagram in transit, at
    /// output or postrouting for one of the router's own: dropped, rejected or lost, or held by an
    /// `impair` delay (a held datagram is counted again as forwarded when it leaves; one of the
    /// router's own is counted as sent once, before the hooks).
    public var filtered: UInt64 = 0
    /// ICMP errors sent, suppressed by RFC 1812 §4.3.2.7 / RFC 4443 §2.4(e), and held back by the
    /// token bucket.
    public var icmpErrorsSent: UInt64 = 0
    /// ICMP errors not sent because the rules forbid one (about an ICMP error, a non-first
    /// fragment, a datagram from or to no single host).
    public var icmpErrorsSuppressed: UInt64 = 0
    /// ICMP errors not sent because the token bucket was empty.
    public var icmpErrorsRateLimited: UInt64 = 0

    /// All zero.
    public init() {}
}
