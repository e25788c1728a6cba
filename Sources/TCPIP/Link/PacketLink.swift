import NIOCore

/// What a link can do for the stack above it.
public struct LinkCapabilities: Hashable, Sendable {
    /// The link guarantees integrity (as Linux loopback does), so the stack may skip computing and verifying
    /// checksums. A wrapper that can damage packets, such as `FaultInjector` with corruption, must clear it.
    public var checksumOffload: Bool

    /// Capabilities; by default none.
    public init(checksumOffload: Bool = false) {
        self.checksumOffload = checksumOffload
    }
}

/// One end of a link, as the stack's driver sees it: whole IP datagrams in, whole IP datagrams out.
///
/// Class-bound because both ends of a pair share state, and because wrappers (`FaultInjector`,
/// `PcapWriter`) hold the link they wrap. Time is a parameter, so a virtual link behaves the same
/// on every run; a real link ignores `now` except for timestamps.
public protocol PacketLink: AnyObject {
    /// The largest datagram, in bytes, the link carries; larger ones are dropped.
    var mtu: Int { get }

    /// What the link can do for the stack (checksum offload).
    var capabilities: LinkCapabilities { get }

    /// Hands one datagram to the link at `now`.
    func send(_ packet: ByteBuffer, now: Instant)

    /// The next datagram that has arrived at this end by `now`, or nil.
    func receive(now: Instant) -> ByteBuffer?

    /// When `receive` will next have something, if the link knows (virtual links do); nil if nothing is pending.
    ///
    /// May lie in the past: that means a datagram is ready now.
    var nextArrival: Instant? { get }
}

/// Counters for one end of a link: what it was handed to send, and what it delivered.
public struct LinkStatistics: Hashable, Sendable {
    /// Datagrams handed to `send`, including those the link then dropped.
    public var packetsSent: UInt64 = 0
    /// Bytes handed to `send`, including those the link then dropped.
    public var bytesSent: UInt64 = 0
    /// Datagrams this end returned from `receive`.
    public var packetsDelivered: UInt64 = 0
    /// Bytes this end returned from `receive`.
    public var bytesDelivered: UInt64 = 0
    /// Datagrams dropped because the queue in front of the wire was full (drop-tail).
    public var droppedQueueFull: UInt64 = 0
    /// Datagrams dropped because they were larger than the MTU.
    public var droppedTooBig: UInt64 = 0

    /// All zero.
    public init() {}
}
