import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// A flood of spoofed SYNs from 198.18.x.y that never complete, with legitimate clients
/// connecting in the middle of it (RFC 4987): with cookies every client gets in and the SYN queue
/// stays at its bound; without, the clients' SYNs find the queue full.
@Suite struct SYNFloodTests {
    static let serverAddress = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    static let clientAddress = IPAddress.v4(IPv4Address(198, 18, 0, 2))

    struct Outcome {
        var established = 0
        var peakHalfOpen = 0
        var server: StackCounters
        /// The most the server's own accounting showed in use at any point (`Stack.memoryInUse`).
        var peakMemory = 0
    }

    /// `spoofed` SYNs at 100,000 a second; a legitimate connect every `spoofed / legitimate` of them, the first once the SYN queue is full.
    static func flood(_ mode: SYNCookieMode, spoofed: Int, legitimate: Int) throws -> Outcome {
        var tcp = TCPConfiguration()
        tcp.synQueueLimit = 64
        tcp.synCookies = mode
        let server = Stack(StackConfiguration(addresses: [serverAddress], checksumOffload: true, seed: 1, tcp: tcp))
        let client = Stack(StackConfiguration(addresses: [clientAddress], checksumOffload: true, seed: 2))
        let listener = try server.listen(on: 80, backlog: 64)
        var random = SeededGenerator(seed: 3)
        var clients: [ConnectionID] = []
        var peakHalfOpen = 0
        var peakMemory = 0
        var accepted = 0
        var now = Instant.zero
        let allocator = ByteBufferAllocator()

        func exchange() {
            var moved = true
            while moved {
                moved = false
                while let datagram = server.nextPacketToSend() {
                    // SYN-ACKs to spoofed sources vanish; only the real client answers.
                    guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: false),
                          ip.destination == clientAddress else { continue }
                    client.receive(datagram, now: now)
                    moved = true
                }
                while let datagram = client.nextPacketToSend() {
                    server.receive(datagram, now: now)
                    moved = true
                }
            }
            while server.accept(listener) != nil { accepted += 1 }
        }

        for index in 0..<spoofed {
            now = .zero + .microseconds(Int64(index) * 10)
            let source = IPAddress.v4(IPv4Address(
                198, 18, UInt8.random(in: 1...255, using: &random), UInt8.random(in: 0...255, using: &random)))
            let header = TCPHeader(
                sourcePort: UInt16.random(in: 1024...65535, using: &random), destinationPort: 80,
                sequenceNumber: SequenceNumber(UInt32.random(in: 0...UInt32.max, using: &random)),
                acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 65535,
                options: TCPOptions(maximumSegmentSize: 1460))
            server.receive(
                PacketBuffer.tcpDatagram(
                    header: header, payload: nil, source: source, destination: serverAddress,
                    computeChecksum: false, allocator: allocator),
                now: now)
            if index % (spoofed / legitimate) == spoofed / legitimate / 2 {
                clients.append(try client.connect(to: Endpoint(serverAddress, 80), now: now))
            }
            server.advanceTime(to: now)
            client.advanceTime(to: now)
            exchange()
            peakHalfOpen = max(peakHalfOpen, server.halfOpenCount)
            peakMemory = max(peakMemory, server.memoryInUse)
        }
        let established = clients.filter { client.state($0) == .established }.count
        #expect(accepted == established)
        return Outcome(established: established, peakHalfOpen: peakHalfOpen, server: server.counters, peakMemory: peakMemory)
    }

    @Test func withCookiesEveryLegitimateClientGetsIn() throws {
        let outcome = try Self.flood(.whenSYNQueueFull, spoofed: 40_000, legitimate: 40)
        #expect(outcome.established == 40)
        #expect(outcome.peakHalfOpen <= 64)
        #expect(outcome.server.synCookiesValidated == 40)
        #expect(outcome.server.synCookiesSent >= 40_000 - 64)
        #expect(outcome.server.synCookiesFailed == 0)
    }

    /// Issue 4: a million spoofed SYNs (ten virtual seconds) against cookies on overflow. The SYN
    /// queue stays at its bound, so the server's memory never exceeds 64 half-open entries and the
    /// legitimate connections; every one of the 100 legitimate clients gets in.
    @Test func millionSpoofedSYNsWithCookies() throws {
        let outcome = try Self.flood(.whenSYNQueueFull, spoofed: 1_000_000, legitimate: 100)
        #expect(outcome.established == 100)
        #expect(outcome.peakHalfOpen <= 64)
        #expect(outcome.server.synCookiesSent >= 1_000_000 - 64)
        #expect(outcome.server.synCookiesValidated == 100)
        // 64 half-open entries and 100 idle connections, with room for their handful of buffers.
        let bound = 64 * Stack.halfOpenEntryBytes + 100 * Stack.connectionEntryBytes + 100 * 4096
        #expect(outcome.peakMemory <= bound, "peak \(outcome.peakMemory) bytes, bound \(bound)")
    }

    @Test func alwaysKeepsNoHalfOpenStateAtAll() throws {
        let outcome = try Self.flood(.always, spoofed: 10_000, legitimate: 20)
        #expect(outcome.established == 20)
        #expect(outcome.peakHalfOpen == 0)
    }

    @Test func withoutCookiesTheFloodKeepsClientsOut() throws {
        let outcome = try Self.flood(.off, spoofed: 10_000, legitimate: 20)
        #expect(outcome.established == 0)
        #expect(outcome.peakHalfOpen == 64)
        #expect(outcome.server.synQueueDrops > 0)
    }
}
