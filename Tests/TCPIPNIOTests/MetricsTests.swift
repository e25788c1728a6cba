import MetricsTestKit
import NIOCore
import TCPIP
import TCPIPNIO
import Testing

/// The runtime exports the stack's counters through swift-metrics: what a metrics backend adds up
/// is what the stack counted.
@Suite struct MetricsTests {
    @Test func countersAreExportedAsTheStackCountsThem() async throws {
        let metrics = TestMetrics()
        let pair = try await RuntimePair()
        pair.client.exportMetrics(every: .milliseconds(20), factory: metrics)

        // Nothing listens on port 9: SYN out, RST in, a failed attempt — twice, across exports.
        for _ in 0..<2 {
            await #expect(throws: TCPError.self) {
                _ = try await TCPIPClientBootstrap(runtime: pair.client)
                    .connect(to: Endpoint(RuntimePair.serverAddress, 9)).get()
            }
            try await Task.sleep(nanoseconds: 60_000_000)
        }
        let client = pair.client
        try await client.stop()  // the last export runs as the runtime stops
        let counted = try await client.eventLoop.submit { client.stack.counters }.get()
        try await pair.shutdown()

        #expect(counted.activeOpens == 2)
        #expect(counted.failedConnectionAttempts == 2)
        for (name, value) in counted.all where value > 0 {
            #expect(metrics.counterTotal(label: "tcpip_\(name)") == Int64(value), "tcpip_\(name)")
        }
        #expect(try metrics.expectCounter("tcpip_resets_received").totalValue == 2)
        #expect(try metrics.expectGauge("tcpip_connections").lastValue == 0)
    }
}
