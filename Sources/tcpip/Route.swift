#if os(Linux)
import ArgumentParser
import Glibc
import Logging
import NIOCore
import NIOPosix
import TCPIP
import TCPIPLinks
import TCPIPNIO
import TCPIPWire

/// `tcpip route`: a `Router` forwarding between TUN devices, each link's directions impaired as
/// `--impair` impairs a stack's device.
struct Route: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Forward IP between TUN devices: longest prefix match, TTL, ICMP errors, per-link impairment.",
        discussion: """
            Opens every --tun (without offload: datagrams are wire-sized, so each is forwarded as it \
            would be on a wire), prints READY, and forwards until interrupted. The router answers ping \
            and traceroute on its --address of each link. Impairment per link and direction: \
            --impair a:delay=25ms,loss=1% (both directions of link a), --impair a.out:loss=1% (what \
            leaves by a), --impair a.in:… (what arrives by a). On SIGINT or SIGTERM it reads no more, \
            lets what impairments still delay leave within --shutdown-timeout, prints its counters and \
            exits 0 (1 when a device failed). --metrics-port serves the forwarding, per-link and rule \
            counters to Prometheus.
            """)

    @Option(help: "A TUN interface to forward on (created if missing); repeat for each link, two or more.")
    var tun: [String] = []
    @Option(help: "PREFIX=LINK: datagrams to PREFIX leave by the TUN named LINK (198.18.2.0/24=b); repeat.")
    var route: [String] = []
    @Option(help: "LINK=ADDRESS: the router's own address on a link, for ping, traceroute and its ICMP errors; repeat.")
    var address: [String] = []
    @Option(help: "LINK[.in|.out]:MODEL: impair a link's directions, MODEL as --impair of the other commands (delay=25ms,loss=1%).")
    var impair: [String] = []
    @Option(help: "Install this ruleset (nftables' syntax, plus impair) in the router: its forward hook and its own input and output; see `tcpip rules`.")
    var rules: String?
    @Option(help: ArgumentHelp(
        "Draw the time–sequence graph of the TCP flow forwarded with the most payload to this SVG file when the router stops.",
        discussion: "From the segments and the returning ACKs as they arrive at the router (before its impairments), as tcptrace draws a capture; the second panel shows the bytes in flight as seen (cwnd and ssthresh are the sender's, unknown here)."))
    var plot: String?
    @Option(help: "With --plot: draw the flow between these two endpoints instead (198.18.0.1:40000,198.18.2.1:8080; either order).")
    var plotFlow: String?
    @Option(help: "Most datagrams read from one device before the others get a turn.")
    var batch: Int = 64
    @Option(help: "What to log to standard error, from trace to critical.")
    var logLevel: Logger.Level = .info
    @OptionGroup var shutdown: ShutdownOptions
    @OptionGroup var metrics: MetricsOptions

    struct Plan {
        var links: [RouterLink]
        var routes: [RoutingTable.Route]
        /// Per link: the impairment of what arrives by it and of what leaves by it.
        var inbound: [Impairment?]
        var outbound: [Impairment?]
    }

    func validate() throws {
        guard tun.count >= 2 else { throw ValidationError("give two or more --tun") }
        guard Set(tun).count == tun.count else { throw ValidationError("a --tun given twice") }
        if let rules { _ = try RulesFile.load(rules) }
        try OptionChecks.within(batch, 1...65_536, option: "batch", because: "datagrams read from one device per turn")
        if plotFlow != nil, plot == nil { throw ValidationError("--plot-flow goes with --plot FILE.svg") }
        _ = try plottedFlow()
        _ = try plan(mtus: tun.map { _ in 1500 })
    }

    /// The two endpoints of `--plot-flow`, if given.
    func plottedFlow() throws -> (Endpoint, Endpoint)? {
        guard let plotFlow else { return nil }
        let parts = plotFlow.split(separator: ",", maxSplits: 1).map { Endpoint(String($0)) }
        guard parts.count == 2, let a = parts[0], let b = parts[1] else {
            throw ValidationError("--plot-flow \(plotFlow): expected ADDRESS:PORT,ADDRESS:PORT (IPv6 in brackets: [2001:db8::1]:80)")
        }
        return (a, b)
    }

    /// The router's configuration from the options; `mtus` are the devices'.
    func plan(mtus: [Int]) throws -> Plan {
        func link(_ name: Substring) throws -> Int {
            guard let index = tun.firstIndex(of: String(name)) else { throw ValidationError("no --tun \(name)") }
            return index
        }
        var links = zip(tun, mtus).map { RouterLink(name: $0, mtu: $1) }
        var routes: [RoutingTable.Route] = []
        for text in route {
            let parts = text.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let prefix = IPPrefix(String(parts[0])) else {
                throw ValidationError("--route \(text): expected PREFIX=LINK")
            }
            routes.append(RoutingTable.Route(prefix, link: try link(parts[1])))
        }
        guard !routes.isEmpty else { throw ValidationError("give at least one --route") }
        for text in address {
            let parts = text.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let address = IPAddress(String(parts[1])) else {
                throw ValidationError("--address \(text): expected LINK=ADDRESS")
            }
            links[try link(parts[0])].addresses.append(address)
        }
        var inbound = [Impairment?](repeating: nil, count: tun.count)
        var outbound = inbound
        for text in impair {
            guard let colon = text.firstIndex(of: ":") else { throw ValidationError("--impair \(text): expected LINK[.in|.out]:MODEL") }
            let target = text[..<colon]
            guard let model = Impairment(parsing: String(text[text.index(after: colon)...])) else {
                throw ValidationError("--impair \(text): after LINK[.in|.out]:, \(Impairment.syntax)")
            }
            let (name, direction) = target.hasSuffix(".in") ? (target.dropLast(3), "in")
                : target.hasSuffix(".out") ? (target.dropLast(4), "out") : (target, "both")
            let index = try link(name)
            // Each direction draws from a generator of its own.
            var seeded = model
            if direction != "out" { seeded.seed = model.seed &* 2 &+ UInt64(index) &* 1_000; inbound[index] = seeded }
            if direction != "in" { seeded.seed = model.seed &* 2 &+ 1 &+ UInt64(index) &* 1_000; outbound[index] = seeded }
        }
        return Plan(links: links, routes: routes, inbound: inbound, outbound: outbound)
    }

    func run() throws {
        let logger = TUNOptions.logger(at: logLevel)
        let devices = try tun.map { try TUNDevice(name: $0) }
        defer { for device in devices { device.close() } }
        let plan = try plan(mtus: devices.map(\.mtu))
        var configuration = RouterConfiguration(links: plan.links, routes: plan.routes)
        configuration.rules = try RulesFile.load(rules)
        let router = Router(configuration)
        let control = RouteControl()
        var forwarder = Forwarder(router: router, devices: devices, inbound: plan.inbound.map { $0.map(Impairer.init) },
                                  outbound: plan.outbound.map { $0.map(Impairer.init) }, batch: batch, control: control)
        if plot != nil {
            forwarder.plot = ObservedFlowPlot(title: "tcpip route between \(tun.joined(separator: " and "))", flow: try plottedFlow())
        }
        // The metrics endpoint has a loop of its own: the forwarding loop polls its devices.
        let group = metrics.metricsPort == nil ? nil : MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group?.syncShutdownGracefully() }
        var endpoint: MetricsEndpoint?
        if let group {
            let routeMetrics = RouteMetrics()
            endpoint = try metrics.start(
                registry: routeMetrics.registry, on: group.next(), logger: logger, export: { routeMetrics.export() })
            forwarder.metrics = routeMetrics
            forwarder.publish()
        }
        logger.info("forwarding between \(tun.joined(separator: " ")) (MTU \(devices.map { String($0.mtu) }.joined(separator: ",")))")
        announce("READY")
        let service = RouteService(control: control, shutdownTimeout: shutdown.timeout, logger: logger)
        defer {
            endpoint?.close()
            let c = router.counters
            announce("received=\(c.received) forwarded=\(c.forwarded) bytes_forwarded=\(c.bytesForwarded) local=\(c.deliveredLocally) "
                + "time_exceeded=\(c.timeExceeded) too_big=\(c.tooBig) fragmented=\(c.fragmented) no_route=\(c.noRoute) "
                + "malformed=\(c.malformed) bad_checksum=\(c.badChecksum) icmp_errors=\(c.icmpErrorsSent) "
                + "filtered=\(c.filtered) impaired_dropped=\(forwarder.impairmentDrops)")
            if let listing = router.stack.filterListing() { print(listing, terminator: "") }
            if let path = plot, let observed = forwarder.plot {
                do {
                    try PlotFile.write(observed.plot ?? TimeSequencePlot(title: observed.title), to: path)
                    logger.info("plot written to \(path)")
                } catch {
                    logger.error("cannot write \(path): \(error)")
                }
            }
        }
        try SignalledServices.run(service, logger: logger) {
            do {
                control.finish(.success(try forwarder.run()))
            } catch {
                control.finish(.failure(error))
            }
            forwarder.publish()
        }
    }
}

/// The router's loop: poll(2) on every device, read a batch from each that is ready, forward,
/// write what leaves by each link, and sleep until the next device readiness, timer or release
/// of a delayed datagram.
struct Forwarder {
    let router: Router
    let devices: [TUNDevice]
    var inbound: [Impairer?]
    var outbound: [Impairer?]
    let batch: Int
    /// Its service's stop request, read each turn.
    let control: RouteControl
    /// Per link, what was read from its device and written to it.
    private(set) var links: [LinkCounters]
    /// `--plot`: what arrives is shown to it; nil without (then the loop pays one test per datagram).
    var plot: ObservedFlowPlot?
    /// Where the counters go for `--metrics-port`, every `publishInterval`; nil without.
    var metrics: RouteMetrics?
    private var nextPublish = Instant.zero
    static let publishInterval = TimeAmount.milliseconds(250)

    init(router: Router, devices: [TUNDevice], inbound: [Impairer?], outbound: [Impairer?], batch: Int, control: RouteControl) {
        self.router = router
        self.devices = devices
        self.inbound = inbound
        self.outbound = outbound
        self.batch = batch
        self.control = control
        links = Array(repeating: LinkCounters(), count: devices.count)
    }

    var impairmentDrops: UInt64 {
        (inbound + outbound).reduce(0) { $0 + ($1?.dropped ?? 0) }
    }

    /// Datagrams still held back: by a link's impairment, or by an `impair` rule in the router.
    var heldCount: Int {
        (inbound + outbound).reduce(router.stack.filterHeldCount) { $0 + ($1?.heldCount ?? 0) }
    }

    /// Hands the metrics a snapshot of the counters.
    func publish() {
        guard let metrics else { return }
        metrics.publish(RouteMetrics.Snapshot(
            forwarding: router.counters, impairedDropped: impairmentDrops,
            links: zip(devices, links).map { ($0.name, $1) }, rules: router.stack.packetFilter?.currentRuleset))
    }

    /// Forwards until its service asks it to stop, then, reading nothing more, until nothing is
    /// held back or the stop's deadline passes. Returns how many datagrams were still held then.
    mutating func run() throws -> Int {
        var descriptors = devices.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
        while true {
            let now = StackRuntime.now()
            if let deadline = control.stopRequested {
                let held = heldCount
                if held == 0 || now >= deadline { return held }
                // Draining: no more reading, only the delayed datagrams and the timers.
                for index in descriptors.indices { descriptors[index].events = 0 }
            }
            if metrics != nil, now >= nextPublish {
                publish()
                nextPublish = now + Self.publishInterval
            }
            var wake = router.nextDeadline
            for impairer in inbound + outbound { wake = Instant.earliest(wake, impairer?.nextRelease) }
            // Milliseconds, rounded up: a delayed datagram leaves at most a millisecond late, never early.
            // At most 100 ms: a stop request (its service's, on a signal) is seen within that.
            var timeout: Int32 = 100
            if let wake { timeout = Int32(max(0, min((wake - now).nanoseconds + 999_999, 100_000_000)) / 1_000_000) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                throw ValidationError("poll: \(String(cString: strerror(errno)))")
            }
            let after = StackRuntime.now()
            for index in descriptors.indices where descriptors[index].revents != 0 {
                let trouble = Int16(POLLERR) | Int16(POLLHUP) | Int16(POLLNVAL)
                if descriptors[index].revents & Int16(POLLIN) == 0, descriptors[index].revents & trouble != 0 {
                    throw ValidationError("\(devices[index].name) is gone")
                }
                var count = 0
                while count < batch, let packet = try devices[index].read() {
                    count += 1
                    links[index].packetsReceived &+= 1
                    links[index].bytesReceived &+= UInt64(packet.readableBytes)
                    if plot != nil { plot!.record(packet, at: after) }
                    if inbound[index] == nil {
                        router.receive(packet, from: index, now: after)
                    } else {
                        for copy in inbound[index]!.admit(packet, inbound: true, now: after) {
                            router.receive(copy, from: index, now: after)
                        }
                    }
                }
            }
            releaseDelayed(now: after)
            if let deadline = router.nextDeadline, deadline <= after { router.advanceTime(to: after) }
            try transmit(now: after)
        }
    }

    /// Datagrams whose impairment delay is over: into the router, or onto their device.
    private mutating func releaseDelayed(now: Instant) {
        for index in devices.indices {
            if inbound[index]?.nextRelease.map({ $0 <= now }) == true {
                for (packet, _) in inbound[index]!.due(now: now) { router.receive(packet, from: index, now: now) }
            }
            if outbound[index]?.nextRelease.map({ $0 <= now }) == true {
                for (packet, _) in outbound[index]!.due(now: now) { try? write(packet, on: index) }
            }
        }
    }

    private mutating func transmit(now: Instant) throws {
        for index in devices.indices {
            while let packet = router.nextPacketToSend(on: index) {
                if outbound[index] == nil {
                    try write(packet, on: index)
                } else {
                    for copy in outbound[index]!.admit(packet, inbound: false, now: now) { try write(copy, on: index) }
                }
            }
        }
    }

    private mutating func write(_ packet: ByteBuffer, on index: Int) throws {
        links[index].packetsSent &+= 1
        links[index].bytesSent &+= UInt64(packet.readableBytes)
        try devices[index].write(packet)
    }
}
#endif
