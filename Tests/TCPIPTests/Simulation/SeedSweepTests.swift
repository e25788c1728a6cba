import NIOCore
import TCPIP
import TCPIPSimulation
import Testing

/// A thousand seeded runs across loss, reordering, duplication and corruption, both IP versions,
/// one and many connections, one and both directions — every byte verified in every run.
@Suite struct SeedSweepTests {
    /// The fault mix for a seed: each dimension cycles at a different period, so the 1,000 seeds
    /// cover every combination many times.
    static func configuration(seed: UInt64) -> TransferSimulation.Configuration {
        var configuration = TransferSimulation.Configuration()
        let losses = [0.0, 0.01, 0.05, 0.1]
        configuration.seed = seed
        configuration.ipVersion = seed % 2 == 0 ? 4 : 6
        configuration.faults = FaultInjector.Configuration(
            loss: losses[Int(seed % 4)],
            duplicate: seed % 3 == 0 ? 0.02 : 0,
            reorder: seed % 5 < 2 ? 0.05 : 0,
            corrupt: seed % 7 < 3 ? 0.01 : 0)
        configuration.connections = seed % 10 == 0 ? 6 : 1
        configuration.bidirectional = seed % 3 == 1
        configuration.bytes = (8_000 + Int(seed % 11) * 1_700) * configuration.connections
        configuration.delay = .milliseconds(Int64(1 + seed % 20))
        configuration.timeLimit = .seconds(900)
        return configuration
    }

    @Test(arguments: 0..<10)
    func thousandSeeds(block: Int) {
        for seed in UInt64(block * 100)..<UInt64(block * 100 + 100) {
            let result = TransferSimulation.run(Self.configuration(seed: seed))
            #expect(result.verified, "seed \(seed): \(result.failures)")
            if !result.verified { return }
        }
    }
}
