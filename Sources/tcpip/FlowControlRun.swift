import NIOCore
import TCPIP
import TCPIPSimulation
import TCPIPWire

/// One run of the flow-control demo: the two stacks, the two applications, and the narrator.
///
/// The driver loop: settle the network at `now`, let the applications act (accept, write, close),
/// print what crossed the wire, then jump to the next instant anything is due — a stack timer, a
/// datagram's arrival, the reader's next read, or the next table.
final class FlowControlRun {
    let options: FlowControlDemo.Options
    /// Where output lines go (see `emit`).
    let output: (String) -> Void
    private var previousLineBlank = true
    let pace: ((Instant) -> Void)?
    let network = VirtualNetwork()
    let client: Stack
    let server: Stack
    let clientAddress: IPAddress
    let serverAddress: IPAddress
    let pcapWriter: PcapWriter?
    /// 64 KiB plus one period of the byte pattern, so every write is a slice of it.
    let pattern: ByteBuffer

    var formatter = SegmentFormatter(timeStyle: .seconds, optionsStyle: .synOnly)
    /// The time–sequence graph (`--plot`), fed by the same tap as the narration.
    var plot: TimeSequencePlot?
    var outcome = FlowControlDemo.Outcome()

    // The applications.
    var clientConnection: ConnectionID?
    var serverConnection: ConnectionID?
    var written = 0
    var clientClosed = false
    var received = 0
    var sawEndOfStream = false
    var firstMismatch: Int?

    // What the narrator has seen.
    enum Phase {
        /// Every segment and decision is printed.
        case detailed
        /// The cycle repeats; only tables, and decisions outside flow control.
        case quiet
    }
    var phase = Phase.detailed
    /// A FIN or RST has crossed: from here to the end everything is printed again.
    var closing = false
    /// The server's last advertised window in bytes, nil before the handshake completes.
    var serverWindow: Int?
    var zeroWindowEpisodes = 0
    var announced: Set<String> = []
    var lastTableCounts = (zeroWindows: UInt64(0), probes: UInt64(0), updates: UInt64(0))
    var printedFirstZeroTable = false
    var nextTable: Instant
    let tableInterval: TimeAmount
    let expectedDuration: TimeAmount

    init(_ options: FlowControlDemo.Options, pcap: PcapSink?, pace: ((Instant) -> Void)?, emit: @escaping (String) -> Void) {
        self.options = options
        self.output = emit
        self.pace = pace
        let v6 = options.ipVersion == 6
        clientAddress = v6 ? TransferSimulation.clientAddress6 : TransferSimulation.clientAddress4
        serverAddress = v6 ? TransferSimulation.serverAddress6 : TransferSimulation.serverAddress4

        // Checksums are computed even on the memory link, so the capture passes tshark's validation.
        let (clientEnd, serverEnd) = MemoryLink.pair(
            MemoryLink.Configuration(mtu: options.mtu, delay: options.delay, checksumOffload: false))
        let tap = WireTap(wrapping: clientEnd)
        var clientLink: PacketLink = tap
        if let pcap {
            let writer = PcapWriter(wrapping: tap, sink: pcap)
            pcapWriter = writer
            clientLink = writer
        } else {
            pcapWriter = nil
        }
        var tcp = TCPConfiguration()
        // Fixed buffers (setting the sizes turns autotuning off) and RFC 5681's slow start: the
        // demo shows flow control, and its snapshot holds it byte for byte.
        tcp.receiveBufferSize = options.receiveBuffer
        tcp.sendBufferSize = options.sendBuffer
        tcp.slowStartLimitSegments = 1
        client = Stack(StackConfiguration(
            addresses: [clientAddress], mtu: options.mtu, checksumOffload: false, seed: 1, tcp: tcp))
        server = Stack(StackConfiguration(
            addresses: [serverAddress], mtu: options.mtu, checksumOffload: false, seed: 2, tcp: tcp))
        client.tracing = true
        server.tracing = true
        network.addHost(client, link: clientLink)
        network.addHost(server, link: serverEnd)

        var pattern = ByteBufferAllocator().buffer(capacity: 65536 + 251)
        for offset in 0..<(65536 + 251) {
            pattern.writeInteger(TransferSimulation.patternByte(offset: offset, stream: 0))
        }
        self.pattern = pattern

        // The reader sets the pace: this many reads, one per interval, drain the stream.
        let reads = Int64((options.bytes + options.readSize - 1) / max(options.readSize, 1))
        expectedDuration = .nanoseconds(reads * options.readInterval.nanoseconds)
        tableInterval = Self.roundedUp(.nanoseconds(expectedDuration.nanoseconds / 5))
        nextTable = .zero + tableInterval

        tap.observe = { [unowned self] datagram, now in self.sawDatagram(datagram, at: now) }
    }

    /// Hands one line to the output; blank lines never come two in a row.
    func emit(_ line: String) {
        let blank = line.isEmpty
        guard !(blank && previousLineBlank) else { return }
        previousLineBlank = blank
        output(line)
    }

    func run() -> FlowControlDemo.Outcome {
        printIntroduction()
        let listener: ListenerID
        do {
            listener = try server.listen(on: FlowControlDemo.serverPort, address: serverAddress)
            clientConnection = try client.connect(
                to: Endpoint(serverAddress, FlowControlDemo.serverPort), now: network.now)
        } catch {
            outcome.failures.append("could not open the connection: \(error)")
            return finish()
        }
        emit("")
        emit("-- the handshake (RFC 9293 §3.5): SYN, SYN-ACK, ACK")

        // Generous: the reader's pace, plus room for the closing handshake.
        let timeLimit = Instant.zero + .nanoseconds(expectedDuration.nanoseconds * 2) + .seconds(60)
        var nextRead = network.now + options.readInterval
        while true {
            network.settle()
            applications(listener: listener)
            network.settle()
            drainDecisions()
            if isFinished { break }
            if network.now >= nextTable {
                printTable(periodic: true)
                nextTable = nextTable + tableInterval
            }
            guard network.now < timeLimit else {
                outcome.failures.append("stalled: not finished after \(TextFormat.seconds(network.now)) s")
                break
            }
            var target = min(nextRead, nextTable)
            if let event = network.nextEventTime { target = min(target, event) }
            pace?(target)
            network.advance(notAfter: target)
            if network.now >= nextRead {
                serverReads()
                nextRead = nextRead + options.readInterval
            }
        }
        return finish()
    }

    // MARK: The applications

    /// Accepts the connection; the client writes all it can, and closes once everything is written.
    func applications(listener: ListenerID) {
        while let event = server.nextEvent() {
            if case .acceptable = event, serverConnection == nil {
                serverConnection = server.accept(listener)
            }
        }
        while client.nextEvent() != nil {}
        guard let connection = clientConnection, client.state(connection) == .established || clientClosed
        else { return }
        while written < options.bytes {
            let chunk = pattern.getSlice(at: written % 251, length: min(options.bytes - written, 65536))!
            let accepted = (try? client.send(connection, chunk, now: network.now)) ?? 0
            guard accepted > 0 else { break }
            written += accepted
        }
        if written == options.bytes && !clientClosed {
            clientClosed = true
            try? client.close(connection, now: network.now)
            let queued = client.status(connection)?.sendQueue ?? 0
            TextWrapping.wrap(
                "-- t=\(Self.time(network.now)) s: the client has handed its last byte to TCP and closes; its "
                    + "FIN waits behind the \(queued) bytes still in its send buffer", continuation: "   ").forEach(emit)
        }
    }

    /// The server's application: one read of at most `readSize` bytes, checked against the pattern.
    func serverReads() {
        guard let connection = serverConnection, !sawEndOfStream else { return }
        switch try? server.read(connection, upTo: options.readSize, now: network.now) {
        case .data(let bytes):
            for (index, byte) in bytes.readableBytesView.enumerated()
            where byte != TransferSimulation.patternByte(offset: received + index, stream: 0) {
                if firstMismatch == nil { firstMismatch = received + index }
            }
            received += bytes.readableBytes
        case .endOfStream:
            sawEndOfStream = true
            try? server.close(connection, now: network.now)
        case .wouldBlock, nil:
            break
        }
    }

    /// The server has read to the end and its side is gone; the client waits out TIME-WAIT.
    var isFinished: Bool {
        guard sawEndOfStream, let clientConnection else { return false }
        let serverGone = serverConnection.map { server.state($0) == nil } ?? true
        switch client.state(clientConnection) {
        case .timeWait, .closed, nil: return serverGone
        default: return false
        }
    }

    // MARK: Outcome

    func finish() -> FlowControlDemo.Outcome {
        drainDecisions()
        pcapWriter?.flush()
        outcome.duration = network.now - .zero
        outcome.bytesVerified = firstMismatch ?? received
        outcome.zeroWindowAdvertisements = server.counters.zeroWindowAdvertisements
        outcome.zeroWindowProbes = client.counters.zeroWindowProbesSent
        outcome.windowUpdates = server.counters.windowUpdatesSent
        outcome.retransmissions = client.counters.segmentsRetransmitted &+ server.counters.segmentsRetransmitted
        if let firstMismatch { outcome.failures.append("byte \(firstMismatch) differs from what was sent") }
        if received != options.bytes { outcome.failures.append("received \(received) of \(options.bytes) bytes") }
        if !sawEndOfStream { outcome.failures.append("the server never saw the end of the stream") }
        outcome.verified = outcome.failures.isEmpty
        if outcome.smallestWindow == .max { outcome.smallestWindow = 0 }
        printSummary()
        return outcome
    }

    /// The smallest of 1, 2 or 5 × 10^k milliseconds not below `amount` (at least 1 ms).
    static func roundedUp(_ amount: TimeAmount) -> TimeAmount {
        var magnitude: Int64 = 1
        while true {
            for step: Int64 in [1, 2, 5] where step * magnitude * 1_000_000 >= amount.nanoseconds {
                return .milliseconds(step * magnitude)
            }
            magnitude *= 10
        }
    }
}
