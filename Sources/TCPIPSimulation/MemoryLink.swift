import NIOCore
import TCPIP
import TCPIPWire

/// Two ends joined in one process, on virtual time: propagation delay, serialization at a bandwidth,
/// and a drop-tail queue in front of the wire, independently in each direction.
///
/// A datagram sent at `t` starts serializing when the wire is free, finishes `size × 8 / bandwidth`
/// later, and arrives one `delay` after that:
///
///     departure = max(t, wire free) + size × 8 / bandwidth
///     arrival   = departure + delay
///
/// Delivery is in order. The ends share this object; neither holds the other, so there is no cycle.
public final class MemoryLink {
    /// How both directions of a pair behave.
    public struct Configuration: Sendable {
        /// The largest datagram carried; larger ones are dropped and counted.
        public var mtu: Int
        /// One-way propagation delay.
        public var delay: TimeAmount
        /// Serialization rate; nil means infinitely fast (no queueing at all).
        public var bandwidthBitsPerSecond: UInt64?
        /// Drop-tail limit on the bytes sent but not yet fully serialized, the one on the wire included.
        public var queueLimitBytes: Int
        /// Whether the ends advertise checksum offload. A memory link cannot damage a packet, like loopback.
        public var checksumOffload: Bool

        /// A link with these properties; the defaults are loopback's: no delay, no rate limit, checksum
        /// offload.
        public init(
            mtu: Int = 1500,
            delay: TimeAmount = .zero,
            bandwidthBitsPerSecond: UInt64? = nil,
            queueLimitBytes: Int = 1 << 20,
            checksumOffload: Bool = true
        ) {
            self.mtu = mtu
            self.delay = delay
            self.bandwidthBitsPerSecond = bandwidthBitsPerSecond
            self.queueLimitBytes = queueLimitBytes
            self.checksumOffload = checksumOffload
        }
    }

    /// Which end of the pair.
    public enum Side: Hashable, Sendable {
        /// The first end `pair(_:)` returns.
        case a
        /// The second end `pair(_:)` returns.
        case b
    }

    /// The link's delay, rate, queue and MTU.
    public let configuration: Configuration
    // Exempt from dynamic exclusivity checks: a link has one owner (its ends are not Sendable),
    // and `withLane` is the only access, one lane at a time, calling out to nothing. The checks
    // (a thread-local access set per access, twice per datagram) cost ~1.5% of bulk time.
    @exclusivity(unchecked) private var fromA: Lane
    @exclusivity(unchecked) private var fromB: Lane

    private init(configuration: Configuration) {
        precondition(configuration.mtu > 0, "MemoryLink: mtu must be positive")
        precondition(configuration.delay >= .zero, "MemoryLink: delay must not be negative")
        precondition(configuration.bandwidthBitsPerSecond != 0, "MemoryLink: bandwidth must be positive or nil")
        precondition(configuration.queueLimitBytes >= 0, "MemoryLink: queue limit must not be negative")
        self.configuration = configuration
        self.fromA = Lane()
        self.fromB = Lane()
    }

    /// Creates a link and returns its two ends.
    public static func pair(_ configuration: Configuration = .init()) -> (End, End) {
        let link = MemoryLink(configuration: configuration)
        return (End(link: link, side: .a), End(link: link, side: .b))
    }

    /// One end of a `MemoryLink`.
    public final class End: PacketLink {
        /// The link this is an end of.
        public let link: MemoryLink
        /// Which end.
        public let side: Side

        fileprivate init(link: MemoryLink, side: Side) {
            self.link = link
            self.side = side
        }

        public var mtu: Int { link.configuration.mtu }

        /// Checksum offload when the link's configuration says so (a memory link cannot damage a datagram).
        public var capabilities: LinkCapabilities {
            LinkCapabilities(checksumOffload: link.configuration.checksumOffload)
        }

        /// `consuming`, and no closure on the way (a closure can only borrow what it captures): the
        /// datagram moves onto the wire instead of being retained there and released by the caller.
        public func send(_ packet: consuming ByteBuffer, now: Instant) {
            let configuration = link.configuration
            switch side {
            case .a: link.fromA.send(consume packet, now: now, configuration: configuration)
            case .b: link.fromB.send(consume packet, now: now, configuration: configuration)
            }
        }

        public func receive(now: Instant) -> ByteBuffer? {
            link.withLane(from: side.peer) { $0.receive(now: now) }
        }

        public var nextArrival: Instant? {
            link.withLane(from: side.peer) { $0.inFlight.first?.arrival }
        }

        /// What this end sent and what it received.
        public var statistics: LinkStatistics {
            let sent = link.withLane(from: side) { $0.statistics }
            let received = link.withLane(from: side.peer) { $0.statistics }
            var statistics = LinkStatistics()
            statistics.packetsSent = sent.packetsSent
            statistics.bytesSent = sent.bytesSent
            statistics.droppedQueueFull = sent.droppedQueueFull
            statistics.droppedTooBig = sent.droppedTooBig
            statistics.packetsDelivered = received.packetsDelivered
            statistics.bytesDelivered = received.bytesDelivered
            return statistics
        }

        /// Bytes this end has sent that are not yet fully serialized onto the wire at `now`.
        public func queuedBytes(now: Instant) -> Int {
            link.withLane(from: side) { lane in
                lane.releaseSerialized(by: now)
                return lane.backlogBytes
            }
        }
    }

    private func withLane<Result>(from side: Side, _ body: (inout Lane) -> Result) -> Result {
        switch side {
        case .a: body(&fromA)
        case .b: body(&fromB)
        }
    }
}

extension MemoryLink.Side {
    var peer: MemoryLink.Side {
        switch self {
        case .a: .b
        case .b: .a
        }
    }
}

/// One direction of a memory link: the wire's schedule and the datagrams on their way.
private struct Lane {
    /// Datagrams accepted, in arrival order (arrival times never decrease).
    var inFlight = PacketQueue<(packet: ByteBuffer, arrival: Instant)>(initialCapacity: 64)
    /// Datagrams still serializing, to know the drop-tail backlog; only used with a finite bandwidth.
    var serializing = CircularBuffer<(finish: Instant, size: Int)>(initialCapacity: 64)
    var backlogBytes = 0
    var wireFree = Instant(nanoseconds: .min)
    var lastArrival = Instant(nanoseconds: .min)
    var statistics = LinkStatistics()

    mutating func send(_ packet: consuming ByteBuffer, now: Instant, configuration: MemoryLink.Configuration) {
        let size = packet.readableBytes
        statistics.packetsSent &+= 1
        statistics.bytesSent &+= UInt64(size)

        guard size <= configuration.mtu else {
            statistics.droppedTooBig &+= 1
            return
        }

        var departure = now
        if let bandwidth = configuration.bandwidthBitsPerSecond {
            releaseSerialized(by: now)
            guard backlogBytes + size <= configuration.queueLimitBytes else {
                statistics.droppedQueueFull &+= 1
                return
            }
            departure = max(now, wireFree) + Self.serializationTime(bytes: size, bitsPerSecond: bandwidth)
            wireFree = departure
            serializing.append((finish: departure, size: size))
            backlogBytes += size
        }

        // A caller whose clock stepped back must not see packets overtake each other.
        let arrival = max(departure + configuration.delay, lastArrival)
        lastArrival = arrival
        inFlight.append((packet: consume packet, arrival: arrival))
    }

    mutating func receive(now: Instant) -> ByteBuffer? {
        // Only the arrival time is looked at before the datagram is taken out: a copy of the first
        // entry would retain and release its buffer once more per datagram.
        guard !inFlight.isEmpty, inFlight.modifyFirst({ $0.arrival }) <= now else { return nil }
        let packet = inFlight.popFirst()!.packet
        statistics.packetsDelivered &+= 1
        statistics.bytesDelivered &+= UInt64(packet.readableBytes)
        return packet
    }

    /// Forgets datagrams whose last bit has left by `now`: they no longer occupy the queue.
    mutating func releaseSerialized(by now: Instant) {
        while let first = serializing.first, first.finish <= now {
            serializing.removeFirst()
            backlogBytes -= first.size
        }
    }

    /// `bytes × 8 / bitsPerSecond` seconds, rounded up to the nanosecond, saturating.
    static func serializationTime(bytes: Int, bitsPerSecond: UInt64) -> TimeAmount {
        let bits = UInt64(bytes).multipliedReportingOverflow(by: 8)
        guard !bits.overflow else { return .nanoseconds(.max) }
        let numerator = bits.partialValue.multipliedFullWidth(by: 1_000_000_000)
        guard numerator.high < bitsPerSecond else { return .nanoseconds(.max) }
        let (quotient, remainder) = bitsPerSecond.dividingFullWidth(numerator)
        let nanoseconds = remainder == 0 ? quotient : quotient &+ 1
        return .nanoseconds(nanoseconds >= UInt64(Int64.max) ? .max : Int64(nanoseconds))
    }
}
