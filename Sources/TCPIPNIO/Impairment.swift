import NIOCore
import TCPIP

/// netem's model of a bad path — loss, duplication, corruption, delay, and reordering by letting a
/// fraction of datagrams skip the delay — applied by the runtime to every datagram that crosses the
/// TUN device, in both directions.
///
/// For kernels built without `sch_netem` (`tc qdisc add … netem` fails with "unknown qdisc"), so the
/// kernel's TCP still meets loss and reordering: the datagrams it receives from us and the ones we
/// receive from it are impaired the same way netem on both sides of the device would.
public struct Impairment: Hashable, Sendable, CustomStringConvertible {
    /// Fractions in 0...1.
    public var loss: Double = 0
    /// The fraction sent twice (in 0...1).
    public var duplicate: Double = 0
    /// The fraction sent at once rather than after `delay`, as netem's `reorder`.
    public var reorder: Double = 0
    /// One random bit flipped.
    public var corrupt: Double = 0
    /// How long each datagram is held before it goes on (all but the `reorder` fraction).
    public var delay: TimeAmount = .zero
    /// The seed of the generator that draws the losses, duplicates, reorderings and corruptions: the same seed,
    /// the same impairment.
    public var seed: UInt64 = 1

    /// No impairment: every datagram passes at once, intact.
    public init() {}

    /// Parses netem's words: `loss=5%,reorder=10%,duplicate=1%,corrupt=0.1%,delay=10ms[,seed=N]`.
    public init?(parsing text: String) {
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
            guard parts.count == 2 else { return nil }
            let value = parts[1]
            switch parts[0] {
            case "loss", "duplicate", "reorder", "corrupt":
                guard value.hasSuffix("%"), let percent = Double(value.dropLast()), (0...100).contains(percent) else { return nil }
                let fraction = percent / 100
                switch parts[0] {
                case "loss": loss = fraction
                case "duplicate": duplicate = fraction
                case "reorder": reorder = fraction
                default: corrupt = fraction
                }
            case "delay":
                // Up to an hour: beyond, a delay is a loss (and the nanoseconds would not fit).
                guard value.hasSuffix("ms"), let milliseconds = Int64(value.dropLast(2)), (0...3_600_000).contains(milliseconds)
                else { return nil }
                delay = .milliseconds(milliseconds)
            case "seed":
                guard let seed = UInt64(value) else { return nil }
                self.seed = seed
            default:
                return nil
            }
        }
    }

    public var description: String {
        "loss=\(loss * 100)%,duplicate=\(duplicate * 100)%,reorder=\(reorder * 100)%,corrupt=\(corrupt * 100)%,delay=\(delay.nanoseconds / 1_000_000)ms"
    }
}

/// The state of an `Impairment` in a runtime: its generator and the datagrams held for `delay`.
/// Public for drivers of their own (`tcpip route` impairs each link's directions with one each).
public struct Impairer {
    /// What it impairs by.
    public let model: Impairment
    var generator: SeededGenerator
    /// Held datagrams in release order (one fixed delay keeps them sorted).
    var held = CircularBuffer<(release: Instant, packet: ByteBuffer, inbound: Bool)>(initialCapacity: 64)
    /// Datagrams lost so far (`loss`).
    public private(set) var dropped: UInt64 = 0

    /// An impairer with `model`'s generator, seeded from `model.seed`.
    ///
    /// - Parameter model: the impairment to apply.
    public init(_ model: Impairment) {
        self.model = model
        self.generator = SeededGenerator(seed: model.seed)
    }

    private mutating func chance(_ probability: Double) -> Bool {
        probability > 0 && Double(generator.next() >> 11) / Double(1 << 53) < probability
    }

    /// Decides one datagram's fate: the copies to deliver now; delayed ones go to `held`.
    public mutating func admit(_ packet: ByteBuffer, inbound: Bool, now: Instant) -> [ByteBuffer] {
        if chance(model.loss) {
            dropped &+= 1
            return []
        }
        var packet = packet
        if chance(model.corrupt), packet.readableBytes > 0 {
            let bit = Int(generator.next() % UInt64(packet.readableBytes * 8))
            let index = packet.readerIndex + bit / 8
            let byte = packet.getInteger(at: index, as: UInt8.self)!
            packet.setInteger(byte ^ (1 << UInt8(bit % 8)), at: index)
        }
        let copies = chance(model.duplicate) ? 2 : 1
        if model.delay == .zero || chance(model.reorder) {
            return Array(repeating: packet, count: copies)
        }
        for _ in 0..<copies { held.append((now + model.delay, packet, inbound)) }
        return []
    }

    /// When the first held datagram's delay is over.
    public var nextRelease: Instant? { held.first?.release }

    /// Datagrams held for their delay.
    public var heldCount: Int { held.count }

    /// Datagrams whose delay is over.
    public mutating func due(now: Instant) -> [(packet: ByteBuffer, inbound: Bool)] {
        var released: [(packet: ByteBuffer, inbound: Bool)] = []
        while let first = held.first, first.release <= now {
            held.removeFirst()
            released.append((first.packet, first.inbound))
        }
        return released
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
