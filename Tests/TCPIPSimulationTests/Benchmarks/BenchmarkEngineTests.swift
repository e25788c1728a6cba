import NIOCore
import TCPIP
import TCPIPSimulation
import Testing

/// The engines behind `tcpip bench`, run small: they must finish, move every byte, and count right.
@Suite struct BenchmarkEngineTests {
    @Test(arguments: [(1500, 4), (65000, 4), (1500, 6)])
    func bulkMovesEveryByte(mtu: Int, ipVersion: Int) throws {
        let result = try BulkBenchmark.run(mtu: mtu, bytes: 4 << 20, ipVersion: ipVersion)
        #expect(result.bytes == 4 << 20)
        // No retransmission is needed on this link, but on the wall clock a slow (debug, shared) machine can
        // let a retransmission timer expire before the peer's delayed ACK is processed; that is allowed.
        // No segment is larger than the MTU allows, so there are at least bytes / MSS of them.
        #expect(result.segmentsSent >= UInt64((4 << 20) / (mtu - 40)))
        #expect(result.gigabitsPerSecond > 0)
    }

    @Test func connectionRateCompletesEveryCycle() throws {
        let result = try ConnectionRateBenchmark.run(count: 200, clientAddresses: 2)
        #expect(result.connections == 200)
        // The server closed first, so it holds every 4-tuple in TIME-WAIT.
        #expect(result.serverConnectionsLeft == 200)
    }

    /// `tcpip bench connrate --count`: on the stepped virtual clock, the same cycles whatever the
    /// machine's speed (under valgrind too), every one without a timeout.
    @Test func connectionRateOnTheVirtualClockDoesExactlyTheCount() throws {
        let result = try ConnectionRateBenchmark.run(count: 500, clientAddresses: 2, virtualStep: .microseconds(1))
        #expect(result.connections == 500)
        #expect(result.serverConnectionsLeft == 500)
        #expect(result.retransmissions == 0)
        #expect(result.segmentsSent == 500 * 6)
        #expect(result.seconds > 0)
    }

    /// From one client address to one server port, past the 16,384 ephemeral ports: every 4-tuple
    /// comes back while the server holds it in TIME-WAIT, and every cycle still completes at once —
    /// the server reopens the record on the new SYN (RFC 6191), with no retransmission.
    @Test func connectionRateFromOneAddressReopensTimeWait() throws {
        let result = try ConnectionRateBenchmark.run(count: 16384 + 300, clientAddresses: 1)
        #expect(result.connections == 16384 + 300)
        #expect(result.serverTimeWaitRecycled == 300)
        #expect(result.serverConnectionsLeft == 16384)
        #expect(result.serverTimeWaitRejected == 0)
    }

    @Test func memoryCountsIdleConnections() throws {
        let result = try MemoryBenchmark.run(connections: 1000)
        #expect(result.connections == 1000)
        #expect(result.client.buffers == 0 && result.server.buffers == 0)
        #expect(result.accountedPerConnection >= Double(result.client.bytesPerSlot))
    }
}
