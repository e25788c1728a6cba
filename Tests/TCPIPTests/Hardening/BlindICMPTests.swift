import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// RFC 5927 §4.1 under attack: a blind attacker who knows a live connection's 4-tuple but not its
/// sequence numbers sprays ICMP errors of every kind, each quoting a random sequence number, through
/// the whole input path. None changes anything — no MSS lowered, no soft error, no abort, nothing
/// sent — every one is counted as ignored, and the transfer goes on at full size, every octet verified.
@Suite struct BlindICMPTests {
    @Test func randomQuotedSequenceNumbersChangeNothing() throws {
        var t = try TCPTester(.established)
        try t.app.send(2920)
        try t.expect("+0 > . 1:1461(1460) ack 1")
        try t.expect("+0 > P. 1461:2921(1460) ack 1")
        let quote = try #require(t.lastDatagramQuote(sequence: 1))
        guard case .v4(let us) = t.localAddress, let iss = t.iss else { return }
        let messages: [ICMPv4Message] = [
            .destinationUnreachable(.fragmentationNeeded, nextHopMTU: 576),
            .destinationUnreachable(.fragmentationNeeded, nextHopMTU: 0),
            .destinationUnreachable(.portUnreachable, nextHopMTU: 0),
            .destinationUnreachable(.protocolUnreachable, nextHopMTU: 0),
            .destinationUnreachable(.hostUnreachable, nextHopMTU: 0),
            .timeExceeded(code: 0),
            .parameterProblem(code: 0, pointer: 0),
        ]
        var random = SeededGenerator(seed: 5927)
        var sent = 0
        while sent < 2000 {
            let sequence = SequenceNumber(UInt32.random(in: 0...UInt32.max, using: &random))
            let offset = sequence.rawValue &- iss.rawValue
            // SND.UNA ≤ seq < SND.NXT is what a valid error quotes: a guess that lands there is no
            // longer blind (a chance of 2920 in 2^32 a try), and is skipped.
            if offset >= 1 && offset < 2921 { continue }
            var forged = quote
            forged.setInteger(sequence.rawValue, at: forged.readerIndex + 24)
            let router = IPv4Address(198, 18, UInt8.random(in: 1...254, using: &random), UInt8.random(in: 1...254, using: &random))
            t.inject(datagram: PacketBuffer.icmpv4Datagram(
                message: messages[sent % messages.count], body: forged, source: router, destination: us))
            sent += 1
        }
        try t.expectNothing()
        #expect(t.counters.icmpErrorsOutOfWindow == 2000, "\(t.counters.all.filter { $0.value > 0 })")
        #expect(t.counters.pathMTUReductions == 0 && t.counters.icmpSoftErrors == 0 && t.counters.icmpHardErrorAborts == 0)
        #expect(t.state == .established)
        #expect(t.status?.maximumSegmentSize == 1460 && t.status?.softError == nil)
        #expect(t.stack.pathMTUCacheCount == 0)

        // The transfer goes on, full-sized.
        try t.inject("+.1 < . 1:1(0) ack 2921 win 65535")
        try t.app.send(2920)
        try t.expect("+0 > . 2921:4381(1460) ack 1")
        try t.expect("+0 > P. 4381:5841(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 5841 win 65535")
        try t.expectNothing()
    }
}
