import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import TCPIP
import TCPIPGateway
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

    /// `tcpip gateway --metrics-port`: the gateway's flow figures beside the stack's counters. A
    /// client stack's flows enter an intercepting stack; its gateway relays them to 127.0.0.1: one
    /// echo of 5 bytes, one port nobody listens on.
    @Test func prometheusScrapesTheGatewaysFlows() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var intercepting = StackConfiguration(addresses: [], seed: 2)
        intercepting.interception = InterceptionConfiguration()
        let (client, gatewayStack) = try await StackRuntime.makePair(
            StackConfiguration(addresses: [IPAddress("198.18.0.1")!], seed: 1), intercepting, group: group)
        let loop = gatewayStack.eventLoop
        let gateway = try await loop.submit {
            let gateway = Gateway(configuration: GatewayConfiguration(upstream: ToLoopback()), loop: loop)
            gateway.serve(gatewayStack)
            return NIOLoopBound(gateway, eventLoop: loop)
        }.get()
        let endpoint = try MetricsEndpoint.start(
            for: gatewayStack, host: "127.0.0.1", port: 0, interval: .milliseconds(20),
            exporting: [{ factory, interval in try loop.submit { gateway.value.exportMetrics(every: interval, factory: factory) }.wait() }],
            logger: Logger(label: "test"))
        let echo = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let closed = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let closedPort = UInt16(closed.localAddress!.port!)
        try await closed.close()

        let channel = try await TCPIPClientBootstrap(runtime: client)
            .connect(to: Endpoint(IPAddress("198.19.0.1")!, UInt16(echo.localAddress!.port!)), configuration: .init())
        let echoed = try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "hello"))
            var iterator = inbound.makeAsyncIterator()
            return try await iterator.next().map { String(buffer: $0) }
        }
        #expect(echoed == "hello")
        await #expect(throws: TCPError.connectionRefused) {
            _ = try await TCPIPClientBootstrap(runtime: client).connect(to: Endpoint(IPAddress("198.19.0.1")!, closedPort)).get()
        }

        var body = ""
        for _ in 0..<250 where !(body.contains("tcpip_gateway_bytes_to_clients 5") && body.contains("reason=\"refused\"")) {
            body = try await Self.get("/metrics", port: endpoint.port, on: group)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(body.contains("tcpip_gateway_flows_opened{transport=\"tcp\"} 2"))
        #expect(body.contains("tcpip_gateway_flows_opened{transport=\"udp\"} 0"))
        #expect(body.contains("# TYPE tcpip_gateway_flows_open gauge"))
        #expect(body.contains("tcpip_gateway_refusals{reason=\"refused\"} 1"))
        #expect(body.contains("tcpip_gateway_refusals{reason=\"flow_limit\"} 0"))
        #expect(body.contains("tcpip_gateway_upstream_dial_failures 1"))
        #expect(body.contains("tcpip_gateway_bytes_from_clients 5"))
        #expect(body.contains("tcpip_gateway_bytes_to_clients 5"))
        #expect(body.contains("tcpip_intercept_accepted 1"), "the stack's counters are there too")

        endpoint.close()
        try await echo.close()
        try? await client.stop()
        try? await gatewayStack.stop()
        try await group.shutdownGracefully()
    }

    @Test func portOutOfRangeSaysTheRange() {
        do {
            _ = try MetricsOptions.parse(["--metrics-port", "70000"])
            Issue.record("--metrics-port 70000 accepted")
        } catch {
            #expect(MetricsOptions.message(for: error) == "--metrics-port 70000: a TCP port is 0...65535 (0 picks any free one)")
        }
    }
}

/// Every relayed flow goes to the same port on 127.0.0.1 (a test's kernel servers).
struct ToLoopback: Upstream {
    let base = DirectUpstream()
    var description: String { "loopback" }

    func connect(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        base.connect(to: .ip(.v4(IPv4Address(127, 0, 0, 1)), port: target.port), on: loop)
    }

    func openUDP(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UDPSession> {
        base.openUDP(to: .ip(.v4(IPv4Address(127, 0, 0, 1)), port: target.port), on: loop)
    }
}
