import ArgumentParser
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import TCPIPNIO

/// `--metrics-port` for every long-running command: one option group, and one line in `run()`
/// (the endpoint closes with the runtime):
///
///     _ = try metrics.start(for: running.runtime, logger: running.logger)
struct MetricsOptions: ParsableArguments {
    @Option(
        name: .customLong("metrics-port"),
        help: ArgumentHelp(
            "Serve the stack's counters to Prometheus at http://ADDRESS:PORT/metrics (0: any free port).",
            discussion: "A socket of this host (not of the stack): Prometheus scrapes it where the command runs."))
    var metricsPort: Int?
    @Option(name: .customLong("metrics-address"), help: "The host address the metrics endpoint listens on.")
    var metricsAddress: String = "127.0.0.1"

    func validate() throws {
        if let metricsPort, !(0...65535).contains(metricsPort) {
            throw ValidationError("--metrics-port \(metricsPort): a TCP port is 0...65535 (0 picks any free one)")
        }
    }

    /// Starts the endpoint when `--metrics-port` was given.
    func start(for runtime: StackRuntime, logger: Logger) throws -> MetricsEndpoint? {
        guard let metricsPort else { return nil }
        return try MetricsEndpoint.start(for: runtime, host: metricsAddress, port: metricsPort, logger: logger)
    }

    /// Starts the endpoint for counters that are not a stack's (`route`'s) when `--metrics-port` was
    /// given: `export` fills `registry` every `interval` on `eventLoop`, and once more at `close()`.
    func start(
        registry: PrometheusCollectorRegistry, on eventLoop: any EventLoop, interval: TimeAmount = .seconds(1),
        logger: Logger, export: @escaping @Sendable () -> Void
    ) throws -> MetricsEndpoint? {
        guard let metricsPort else { return nil }
        let task = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in export() }
        return try MetricsEndpoint.start(
            registry: registry, on: eventLoop, host: metricsAddress, port: metricsPort, export: task, finalExport: export,
            logger: logger)
    }
}

/// The stack's counters in Prometheus' text format on a tiny HTTP/1 server: the runtime exports them
/// through swift-metrics (`StackRuntime.exportMetrics`) into a swift-prometheus registry of its own,
/// and `GET /metrics` renders the registry.
///
/// The server shares the runtime's event loop (a scrape is rare and small), listens on a host
/// socket, not on the stack, and closes when the runtime does. Counters are at most `interval` old.
final class MetricsEndpoint: Sendable {
    let registry: PrometheusCollectorRegistry
    private let channel: Channel
    private let export: RepeatedTask
    private let finalExport: (@Sendable () -> Void)?

    /// The port it listens on (the one the system picked, for port 0).
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(
        registry: PrometheusCollectorRegistry, channel: Channel, export: RepeatedTask, finalExport: (@Sendable () -> Void)?
    ) {
        self.registry = registry
        self.channel = channel
        self.export = export
        self.finalExport = finalExport
    }

    static func start(
        for runtime: StackRuntime, host: String, port: Int, interval: TimeAmount = .seconds(1), logger: Logger
    ) throws -> MetricsEndpoint {
        let registry = PrometheusCollectorRegistry()
        let export = runtime.exportMetrics(every: interval, factory: PrometheusMetricsFactory(registry: registry))
        let endpoint = try start(registry: registry, on: runtime.eventLoop, host: host, port: port, export: export, logger: logger)
        // On the loop, before the runtime's owner shuts it down.
        runtime.closeFuture.whenComplete { _ in endpoint.stop() }
        return endpoint
    }

    /// The server for any registry, on `eventLoop`; `export` is the task that keeps the registry
    /// current (cancelled when the endpoint closes, after one last `finalExport`).
    static func start(
        registry: PrometheusCollectorRegistry, on eventLoop: any EventLoop, host: String, port: Int, export: RepeatedTask,
        finalExport: (@Sendable () -> Void)? = nil, logger: Logger
    ) throws -> MetricsEndpoint {
        let channel: Channel
        do {
            channel = try ServerBootstrap(group: eventLoop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry))
                    }
                }
                .bind(host: host, port: port).wait()
        } catch {
            export.cancel()
            throw ValidationError("--metrics-port \(port): cannot listen on \(host): \(error)")
        }
        let endpoint = MetricsEndpoint(registry: registry, channel: channel, export: export, finalExport: finalExport)
        logger.info("metrics at http://\(host):\(endpoint.port)/metrics")
        return endpoint
    }

    /// Stops exporting (after a last export) and listening, without waiting.
    private func stop() {
        export.cancel()
        finalExport?()
        channel.close(promise: nil)
    }

    /// Stops listening and exporting before the runtime stops (it does both when the runtime closes).
    func close() {
        export.cancel()
        finalExport?()
        try? channel.close().wait()
    }
}

/// Answers `GET /metrics` with the registry in Prometheus' text format (version 0.0.4); anything
/// else with 404 or 405.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private var request: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        var body = context.channel.allocator.buffer(capacity: 4096)
        let status: HTTPResponseStatus
        var headers = HTTPHeaders()
        if path != "/metrics" {
            status = .notFound
            body.writeString("the metrics are at /metrics\n")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        } else if head.method != .GET && head.method != .HEAD {
            status = .methodNotAllowed
            body.writeString("GET /metrics\n")
            headers.add(name: "Allow", value: "GET, HEAD")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        } else {
            status = .ok
            body.writeBytes(registry.emitToBuffer())
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        }
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let keepAlive = head.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
