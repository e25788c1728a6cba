#if os(Linux)
import ArgumentParser
import NIOCore
import Logging
import NIOHTTP1
import TCPIP
import TCPIPNIO

/// `tcpip serve`: echo, discard and HTTP servers on a TUN device, on our TCP and UDP; pings answered.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve echo, discard and HTTP on a TUN device, over this stack's TCP and UDP.",
        discussion: """
            Prints READY once every server listens, then the connection table every --status-interval \
            seconds. The HTTP server is NIOHTTP1, unchanged, on our TCP channels. --read-size and \
            --read-interval-ms make the discard server a slow reader: its receive window closes. \
            Echo requests to our addresses are answered (ping, ping -6) unless --no-ping.
            """)

    @OptionGroup var device: TUNOptions
    @Option(help: "Echo server port (RFC 862).")
    var echo: UInt16?
    @Option(help: "Discard server port (RFC 863).")
    var discard: UInt16?
    @Option(help: "Discard server: bytes per read (default: whatever is there).")
    var readSize: Int?
    @Option(help: "Discard server: milliseconds between reads (default: read as fast as data comes).")
    var readIntervalMs: Int?
    @Option(help: "UDP echo server port (RFC 862): each datagram goes back to its sender.")
    var udpEcho: UInt16?
    @Option(help: "UDP discard server port (RFC 863).")
    var udpDiscard: UInt16?
    @Flag(inversion: .prefixedNo, help: "Answer ICMP and ICMPv6 echo requests to our addresses.")
    var ping = true
    @Option(help: "HTTP/1.1 server port; serves the files under --root.")
    var http: UInt16?
    @Option(help: "Directory the HTTP server serves.")
    var root: String = "."
    @Option(help: "Seconds between connection tables; 0 for none.")
    var statusInterval: Int = 5
    @Flag(help: "Print each connection's TCP internals under it, as `ss -ti` (cwnd, rtt, windows, retransmissions).")
    var details = false
    @OptionGroup var shutdown: ShutdownOptions
    @OptionGroup var metrics: MetricsOptions

    func validate() throws {
        guard echo != nil || discard != nil || http != nil || udpEcho != nil || udpDiscard != nil else {
            throw ValidationError("give at least one of --echo, --discard, --http, --udp-echo, --udp-discard")
        }
        if let readSize { try OptionChecks.positive(readSize, option: "read-size", what: "each read of the discard server") }
        if let readIntervalMs {
            try OptionChecks.within(readIntervalMs, 1...3_600_000, option: "read-interval-ms", because: "the time between reads, up to an hour")
        }
        try OptionChecks.within(statusInterval, 0...86_400, option: "status-interval", because: "seconds between tables, 0 for none")
    }

    func run() throws {
        let ping = self.ping
        let running = try device.start { $0.icmp.answersEcho = ping }
        let runtime = running.runtime
        _ = try metrics.start(for: runtime, logger: running.logger)
        var listeners: [TCPListener] = []
        if let echo {
            listeners.append(try TCPIPServerBootstrap(runtime: runtime)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
                }
                .bind(port: echo).wait())
        }
        if let discard {
            listeners.append(try DiscardHandler.bind(
                runtime: runtime, port: discard, readSize: readSize,
                interval: readIntervalMs.map { .milliseconds(Int64($0)) }, report: true).wait())
        }
        if let http {
            let root = self.root
            listeners.append(try TCPIPServerBootstrap(runtime: runtime)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(HTTPFileHandler(root: root))
                    }
                }
                .bind(port: http).wait())
        }
        var datagramChannels: [Channel] = []
        if let udpEcho {
            datagramChannels.append(try TCPIPDatagramBootstrap(runtime: runtime)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UDPEchoHandler()) }
                }
                .bind(port: udpEcho).wait())
        }
        if let udpDiscard {
            datagramChannels.append(try TCPIPDatagramBootstrap(runtime: runtime)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UDPDiscardHandler()) }
                }
                .bind(port: udpDiscard).wait())
        }
        let ports = (listeners.map { String($0.port) } + [udpEcho, udpDiscard].compactMap { $0 }.map { "udp/\($0)" })
            .joined(separator: ",")
        let mtu = try running.onLoop { runtime.device.mtu }
        running.logger.info("listening on \(device.addresses.joined(separator: " ")) port \(ports) via \(device.tun) (MTU \(mtu))")
        announce("READY")
        if statusInterval > 0 {
            ConnectionTable.printEvery(.seconds(Int64(statusInterval)), runtime: runtime, details: details)
        }
        try running.runUntilSignalled(shutdownTimeout: shutdown.timeout)
        _ = datagramChannels
    }
}

/// RFC 862 over UDP: each datagram goes back to its sender, from the address it was sent to.
final class UDPEchoHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A datagram that could not be echoed (too large) is dropped, as a socket's sendto fails.
    }
}

/// RFC 863 over UDP: every datagram is dropped.
final class UDPDiscardHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}

/// RFC 862: everything read is written back.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        // Back-pressure: stop reading while the peer is not taking what we echo.
        if !context.channel.isWritable {
            context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// RFC 863: everything read is dropped; closes at the end of the stream. Optionally a slow reader.
///
/// With `report`, each connection's end prints `discarded=<bytes> fnv1a64=<hex> from=<peer>`, a
/// digest of what arrived, so a test can check every byte without keeping them.
final class DiscardHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let interval: TimeAmount?
    let report: Bool
    private var reader: RepeatedTask?
    private(set) var received = 0
    private var digest: UInt64 = 0xcbf2_9ce4_8422_2325

    init(interval: TimeAmount?, report: Bool) {
        self.interval = interval
        self.report = report
    }

    static func bind(
        runtime: StackRuntime, port: UInt16, readSize: Int?, interval: TimeAmount?, report: Bool = false
    ) -> EventLoopFuture<TCPListener> {
        var bootstrap = TCPIPServerBootstrap(runtime: runtime)
        if let readSize {
            bootstrap = bootstrap.childChannelOption(TCPChannelOptions.maximumReadSize, value: readSize)
        }
        if interval != nil {
            bootstrap = bootstrap
                .childChannelOption(.autoRead, value: false)
                .childChannelOption(.maxMessagesPerRead, value: 1)
        }
        return bootstrap.childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(DiscardHandler(interval: interval, report: report))
            }
        }.bind(port: port)
    }

    func channelActive(context: ChannelHandlerContext) {
        if let interval {
            let channel = context.channel
            reader = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                channel.read()
            }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        received += bytes.readableBytes
        guard report else { return }
        self.digest = bytes.withUnsafeReadableBytes { raw in
            var digest = self.digest
            for byte in raw {
                digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3
            }
            return digest
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        reader?.cancel()
        reader = nil
        if report {
            let peer = context.channel.remoteAddress.map { "\($0)" } ?? "?"
            announce("discarded=\(received) fnv1a64=\(String(digest, radix: 16)) from=\(peer)")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// The ss-style table of a runtime's connections; with `details`, each followed by its `ss -ti` fields.
enum ConnectionTable {
    static func lines(_ runtime: StackRuntime, details: Bool = false) -> [String] {
        var table = NetstatTable()
        var internals: [String] = []
        for connection in runtime.stack.allConnections {
            guard let status = runtime.stack.status(connection) else { continue }
            table.add(status)
            if details {
                let statistics = SocketStatistics(status)
                internals.append(statistics.summaryLine)
                internals.append("    " + statistics.detailFields.joined(separator: " "))
            }
        }
        for endpoint in runtime.stack.allUDPEndpoints {
            if let status = runtime.stack.udpStatus(endpoint) { table.add(status) }
        }
        return table.lines + internals
    }

    /// Prints the table every `interval` while it has rows, and a one-line count of what the stack
    /// holds (connections, of them not in TIME-WAIT, TIME-WAIT records, half-open entries) and what
    /// became of SYNs for 4-tuples in TIME-WAIT (RFC 6191) whenever that changes — so a reader of the log can tell when only TIME-WAIT is left, or nothing.
    static func printEvery(_ interval: TimeAmount, runtime: StackRuntime, details: Bool = false) {
        let lastSummary = NIOLoopBoundBox.makeBoxSendingValue("", eventLoop: runtime.eventLoop)
        runtime.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let stack = runtime.stack
            let active = stack.allConnections.count { id in
                if case .timeWait = stack.state(id) { return false }
                return true
            }
            let summary = "table: connections=\(stack.connectionCount) not_time_wait=\(active) "
                + "time_wait_records=\(stack.timeWaitCount) half_open=\(stack.halfOpenCount) "
                + "time_wait_reopened=\(stack.counters.timeWaitRecycledByTimestamp + stack.counters.timeWaitRecycledBySequence) "
                + "time_wait_syns_refused=\(stack.counters.timeWaitSYNsRejected)"
            if summary != lastSummary.value {
                lastSummary.value = summary
                announce(summary)
            }
            let lines = lines(runtime, details: details)
            guard lines.count > 1 else { return }
            announce(lines.joined(separator: "\n"))
        }
    }
}
#endif
