import NIOCore
import TCPIP
import TCPIPWire

/// One run of the SYN-flood demo: the driver loop and the narrator.
///
/// Each step jumps to the next instant anything is due — an attacker's SYN, a datagram's arrival,
/// a stack timer, a client's connect or deadline, the server's accept, the next table row.
final class SYNFloodRun {
    let options: SYNFloodDemo.Options
    let output: (String) -> Void
    let server: Stack
    let client: Stack
    let listener: ListenerID
    let recorder: PcapRecorder?
    var random: SeededGenerator
    let allocator = ByteBufferAllocator()
    var formatter = SegmentFormatter(timeStyle: .seconds, optionsStyle: .all)
    var now = Instant.zero
    var outcome = SYNFloodDemo.Outcome()

    /// Datagrams on their way, in arrival order (the delay is constant).
    var toServer: [(at: Instant, datagram: ByteBuffer)] = []
    var toClient: [(at: Instant, datagram: ByteBuffer)] = []

    struct Attempt {
        var start: Instant
        var connection: ConnectionID?
        var port: UInt16 = 0
        var done = false
        /// The SYN queue was full when it connected (and cookies were on).
        var answeredByCookie = false
    }
    var attempts: [Attempt] = []
    let connectTimes: [Instant]
    var nextConnect = 0
    var spoofedSent = 0
    let floodEnd: Instant
    let end: Instant
    var nextAccept: Instant
    var nextRow: Instant
    let rowInterval = TimeAmount.seconds(1)
    var row = Row()
    var announced: Set<String> = []

    /// What one table row sums up.
    struct Row {
        var spoofed = 0
        var synQueuePeak = 0
        var acceptQueuePeak = 0
        var attempted = 0
        var established = 0
        var failed = 0
        var latency: TimeAmount = .zero
        var counters = StackCounters()
    }

    init(_ options: SYNFloodDemo.Options, pcap: PcapSink?, emit: @escaping (String) -> Void) {
        self.options = options
        self.output = emit
        var tcp = TCPConfiguration()
        tcp.synCookies = options.cookies
        tcp.synQueueLimit = options.backlog
        server = Stack(StackConfiguration(
            addresses: [SYNFloodDemo.serverAddress], checksumOffload: false, seed: options.seed, tcp: tcp))
        client = Stack(StackConfiguration(
            addresses: [SYNFloodDemo.clientAddress], checksumOffload: false, seed: options.seed &+ 1))
        listener = try! server.listen(on: SYNFloodDemo.serverPort, backlog: options.backlog)
        recorder = pcap.map { PcapRecorder(sink: $0) }
        random = SeededGenerator(seed: options.seed &+ 2)
        let flood = TimeAmount.seconds(Int64(options.floodSeconds))
        floodEnd = .zero + flood
        // The clients come evenly spread over the flood, the first once it has filled the queue.
        let count = options.legitimateClients
        connectTimes = (0..<count).map { index in
            .zero + .nanoseconds(flood.nanoseconds * Int64(2 * index + 1) / Int64(max(1, 2 * count)))
        }
        end = max(floodEnd, connectTimes.last ?? floodEnd) + options.connectTimeout + .seconds(1)
        nextAccept = .zero + options.acceptInterval
        nextRow = .zero + rowInterval
    }

    func emit(_ line: String) { output(line) }

    func run() -> SYNFloodDemo.Outcome {
        printIntroduction()
        printTableHeader()
        while now < end {
            deliver()
            server.advanceTime(to: now)
            client.advanceTime(to: now)
            flood()
            connectClients()
            transmit()
            if now >= nextAccept {
                acceptAll()
                nextAccept = nextAccept + options.acceptInterval
            }
            checkClients()
            sample()
            if now >= nextRow {
                printRow()
                nextRow = nextRow + rowInterval
            }
            now = nextInstant()
        }
        printSummary()
        return outcome
    }

    // MARK: The attacker

    /// Every spoofed SYN due by now: random 198.18.x.y sources (never 198.18.0.x, the real hosts),
    /// random ports and ISNs, the options a Linux client sends.
    func flood() {
        while spoofedSent < options.floodRate * options.floodSeconds, spoofTime(spoofedSent) <= now {
            let source = IPAddress.v4(IPv4Address(
                198, 18, UInt8.random(in: 1...255, using: &random), UInt8.random(in: 0...255, using: &random)))
            let header = TCPHeader(
                sourcePort: UInt16.random(in: 1024...65535, using: &random), destinationPort: SYNFloodDemo.serverPort,
                sequenceNumber: SequenceNumber(UInt32.random(in: 0...UInt32.max, using: &random)),
                acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 64240,
                options: TCPOptions(
                    maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                    timestamps: TCPTimestamps(value: UInt32.random(in: 0...UInt32.max, using: &random), echoReply: 0)))
            let datagram = PacketBuffer.tcpDatagram(
                header: header, payload: nil, source: source, destination: SYNFloodDemo.serverAddress,
                allocator: allocator)
            recorder?.record(datagram, at: now)
            server.receive(datagram, now: now)
            spoofedSent += 1
            row.spoofed += 1
        }
    }

    func spoofTime(_ index: Int) -> Instant {
        .zero + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(max(1, options.floodRate)))
    }

    // MARK: The legitimate clients and the server's application

    func connectClients() {
        while nextConnect < connectTimes.count, connectTimes[nextConnect] <= now {
            var attempt = Attempt(start: now)
            attempt.connection = try? client.connect(
                to: Endpoint(SYNFloodDemo.serverAddress, SYNFloodDemo.serverPort), now: now)
            attempt.port = attempt.connection.flatMap { client.status($0)?.local.port } ?? 0
            if let status = server.status(listener) {
                attempt.answeredByCookie = options.cookies == .always
                    || (options.cookies == .whenSYNQueueFull && status.synQueue >= status.synQueueLimit)
            }
            attempts.append(attempt)
            nextConnect += 1
            outcome.attempted += 1
            row.attempted += 1
        }
    }

    /// A client is in once ESTABLISHED; out once its connect timeout passes first.
    func checkClients() {
        while client.nextEvent() != nil {}
        for index in attempts.indices where !attempts[index].done {
            let attempt = attempts[index]
            let state = attempt.connection.flatMap { client.state($0) }
            if state == .established {
                attempts[index].done = true
                let latency = now - attempt.start
                outcome.established += 1
                outcome.latencies.append(latency)
                row.established += 1
                row.latency = row.latency + latency
                if index == 0 { narrateFirstClient(established: true, latency: latency) }
            } else if now - attempt.start >= options.connectTimeout || state == nil || state == .closed {
                attempts[index].done = true
                if let connection = attempt.connection { client.abort(connection, now: now) }
                outcome.failed += 1
                row.failed += 1
                if index == 0 { narrateFirstClient(established: false, latency: now - attempt.start) }
            }
        }
    }

    func acceptAll() {
        while server.nextEvent() != nil {}
        while server.accept(listener) != nil {}
    }

    // MARK: The wire

    func transmit() {
        while let datagram = server.nextPacketToSend() {
            recorder?.record(datagram, at: now)
            // SYN-ACKs to spoofed sources go nowhere: nobody there answers.
            guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: false),
                  ip.destination == SYNFloodDemo.clientAddress else { continue }
            toClient.append((now + options.delay, datagram))
            traceFirstClient(datagram)
        }
        while let datagram = client.nextPacketToSend() {
            toServer.append((now + options.delay, datagram))
            traceFirstClient(datagram)
        }
    }

    func deliver() {
        while let first = toServer.first, first.at <= now {
            toServer.removeFirst()
            recorder?.record(first.datagram, at: now)
            server.receive(first.datagram, now: now)
        }
        while let first = toClient.first, first.at <= now {
            toClient.removeFirst()
            client.receive(first.datagram, now: now)
        }
    }

    func nextInstant() -> Instant {
        var next = min(nextRow, nextAccept, end)
        if spoofedSent < options.floodRate * options.floodSeconds { next = min(next, spoofTime(spoofedSent)) }
        if nextConnect < connectTimes.count { next = min(next, connectTimes[nextConnect]) }
        for instant in [toServer.first?.at, toClient.first?.at, server.nextDeadline, client.nextDeadline] {
            if let instant { next = min(next, instant) }
        }
        for attempt in attempts where !attempt.done { next = min(next, attempt.start + options.connectTimeout) }
        return max(next, now + .nanoseconds(1))
    }

    /// Queue occupancy and memory, sampled after every step.
    func sample() {
        guard let status = server.status(listener) else { return }
        row.synQueuePeak = max(row.synQueuePeak, status.synQueue)
        row.acceptQueuePeak = max(row.acceptQueuePeak, status.acceptQueue)
        outcome.synQueuePeak = max(outcome.synQueuePeak, status.synQueue)
        outcome.acceptQueuePeak = max(outcome.acceptQueuePeak, status.acceptQueue)
        outcome.peakMemoryBytes = max(outcome.peakMemoryBytes, server.handshakeMemoryBytes)
        if status.synQueue >= status.synQueueLimit, announced.insert("full").inserted {
            let then = options.cookies == .off
                ? "from now on every SYN is dropped (RFC 4987 §3.2) — the attacker's and the clients' alike"
                : "from now on every SYN is answered with a SYN cookie (RFC 4987 §3.6): no state is kept, the "
                    + "handshake's state travels in our ISN"
            note("-- t=\(FlowControlRun.time(now)) s: the SYN queue is full (\(status.synQueue) half-open "
                + "entries, all spoofed; each waits through SYN-ACK retransmissions for an ACK that never comes); "
                + then)
        }
    }
}
