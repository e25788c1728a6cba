import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// What a hostile or broken peer controls — option values, sequence and acknowledgment numbers
/// half the space away, floods — is clamped, answered or dropped, and never traps.
@Suite struct HostileSegmentTests {
    /// RFC 7323 §2.3: a shift above 14 is used as 14; the largest window then still fits.
    @Test func windowScaleAbove14IsClamped() throws {
        var t = try TCPTester(.listen)
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460,nop,wscale 15>")
        try t.expect("+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 3>")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        #expect(t.status?.sendWindowScale == 14)
        #expect(t.status?.sendWindow == 65535 << 14)
        try t.app.send(1000)
        try t.expect("+0 > P. 1:1001(1000) ack 1")
    }

    /// An absurdly small MSS is raised to 64 octets rather than making the sender loop on tiny
    /// (or empty) segments.
    @Test func tinyMSSIsRaised() throws {
        var t = try TCPTester(.established, peer: .init(maximumSegmentSize: 1))
        #expect(t.status?.maximumSegmentSize == 64)
        try t.app.send(100)
        try t.expect("+0 > . 1:65(64) ack 1")
    }

    /// SYN and FIN together is malformed: dropped and counted before any state sees it.
    @Test func synFinIsDropped() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < SF. 1:1(0) ack 1 win 65535")
        try t.expectNothing()
        #expect(t.counters.badSegments == 1)
        #expect(t.state == .established)
    }

    /// Acknowledgment numbers half the sequence space away, either way, are neither new data
    /// acknowledged nor a trap: an ACK or a challenge ACK, nothing else changes.
    @Test func acknowledgmentsHalfTheSpaceAway() throws {
        var t = try TCPTester(.established)
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        for ack in [2_147_483_648, 2_147_483_649, 2_147_483_747, 3_000_000_000] as [UInt32] {
            try t.inject("+0 < . 1:1(0) ack \(ack) win 65535")
            try t.expect("+0 > . 101:101(0) ack 1")
        }
        // Just below SND.UNA, within MAX.SND.WND: an old duplicate, ignored (RFC 5961 §5.2).
        try t.inject("+0 < . 1:1(0) ack 4294967295 win 65535")
        try t.inject("+0 < . 1:1(0) ack 0 win 65535")
        try t.expectNothing()
        #expect(t.status?.sendQueue == 100)
        try t.inject("+.1 < . 1:1(0) ack 101 win 65535")
        #expect(t.status?.sendQueue == 0)
    }

    /// Sequence numbers half the space away are outside any window: ACKed, never delivered.
    @Test func sequenceNumbersHalfTheSpaceAway() throws {
        var t = try TCPTester(.established)
        for seq in [2_147_483_648, 2_147_483_649, 4_294_967_000] as [UInt32] {
            try t.inject("+0 < P. \(seq):\(seq &+ 100)(100) ack 1 win 65535")
            try t.expect("+0 > . 1:1(0) ack 1")
        }
        #expect(try t.app.read() == .wouldBlock)
        #expect(t.status?.outOfOrderBytes == 0)
    }

    /// RFC 5961 §5.2: data whose ACK is older than SND.UNA - MAX.SND.WND is blind injection — its
    /// text is discarded and a challenge ACK sent.
    @Test func blindDataInjectionIsDiscarded() throws {
        var t = try TCPTester(.established)
        try t.app.send(1000)
        try t.expect("+0 > P. 1:1001(1000) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1001 win 65535")
        try t.inject("+0 < P. 1:101(100) ack 4294901000 win 65535")
        try t.expect("+0 > . 1001:1001(0) ack 1")
        #expect(try t.app.read() == .wouldBlock)
        #expect(t.counters.challengeAcksSent == 1)
    }

    /// A FIN just past a full window is kept (DEVIATION from RFC 9293 §3.10.7.4, as Linux): it
    /// needs no buffer space.
    @Test func finJustPastAFullWindowIsKept() throws {
        var t = try TCPTester(.established) { $0.tcp.receiveBufferSize = 1000 }
        try t.inject("+0 < F. 1:1001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1002 win 0")
        #expect(t.state == .closeWait)
    }

    /// The out-of-order queue is bounded by the storage it pins: a peer scattering small segments
    /// past a hole is dropped once over the limit, and the connection still delivers in order.
    @Test func outOfOrderFloodIsBounded() throws {
        var t = try TCPTester(.established) { $0.tcp.reassemblyLimit = 16 * 1024 }
        for index in 0..<200 {
            let start = 1001 + 200 * index
            t.inject(datagram: try t.datagram("+0 < . \(start):\(start + 100)(100) ack 1 win 65535"))
        }
        #expect(t.takeOutput().count == 200)   // a duplicate ACK for each
        #expect(t.counters.droppedReassemblyLimit > 0)
        #expect(try #require(t.status).outOfOrderBytes < 16 * 1024)
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        let acks = t.takeOutput()
        #expect(acks.count == 1 && acks[0].hasPrefix("> . 1:1(0) ack 1101"))
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 1100)))
    }

    /// A SYN flood fills the SYN queue to its limit and no further; the listener keeps answering
    /// once entries expire.
    @Test func synFloodIsBoundedBySynQueue() throws {
        var t = try TCPTester(.closed) {
            $0.tcp.synQueueLimit = 8
            $0.tcp.maximumSYNRetransmissions = 1
        }
        // The SYN queue holds max(backlog, synQueueLimit) entries.
        t.listener = try t.stack.listen(on: TCPTester.listenPort, backlog: 4)
        for port in 10_000..<10_020 as Range<UInt16> {
            t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: port))
        }
        // Every SYN past the bound is either dropped and counted or, with SYN cookies (RFC 4987
        // §3.6), answered without keeping state: the queue itself never grows past 8.
        let answered = t.takeOutput().count
        #expect(t.stack.halfOpenCount == 8)
        #expect(answered >= 8 && answered + Int(t.counters.synQueueDrops) == 20)
        t.advance(by: .seconds(1))
        #expect(t.takeOutput().count == 8)   // one SYN-ACK retransmission each
        t.advance(by: .seconds(2))
        #expect(t.stack.halfOpenCount == 0)
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+0 > S. 0:0(0) ack 1")
    }

    /// Seeded random damage to the header of valid segments — flags, numbers, window, options —
    /// fed to a listener and an established connection: nothing traps, and the connection,
    /// unless the damage happened to reset it, still carries data.
    @Test(arguments: [1, 2, 3] as [UInt64]) func randomHeaderDamage(seed: UInt64) throws {
        var t = try TCPTester(.established)
        var random = SeededGenerator(seed: seed)
        let templates = [
            "+0 < P. 1:101(100) ack 1 win 65535", "+0 < . 1:1(0) ack 1 win 65535",
            "+0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>",
            "+0 < F. 1:1(0) ack 1 win 65535", "+0 < R 1:1(0) win 0",
        ]
        for _ in 0..<5_000 {
            var datagram = try t.datagram(templates.randomElement(using: &random)!,
                                         fromPort: Bool.random(using: &random) ? TCPTester.remotePort : 6000)
            // Damage 1-4 octets of the TCP header (after the 20-octet IPv4 header).
            let headerLength = Int(datagram.getInteger(at: datagram.readerIndex + 32, as: UInt8.self)! >> 4) * 4
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let offset = datagram.readerIndex + 20 + Int.random(in: 0..<headerLength, using: &random)
                datagram.setInteger(UInt8.random(in: 0...255, using: &random), at: offset)
            }
            t.inject(datagram: datagram)
            _ = t.takeOutput()
            t.advance(by: .milliseconds(Int64.random(in: 0...50, using: &random)))
        }
        _ = t.takeOutput()
        #expect(t.stack.connectionCount <= 2)
        if t.state == .established {
            // Damage may have shrunk the peer's window, but never the send buffer.
            #expect(try t.app.send(100) == 100)
            #expect(t.takeOutput().count <= 1)
        }
    }
}
