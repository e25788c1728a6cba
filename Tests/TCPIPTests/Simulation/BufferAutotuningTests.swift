import NIOCore
import TCPIPWire
import TCPIP
import TCPIPSimulation
import Testing

/// Receive and send autotuning (BufferAutotuning.swift) inside the memory budget, on virtual time
/// with every byte verified: a long, fat path fills; many flows share a budget without refusals and
/// without ever exceeding it; a slow reader keeps a small window.
@Suite struct BufferAutotuningTests {
    /// One flow over a 500 Mbit/s, 100 ms RTT path with a one-BDP drop-tail queue and no loss, with
    /// the server preset (Linux-like: up to 8 MiB to receive): within 4 virtual seconds — well inside the
    /// 10 the issue allows — the last second runs at ≥ 90% of the link. Fixed 256 KiB buffers carry
    /// ~20 Mbit/s here (256 KiB per round trip).
    @Test func longFatPathFillsTheLink() {
        var configuration = TransferSimulation.Configuration()
        configuration.tcp = .server
        configuration.delay = .milliseconds(50)
        configuration.bandwidthBitsPerSecond = 500_000_000
        configuration.queueLimitBytes = 6_250_000
        configuration.duration = .seconds(4)
        configuration.seed = 25
        let result = TransferSimulation.run(configuration)
        #expect(result.failures == [])
        #expect(result.verified)
        let (total, atThreeQuarters) = result.delivered[0]
        let lastSecondMegabits = Double(total - atThreeQuarters) * 8 / 1e6
        #expect(lastSecondMegabits >= 450, "last second: \(lastSecondMegabits) Mbit/s of 500")
        #expect(result.serverCounters.receiveBufferGrowths > 0)
        #expect(result.clientCounters.sendBufferGrowths > 0)
        let status = result.serverStatuses[0]
        #expect(status.receiveBuffer > 4 * 1024 * 1024 && status.receiveBuffer <= 8 * 1024 * 1024)
        #expect(status.receiveWindowScale == 8, "the SYN's shift covers the 8 MiB maximum, not the 128 KiB start")
        #expect(status.receiveSpace > 1_000_000)
    }

    /// A receiver that acknowledges each flight once: with no bandwidth limit a whole flight arrives
    /// at one instant and the receiver's batched ACK covers it, as Linux's receiver does when its
    /// reader wakes once per burst (the kernel's curl in `KernelInteropTests.longFatPathBothWays`
    /// sent one ACK per 35–40 segments). The server preset counts every segment such an ACK
    /// delivers (Linux's tcp_slow_start), so cwnd still doubles each round trip: 20 MB over 100 ms
    /// takes about 1.5 virtual seconds. Held to RFC 5681's one SMSS per ACK, cwnd grows by one
    /// segment per round trip, and the same 20 MB takes more than ten.
    @Test func stretchAcknowledgmentsStillDoubleTheWindow() {
        var configuration = TransferSimulation.Configuration()
        configuration.tcp = .server
        configuration.bytes = 20_000_000
        configuration.delay = .milliseconds(50)
        configuration.seed = 25
        let result = TransferSimulation.run(configuration)
        #expect(result.failures == [])
        #expect(result.verified)
        #expect(result.retransmits == 0)
        let seconds = Double(result.virtualDuration.nanoseconds) / 1e9
        #expect(seconds < 2.5, "20 MB in \(seconds) virtual seconds")

        configuration.tcp.slowStartLimitSegments = 1
        let limited = TransferSimulation.run(configuration)
        #expect(limited.verified)
        let limitedSeconds = Double(limited.virtualDuration.nanoseconds) / 1e9
        #expect(limitedSeconds > 10, "one SMSS per stretch ACK: \(limitedSeconds) virtual seconds")
    }

    /// The same path with fixed buffers, for the record: one window per round trip.
    @Test func fixedBuffersCapTheSamePath() {
        var configuration = TransferSimulation.Configuration()
        configuration.tcp.receiveBufferSize = 256 * 1024
        configuration.tcp.sendBufferSize = 256 * 1024
        configuration.delay = .milliseconds(50)
        configuration.bandwidthBitsPerSecond = 500_000_000
        configuration.queueLimitBytes = 6_250_000
        configuration.duration = .seconds(2)
        let result = TransferSimulation.run(configuration)
        #expect(result.verified)
        let (total, atThreeQuarters) = result.delivered[0]
        let megabits = Double(total - atThreeQuarters) * 8 / 0.5 / 1e6
        #expect(megabits < 25, "fixed 256 KiB buffers: \(megabits) Mbit/s")
        #expect(result.serverCounters.receiveBufferGrowths == 0 && result.clientCounters.sendBufferGrowths == 0)
    }

    /// 200 connections that all want big windows (server preset, 100 ms RTT, some loss so their
    /// out-of-order queues fill too) into a server with a 64 MiB budget: no connection is refused,
    /// every byte arrives, and after every datagram the server's running memory total equals a full
    /// recount and stays within the budget. Pressure stopped the growth and shrank the largest.
    @Test func twoHundredFlowsShareABudget() {
        var configuration = TransferSimulation.Configuration()
        configuration.tcp = .server
        configuration.connections = 200
        configuration.delay = .milliseconds(50)
        configuration.bandwidthBitsPerSecond = 1_000_000_000
        configuration.queueLimitBytes = 4_000_000
        configuration.faults = FaultInjector.Configuration(loss: 0.002)
        configuration.duration = .seconds(3)
        configuration.serverMemoryBudget = 64 * 1024 * 1024
        configuration.seed = 200
        let result = TransferSimulation.run(configuration)
        #expect(result.failures == [])
        #expect(result.verified)
        #expect(result.serverCounters.memoryBudgetRefusals == 0)
        #expect(result.serverMemoryViolations == 0)
        #expect(result.serverPeakMemory <= 64 * 1024 * 1024)
        #expect(result.serverStatuses.count == 200)
        #expect(result.delivered.allSatisfy { $0.total > 0 })
        print("200 flows: peak \(result.serverPeakMemory) bytes, growths \(result.serverCounters.receiveBufferGrowths), "
              + "shrinks \(result.serverCounters.receiveBufferShrinks), dropped \(result.serverCounters.droppedMemoryBudget), "
              + "goodput \(Double(result.delivered.reduce(0) { $0 + $1.total }) * 8 / 3 / 1e6) Mbit/s")
    }
}

/// Autotuning against readers and budgets, driven by hand over a virtual network.
@Suite struct BufferAutotuningReaderTests {
    static let client = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    static let server = IPAddress.v4(IPv4Address(198, 18, 0, 2))

    /// A reader that takes 16 KiB every 100 ms (1.3 Mbit/s) from a sender that could fill 500 Mbit/s
    /// at 100 ms RTT: it reads little per round trip, so its buffer never grows and the window it
    /// advertises stays within the 128 KiB it started with. The bytes it reads are the bytes sent.
    @Test func slowReaderKeepsASmallWindow() throws {
        let network = VirtualNetwork()
        let (a, b) = MemoryLink.pair(MemoryLink.Configuration(
            mtu: 1500, delay: .milliseconds(50), bandwidthBitsPerSecond: 500_000_000, queueLimitBytes: 6_250_000,
            checksumOffload: true))
        let tcp = TCPConfiguration.server
        let client = Stack(StackConfiguration(addresses: [Self.client], checksumOffload: true, seed: 1, tcp: tcp))
        let server = Stack(StackConfiguration(addresses: [Self.server], checksumOffload: true, seed: 2, tcp: tcp))
        network.addHost(client, link: a)
        network.addHost(server, link: b)
        let listener = try server.listen(on: 5001, backlog: 4)
        let id = try client.connect(to: Endpoint(Self.server, 5001), now: network.now)
        var accepted: ConnectionID?
        var written = 0
        var read = 0
        var largestWindow = 0
        var pattern = ByteBufferAllocator().buffer(capacity: 65536)
        for offset in 0..<65536 { pattern.writeInteger(UInt8(offset % 251)) }
        var corrupt = false
        var nextRead = Instant.zero + .milliseconds(300)
        while network.now < Instant.zero + .seconds(6) {
            network.run(until: min(nextRead, network.now + .milliseconds(10)))
            if accepted == nil { accepted = server.accept(listener) }
            while client.state(id) == .established {
                let phase = written % 251
                let taken = try client.send(id, pattern.getSlice(at: phase, length: 65536 - 251)!, now: network.now)
                written += taken
                if taken == 0 { break }
            }
            guard let accepted, network.now >= nextRead else { continue }
            nextRead = network.now + .milliseconds(100)
            if case .data(let bytes) = try server.read(accepted, upTo: 16 * 1024, now: network.now) {
                bytes.withUnsafeReadableBytes { raw in
                    for (index, byte) in raw.enumerated() where byte != UInt8((read + index) % 251) { corrupt = true }
                }
                read += bytes.readableBytes
            }
            if let status = server.status(accepted) { largestWindow = max(largestWindow, status.receiveWindow) }
        }
        let status = try #require(accepted.flatMap(server.status))
        #expect(!corrupt)
        #expect(read >= 50 * 16 * 1024)
        #expect(status.receiveBuffer == 128 * 1024, "a slow reader's buffer does not grow")
        #expect(largestWindow <= 128 * 1024)
        #expect(server.counters.receiveBufferGrowths == 0)
        #expect(SocketStatistics(status).detailFields.contains("rcvbuf:131072/8388608"))
    }

    /// A connection that grew its buffers and then went idle gives them back
    /// (`TCPConfiguration.idleBufferReclaim`, after Linux's sk_mem_reclaim and tcp_cwnd_restart):
    /// after 8 MB over a 100 Mbit/s, 40 ms path the server's receive buffer and the client's send
    /// buffer are above their starting sizes and the rings of their queues hold thousands of
    /// slots; a second and a half of quiet later, the buffers are back at 128 KiB and 256 KiB, the
    /// rings are freed, and each stack accounts what it did right after the handshake. The same
    /// connection then carries 4 MB more, every byte verified, and grows again.
    @Test func idleConnectionGivesItsBuffersBack() throws {
        let network = VirtualNetwork()
        let (a, b) = MemoryLink.pair(MemoryLink.Configuration(
            mtu: 1500, delay: .milliseconds(20), bandwidthBitsPerSecond: 100_000_000, queueLimitBytes: 1_000_000,
            checksumOffload: true))
        let tcp = TCPConfiguration.server
        let client = Stack(StackConfiguration(addresses: [Self.client], checksumOffload: true, seed: 3, tcp: tcp))
        let server = Stack(StackConfiguration(addresses: [Self.server], checksumOffload: true, seed: 4, tcp: tcp))
        network.addHost(client, link: a)
        network.addHost(server, link: b)
        let listener = try server.listen(on: 5001, backlog: 4)
        let id = try client.connect(to: Endpoint(Self.server, 5001), now: network.now)
        network.run(until: network.now + .milliseconds(200))
        let accepted = try #require(server.accept(listener))
        // What the connections hold (slots, queues, rings), not the stack's tables and timer heap.
        func held(_ stack: Stack) -> Int {
            let memory = stack.memory
            return memory.connectionSlots + memory.buffers + memory.queueRings
        }
        let baseline = (client: held(client), server: held(server))

        var pattern = ByteBufferAllocator().buffer(capacity: 65536)
        for offset in 0..<65536 { pattern.writeInteger(UInt8(offset % 251)) }
        func transfer(_ count: Int) throws -> Int {
            var written = 0
            var read = 0
            let deadline = network.now + .seconds(30)
            while read < count, network.now < deadline {
                while written < count {
                    let length = min(65536 - 251, count - written)
                    let taken = try client.send(id, pattern.getSlice(at: written % 251, length: length)!, now: network.now)
                    written += taken
                    if taken == 0 { break }
                }
                network.run(until: network.now + .milliseconds(5))
                while case .data(let bytes) = try server.read(accepted, upTo: 1 << 20, now: network.now) {
                    let intact = bytes.withUnsafeReadableBytes { raw in
                        raw.enumerated().allSatisfy { $0.element == UInt8((read + $0.offset) % 251) }
                    }
                    #expect(intact, "bytes \(read)..<\(read + bytes.readableBytes) differ from those sent")
                    read += bytes.readableBytes
                }
            }
            return read
        }

        #expect(try transfer(8_000_000) == 8_000_000)
        network.run(until: network.now + .milliseconds(100))
        let grownServer = try #require(server.status(accepted))
        let grownClient = try #require(client.status(id))
        #expect(grownServer.receiveBuffer > 128 * 1024)
        #expect(grownClient.sendBuffer > 256 * 1024)
        #expect(client.memory.queueRings > 0 && server.memory.queueRings > 0, "the rings the transfer grew are still held")
        #expect(client.memory.buffers == 0 && server.memory.buffers == 0, "nothing is queued")
        let grown = (client: held(client), server: held(server))

        network.run(until: network.now + .milliseconds(1500))
        let idleServer = try #require(server.status(accepted))
        let idleClient = try #require(client.status(id))
        #expect(idleServer.receiveBuffer == 128 * 1024)
        #expect(idleClient.sendBuffer == 256 * 1024)
        #expect(client.memory.queueRings == 0 && server.memory.queueRings == 0)
        #expect(held(client) < grown.client && held(server) < grown.server)
        #expect(held(client) == baseline.client && held(server) == baseline.server,
                "accounted bytes back to the handshake's: client \(client.memory), was \(baseline.client); server \(server.memory), was \(baseline.server)")
        #expect(client.counters.idleBufferReclaims == 1 && server.counters.idleBufferReclaims == 1)
        print("idle reclaim: client \(grown.client) → \(held(client)) bytes, server \(grown.server) → \(held(server)) bytes")

        #expect(try transfer(4_000_000) == 4_000_000)
        #expect(try #require(server.status(accepted)).receiveBuffer > 128 * 1024, "the next burst grows the buffer again")
    }

    /// Eight flows that want big windows into a server whose 512 KiB budget cannot give them: once the
    /// server is under pressure (two thirds of the budget), growth stops and the buffers above the fair
    /// share shrink; no connection is refused, the budget is never exceeded (checked against a
    /// recount after every datagram), and every byte arrives.
    @Test func pressureStopsGrowthAndShrinksTheLargest() {
        var configuration = TransferSimulation.Configuration()
        configuration.tcp = .server
        configuration.connections = 8
        configuration.delay = .milliseconds(25)
        configuration.bandwidthBitsPerSecond = 400_000_000
        configuration.queueLimitBytes = 2_500_000
        configuration.faults = FaultInjector.Configuration(loss: 0.01)
        configuration.duration = .seconds(3)
        configuration.serverMemoryBudget = 512 * 1024
        configuration.seed = 8
        let result = TransferSimulation.run(configuration)
        #expect(result.failures == [])
        #expect(result.verified)
        #expect(result.serverCounters.memoryBudgetRefusals == 0)
        #expect(result.serverMemoryViolations == 0)
        #expect(result.serverPeakMemory <= 512 * 1024)
        #expect(result.serverCounters.receiveBufferShrinks > 0)
        #expect(result.delivered.allSatisfy { $0.total > $0.atThreeQuarters }, "no flow stalled")
        let largest = result.serverStatuses.map(\.receiveBuffer).max() ?? 0
        #expect(largest < 2 * 1024 * 1024, "largest receive buffer \(largest)")
        print("pressure: peak \(result.serverPeakMemory), growths \(result.serverCounters.receiveBufferGrowths), "
              + "shrinks \(result.serverCounters.receiveBufferShrinks), largest \(largest), dropped \(result.serverCounters.droppedMemoryBudget)")
    }
}
