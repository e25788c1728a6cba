import NIOCore
import TCPIPWire

/// netem's model of a bad path: loss, corruption, duplication, delay with jitter, reordering and a
/// rate with a drop-tail queue. The one implementation behind every impairment of the package:
/// `impair` rules (`PacketFilter`), `FaultInjector` (the simulator) and `--impair` (`Impairer` in
/// TCPIPNIO, `tcpip route`'s links), so a seed gives the same decisions whichever placed it.
///
/// `ImpairmentProcess` decides; the caller carries the decision out (drops, flips, holds, copies).
public struct ImpairmentModel: Equatable, Sendable {
    /// Probability (in 0...1) a datagram is lost.
    public var loss: Double
    /// Probability (in 0...1) a datagram is delivered twice.
    public var duplicate: Double
    /// Probability (in 0...1) a datagram is delivered out of turn (`reorderDelay`).
    public var reorder: Double
    /// One bit, chosen uniformly, flipped.
    public var corrupt: Double
    /// How long each datagram is held before delivery.
    public var delay: TimeAmount
    /// The delay varies uniformly within ±jitter (never below zero).
    public var jitter: TimeAmount
    /// Without `delay`, how long a reordered datagram is held so that later ones overtake it,
    /// uniformly between half and one and a half times this (`FaultInjector`'s reordering). With
    /// a delay, a reordered datagram skips it instead, as netem's `reorder`.
    public var reorderDelay: TimeAmount
    /// Bits per second leaving the queue; 0: no rate limit.
    public var rate: Int
    /// Datagrams waiting for the rate before the tail is dropped.
    public var queue: Int
    /// Act as an ECN router (RFC 3168 §5): a datagram chosen for loss that is ECN-capable is
    /// delivered marked CE instead (`ImpairmentDecision.marked`).
    public var markInsteadOfDrop: Bool

    /// A model with these values; the defaults harm nothing (`isValid` says whether they can be used).
    public init(
        loss: Double = 0, duplicate: Double = 0, reorder: Double = 0, corrupt: Double = 0,
        delay: TimeAmount = .zero, jitter: TimeAmount = .zero, reorderDelay: TimeAmount = .milliseconds(5),
        rate: Int = 0, queue: Int = 1000, markInsteadOfDrop: Bool = false
    ) {
        self.loss = loss
        self.duplicate = duplicate
        self.reorder = reorder
        self.corrupt = corrupt
        self.delay = delay
        self.jitter = jitter
        self.reorderDelay = reorderDelay
        self.rate = rate
        self.queue = queue
        self.markInsteadOfDrop = markInsteadOfDrop
    }

    /// An `impair` statement's parameters (probabilities in parts per million).
    public init(_ spec: ImpairmentSpec) {
        self.init(
            loss: spec.loss, duplicate: spec.duplicate, reorder: spec.reorder, corrupt: spec.corrupt,
            delay: spec.delay, jitter: spec.jitter, rate: spec.rate, queue: spec.queue)
    }

    /// Whether every value is one the model can act on.
    public var isValid: Bool {
        [loss, duplicate, reorder, corrupt].allSatisfy { (0...1).contains($0) }
            && delay >= .zero && jitter >= .zero && reorderDelay >= .zero && rate >= 0 && queue >= 0
    }
}

/// One datagram's fate under an impairment, decided when it passed.
public struct ImpairmentDecision: Equatable, Sendable {
    /// Lost: deliver nothing (chosen for loss, or the tail of a full rate queue).
    public var lost = false
    /// Chosen for loss but ECN-capable under `markInsteadOfDrop`: deliver it marked CE.
    public var marked = false
    /// Flip this bit, counted from the first octet of the datagram, least significant bit first
    /// (`ImpairmentProcess.flip`).
    public var corruptBit: Int?
    /// Deliver a second copy, after `duplicateDelay`.
    public var duplicate = false
    /// Reordered: out of turn (the delay skipped, or held back without one).
    public var reordered = false
    /// Hold it this long before delivery (delay, jitter, reordering and the rate's queue).
    public var delay: TimeAmount = .zero
    /// The duplicate's: the path's delay with its jitter, neither reordered nor queued.
    public var duplicateDelay: TimeAmount = .zero

    /// Delivered at once, intact.
    public init() {}
}

/// An `ImpairmentModel` at work: its rate queue. The random draws come from the caller's generator
/// (a rule's from its filter's, `FaultInjector`'s and `--impair`'s from their own seed), always in
/// the same order, a probability of zero drawing nothing — so a seed reproduces every decision.
public struct ImpairmentProcess: Sendable {
    /// The parameters it decides by.
    public let model: ImpairmentModel
    /// Departure times of the datagrams in the rate's queue, oldest first.
    private var departures: CircularBuffer<Instant>
    private var busyUntil = Instant.zero

    /// A process deciding by `model`, its rate queue empty; `model` must be valid (`isValid`).
    public init(_ model: ImpairmentModel) {
        precondition(model.isValid, "ImpairmentModel: probabilities in 0...1, times and sizes not negative")
        self.model = model
        departures = CircularBuffer(initialCapacity: model.rate > 0 ? max(1, min(model.queue, 4096)) : 1)
    }

    /// Decides one datagram of `length` octets arriving at `now`, in netem's order: lost (or marked
    /// CE when `markable()` — asked only then); else corrupted; duplicated; delayed with jitter,
    /// unless reordered; then the rate's queue, whose tail is dropped when full.
    public mutating func decide(
        length: Int, now: Instant, markable: @autoclosure () -> Bool = false, using generator: inout SeededGenerator
    ) -> ImpairmentDecision {
        var decision = ImpairmentDecision()
        if Self.chance(model.loss, &generator) {
            guard model.markInsteadOfDrop, markable() else {
                decision.lost = true
                return decision
            }
            decision.marked = true
        }
        if Self.chance(model.corrupt, &generator), length > 0 {
            decision.corruptBit = Int.random(in: 0..<(length * 8), using: &generator)
        }
        decision.duplicate = Self.chance(model.duplicate, &generator)
        var delay = model.delay
        if model.jitter > .zero {
            let jitter = Int64.random(in: -model.jitter.nanoseconds...model.jitter.nanoseconds, using: &generator)
            delay = .nanoseconds(max(0, delay.nanoseconds &+ jitter))
        }
        decision.duplicateDelay = delay
        if Self.chance(model.reorder, &generator) {
            decision.reordered = true
            if model.delay > .zero {
                delay = .zero
            } else if model.reorderDelay > .zero {
                let base = model.reorderDelay.nanoseconds
                delay = .nanoseconds(base / 2 + Int64.random(in: 0...base, using: &generator))
            }
        }
        if model.rate > 0 {
            while let first = departures.first, first <= now { departures.removeFirst() }
            if departures.count >= model.queue {
                decision.lost = true
                return decision
            }
            let transmit = Int64(length) * 8 * 1_000_000_000 / Int64(model.rate)
            let departure = max(now, busyUntil) + .nanoseconds(transmit)
            busyUntil = departure
            departures.append(departure)
            delay = delay + (departure - now)
        }
        decision.delay = delay
        return decision
    }

    /// True with the given probability: 53 random bits give every representable step in [0, 1).
    /// Draws nothing when the probability is zero, so an impairment that is off costs nothing.
    @inline(__always)
    static func chance(_ probability: Double, _ generator: inout SeededGenerator) -> Bool {
        guard probability > 0 else { return false }
        return Double(generator.next() >> 11) * 0x1p-53 < probability
    }

    /// Flips bit `bit` of `bytes` (`ImpairmentDecision.corruptBit`): octet `bit / 8` from the first
    /// readable one, bit `bit % 8` from the least significant. A shared buffer is copied first
    /// (copy on write), so no other holder of the bytes sees the change.
    public static func flip(_ bit: Int, in bytes: inout ByteBuffer) {
        let index = bytes.readerIndex + bit / 8
        guard bit >= 0, bit / 8 < bytes.readableBytes, let octet: UInt8 = bytes.getInteger(at: index) else { return }
        bytes.setInteger(octet ^ (1 << UInt8(bit % 8)), at: index)
    }

    /// Whether `markCongestionExperienced` would mark `packet`: ECT(0) or ECT(1).
    public static func isMarkable(_ packet: ByteBuffer) -> Bool {
        guard let first = packet.getInteger(at: packet.readerIndex, as: UInt16.self) else { return false }
        switch first >> 12 {
        case 4: return packet.readableBytes >= IPv4Header.minimumLength
            && ECNCodepoint(trafficClass: UInt8(truncatingIfNeeded: first)).isECNCapable
        case 6: return ECNCodepoint(trafficClass: UInt8(truncatingIfNeeded: first >> 4)).isECNCapable
        default: return false
        }
    }

    /// Sets the ECN field of an ECT datagram to CE (RFC 3168 §5), updating the IPv4 header checksum
    /// incrementally (RFC 1624 eqn. 3) so a checksumming receiver still accepts it. Returns false,
    /// changing nothing, for a Not-ECT (or already CE, or unparseable) datagram.
    @discardableResult
    public static func markCongestionExperienced(_ packet: inout ByteBuffer) -> Bool {
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
            packet.setInteger(marked, at: packet.readerIndex)
            packet.setInteger(InternetChecksum.update(checksum, replacing: word, with: marked), at: packet.readerIndex + 10)
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
}
