import NIOCore
import TCPIP
import TCPIPWire

/// What the SYN-flood demo prints: an introduction, the first client's handshake segment by
/// segment, a row a second, and a summary whose last line is machine-readable.
extension SYNFloodRun {
    func printIntroduction() {
        let o = options
        emit("tcpip demo syn-flood: a SYN flood against a small listener, SYN cookies \(o.cookies.rawValue)")
        emit("")
        let mode = switch o.cookies {
        case .off: "SYN cookies are off: when the SYN queue is full, a SYN is dropped."
        case .whenSYNQueueFull:
            "SYN cookies are on when the SYN queue overflows (Linux's default, tcp_syncookies=1): a SYN that "
                + "finds the queue full is answered anyway, its state encoded in the ISN of the SYN-ACK and "
                + "in the low bits of its timestamp, and rebuilt from the client's ACK."
        case .always: "SYN cookies are always on (tcp_syncookies=2): no SYN gets a half-open entry."
        }
        let paragraphs = [
            "A server (\(SYNFloodDemo.serverAddress), port \(SYNFloodDemo.serverPort)) listens with a backlog "
                + "of \(o.backlog) and a SYN queue of as many half-open entries. For \(o.floodSeconds) s an "
                + "attacker sends it \(o.floodRate) SYNs a second from spoofed addresses 198.18.x.y and random "
                + "ports; nobody there ever answers the SYN-ACKs. Meanwhile \(o.legitimateClients) legitimate "
                + "clients (\(SYNFloodDemo.clientAddress)) connect, evenly spread over the flood, each giving "
                + "up after \(FlowControlRun.duration(o.connectTimeout)).",
            mode,
            "Time is virtual, in seconds; the link to the client is "
                + "\(TextFormat.milliseconds(o.delay, digits: 0)) ms each way. Each row sums up one second.",
        ]
        for (index, paragraph) in paragraphs.enumerated() {
            if index > 0 { emit("") }
            TextWrapping.wrap(paragraph).forEach(emit)
        }
        emit("")
    }

    func printTableHeader() {
        emit("                 SYN queue  accept    SYN cookies          legitimate clients")
        emit("     t  spoofed   peak/max  queue  sent valid rejected  tried  in failed  handshake")
    }

    func printRow() {
        let counters = server.counters
        let previous = row.counters
        let limit = server.status(listener)?.synQueueLimit ?? 0
        let latency = row.established > 0
            ? TextFormat.milliseconds(.nanoseconds(row.latency.nanoseconds / Int64(row.established)), digits: 0) + " ms"
            : "-"
        let cells = [
            TextFormat.right(FlowControlRun.time(now).dropLast(2).description, 6),
            TextFormat.right("\(row.spoofed)", 8),
            TextFormat.right("\(row.synQueuePeak)/\(limit)", 10),
            TextFormat.right("\(row.acceptQueuePeak)", 6),
            TextFormat.right("\(counters.synCookiesSent - previous.synCookiesSent)", 5),
            TextFormat.right("\(counters.synCookiesValidated - previous.synCookiesValidated)", 5),
            TextFormat.right("\(counters.synCookiesFailed - previous.synCookiesFailed)", 8),
            TextFormat.right("\(row.attempted)", 6),
            TextFormat.right("\(row.established)", 3),
            TextFormat.right("\(row.failed)", 6),
            "  " + latency,
        ]
        emit(cells.joined(separator: " "))
        row = Row()
        row.counters = counters
        if let status = server.status(listener) { row.synQueuePeak = status.synQueue }
    }

    /// A paragraph of narration, wrapped.
    func note(_ text: String) {
        TextWrapping.wrap(text, continuation: "   ").forEach(emit)
    }

    /// The first client's segments, as tcpdump prints them at the server.
    func traceFirstClient(_ datagram: ByteBuffer) {
        guard let first = attempts.first, !first.done, first.port != 0,
              let segment = try? CapturedSegment.parse(datagram),
              segment.source.port == first.port || segment.destination.port == first.port
        else { return }
        if announced.insert("first").inserted {
            note("-- the first legitimate client's handshake, segment by segment:")
        }
        emit("   " + formatter.format(segment, at: now))
    }

    func narrateFirstClient(established: Bool, latency: TimeAmount) {
        if established {
            let how = attempts.first?.answeredByCookie == true
                ? "the SYN-ACK's ISN was a cookie (a MAC of the 4-tuple, the client's ISN and a 64-second "
                    + "counter, and the index of its MSS in a table), and the low 6 bits of its TSval kept the "
                    + "client's window scale and SACK-permitted; the client's ACK returns both, and from them "
                    + "the server builds the connection it never stored"
                : "a half-open entry was free"
            note("-- the first client is in after \(TextFormat.milliseconds(latency, digits: 0)) ms: \(how)")
        } else {
            note("-- the first client gives up after \(FlowControlRun.duration(latency)): every SYN it sent "
                + "(and its retransmissions, 1 s and 2 s later: RFC 6298 backoff) found the SYN queue full")
        }
    }

    func printSummary() {
        let counters = server.counters
        outcome.spoofedSYNs = spoofedSent
        outcome.cookiesSent = counters.synCookiesSent
        outcome.cookiesValidated = counters.synCookiesValidated
        outcome.cookiesRejected = counters.synCookiesFailed
        outcome.synsDropped = counters.synQueueDrops
        recorder?.flush()
        let o = outcome
        let latencies = o.latencies.map(\.nanoseconds).sorted()
        let median = latencies.isEmpty ? "-" : TextFormat.milliseconds(.nanoseconds(latencies[latencies.count / 2]), digits: 0) + " ms"
        emit("")
        emit("Summary")
        let rows: [(String, String)] = [
            ("SYN cookies", options.cookies.rawValue),
            ("spoofed SYNs sent", "\(o.spoofedSYNs)"),
            ("SYNs dropped, SYN queue full", "\(o.synsDropped)"),
            ("SYN queue peak", "\(o.synQueuePeak) of \(server.status(listener)?.synQueueLimit ?? 0)"),
            ("accept queue peak", "\(o.acceptQueuePeak) of \(options.backlog)"),
            ("SYN cookies sent / validated / rejected", "\(o.cookiesSent) / \(o.cookiesValidated) / \(o.cookiesRejected)"),
            ("legitimate clients established", "\(o.established) of \(options.legitimateClients)"),
            ("handshake latency (median)", median),
            ("bytes per half-open entry", "\(Stack.halfOpenEntryBytes)"),
            ("peak handshake memory (server)", "\(o.peakMemoryBytes) bytes"),
        ]
        for (label, value) in rows { emit("  " + TextFormat.left(label, 42) + value) }
        emit("")
        let lesson = switch options.cookies {
        case .off:
            "Without cookies the attacker needs only \(options.backlog) SYNs every \(halfOpenLifetime) s "
                + "(how long a half-open entry waits out its SYN-ACK retransmissions) to keep the queue full: "
                + "\(o.failed) of \(options.legitimateClients) clients failed."
        case .whenSYNQueueFull, .always:
            "With cookies the full SYN queue costs the clients nothing: the server kept at most "
                + "\(o.synQueuePeak) half-open entries however fast the flood came."
        }
        TextWrapping.wrap(lesson).forEach(emit)
        emit(o.summaryLine(legitimate: options.legitimateClients))
    }

    /// Seconds a half-open entry lives: its SYN-ACK retransmissions, backing off from the initial RTO,
    /// then one more RTO for the last (RFC 6298 §5.5; RFC 9293 §3.8.3).
    var halfOpenLifetime: Int64 {
        let tcp = server.configuration.tcp
        var total: Int64 = 0
        for attempt in 0...tcp.maximumSYNRetransmissions {
            total += min(tcp.initialRTO.nanoseconds << attempt, tcp.maximumRTO.nanoseconds)
        }
        return total / 1_000_000_000
    }
}
