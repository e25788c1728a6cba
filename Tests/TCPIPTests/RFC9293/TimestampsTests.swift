import NIOCore
import TCPIP
import Testing

/// RFC 7323 timestamps: negotiation (§3.2), TS.Recent and echoing (§4.3), RTT measurement
/// (§4.1) and PAWS (§5).
@Suite struct TimestampsTests {
    static let peer = TCPTester.Peer(timestampValue: 1000)

    /// Every segment after the SYN carries our TSval and echoes TS.Recent; the options take 12
    /// octets off every segment (Eff.snd.MSS, RFC 9293 §3.7.1).
    @Test func segmentsCarryTimestamps() throws {
        var t = try TCPTester(.established, peer: Self.peer)
        #expect(t.status?.timestamps == true)
        #expect(t.status?.maximumSegmentSize == 1448)
        try t.app.send(2000)
        try t.expect("+0 > . 1:1449(1448) ack 1 <nop,nop,TS val * ecr 1000>")
        try t.inject("+.1 < . 1:1(0) ack 1449 win 65535 <nop,nop,TS val 1100 ecr *>")
        try t.expect("+0 > P. 1449:2001(552) ack 1 <nop,nop,TS val * ecr 1100>")
    }

    /// RFC 7323 §4: with timestamps every ACK measures the round trip, even one for a retransmission.
    @Test func rttFromTimestampEcho() throws {
        var t = try TCPTester(.listen)
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460,nop,nop,TS val 1000 ecr 0>")
        try t.expect("+0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,TS val * ecr 1000>")
        try t.inject("+.1 < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 1100 ecr *>")
        #expect(t.status?.smoothedRTT == .milliseconds(100))
        try t.app.send(1000)
        try t.expect("+0 > P. 1:1001(1000) ack 1 <nop,nop,TS val * ecr 1100>")
        try t.expect("+.3 > P. 1:1001(1000) ack 1 <nop,nop,TS val * ecr 1100>")
        try t.inject("+.1 < . 1:1(0) ack 1001 win 65535 <nop,nop,TS val 1500 ecr *>")
        #expect(t.status?.smoothedRTT == .milliseconds(100))
    }

    /// PAWS (RFC 7323 §5.3): a segment whose TSval is older than TS.Recent is a duplicate from an
    /// earlier wrap of the sequence space — dropped, acknowledged, counted; a newer one is taken.
    @Test func pawsDropsOldTimestamp() throws {
        var t = try TCPTester(.established, peer: Self.peer)
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535 <nop,nop,TS val 999 ecr *>")
        try t.expect("+0 > . 1:1(0) ack 1 <nop,nop,TS val * ecr 1000>")
        #expect(t.counters.pawsRejected == 1)
        #expect(try t.app.read() == .wouldBlock)
        try t.inject("+.01 < P. 1:101(100) ack 1 win 65535 <nop,nop,TS val 1001 ecr *>")
        try t.expect("+.04 > . 1:1(0) ack 101 <nop,nop,TS val * ecr 1001>")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 100)))
    }

    /// A bare ACK that fails PAWS is answered under the stack's limit on replies to unacceptable
    /// ACKs (RFC 5961 §7; Linux's tcp_oow_rate_limited): once a forged segment has pushed TS.Recent
    /// ahead, every ACK of the genuine peer fails PAWS, and a reply to each would have the two ends
    /// answer each other's ACKs without end. A segment with data is still answered every time.
    @Test func pawsReplyToBareAckIsRateLimited() throws {
        var t = try TCPTester(.established, peer: Self.peer) { $0.tcp.challengeAckLimit = 10 }
        let stale = try t.datagram("+0 < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 999 ecr 0>")
        for _ in 0..<100 { t.inject(datagram: stale) }
        let answered = t.takeOutput().count
        #expect((5..<15).contains(answered))
        #expect(t.counters.pawsRejected == 100)
        #expect(t.counters.invalidAckRepliesSuppressed == UInt64(100 - answered))
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535 <nop,nop,TS val 999 ecr 0>")
        try t.expect("+0 > . 1:1(0) ack 1 <nop,nop,TS val * ecr 1000>")
        #expect(t.counters.pawsRejected == 101)
        #expect(t.state == .established)
    }

    /// PAWS does not apply to an RST (RFC 7323 §5.3 R1: "... and the RST bit is off").
    @Test func pawsLetsResetThrough() throws {
        var t = try TCPTester(.established, peer: Self.peer)
        try t.inject("+0 < R 1:1(0) win 0 <nop,nop,TS val 5 ecr 0>")
        try t.expectNothing()
        #expect(t.state == .closed)
    }

    /// TSval wraps modulo 2^32 like sequence numbers: 4294967295 → 3 is newer, not older.
    @Test func timestampsCompareAcrossTheWrap() throws {
        var t = try TCPTester(.established, peer: .init(timestampValue: 4_294_967_290))
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535 <nop,nop,TS val 3 ecr *>")
        try t.expect("+.04 > . 1:1(0) ack 101 <nop,nop,TS val * ecr 3>")
        #expect(t.counters.pawsRejected == 0)
    }
}
