import NIOCore
import TCPIP
import TCPIPWire

/// Loss, duplication, reordering and single-bit corruption (and, through `ImpairmentModel`, delay with
/// jitter and a rate with a drop-tail queue), seeded, applied to what an end receives.
///
/// Wrapping both ends of a pair faults both directions, each from its own seed. Sending passes straight
/// through. A given seed and the same sequence of calls reproduce the same faults bit for bit.
///
/// The decisions are `ImpairmentProcess`'s, the model `impair` rules and `--impair` use too: lost (and
/// nothing else); corrupted (one random bit flipped); duplicated (a copy is delivered at once); held
/// back (delivered after `reorderDelay`, jittered ±50%, so datagrams arriving meanwhile overtake it).
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

        /// The model these values are, for `ImpairmentProcess`.
        public var model: ImpairmentModel {
            ImpairmentModel(
                loss: loss, duplicate: duplicate, reorder: reorder, corrupt: corrupt, reorderDelay: reorderDelay,
                markInsteadOfDrop: markInsteadOfDrop)
        }

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

    private var impairment: ImpairmentProcess
    private var generator: SeededGenerator
    /// Duplicates waiting to be handed out; ready since `readySince`.
    private var ready = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    private var readySince = Instant.zero
    /// Held-back datagrams, sorted by release time (ties in the order they were held).
    private var held = CircularBuffer<(packet: ByteBuffer, release: Instant)>(initialCapacity: 16)

    /// Impairs what `inner` delivers by `configuration`, drawing from a generator seeded with `seed` (the same
    /// seed, the same run).
    public convenience init(wrapping inner: PacketLink, configuration: Configuration, seed: UInt64) {
        self.init(wrapping: inner, model: configuration.model, seed: seed)
    }

    /// The whole model: delay, jitter and a rate queue as well (`configuration` then holds the
    /// probabilities, `reorderDelay` and `markInsteadOfDrop` only).
    public init(wrapping inner: PacketLink, model: ImpairmentModel, seed: UInt64) {
        precondition(model.isValid, "FaultInjector: probabilities must be in 0...1, times not negative")
        self.inner = inner
        self.configuration = Configuration(
            loss: model.loss, duplicate: model.duplicate, reorder: model.reorder, reorderDelay: model.reorderDelay,
            corrupt: model.corrupt, markInsteadOfDrop: model.markInsteadOfDrop)
        self.impairment = ImpairmentProcess(model)
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

    /// Decides the fate of one datagram (`ImpairmentProcess`); returns it if it is to be delivered now.
    private func applyFaults(to packet: ByteBuffer, arrival: Instant, now: Instant) -> ByteBuffer? {
        statistics.received &+= 1
        var packet = packet
        let decision = impairment.decide(
            length: packet.readableBytes, now: arrival, markable: ImpairmentProcess.isMarkable(packet), using: &generator)
        if decision.lost {
            statistics.dropped &+= 1
            return nil
        }
        if decision.marked {
            ImpairmentProcess.markCongestionExperienced(&packet)
            statistics.marked &+= 1
        }
        if let bit = decision.corruptBit {
            // ByteBuffer is copy-on-write: the sender's datagram (or a queue's) is never changed under it.
            ImpairmentProcess.flip(bit, in: &packet)
            statistics.corrupted &+= 1
        }
        if decision.duplicate {
            statistics.duplicated &+= 1
            if decision.duplicateDelay > .zero {
                hold(packet, release: arrival + decision.duplicateDelay)
            } else {
                ready.append(packet)
                readySince = now
            }
        }
        if decision.reordered { statistics.reordered &+= 1 }
        // Held back without a delay of the model's too: even a zero `reorderDelay` lets the datagrams
        // already arrived go first.
        if decision.delay > .zero || (decision.reordered && impairment.model.delay == .zero) {
            hold(packet, release: arrival + decision.delay)
            return ready.popFirst()
        }
        return packet
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
