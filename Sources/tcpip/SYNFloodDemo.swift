import NIOCore
import TCPIP
import TCPIPWire

/// The SYN-flood experiment (RFC 4987): an attacker fills a listener's SYN queue with spoofed SYNs
/// that never complete, while legitimate clients try to connect. With SYN cookies off they find
/// the queue full; with cookies the state of their handshake travels in the ISN and they get in.
///
/// A server stack, a client stack, and an attacker that writes SYNs straight onto the server's
/// wire, on virtual time: the output depends only on the options.
struct SYNFloodDemo {
    struct Options: Hashable, Sendable {
        var cookies = SYNCookieMode.whenSYNQueueFull
        /// Spoofed SYNs per second.
        var floodRate = 2000
        var floodSeconds = 10
        var legitimateClients = 20
        /// The listener's accept queue, and its SYN queue too (as a small Linux server's would be).
        var backlog = 16
        var seed: UInt64 = 1
        /// One-way delay between the client and the server.
        var delay: TimeAmount = .milliseconds(5)
        /// How long a client waits for its handshake before giving up (an application's connect timeout).
        var connectTimeout: TimeAmount = .seconds(5)
        /// The server's application accepts this often.
        var acceptInterval: TimeAmount = .milliseconds(100)
    }

    struct Outcome: Hashable, Sendable {
        var attempted = 0
        var established = 0
        var failed = 0
        var synQueuePeak = 0
        var acceptQueuePeak = 0
        var spoofedSYNs = 0
        var cookiesSent: UInt64 = 0
        var cookiesValidated: UInt64 = 0
        var cookiesRejected: UInt64 = 0
        var synsDropped: UInt64 = 0
        var peakMemoryBytes = 0
        var latencies: [TimeAmount] = []

        func summaryLine(legitimate: Int) -> String {
            "legit_established=\(established)/\(legitimate) syn_queue_peak=\(synQueuePeak) "
                + "cookies_sent=\(cookiesSent) cookies_validated=\(cookiesValidated) peak_memory_bytes=\(peakMemoryBytes)"
        }
    }

    static let serverAddress = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    static let clientAddress = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    static let serverPort: UInt16 = 80

    static func run(_ options: Options, pcap: PcapSink? = nil, emit: @escaping (String) -> Void) -> Outcome {
        SYNFloodRun(options, pcap: pcap, emit: emit).run()
    }

    static func lines(_ options: Options) -> (lines: [String], outcome: Outcome) {
        var lines: [String] = []
        let outcome = run(options) { lines.append($0) }
        return (lines, outcome)
    }
}
