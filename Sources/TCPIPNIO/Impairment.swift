import NIOCore
import TCPIP

/// netem's model of a bad path — loss, duplication, corruption, delay with jitter, reordering by
/// letting a fraction of datagrams skip the delay, a rate with a drop-tail queue — applied by the
/// runtime to every datagram that crosses the TUN device, in both directions. The parameters of an
/// `ImpairmentModel` and a seed: the decisions are `ImpairmentProcess`'s, as an `impair` rule's.
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
    /// The delay varies uniformly within ±jitter.
    public var jitter: TimeAmount = .zero
    /// Bits per second; 0: no rate limit.
    public var rate = 0
    /// Datagrams waiting for the rate before the tail is dropped.
    public var queue = 1000
    /// The seed of the generator that draws the losses, duplicates, reorderings and corruptions: the same seed,
    /// the same impairment.
    public var seed: UInt64 = 1

    /// No impairment: every datagram passes at once, intact.
    public init() {}

    /// The model these parameters are.
    public var model: ImpairmentModel {
        ImpairmentModel(
            loss: loss, duplicate: duplicate, reorder: reorder, corrupt: corrupt, delay: delay, jitter: jitter,
            rate: rate, queue: queue)
    }

    /// Parses netem's words: `loss=5%,reorder=10%,duplicate=1%,corrupt=0.1%,delay=10ms,jitter=2ms,
    /// rate=10mbit,queue=100[,seed=N]` (rate in bit, kbit, mbit or gbit per second).
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
            case "delay", "jitter":
                // Up to an hour: beyond, a delay is a loss (and the nanoseconds would not fit).
                guard value.hasSuffix("ms"), let milliseconds = Int64(value.dropLast(2)), (0...3_600_000).contains(milliseconds)
                else { return nil }
                if parts[0] == "delay" { delay = .milliseconds(milliseconds) } else { jitter = .milliseconds(milliseconds) }
            case "rate":
                let units: [(String, Int)] = [("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1000), ("bit", 1)]
                guard let (unit, scale) = units.first(where: { value.hasSuffix($0.0) }),
                      let number = Int(value.dropLast(unit.count)), (1...(Int(Int32.max) / 8)).contains(number)
                else { return nil }
                rate = number * scale
            case "queue":
                guard let count = Int(value), (1...1_000_000).contains(count) else { return nil }
                queue = count
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
            + (jitter > .zero ? ",jitter=\(jitter.nanoseconds / 1_000_000)ms" : "") + (rate > 0 ? ",rate=\(rate)bit,queue=\(queue)" : "")
    }
}

/// The state of an `Impairment` in a runtime: its `ImpairmentProcess`, generator and the datagrams
/// held for their delay. Public for drivers of their own (`tcpip route` impairs each link's
/// directions with one each).
public struct Impairer {
    /// What it impairs by.
    public let model: Impairment
    var process: ImpairmentProcess
    var generator: SeededGenerator
    /// Held datagrams in release order (ties in the order they were held).
    var held = CircularBuffer<(release: Instant, packet: ByteBuffer, inbound: Bool)>(initialCapacity: 64)
    /// Datagrams lost so far (`loss`).
    public private(set) var dropped: UInt64 = 0

    /// An impairer with `model`'s generator, seeded from `model.seed`.
    ///
    /// - Parameter model: the impairment to apply.
    public init(_ model: Impairment) {
        self.model = model
        self.process = ImpairmentProcess(model.model)
        self.generator = SeededGenerator(seed: model.seed)
    }

    /// Decides one datagram's fate: the copies to deliver now; delayed ones go to `held`.
    public mutating func admit(_ packet: ByteBuffer, inbound: Bool, now: Instant) -> [ByteBuffer] {
        let decision = process.decide(length: packet.readableBytes, now: now, using: &generator)
        if decision.lost {
            dropped &+= 1
            return []
        }
        var packet = packet
        if let bit = decision.corruptBit { ImpairmentProcess.flip(bit, in: &packet) }
        var deliver: [ByteBuffer] = []
        if decision.duplicate {
            if decision.duplicateDelay == .zero { deliver.append(packet) } else { hold(packet, inbound: inbound, release: now + decision.duplicateDelay) }
        }
        if decision.delay == .zero { deliver.append(packet) } else { hold(packet, inbound: inbound, release: now + decision.delay) }
        return deliver
    }

    /// Inserts keeping `held` sorted by release; equal releases keep their order (with one fixed
    /// delay every insertion is at the end).
    private mutating func hold(_ packet: ByteBuffer, inbound: Bool, release: Instant) {
        // The common case, and the only one with a fixed delay: at the end. `CircularBuffer.insert`
        // rebuilds the whole buffer, which at 300 Mbit/s behind 50 ms (thousands held) stalled the
        // event loop.
        if held.last.map({ $0.release <= release }) ?? true {
            held.append((release: release, packet: packet, inbound: inbound))
            return
        }
        var index = held.endIndex
        while index > held.startIndex {
            let before = held.index(before: index)
            if held[before].release <= release { break }
            index = before
        }
        held.insert((release: release, packet: packet, inbound: inbound), at: index)
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
