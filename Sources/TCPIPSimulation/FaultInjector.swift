import NIOCore
import TCPIP
import TCPIPWire

/// Loss, duplication, reordering and single-bit corruption, seeded, applied to what an end receives.
///
/// Wrapping both ends of a pair faults both directions, each from its own seed. Sending passes straight
/// through. A given seed and the same sequence of calls reproduce the same faults bit for bit.
///
/// Each datagram that arrives from the wrapped link is decided in this order: lost (and nothing else);
/// corrupted (one random bit flipped); duplicated (a copy is delivered at once); held back (delivered after
/// `reorderDelay`, jittered ±50%, so datagrams arriving meanwhile overtake it).
public final class FaultInjector: PacketLink {
    /// Probabilities, each in 0...1, and the reordering hold time.
    public struct Configuration: Sendable {
        /// Probability a datagram is dropped.
        public var loss: Double
        /// Probability it is delivered twice.
        public var duplicate: Double
        /// Probability it is held back and delivered after later ones.
        public var reorder: Double
        /// How long a reordered datagram is held, jittered uniformly between half and one and a half times this.
        public var reorderDelay: TimeAmount
        /// Probability one random bit is flipped.
        public var corrupt: Double
        /// Act as an ECN router (RFC 3168 §5): a datagram chosen for loss that is ECN-capable (ECT(0)
        /// or ECT(1)) is delivered marked CE instead of dropped; Not-ECT datagrams are still dropped.
        public var markInsteadOfDrop: Bool

        /// Faults with these probabilities (each in 0...1) and delays; the defaults harm nothing.
        public init(
            loss: Double = 0,
            duplicate: Double = 0,
            reorder: Double = 0,
            reorderDelay: TimeAmount = .milliseconds(5),
            corrupt: Double = 0,
            markInsteadOfDrop: Bool = false
        ) {
            self.loss = loss
            self.duplicate = duplicate
            self.reorder = reorder
            self.reorderDelay = reorderDelay
            self.corrupt = corrupt
            self.markInsteadOfDrop = markInsteadOfDrop
        }
    }

    /// The link whose arrivals are impaired.
    public let inner: PacketLink
    /// The faults applied.
    public let configuration: Configuration
    /// What was done so far.
    public private(set) var statistics = FaultStatistics()

    private var generator: SeededGenerator
    /// Duplicates waiting to be handed out; ready since `readySince`.
    private var ready = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    private var readySince = Instant.zero
    /// Held-back datagrams, sorted by release time (ties in the order they were held).
    private var held = CircularBuffer<(packet: ByteBuffer, release: Instant)>(initialCapacity: 16)

    /// Impairs what `inner` delivers by `configuration`, drawing from a generator seeded with `seed` (the same
    /// seed, the same run).
    public init(wrapping inner: PacketLink, configuration: Configuration, seed: UInt64) {
        for probability in [configuration.loss, configuration.duplicate, configuration.reorder, configuration.corrupt] {
            precondition((0...1).contains(probability), "FaultInjector: probabilities must be in 0...1")
        }
        precondition(configuration.reorderDelay >= .zero, "FaultInjector: reorderDelay must not be negative")
        self.inner = inner
        self.configuration = configuration
        self.generator = SeededGenerator(seed: seed)
    }

    public var mtu: Int { inner.mtu }

    /// The wrapped link's, except that a link which may corrupt cannot promise integrity.
    public var capabilities: LinkCapabilities {
        var capabilities = inner.capabilities
        if configuration.corrupt > 0 {
            capabilities.checksumOffload = false
        }
        return capabilities
    }

    public func send(_ packet: ByteBuffer, now: Instant) {
        inner.send(packet, now: now)
    }

    public func receive(now: Instant) -> ByteBuffer? {
        while true {
            if let duplicate = ready.popFirst() {
                return duplicate
            }
            // A held datagram whose release comes before the wrapped link's next arrival goes first,
            // so that delivery order follows time even when the driver polls late.
            if let first = held.first, first.release <= now,
               inner.nextArrival.map({ first.release <= $0 }) ?? true
            {
                held.removeFirst()
                return first.packet
            }
            let arrival = min(inner.nextArrival ?? now, now)
            guard let packet = inner.receive(now: now) else {
                if let first = held.first, first.release <= now {
                    held.removeFirst()
                    return first.packet
                }
                return nil
            }
            if let delivered = applyFaults(to: packet, arrival: arrival, now: now) {
                return delivered
            }
        }
    }

    /// min(the wrapped link's next arrival, the earliest release of a held-back datagram).
    public var nextArrival: Instant? {
        if !ready.isEmpty {
            return readySince
        }
        switch (inner.nextArrival, held.first?.release) {
        case let (inner?, held?): return min(inner, held)
        case let (inner?, nil): return inner
        case let (nil, held?): return held
        case (nil, nil): return nil
        }
    }

    /// Decides the fate of one datagram; returns it if it is to be delivered now.
    private func applyFaults(to packet: ByteBuffer, arrival: Instant, now: Instant) -> ByteBuffer? {
        statistics.received &+= 1
        var packet = packet
        if chance(configuration.loss) {
            guard configuration.markInsteadOfDrop, Self.markCongestionExperienced(&packet) else {
                statistics.dropped &+= 1
                return nil
            }
            statistics.marked &+= 1
        }
        if chance(configuration.corrupt), packet.readableBytes > 0 {
            flipRandomBit(in: &packet)
            statistics.corrupted &+= 1
        }
        if chance(configuration.duplicate) {
            statistics.duplicated &+= 1
            ready.append(packet)
            readySince = now
        }
        if chance(configuration.reorder) {
            statistics.reordered &+= 1
            hold(packet, release: arrival + jittered(configuration.reorderDelay))
            return ready.popFirst()
        }
        return packet
    }

    /// Sets the ECN field of an ECT datagram to CE (RFC 3168 §5), updating the IPv4 header checksum
    /// incrementally (RFC 1624 eqn. 3) so a checksumming receiver still accepts it. Returns false,
    /// changing nothing, for a Not-ECT (or already CE, or unparseable) datagram.
    static func markCongestionExperienced(_ packet: inout ByteBuffer) -> Bool {
        guard let version = packet.getInteger(at: packet.readerIndex, as: UInt8.self) else { return false }
        switch version >> 4 {
        case 4:
            guard packet.readableBytes >= IPv4Header.minimumLength,
                  let word = packet.getInteger(at: packet.readerIndex, as: UInt16.self),
                  let checksum = packet.getInteger(at: packet.readerIndex + 10, as: UInt16.self)
            else { return false }
            let tos = UInt8(truncatingIfNeeded: word)
            guard ECNCodepoint(trafficClass: tos).isECNCapable else { return false }
            let marked = (word & 0xFF00) | UInt16(ECNCodepoint.congestionExperienced.applied(to: tos))
            // HC' = ~(~HC + ~m + m'), in ones' complement arithmetic.
            var sum = UInt32(~checksum) + UInt32(~word) + UInt32(marked)
            sum = (sum & 0xFFFF) + (sum >> 16)
            sum = (sum & 0xFFFF) + (sum >> 16)
            packet.setInteger(marked, at: packet.readerIndex)
            packet.setInteger(~UInt16(truncatingIfNeeded: sum), at: packet.readerIndex + 10)
            return true
        case 6:
            guard let first = packet.getInteger(at: packet.readerIndex, as: UInt32.self) else { return false }
            let trafficClass = UInt8(truncatingIfNeeded: first >> 20)
            guard ECNCodepoint(trafficClass: trafficClass).isECNCapable else { return false }
            let marked = ECNCodepoint.congestionExperienced.applied(to: trafficClass)
            packet.setInteger((first & 0xF00F_FFFF) | UInt32(marked) << 20, at: packet.readerIndex)
            return true
        default:
            return false
        }
    }

    /// Flips one bit chosen uniformly from the datagram.
    ///
    /// ByteBuffer is copy-on-write, so when the sender (or a queue) still holds this storage the write
    /// below copies it first: the sender's datagram is never changed under it.
    private func flipRandomBit(in packet: inout ByteBuffer) {
        let bit = Int.random(in: 0..<(packet.readableBytes * 8), using: &generator)
        let index = packet.readerIndex + bit / 8
        let byte = packet.getInteger(at: index, as: UInt8.self)!
        packet.setInteger(byte ^ (1 << UInt8(bit % 8)), at: index)
    }

    /// Inserts keeping `held` sorted by release; equal releases keep their order.
    private func hold(_ packet: ByteBuffer, release: Instant) {
        var index = held.endIndex
        while index > held.startIndex {
            let before = held.index(before: index)
            if held[before].release <= release { break }
            index = before
        }
        held.insert((packet: packet, release: release), at: index)
    }

    /// Uniformly between half and one and a half times `base`.
    private func jittered(_ base: TimeAmount) -> TimeAmount {
        guard base > .zero else { return .zero }
        return .nanoseconds(base.nanoseconds / 2 + Int64.random(in: 0...base.nanoseconds, using: &generator))
    }

    /// True with the given probability. Draws nothing when the probability is zero, so a fault that is
    /// off costs nothing.
    private func chance(_ probability: Double) -> Bool {
        guard probability > 0 else { return false }
        // 53 random bits give every representable probability step in [0, 1).
        let uniform = Double(generator.next() >> 11) * 0x1p-53
        return uniform < probability
    }
}

/// What a `FaultInjector` did to the datagrams it received from the link it wraps.
public struct FaultStatistics: Hashable, Sendable {
    /// Datagrams received from the wrapped link.
    public var received: UInt64 = 0
    /// Datagrams dropped.
    public var dropped: UInt64 = 0
    /// Extra copies delivered.
    public var duplicated: UInt64 = 0
    /// Datagrams held back.
    public var reordered: UInt64 = 0
    /// Datagrams with one bit flipped.
    public var corrupted: UInt64 = 0
    /// ECN-capable datagrams chosen for loss and delivered marked CE instead (`markInsteadOfDrop`).
    public var marked: UInt64 = 0

    /// All zero.
    public init() {}
}
