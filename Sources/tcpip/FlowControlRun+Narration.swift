import NIOCore
import TCPIP
import TCPIPWire

/// What the flow-control demo prints, and when: an introduction, the segments and decisions
/// around every change that matters, tables at intervals, and a summary.
extension FlowControlRun {
    func printIntroduction() {
        let o = options
        let family = o.ipVersion == 6 ? "IPv6" : "IPv4"
        emit("tcpip demo flow-control: TCP flow control, watched from both ends")
        emit("")
        let paragraphs = [
            "A client (\(clientAddress)) sends \(o.bytes) bytes to a server (\(serverAddress), port "
                + "\(FlowControlDemo.serverPort)) as fast as its \(o.sendBuffer)-byte send buffer takes them. "
                + "The server's application reads only \(o.readSize) bytes every "
                + "\(TextFormat.milliseconds(o.readInterval, digits: 0)) ms into a \(o.receiveBuffer)-byte "
                + "receive buffer, so TCP must hold the client back to the reader's pace "
                + "(flow control, RFC 9293 §3.8.6).",
            "Watch the server's advertised window (\"win\") shrink to zero, the client probe the closed "
                + "window, and the window reopen as the reader catches up.",
            "\(family) over an in-memory link: \(o.mtu)-byte MTU, "
                + "\(TextFormat.milliseconds(o.delay, digits: 0)) ms each way, no loss. Time is virtual, in "
                + "seconds since the start. Segments are printed as tcpdump prints them at the client "
                + "(options on SYNs only); lines naming client or server are the stacks' own decisions, "
                + "with the rule behind each.",
        ]
        for (index, paragraph) in paragraphs.enumerated() {
            if index > 0 { emit("") }
            TextWrapping.wrap(paragraph).forEach(emit)
        }
    }

    // MARK: Segments

    /// Every datagram at the client's end of the link passes here, in order.
    func sawDatagram(_ datagram: ByteBuffer, at time: Instant) {
        // Decisions taken before this datagram crossed are printed before it.
        drainDecisions()
        if plot != nil {
            plot!.record(datagram, at: time)
            if let clientConnection, let status = client.status(clientConnection) { plot!.sample(status, at: time) }
        }
        let parsed: CapturedSegment?
        do {
            parsed = try CapturedSegment.parse(datagram)
        } catch {
            emit("\(TextFormat.seconds(time)) unparseable datagram (\(error.counterName)), length \(datagram.readableBytes)")
            return
        }
        guard let segment = parsed else { return }
        let line = formatter.format(segment, at: time)
        let flags = segment.header.flags
        if !flags.isDisjoint(with: [.fin, .rst]) { closing = true }
        var show = options.verbose || phase == .detailed || closing
        var zeroWindowTable = false

        if segment.source.address == serverAddress && !flags.contains(.syn) && !flags.contains(.rst) {
            let window = formatter.advertisedWindow(segment)
            outcome.smallestWindow = min(outcome.smallestWindow, window)
            outcome.largestWindow = max(outcome.largestWindow, window)
            let previous = serverWindow
            serverWindow = window
            if let previous, window == 0 && previous > 0 {
                zeroWindowEpisodes += 1
                if zeroWindowEpisodes > options.detailedEpisodes && phase == .detailed && !closing {
                    phase = .quiet
                    emit("")
                    TextWrapping.wrap(
                        "-- and so on: the reader frees a little, the window opens, the client fills it, "
                            + "the window closes. From here on: tables every "
                            + "\(Self.duration(tableInterval)) and anything out of the ordinary "
                            + "(--verbose prints every segment).", continuation: "   ").forEach(emit)
                    show = options.verbose
                } else if show {
                    note("zero", "-- zero window: the server's receive buffer is full; the client must wait")
                    zeroWindowTable = !printedFirstZeroTable
                }
            } else if let previous, window > 0 && previous == 0 {
                outcome.windowReopened = true
                if show {
                    note("reopen", "-- the window reopens: the reader has freed at least one MSS, and the "
                        + "server says so unasked")
                }
            } else if let previous, window < previous, show {
                note("shrink", "-- the window shrinks: data arrives faster than the server's application reads")
            }
        } else if segment.source.address == clientAddress && segment.payloadLength > 0 && show {
            if serverWindow == 0 && segment.payloadLength == 1 {
                note("probe", "-- zero-window probe: the client's persist timer fired; it sends one byte to "
                    + "ask whether the window is still shut")
            } else {
                note("data", "-- the client sends what the server's window and its congestion window allow")
            }
        }
        if show { emit(line) }
        if zeroWindowTable {
            printedFirstZeroTable = true
            printTable(periodic: false)
        }
    }

    /// Prints `text` (wrapped) the first time `key` comes up.
    func note(_ key: String, _ text: String) {
        guard announced.insert(key).inserted else { return }
        TextWrapping.wrap(text, continuation: "   ").forEach(emit)
    }

    // MARK: Decisions

    /// Prints the decisions both stacks recorded since the last call, merged in time order.
    func drainDecisions() {
        let fromClient = client.drainTrace()
        let fromServer = server.drainTrace()
        var c = 0
        var s = 0
        while c < fromClient.count || s < fromServer.count {
            if s == fromServer.count || (c < fromClient.count && fromClient[c].time <= fromServer[s].time) {
                printDecision(fromClient[c], by: "client")
                c += 1
            } else {
                printDecision(fromServer[s], by: "server")
                s += 1
            }
        }
    }

    private func printDecision(_ record: TraceRecord, by host: String) {
        // Once the cycle repeats, its flow-control decisions are summed up in the tables instead.
        let routine = record.rule.hasPrefix("RFC 9293 §3.8.6")
        guard options.verbose || phase == .detailed || closing || !routine else { return }
        TextWrapping.wrap("\(TextFormat.seconds(record.time)) \(host): \(record)", continuation: "    ")
            .forEach(emit)
    }

    // MARK: Tables and summary

    /// netstat's view of both ends; at the first zero window also ss's, which shows the windows.
    func printTable(periodic: Bool) {
        emit("")
        let percent = options.bytes > 0 ? received * 100 / options.bytes : 100
        emit("-- t=\(Self.time(network.now)) s: the server's application has read \(received) of "
            + "\(options.bytes) (\(percent)%)")
        var table = NetstatTable()
        var statuses: [ConnectionStatus] = []
        for (stack, connection) in [(server, serverConnection), (client, clientConnection)] {
            guard let connection, let status = stack.status(connection) else { continue }
            table.add(status)
            statuses.append(status)
        }
        table.lines.forEach(emit)
        let counts = (
            zeroWindows: server.counters.zeroWindowAdvertisements, probes: client.counters.zeroWindowProbesSent,
            updates: server.counters.windowUpdatesSent)
        if periodic {
            emit("   since the last table: \(counts.zeroWindows - lastTableCounts.zeroWindows) zero windows, "
                + "\(counts.probes - lastTableCounts.probes) probes, "
                + "\(counts.updates - lastTableCounts.updates) window updates")
        } else {
            emit("ss -ti:")
            for status in statuses { SocketStatistics(status).lines().forEach(emit) }
        }
        lastTableCounts = counts
        emit("")
    }

    /// An instant to the millisecond, for the tables: `100.000`.
    static func time(_ instant: Instant) -> String {
        TextFormat.fixed(instant.nanoseconds / 1_000_000, scale: 3, digits: 3)
    }

    /// `100 s` or `250 ms`.
    static func duration(_ amount: TimeAmount) -> String {
        let milliseconds = amount.nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }

    func printSummary() {
        if phase == .quiet || printedFirstZeroTable { printTable(periodic: true) }
        let o = outcome
        emit("Summary")
        let rows: [(String, String)] = [
            ("bytes sent, and verified byte for byte", "\(o.bytesVerified) of \(options.bytes)"),
            ("duration (virtual)", "\(Self.time(.zero + o.duration)) s"),
            ("server's advertised window", "smallest \(o.smallestWindow), largest \(o.largestWindow) bytes"),
            ("zero-window advertisements (server)", "\(o.zeroWindowAdvertisements)"),
            ("zero-window probes (client)", "\(o.zeroWindowProbes)"),
            ("window updates (server)", "\(o.windowUpdates)"),
            ("retransmissions", "\(o.retransmissions)"),
        ]
        for (label, value) in rows {
            emit("  " + TextFormat.left(label, 40) + value)
        }
        for failure in o.failures { emit("  FAILED: \(failure)") }
        if options.verbose {
            emit("")
            emit("netstat -s, client:")
            client.counters.report().forEach { emit("  " + $0) }
            emit("netstat -s, server:")
            server.counters.report().forEach { emit("  " + $0) }
        }
        emit(o.summaryLine)
    }
}
