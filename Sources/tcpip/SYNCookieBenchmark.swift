import NIOCore
import TCPIP
import TCPIPWire

/// `tcpip demo syn-flood --benchmark N`: how fast one core answers SYNs with cookies (SYN in,
/// SYN-ACK out) and checks the cookies of final ACKs, in memory, by the wall clock.
enum SYNCookieBenchmark {
    struct Result {
        var synsPerSecond: Double
        var validationsPerSecond: Double
        var validated: UInt64
    }

    static func run(count: Int) -> Result {
        let server = SYNFloodDemo.serverAddress
        var tcp = TCPConfiguration()
        tcp.synCookies = .always
        let stack = Stack(StackConfiguration(addresses: [server], checksumOffload: true, seed: 1, tcp: tcp))
        // Backlog 1 and nobody accepting: after the first, every valid cookie is checked and then
        // dropped at the full accept queue, so the second loop times validation, not TCB creation.
        _ = try? stack.listen(on: SYNFloodDemo.serverPort, backlog: 1)
        var random = SeededGenerator(seed: 2)
        let allocator = ByteBufferAllocator()
        let distinct = min(count, 65_536)
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
        let clock = ContinuousClock()
        let synStart = clock.now
        for index in 0..<count {
            stack.receive(syns[index % distinct], now: now)
            while stack.nextPacketToSend() != nil {}
        }
        let synTime = synStart.duration(to: clock.now)

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
        let ackStart = clock.now
        for index in 0..<count {
            stack.receive(acks[index % acks.count], now: now)
            while stack.nextPacketToSend() != nil {}
        }
        let ackTime = ackStart.duration(to: clock.now)
        return Result(
            synsPerSecond: Double(count) / seconds(synTime),
            validationsPerSecond: Double(count) / seconds(ackTime),
            validated: stack.counters.synCookiesValidated - before)
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return max(Double(seconds) + Double(attoseconds) / 1e18, 1e-9)
    }
}
