import NIOCore
import TCPIP
import Testing

/// RFC 5961 §7: challenge ACKs are rate-limited, stack-wide, with a budget per second drawn at
/// random around the configured limit (so the count is no side channel, CVE-2016-5696).
@Suite struct ChallengeAckLimitTests {
    /// A flood of in-window RSTs gets at most about `limit` challenge ACKs a second; the rest are
    /// counted and dropped, the connection lives, and the next second has a budget again.
    @Test func floodOfInWindowResetsIsThrottled() throws {
        var t = try TCPTester(.established) { $0.tcp.challengeAckLimit = 10 }
        let reset = try t.datagram("+0 < R 2:2(0) win 0")
        for _ in 0..<100 { t.inject(datagram: reset) }
        let answered = t.takeOutput().count
        #expect((5..<15).contains(answered))
        #expect(t.counters.challengeAcksSent == UInt64(answered))
        #expect(t.counters.challengeAcksSuppressed == UInt64(100 - answered))
        #expect(t.state == .established)
        try t.run("""
            +1 < S 1000:1000(0) win 65535 <mss 1460>
            +0 > . 1:1(0) ack 1
            """)
        // The genuine peer's RST at RCV.NXT needs no challenge and is never throttled.
        try t.inject("+0 < R 1:1(0) win 0")
        #expect(t.state == .closed)
    }

    /// nil lifts the limit.
    @Test func noLimit() throws {
        var t = try TCPTester(.established) { $0.tcp.challengeAckLimit = nil }
        let reset = try t.datagram("+0 < R 2:2(0) win 0")
        for _ in 0..<3000 { t.inject(datagram: reset) }
        #expect(t.takeOutput().count == 3000)
        #expect(t.counters.challengeAcksSuppressed == 0)
    }

    /// The default (1000 a second) leaves the ordinary case alone.
    @Test func defaultLimitAnswersEveryChallengeOfAnOrdinaryPeer() throws {
        var t = try TCPTester(.established)
        for _ in 0..<20 {
            try t.run("""
                +0 < R 2:2(0) win 0
                +0 > . 1:1(0) ack 1
                """)
        }
        #expect(t.counters.challengeAcksSuppressed == 0)
    }
}
