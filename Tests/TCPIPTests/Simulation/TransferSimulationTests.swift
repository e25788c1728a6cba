import NIOCore
import TCPIP
import TCPIPSimulation
import Testing

@Suite struct TransferSimulationTests {
    static func simulate(
        bytes: Int = 200_000, connections: Int = 1, bidirectional: Bool = false,
        loss: Double = 0, duplicate: Double = 0, reorder: Double = 0, corrupt: Double = 0,
        ip: Int = 4, seed: UInt64 = 1, mtu: Int = 1500
    ) -> TransferSimulation.Result {
        var configuration = TransferSimulation.Configuration()
        configuration.bytes = bytes
        configuration.connections = connections
        configuration.bidirectional = bidirectional
        configuration.faults = FaultInjector.Configuration(loss: loss, duplicate: duplicate, reorder: reorder, corrupt: corrupt)
        configuration.ipVersion = ip
        configuration.seed = seed
        configuration.mtu = mtu
        configuration.timeLimit = .seconds(600)
        return TransferSimulation.run(configuration)
    }

    @Test func cleanTransferIPv4() {
        let result = Self.simulate()
        #expect(result.failures == [])
        #expect(result.verified)
        #expect(result.retransmits == 0)
    }

    @Test(arguments: [4, 6])
    func faultyTransfer(ip: Int) {
        let result = Self.simulate(bytes: 500_000, loss: 0.05, duplicate: 0.02, reorder: 0.05, corrupt: 0.01, ip: ip, seed: 7)
        #expect(result.failures == [])
        #expect(result.verified)
        #expect(result.retransmits > 0)
    }

    /// RFC 3168 end to end: the link marks CE where it would drop (an ECN router), the receivers
    /// echo it, the senders slow down — and with the data packets' losses turned into marks,
    /// nothing needs retransmitting. Every byte still verified, both ways, over IPv4 and IPv6.
    @Test(arguments: [4, 6])
    func congestionMarkedInsteadOfDropped(ip: Int) {
        var configuration = TransferSimulation.Configuration()
        configuration.bytes = 500_000
        configuration.bidirectional = true
        configuration.ipVersion = ip
        configuration.seed = 11
        configuration.tcp.explicitCongestionNotification = .request
        configuration.faults = FaultInjector.Configuration(loss: 0.03, markInsteadOfDrop: true)
        configuration.timeLimit = .seconds(600)
        let result = TransferSimulation.run(configuration)
        #expect(result.failures == [])
        #expect(result.verified)
        #expect(result.faults.marked > 0)
        #expect(result.clientCounters.ecnConnections == 1 && result.serverCounters.ecnConnections == 1)
        #expect(result.serverCounters.congestionExperiencedReceived > 0)
        #expect(result.clientCounters.ecnWindowReductions > 0)
        #expect(result.clientCounters.congestionWindowReducedSent > 0)
        // Only pure ACKs (Not-ECT, RFC 3168 §6.1.4) are still lost: no data is.
        #expect(result.faults.dropped > 0)
        #expect(result.retransmits == 0)
    }

    @Test func manyConnectionsBidirectional() {
        let result = Self.simulate(bytes: 1_000_000, connections: 50, bidirectional: true, loss: 0.02, reorder: 0.02, seed: 3)
        #expect(result.failures == [])
        #expect(result.verified)
    }
}
