import ArgumentParser
import NIOCore
import TCPIP
import TCPIPLinks

extension SYNCookieMode: ExpressibleByArgument {}

/// `tcpip demo syn-flood`: spoofed SYNs fill a listener's SYN queue; SYN cookies let the
/// legitimate clients in anyway (RFC 4987).
struct DemoSYNFlood: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syn-flood",
        abstract: "Spoofed SYNs fill a listener's SYN queue: watch legitimate clients fail, then get in with SYN cookies.",
        discussion: """
            An attacker sends --flood-rate SYNs a second for --flood-seconds from spoofed 198.18.x.y \
            addresses; --legit clients connect meanwhile to a server whose backlog (and SYN queue) is \
            --backlog. Every second a row shows the SYN and accept queues, SYN cookies sent, validated and \
            rejected, and the clients tried, established and failed with their handshake latency. The last \
            line is machine-readable:
              legit_established=<n>/<N> syn_queue_peak=<n> cookies_sent=<n> cookies_validated=<n> peak_memory_bytes=<n>
            The same options always print the same output.
            """)

    @Option(name: .customLong("syn-cookies"), help: "off, overflow (when the SYN queue is full) or always.")
    var cookies: SYNCookieMode = SYNFloodDemo.Options().cookies
    @Option(name: .customLong("flood-rate"), help: "Spoofed SYNs per second.")
    var floodRate: Int = SYNFloodDemo.Options().floodRate
    @Option(name: .customLong("flood-seconds"), help: "How long the flood lasts.")
    var floodSeconds: Int = SYNFloodDemo.Options().floodSeconds
    @Option(name: .customLong("legit"), help: "Legitimate clients connecting during the flood.")
    var legitimate: Int = SYNFloodDemo.Options().legitimateClients
    @Option(help: "The listener's backlog, and the size of its SYN queue.")
    var backlog: Int = SYNFloodDemo.Options().backlog
    @Option(help: "Seed of the attacker's addresses, ports and ISNs, and of both stacks.")
    var seed: UInt64 = SYNFloodDemo.Options().seed
    @Option(help: "Write every datagram seen at the server to this pcap file.")
    var pcap: String?
    @Option(help: "Instead of the demo, time N SYNs answered with cookies and N cookies checked, on one core (wall clock).")
    var benchmark: Int?

    func validate() throws {
        try OptionChecks.within(floodRate, 0...1_000_000, option: "flood-rate", because: "SYNs per second of virtual time")
        try OptionChecks.within(floodSeconds, 1...600, option: "flood-seconds", because: "seconds of virtual time")
        try OptionChecks.within(legitimate, 0...10_000, option: "legit", because: "legitimate clients connecting during the flood")
        try OptionChecks.within(backlog, 1...65_535, option: "backlog", because: "the SYN queue's length, as listen(2)'s backlog")
    }

    func run() throws {
        if let benchmark {
            let result = SYNCookieBenchmark.run(count: max(1, benchmark))
            print("syn_cookies_per_second=\(Int(result.synsPerSecond)) "
                + "cookie_validations_per_second=\(Int(result.validationsPerSecond)) validated=\(result.validated)")
            return
        }
        var options = SYNFloodDemo.Options()
        options.cookies = cookies
        options.floodRate = floodRate
        options.floodSeconds = floodSeconds
        options.legitimateClients = legitimate
        options.backlog = backlog
        options.seed = seed
        var sink: PcapFileSink?
        if let pcap {
            do {
                sink = try PcapFileSink(path: pcap)
            } catch {
                DemoFlowControl.printError("cannot write \(pcap): \(error)")
                throw ExitCode.failure
            }
        }
        _ = SYNFloodDemo.run(options, pcap: sink) { print($0) }
        if let sink, let pcap {
            do {
                try sink.close()
            } catch {
                DemoFlowControl.printError("writing \(pcap) failed: \(error)")
                throw ExitCode.failure
            }
        }
    }
}
