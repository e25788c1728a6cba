import NIOCore
import TCPIP
import TCPIPWire

/// The "TCP overflow" experiment: a client writes as fast as its stack accepts, a server reads a
/// few bytes at a time, and TCP's flow control (RFC 9293 §3.8.6) keeps the two in step.
///
/// Two stacks over a lossless in-memory link on virtual time. What it prints depends only on the
/// options, so it can be snapshot-tested; `run` hands every line to `emit` as it happens, so the
/// command can print live (and pace with `--real-time`).
struct FlowControlDemo {
    struct Options: Hashable, Sendable {
        var bytes = 1 << 20
        var readSize = 124
        /// With 124-byte reads the window stays shut until 12 reads have freed an MSS (RFC 9293
        /// §3.8.6.2.2). The client fills the last small window only when its SWS override timer
        /// (§3.8.6.2.1, 200 ms) expires, and the reads during that wait count towards the MSS; at
        /// 50 ms a read the rest still takes ~400 ms, longer than the 200 ms persist timer, so every
        /// closed window gets a probe. (At 40 ms the window reopens before any probe.)
        var readInterval: TimeAmount = .milliseconds(50)
        var receiveBuffer = 8192
        var sendBuffer = 65536
        var mtu = 1500
        var ipVersion = 4
        /// Print every segment and every decision.
        var verbose = false
        /// One-way delay of the link.
        var delay: TimeAmount = .milliseconds(5)
        /// Zero-window episodes printed segment by segment before only tables follow.
        var detailedEpisodes = 3
    }

    /// What the run showed, for the summary and for tests.
    struct Outcome: Hashable, Sendable {
        var verified = false
        var bytesVerified = 0
        var duration: TimeAmount = .zero
        var smallestWindow = Int.max
        var largestWindow = 0
        /// Zero windows the server advertised (counted once per closing, like the stack counts them).
        var zeroWindowAdvertisements: UInt64 = 0
        var zeroWindowProbes: UInt64 = 0
        var windowUpdates: UInt64 = 0
        var retransmissions: UInt64 = 0
        /// A window above zero was advertised after a zero window.
        var windowReopened = false
        var failures: [String] = []

        var summaryLine: String {
            "verified=\(verified) bytes=\(bytesVerified) zero_window_advertisements=\(zeroWindowAdvertisements) "
                + "zero_window_probes=\(zeroWindowProbes)"
        }
    }

    static let serverPort: UInt16 = 5001

    /// Runs the experiment, handing each line of output to `emit` as it happens.
    ///
    /// - Parameters:
    ///   - pcap: where to record every datagram, as seen at the client.
    ///   - pace: called with each instant before virtual time moves to it (for `--real-time`).
    ///   - plotted: when given, a time–sequence graph of the connection (every segment at the client,
    ///     and the client's congestion state) is drawn and handed to it at the end.
    static func run(
        _ options: Options, pcap: PcapSink? = nil, pace: ((Instant) -> Void)? = nil,
        plotted: ((TimeSequencePlot) -> Void)? = nil, emit: @escaping (String) -> Void
    ) -> Outcome {
        let run = FlowControlRun(options, pcap: pcap, pace: pace, emit: emit)
        if plotted != nil { run.plot = TimeSequencePlot(title: "tcpip demo flow-control: a fast writer, a slow reader") }
        let outcome = run.run()
        if let plotted, let plot = run.plot { plotted(plot) }
        return outcome
    }

    /// Runs the experiment and returns its output lines.
    static func lines(_ options: Options, pcap: PcapSink? = nil) -> (lines: [String], outcome: Outcome) {
        var lines: [String] = []
        let outcome = run(options, pcap: pcap) { lines.append($0) }
        return (lines, outcome)
    }
}
