import NIOCore
import Testing
import TCPIPWire

@Suite struct ICMPMessageTests {
    /// Echo request id 0x1234 seq 1 with "abcdefgh": RFC 792 checksum over the message alone (0x5435), and
    /// RFC 4443 §2.3's over the pseudo-header too (0x8075, 2001:db8::1 to ::2), summed word by word.
    @Test func knownEchoChecksums() throws {
        let data = ByteBuffer(string: "abcdefgh")
        let v4 = PacketBuffer.icmpv4Datagram(
            message: .echoRequest(identifier: 0x1234, sequenceNumber: 1), body: data,
            source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2))
        #expect(Array(v4.readableBytesView.dropFirst(20)) == [8, 0] + be16(0x5435) + be16(0x1234) + be16(1) + Array("abcdefgh".utf8))
        guard case .v6(let source) = v6Source, case .v6(let destination) = v6Destination else { return }
        let v6 = PacketBuffer.icmpv6Datagram(
            message: .echoRequest(identifier: 0x1234, sequenceNumber: 1), body: data, source: source, destination: destination)
        #expect(Array(v6.readableBytesView.dropFirst(40)) == [128, 0] + be16(0x8075) + be16(0x1234) + be16(1) + Array("abcdefgh".utf8))

        let datagram = try IPDatagram.parse(v6)
        let packet = try ICMPv6Packet.parse(datagram.payload, source: source, destination: destination)
        #expect(packet.message == .echoRequest(identifier: 0x1234, sequenceNumber: 1))
        #expect(String(buffer: packet.body) == "abcdefgh")
        #expect(packet.description == "ICMP6, echo request, id 4660, seq 1, length 16")
        let v4Packet = try ICMPv4Packet.parse(try IPDatagram.parse(v4).payload)
        #expect(v4Packet.description == "ICMP echo request, id 4660, seq 1, length 16")
        #expect(v4Packet.quoted == nil)
    }

    @Test func everyMessageRoundTripsThroughTheWire() throws {
        let messages: [ICMPv4Message] = [
            .echoReply(identifier: 1, sequenceNumber: 65535), .echoRequest(identifier: 65535, sequenceNumber: 0),
            .destinationUnreachable(.fragmentationNeeded, nextHopMTU: 1280),
            .destinationUnreachable(.portUnreachable, nextHopMTU: 0), .timeExceeded(code: 1),
            .parameterProblem(code: 0, pointer: 9), .other(type: 13, code: 0, restOfHeader: 0xDEAD_BEEF),
        ]
        let quote = rawIPv4(protocolNumber: 17, payload: be16(40000) + be16(9) + be16(100) + be16(0x1234) + [1, 2])
        for message in messages {
            let body = message.isError ? quote : ByteBuffer(bytes: [1, 2, 3])
            var buffer = PacketBuffer.make(payloadCapacity: body.readableBytes)
            buffer.writeImmutableBuffer(body)
            message.prepend(to: &buffer)
            let packet = try ICMPv4Packet.parse(buffer)
            #expect(packet.message == message)
            #expect(packet.body == body)
            #expect((packet.quoted != nil) == message.isError)
        }
        let messages6: [ICMPv6Message] = [
            .destinationUnreachable(.portUnreachable), .packetTooBig(mtu: 1280), .timeExceeded(code: 0),
            .parameterProblem(code: 1, pointer: 6), .echoRequest(identifier: 7, sequenceNumber: 8),
            .echoReply(identifier: 9, sequenceNumber: 10), .other(type: 135, code: 0, restOfHeader: 0),
        ]
        let quote6 = rawIPv6(nextHeader: 6, rest: be16(80) + be16(40000) + be32(0xFFFF_FFF0) + be32(0))
        guard case .v6(let source) = v6Source, case .v6(let destination) = v6Destination else { return }
        for message in messages6 {
            let body = message.isError ? quote6 : ByteBuffer(bytes: [1, 2, 3])
            var buffer = PacketBuffer.make(payloadCapacity: body.readableBytes)
            buffer.writeImmutableBuffer(body)
            message.prepend(to: &buffer, source: source, destination: destination)
            let packet = try ICMPv6Packet.parse(buffer, source: source, destination: destination)
            #expect(packet.message == message)
            #expect(packet.body == body)
            #expect((packet.quoted != nil) == message.isError)
            // The checksum covers the pseudo-header: the same bytes between other addresses do not verify.
            #expect(throws: WireError.badChecksum) {
                try ICMPv6Packet.parse(buffer, source: destination, destination: IPv6Address(high: 1, low: 1))
            }
        }
    }

    /// RFC 1191 §4: fragmentation needed carries the next-hop MTU in the low 16 bits; the quote gives the
    /// flow (ports, TCP sequence number) it concerns.
    @Test func fragmentationNeededExposesMTUAndQuotedTCPSegment() throws {
        let segment = rawTCPSegment(payload: [UInt8](repeating: 7, count: 1000))
        // The quote is cut short of the 1040-octet original, as routers do.
        var quote = rawIPv4(totalLength: 20 + segment.readableBytes, payload: Array(segment.readableBytesView))
        quote.moveWriterIndex(to: quote.readerIndex + 20 + 28)
        let bytes: [UInt8] = [3, 4, 0, 0, 0, 0] + be16(1280) + Array(quote.readableBytesView)
        var message = ByteBuffer(bytes: bytes)
        let checksum = referenceChecksum(bytes)
        message.setInteger(checksum, at: 2)
        let packet = try ICMPv4Packet.parse(message)
        #expect(packet.message == .destinationUnreachable(.fragmentationNeeded, nextHopMTU: 1280))
        let quoted = try #require(packet.quoted)
        #expect(quoted.source == v4Source && quoted.destination == v4Destination)
        #expect(quoted.upperLayerProtocol == IPProtocolNumber.tcp)
        #expect(quoted.sourcePort == 40000 && quoted.destinationPort == 80)
        #expect(quoted.tcpSequenceNumber == SequenceNumber(0xFFFF_FF00))
        #expect(quoted.upperLayerBytes.readableBytes == 28)
        guard case .v4(let header) = quoted.header else { Issue.record("not IPv4"); return }
        #expect(header.totalLength == 1040)
        #expect(packet.description == "ICMP 198.18.0.2 unreachable - need to frag (mtu 1280), length 56")
    }

    @Test func descriptionsFollowTcpdump() throws {
        let udpQuote = rawIPv4(protocolNumber: 17, payload: be16(40000) + be16(9) + be16(8) + be16(0))
        var port = PacketBuffer.make(payloadCapacity: 28)
        port.writeImmutableBuffer(udpQuote)
        ICMPv4Message.destinationUnreachable(.portUnreachable, nextHopMTU: 0).prepend(to: &port)
        #expect(try ICMPv4Packet.parse(port).description == "ICMP 198.18.0.2 udp port 9 unreachable, length 36")

        let protocolQuote = rawIPv4(protocolNumber: 253, payload: [UInt8](repeating: 0, count: 8))
        var proto = PacketBuffer.make(payloadCapacity: 28)
        proto.writeImmutableBuffer(protocolQuote)
        ICMPv4Message.destinationUnreachable(.protocolUnreachable, nextHopMTU: 0).prepend(to: &proto)
        #expect(try ICMPv4Packet.parse(proto).description == "ICMP 198.18.0.2 protocol 253 unreachable, length 36")

        guard case .v6(let source) = v6Source, case .v6(let destination) = v6Destination else { return }
        let quote6 = rawIPv6(nextHeader: 17, rest: be16(40000) + be16(9) + be16(8) + be16(0))
        var unreachable = PacketBuffer.make(payloadCapacity: 48)
        unreachable.writeImmutableBuffer(quote6)
        ICMPv6Message.destinationUnreachable(.portUnreachable).prepend(to: &unreachable, source: source, destination: destination)
        #expect(try ICMPv6Packet.parse(unreachable, source: source, destination: destination).description
            == "ICMP6, destination unreachable, unreachable port 2001:db8::2 udp port 9, length 56")
        var tooBig = PacketBuffer.make(payloadCapacity: 48)
        tooBig.writeImmutableBuffer(quote6)
        ICMPv6Message.packetTooBig(mtu: 1280).prepend(to: &tooBig, source: source, destination: destination)
        #expect(try ICMPv6Packet.parse(tooBig, source: source, destination: destination).description
            == "ICMP6, packet too big, mtu 1280, length 56")
    }

    /// RFC 4443 §2.4(c) quotes may carry extension headers: the walk finds the transport header behind
    /// a Fragment header, and a non-first fragment has no ports.
    @Test func quotedIPv6WalksExtensionHeaders() throws {
        let first = rawIPv6(nextHeader: 44, rest: [17, 0, 0x00, 0x01] + be32(99) + be16(5) + be16(6) + be32(0))
        let quoted = try ICMPQuotedDatagram.parse(first, family: 6)
        #expect(quoted.upperLayerProtocol == IPProtocolNumber.udp)
        #expect(quoted.sourcePort == 5 && quoted.destinationPort == 6)
        let later = rawIPv6(nextHeader: 44, rest: [17, 0, 0x00, 0x08] + be32(99) + be16(5) + be16(6) + be32(0))
        let laterQuoted = try ICMPQuotedDatagram.parse(later, family: 6)
        #expect(laterQuoted.isNonFirstFragment && laterQuoted.sourcePort == nil)
    }

    @Test func malformedMessagesAreTypedErrors() {
        #expect(throws: WireError.truncated) { try ICMPv4Packet.parse(ByteBuffer(bytes: [8, 0, 0, 0])) }
        // An error quoting fewer than eight octets of the original payload, or an IPv6 header.
        for quote in [rawIPv4(protocolNumber: 6, payload: [1, 2, 3, 4]), rawIPv6(nextHeader: 6, rest: [UInt8](repeating: 0, count: 8))] {
            var buffer = PacketBuffer.make(payloadCapacity: quote.readableBytes)
            buffer.writeImmutableBuffer(quote)
            ICMPv4Message.timeExceeded(code: 0).prepend(to: &buffer)
            #expect(throws: WireError.badQuotedDatagram) { try ICMPv4Packet.parse(buffer) }
        }
        var corrupt = PacketBuffer.make(payloadCapacity: 4)
        corrupt.writeBytes([1, 2, 3, 4])
        ICMPv4Message.echoRequest(identifier: 1, sequenceNumber: 1).prepend(to: &corrupt)
        corrupt.setInteger(UInt8(0), at: corrupt.writerIndex - 1)
        #expect(throws: WireError.badChecksum) { try ICMPv4Packet.parse(corrupt) }
    }

    /// Random bytes never trap: every outcome is a packet or a typed error.
    @Test func randomBytesNeverTrap() {
        var random = WireTestGenerator(seed: 4443)
        guard case .v6(let source) = v6Source, case .v6(let destination) = v6Destination else { return }
        for _ in 0..<2000 {
            let count = Int.random(in: 0..<120, using: &random)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            if count > 28, Bool.random(using: &random) { bytes[8] = 0x45 }
            if count > 48, Bool.random(using: &random) { bytes[8] = 0x60 }
            let buffer = ByteBuffer(bytes: bytes)
            _ = try? ICMPv4Packet.parse(buffer, verifyChecksum: false)
            _ = try? ICMPv6Packet.parse(buffer, source: source, destination: destination, verifyChecksum: false)
            _ = try? UDPHeader.parse(buffer, source: v4Source, destination: v4Destination, verifyChecksum: false)
        }
    }
}
