import NIOCore
import TCPIP
import TCPIPWire

/// Two stacks over a memory link with faults, moving data on virtual time and checking every
/// byte: what `tcpip simulate` runs and what the simulation tests assert on.
///
/// The client (198.18.0.1 / 2001:db8::1) opens `connections` connections to the server
/// (198.18.0.2 / 2001:db8::2, port 5001) and writes `bytes` in all, shared evenly among them;
/// with `bidirectional` the servers write as many back. Each side half-closes when it has written everything and
/// reads until the other's FIN. Every byte is compared with the deterministic pattern it was
/// written from.
public struct TransferSimulation {
    /// What to simulate: the transfer, the path and the stacks.
    public struct Configuration {
        /// Bytes the client writes in all (and, with `bidirectional`, the server), split evenly over the connections.
        public var bytes: Int = 1 << 20
        /// Connections, each carrying its share of `bytes`.
        public var connections: Int = 1
        /// The servers write back as much as they read.
        public var bidirectional = false
        /// Faults applied to each direction of the link.
        public var faults = FaultInjector.Configuration()
        /// One-way propagation delay.
        public var delay: TimeAmount = .milliseconds(5)
        /// The link's rate; nil for infinitely fast.
        public var bandwidthBitsPerSecond: UInt64? = nil
        /// The link's drop-tail queue, in bytes.
        public var queueLimitBytes: Int = 1 << 20
        /// The link's MTU.
        public var mtu: Int = 1500
        /// 4 or 6: the addresses the stacks use.
        public var ipVersion: Int = 4
        /// Seeds the faults and the stacks' generators: the same seed, the same run.
        public var seed: UInt64 = 1
        /// The client's TCP configuration (and the server's, without `serverTCP`).
        public var tcp = TCPConfiguration()
        /// A run that has not finished by then has stalled: it fails instead of running forever.
        public var timeLimit: TimeAmount = .seconds(3600)
        /// Timed mode: the clients write without end and the run stops after this much virtual
        /// time; `bytes` is ignored and the result reports what each connection delivered.
        public var duration: TimeAmount? = nil
        /// Records every datagram on the client's link.
        public var pcap: PcapSink? = nil
        /// The server stack's `StackConfiguration.memoryBudget`. With one, the server's memory is
        /// checked after every datagram: never above the budget, and its running total equal to a
        /// full recount (as the stack fuzz target checks).
        public var serverMemoryBudget: Int? = nil
        /// The server's TCP configuration, if it differs from the client's (`tcp`).
        public var serverTCP: TCPConfiguration? = nil
        /// A router hop in the path whose next link carries datagrams of at most this many octets
        /// (`PathMTURouter`); nil: the path MTU is the link's.
        public var pathMTU: Int? = nil
        /// The router drops too-big datagrams without an ICMP error (a PMTUD black hole).
        public var icmpBlackHole = false
        /// When set, a time–sequence graph of the first connection, seen at the client's link (after
        /// its faults: what the client sent and what reached it) with the client's congestion
        /// state, titled with this; returned in `Result.plot`.
        public var plotTitle: String? = nil
        /// Netfilter rules installed in the client's and the server's stack (`StackConfiguration.rules`).
        public var clientRules: FilterRuleset? = nil
        /// Netfilter rules of the server's stack.
        public var serverRules: FilterRuleset? = nil

        /// A 1 MiB upload over one connection, 5 ms each way, no faults.
        public init() {}
    }

    /// What a run did.
    public struct Result: Sendable {
        /// Whether every byte arrived intact and every connection closed cleanly.
        public var verified: Bool
        /// Bytes that arrived and matched, both directions, all connections.
        public var bytesVerified: Int
        /// Bytes that should have arrived, both directions.
        public var bytesExpected: Int
        /// Connections the run made.
        public var connections: Int
        /// Virtual time the run took.
        public var virtualDuration: TimeAmount
        /// Segments retransmitted, both stacks.
        public var retransmits: UInt64
        /// The client stack's counters at the end.
        public var clientCounters: StackCounters
        /// The server stack's counters at the end.
        public var serverCounters: StackCounters
        /// What the fault injectors did, both directions.
        public var faults: FaultStatistics
        /// What went wrong, one line each; empty when verified.
        public var failures: [String]
        /// Per connection, client to server: bytes verified at the end, and at three quarters of the
        /// run (timed mode), so a flow that stopped moving late in the run shows.
        public var delivered: [(total: Int, atThreeQuarters: Int)]
        /// With `serverMemoryBudget`: the most the server had in use after any datagram, and how
        /// many times its running total disagreed with a recount or exceeded the budget.
        public var serverPeakMemory: Int = 0
        /// Times the server's memory exceeded the budget or disagreed with a recount.
        public var serverMemoryViolations: Int = 0
        /// Each server connection's status at the end (receive and send buffers, autotuning).
        public var serverStatuses: [ConnectionStatus] = []
        /// `nft list ruleset` of each stack's rules with their counters at the end; nil without rules.
        public var clientRuleListing: String? = nil
        /// The server's rules with their counters.
        public var serverRuleListing: String? = nil
        /// With a `pathMTU` router: the path MTU the connections settled on (the largest datagram the
        /// router forwarded in the last segments each side sent), and the router's counts.
        public var settledPathMTU: Int? = nil
        /// What the path MTU router did.
        public var router: PathMTURouter.Statistics? = nil
        /// The graph asked for with `Configuration.plotTitle`.
        public var plot: TimeSequencePlot? = nil
    }

    /// The client's IPv4 address.
    public static let clientAddress4 = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    /// The server's IPv4 address.
    public static let serverAddress4 = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    /// The client's IPv6 address.
    public static let clientAddress6 = IPAddress("2001:db8::1")!
    /// The server's IPv6 address.
    public static let serverAddress6 = IPAddress("2001:db8::2")!
    /// The port the server listens on.
    public static let serverPort: UInt16 = 5001

    /// The byte at `offset` of the stream a connection's side writes: period 251 (prime), so it
    /// never lines up with segment or buffer sizes and a misplaced byte is always caught.
    @inlinable
    public static func patternByte(offset: Int, stream: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: (offset &+ stream &* 37) % 251)
    }

    /// Runs the simulation to its end on virtual time (deterministic: the same configuration, the same result).
    public static func run(_ configuration: Configuration) -> Result {
        Run(configuration).run()
    }
}

/// One direction of one connection: what was written, what arrived.
private struct Stream {
    var written = 0
    var received = 0
    var sawEnd = false
    var corrupt = false
}

private final class Run {
    let configuration: TransferSimulation.Configuration
    let network = VirtualNetwork()
    let client: Stack
    let server: Stack
    let clientFaults: FaultInjector?
    let serverFaults: FaultInjector?
    let routers: [PathMTURouter]
    /// The largest path MTU a client connection reported last (`ConnectionStatus.pathMTU`).
    var lastPathMTU: Int?
    /// 64 KiB plus one period of the pattern, so any write is a zero-copy slice of it.
    let pattern: ByteBuffer
    var failures: [String] = []

    struct Pair {
        var client: ConnectionID
        var server: ConnectionID?
        var index: Int
        var up = Stream()      // client -> server
        var down = Stream()    // server -> client
        var clientClosed = false
        var serverClosed = false
    }
    var pairs: [Pair] = []
    var pairOfClient: [ConnectionID: Int] = [:]
    var pairOfServer: [ConnectionID: Int] = [:]
    /// Each pair's 4-tuple as the client sees it: how an accepted connection finds its pair.
    var pairOfClientTuple: [FourTuple: Int] = [:]
    var acceptOrder: [Int] = []
    /// Each pair's client-to-server bytes at three quarters of a timed run.
    var deliveredAtCheckpoint: [Int]?
    var serverPeakMemory = 0
    var serverMemoryViolations = 0
    let plotTap: PlotTap?

    init(_ configuration: TransferSimulation.Configuration) {
        self.configuration = configuration
        let corrupting = configuration.faults.corrupt > 0
        let (a, b) = MemoryLink.pair(
            MemoryLink.Configuration(
                mtu: configuration.mtu, delay: configuration.delay,
                bandwidthBitsPerSecond: configuration.bandwidthBitsPerSecond,
                queueLimitBytes: configuration.queueLimitBytes, checksumOffload: !corrupting))
        let faults = configuration.faults
        let faulty = faults.loss > 0 || faults.duplicate > 0 || faults.reorder > 0 || faults.corrupt > 0
        var clientLink: PacketLink = a
        var serverLink: PacketLink = b
        if faulty {
            let clientSide = FaultInjector(wrapping: a, configuration: faults, seed: configuration.seed &* 2 &+ 1)
            let serverSide = FaultInjector(wrapping: b, configuration: faults, seed: configuration.seed &* 2 &+ 2)
            clientFaults = clientSide
            serverFaults = serverSide
            clientLink = clientSide
            serverLink = serverSide
        } else {
            clientFaults = nil
            serverFaults = nil
        }
        if let pathMTU = configuration.pathMTU {
            // The router is one hop in the middle of the path: its errors take one link delay back.
            let clientSide = PathMTURouter(
                wrapping: clientLink, pathMTU: pathMTU, blackHole: configuration.icmpBlackHole, delay: configuration.delay)
            let serverSide = PathMTURouter(
                wrapping: serverLink, pathMTU: pathMTU, blackHole: configuration.icmpBlackHole, delay: configuration.delay)
            routers = [clientSide, serverSide]
            clientLink = clientSide
            serverLink = serverSide
        } else {
            routers = []
        }
        if let sink = configuration.pcap {
            clientLink = PcapWriter(wrapping: clientLink, sink: sink)
        }
        if let title = configuration.plotTitle {
            let tap = PlotTap(wrapping: clientLink, title: title)
            plotTap = tap
            clientLink = tap
        } else {
            plotTap = nil
        }
        let v6 = configuration.ipVersion == 6
        var clientConfiguration = StackConfiguration(
            addresses: [v6 ? TransferSimulation.clientAddress6 : TransferSimulation.clientAddress4],
            mtu: configuration.mtu, checksumOffload: clientLink.capabilities.checksumOffload,
            seed: configuration.seed, tcp: configuration.tcp)
        clientConfiguration.rules = configuration.clientRules
        client = Stack(clientConfiguration)
        var serverConfiguration = StackConfiguration(
            addresses: [v6 ? TransferSimulation.serverAddress6 : TransferSimulation.serverAddress4],
            mtu: configuration.mtu, checksumOffload: serverLink.capabilities.checksumOffload,
            seed: configuration.seed &+ 0x5EED, tcp: configuration.serverTCP ?? configuration.tcp)
        serverConfiguration.memoryBudget = configuration.serverMemoryBudget
        serverConfiguration.rules = configuration.serverRules
        server = Stack(serverConfiguration)
        plotTap?.stack = client
        network.addHost(client, link: clientLink)
        network.addHost(server, link: serverLink)
        var pattern = ByteBufferAllocator().buffer(capacity: 65536 + 251)
        for offset in 0..<(65536 + 251) { pattern.writeInteger(UInt8(offset % 251)) }
        self.pattern = pattern
    }

    /// Up to 64 KiB of stream `stream` starting at `offset`, as a slice of the pattern.
    func chunk(offset: Int, stream: Int, length: Int) -> ByteBuffer {
        let phase = (offset + stream * 37) % 251
        return pattern.getSlice(at: phase, length: min(length, 65536))!
    }

    func run() -> TransferSimulation.Result {
        if let budget = configuration.serverMemoryBudget {
            let server = self.server
            network.afterDatagram = { [unowned self] stack in
                guard stack === server else { return }
                let inUse = server.memoryInUse
                serverPeakMemory = max(serverPeakMemory, inUse)
                let recount = server.memory.buffers + server.connectionCount * Stack.connectionEntryBytes
                    + server.halfOpenCount * Stack.halfOpenEntryBytes + server.timeWaitCount * Stack.timeWaitEntryBytes
                if inUse > budget || inUse != recount { serverMemoryViolations += 1 }
            }
        }
        let serverAddress = configuration.ipVersion == 6 ? TransferSimulation.serverAddress6 : TransferSimulation.serverAddress4
        // One client address has 16,384 ephemeral ports per server port: past that, spread the
        // connections over more server ports.
        let perPort = 16_000
        let ports = (configuration.connections + perPort - 1) / perPort
        var listeners: [ListenerID] = []
        do {
            for port in 0..<ports {
                listeners.append(try server.listen(
                    on: TransferSimulation.serverPort + UInt16(port), backlog: min(max(configuration.connections, 1), perPort)))
            }
            for index in 0..<configuration.connections {
                let port = TransferSimulation.serverPort + UInt16(index / perPort)
                let id = try client.connect(to: Endpoint(serverAddress, port), now: network.now)
                pairs.append(Pair(client: id, server: nil, index: index))
                pairOfClient[id] = index
                if let status = client.status(id) {
                    pairOfClientTuple[FourTuple(local: status.local, remote: status.remote)] = index
                }
            }
        } catch {
            failures.append("setup failed: \(error)")
            return result(verified: false)
        }
        let deadline = Instant.zero + (configuration.duration ?? configuration.timeLimit)
        let checkpoint = configuration.duration.map { Instant.zero + .nanoseconds($0.nanoseconds / 4 * 3) }
        while !finished {
            if let checkpoint, network.now >= checkpoint, deliveredAtCheckpoint == nil {
                deliveredAtCheckpoint = pairs.map { $0.up.received }
            }
            network.settle()
            handleEvents(listeners: listeners)
            network.settle()
            if finished { break }
            guard network.now < deadline else {
                if configuration.duration != nil { break }
                failures.append("stalled: not finished after \(configuration.timeLimit.nanoseconds / 1_000_000_000) virtual seconds")
                describeUnfinished()
                break
            }
            let next = checkpoint.map { deliveredAtCheckpoint == nil && network.now < $0 ? $0 : deadline } ?? deadline
            if !network.advance(notAfter: next) {
                // Nothing scheduled anywhere, yet not finished: a deadlock.
                handleEvents(listeners: listeners)
                if !finished {
                    failures.append("deadlock: no timers and no packets in flight at \(network.now)")
                    break
                }
            }
        }
        for pair in pairs {
            if pair.up.corrupt || pair.down.corrupt {
                failures.append("connection \(pair.index): bytes differ from what was sent")
            }
        }
        let verified = failures.isEmpty && (finished || configuration.duration != nil)
        return result(verified: verified)
    }

    var finished: Bool {
        pairs.allSatisfy { pair in
            pair.up.sawEnd && pair.up.received == share(pair.index)
                && (pair.down.sawEnd && pair.down.received == (configuration.bidirectional ? share(pair.index) : 0))
        }
    }

    /// Connection `index`'s part of the total.
    func share(_ index: Int) -> Int {
        if configuration.duration != nil { return .max }
        return configuration.bytes / configuration.connections + (index < configuration.bytes % configuration.connections ? 1 : 0)
    }

    func handleEvents(listeners: [ListenerID]) {
        var again = true
        while again {
            again = false
            while let event = server.nextEvent() {
                again = true
                switch event {
                case .acceptable(let listener):
                    while let id = server.accept(listener) {
                        guard let status = server.status(id) else { continue }
                        // Match the accepted connection to the client's by port.
                        if let index = pairOfClientTuple[FourTuple(local: status.remote, remote: status.local)] {
                            pairs[index].server = id
                            pairOfServer[id] = index
                            serve(index)
                        }
                    }
                case .connection(let id, _):
                    if let index = pairOfServer[id] { serve(index) }
                case .udpReadable, .connectionRequest, .udpFlow, .udpFlowExpired, .echoRequest:
                    break
                }
            }
            while let event = client.nextEvent() {
                again = true
                if case .connection(let id, _) = event, let index = pairOfClient[id] { drive(index) }
            }
            network.settle()
        }
    }

    /// The client side: write, half-close, read what comes back.
    func drive(_ index: Int) {
        var pair = pairs[index]
        if !routers.isEmpty, let mtu = client.status(pair.client)?.pathMTU { lastPathMTU = mtu }
        write(stack: client, id: pair.client, stream: &pair.up, streamNumber: index * 2, closed: &pair.clientClosed)
        read(stack: client, id: pair.client, stream: &pair.down, streamNumber: index * 2 + 1, index: index)
        pairs[index] = pair
    }

    /// The server side: read, and (bidirectional) write back; close after the peer's FIN.
    func serve(_ index: Int) {
        var pair = pairs[index]
        guard let id = pair.server else { return }
        read(stack: server, id: id, stream: &pair.up, streamNumber: index * 2, index: index)
        if configuration.bidirectional {
            write(stack: server, id: id, stream: &pair.down, streamNumber: index * 2 + 1, closed: &pair.serverClosed)
        } else if !pair.serverClosed && pair.up.sawEnd {
            pair.serverClosed = true
            do { try server.close(id, now: network.now) } catch { failures.append("server close: \(error)") }
        }
        pairs[index] = pair
    }

    func write(stack: Stack, id: ConnectionID, stream: inout Stream, streamNumber: Int, closed: inout Bool) {
        guard !closed else { return }
        guard let state = stack.state(id), state != .synSent && state != .synReceived else { return }
        let total = share(streamNumber / 2)
        while stream.written < total {
            let piece = chunk(offset: stream.written, stream: streamNumber, length: total - stream.written)
            let taken: Int
            do { taken = try stack.send(id, piece, now: network.now) } catch {
                failures.append("send on stream \(streamNumber): \(error)")
                closed = true
                return
            }
            stream.written += taken
            if taken < piece.readableBytes { return }
        }
        closed = true
        do { try stack.close(id, now: network.now) } catch { failures.append("close stream \(streamNumber): \(error)") }
    }

    func read(stack: Stack, id: ConnectionID, stream: inout Stream, streamNumber: Int, index: Int) {
        while !stream.sawEnd {
            let result: ReceiveResult
            do { result = try stack.read(id, now: network.now) } catch {
                failures.append("connection \(index) stream \(streamNumber): \(error) after \(stream.received) bytes")
                stream.sawEnd = true
                return
            }
            switch result {
            case .data(let bytes):
                let ok = bytes.withUnsafeReadableBytes { raw -> Bool in
                    var offset = stream.received
                    for byte in raw {
                        if byte != TransferSimulation.patternByte(offset: offset, stream: streamNumber) { return false }
                        offset += 1
                    }
                    return true
                }
                if !ok { stream.corrupt = true }
                stream.received += bytes.readableBytes
            case .endOfStream:
                stream.sawEnd = true
            case .wouldBlock:
                return
            }
        }
    }

    /// Says where each unfinished connection stands, so a stall can be read from the failure list.
    func describeUnfinished() {
        for pair in pairs where !(pair.up.sawEnd && pair.down.sawEnd) {
            func describe(_ stack: Stack, _ id: ConnectionID?) -> String {
                guard let id, let status = stack.status(id) else { return "gone" }
                return "\(status.state) snd.una=\(status.sendUnacknowledged) snd.nxt=\(status.sendNext) "
                    + "rcv.nxt=\(status.receiveNext) snd.wnd=\(status.sendWindow) rcv.wnd=\(status.receiveWindow) "
                    + "sendq=\(status.sendQueue) recvq=\(status.receiveQueue) rto=\(status.retransmissionTimeout.nanoseconds / 1_000_000)ms"
            }
            failures.append(
                "connection \(pair.index): up \(pair.up.received)/\(pair.up.written) end=\(pair.up.sawEnd), "
                    + "down \(pair.down.received)/\(pair.down.written) end=\(pair.down.sawEnd); "
                    + "client [\(describe(client, pair.client))] server [\(describe(server, pair.server))]")
            if failures.count > 12 { return }
        }
    }

    func result(verified: Bool) -> TransferSimulation.Result {
        var faults = FaultStatistics()
        for injector in [clientFaults, serverFaults].compactMap({ $0 }) {
            faults.received += injector.statistics.received
            faults.dropped += injector.statistics.dropped
            faults.duplicated += injector.statistics.duplicated
            faults.reordered += injector.statistics.reordered
            faults.corrupted += injector.statistics.corrupted
            faults.marked += injector.statistics.marked
        }
        let timed = configuration.duration != nil
        let expected = timed ? pairs.reduce(0) { $0 + $1.up.received + $1.down.received } : configuration.bytes * (configuration.bidirectional ? 2 : 1)
        let delivered = pairs.reduce(0) { total, pair in
            total + (pair.up.corrupt ? 0 : pair.up.received) + (pair.down.corrupt ? 0 : pair.down.received)
        }
        var router: PathMTURouter.Statistics?
        if !routers.isEmpty {
            router = routers.reduce(into: PathMTURouter.Statistics()) { total, each in
                total.forwarded += each.statistics.forwarded
                total.tooBig += each.statistics.tooBig
                total.errorsSent += each.statistics.errorsSent
                total.largestForwarded = max(total.largestForwarded, each.statistics.largestForwarded)
            }
        }
        let serverAddress = configuration.ipVersion == 6 ? TransferSimulation.serverAddress6 : TransferSimulation.serverAddress4
        let settled = routers.isEmpty ? nil
            : lastPathMTU ?? client.pathMTU(to: serverAddress, now: network.now) ?? router?.largestForwarded
        return TransferSimulation.Result(
            verified: verified && delivered == expected, bytesVerified: delivered, bytesExpected: expected,
            connections: configuration.connections, virtualDuration: network.now - .zero,
            retransmits: client.counters.segmentsRetransmitted + server.counters.segmentsRetransmitted,
            clientCounters: client.counters, serverCounters: server.counters, faults: faults, failures: failures,
            delivered: pairs.enumerated().map { index, pair in
                (pair.up.corrupt ? 0 : pair.up.received, deliveredAtCheckpoint?[index] ?? pair.up.received)
            },
            serverPeakMemory: serverPeakMemory, serverMemoryViolations: serverMemoryViolations,
            serverStatuses: pairs.compactMap { $0.server.flatMap(server.status) },
            clientRuleListing: client.filterListing(), serverRuleListing: server.filterListing(),
            settledPathMTU: settled, router: router, plot: plotTap?.plot.plot)
    }
}

/// Draws what crosses the client's link, as the `WireTap` of `tcpip demo` does: each datagram when it
/// leaves (at the `now` of `send`) or arrives (at the `now` of `receive`).
private final class PlotTap: PacketLink {
    let inner: PacketLink
    var plot: ConnectionPlot
    /// The client, whose congestion state is sampled; set once it exists.
    var stack: Stack?

    init(wrapping inner: PacketLink, title: String) {
        self.inner = inner
        self.plot = ConnectionPlot(title: title)
    }

    var mtu: Int { inner.mtu }
    var capabilities: LinkCapabilities { inner.capabilities }
    var nextArrival: Instant? { inner.nextArrival }

    func send(_ packet: ByteBuffer, now: Instant) {
        if let stack { plot.record(packet, at: now, stack: stack) }
        inner.send(packet, now: now)
    }

    func receive(now: Instant) -> ByteBuffer? {
        guard let packet = inner.receive(now: now) else { return nil }
        if let stack { plot.record(packet, at: now, stack: stack) }
        return packet
    }
}
