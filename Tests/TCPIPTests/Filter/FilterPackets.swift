import NIOCore
import TCPIP
import TCPIPWire

/// Datagrams for the filter tests, built with the wire types and parsed back as the stack would.
enum FilterPackets {
    static let client4 = IPv4Address(198, 18, 0, 1)
    static let server4 = IPv4Address(198, 18, 1, 1)
    static let client6 = IPv6Address("2001:db8::1")!
    static let server6 = IPv6Address("2001:db8::2")!

    static func datagram(_ bytes: ByteBuffer) -> IPDatagram {
        try! IPDatagram.parse(bytes, verifyChecksum: true)
    }

    /// A TCP segment from `source` to `destination`, its payload `length` octets.
    static func tcp(
        from source: IPAddress = .v4(client4), to destination: IPAddress = .v4(server4),
        _ sourcePort: UInt16 = 40000, _ destinationPort: UInt16 = 22, flags: TCPFlags,
        seq: UInt32 = 0, ack: UInt32 = 0, window: UInt16 = 65535, windowScale: UInt8? = nil, length: Int = 0,
        link: String? = nil
    ) -> FilterPacket {
        var buffer = PacketBuffer.make(payloadCapacity: length)
        buffer.writeRepeatingByte(0x61, count: length)
        let header = TCPHeader(
            sourcePort: sourcePort, destinationPort: destinationPort, sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(ack), flags: flags, window: window,
            options: TCPOptions(windowScale: windowScale))
        header.prepend(to: &buffer, source: source, destination: destination)
        ip(source, destination, IPProtocolNumber.tcp, &buffer)
        return FilterPacket(datagram(buffer), inputLink: link)
    }

    static func ip(_ source: IPAddress, _ destination: IPAddress, _ protocolNumber: UInt8, _ buffer: inout ByteBuffer) {
        switch (source, destination) {
        case (.v4(let s), .v4(let d)):
            IPv4Header(source: s, destination: d, protocolNumber: protocolNumber, payloadLength: buffer.readableBytes).prepend(to: &buffer)
        case (.v6(let s), .v6(let d)):
            IPv6Header(source: s, destination: d, nextHeader: protocolNumber, payloadLength: buffer.readableBytes).prepend(to: &buffer)
        default:
            preconditionFailure("mixed families")
        }
    }

    /// A UDP datagram (header written by hand: the wire types have no UDP yet).
    static func udp(
        from source: IPAddress = .v4(client4), to destination: IPAddress = .v4(server4),
        _ sourcePort: UInt16 = 5353, _ destinationPort: UInt16 = 53, length: Int = 10
    ) -> FilterPacket {
        var buffer = PacketBuffer.make(payloadCapacity: length + 8)
        buffer.writeInteger(sourcePort)
        buffer.writeInteger(destinationPort)
        buffer.writeInteger(UInt16(8 + length))
        buffer.writeInteger(UInt16(0))
        buffer.writeRepeatingByte(0x62, count: length)
        ip(source, destination, IPProtocolNumber.udp, &buffer)
        return FilterPacket(datagram(buffer))
    }

    /// An ICMP(v6) message: type, code, the 4 octets after the checksum, and a body.
    static func icmp(
        from source: IPAddress = .v4(client4), to destination: IPAddress = .v4(server4),
        type: UInt8, code: UInt8 = 0, identifier: UInt16 = 0, sequence: UInt16 = 0, body: [UInt8] = []
    ) -> FilterPacket {
        var buffer = PacketBuffer.make(payloadCapacity: 8 + body.count)
        buffer.writeInteger(type)
        buffer.writeInteger(code)
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(identifier)
        buffer.writeInteger(sequence)
        buffer.writeBytes(body)
        ip(source, destination, source.isV4Address ? IPProtocolNumber.icmp : IPProtocolNumber.icmpv6, &buffer)
        return FilterPacket(datagram(buffer))
    }

    /// The IP header and first 8 octets of a TCP segment, as an ICMP error quotes them.
    static func quote(from source: IPAddress, to destination: IPAddress, _ sourcePort: UInt16, _ destinationPort: UInt16, seq: UInt32) -> [UInt8] {
        var buffer = PacketBuffer.make(payloadCapacity: 0)
        TCPHeader(sourcePort: sourcePort, destinationPort: destinationPort, sequenceNumber: SequenceNumber(seq),
                  acknowledgmentNumber: SequenceNumber(0), flags: .ack, window: 1000).prepend(to: &buffer, source: source, destination: destination)
        ip(source, destination, IPProtocolNumber.tcp, &buffer)
        let headerLength = source.isV4Address ? 20 : 40
        return Array(buffer.readableBytesView.prefix(headerLength + 8))
    }
}

extension IPAddress {
    var isV4Address: Bool {
        if case .v4 = self { return true }
        return false
    }
}
