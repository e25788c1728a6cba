#if os(Linux)
import ArgumentParser
import Glibc
import NIOCore
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
            leaves by a), --impair a.in:… (what arrives by a). On SIGINT or SIGTERM it prints its \
            counters and exits.
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
    @Option(help: "Most datagrams read from one device before the others get a turn.")
    var batch: Int = 64

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
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        _ = try plan(mtus: tun.map { _ in 1500 })
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
                throw ValidationError("--impair \(text): cannot parse the model")
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
        let devices = try tun.map { try TUNDevice(name: $0) }
        let plan = try plan(mtus: devices.map(\.mtu))
        var configuration = RouterConfiguration(links: plan.links, routes: plan.routes)
        configuration.rules = try RulesFile.load(rules)
        let router = Router(configuration)
        var forwarder = Forwarder(router: router, devices: devices, inbound: plan.inbound.map { $0.map(Impairer.init) },
                                  outbound: plan.outbound.map { $0.map(Impairer.init) }, batch: batch)
        Forwarder.installSignalHandlers()
        announce("READY")
        try forwarder.run()
        let c = router.counters
        announce("received=\(c.received) forwarded=\(c.forwarded) bytes_forwarded=\(c.bytesForwarded) local=\(c.deliveredLocally) "
            + "time_exceeded=\(c.timeExceeded) too_big=\(c.tooBig) fragmented=\(c.fragmented) no_route=\(c.noRoute) "
            + "malformed=\(c.malformed) bad_checksum=\(c.badChecksum) icmp_errors=\(c.icmpErrorsSent) "
            + "filtered=\(c.filtered) impaired_dropped=\(forwarder.impairmentDrops)")
        if let listing = router.stack.filterListing() { print(listing, terminator: "") }
        for device in devices { device.close() }
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

    /// Set by SIGINT and SIGTERM; the loop ends at its next turn.
    nonisolated(unsafe) static var stopRequested: sig_atomic_t = 0

    static func installSignalHandlers() {
        for signal in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in Forwarder.stopRequested = 1 }
            sigaction(signal, &action, nil)
        }
    }

    var impairmentDrops: UInt64 {
        (inbound + outbound).reduce(0) { $0 + ($1?.dropped ?? 0) }
    }

    mutating func run() throws {
        var descriptors = devices.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
        while Forwarder.stopRequested == 0 {
            let now = StackRuntime.now()
            var wake = router.nextDeadline
            for impairer in inbound + outbound { wake = Instant.earliest(wake, impairer?.nextRelease) }
            // Milliseconds, rounded up: a delayed datagram leaves at most a millisecond late, never early.
            var timeout: Int32 = 1_000
            if let wake { timeout = Int32(max(0, min((wake - now).nanoseconds + 999_999, 1_000_000_000)) / 1_000_000) }
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
                for (packet, _) in outbound[index]!.due(now: now) { try? devices[index].write(packet) }
            }
        }
    }

    private mutating func transmit(now: Instant) throws {
        for index in devices.indices {
            while let packet = router.nextPacketToSend(on: index) {
                if outbound[index] == nil {
                    try devices[index].write(packet)
                } else {
                    for copy in outbound[index]!.admit(packet, inbound: false, now: now) { try devices[index].write(copy) }
                }
            }
        }
    }
}
#endif
