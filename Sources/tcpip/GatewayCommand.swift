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
    @Flag(help: "Relay through kernel sockets of this host.")
    var direct = false
    @Option(help: "Relayed sockets leave by this interface (SO_BINDTODEVICE), so they cannot loop into the tunnel.")
    var outboundInterface: String?
    @Option(help: "Mark relayed sockets (SO_MARK) for policy routing (`ip rule add fwmark N lookup T`).")
    var mark: UInt32?
    @Option(help: "Answer A/AAAA queries to port 53 with addresses from this pool (198.18.128.0/17) and connect upstream by name.")
    var fakeDns: String?
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
        if let memoryLimit, memoryLimit < 1 << 20 { throw ValidationError("--memory-limit must be at least 1 MiB") }
        guard udpTimeout > 0, idleTimeout > 0, connectTimeout > 0, connectTimeout <= 600 else {
            throw ValidationError("timeouts must be positive")
        }
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
                server: try Self.serverAddress(socks5), credentials: credentials, options: options, pipelining: socks5Pipelining)
        }
        return DirectUpstream(options: options)
    }

    func run() throws {
        let logger = {
            var logger = Logger(label: "tcpip", factory: { label in StreamLogHandler.standardError(label: label) })
            logger.logLevel = logLevel
            return logger
        }()
        let device = try TUNDevice(name: tun, options: TUNDevice.Options(virtioNetHeader: offload))
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
        if let memoryLimit { configuration.memoryBudget = memoryLimit }
        var interception = InterceptionConfiguration()
        interception.udpFlowTimeout = .seconds(udpTimeout)
        interception.icmpEcho = icmp == .local ? .answer : .drop
        if let maxFlows {
            interception.maxConnections = maxFlows
            interception.maxUDPFlows = maxFlows
        }
        configuration.interception = interception
        let stack = Stack(StackRuntime.derive(configuration, from: device))
        stack.tracing = trace
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let runtime = try StackRuntime.start(stack: stack, device: device, on: group.next(), logger: logger).wait()
        let loop = runtime.eventLoop
        let recorder = NIOLoopBoundBox.makeEmptyBox(valueType: PcapRecorder.self, eventLoop: loop)
        let plot = NIOLoopBoundBox.makeEmptyBox(valueType: ConnectionPlot.self, eventLoop: loop)
        let running = RunningStack(
            group: group, runtime: runtime, recorder: recorder, plot: plot, plotPath: nil, device: tun, logger: logger)
        if let impairment = impair.flatMap(Impairment.init(parsing:)) {
            try running.onLoop { runtime.impair(impairment) }
        }
        let trace = self.trace
        if let pcap {
            try loop.submit { recorder.value = PcapRecorder(sink: try PcapFileSink(path: pcap)) }.wait()
            logger.info("capturing to \(pcap)")
        }
        if pcap != nil || trace {
            try running.onLoop {
                var formatter = SegmentFormatter()
                runtime.packetObserver = { packet, now, _ in
                    recorder.value?.record(packet, at: now)
                    if trace { announce(formatter.format(packet, at: now)) }
                }
                if trace {
                    runtime.traceObserver = { records in
                        for record in records { announce("  \(record.rule): \(record.message)") }
                    }
                }
            }
        }

        var gatewayConfiguration = GatewayConfiguration(upstream: try upstream())
        gatewayConfiguration.unreachable = unreachable
        gatewayConfiguration.maxFlows = maxFlows
        gatewayConfiguration.idleTimeout = .seconds(Int64(idleTimeout))
        gatewayConfiguration.udpIdleTimeout = .seconds(Int64(udpTimeout))
        gatewayConfiguration.fakeDNS = fakeDns.flatMap { FakeDNSPool(cidr: $0) }
        let frozen = gatewayConfiguration
        let gateway = try loop.submit {
            let gateway = Gateway(configuration: frozen, loop: loop, logger: logger)
            gateway.serve(runtime)
            return NIOLoopBound(gateway, eventLoop: loop)
        }.wait()
        let mtu = try running.onLoop { runtime.device.mtu }
        logger.info("gateway on \(tun) (MTU \(mtu)) via \(frozen.upstream)\(fakeDns.map { ", fake DNS \($0)" } ?? "")")
        announce("READY")
        if statusInterval > 0 {
            let interval = TimeAmount.seconds(Int64(statusInterval))
            loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                Self.printTable(gateway.value, runtime: runtime)
            }
        }
        try running.runUntilSignalled(shutdownTimeout: shutdown.timeout)
    }

    /// The flow table, with each TCP flow's RTT from the stack's connection to the client.
    static func printTable(_ gateway: Gateway, runtime: StackRuntime) {
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
        announce(([flows.summary] + flows.report()).joined(separator: "\n"))
    }
}

extension UnreachableAnswer: ExpressibleByArgument {}
#endif
