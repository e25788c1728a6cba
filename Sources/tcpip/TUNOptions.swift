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

/// What every command on a TUN device takes: the device, our addresses, a capture and a trace.
struct TUNOptions: ParsableArguments {
    @Option(help: "The TUN interface to attach to (created if missing; configure its kernel side with `ip`).")
    var tun: String
    @Option(
        name: .customLong("address"),
        help: "Our address, with or without a prefix length (198.18.0.2/24, 2001:db8::2/64); repeat for more.")
    var addresses: [String] = []
    @Option(help: "Write every datagram crossing the device to this pcap file (raw IP).")
    var pcap: String?
    @Flag(help: "Print every segment in tcpdump's notation, and each decision with the RFC rule behind it.")
    var trace = false
    @Option(help: "Draw the first TCP connection's time–sequence graph to this SVG file when the command stops.")
    var plot: String?
    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Open the device with IFF_VNET_HDR and offer the kernel checksum and TCP segmentation offload.",
            discussion: """
                The kernel then hands over TCP in super-packets of up to 64 KiB with checksums left \
                partial, as to a NIC with TSO, instead of one read per 1500-byte segment.
                """))
    var offload = true
    @Option(help: ArgumentHelp(
        "Impair both directions at the device, as netem would: loss=5%,reorder=10%,duplicate=1%,corrupt=0.1%,delay=10ms,jitter=2ms,rate=10mbit,queue=100",
        discussion: """
            For kernels without sch_netem; with netem, prefer `tc qdisc add dev tun0 root netem …` on the kernel \
            side. With offload a TSO super-packet is one datagram here (as for netem on a TSO device); add \
            --no-offload to impair wire-sized segments. The model is an `impair` rule's (the same decisions \
            for the same seed).
            """))
    var impair: String?
    @Option(help: ArgumentHelp(
        "Buffer sizing: server (grow to 8 MiB to receive, 16 MiB to send; TCPConfiguration.server), tunnel (start at 64 KiB, grow to 4 MiB, 32 MiB for the whole stack) or fixed (256 KiB each).",
        discussion: "server and tunnel autotune: each connection's buffers follow what its path and reader need."))
    var buffers: BufferPreset = .server
    @Option(help: ArgumentHelp(
        "Install this ruleset (nftables' syntax, plus impair) in the stack; see `tcpip rules`.",
        discussion: "The listing with its counters is printed when the command stops."))
    var rules: String?
    @Flag(
        inversion: .prefixedNo,
        help: "Pace TCP's sending at Linux's rate (TCPConfiguration.pacing) rather than in ACK-clocked bursts.")
    var pacing = true
    @Flag(
        name: .customLong("minimum-rto-adds-to-srtt"), inversion: .prefixedNo,
        help: "Bound TCP's variance term, not the whole RTO, by the 200 ms minimum: RTO = SRTT + 200 ms at least, as Linux's (TCPConfiguration.minimumRTOAddsToSRTT).")
    var minimumRTOAddsToSRTT = true
    @Option(help: "What to log to standard error, from trace to critical.")
    var logLevel: Logger.Level = .info

    /// The command's logger: to standard error, at `--log-level`.
    var logger: Logger { Self.logger(at: logLevel) }

    /// A command's logger: to standard error, at `level`.
    static func logger(at level: Logger.Level) -> Logger {
        var logger = Logger(label: "tcpip", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = level
        return logger
    }

    func validate() throws {
        guard !addresses.isEmpty else { throw ValidationError("give at least one --address") }
        _ = try parsedAddresses()
        if let impair, Impairment(parsing: impair) == nil { throw ValidationError("--impair \(impair): \(Impairment.syntax)") }
        _ = try RulesFile.load(rules)
    }

    func parsedAddresses() throws -> [IPAddress] {
        try addresses.map { text in
            let bare = text.split(separator: "/", maxSplits: 1).first.map(String.init) ?? text
            guard let address = IPAddress(bare) else { throw ValidationError("--address \(text): not an IP address (198.18.0.2/24, 2001:db8::2/64)") }
            return address
        }
    }

    /// Opens the device, starts a stack on one event loop, and wires the capture and the trace.
    func start(configure: (inout StackConfiguration) -> Void = { _ in }) throws -> RunningStack {
        let device = try TUNDevice(name: tun, options: TUNDevice.Options(virtioNetHeader: offload))
        // No seed: the secrets come from the system's cryptographic generator (a seed from the clock
        // would make ISNs and SYN cookies guessable from the boot time).
        var configuration = StackConfiguration(addresses: try parsedAddresses())
        buffers.apply(to: &configuration)
        configuration.tcp.pacing = pacing
        configuration.tcp.minimumRTOAddsToSRTT = minimumRTOAddsToSRTT
        configuration.rules = try RulesFile.load(rules)
        configuration.linkName = tun
        configure(&configuration)
        // The MTU and the checksum offload are the device's: with a virtio-net header the kernel
        // takes our TCP checksums as partial, so there are none to compute.
        let stack = Stack(StackRuntime.derive(configuration, from: device))
        stack.tracing = trace
        let logger = self.logger
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let runtime = try StackRuntime.start(stack: stack, device: device, on: group.next(), logger: logger).wait()
        // The recorder lives on the runtime's loop, as every packet it records does.
        let recorder = NIOLoopBoundBox.makeEmptyBox(valueType: PcapRecorder.self, eventLoop: runtime.eventLoop)
        let plot = NIOLoopBoundBox.makeEmptyBox(valueType: ConnectionPlot.self, eventLoop: runtime.eventLoop)
        let trace = self.trace
        let pcap = self.pcap
        let plotting = self.plot != nil
        if let impairment = impair.flatMap(Impairment.init(parsing:)) {
            try runtime.eventLoop.submit { runtime.impair(impairment) }.wait()
        }
        if pcap != nil || trace || plotting {
            try runtime.eventLoop.submit {
                recorder.value = try pcap.map { PcapRecorder(sink: try PcapFileSink(path: $0)) }
                if plotting { plot.value = ConnectionPlot(title: "tcpip on \(tun)") }
                var formatter = SegmentFormatter()
                runtime.packetObserver = { packet, now, _ in
                    recorder.value?.record(packet, at: now)
                    plot.value?.record(packet, at: now, stack: runtime.stack)
                    if trace { announce(formatter.format(packet, at: now)) }
                }
                if trace {
                    runtime.traceObserver = { records in
                        for record in records { announce("  \(record.rule): \(record.message)") }
                    }
                }
            }.wait()
        }
        if let pcap { logger.info("capturing to \(pcap)") }
        return RunningStack(
            group: group, runtime: runtime, recorder: recorder, plot: plot, plotPath: self.plot, device: tun, logger: logger)
    }
}

/// A started runtime and what must be closed with it.
struct RunningStack: Sendable {
    let group: MultiThreadedEventLoopGroup
    let runtime: StackRuntime
    /// The other queues' runtimes (`gateway --queues N`): they stop and drain with `runtime`.
    var queues: [StackRuntime] = []
    let recorder: NIOLoopBoundBox<PcapRecorder?>
    let plot: NIOLoopBoundBox<ConnectionPlot?>
    let plotPath: String?
    let device: String
    let logger: Logger

    /// Stops the runtimes, flushes the capture, prints the rules' listing with their counters (when
    /// rules are installed) and shuts the loops down.
    func finish() {
        if let listing = try? runtime.eventLoop.submit({ [runtime] in runtime.stack.filterListing() }).wait() ?? nil {
            announce(listing.hasSuffix("\n") ? String(listing.dropLast()) : listing)
        }
        for queue in [runtime] + queues {
            queue.stop(promise: nil)
            _ = try? queue.closeFuture.wait()
        }
        try? runtime.eventLoop.submit { [recorder] in recorder.value?.flush() }.wait()
        if let plotPath, let drawn = try? runtime.eventLoop.submit({ [plot] in plot.value?.plot }).wait() {
            do {
                try PlotFile.write(drawn, to: plotPath)
                logger.info("plot written to \(plotPath)")
            } catch {
                logger.error("cannot write \(plotPath): \(error)")
            }
        }
        try? group.syncShutdownGracefully()
    }

    /// Runs `body` on the loop and waits for its result.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        try runtime.eventLoop.submit(body).wait()
    }
}

/// Prints a line and flushes, so a parent waiting for `READY` on a pipe sees it at once.
func announce(_ line: String) {
    // Unbuffered, so a parent waiting for `READY` on a pipe sees it at once.
    let text = line + "\n"
    _ = text.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension Impairment {
    /// What `--impair` takes, for its error message.
    static let syntax = "expected netem's words separated by commas: loss=5%,reorder=10%,duplicate=1%,corrupt=0.1% "
        + "(percentages, 0% to 100%), delay=10ms, jitter=2ms (0ms to 3600000ms), rate=10mbit (bit, kbit, mbit, gbit), "
        + "queue=100 (datagrams), seed=N"
}
#endif
