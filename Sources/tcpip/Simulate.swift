import ArgumentParser
import NIOCore
import TCPIP
import TCPIPLinks
import TCPIPSimulation

/// `tcpip simulate`: two stacks over a faulty memory link on virtual time, every byte verified.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Transfer data between two stacks over a simulated link with faults, and verify every byte.",
        discussion: """
            Runs on virtual time: a 10-minute transfer over a 200 ms path finishes in seconds, and the same \
            --seed gives the same run, packet for packet. The last line is machine-readable:
              verified=true bytes=<N> connections=<N> virtual_seconds=<T> retransmits=<R>
            and, with --path-mtu, pmtu=<the path MTU the connections settled on>.
            """)

    @Option(help: "Bytes to send in all, shared evenly over the connections (each way with --bidirectional).")
    var bytes: Int = 1_000_000
    @Option(help: "Parallel connections.")
    var connections: Int = 1
    @Flag(help: "The server sends as many bytes back.")
    var bidirectional = false
    @Option(help: "Probability that a datagram is lost (0...1).")
    var loss: Double = 0
    @Option(help: "Probability that a datagram is delivered twice.")
    var duplicate: Double = 0
    @Option(help: "Probability that a datagram is held back and delivered after later ones.")
    var reorder: Double = 0
    @Option(help: "Probability that one bit of a datagram is flipped.")
    var corrupt: Double = 0
    @Option(name: .customLong("delay-ms"), help: "One-way propagation delay in milliseconds.")
    var delayMilliseconds: Int = 5
    @Option(name: .customLong("bandwidth-mbit"), help: "Link rate in Mbit/s (0: unlimited).")
    var bandwidthMegabits: Int = 0
    @Option(name: .customLong("queue-bytes"), help: "Drop-tail queue of the link, in bytes.")
    var queueBytes: Int = 1 << 20
    @Option(help: "Link MTU.")
    var mtu: Int = 1500
    @Option(help: "IP version: 4 or 6.")
    var ip: Int = 4
    @Option(help: "Install this ruleset (nftables' syntax, plus impair; see `tcpip rules`) in the server's stack.")
    var rules: String?
    @Option(name: .customLong("client-rules"), help: "Install this ruleset in the client's stack.")
    var clientRules: String?
    @Option(help: "Seed of every random choice (faults, ISNs, ports).")
    var seed: UInt64 = 1
    @Option(help: "Write a pcap of the client's link to this file.")
    var pcap: String?
    @Option(help: """
        Draw the first connection's time–sequence graph (segments, retransmissions, ACKs, window, SACK blocks; \
        cwnd, ssthresh and bytes in flight) as seen at the client's link to this SVG file.
        """)
    var plot: String?
    @Option(name: .customLong("time-limit"), help: "Give up after this many virtual seconds.")
    var timeLimit: Int = 3600
    @Option(name: .customLong("buffer-bytes"), help: "Send and receive buffer of every connection (fixed; default: autotuned per --buffers).")
    var bufferBytes: Int?
    @Option(name: .customLong("reassembly-limit"), help: "Out-of-order bytes each connection's receiver may hold (default: the preset's, or twice --buffer-bytes).")
    var reassemblyLimit: Int?
    @Option(help: "Buffer sizing when --buffer-bytes is not given: server (autotuned, grows to 8 MiB to receive and 16 MiB to send), tunnel (64 KiB growing to 4 MiB) or fixed (256 KiB).")
    var buffers: BufferPreset = .server
    @Flag(help: "ECN (RFC 3168): the connections negotiate it, and the link marks ECN-capable datagrams CE where --loss would drop them.")
    var ecn = false
    @Option(name: .customLong("congestion-control"), help: "cubic or reno (NewReno).")
    var congestionControl: String = TCPConfiguration().congestionControl.rawValue
    @Option(name: .customLong("path-mtu"), help: """
        A router hop in the path forwards datagrams of up to this many octets and answers larger ones with \
        ICMP fragmentation needed / ICMPv6 packet too big (RFC 1191, RFC 8201).
        """)
    var pathMTU: Int?
    @Flag(name: .customLong("icmp-blackhole"), help: "With --path-mtu: the router drops too-big datagrams silently (RFC 4821 probing finds the MTU).")
    var icmpBlackHole = false
    @Flag(help: """
        Run the table of paths instead: RTT 10/50/200 ms × random loss 0/0.1/1/5 % × 1 and 4 flows through         a drop-tail bottleneck, printing goodput, retransmissions and Jain's fairness per cell; then the         bandwidth-delay sweep (10/100/500 Mbit/s × 10/50/100/200 ms, no loss, autotuned buffers): goodput as a         fraction of the link.
        """)
    var matrix = false

    func validate() throws {
        try OptionChecks.nonNegative(bytes, option: "bytes", what: "the bytes to send")
        try OptionChecks.positive(connections, option: "connections", what: "the number of connections")
        for (name, value) in [("loss", loss), ("duplicate", duplicate), ("reorder", reorder), ("corrupt", corrupt)] {
            try OptionChecks.probability(value, option: name)
        }
        try OptionChecks.ipVersion(ip)
        try OptionChecks.mtu(mtu, ip: ip)
        try OptionChecks.within(delayMilliseconds, 0...60_000, option: "delay-ms", because: "a one-way delay, up to a minute")
        try OptionChecks.nonNegative(bandwidthMegabits, option: "bandwidth-mbit", what: "the link rate (0: unlimited)")
        try OptionChecks.within(
            queueBytes, mtu...(1 << 30), option: "queue-bytes", because: "the link's queue holds at least one datagram of --mtu, at most 1 GiB")
        try OptionChecks.within(timeLimit, 1...(30 * 86_400), option: "time-limit", because: "virtual seconds, up to 30 days")
        if let bufferBytes {
            try OptionChecks.within(
                bufferBytes, 1...(1 << 30), option: "buffer-bytes", because: "each connection's send and receive buffer, up to 1 GiB")
        }
        if let reassemblyLimit {
            try OptionChecks.within(
                reassemblyLimit, 1...(1 << 30), option: "reassembly-limit", because: "each connection's out-of-order bytes, up to 1 GiB")
        }
        if let pathMTU {
            try OptionChecks.pathMTU(pathMTU, linkMTU: mtu, ip: ip)
        } else if icmpBlackHole {
            throw ValidationError("--icmp-blackhole: the black hole is the --path-mtu router's; give --path-mtu too")
        }
        if matrix, plot != nil { throw ValidationError("--plot draws one transfer; it cannot be combined with --matrix") }
        guard CongestionControlAlgorithm(rawValue: congestionControl) != nil else {
            throw ValidationError("--congestion-control must be one of: "
                + CongestionControlAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    func run() throws {
        let algorithm = CongestionControlAlgorithm(rawValue: congestionControl) ?? .cubic
        if matrix { return try runMatrix(algorithm) }
        var configuration = TransferSimulation.Configuration()
        var stack = StackConfiguration(addresses: [])
        buffers.apply(to: &stack)
        configuration.tcp = stack.tcp
        configuration.serverMemoryBudget = stack.memoryBudget
        configuration.tcp.congestionControl = algorithm
        if let bufferBytes {
            configuration.tcp.receiveBufferMaximum = nil
            configuration.tcp.sendBufferMaximum = nil
            configuration.tcp.sendBufferSize = bufferBytes
            configuration.tcp.receiveBufferSize = bufferBytes
            configuration.tcp.reassemblyLimit = 2 * bufferBytes
        }
        if let reassemblyLimit { configuration.tcp.reassemblyLimit = reassemblyLimit }
        configuration.bytes = bytes
        configuration.connections = connections
        configuration.bidirectional = bidirectional
        configuration.faults = FaultInjector.Configuration(
            loss: loss, duplicate: duplicate, reorder: reorder, corrupt: corrupt, markInsteadOfDrop: ecn)
        if ecn { configuration.tcp.explicitCongestionNotification = .request }
        configuration.delay = .milliseconds(Int64(delayMilliseconds))
        configuration.bandwidthBitsPerSecond = bandwidthMegabits > 0 ? UInt64(bandwidthMegabits) * 1_000_000 : nil
        configuration.queueLimitBytes = queueBytes
        configuration.mtu = mtu
        configuration.ipVersion = ip
        configuration.seed = seed
        configuration.timeLimit = .seconds(Int64(timeLimit))
        configuration.pathMTU = pathMTU
        configuration.icmpBlackHole = icmpBlackHole
        if plot != nil {
            configuration.plotTitle = "tcpip simulate: \(bytes) bytes, loss \(loss), delay \(delayMilliseconds) ms, seed \(seed)"
        }
        configuration.serverRules = try RulesFile.load(rules)
        configuration.clientRules = try RulesFile.load(clientRules)
        var sink: PcapFileSink?
        if let pcap {
            do {
                sink = try PcapFileSink(path: pcap)
            } catch {
                throw ValidationError("cannot open \(pcap): \(error)")
            }
            configuration.pcap = sink
        }

        print("simulate: \(bytes) bytes over \(connections) connection(s)\(bidirectional ? ", each way" : ""), IPv\(ip), MTU \(mtu)")
        print("  link: delay \(delayMilliseconds) ms, \(bandwidthMegabits > 0 ? "\(bandwidthMegabits) Mbit/s" : "unlimited rate"), "
            + "loss \(loss), duplicate \(duplicate), reorder \(reorder), corrupt \(corrupt), seed \(seed)"
            + (ecn ? ", ECN marking" : ""))
        if let pathMTU {
            print("  path: a router forwards datagrams of up to \(pathMTU) octets"
                + (icmpBlackHole ? " and drops larger ones silently (black hole)" : " and answers larger ones with ICMP"))
        }
        let result = TransferSimulation.run(configuration)
        sink?.flush()

        let seconds = Double(result.virtualDuration.nanoseconds) / 1e9
        let client = result.clientCounters
        let server = result.serverCounters
        print("  faults injected: \(result.faults.dropped) lost, \(result.faults.duplicated) duplicated, "
            + "\(result.faults.reordered) reordered, \(result.faults.corrupted) corrupted")
        if ecn {
            print("  ECN: \(result.faults.marked) datagrams marked CE instead of lost; "
                + "\(client.congestionExperiencedReceived + server.congestionExperiencedReceived) CE received, "
                + "\(client.ecnWindowReductions + server.ecnWindowReductions) cwnd reductions, "
                + "\(client.congestionWindowReducedSent + server.congestionWindowReducedSent) CWR sent")
        }
        print("  segments: client sent \(client.segmentsSent), server sent \(server.segmentsSent); "
            + "retransmitted \(result.retransmits) (\(client.retransmissionTimeouts + server.retransmissionTimeouts) timeouts, "
            + "\(client.fastRetransmits + server.fastRetransmits) fast)")
        print("  loss recovery: \(client.sackBlocksReceived + server.sackBlocksReceived) SACK blocks, "
            + "\(client.dsackBlocksReceived + server.dsackBlocksReceived) D-SACK blocks received, "
            + "\(client.tailLossProbes + server.tailLossProbes) tail loss probes, "
            + "\(client.spuriousRetransmissionsUndone + server.spuriousRetransmissionsUndone) episodes undone as spurious")
        print("  dropped by the stacks: \(client.badChecksums + server.badChecksums + client.ipBadChecksum + server.ipBadChecksum) bad checksums, "
            + "\(client.ipMalformed + server.ipMalformed + client.badSegments + server.badSegments) malformed")
        if seconds > 0 {
            let goodput = Double(result.bytesVerified) * 8 / seconds / 1e6
            print("  \(result.bytesVerified) of \(result.bytesExpected) bytes verified in \(formatted(seconds)) virtual seconds "
                + "(\(formatted(goodput)) Mbit/s goodput)")
        }
        if let router = result.router {
            print("  path MTU: router forwarded \(router.forwarded) datagrams (largest \(router.largestForwarded)), "
                + "\(router.tooBig) too big, \(router.errorsSent) ICMP errors sent; "
                + "\(client.pathMTUReductions + server.pathMTUReductions) PMTU reductions, "
                + "\(client.mtuBlackHolesDetected + server.mtuBlackHolesDetected) black holes suspected, "
                + "\(client.mtuProbesSent + server.mtuProbesSent) probes (\(client.mtuProbesSucceeded + server.mtuProbesSucceeded) acknowledged)")
        }
        if let plot, let drawn = result.plot {
            do {
                try PlotFile.write(drawn, to: plot)
            } catch {
                throw ValidationError("cannot write \(plot): \(error)")
            }
            let (sent, retransmitted) = drawn.segmentCounts
            print("  plot: \(plot) (\(sent) segments, \(retransmitted) retransmitted, of the first connection)")
        }
        for (side, listing) in [("client", result.clientRuleListing), ("server", result.serverRuleListing)] {
            guard let listing else { continue }
            print("  \(side) rules:")
            for line in listing.split(separator: "\n", omittingEmptySubsequences: false).dropLast() { print("    \(line)") }
        }
        for failure in result.failures.prefix(10) { print("  FAILURE: \(failure)") }
        print("verified=\(result.verified) bytes=\(result.bytesVerified) connections=\(result.connections) "
            + "virtual_seconds=\(formatted(seconds)) retransmits=\(result.retransmits)"
            + (result.settledPathMTU.map { " pmtu=\($0)" } ?? ""))
        if !result.verified { throw ExitCode(1) }
    }

    /// `--matrix`: every cell in table order; exits 1 if a cell failed to verify or a flow stalled.
    private func runMatrix(_ algorithm: CongestionControlAlgorithm) throws {
        var matrix = SimulationMatrix()
        matrix.tcp.congestionControl = algorithm
        print(matrix.header)
        var healthy = true
        for index in 0..<matrix.cellCount {
            let cell = matrix.run(cell: index)
            print(SimulationMatrix.render(cell))
            if !cell.verified || cell.stalledFlows > 0 { healthy = false }
        }
        var sweep = BandwidthDelaySweep()
        sweep.tcp.congestionControl = algorithm
        print("")
        print(sweep.header)
        for index in 0..<sweep.cellCount {
            let cell = sweep.run(cell: index)
            print(BandwidthDelaySweep.render(cell))
            if !cell.verified { healthy = false }
        }
        if !healthy { throw ExitCode(1) }
    }

    private func formatted(_ value: Double) -> String {
        TextFormat.fixed(value, digits: 3)
    }
}
