import NIOCore
import TCPIP
import TCPIPNIO
import TCPIPWire
import Testing

@Suite struct ImpairmentTests {
    @Test func parsesNetemWords() throws {
        let model = try #require(Impairment(parsing: "loss=5%,reorder=10%,duplicate=1%,corrupt=0.1%,delay=10ms"))
        #expect(model.loss == 0.05)
        #expect(model.reorder == 0.1)
        #expect(model.duplicate == 0.01)
        #expect(abs(model.corrupt - 0.001) < 1e-12)
        #expect(model.delay == .milliseconds(10))
    }

    @Test(arguments: ["loss=5", "loss=101%", "delay=10", "jitter=1", "rate=10", "bogus=1ms", "loss"])
    func rejectsWhatNetemWouldNot(_ text: String) {
        #expect(Impairment(parsing: text) == nil)
    }
}

/// `--impair` is the model of an `impair` rule (`ImpairmentProcess`): with the same parameters and
/// seed, an `Impairer` and the rule deliver the same datagrams, with the same bits flipped, at the
/// same times.
@Suite struct ImpairmentModelAgreementTests {
    static let count = 300

    static func datagram(_ index: Int) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt16(index))
        bytes.writeBytes((2..<200).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) })
        return bytes
    }

    struct Delivery: Hashable, Comparable {
        var time: Int64
        var index: Int
        var bytes: [UInt8]

        static func < (a: Delivery, b: Delivery) -> Bool {
            if a.time != b.time { return a.time < b.time }
            if a.index != b.index { return a.index < b.index }
            return a.bytes.lexicographicallyPrecedes(b.bytes)
        }
    }

    static func throughRule(_ statement: String, seed: UInt64) throws -> [Delivery] {
        var filter = try PacketFilter(FilterRuleset(parsing: """
            table ip t { chain c { type filter hook prerouting priority 0; \(statement) } }
            """), seed: seed)
        var deliveries: [Delivery] = []
        for index in 0..<count {
            var packet = FilterPacket(
                source: .v4(IPv4Address(198, 18, 0, 1)), destination: .v4(IPv4Address(198, 18, 2, 1)), protocolNumber: 17, length: 200)
            guard case .impair(let decision) = filter.evaluate(&packet, hook: .prerouting, now: .zero) else { return [] }
            if decision.lost { continue }
            var bytes = datagram(index)
            if let bit = decision.corruptBit { ImpairmentProcess.flip(bit, in: &bytes) }
            let delivered = Array(bytes.readableBytesView)
            if decision.duplicate { deliveries.append(Delivery(time: decision.duplicateDelay.nanoseconds, index: index, bytes: delivered)) }
            deliveries.append(Delivery(time: decision.delay.nanoseconds, index: index, bytes: delivered))
        }
        return deliveries.sorted()
    }

    static func throughImpairer(_ text: String) throws -> [Delivery] {
        var impairer = Impairer(try #require(Impairment(parsing: text)))
        func delivery(_ packet: ByteBuffer, _ time: Int64) -> Delivery {
            Delivery(time: time, index: Int(packet.getInteger(at: packet.readerIndex, as: UInt16.self)!), bytes: Array(packet.readableBytesView))
        }
        var deliveries: [Delivery] = []
        for index in 0..<count {
            for packet in impairer.admit(datagram(index), inbound: true, now: .zero) { deliveries.append(delivery(packet, 0)) }
        }
        while let release = impairer.nextRelease {
            for (packet, _) in impairer.due(now: release) { deliveries.append(delivery(packet, release.nanoseconds)) }
        }
        return deliveries.sorted()
    }

    @Test(arguments: [
        ("impair loss 10%", "loss=10%"), ("impair duplicate 10%", "duplicate=10%"), ("impair corrupt 10%", "corrupt=10%"),
        ("impair delay 10ms reorder 20%", "delay=10ms,reorder=20%"), ("impair delay 10ms jitter 4ms", "delay=10ms,jitter=4ms"),
        ("impair rate 1mbit queue 20", "rate=1mbit,queue=20"),
        ("impair loss 5% duplicate 5% corrupt 5% delay 3ms jitter 1ms rate 10mbit queue 100",
         "loss=5%,duplicate=5%,corrupt=5%,delay=3ms,jitter=1ms,rate=10mbit,queue=100"),
    ])
    func ruleAndImpairDecideAlike(_ rule: String, _ option: String) throws {
        let byRule = try Self.throughRule(rule, seed: 5)
        #expect(byRule == (try Self.throughImpairer(option + ",seed=5")))
        #expect(byRule != (0..<Self.count).map { Delivery(time: 0, index: $0, bytes: Array(Self.datagram($0).readableBytesView)) })
    }
}
