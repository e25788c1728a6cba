import NIOCore
import TCPIP
import TCPIPSimulation
import Testing

/// A thousand seeded transfers through a router hop with a narrower next link (`PathMTURouter`):
/// path MTUs over 576–1500 (IPv4) and 1280–1500 (IPv6), with loss, reordering and duplication,
/// one and both directions; one seed in five a black hole that sends no ICMP, which RFC 4821
/// probing must get through. Every byte verified in every run, and the MTU settled on fits the path.
@Suite struct PathMTUSweepTests {
    static func configuration(seed: UInt64) -> TransferSimulation.Configuration {
        var configuration = TransferSimulation.Configuration()
        configuration.seed = seed
        configuration.ipVersion = seed % 2 == 0 ? 4 : 6
        // A path MTU spread over the whole range by a multiplicative hash of the seed.
        let spread = Int((seed &* 0x9E37_79B9_7F4A_7C15) >> 40) % 1000
        configuration.pathMTU = configuration.ipVersion == 4 ? 576 + spread * (1500 - 576) / 999 : 1280 + spread * 220 / 999
        configuration.icmpBlackHole = seed % 5 == 3
        let losses = [0.0, 0.01, 0.02, 0.05]
        configuration.faults = FaultInjector.Configuration(
            loss: losses[Int(seed / 2 % 4)],
            duplicate: seed % 7 == 0 ? 0.02 : 0,
            reorder: seed % 9 < 2 ? 0.05 : 0)
        configuration.bidirectional = seed % 3 == 1
        configuration.bytes = 20_000 + Int(seed % 13) * 3_000
        configuration.delay = .milliseconds(Int64(1 + seed % 20))
        configuration.timeLimit = .seconds(900)
        return configuration
    }

    @Test(arguments: 0..<10)
    func thousandSeeds(block: Int) {
        for seed in UInt64(block * 100)..<UInt64(block * 100 + 100) {
            let configuration = Self.configuration(seed: seed)
            let result = TransferSimulation.run(configuration)
            #expect(result.verified, "seed \(seed): \(result.failures)")
            #expect((result.router?.largestForwarded ?? 0) <= configuration.pathMTU!)
            if !result.verified { return }
        }
    }

    /// With ICMP, the connection settles on the path MTU itself; without, on one RFC 4821 found.
    @Test func settlesOnThePathMTU() {
        var configuration = TransferSimulation.Configuration()
        configuration.bytes = 400_000
        configuration.pathMTU = 1000
        var result = TransferSimulation.run(configuration)
        #expect(result.verified)
        #expect(result.settledPathMTU == 1000)
        #expect(result.clientCounters.pathMTUReductions == 1)
        #expect(result.clientCounters.retransmissionTimeouts == 0)

        configuration.icmpBlackHole = true
        result = TransferSimulation.run(configuration)
        #expect(result.verified, "\(result.failures)")
        #expect(result.router?.errorsSent == 0)
        #expect(result.clientCounters.mtuBlackHolesDetected >= 1)
        #expect(result.clientCounters.mtuProbesSucceeded >= 1)
        let settled = result.settledPathMTU ?? 0
        #expect(settled <= 1000 && settled > 1000 - 16, "settled on \(settled)")
    }
}
