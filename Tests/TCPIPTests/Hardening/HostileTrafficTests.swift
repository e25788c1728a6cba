import NIOCore
import TCPIP
import TCPIPSimulation
import TCPIPWire
import Testing

/// A million hostile datagrams — garbage, malformed headers, bad option lengths, blind spoofed
/// segments with every flag combination at the live connections, SYN floods, truncated and
/// bit-flipped copies of real traffic, IPv6 extension-header chains — fed into stacks that have a
/// listener and established connections in the middle of a transfer. Nothing may trap or grow
/// without bound, and afterwards every connection finishes its transfer byte for byte.
@Suite struct HostileTrafficTests {
    static let client4 = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    static let server4 = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    static let client6 = IPAddress("2001:db8::1")!
    static let server6 = IPAddress("2001:db8::2")!

    /// One connection's two directions, verified as they arrive.
    struct Transfer {
        var client: ConnectionID
        var server: ConnectionID?
        var written = 0
        var received = 0
        var finished = false
        var mismatch = false
    }

    @Test func millionHostileDatagrams() throws {
        let total = 1_000_000
        let bytesPerConnection = 2_000_000
        let (a, b) = MemoryLink.pair(.init(delay: .milliseconds(2), bandwidthBitsPerSecond: 10_000_000, queueLimitBytes: 256 * 1024, checksumOffload: false))
        var tcp = TCPConfiguration()
        tcp.synQueueLimit = 256
        let tap = RecordingLink(wrapping: a)
        let client = Stack(StackConfiguration(addresses: [Self.client4, Self.client6], checksumOffload: false, seed: 11, tcp: tcp))
        let server = Stack(StackConfiguration(addresses: [Self.server4, Self.server6], checksumOffload: false, seed: 12, tcp: tcp))
        let network = VirtualNetwork()
        network.addHost(client, link: tap)
        network.addHost(server, link: b)
        let listener = try server.listen(on: 5001, backlog: 64)

        var transfers: [Transfer] = []
        for index in 0..<4 {
            let remote = Endpoint(index % 2 == 0 ? Self.server4 : Self.server6, 5001)
            transfers.append(Transfer(client: try client.connect(to: remote, now: network.now)))
        }
        var pattern = ByteBufferAllocator().buffer(capacity: 65536 + 251)
        for offset in 0..<(65536 + 251) { pattern.writeInteger(UInt8(offset % 251)) }
        /// `length` (at most 64 KiB) bytes of stream `stream` from `offset`, as a slice of the pattern.
        func expected(offset: Int, stream: Int, length: Int) -> ByteBuffer {
            pattern.getSlice(at: (offset + stream * 37) % 251, length: min(length, 65536))!
        }
        var random = SeededGenerator(seed: 2026)

        func pump() {
            network.settle()
            while let id = server.accept(listener) {
                let remote = server.status(id)!.remote
                if let index = transfers.firstIndex(where: { client.status($0.client)?.local == remote }) {
                    transfers[index].server = id
                }
            }
            while server.nextEvent() != nil {}
            while client.nextEvent() != nil {}
            for index in transfers.indices {
                var transfer = transfers[index]
                // Client writes the pattern; server reads and checks it.
                while transfer.written < bytesPerConnection, client.state(transfer.client) == .established {
                    let length = min(65536, bytesPerConnection - transfer.written)
                    let chunk = expected(offset: transfer.written, stream: index, length: length)
                    let taken = (try? client.send(transfer.client, chunk, now: network.now)) ?? 0
                    transfer.written += taken
                    if taken < length { break }
                }
                if transfer.written == bytesPerConnection, client.state(transfer.client) == .established {
                    try? client.close(transfer.client, now: network.now)
                }
                if let id = transfer.server {
                    readLoop: while true {
                        switch (try? server.read(id, upTo: 65536, now: network.now)) ?? .endOfStream {
                        case .data(let bytes):
                            if bytes != expected(offset: transfer.received, stream: index, length: bytes.readableBytes) {
                                transfer.mismatch = true
                            }
                            transfer.received += bytes.readableBytes
                        case .endOfStream:
                            if !transfer.finished { try? server.close(id, now: network.now) }
                            transfer.finished = true
                            break readLoop
                        case .wouldBlock:
                            break readLoop
                        }
                    }
                }
                transfers[index] = transfer
            }
            network.settle()
        }

        func run(for duration: TimeAmount) {
            let until = network.now + duration
            while network.now < until {
                pump()
                network.advance(notAfter: until)
            }
        }

        // Get the transfers going: at 10 Mbit/s they take longer than the attack lasts (2.5 virtual s).
        run(for: .milliseconds(100))
        for transfer in transfers {
            #expect(client.state(transfer.client) == .established)
        }
        // Real traffic to mutate: datagrams the client really sent.
        let captured = tap.recorded
        #expect(captured.count > 10)

        var hostile = HostileDatagrams(
            servers: [Self.server4, Self.server6], clients: [Self.client4, Self.client6], captured: captured)
        var delivered = 0
        while delivered < total {
            // Aim at the server, and sometimes at the client, between real steps of the transfer.
            let live = transfers.compactMap { client.status($0.client) }
            for _ in 0..<2_000 {
                let datagram = hostile.next(using: &random, liveTuples: live)
                if random.next() % 4 == 0 {
                    client.receive(datagram, now: network.now)
                    while client.nextPacketToSend() != nil {}
                } else {
                    server.receive(datagram, now: network.now)
                    while server.nextPacketToSend() != nil {}
                }
                delivered += 1
            }
            run(for: .milliseconds(5))
            // Memory stays bounded under attack, and the transfers are still going.
            #expect(server.halfOpenCount <= 256)
            #expect(server.connectionCount <= 4 + 64)
        }
        #expect(transfers.allSatisfy { !$0.finished }, "the attack should overlap the transfers")

        // Let the transfers run to completion.
        var rounds = 0
        while !transfers.allSatisfy({ $0.finished }) && rounds < 200_000 {
            pump()
            if !network.advance() { break }
            rounds += 1
        }
        for (index, transfer) in transfers.enumerated() {
            #expect(transfer.finished, "connection \(index) did not finish: \(transfer.received) bytes")
            #expect(transfer.received == bytesPerConnection, "connection \(index)")
            #expect(!transfer.mismatch, "connection \(index) delivered bytes that were never sent")
        }
        let counters = server.counters
        #expect(counters.ipPacketsReceived > UInt64(total / 2))
        #expect(counters.ipMalformed + counters.badSegments + counters.badChecksums + counters.ipBadChecksum > 0)
    }
}

/// Passes everything through, keeping every 10th datagram sent (up to 200) to mutate later.
final class RecordingLink: PacketLink {
    let inner: PacketLink
    private(set) var recorded: [ByteBuffer] = []
    private var sent = 0

    init(wrapping inner: PacketLink) { self.inner = inner }

    var mtu: Int { inner.mtu }
    var capabilities: LinkCapabilities { inner.capabilities }
    var nextArrival: Instant? { inner.nextArrival }
    func receive(now: Instant) -> ByteBuffer? { inner.receive(now: now) }
    func send(_ packet: ByteBuffer, now: Instant) {
        sent += 1
        if sent % 10 == 0 && recorded.count < 200 { recorded.append(packet) }
        inner.send(packet, now: now)
    }
}

/// A generator of hostile datagrams, from pure noise to well-formed spoofed segments.
struct HostileDatagrams {
    let servers: [IPAddress]
    let clients: [IPAddress]
    let captured: [ByteBuffer]

    mutating func next(using random: inout SeededGenerator, liveTuples: [ConnectionStatus]) -> ByteBuffer {
        switch random.next() % 10 {
        case 0:
            return noise(using: &random)
        case 1, 2:
            return mutated(using: &random)
        case 3:
            return malformedOptions(using: &random)
        case 4:
            return ipv6ExtensionChain(using: &random)
        case 5:
            return synFlood(using: &random)
        default:
            return spoofed(using: &random, liveTuples: liveTuples)
        }
    }

    private func noise(using random: inout SeededGenerator) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 128)
        let length = Int(random.next() % 120)
        for _ in 0..<length { buffer.writeInteger(UInt8(truncatingIfNeeded: random.next())) }
        // Half of it claims to be IPv4 or IPv6, so it gets past the version check.
        if length > 0 && random.next() % 2 == 0 {
            buffer.setInteger(UInt8(random.next() % 2 == 0 ? 0x45 : 0x60), at: buffer.readerIndex)
        }
        return buffer
    }

    private func mutated(using random: inout SeededGenerator) -> ByteBuffer {
        guard var buffer = captured.randomElement(using: &random).map({ ByteBuffer(buffer: $0) }) else {
            return noise(using: &random)
        }
        switch random.next() % 3 {
        case 0:
            // Truncate anywhere.
            let keep = Int(random.next() % UInt64(buffer.readableBytes))
            buffer.moveWriterIndex(to: buffer.readerIndex + keep)
        default:
            // Overwrite a few bytes anywhere, header included.
            let original = buffer
            for _ in 0..<(1 + random.next() % 4) {
                let at = buffer.readerIndex + Int(random.next() % UInt64(buffer.readableBytes))
                buffer.setInteger(UInt8(truncatingIfNeeded: random.next()), at: at)
            }
            if buffer != original && Self.checksumsHold(buffer) {
                // One change in 65,536 slips past the 16-bit Internet checksum: that datagram is
                // no longer noise but a forged segment, which no receiver can tell from a real one
                // (RFC 1071's limit, not the stack's). Send noise instead.
                return noise(using: &random)
            }
        }
        return buffer
    }

    /// Whether an IPv4 datagram's header checksum and its TCP checksum both verify (IPv6: TCP's).
    static func checksumsHold(_ datagram: ByteBuffer) -> Bool {
        guard let first = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) else { return false }
        let base = datagram.readerIndex
        var tcp = InternetChecksum()
        let source: IPAddress
        let destination: IPAddress
        let start: Int
        let length: Int
        if first >> 4 == 4 {
            let headerLength = Int(first & 0x0F) * 4
            guard headerLength >= 20, let total = datagram.getInteger(at: base + 2, as: UInt16.self),
                  Int(total) <= datagram.readableBytes, Int(total) >= headerLength,
                  let header = datagram.getSlice(at: base, length: headerLength),
                  let s = datagram.getInteger(at: base + 12, as: UInt32.self),
                  let d = datagram.getInteger(at: base + 16, as: UInt32.self) else { return false }
            var ip = InternetChecksum()
            ip.add(header)
            guard ip.checksum == 0 else { return false }
            source = .v4(IPv4Address(rawValue: s))
            destination = .v4(IPv4Address(rawValue: d))
            start = base + headerLength
            length = Int(total) - headerLength
        } else if first >> 4 == 6 {
            guard let payloadLength = datagram.getInteger(at: base + 4, as: UInt16.self),
                  40 + Int(payloadLength) <= datagram.readableBytes,
                  let s = datagram.getSlice(at: base + 8, length: 16), let d = datagram.getSlice(at: base + 24, length: 16)
            else { return false }
            func address(_ bytes: ByteBuffer) -> IPAddress {
                .v6(IPv6Address(high: bytes.getInteger(at: bytes.readerIndex, as: UInt64.self)!,
                                low: bytes.getInteger(at: bytes.readerIndex + 8, as: UInt64.self)!))
            }
            source = address(s)
            destination = address(d)
            start = base + 40
            length = Int(payloadLength)
        } else {
            return false
        }
        guard let segment = datagram.getSlice(at: start, length: length) else { return false }
        tcp.addPseudoHeader(source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
                            upperLayerLength: length)
        tcp.add(segment)
        return tcp.checksum == 0
    }

    private func malformedOptions(using random: inout SeededGenerator) -> ByteBuffer {
        // A TCP header with a random option area, checksummed so it reaches the option parser.
        let source = clients[0]
        let destination = servers[0]
        var segment = ByteBufferAllocator().buffer(capacity: 80)
        let optionWords = Int(random.next() % 11)
        segment.writeInteger(UInt16(truncatingIfNeeded: random.next()))
        segment.writeInteger(UInt16(5001))
        segment.writeInteger(UInt32(truncatingIfNeeded: random.next()))
        segment.writeInteger(UInt32(truncatingIfNeeded: random.next()))
        segment.writeInteger(UInt8((5 + optionWords) << 4))
        segment.writeInteger(UInt8(truncatingIfNeeded: random.next()))
        segment.writeInteger(UInt16(truncatingIfNeeded: random.next()))
        segment.writeInteger(UInt16(0))
        segment.writeInteger(UInt16(0))
        for _ in 0..<(optionWords * 4) {
            let kinds: [UInt8] = [0, 1, 2, 3, 4, 5, 8, 30, 254]
            segment.writeInteger(random.next() % 2 == 0 ? kinds.randomElement(using: &random)! : UInt8(truncatingIfNeeded: random.next()))
        }
        var checksum = InternetChecksum()
        checksum.addPseudoHeader(source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
                                 upperLayerLength: segment.readableBytes)
        checksum.add(segment)
        segment.setInteger(checksum.checksum, at: segment.readerIndex + 16)
        var datagram = PacketBuffer.make(payloadCapacity: segment.readableBytes)
        datagram.writeImmutableBuffer(segment)
        if case .v4(let s) = source, case .v4(let d) = destination {
            IPv4Header(source: s, destination: d, protocolNumber: IPProtocolNumber.tcp, payloadLength: segment.readableBytes)
                .prepend(to: &datagram)
        }
        return datagram
    }

    private func ipv6ExtensionChain(using random: inout SeededGenerator) -> ByteBuffer {
        guard case .v6(let source) = clients[1], case .v6(let destination) = servers[1] else { return noise(using: &random) }
        var body = ByteBufferAllocator().buffer(capacity: 96)
        let headers = Int(random.next() % 10)
        var next: [UInt8] = []
        for _ in 0..<headers { next.append([0, 43, 44, 60, 59].randomElement(using: &random)!) }
        for index in 0..<headers {
            let following = index + 1 < headers ? next[index + 1] : IPProtocolNumber.tcp
            body.writeInteger(following)
            let lengthUnits = UInt8(random.next() % 3)
            body.writeInteger(random.next() % 8 == 0 ? UInt8(truncatingIfNeeded: random.next()) : lengthUnits)
            for _ in 0..<(6 + Int(lengthUnits) * 8) { body.writeInteger(UInt8(truncatingIfNeeded: random.next())) }
        }
        for _ in 0..<Int(random.next() % 40) { body.writeInteger(UInt8(truncatingIfNeeded: random.next())) }
        var datagram = PacketBuffer.make(payloadCapacity: body.readableBytes)
        datagram.writeImmutableBuffer(body)
        IPv6Header(source: source, destination: destination, nextHeader: headers > 0 ? next[0] : IPProtocolNumber.tcp,
                   payloadLength: body.readableBytes).prepend(to: &datagram)
        return datagram
    }

    private func synFlood(using random: inout SeededGenerator) -> ByteBuffer {
        let spoofed = IPAddress.v4(IPv4Address(rawValue: 0xC612_0000 | UInt32(truncatingIfNeeded: random.next() % 60000 + 3)))
        let header = TCPHeader(
            sourcePort: UInt16(truncatingIfNeeded: random.next() % 60000 + 1024), destinationPort: 5001,
            sequenceNumber: SequenceNumber(UInt32(truncatingIfNeeded: random.next())),
            acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 65535,
            options: TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                                timestamps: TCPTimestamps(value: UInt32(truncatingIfNeeded: random.next()), echoReply: 0)))
        return PacketBuffer.tcpDatagram(header: header, payload: nil, source: spoofed, destination: servers[0])
    }

    /// A well-formed segment with random flags, numbers and options — at a live connection's
    /// 4-tuple half the time (a blind attacker who guessed the ports).
    private func spoofed(using random: inout SeededGenerator, liveTuples: [ConnectionStatus]) -> ByteBuffer {
        let flags = TCPFlags(rawValue: UInt8(truncatingIfNeeded: random.next()) & 0x3F)
        var source: Endpoint
        var destination: Endpoint
        if let live = liveTuples.randomElement(using: &random), random.next() % 2 == 0 {
            source = live.local
            destination = live.remote
        } else {
            source = Endpoint(clients[Int(random.next() % 2)], UInt16(truncatingIfNeeded: random.next() | 1))
            destination = Endpoint(servers[Int(random.next() % 2)], random.next() % 2 == 0 ? 5001 : UInt16(truncatingIfNeeded: random.next() | 1))
        }
        if case .v4 = source.address, case .v6 = destination.address { destination.address = servers[0] }
        if case .v6 = source.address, case .v4 = destination.address { destination.address = servers[1] }
        var options = TCPOptions()
        if random.next() % 2 == 0 { options.timestamps = TCPTimestamps(value: UInt32(truncatingIfNeeded: random.next()), echoReply: UInt32(truncatingIfNeeded: random.next())) }
        if random.next() % 4 == 0 { options.maximumSegmentSize = UInt16(truncatingIfNeeded: random.next()) }
        if random.next() % 4 == 0 { options.windowScale = UInt8(truncatingIfNeeded: random.next()) }
        if random.next() % 4 == 0 {
            options.sackBlocks.append(SACKBlock(start: SequenceNumber(UInt32(truncatingIfNeeded: random.next())),
                                                end: SequenceNumber(UInt32(truncatingIfNeeded: random.next()))))
        }
        if flags.contains(.syn) && flags.contains(.fin) { options.sackPermitted = true }
        let header = TCPHeader(
            sourcePort: source.port, destinationPort: destination.port,
            sequenceNumber: SequenceNumber(UInt32(truncatingIfNeeded: random.next())),
            acknowledgmentNumber: SequenceNumber(UInt32(truncatingIfNeeded: random.next())),
            flags: flags, window: UInt16(truncatingIfNeeded: random.next()), options: options)
        let payloadLength = random.next() % 3 == 0 ? Int(random.next() % 1400) : 0
        return PacketBuffer.tcpDatagram(
            header: header, payload: payloadLength > 0 ? ByteBuffer(repeating: 0xEE, count: payloadLength) : nil,
            source: source.address, destination: destination.address)
    }
}
