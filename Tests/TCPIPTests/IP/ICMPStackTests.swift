import NIOCore
import Testing
import TCPIP
import TCPIPWire

@Suite struct ICMPStackTests {
    /// RFC 1122 §3.2.2.6 / RFC 4443 §4.2: an echo request to our address gets a reply from it, with the
    /// identifier, sequence number and data exactly as they came.
    @Test(arguments: [4, 6]) func echoRequestIsAnsweredWithItsDataExactly(family: Int) throws {
        let t = IPTester()
        var random = SeededGenerator(seed: 792)
        let data = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &random) }
        t.inject(IPTester.echoRequest(family: family, identifier: 0xBEEF, sequence: 9, data: data))
        let sent = try t.sent()
        try #require(sent.count == 1)
        #expect(sent[0].source == IPTester.local(family) && sent[0].destination == IPTester.remote(family))
        if family == 4 {
            let reply = try ICMPv4Packet.parse(sent[0].payload)
            #expect(reply.message == .echoReply(identifier: 0xBEEF, sequenceNumber: 9))
            #expect(Array(reply.body.readableBytesView) == data)
            #expect(t.stack.counters.icmpInEchos == 1 && t.stack.counters.icmpOutEchoReplies == 1)
        } else {
            guard case .v6(let from) = sent[0].source, case .v6(let to) = sent[0].destination else { return }
            let reply = try ICMPv6Packet.parse(sent[0].payload, source: from, destination: to)
            #expect(reply.message == .echoReply(identifier: 0xBEEF, sequenceNumber: 9))
            #expect(Array(reply.body.readableBytesView) == data)
            #expect(t.stack.counters.icmp6InEchos == 1 && t.stack.counters.icmp6OutEchoReplies == 1)
        }
    }

    @Test func echoIsNotAnsweredWhenTurnedOffOrCorrupt() throws {
        let quiet = IPTester { $0.icmp.answersEcho = false }
        quiet.inject(IPTester.echoRequest(family: 4, data: [1, 2, 3]))
        #expect(try quiet.sent().isEmpty)

        let t = IPTester()
        var corrupt = IPTester.echoRequest(family: 6, data: [1, 2, 3])
        corrupt.setInteger(UInt8(9), at: corrupt.writerIndex - 1)
        t.inject(corrupt)
        #expect(try t.sent().isEmpty)
        #expect(t.stack.counters.icmp6InChecksumErrors == 1)
    }

    /// RFC 1122 §3.2.2.1: a protocol we do not speak gets protocol unreachable, quoting the datagram;
    /// RFC 8200 §4: over IPv6, parameter problem code 1 pointing at the Next Header field.
    @Test(arguments: [4, 6]) func unknownProtocolGetsProtocolUnreachable(family: Int) throws {
        let t = IPTester()
        let offending = IPTester.raw(family: family, protocolNumber: 253, payload: Array(0..<100))
        t.inject(offending)
        let sent = try t.sent()
        try #require(sent.count == 1)
        #expect(t.stack.counters.ipUnknownProtocol == 1)
        if family == 4 {
            let error = try ICMPv4Packet.parse(sent[0].payload)
            #expect(error.message == .destinationUnreachable(.protocolUnreachable, nextHopMTU: 0))
            #expect(error.body == offending)      // all of it fits in 576 octets
            #expect(error.description == "ICMP 198.18.0.2 protocol 253 unreachable, length 128")
        } else {
            guard case .v6(let from) = sent[0].source, case .v6(let to) = sent[0].destination else { return }
            let error = try ICMPv6Packet.parse(sent[0].payload, source: from, destination: to)
            #expect(error.message == .parameterProblem(code: 1, pointer: 6))
            #expect(error.body == offending)
        }
    }

    /// RFC 8200 §4: behind extension headers, the pointer names the last one's Next Header octet.
    @Test func parameterProblemPointsPastExtensionHeaders() throws {
        let t = IPTester()
        // A Destination Options header (8 octets, PadN) whose Next Header is 253.
        let options: [UInt8] = [253, 0, 1, 4, 0, 0, 0, 0]
        let offending = IPTester.raw(family: 6, protocolNumber: IPProtocolNumber.destinationOptions, payload: options + [1, 2, 3, 4, 5, 6, 7, 8])
        t.inject(offending)
        let sent = try t.sent()
        try #require(sent.count == 1)
        guard case .v6(let from) = sent[0].source, case .v6(let to) = sent[0].destination else { return }
        let error = try ICMPv6Packet.parse(sent[0].payload, source: from, destination: to)
        #expect(error.message == .parameterProblem(code: 1, pointer: 40))
        #expect(error.body == offending)
    }

    /// RFC 1812 §4.3.2.3 / RFC 4443 §2.4(c): the quote is cut so the error fits in 576 / 1280 octets.
    @Test(arguments: [4, 6]) func quotesAreCutToTheMinimumMTU(family: Int) throws {
        let t = IPTester { $0.mtu = 9000 }
        let offending = IPTester.raw(family: family, protocolNumber: 253, payload: [UInt8](repeating: 0xAB, count: 4000))
        t.inject(offending)
        let sent = t.stack.nextPacketToSend()
        let packet = try #require(sent)
        #expect(packet.readableBytes == (family == 4 ? 576 : 1280))
        let quoted = IPTester.raw(family: family, protocolNumber: 253, payload: [UInt8](repeating: 0xAB, count: 4000))
        let headers = family == 4 ? 28 : 48
        #expect(Array(packet.readableBytesView.dropFirst(headers)) == Array(quoted.readableBytesView.prefix(packet.readableBytes - headers)))
    }

    /// RFC 1122 §3.2.2 / RFC 4443 §2.4(e): no error about an ICMP error, a non-first fragment, or a
    /// datagram from an address that names no single host.
    @Test func errorsAreNeverSentWhereForbidden() throws {
        let t = IPTester()
        // A port unreachable about a UDP datagram, sent to a closed port... of a protocol we do not know
        // is impossible; instead: an ICMP error with a corrupt quote, and an unknown-protocol datagram from
        // a multicast and a broadcast source.
        for source in [IPv4Address(224, 0, 0, 1), IPv4Address(255, 255, 255, 255), IPv4Address(0, 0, 0, 0)] {
            var buffer = PacketBuffer.make(payloadCapacity: 8)
            buffer.writeBytes([UInt8](repeating: 0, count: 8))
            PacketBuffer.prependIPHeader(
                to: &buffer, source: .v4(source), destination: .v4(IPTester.local4), protocolNumber: 253)
            t.inject(buffer)
        }
        let multicast6 = IPv6Address("ff02::1")!
        var buffer6 = PacketBuffer.make(payloadCapacity: 8)
        buffer6.writeBytes([UInt8](repeating: 0, count: 8))
        PacketBuffer.prependIPHeader(to: &buffer6, source: .v6(multicast6), destination: .v6(IPTester.local6), protocolNumber: 253)
        t.inject(buffer6)
        // UDP to a closed port from a multicast source.
        t.inject(IPTester.udp(family: 4, to: 9, payload: [1], source: .v4(IPv4Address(239, 1, 1, 1))))
        #expect(try t.sent().isEmpty)
        #expect(t.stack.counters.icmpOutSuppressed == 5)
    }

    /// An ICMP error that arrives (here: port unreachable, quoting a UDP datagram of ours to a closed
    /// port of the peer) is never answered with an error, whatever it quotes.
    @Test(arguments: [4, 6]) func anICMPErrorIsNeverAnsweredWithOne(family: Int) throws {
        let t = IPTester()
        let ours = PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: 5000, destinationPort: 9), payload: ByteBuffer(bytes: [1, 2, 3]),
            source: IPTester.local(family), destination: IPTester.remote(family))
        let error: ByteBuffer
        if family == 4 {
            error = PacketBuffer.icmpv4Datagram(
                message: .destinationUnreachable(.portUnreachable, nextHopMTU: 0), body: ours,
                source: IPTester.remote4, destination: IPTester.local4)
        } else {
            error = PacketBuffer.icmpv6Datagram(
                message: .destinationUnreachable(.portUnreachable), body: ours,
                source: IPTester.remote6, destination: IPTester.local6)
        }
        t.inject(error)
        // And an unknown ICMP error type (ICMPv4 type 42 counts as an error), and a time exceeded.
        if family == 4 {
            t.inject(PacketBuffer.icmpv4Datagram(message: .timeExceeded(code: 0), body: ours,
                                                 source: IPTester.remote4, destination: IPTester.local4))
        }
        #expect(try t.sent().isEmpty)
        let received = family == 4 ? t.stack.counters.icmpInDestinationUnreachables : t.stack.counters.icmp6InDestinationUnreachables
        #expect(received == 1)
    }

    /// RFC 4443 §2.4(f): a storm of datagrams to closed ports gets no more errors than the token
    /// bucket holds plus what it refills.
    @Test func errorStormIsRateLimited() throws {
        var t = IPTester { $0.icmp.errorsPerSecond = 100; $0.icmp.errorBurst = 10 }
        var answered = 0
        // 10,000 datagrams over two seconds of virtual time: one every 200 µs.
        for index in 0..<10_000 {
            t.now = Instant(nanoseconds: Int64(index) * 200_000)
            t.inject(IPTester.udp(family: index % 2 == 0 ? 4 : 6, to: 9, payload: [UInt8(truncatingIfNeeded: index)]))
            answered += try t.sent().count
        }
        // The burst, then 100 a second for the two seconds.
        #expect(answered >= 200 && answered <= 10 + 200 + 1)
        #expect(t.stack.counters.udpNoPorts == 10_000)
        #expect(t.stack.counters.icmpOutRateLimited == UInt64(10_000 - answered))
    }

    @Test func countersReportLikeNetstat() throws {
        let t = IPTester()
        t.inject(IPTester.echoRequest(family: 4, data: [1]))
        t.inject(IPTester.udp(family: 4, to: 9, payload: [1]))
        _ = try t.sent()
        let report = t.stack.counters.report()
        #expect(report.contains("Icmp:"))
        #expect(report.contains("    1 echo requests received"))
        #expect(report.contains("IcmpMsg:"))
        #expect(report.contains("    InType8: 1"))
        #expect(report.contains("    OutType0: 1"))
        #expect(report.contains("    OutType3: 1"))
        #expect(report.contains("Udp:"))
        #expect(report.contains("    1 packets to unknown port received"))
    }
}
