import NIOCore

/// The knobs of fragment reassembly (`StackConfiguration.fragments`). The defaults are Linux's.
public struct FragmentReassemblyConfiguration: Sendable, Hashable {
    /// Most bytes the datagrams being reassembled may pin, counted as the storage their fragments'
    /// buffers hold (a fragment sliced out of a large buffer counts that buffer), plus a fixed cost per
    /// datagram and per fragment. Beyond it the oldest datagrams are evicted. Linux's
    /// `ipfrag_high_thresh`, 4 MiB.
    public var memoryLimit: Int = 4 * 1024 * 1024
    /// How long an IPv4 datagram may take to arrive whole: RFC 791 §3.2 suggests 15 s as the timer's
    /// lower bound; 30 s is Linux's `ipfrag_time`.
    public var ipv4Timeout: TimeAmount = .seconds(30)
    /// RFC 8200 §4.5: "within 60 seconds of the reception of the first-arriving fragment".
    public var ipv6Timeout: TimeAmount = .seconds(60)
    /// Most fragments one datagram may come in; one more and the datagram is dropped. 64, as
    /// FreeBSD's `maxfragsperpacket` default (Linux bounds the count only indirectly, by memory).
    public var maximumFragmentsPerDatagram: Int = 64

    /// The defaults of each property.
    public init() {}
}
