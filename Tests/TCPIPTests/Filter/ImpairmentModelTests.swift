import NIOCore
import TCPIP
import TCPIPSimulation
import TCPIPWire
import TestSupport
import Testing

/// One impairment model (`ImpairmentProcess`) behind both entry points: an `impair` rule and a
/// `FaultInjector` with the same parameters and the same seed deliver the same datagrams, with the
/// same bits flipped, at the same times. (`TCPIPNIOTests.ImpairmentTests` checks `--impair` the same way.)
@Suite struct ImpairmentModelTests {
    typealias Delivery = ImpairmentDeliveries.Delivery
    static var count: Int { ImpairmentDeliveries.count }
    static func datagram(_ index: Int) -> ByteBuffer { ImpairmentDeliveries.datagram(index) }

    /// A link that hands over what it was given, all at time zero.
    final class QueueLink: PacketLink {
        var queue: [ByteBuffer]
        init(_ queue: [ByteBuffer]) { self.queue = queue.reversed() }
        var mtu: Int { 1500 }
        var capabilities: LinkCapabilities { LinkCapabilities() }
        func send(_ packet: ByteBuffer, now: Instant) {}
        func receive(now: Instant) -> ByteBuffer? { queue.popLast() }
        var nextArrival: Instant? { queue.isEmpty ? nil : .zero }
    }

    /// The same datagrams received through a `FaultInjector` of the rule's model, drained by its
    /// `nextArrival`.
    static func throughFaultInjector(_ model: ImpairmentModel, seed: UInt64) -> [Delivery] {
        let injector = FaultInjector(wrapping: QueueLink((0..<count).map(datagram)), model: model, seed: seed)
        var deliveries: [Delivery] = []
        while let time = injector.nextArrival {
            guard let packet = injector.receive(now: time) else { continue }
            deliveries.append(Delivery(
                time: time.nanoseconds, index: Int(packet.getInteger(at: packet.readerIndex, as: UInt16.self)!),
                bytes: Array(packet.readableBytesView)))
        }
        return deliveries.sorted()
    }

    static let statements = [
        "impair loss 10%", "impair duplicate 10%", "impair corrupt 10%", "impair reorder 10%",
        "impair delay 10ms reorder 20%", "impair delay 10ms jitter 4ms", "impair rate 1mbit queue 20",
        "impair loss 5% duplicate 5% corrupt 5% delay 3ms jitter 1ms rate 10mbit queue 100",
    ]

    @Test(arguments: statements)
    func ruleAndFaultInjectorDecideAlike(_ statement: String) throws {
        let spec = try #require(Self.spec(statement))
        let byRule = try #require(try ImpairmentDeliveries.throughRule(statement, seed: 5), "not an impair verdict")
        let byInjector = Self.throughFaultInjector(ImpairmentModel(spec), seed: 5)
        #expect(byRule == byInjector)
        // And the impairment did something: not every datagram once, unchanged, at time zero.
        #expect(byRule != ImpairmentDeliveries.unimpaired)
    }

    static func spec(_ statement: String) -> ImpairmentSpec? {
        guard let ruleset = try? FilterRuleset(parsing: "table ip t { chain c { \(statement) } }"),
              case .impair(let spec)? = ruleset.tables.first?.chains.first?.rules.first?.statements.first else { return nil }
        return spec
    }

    /// The simulator's models keep their decisions: `FaultInjector.Configuration` is the model
    /// without a delay, its reordering a hold of `reorderDelay` ±50 %.
    @Test func faultInjectorConfigurationIsTheModel() {
        let configuration = FaultInjector.Configuration(loss: 0.05, duplicate: 0.05, reorder: 0.1, corrupt: 0.05)
        let a = Self.throughFaultInjector(configuration.model, seed: 9)
        let injector = FaultInjector(wrapping: QueueLink((0..<Self.count).map(Self.datagram)), configuration: configuration, seed: 9)
        var b: [Delivery] = []
        while let time = injector.nextArrival {
            guard let packet = injector.receive(now: time) else { continue }
            b.append(Delivery(time: time.nanoseconds, index: Int(packet.getInteger(at: packet.readerIndex, as: UInt16.self)!),
                              bytes: Array(packet.readableBytesView)))
        }
        #expect(a == b.sorted())
        #expect(injector.statistics.reordered > 0)
        #expect(b.contains { $0.time >= 2_500_000 && $0.time <= 7_500_000 })
    }
}
