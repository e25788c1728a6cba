#if os(Linux)
import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import TCPIP
import TCPIPGateway
import TCPIPLinks
import TCPIPNIO
import TCPIPWire

/// `tcpip gateway`: every TCP and UDP flow that enters a TUN device terminated by the stack in
/// intercept mode and relayed through SOCKS5 or a direct socket (tun2socks).
struct GatewayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Relay every TCP and UDP flow entering a TUN device through SOCKS5 or direct sockets (tun2socks).",
        discussion: """
            The stack owns no address: a SYN to any address is held while the gateway dials upstream, \
            then answered with SYN-ACK, or with RST (refused) or ICMP unreachable (no answer). Prints \
            READY once serving, then its flow table every --status-interval seconds; stops gracefully \
            on SIGINT or SIGTERM. Route what the gateway relays into the device (`ip route add … dev tun0`), \
            and keep its own upstream sockets out of it: --outbound-interface, or --mark with a policy rule.
            """)

    enum ICMPMode: String, ExpressibleByArgument, CaseIterable {
        case local
        case drop
    }

    @Option(help: "The TUN interface to attach to (created if missing).")
    var tun: String
    @Option(help: "Relay through this SOCKS5 server (HOST:PORT, RFC 1928).")
    var socks5: String?
    @Option(help: "SOCKS5 username (RFC 1929).")
    var socks5User: String?
    @Option(help: "SOCKS5 password (RFC 1929).")
    var socks5Password: String?
    @Flag(inversion: .prefixedNo, help: "Send the SOCKS5 request with the greeting (no credentials): one round trip per dial instead of two.")
    var socks5Pipelining = true
    @Option(help: "SOCKS5 connections per queue opened ahead, greeted, for the next flows (closed after \(SOCKS5Upstream.preconnectIdleTimeout.nanoseconds / 1_000_000_000) s unused; 0: none).")
    var socks5Preconnect = 4
    @Flag(help: "Relay through kernel sockets of this host.")
    var direct = false
    @Option(help: "Relayed sockets leave by this interface (SO_BINDTODEVICE), so they cannot loop into the tunnel.")
    var outboundInterface: String?
    @Option(help: "Mark relayed sockets (SO_MARK) for policy routing (`ip rule add fwmark N lookup T`).")
    var mark: UInt32?
    @Option(help: "Answer A/AAAA queries to port 53 with addresses from this pool (198.18.128.0/17) and connect upstream by name.")
    var fakeDns: String?
    @Option(help: ArgumentHelp(
        "Open the device with IFF_MULTI_QUEUE and run one stack and relay per queue, each on its own thread.",
        discussion: "The device must be multi-queue (ip tuntap add … multi_queue). --max-flows and --memory-limit are shared out among the queues; the fake-DNS pool is one for all."))
    var queues: Int = 1
    @Option(help: "Flows relayed at once; the next connection is refused with RST.")
    var maxFlows: Int?
    @Option(help: "Bytes of buffers the stack may hold in all; new connections are refused beyond it.")
    var memoryLimit: Int?
    @Option(help: "Seconds an idle UDP flow lives (RFC 4787 REQ-5: at least 120).")
    var udpTimeout: Int = 120
    @Option(help: "Echo requests to any address through the tunnel: local (answered here) or drop.")
    var icmp: ICMPMode = .local
    @Option(help: "A destination that cannot be reached or does not answer: icmp (unreachable) or reset.")
    var unreachable: UnreachableAnswer = .icmp
    @Option(help: "Seconds a dial upstream (and its SOCKS5 handshake) may take.")
    var connectTimeout: Double = 10
    @Option(help: "Seconds after which a TCP flow on which nothing moved is closed.")
    var idleTimeout: Int = 7200
    @Option(help: "Write every datagram crossing the device to this pcap file (raw IP).")
    var pcap: String?
    @Option(help: "Draw the first relayed TCP connection's time–sequence graph (queue 0's) to this SVG file when the gateway stops.")
    var plot: String?
    @Flag(help: "Print every segment in tcpdump's notation, and each decision with the RFC rule behind it.")
    var trace = false
    @Option(help: "Impair both directions at the device, as netem would: loss=5%,delay=10ms")
    var impair: String?
    @Flag(inversion: .prefixedNo, help: "Open the device with IFF_VNET_HDR (checksum and segmentation offload).")
    var offload = true
    @Option(help: "Buffer sizing: tunnel (the default: start at 64 KiB, grow to 4 MiB), server or fixed.")
    var buffers: BufferPreset = .tunnel
    @Option(help: "Seconds between flow tables; 0 for none.")
    var statusInterval: Int = 5
    @Option(help: "What to log to standard error, from trace to critical.")
    var logLevel: Logger.Level = .info
    @OptionGroup var shutdown: ShutdownOptions
    @OptionGroup var metrics: MetricsOptions

    func validate() throws {
        guard (socks5 != nil) != direct else { throw ValidationError("give exactly one of --socks5 HOST:PORT and --direct") }
        if socks5 == nil, socks5User != nil || socks5Password != nil {
            throw ValidationError("--socks5-user and --socks5-password go with --socks5")
        }
        if (socks5User == nil) != (socks5Password == nil) {
            throw ValidationError("give both --socks5-user and --socks5-password, or neither")
        }
        if let socks5User, let socks5Password, Credentials(username: socks5User, password: socks5Password) == nil {
            throw ValidationError("--socks5-user and --socks5-password must be 1 to 255 bytes each (RFC 1929)")
        }
        if let socks5 { _ = try Self.serverAddress(socks5) }
        if let fakeDns, FakeDNSPool(cidr: fakeDns) == nil { throw ValidationError("--fake-dns needs a CIDR with room, like 198.18.128.0/17") }
        if let maxFlows, maxFlows <= 0 { throw ValidationError("--max-flows must be positive") }
        guard (1...64).contains(queues) else { throw ValidationError("--queues is 1 to 64") }
        if queues > 1, pcap != nil { throw ValidationError("--pcap records one queue: leave it out with --queues") }
        if let memoryLimit, memoryLimit < 1 << 20 { throw ValidationError("--memory-limit must be at least 1 MiB") }
        guard udpTimeout > 0, idleTimeout > 0, connectTimeout > 0, connectTimeout <= 600 else {
            throw ValidationError("timeouts must be positive")
        }
        guard (0...64).contains(socks5Preconnect) else { throw ValidationError("--socks5-preconnect is 0 to 64") }
        if let impair, Impairment(parsing: impair) == nil { throw ValidationError("cannot parse --impair \(impair)") }
    }

    static func serverAddress(_ text: String) throws -> SocketAddress {
        guard let endpoint = Endpoint(text) else { throw ValidationError("--socks5 needs ADDRESS:PORT, not \(text)") }
        return endpoint.socketAddress
    }

    func upstream() throws -> any Upstream {
        var options = UpstreamSocketOptions()
        options.connectTimeout = .nanoseconds(Int64(connectTimeout * 1e9))
        options.outboundInterface = outboundInterface
        options.mark = mark
        if let socks5 {
            let credentials = socks5User.flatMap { user in socks5Password.flatMap { Credentials(username: user, password: $0) } }
            return SOCKS5Upstream(
                server: try Self.serverAddress(socks5), credentials: credentials, options: options, pipelining: socks5Pipelining,
                preconnect: socks5Preconnect)
        }
        return DirectUpstream(options: options)
    }

    func run() throws {
        let logger = {
            var logger = Logger(label: "tcpip", factory: { label in StreamLogHandler.standardError(label: label) })
            logger.logLevel = logLevel
            return logger
        }()
        // One stack per queue, each on a loop (a thread) of its own. A signal drains them all at
        // once, under the one --shutdown-timeout (`RuntimeService`).
        let group = MultiThreadedEventLoopGroup(numberOfThreads: queues)
        let loops = Array(group.makeIterator())
        var runtimes: [StackRuntime] = []
        for index in 0..<queues {
            let device = try TUNDevice(name: tun, options: TUNDevice.Options(multiQueue: queues > 1, virtioNetHeader: offload))
            let stack = Stack(StackRuntime.derive(stackConfiguration(), from: device))
            stack.tracing = trace
            runtimes.append(try StackRuntime.start(stack: stack, device: device, on: loops[index], logger: logger).wait())
        }
        let runtime = runtimes[0]
        let loop = runtime.eventLoop
        let recorder = NIOLoopBoundBox.makeEmptyBox(valueType: PcapRecorder.self, eventLoop: loop)
        let plot = NIOLoopBoundBox.makeEmptyBox(valueType: ConnectionPlot.self, eventLoop: loop)
        let running = RunningStack(
            group: group, runtime: runtime, queues: Array(runtimes.dropFirst()), recorder: recorder, plot: plot, plotPath: self.plot,
            device: tun, logger: logger)
        if self.plot != nil {
            let title = "tcpip gateway on \(tun)"
            try loop.submit { plot.value = ConnectionPlot(title: title) }.wait()
        }
        let plotting = self.plot != nil
        let trace = self.trace
        if let pcap {
            try loop.submit { recorder.value = PcapRecorder(sink: try PcapFileSink(path: pcap)) }.wait()
            logger.info("capturing to \(pcap)")
        }
        for (index, queue) in runtimes.enumerated() {
            if let impairment = impair.flatMap(Impairment.init(parsing:)) {
                try queue.eventLoop.submit { queue.impair(impairment) }.wait()
            }
            guard pcap != nil || trace || (plotting && index == 0) else { continue }
            // --pcap goes with one queue only (validate): the recorder is queue 0's, on its loop; so
            // is the plot, of queue 0's first connection.
            let records = index == 0
            try queue.eventLoop.submit {
                var formatter = SegmentFormatter()
                queue.packetObserver = { packet, now, _ in
                    if records {
                        recorder.value?.record(packet, at: now)
                        plot.value?.record(packet, at: now, stack: queue.stack)
                    }
                    if trace { announce(formatter.format(packet, at: now)) }
                }
                if trace {
                    queue.traceObserver = { records in
                        for record in records { announce("  \(record.rule): \(record.message)") }
                    }
                }
            }.wait()
        }

        var gatewayConfiguration = GatewayConfiguration(upstream: try upstream())
        gatewayConfiguration.unreachable = unreachable
        gatewayConfiguration.maxFlows = maxFlows.map(perQueue)
        gatewayConfiguration.idleTimeout = .seconds(Int64(idleTimeout))
        gatewayConfiguration.udpIdleTimeout = .seconds(Int64(udpTimeout))
        gatewayConfiguration.fakeDNS = fakeDns.flatMap { FakeDNSPool(cidr: $0) }
        let frozen = gatewayConfiguration
        // The one thing the queues share: a name answered on one queue is connected on another.
        let sharedDNS = frozen.fakeDNS.map(SharedFakeDNS.init)
        let gateways = try runtimes.map { queue in
            try queue.eventLoop.submit {
                let gateway = Gateway(configuration: frozen, loop: queue.eventLoop, logger: logger, fakeDNS: sharedDNS)
                gateway.serve(queue)
                return NIOLoopBound(gateway, eventLoop: queue.eventLoop)
            }.wait()
        }
        _ = try metrics.start(for: runtime, exporting: metricsExports(runtimes: runtimes, gateways: gateways), logger: logger)
        let mtu = try running.onLoop { runtime.device.mtu }
        let queueNote = queues > 1 ? ", \(queues) queues" : ""
        logger.info("gateway on \(tun) (MTU \(mtu)\(queueNote)) via \(frozen.upstream)\(fakeDns.map { ", fake DNS \($0)" } ?? "")")
        announce("READY")
        if statusInterval > 0 {
            let interval = TimeAmount.seconds(Int64(statusInterval))
            for (index, queue) in runtimes.enumerated() {
                let gateway = gateways[index]
                let label = queues > 1 ? "queue \(index) " : ""
                queue.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                    Self.printTable(gateway.value, runtime: queue, label: label)
                }
            }
        }
        try running.runUntilSignalled(shutdownTimeout: shutdown.timeout)
    }

    /// A limit shared out among the queues (each stack and gateway enforces its part).
    func perQueue(_ limit: Int) -> Int { max(1, limit / queues) }

    /// The stack's configuration for one queue: intercept mode, the limits divided among the queues.
    func stackConfiguration() -> StackConfiguration {
        var configuration = StackConfiguration(addresses: [])
        buffers.apply(to: &configuration)
        if buffers == .tunnel {
            // A relay's windows start at 256 KiB (then autotune to 4 MiB as the preset does): a
            // window is a limit, not an allocation (a buffer holds only what is queued), so an idle
            // flow costs the same, while without offload (one datagram per read, as on iOS and
            // Android) the preset's 64 KiB start held a flow to 0.3-0.7 Gbit/s (1.4-1.6 at 256 KiB).
            configuration.tcp.receiveBufferSize = 256 * 1024
            configuration.tcp.receiveBufferMaximum = 4 * 1024 * 1024
            configuration.tcp.sendBufferSize = 256 * 1024
            configuration.tcp.sendBufferMaximum = 4 * 1024 * 1024
        }
        if let memoryLimit { configuration.memoryBudget = perQueue(memoryLimit) }
        var interception = InterceptionConfiguration()
        interception.udpFlowTimeout = .seconds(udpTimeout)
        interception.icmpEcho = icmp == .local ? .answer : .drop
        if let maxFlows {
            interception.maxConnections = perQueue(maxFlows)
            interception.maxUDPFlows = perQueue(maxFlows)
        }
        configuration.interception = interception
        return configuration
    }

    /// What `--metrics-port` adds to queue 0's stack counters: each gateway's figures (labelled
    /// `queue="N"` with several queues) and the other queues' stack counters (`tcpip_queueN_…`).
    func metricsExports(runtimes: [StackRuntime], gateways: [NIOLoopBound<Gateway>]) -> [MetricsEndpoint.Export] {
        var exports: [MetricsEndpoint.Export] = []
        let several = runtimes.count > 1
        for (index, queue) in runtimes.enumerated() {
            let gateway = gateways[index]
            let labels = several ? [("queue", String(index))] : []
            exports.append { factory, interval in
                try queue.eventLoop.submit { gateway.value.exportMetrics(every: interval, labels: labels, factory: factory) }.wait()
            }
            if index > 0 {
                exports.append { factory, interval in queue.exportMetrics(every: interval, prefix: "tcpip_queue\(index)", factory: factory) }
            }
        }
        return exports
    }

    /// The flow table, with each TCP flow's RTT from the stack's connection to the client.
    static func printTable(_ gateway: Gateway, runtime: StackRuntime, label: String = "") {
        let flows = gateway.flows
        guard !flows.all.isEmpty else { return }
        var rtts: [String: TimeAmount] = [:]
        for connection in runtime.stack.allConnections {
            guard let status = runtime.stack.status(connection), let rtt = status.smoothedRTT else { continue }
            rtts[status.remote.description] = rtt
        }
        for flow in flows.all where flow.transport == .tcp {
            if let rtt = rtts[flow.client] { flow.rtt = rtt }
        }
        announce(([label + flows.summary] + flows.report()).joined(separator: "\n"))
    }
}

extension UnreachableAnswer: ExpressibleByArgument {}
#endif
