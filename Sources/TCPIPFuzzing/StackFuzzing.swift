import NIOCore
import TCPIP
import TCPIPWire

/// The whole stack as libFuzzer sees it: a fuzz input is a sequence of events — datagrams, segments
/// aimed at live connections, time steps, application calls — played against a server `Stack` that
/// has a listener, established connections with data in flight, and a half-open entry. A client
/// `Stack` (our own) answers whatever the server sends, so the fuzzer's segments meet real flows.
///
/// The fixture is deterministic (fixed seeds, virtual time), so an input replays exactly: the
/// fuzzer's crash files become regression tests that call `run(_:)`.
///
/// Input format, one event after another until the bytes run out (a short tail is ignored):
///
///     op % 6 == 0  raw datagram      len:u16be, then len octets handed to Stack.receive
///     op % 6 == 1  raw segment       target:u8, len:u16be, then len octets of TCP header and payload,
///                                    ports overwritten with the target's, wrapped in its IP header
///     op % 6 == 2  relative segment  target:u8, flags:u8, seq:i16be, ack:i16be, window:u16be,
///                                    options:u8, payload:u8 — seq and ack are offsets from the server's
///                                    rcv.nxt and snd.nxt on that connection
///     op % 6 == 3  time step         step:u8 — the clock moves step² milliseconds and timers run
///     op % 6 == 4  server call       call:u8 — read, send, close, abort, accept … on a server connection
///     op % 6 == 5  client call       call:u8 — the same on a client connection
///
/// After every event the two stacks exchange packets until neither has anything to send.
public enum StackFuzzing {
    public static let clientV4 = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    public static let serverV4 = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    public static let clientV6 = IPAddress("2001:db8::1")!
    public static let serverV6 = IPAddress("2001:db8::2")!
    public static let port: UInt16 = 80
    /// Most events one input plays; the rest is ignored so that one input stays quick.
    public static let maximumEvents = 512
    /// Two copies of our own stack that exchange this many packets at one instant are in a loop.
    static let exchangeLimit = 100_000

    /// The server, its peer, and the 4-tuples the fuzzer's segments can aim at.
    public final class Fixture {
        public let server: Stack
        public let client: Stack
        public let listener: ListenerID
        public private(set) var now: Instant
        public private(set) var serverConnections: [ConnectionID] = []
        public private(set) var clientConnections: [ConnectionID] = []
        /// Client-side 4-tuples (local = client): established connections, the half-open one, a fresh
        /// client, and a port nobody listens on.
        public private(set) var targets: [FourTuple]
        /// Client datagrams recorded by `record` (for the seed corpus); nil when not recording.
        var recording: [ByteBuffer]?

        /// Builds the same fixture every time: four connections (two IPv4, two IPv6) with data in both
        /// directions, one more SYN that the server holds half-open, all at virtual time 1 s.
        public init() {
            var tcp = TCPConfiguration()
            tcp.synQueueLimit = 4
            tcp.receiveBufferSize = 64 * 1024
            tcp.sendBufferSize = 64 * 1024
            server = Stack(StackConfiguration(
                addresses: [StackFuzzing.serverV4, StackFuzzing.serverV6], checksumOffload: true, seed: 2, tcp: tcp))
            client = Stack(StackConfiguration(
                addresses: [StackFuzzing.clientV4, StackFuzzing.clientV6], checksumOffload: true, seed: 1, tcp: tcp))
            now = Instant.zero + .seconds(1)
            listener = try! server.listen(on: StackFuzzing.port, backlog: 4)
            for index in 0..<4 {
                let address = index % 2 == 0 ? StackFuzzing.serverV4 : StackFuzzing.serverV6
                clientConnections.append(try! client.connect(to: Endpoint(address, StackFuzzing.port), now: now))
            }
            targets = []
            exchange()
            for (index, id) in clientConnections.enumerated() {
                _ = try? client.send(id, StackFuzzing.pattern(count: 1000 * (index + 1)), now: now)
            }
            for (index, id) in serverConnections.enumerated() where index % 2 == 1 {
                _ = try? server.send(id, StackFuzzing.pattern(count: 8000), now: now)
            }
            exchange()
            now = now + .milliseconds(50)
            server.advanceTime(to: now)
            client.advanceTime(to: now)
            exchange()
            // The half-open entry: a SYN whose SYN-ACK is lost.
            let halfOpen = try! client.connect(to: Endpoint(StackFuzzing.serverV4, StackFuzzing.port), now: now)
            while let datagram = client.nextPacketToSend() { server.receive(datagram, now: now) }
            while server.nextPacketToSend() != nil {}
            clientConnections.append(halfOpen)
            var targets = clientConnections.compactMap { id in
                client.status(id).map { FourTuple(local: $0.local, remote: $0.remote) }
            }
            targets.append(FourTuple(local: Endpoint(StackFuzzing.clientV4, 40_000), remote: Endpoint(StackFuzzing.serverV4, StackFuzzing.port)))
            targets.append(FourTuple(local: Endpoint(StackFuzzing.clientV6, 40_001), remote: Endpoint(StackFuzzing.serverV6, 81)))
            self.targets = targets
        }

        /// Moves packets between the stacks, accepting and reading on the server, until both are quiet.
        public func exchange() {
            var moved = 0
            var progress = true
            while progress {
                progress = false
                while let datagram = client.nextPacketToSend() {
                    recording?.append(datagram)
                    if moved > StackFuzzing.exchangeLimit - 8 { print("loop: client >", StackFuzzing.describe(datagram)) }
                    server.receive(datagram, now: now)
                    moved += 1
                    progress = true
                }
                while let datagram = server.nextPacketToSend() {
                    if moved > StackFuzzing.exchangeLimit - 8 { print("loop: server >", StackFuzzing.describe(datagram)) }
                    client.receive(datagram, now: now)
                    moved += 1
                    progress = true
                }
                while let id = server.accept(listener) {
                    serverConnections.append(id)
                    progress = true
                }
                precondition(moved < StackFuzzing.exchangeLimit, "two stacks exchange packets without end at \(now)")
            }
        }

        /// Lets virtual time pass and runs the timers due.
        public func advance(by amount: TimeAmount) {
            now = now + amount
            server.advanceTime(to: now)
            client.advanceTime(to: now)
        }

        /// Starts recording the datagrams the client hands the server; returns what was recorded before.
        @discardableResult
        func record(_ on: Bool) -> [ByteBuffer] {
            defer { recording = on ? [] : nil }
            return recording ?? []
        }
    }

    /// Plays `input` against a fresh fixture. Never traps unless the stack has a bug.
    /// - Returns: the fixture as the input left it, for regression tests to inspect.
    @discardableResult
    public static func run(_ input: UnsafeRawBufferPointer) -> Fixture {
        let fixture = Fixture()
        var reader = Reader(bytes: input)
        var events = 0
        while events < maximumEvents, let op = reader.byte() {
            events += 1
            switch op % 6 {
            case 0:
                guard let datagram = reader.datagram() else { return fixture }
                fixture.server.receive(datagram, now: fixture.now)
            case 1:
                guard let target = reader.byte(), let segment = reader.segment(to: fixture.target(target)) else { return fixture }
                fixture.server.receive(segment, now: fixture.now)
            case 2:
                guard let segment = reader.relativeSegment(fixture) else { return fixture }
                fixture.server.receive(segment, now: fixture.now)
            case 3:
                guard let step = reader.byte() else { return fixture }
                fixture.advance(by: .milliseconds(Int64(step) * Int64(step)))
            case 4:
                guard let call = reader.byte() else { return fixture }
                applicationCall(call, on: fixture.server, fixture.serverConnections, fixture)
            default:
                guard let call = reader.byte() else { return fixture }
                applicationCall(call, on: fixture.client, fixture.clientConnections, fixture)
            }
            fixture.exchange()
        }
        // Whatever happened, the stack's own accounting must stay within its limits and agree with a recount.
        let server = fixture.server
        for id in server.allConnections {
            guard let status = server.status(id) else { continue }
            precondition(status.outOfOrderBytes <= server.configuration.tcp.reassemblyLimit,
                         "out-of-order queue beyond its limit: \(status.outOfOrderBytes)")
        }
        precondition(server.memoryInUse == server.memory.buffers + server.connectionCount * Stack.connectionEntryBytes
                        + server.halfOpenCount * Stack.halfOpenEntryBytes + server.timeWaitCount * Stack.timeWaitEntryBytes,
                     "running memory total \(server.memoryInUse) disagrees with a recount")
        return fixture
    }

    static func applicationCall(_ call: UInt8, on stack: Stack, _ connections: [ConnectionID], _ fixture: Fixture) {
        guard !connections.isEmpty else { return }
        let id = connections[Int(call >> 3) % connections.count]
        let now = fixture.now
        switch call & 7 {
        case 0: while case .data? = try? stack.read(id, now: now) {}
        case 1: _ = try? stack.send(id, pattern(count: 1000), now: now)
        case 2: _ = try? stack.send(id, pattern(count: 40_000), now: now)
        case 3: try? stack.close(id, now: now)
        case 4: stack.abort(id, now: now)
        case 5: stack.setNoDelay(id, call & 0x40 != 0, now: now)
        case 6: _ = try? stack.read(id, upTo: 1, now: now)
        default: stack.setSendBufferSize(id, Int(call) * 64, now: now)
        }
    }

    /// A datagram in tcpdump's notation, for the report of a loop.
    static func describe(_ datagram: ByteBuffer) -> String {
        guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: false),
              let (header, payload) = try? TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: false)
        else { return "(not TCP)" }
        return "\(ip.source).\(header.sourcePort) > \(ip.destination).\(header.destinationPort): \(header) len \(payload.readableBytes)"
    }

    /// `count` octets (at most 64 KiB) of a fixed pattern: a slice of one buffer made once.
    static func pattern(count: Int) -> ByteBuffer {
        patternBuffer.getSlice(at: 0, length: min(max(count, 0), patternBuffer.readableBytes))!
    }

    private static let patternBuffer: ByteBuffer = {
        var buffer = ByteBufferAllocator().buffer(capacity: 65536)
        for index in 0..<65536 { buffer.writeInteger(UInt8(truncatingIfNeeded: index % 251)) }
        return buffer
    }()

    /// Reads events' fields from the input, big-endian; nil once it runs out.
    struct Reader {
        var bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func uint16() -> UInt16? {
            guard let high = byte(), let low = byte() else { return nil }
            return UInt16(high) << 8 | UInt16(low)
        }

        /// A length, then that many octets (fewer if the input ends first).
        mutating func chunk() -> UnsafeRawBufferPointer? {
            guard let length = uint16() else { return nil }
            let count = min(Int(length), bytes.count - offset)
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        }

        mutating func datagram() -> ByteBuffer? {
            chunk().map { WireFuzzing.packet($0) }
        }

        /// TCP header and payload from the input, ports set to the target's, in an IP header.
        mutating func segment(to tuple: FourTuple) -> ByteBuffer? {
            guard let raw = chunk() else { return nil }
            var buffer = PacketBuffer.make(payloadCapacity: raw.count)
            buffer.writeBytes(raw)
            if raw.count >= 4 {
                buffer.setInteger(tuple.local.port, at: buffer.readerIndex)
                buffer.setInteger(tuple.remote.port, at: buffer.readerIndex + 2)
            }
            switch (tuple.local.address, tuple.remote.address) {
            case (.v4(let source), .v4(let destination)):
                IPv4Header(source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
                           payloadLength: buffer.readableBytes).prepend(to: &buffer)
            case (.v6(let source), .v6(let destination)):
                IPv6Header(source: source, destination: destination, nextHeader: IPProtocolNumber.tcp,
                           payloadLength: buffer.readableBytes).prepend(to: &buffer)
            default:
                return nil
            }
            return buffer
        }

        /// A well-formed segment with sequence and acknowledgment numbers near the server's own.
        mutating func relativeSegment(_ fixture: Fixture) -> ByteBuffer? {
            guard let target = byte(), let flags = byte(), let seqOffset = uint16(), let ackOffset = uint16(),
                  let window = uint16(), let optionBits = byte(), let payloadLength = byte()
            else { return nil }
            let tuple = fixture.target(target)
            let index = Int(target) % fixture.targets.count
            // The server's view of this connection, if it has one: rcv.nxt and snd.nxt.
            let serverSide = fixture.serverConnections.lazy.compactMap { fixture.server.status($0) }
                .first { $0.remote == tuple.local && $0.local == tuple.remote }
            let clientSide = index < fixture.clientConnections.count ? fixture.client.status(fixture.clientConnections[index]) : nil
            let receiveNext = serverSide?.receiveNext ?? clientSide?.sendNext ?? 0
            let sendNext = serverSide?.sendNext ?? clientSide?.receiveNext ?? 0
            let sequence = SequenceNumber(receiveNext) + Int(Int16(bitPattern: seqOffset))
            let acknowledgment = SequenceNumber(sendNext) + Int(Int16(bitPattern: ackOffset))
            var options = TCPOptions()
            if optionBits & 0x01 != 0 { options.maximumSegmentSize = UInt16(optionBits) << 4 }
            if optionBits & 0x02 != 0 { options.windowScale = optionBits >> 4 }
            if optionBits & 0x04 != 0 { options.sackPermitted = true }
            if optionBits & 0x08 != 0 {
                let clock = UInt32(truncatingIfNeeded: fixture.now.nanoseconds / 1_000_000)
                options.timestamps = TCPTimestamps(value: clock &+ UInt32(optionBits >> 5) &- 4, echoReply: 0)
            }
            if optionBits & 0x10 != 0 {
                let una = SequenceNumber(serverSide?.sendUnacknowledged ?? 0)
                options.sackBlocks.append(SACKBlock(start: una + Int(optionBits), end: acknowledgment + 1000))
            }
            let header = TCPHeader(
                sourcePort: tuple.local.port, destinationPort: tuple.remote.port, sequenceNumber: sequence,
                acknowledgmentNumber: acknowledgment, flags: TCPFlags(rawValue: flags), window: window, options: options)
            return PacketBuffer.tcpDatagram(
                header: header, payload: pattern(count: Int(payloadLength)), source: tuple.local.address,
                destination: tuple.remote.address, computeChecksum: false)
        }
    }
}

extension StackFuzzing.Fixture {
    func target(_ byte: UInt8) -> FourTuple { targets[Int(byte) % targets.count] }
}
