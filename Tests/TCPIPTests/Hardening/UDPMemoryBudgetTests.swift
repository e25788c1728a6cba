import NIOCore
import TCPIPWire
import Testing
@testable import TCPIP

/// UDP's receive queues count in the stack's memory budget (`StackConfiguration.memoryBudget`): at
/// the budget a datagram is dropped and counted, memory never grows past it, the running total
/// agrees with a full recount at every step, and what was queued arrives byte for byte.
@Suite struct UDPMemoryBudgetTests {
    static let budget = 256 * 1024

    static func stack() -> Stack {
        var configuration = StackConfiguration(addresses: [.v4(IPTester.local4), .v6(IPTester.local6)], seed: 768)
        configuration.memoryBudget = budget
        // The endpoint's own limit out of the way: the budget is what is under test.
        configuration.udp.receiveBufferSize = 64 * 1024 * 1024
        return Stack(configuration)
    }

    /// Datagram `index`: 1,000 octets that differ from every other datagram's.
    static func payload(_ index: Int) -> [UInt8] {
        (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index &* 7 &+ $0 / 251) }
    }

    @Test(arguments: [4, 6])
    func datagramsBeyondTheBudgetAreDroppedAndCounted(family: Int) throws {
        let stack = Self.stack()
        let endpoint = try stack.bindUDP(port: 5353)
        var index = 0
        var peak = 0
        // Until the budget turns datagrams away, and 50 more.
        while stack.counters.udpMemoryErrors < 50 {
            stack.receive(IPTester.udp(family: family, to: 5353, payload: Self.payload(index)), now: .zero)
            index += 1
            peak = max(peak, stack.memoryInUse)
            #expect(MemoryBudgetTests.accountingIsExact(stack), "datagram \(index)")
            try #require(index < 10_000)
        }
        let queued = try #require(stack.udpStatus(endpoint))
        #expect(peak <= Self.budget)
        #expect(stack.memoryInUse == queued.queuedPinnedBytes)
        #expect(queued.queuedDatagrams + 50 == index)
        #expect(queued.drops == 50)
        #expect(stack.counters.udpInDatagrams == UInt64(queued.queuedDatagrams))
        #expect(stack.counters.udpInErrors == 50 && stack.counters.udpReceiveBufferErrors == 0)
        #expect(stack.counters.report().contains("    50 receive memory errors: memory budget"))

        // Reading frees room: the next datagram is queued again. Every byte of what was queued,
        // in order, is what was sent.
        var received = 0
        for _ in 0..<10 {
            let datagram = try #require(try stack.receive(endpoint))
            #expect(Array(datagram.payload.readableBytesView) == Self.payload(received))
            received += 1
        }
        #expect(MemoryBudgetTests.accountingIsExact(stack))
        stack.receive(IPTester.udp(family: family, to: 5353, payload: Self.payload(index)), now: .zero)
        #expect(stack.counters.udpMemoryErrors == 50)
        #expect(stack.memoryInUse <= Self.budget && MemoryBudgetTests.accountingIsExact(stack))
        while let datagram = try stack.receive(endpoint) {
            // The datagrams dropped at the budget are missing; the rest are exact.
            let expected = received < queued.queuedDatagrams ? received : index
            #expect(Array(datagram.payload.readableBytesView) == Self.payload(expected))
            received += 1
        }
        #expect(received == queued.queuedDatagrams + 1)
        #expect(stack.memoryInUse == 0 && MemoryBudgetTests.accountingIsExact(stack))
    }

    /// Closing an endpoint with unread datagrams gives their memory back.
    @Test func closingAnEndpointReleasesItsQueue() throws {
        let stack = Self.stack()
        let first = try stack.bindUDP(port: 1)
        let second = try stack.bindUDP(port: 2)
        for index in 0..<20 {
            stack.receive(IPTester.udp(family: 4, to: 1 + UInt16(index % 2), payload: Self.payload(index)), now: .zero)
        }
        #expect(stack.memoryInUse > 0 && MemoryBudgetTests.accountingIsExact(stack))
        let secondHeld = try #require(stack.udpStatus(second)).queuedPinnedBytes
        stack.close(first)
        #expect(stack.memoryInUse == secondHeld && MemoryBudgetTests.accountingIsExact(stack))
        stack.close(second)
        #expect(stack.memoryInUse == 0 && stack.memory.buffers == 0)
    }
}
