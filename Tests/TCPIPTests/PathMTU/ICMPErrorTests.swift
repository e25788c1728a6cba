import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// ICMP errors into TCP: RFC 1122 §4.2.3.9 (hard and soft), RFC 5461 (which abort), RFC 5927 (only
/// errors that quote what we sent count).
@Suite struct ICMPErrorTests {
    /// RFC 5461 §4: a hard error (port unreachable) aborts a connection in SYN-SENT.
    @Test func hardErrorAbortsSynSent() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        t.icmp(.hard(.connectionRefused), quoting: 0)
        try t.expectNothing()
        #expect(t.state == .closed)
        #expect(t.status?.error == .connectionRefused)
        #expect(t.counters.icmpHardErrorAborts == 1)
    }

    /// A hard error for a half-open entry (SYN-RECEIVED) drops it, if it quotes our SYN-ACK's ISS.
    @Test func hardErrorDropsHalfOpenEntry() throws {
        var t = try TCPTester(.synReceived)
        t.icmp(.hard(.protocolUnreachable), quoting: 5)
        #expect(t.stack.halfOpenCount == 1)
        #expect(t.counters.icmpErrorsOutOfWindow == 1)
        t.icmp(.hard(.protocolUnreachable), quoting: 0)
        #expect(t.stack.halfOpenCount == 0)
        try t.expectNothing(for: .seconds(5))
    }

    /// RFC 5461 §4 / RFC 1122 §4.2.3.9: in ESTABLISHED a hard error is only noted, like a soft one;
    /// data still flows, and an acknowledgment forgets it.
    @Test func hardErrorInEstablishedIsSoft() throws {
        var t = try TCPTester(.established)
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        t.icmp(.hard(.connectionRefused), quoting: 1)
        #expect(t.state == .established)
        #expect(t.status?.softError == .connectionRefused)
        try t.inject("+.1 < . 1:1(0) ack 101 win 65535")
        #expect(t.status?.softError == nil)
        #expect(t.counters.icmpSoftErrors == 1)
    }

    /// RFC 1122 §4.2.3.9: a soft error never aborts; it is what the user sees if the connection then
    /// times out (SO_ERROR's soft error, as Linux's tcp_write_err reports sk_err_soft).
    @Test func softErrorSurfacesOnTimeout() throws {
        var t = try TCPTester(.established) { $0.tcp.maximumRetransmissions = 2 }
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        t.icmp(.soft(.hostUnreachable), quoting: 1)
        try t.expectNothing()
        #expect(t.state == .established)
        try t.expect("+.2 > P. 1:101(100) ack 1")
        try t.expect("+.4 > P. 1:101(100) ack 1")
        try t.expect("+.8 > R 101:101(0)")
        #expect(t.state == .closed)
        #expect(t.status?.error == .hostUnreachable)
    }

    /// Without a soft error, the same timeout reports ETIMEDOUT.
    @Test func timeoutWithoutSoftError() throws {
        var t = try TCPTester(.established) { $0.tcp.maximumRetransmissions = 2 }
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        try t.expect("+.2 > P. 1:101(100) ack 1")
        try t.expect("+.4 > P. 1:101(100) ack 1")
        try t.expect("+.8 > R 101:101(0)")
        #expect(t.status?.error == .timedOut)
    }

    /// The RFC 1122 §4.2.3.9 / RFC 5461 table, both families.
    @Test func classification() {
        #expect(TCPICMPError.ipv4Kind(type: 3, code: 3) == .hard(.connectionRefused))
        #expect(TCPICMPError.ipv4Kind(type: 3, code: 2) == .hard(.protocolUnreachable))
        #expect(TCPICMPError.ipv4Kind(type: 3, code: 1) == .soft(.hostUnreachable))
        #expect(TCPICMPError.ipv4Kind(type: 3, code: 0) == .soft(.networkUnreachable))
        #expect(TCPICMPError.ipv4Kind(type: 3, code: 13) == .soft(.hostUnreachable))
        #expect(TCPICMPError.ipv4Kind(type: 3, code: 4, nextHopMTU: 1280) == .fragmentationNeeded(nextHopMTU: 1280))
        #expect(TCPICMPError.ipv4Kind(type: 11, code: 0) == .soft(.hostUnreachable))
        #expect(TCPICMPError.ipv4Kind(type: 4, code: 0) == nil)
        #expect(TCPICMPError.ipv4Kind(type: 0, code: 0) == nil)
        #expect(TCPICMPError.ipv6Kind(type: 1, code: 4) == .hard(.connectionRefused))
        #expect(TCPICMPError.ipv6Kind(type: 1, code: 1) == .soft(.hostUnreachable))
        #expect(TCPICMPError.ipv6Kind(type: 2, code: 0, mtu: 1280) == .packetTooBig(mtu: 1280))
        #expect(TCPICMPError.ipv6Kind(type: 4, code: 1) == .hard(.protocolUnreachable))
        #expect(TCPICMPError.ipv6Kind(type: 128, code: 0) == nil)
    }

    /// The whole input path: an ICMP datagram from a router, parsed by the wire layer, reaches the
    /// connection; a forged one with a random sequence number changes nothing.
    @Test func fragmentationNeededDatagramThroughTheStack() throws {
        var t = try TCPTester(.established)
        try t.app.send(1460)
        try t.expect("+0 > P. 1:1461(1460) ack 1")
        let quoted = try #require(t.lastDatagramQuote(sequence: 1))
        let router = IPv4Address(198, 18, 255, 254)
        guard case .v4(let us) = t.localAddress else { return }
        var forged = quoted
        forged.setInteger(UInt32(0x1234_5678), at: forged.readerIndex + 24)
        t.inject(datagram: PacketBuffer.icmpv4Datagram(
            message: .destinationUnreachable(.fragmentationNeeded, nextHopMTU: 1280), body: forged, source: router, destination: us))
        try t.expectNothing()
        #expect(t.counters.icmpErrorsOutOfWindow == 1, "\(t.counters.all.filter { $0.value > 0 })")
        t.inject(datagram: PacketBuffer.icmpv4Datagram(
            message: .destinationUnreachable(.fragmentationNeeded, nextHopMTU: 1280), body: quoted, source: router, destination: us))
        try t.expect("+0 > . 1:1241(1240) ack 1")
        try t.expect("+0 > P. 1241:1461(220) ack 1")
        #expect(t.counters.pathMTUReductions == 1)
    }
}
