import NIOCore
import TCPIP
import TCPIPNIO
import TCPIPWire
import TestSupport
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
    typealias Delivery = ImpairmentDeliveries.Delivery
    static var count: Int { ImpairmentDeliveries.count }
    static func datagram(_ index: Int) -> ByteBuffer { ImpairmentDeliveries.datagram(index) }

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
        let byRule = try #require(try ImpairmentDeliveries.throughRule(rule, seed: 5), "not an impair verdict")
        #expect(byRule == (try Self.throughImpairer(option + ",seed=5")))
        #expect(byRule != ImpairmentDeliveries.unimpaired)
    }
}
