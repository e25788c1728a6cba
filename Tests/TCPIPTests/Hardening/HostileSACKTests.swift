import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// SACK blocks are the peer's to choose: reversed, beyond what was sent, half the space away, or
/// reporting data that then never arrives. Each is ignored and counted, or believed only as far as
/// the scoreboard's bound; nothing traps, and the transfer still completes by retransmission.
@Suite struct HostileSACKTests {
    @Test func nonsenseBlocksAreIgnoredAndCounted() throws {
        var t = try TCPTester(.established, peer: .init(sackPermitted: true, repeatsSYN: true))
        try t.app.send(4 * 1460)
        for segment in 0..<4 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > \(segment == 3 ? "P." : ".") \(start):\(start + 1460)(1460) ack 1")
        }
        // Reversed, entirely beyond SND.MAX, half the sequence space away, and wrapping all of it.
        try t.inject("+.1 < . 1:1(0) ack 1 win 65535 <sack 3000:2000>")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535 <sack 100000:200000>")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535 <sack 2147483648:2147484648>")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535 <sack 5841:1>")
        #expect(t.counters.sackBlocksInvalid >= 4)
        #expect(t.status?.sackedBytes == 0)
        try t.expectNothing()
        // Then everything but the first octet is SACKed, and the peer reneges (RFC 2018 §8): it
        // acknowledges that octet alone and never the rest. The timeout must resend the SACKed data.
        try t.inject("+0 < . 1:1(0) ack 1 win 65535 <sack 2:5841>")
        #expect((t.status?.sackedBytes ?? 0) == 5839)
        try t.expect("+0 > . 1:2(1) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 2 win 65535")
        t.advance(by: .seconds(3))
        let iss = try #require(t.iss)
        let afterTimeout = t.takeSegments()
        #expect(afterTimeout.contains { $0.sequenceNumber == iss + 2 })
        #expect(t.state == .established)
    }
}
