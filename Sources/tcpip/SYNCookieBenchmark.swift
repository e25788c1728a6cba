import NIOCore
import TCPIP
import TCPIPWire

/// How fast one core answers SYNs with cookies (SYN in, SYN-ACK out) and checks the cookies of
/// final ACKs, in memory, by the wall clock: `tcpip bench synflood` and `tcpip demo syn-flood --benchmark N`.
///
/// The listener has `.always` cookies, so every SYN takes the path a flood takes once the SYN
/// queue is full; 65,536 distinct spoofed sources (198.18.x.y) are prepared up front and cycled.
enum SYNCookieBenchmark {
    struct Result {
        var syns: Int
        var synSeconds: Double
        var validations: Int
        var validationSeconds: Double
        var validated: UInt64
        /// Half-open entries and connections the stack holds after the flood (both should be ~0).
        var halfOpen: Int
        var connections: Int

        var synsPerSecond: Double { Double(syns) / max(synSeconds, 1e-9) }
        var validationsPerSecond: Double { Double(validations) / max(validationSeconds, 1e-9) }
    }

    /// Exactly `count` SYNs, then `count` ACKs.
    static func run(count: Int) -> Result {
        run(limit: .count(count))
    }

    /// SYNs for `seconds`, then ACKs for `seconds`.
    static func run(seconds: Double) -> Result {
        run(limit: .seconds(seconds))
    }

    enum Limit {
        case count(Int)
        case seconds(Double)
    }

    private static func run(limit: Limit) -> Result {
        let server = SYNFloodDemo.serverAddress
        var tcp = TCPConfiguration()
        tcp.synCookies = .always
        let stack = Stack(StackConfiguration(addresses: [server], checksumOffload: true, seed: 1, tcp: tcp))
        // Backlog 1 and nobody accepting: after the first, every valid cookie is checked and then
        // dropped at the full accept queue, so the second loop times validation, not TCB creation.
        _ = try? stack.listen(on: SYNFloodDemo.serverPort, backlog: 1)
        var random = SeededGenerator(seed: 2)
        let allocator = ByteBufferAllocator()
        let distinct: Int
        switch limit {
        case .count(let count): distinct = min(max(count, 1), 65_536)
        case .seconds: distinct = 65_536
        }
        var syns: [ByteBuffer] = []
        var headers: [(IPAddress, TCPHeader)] = []
        for _ in 0..<distinct {
            let source = IPAddress.v4(IPv4Address(
                198, 18, UInt8.random(in: 1...255, using: &random), UInt8.random(in: 0...255, using: &random)))
            let header = TCPHeader(
                sourcePort: UInt16.random(in: 1024...65535, using: &random), destinationPort: SYNFloodDemo.serverPort,
                sequenceNumber: SequenceNumber(UInt32.random(in: 0...UInt32.max, using: &random)),
                acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 64240,
                options: TCPOptions(maximumSegmentSize: 1460))
            headers.append((source, header))
            syns.append(PacketBuffer.tcpDatagram(
                header: header, payload: nil, source: source, destination: server, computeChecksum: false,
                allocator: allocator))
        }
        let now = Instant.zero + .seconds(1)
        let (synCount, synSeconds) = timed(limit, batch: distinct) { index in
            stack.receive(syns[index], now: now)
            while stack.nextPacketToSend() != nil {}
        }

        // The ACKs that complete those handshakes, built from the cookies the stack sent.
        var acks: [ByteBuffer] = []
        for (source, syn) in headers {
            stack.receive(PacketBuffer.tcpDatagram(
                header: syn, payload: nil, source: source, destination: server, computeChecksum: false,
                allocator: allocator), now: now)
            guard let synAck = stack.nextPacketToSend(),
                  let ip = try? IPDatagram.parse(synAck, verifyChecksum: false),
                  let (reply, _) = try? TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: false)
            else { continue }
            let ack = TCPHeader(
                sourcePort: syn.sourcePort, destinationPort: syn.destinationPort,
                sequenceNumber: syn.sequenceNumber + 1, acknowledgmentNumber: reply.sequenceNumber + 1,
                flags: .ack, window: 64240)
            acks.append(PacketBuffer.tcpDatagram(
                header: ack, payload: nil, source: source, destination: server, computeChecksum: false,
                allocator: allocator))
        }
        let before = stack.counters.synCookiesValidated
        let (ackCount, ackSeconds) = timed(limit, batch: acks.count) { index in
            stack.receive(acks[index], now: now)
            while stack.nextPacketToSend() != nil {}
        }
        return Result(
            syns: synCount, synSeconds: synSeconds, validations: ackCount, validationSeconds: ackSeconds,
            validated: stack.counters.synCookiesValidated - before,
            halfOpen: stack.halfOpenCount, connections: stack.connectionCount)
    }

    /// Calls `body` with indices cycling through `0..<batch` until the limit; returns calls and seconds.
    private static func timed(_ limit: Limit, batch: Int, _ body: (Int) -> Void) -> (Int, Double) {
        let clock = ContinuousClock()
        let start = clock.now
        var done = 0
        switch limit {
        case .count(let count):
            for index in 0..<count { body(index % batch) }
            done = count
        case .seconds(let seconds):
            let deadline = start.advanced(by: .nanoseconds(Int64(seconds * 1e9)))
            // The clock is read once per batch (65,536 packets, a few tens of milliseconds).
            while clock.now < deadline {
                for index in 0..<batch { body(index) }
                done += batch
            }
        }
        return (done, Self.seconds(start.duration(to: clock.now)))
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return max(Double(seconds) + Double(attoseconds) / 1e18, 1e-9)
    }
}
