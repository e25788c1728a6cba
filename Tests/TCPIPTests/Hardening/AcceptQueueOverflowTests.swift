import NIOCore
import TCPIP
import Testing

/// What the final ACK meets when the accept queue is full: by default (as Linux,
/// tcp_abort_on_overflow = 0) it is dropped and the half-open entry waits; configured to reset,
/// the peer learns at once (tcp_abort_on_overflow = 1).
@Suite struct AcceptQueueOverflowTests {
    @Test func fullAcceptQueueResetsWhenConfiguredTo() throws {
        var t = try TCPTester(.closed) { $0.tcp.acceptQueueOverflow = .reset }
        let listener = try t.stack.listen(on: TCPTester.listenPort, backlog: 1)
        t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: 7000))
        let ack = try #require(t.takeSegments().first).sequenceNumber.rawValue &+ 1
        t.inject(datagram: try t.datagram("+0 < . 1:1(0) ack \(ack) win 65535", fromPort: 7000))
        // The accept queue (backlog 1) is now full; the tester's own handshake overflows it.
        try t.run("""
            +0 < S 0:0(0) win 65535 <mss 1460>
            +0 > S. 0:0(0) ack 1 <mss 1460>
            +.01 < . 1:1(0) ack 1 win 65535
            +0 > R 1:1(0)
            """)
        #expect(t.stack.halfOpenCount == 0)
        #expect(t.counters.listenOverflows == 1)
        // Nothing is retransmitted for it later: the entry is gone.
        try t.expectNothing(for: .seconds(5))
        #expect(t.stack.accept(listener) != nil)
        #expect(t.stack.accept(listener) == nil)
    }
}
