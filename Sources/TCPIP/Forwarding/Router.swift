import NIOCore
import TCPIPWire

/// One link of a router: its name (`tun0`), the largest datagram it carries, and the router's own
/// addresses on it (the source of the ICMP errors it sends about datagrams that came in by it).
public struct RouterLink: Hashable, Sendable {
    /// The link's name, as rules' `iifname` and `oifname` match it (`tun0`).
    public var name: String
    /// The largest datagram the link carries: larger ones are fragmented or answered with ICMP.
    public var mtu: Int
    /// The router's own addresses on the link.
    public var addresses: [IPAddress]

    /// A link named `name` carrying datagrams of up to `mtu` octets, with the router's `addresses` on it.
    public init(name: String, mtu: Int = 1500, addresses: [IPAddress] = []) {
        self.name = name
        self.mtu = mtu
        self.addresses = addresses
    }
}

/// What a `Router` is made of: its links, its routes, and the stack that answers for its own addresses.
public struct RouterConfiguration: Sendable {
    /// The links, by index.
    public var links: [RouterLink]
    /// Routes to link indexes (`links[route.link]`).
    public var routes: [RoutingTable.Route]
    /// The seed of the router's own stack and of nothing else (forwarding draws no randomness).
    public var seed: UInt64?
    /// The token bucket of the ICMP errors the router sends about datagrams it forwards
    /// (RFC 1812 §4.3.2.8), and its own stack's for those to its addresses.
    public var icmp = ICMPConfiguration()
    /// Rules for the own stack's hooks, the forward hook included (docs/NETFILTER.md). They must
    /// compile: check a ruleset read from a user with `PacketFilter(_:)` first.
    public var rules: FilterRuleset?

    /// A router on `links` with `routes`; `seed` seeds its own stack (nil: from the system's generator).
    public init(links: [RouterLink], routes: [RoutingTable.Route], seed: UInt64? = nil) {
        self.links = links
        self.routes = routes
        self.seed = seed
    }
}

/// A datagram leaving the router, and the link it leaves by.
public struct RoutedDatagram {
    /// The datagram.
    public var packet: ByteBuffer
    /// The index of the link it leaves by.
    public var link: Int
}

/// An IP router without I/O of its own: a datagram comes in with the link it came by, datagrams go
/// out tagged with the link they leave by, and time passes only when the caller says so.
///
/// ```swift
/// let router = Router(RouterConfiguration(links: [a, b], routes: routes))
/// router.receive(datagram, from: 0, now: now)
/// while let out = router.nextPacketToSend(on: 1) { linkB.send(out, now: now) }
/// ```
///
/// Forwarding follows RFC 1812 §5 and RFC 8200 §3: the header checked once, the route found by
/// longest prefix match, TTL or hop limit decremented (ICMP time exceeded when it runs out), ICMP
/// fragmentation needed or packet too big when the next link is too narrow, and the datagram moved
/// into the outgoing queue with only its TTL and header checksum rewritten in place: no copy of the
/// payload, no allocation in steady state. Datagrams to the router's own addresses go to `stack`,
/// a `Stack` like any other, so the router answers ping and is seen by traceroute.
public final class Router {
    /// What the router was made with.
    public let configuration: RouterConfiguration
    /// The router's own stack: what is addressed to it (`RouterLink.addresses`).
    public let stack: Stack
    /// The routes, for longest prefix match.
    public private(set) var table: RoutingTable
    /// What the router did with the datagrams it was given.
    public internal(set) var counters = ForwardingCounters()
    @exclusivity(unchecked) var outgoing: [PacketQueue<ByteBuffer>]
    @exclusivity(unchecked) var icmpErrors: ICMPRateLimiter
    /// Where `nextPacketToSend()` looks first, so that no link starves the others.
    private var nextLink = 0

    /// A router made of `configuration`; it must have a link, and every route must lead to one.
    public init(_ configuration: RouterConfiguration) {
        precondition(!configuration.links.isEmpty, "Router: no links")
        for route in configuration.routes {
            precondition(configuration.links.indices.contains(route.link), "Router: a route to no link (\(route))")
        }
        self.configuration = configuration
        self.table = RoutingTable(configuration.routes)
        var own = StackConfiguration(
            addresses: configuration.links.flatMap(\.addresses),
            mtu: configuration.links.map(\.mtu).min()!,
            seed: configuration.seed)
        own.icmp = configuration.icmp
        own.rules = configuration.rules
        self.stack = Stack(own)
        self.outgoing = configuration.links.map { _ in PacketQueue(initialCapacity: 64) }
        self.icmpErrors = ICMPRateLimiter(
            perSecond: configuration.icmp.errorsPerSecond, burst: configuration.icmp.errorBurst)
    }

    /// Adds (or replaces) a route.
    public func add(_ route: RoutingTable.Route) {
        precondition(configuration.links.indices.contains(route.link), "Router: a route to no link (\(route))")
        table.add(route)
    }

    // MARK: The sans-IO front door

    /// One datagram that arrived by `link`. Malformed input is dropped and counted; it never traps.
    ///
    /// `checksumVerified`: the link vouches for the IPv4 header checksum, which is then not checked
    /// again (RFC 1812 §5.2.2 asks a router to check it otherwise).
    public func receive(_ datagram: consuming ByteBuffer, from link: Int, now: Instant, checksumVerified: Bool = false) {
        precondition(configuration.links.indices.contains(link), "Router: no link \(link)")
        counters.received &+= 1
        switch datagram.getInteger(at: datagram.readerIndex, as: UInt8.self).map({ $0 >> 4 }) {
        case 4?: forward4(datagram, from: link, now: now, verify: !checksumVerified)
        case 6?: forward6(datagram, from: link, now: now)
        default: counters.malformed &+= 1
        }
    }

    /// The next datagram to put on `link`, if any.
    public func nextPacketToSend(on link: Int) -> ByteBuffer? {
        drainStack()
        return outgoing[link].popFirst()
    }

    /// The next datagram to put on any link, with its link; links take turns.
    public func nextPacketToSend() -> RoutedDatagram? {
        drainStack()
        for step in 0..<outgoing.count {
            let link = (nextLink + step) % outgoing.count
            if let packet = outgoing[link].popFirst() {
                nextLink = (link + 1) % outgoing.count
                return RoutedDatagram(packet: packet, link: link)
            }
        }
        return nil
    }

    /// When the router next needs `advanceTime(to:)`: its own stack's timers.
    public var nextDeadline: Instant? { stack.nextDeadline }

    /// Runs the own stack's timers that are due.
    public func advanceTime(to now: Instant) {
        stack.advanceTime(to: now)
        drainForwardHook()
    }

    /// Datagrams the hooks held (an `impair` delay) or duplicated, now due: those prerouting held
    /// back to the routing decision, those forward or postrouting held on their way.
    private func drainForwardHook() {
        while let prerouted = stack.nextPreroutedPacket() {
            guard let name = prerouted.packet?.inputLink,
                  let link = configuration.links.firstIndex(where: { $0.name == name }) else {
                counters.malformed &+= 1
                continue
            }
            route(prerouted, from: link, now: stack.filterNow)
        }
        while let (datagram, name) = stack.nextForwardedPacket() {
            guard let out = configuration.links.firstIndex(where: { $0.name == name }) else {
                counters.noRoute &+= 1
                continue
            }
            var datagram = datagram
            guard Self.decrementHopCount(&datagram) else {
                counters.malformed &+= 1
                continue
            }
            transmit(datagram, on: out)
        }
    }

    /// TTL or hop limit − 1 in a datagram that passed the checks before the hook held it.
    private static func decrementHopCount(_ datagram: inout ByteBuffer) -> Bool {
        let base = datagram.readerIndex
        switch datagram.getInteger(at: base, as: UInt8.self).map({ $0 >> 4 }) {
        case 4?:
            guard let header = try? IPv4Header.parse(datagram, verifyChecksum: false), header.timeToLive > 1 else { return false }
            let old = UInt16(header.timeToLive) << 8 | UInt16(header.protocolNumber)
            datagram.setInteger(header.timeToLive - 1, at: base + 8)
            datagram.setInteger(InternetChecksum.update(header.headerChecksum, replacing: old, with: old &- 0x0100), at: base + 10)
            return true
        case 6?:
            guard let hop = datagram.getInteger(at: base + 7, as: UInt8.self), hop > 1 else { return false }
            datagram.setInteger(hop - 1, at: base + 7)
            return true
        default:
            return false
        }
    }

    /// A datagram past prerouting, again to the routing decision. A corrupted one (an `impair`
    /// rule) is checked from scratch: its header may no longer be what was parsed.
    private func route(_ prerouted: Stack.Prerouted, from link: Int, now: Instant) {
        switch prerouted.datagram.getInteger(at: prerouted.datagram.readerIndex, as: UInt8.self).map({ $0 >> 4 }) {
        case 4?:
            forward4(prerouted.datagram, from: link, now: now, verify: prerouted.corrupted, prerouted: true, known: prerouted.packet)
        case 6?:
            forward6(prerouted.datagram, from: link, now: now, prerouted: true, known: prerouted.packet)
        default:
            counters.malformed &+= 1
        }
    }

    /// Netfilter's prerouting for a datagram in transit, before the routing decision (as Linux's
    /// `ip_rcv` runs NF_INET_PRE_ROUTING before `ip_route_input`): false when a rule ended it, or
    /// it was corrupted and went round again through `route`. Without rules there: one test.
    @inline(__always)
    private func prerouting(_ datagram: inout ByteBuffer, _ known: inout FilterPacket?, from link: Int, now: Instant) -> Bool {
        guard stack.filtersPrerouting else { return true }
        guard let passed = stack.filterPrerouting(datagram, inputLink: configuration.links[link].name, now: now) else {
            counters.filtered &+= 1
            return false
        }
        if passed.corrupted {
            route(passed, from: link, now: now)
            return false
        }
        datagram = passed.datagram
        known = passed.packet
        return true
    }

    // MARK: IPv4 (RFC 1812 §5.2, §5.3)

    private func forward4(
        _ datagram: consuming ByteBuffer, from link: Int, now: Instant, verify: Bool, prerouted: Bool = false,
        known: FilterPacket? = nil
    ) {
        let header: IPv4Header
        do {
            // RFC 1812 §5.2.2: version, header length, total length and the header checksum.
            header = try IPv4Header.parse(datagram, verifyChecksum: verify)
        } catch {
            if error == .badChecksum { counters.badChecksum &+= 1 } else { counters.malformed &+= 1 }
            return
        }
        // Link padding beyond the total length is not part of the datagram (RFC 1812 §5.2.2).
        if datagram.readableBytes > Int(header.totalLength) {
            datagram.moveWriterIndex(to: datagram.readerIndex + Int(header.totalLength))
        }
        let destination = IPAddress.v4(header.destination)
        if stack.isLocal(destination) {
            deliverLocally(datagram, from: link, now: now)
            return
        }
        var known = known
        guard prerouted || prerouting(&datagram, &known, from: link, now: now) else { return }
        // RFC 1812 §5.3.7: never forward from a source that names no single host, nor to a
        // destination that names none (broadcast, multicast, loopback, class E: §4.2.2.11, §5.3.5).
        guard IPAddress.v4(header.source).namesSingleHost, destination.namesSingleHost else {
            counters.notForwardable &+= 1
            return
        }
        guard let out = table.link(for: destination) else {
            // RFC 1812 §5.2.7.1: no route is a network unreachable.
            counters.noRoute &+= 1
            sendError4(.destinationUnreachable(.networkUnreachable, nextHopMTU: 0), about: datagram, header: header,
                       from: link, now: now)
            return
        }
        // RFC 1812 §5.3.1: "if the TTL is reduced to zero (or less), the packet MUST be discarded, and
        // … the router MUST send an ICMP Time Exceeded message, Code 0" (RFC 792).
        guard header.timeToLive > 1 else {
            counters.timeExceeded &+= 1
            sendError4(.timeExceeded(code: 0), about: datagram, header: header, from: link, now: now)
            return
        }
        let mtu = configuration.links[out].mtu
        if Int(header.totalLength) > mtu {
            guard !header.dontFragment else {
                // RFC 1191 §4 / RFC 1812 §5.2.7.1: fragmentation needed and DF set, with the next-hop MTU.
                counters.tooBig &+= 1
                sendError4(.destinationUnreachable(.fragmentationNeeded, nextHopMTU: UInt16(clamping: mtu)),
                           about: datagram, header: header, from: link, now: now)
                return
            }
            guard forwardHook(&datagram, from: link, to: out, now: now, known: known) else { return }
            decrementTimeToLive(&datagram, header: header)
            fragment(datagram, identification: header.identification, to: out, mtu: mtu)
            return
        }
        guard forwardHook(&datagram, from: link, to: out, now: now, known: known) else { return }
        decrementTimeToLive(&datagram, header: header)
        transmit(datagram, on: out)
    }

    /// RFC 1812 §5.3.1 and RFC 1624 eqn. 3: TTL − 1, and the header checksum updated for the one
    /// 16-bit word that changed (TTL and protocol), not recomputed. In place: the buffer is ours.
    @inline(__always)
    private func decrementTimeToLive(_ datagram: inout ByteBuffer, header: IPv4Header) {
        let base = datagram.readerIndex
        let old = UInt16(header.timeToLive) << 8 | UInt16(header.protocolNumber)
        let new = old &- 0x0100
        datagram.setInteger(UInt8(header.timeToLive - 1), at: base + 8)
        datagram.setInteger(InternetChecksum.update(header.headerChecksum, replacing: old, with: new), at: base + 10)
    }

    /// RFC 1812 §5.2.6 / RFC 791 §3.2: a datagram without DF that is larger than the next link, cut to fit.
    private func fragment(_ datagram: ByteBuffer, identification: UInt16, to out: Int, mtu: Int) {
        guard let fragments = try? IPFragmentation.fragment(datagram, mtu: mtu, identification: UInt32(identification)) else {
            counters.malformed &+= 1
            return
        }
        counters.fragmented &+= 1
        for fragment in fragments { transmit(fragment, on: out) }
    }

    // MARK: IPv6 (RFC 8200 §3, RFC 4443)

    private func forward6(
        _ datagram: consuming ByteBuffer, from link: Int, now: Instant, prerouted: Bool = false, known: FilterPacket? = nil
    ) {
        let header: IPv6Header
        do {
            header = try IPv6Header.parse(datagram)
        } catch {
            counters.malformed &+= 1
            return
        }
        let length = IPv6Header.length + Int(header.payloadLength)
        if datagram.readableBytes > length { datagram.moveWriterIndex(to: datagram.readerIndex + length) }
        let destination = IPAddress.v6(header.destination)
        if stack.isLocal(destination) {
            deliverLocally(datagram, from: link, now: now)
            return
        }
        var known = known
        guard prerouted || prerouting(&datagram, &known, from: link, now: now) else { return }
        // RFC 4291 §2.5.6: "Routers must not forward any packets with Link-Local source or destination
        // addresses"; multicast routing is not ours to do, nor an unspecified source (§2.5.2).
        guard IPAddress.v6(header.source).namesSingleHost, destination.namesSingleHost,
              !Self.isLinkLocal(header.source), !Self.isLinkLocal(header.destination) else {
            counters.notForwardable &+= 1
            return
        }
        guard let out = table.link(for: destination) else {
            // RFC 4443 §3.1: code 0, no route to destination.
            counters.noRoute &+= 1
            sendError6(.destinationUnreachable(.noRoute), about: datagram, header: header,
                       from: link, now: now)
            return
        }
        // RFC 8200 §3: the hop limit is "decremented by 1 by each node that forwards the packet";
        // RFC 4443 §3.3: at zero, discard and send time exceeded code 0.
        guard header.hopLimit > 1 else {
            counters.timeExceeded &+= 1
            sendError6(.timeExceeded(code: 0), about: datagram, header: header, from: link, now: now)
            return
        }
        let mtu = configuration.links[out].mtu
        guard length <= mtu else {
            // RFC 4443 §3.2 and RFC 8200 §5: routers never fragment IPv6; packet too big with the MTU.
            counters.tooBig &+= 1
            sendError6(.packetTooBig(mtu: UInt32(clamping: mtu)), about: datagram, header: header, from: link, now: now)
            return
        }
        guard forwardHook(&datagram, from: link, to: out, now: now, known: known) else { return }
        datagram.setInteger(header.hopLimit - 1, at: datagram.readerIndex + 7)
        transmit(datagram, on: out)
    }

    // MARK: Shared

    /// The forward hook (netfilter's NF_INET_FORWARD) and postrouting, the one call site: after the
    /// routing decision and the checks that answer with ICMP, before the TTL is decremented
    /// (docs/NETFILTER.md). With no rules there it costs one test. False when a rule dropped,
    /// rejected (its answer goes out through the own stack), lost or held the datagram; a held one
    /// comes back through `drainForwardHook`. The datagram may come back as a copy (a corrupted bit).
    @inline(__always)
    private func forwardHook(_ datagram: inout ByteBuffer, from link: Int, to out: Int, now: Instant, known: FilterPacket?) -> Bool {
        guard let passed = stack.filterForward(
            datagram, inputLink: configuration.links[link].name, outputLink: configuration.links[out].name, now: now,
            known: known)
        else {
            counters.filtered &+= 1
            return false
        }
        datagram = passed
        return true
    }

    @inline(__always)
    private func transmit(_ datagram: consuming ByteBuffer, on link: Int) {
        counters.forwarded &+= 1
        counters.bytesForwarded &+= UInt64(datagram.readableBytes)
        outgoing[link].append(datagram)
    }

    /// Queues an ICMP error the router built (not counted as forwarded), routed to `link`: through
    /// output and postrouting first when they have rules, as Linux's `icmp_send` routes its error
    /// and then passes NF_INET_LOCAL_OUT.
    func enqueueError(_ error: consuming ByteBuffer, on link: Int, now: Instant) {
        guard stack.filtersOutput else {
            outgoing[link].append(error)
            return
        }
        sendOwn(error, on: link, now: now)
    }

    /// To the own stack, whose prerouting and input hooks see it with the link it came by.
    private func deliverLocally(_ datagram: consuming ByteBuffer, from link: Int, now: Instant) {
        counters.deliveredLocally &+= 1
        stack.receive(datagram, inputLink: configuration.links[link].name, now: now)
        drainStack()
    }

    /// Routes what the own stack sent (echo replies, port unreachables for traceroute's probes).
    /// With rules on output or postrouting the routing decision comes first and the hooks see the
    /// link chosen (`oifname`), as Linux's `ip_route_output` comes before NF_INET_LOCAL_OUT; those
    /// the hooks held and released go first, as they were sent first.
    private func drainStack() {
        guard stack.pendingPacketCount > 0 else { return }
        guard stack.filtersOutput else {
            while let packet = stack.nextPacketToSend() {
                guard let out = routeOwn(packet) else { continue }
                outgoing[out].append(packet)
            }
            return
        }
        while let (packet, name) = stack.nextOutputPacket() {
            guard let out = configuration.links.firstIndex(where: { $0.name == name }) else {
                counters.noRoute &+= 1
                continue
            }
            outgoing[out].append(packet)
        }
        while let packet = stack.nextPacketToRoute() {
            guard let out = routeOwn(packet) else { continue }
            sendOwn(packet, on: out, now: stack.filterNow)
        }
    }

    /// The routing decision for a datagram of the own stack, counted as sent locally; nil (and
    /// counted) when no route leads to its destination.
    private func routeOwn(_ packet: ByteBuffer) -> Int? {
        guard let destination = Self.destination(of: packet), let out = table.link(for: destination) else {
            counters.noRoute &+= 1
            return nil
        }
        counters.sentLocally &+= 1
        return out
    }

    /// Output and postrouting for a datagram of the router's own, routed to `link`; what a rule
    /// stops is counted as filtered (a held one comes back through `stack.nextOutputPacket()`).
    private func sendOwn(_ packet: ByteBuffer, on link: Int, now: Instant) {
        guard let passed = stack.filterOutput(packet, outputLink: configuration.links[link].name, now: now) else {
            counters.filtered &+= 1
            return
        }
        outgoing[link].append(passed)
    }

    private static func destination(of packet: ByteBuffer) -> IPAddress? {
        let base = packet.readerIndex
        switch packet.getInteger(at: base, as: UInt8.self).map({ $0 >> 4 }) {
        case 4?:
            return packet.getInteger(at: base + 16, as: UInt32.self).map { .v4(IPv4Address(rawValue: $0)) }
        case 6?:
            guard let high = packet.getInteger(at: base + 24, as: UInt64.self),
                  let low = packet.getInteger(at: base + 32, as: UInt64.self) else { return nil }
            return .v6(IPv6Address(high: high, low: low))
        default:
            return nil
        }
    }
}
