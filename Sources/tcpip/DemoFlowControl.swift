#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import NIOCore
import TCPIP
import TCPIPLinks

/// `tcpip demo flow-control`: the "TCP overflow" experiment, narrated.
struct DemoFlowControl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow-control",
        abstract: "A fast writer, a slow reader: watch the receive window shrink to zero and reopen.",
        discussion: """
            A client writes --bytes as fast as its stack accepts them; the server reads --read-size bytes \
            every --read-interval-ms. The output shows tcpdump-style segments around every change that \
            matters, the stacks' decisions with the RFC rule behind each, netstat tables at intervals, and a \
            summary. The last line is machine-readable:
              verified=true bytes=<N> zero_window_advertisements=<N> zero_window_probes=<N>
            The same options always print the same output.
            """)

    @Option(help: "Bytes the client sends.")
    var bytes: Int = FlowControlDemo.Options().bytes
    @Option(name: .customLong("read-size"), help: "Bytes the server's application reads at a time.")
    var readSize: Int = FlowControlDemo.Options().readSize
    @Option(name: .customLong("read-interval-ms"), help: "Milliseconds between the server's reads.")
    var readIntervalMilliseconds: Int = Int(FlowControlDemo.Options().readInterval.nanoseconds / 1_000_000)
    @Option(name: .customLong("recv-buffer"), help: "The server's receive buffer, in bytes (the most it can advertise).")
    var receiveBuffer: Int = FlowControlDemo.Options().receiveBuffer
    @Option(name: .customLong("send-buffer"), help: "The client's send buffer, in bytes (the most Send-Q can hold).")
    var sendBuffer: Int = FlowControlDemo.Options().sendBuffer
    @Option(help: "Link MTU in bytes.")
    var mtu: Int = FlowControlDemo.Options().mtu
    @Option(help: "IP version: 4 or 6.")
    var ip: Int = 4
    @Option(help: "Write every datagram, as seen at the client, to this pcap file.")
    var pcap: String?
    @Option(help: "Draw the connection's time–sequence graph (segments, ACKs, window, cwnd) to this SVG file.")
    var plot: String?
    @Flag(help: "Print every segment and every decision, and the counters at the end.")
    var verbose = false
    @Flag(name: .customLong("real-time"), help: "Pace virtual time by the wall clock, to watch it live.")
    var realTime = false

    func validate() throws {
        try OptionChecks.nonNegative(bytes, option: "bytes", what: "the bytes to send")
        try OptionChecks.positive(readSize, option: "read-size", what: "each read")
        try OptionChecks.positive(readIntervalMilliseconds, option: "read-interval-ms", what: "the time between reads")
        try OptionChecks.positive(receiveBuffer, option: "recv-buffer", what: "the receive buffer")
        try OptionChecks.positive(sendBuffer, option: "send-buffer", what: "the send buffer")
        try OptionChecks.ipVersion(ip)
        try OptionChecks.mtu(mtu, ip: ip)
    }

    var options: FlowControlDemo.Options {
        var options = FlowControlDemo.Options()
        options.bytes = bytes
        options.readSize = readSize
        options.readInterval = .milliseconds(Int64(readIntervalMilliseconds))
        options.receiveBuffer = receiveBuffer
        options.sendBuffer = sendBuffer
        options.mtu = mtu
        options.ipVersion = ip
        options.verbose = verbose
        return options
    }

    func run() throws {
        var sink: PcapFileSink?
        if let pcap {
            do {
                sink = try PcapFileSink(path: pcap)
            } catch {
                Self.printError("cannot write \(pcap): \(error)")
                throw ExitCode.failure
            }
        }
        let pacer = realTime ? WallClockPacer() : nil
        var drawn: TimeSequencePlot?
        let outcome = FlowControlDemo.run(
            options, pcap: sink, pace: pacer.map { pacer in { pacer.wait(until: $0) } },
            plotted: plot.map { _ in { drawn = $0 } }
        ) {
            print($0)
        }
        if let plot, let drawn {
            do {
                try PlotFile.write(drawn, to: plot)
            } catch {
                Self.printError("cannot write \(plot): \(error)")
                throw ExitCode.failure
            }
        }
        if let sink, let pcap {
            do {
                try sink.close()
            } catch {
                Self.printError("writing \(pcap) failed: \(error)")
                throw ExitCode.failure
            }
        }
        if !outcome.verified { throw ExitCode.failure }
    }

    /// `error: <message>` on standard error, where a failure belongs (stdout may be a pipe).
    static func printError(_ message: String) {
        var text = "error: \(message)\n"
        text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
    }
}

/// Holds the program back until the wall clock has caught up with virtual time (`--real-time`).
/// The CLI may read a clock; the stack never does.
final class WallClockPacer {
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    init() {
        start = clock.now
    }

    func wait(until instant: Instant) {
        let due = start + .nanoseconds(instant.nanoseconds)
        let remaining = clock.now.duration(to: due)
        guard remaining > .zero else { return }
        let (seconds, attoseconds) = remaining.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var left = timespec()
        while nanosleep(&request, &left) != 0 && errno == EINTR {
            request = left
        }
    }
}
