import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import TCPIP
import TCPIPNIO
import TCPIPWire
import Testing
@testable import tcpip

/// `--metrics-port`: Prometheus scrapes the stack's counters over HTTP/1 from the endpoint the
/// long-running commands start in one line.
@Suite struct MetricsEndpointTests {
    /// GETs `path` from 127.0.0.1:`port` with HTTP/1.0 (the server closes after answering) and
    /// returns the whole response, head and body.
    static func get(_ path: String, port: Int, on group: EventLoopGroup) async throws -> String {
        let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
            var response = ""
            for try await chunk in inbound { response += String(buffer: chunk) }
            return response
        }
    }

    @Test func prometheusScrapesTheStacksCounters() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (near, far) = InProcessPacketSource.makePair()
        let client = try await StackRuntime.start(
            StackConfiguration(addresses: [IPAddress("198.18.0.1")!], seed: 1), source: near, on: group.next())
        let server = try await StackRuntime.start(
            StackConfiguration(addresses: [IPAddress("198.18.0.2")!], seed: 2), source: far, on: group.next())
        let endpoint = try MetricsEndpoint.start(
            for: client, host: "127.0.0.1", port: 0, interval: .milliseconds(20), logger: Logger(label: "test"))

        // A connection to a port nobody listens on: a SYN out, a RST back — counters that move.
        let refused = try? await TCPIPClientBootstrap(runtime: client)
            .connect(to: Endpoint(IPAddress("198.18.0.2")!, 9)).get()
        #expect(refused == nil)

        // The export runs every 20 ms on the runtime's loop; a scrape sees it within a few.
        var body = ""
        for _ in 0..<250 where !body.contains("tcpip_active_opens 1") {
            body = try await Self.get("/metrics", port: endpoint.port, on: group)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(body.hasPrefix("HTTP/1.0 200 OK"))
        #expect(body.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(body.contains("# TYPE tcpip_segments_sent counter"))
        #expect(body.contains("tcpip_active_opens 1"))
        #expect(body.contains("tcpip_connections"))

        let missing = try await Self.get("/", port: endpoint.port, on: group)
        #expect(missing.hasPrefix("HTTP/1.0 404"))

        endpoint.close()
        try? await client.stop()
        try? await server.stop()
        try await group.shutdownGracefully()
    }

    #if os(Linux)
    /// `route --metrics-port`: the loop's snapshots become Prometheus counters that only grow, each
    /// link and rule with its labels, every counter present from the first export.
    @Test func routerSnapshotsBecomeCounters() throws {
        let metrics = RouteMetrics()
        var snapshot = RouteMetrics.Snapshot()
        snapshot.links = [("ra", LinkCounters()), ("rb", LinkCounters())]
        snapshot.rules = try FilterRuleset(parsing: "table inet f { chain fwd { type filter hook forward priority 0; ip daddr 198.18.9.9 drop } }")
        metrics.publish(snapshot)
        metrics.export()
        var text = String(decoding: metrics.registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains("# TYPE tcpip_router_forwarded counter"))
        #expect(text.contains("tcpip_router_forwarded 0"))
        #expect(text.contains(#"tcpip_router_link_packets_received{link="ra"} 0"#))
        #expect(text.contains(#"tcpip_router_rule_packets{table="f",chain="fwd",rule="0"} 0"#))

        snapshot.forwarding.forwarded = 6
        snapshot.forwarding.bytesForwarded = 504
        snapshot.links[1].counters.packetsSent = 3
        snapshot.rules!.tables[0].chains[0].rules[0].packets = 2
        metrics.publish(snapshot)
        metrics.export()
        metrics.export()  // nothing new: no double counting
        text = String(decoding: metrics.registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains("tcpip_router_forwarded 6"))
        #expect(text.contains("tcpip_router_bytes_forwarded 504"))
        #expect(text.contains(#"tcpip_router_link_packets_sent{link="rb"} 3"#))
        #expect(text.contains(#"tcpip_router_rule_packets{table="f",chain="fwd",rule="0"} 2"#))
    }
    #endif

    @Test func portOutOfRangeSaysTheRange() {
        do {
            _ = try MetricsOptions.parse(["--metrics-port", "70000"])
            Issue.record("--metrics-port 70000 accepted")
        } catch {
            #expect(MetricsOptions.message(for: error) == "--metrics-port 70000: a TCP port is 0...65535 (0 picks any free one)")
        }
    }
}
