import NIOCore
import TCPIPWire

/// The wire parsers as libFuzzer sees them: bytes in, no trap out. Each entry point parses its input
/// with and without checksum verification and, where a value can be written back, checks that what
/// it writes parses to itself (a parse → emit → parse fixed point). `Fuzz/` wraps each in an
/// `LLVMFuzzerTestOneInput`; the regression tests call them with the inputs that once failed.
public enum WireFuzzing {
    static let addressV4 = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    static let addressV6 = IPAddress("2001:db8::1")!

    /// `IPv4Header.parse`.
    public static func ipv4(_ bytes: UnsafeRawBufferPointer) {
        let buffer = packet(bytes)
        _ = try? IPv4Header.parse(buffer, verifyChecksum: false)
        guard let header = try? IPv4Header.parse(buffer, verifyChecksum: true) else { return }
        // What we write for this header carries no options; it must parse back to the same fields.
        var written = PacketBuffer.make(payloadCapacity: 0)
        let plain = IPv4Header(
            source: header.source, destination: header.destination, protocolNumber: header.protocolNumber,
            payloadLength: 0, timeToLive: header.timeToLive)
        plain.prepend(to: &written)
        guard let again = try? IPv4Header.parse(written, verifyChecksum: true) else {
            preconditionFailure("an IPv4 header we wrote does not parse")
        }
        precondition(again.source == plain.source && again.destination == plain.destination
            && again.protocolNumber == plain.protocolNumber && again.timeToLive == plain.timeToLive,
            "IPv4 header changed through emit and parse")
    }

    /// `IPv6Header.parse`.
    public static func ipv6(_ bytes: UnsafeRawBufferPointer) {
        guard let header = try? IPv6Header.parse(packet(bytes)) else { return }
        var written = PacketBuffer.make(payloadCapacity: 0)
        IPv6Header(source: header.source, destination: header.destination, nextHeader: header.nextHeader,
                   payloadLength: 0, hopLimit: header.hopLimit).prepend(to: &written)
        guard let again = try? IPv6Header.parse(written) else { preconditionFailure("an IPv6 header we wrote does not parse") }
        precondition(again.source == header.source && again.destination == header.destination
            && again.nextHeader == header.nextHeader && again.hopLimit == header.hopLimit,
            "IPv6 header changed through emit and parse")
    }

    /// `IPDatagram.parse` (IPv4 or IPv6 with its extension-header chain), then `TCPHeader.parse` of
    /// what it carries, as the stack's input path does.
    public static func datagram(_ bytes: UnsafeRawBufferPointer) {
        let buffer = packet(bytes)
        for verify in [false, true] {
            guard let datagram = try? IPDatagram.parse(buffer, verifyChecksum: verify) else { continue }
            precondition(datagram.payload.readableBytes <= buffer.readableBytes, "payload longer than the datagram")
            guard datagram.upperLayerProtocol == IPProtocolNumber.tcp else { continue }
            _ = try? TCPHeader.parse(
                datagram.payload, source: datagram.source, destination: datagram.destination, verifyChecksum: verify)
        }
    }

    /// `TCPHeader.parse` with `TCPOptions.parse`: the header and options of a segment. The written form
    /// of a parsed header must be a fixed point: writing and parsing it again changes nothing.
    public static func tcp(_ bytes: UnsafeRawBufferPointer) {
        let buffer = packet(bytes)
        _ = try? TCPHeader.parse(buffer, source: addressV6, destination: addressV6, verifyChecksum: true)
        guard let (header, payload) = try? TCPHeader.parse(
            buffer, source: addressV4, destination: addressV4, verifyChecksum: false)
        else { return }
        precondition(payload.readableBytes <= buffer.readableBytes, "payload longer than the segment")
        let first = roundTrip(header)
        let second = roundTrip(first)
        precondition(first == second, "TCP header is no fixed point of emit and parse: \(first) vs \(second)")
    }

    /// `UDPHeader.parse` over both families, with and without the checksum; a datagram that parses is
    /// written back with its ports and data and must parse, checksum verified, to the same.
    public static func udp(_ bytes: UnsafeRawBufferPointer) {
        let buffer = packet(bytes)
        _ = try? UDPHeader.parse(buffer, source: addressV6, destination: addressV6, verifyChecksum: true)
        _ = try? UDPHeader.parse(buffer, source: addressV4, destination: addressV4, verifyChecksum: true)
        guard let (header, payload) = try? UDPHeader.parse(
            buffer, source: addressV4, destination: addressV4, verifyChecksum: false)
        else { return }
        precondition(payload.readableBytes + UDPHeader.length == Int(header.length), "UDP data not as long as its length field")
        for address in [addressV4, addressV6] {
            var written = PacketBuffer.make(payloadCapacity: payload.readableBytes)
            written.writeImmutableBuffer(payload)
            UDPHeader(sourcePort: header.sourcePort, destinationPort: header.destinationPort)
                .prepend(to: &written, source: address, destination: address)
            guard let (again, data) = try? UDPHeader.parse(written, source: address, destination: address, verifyChecksum: true)
            else { preconditionFailure("a UDP datagram we wrote does not parse") }
            precondition(again.sourcePort == header.sourcePort && again.destinationPort == header.destinationPort
                && data == payload && again.checksum != 0, "UDP datagram changed through emit and parse")
        }
    }

    /// `ICMPv4Packet.parse` and `ICMPv6Packet.parse` (the quoted datagram included), with and without
    /// the checksum; a message that parses, written back with its body, must parse to the same message.
    public static func icmp(_ bytes: UnsafeRawBufferPointer) {
        let buffer = packet(bytes)
        guard case .v6(let v6) = addressV6 else { return }
        _ = try? ICMPv4Packet.parse(buffer, verifyChecksum: true)
        _ = try? ICMPv6Packet.parse(buffer, source: v6, destination: v6, verifyChecksum: true)
        if let packet = try? ICMPv4Packet.parse(buffer, verifyChecksum: false) {
            _ = packet.description
            var written = PacketBuffer.make(payloadCapacity: packet.body.readableBytes)
            written.writeImmutableBuffer(packet.body)
            packet.message.prepend(to: &written)
            guard let again = try? ICMPv4Packet.parse(written, verifyChecksum: true) else {
                preconditionFailure("an ICMP message we wrote does not parse: \(packet.message)")
            }
            precondition(again.message == packet.message && again.body == packet.body && again.quoted == packet.quoted,
                         "ICMP message changed through emit and parse: \(packet.message) vs \(again.message)")
        }
        if let packet = try? ICMPv6Packet.parse(buffer, source: v6, destination: v6, verifyChecksum: false) {
            _ = packet.description
            var written = PacketBuffer.make(payloadCapacity: packet.body.readableBytes)
            written.writeImmutableBuffer(packet.body)
            packet.message.prepend(to: &written, source: v6, destination: v6)
            guard let again = try? ICMPv6Packet.parse(written, source: v6, destination: v6, verifyChecksum: true) else {
                preconditionFailure("an ICMPv6 message we wrote does not parse: \(packet.message)")
            }
            precondition(again.message == packet.message && again.body == packet.body && again.quoted == packet.quoted,
                         "ICMPv6 message changed through emit and parse: \(packet.message) vs \(again.message)")
        }
    }

    /// IPv4 and IPv6 addresses in text (`IPAddress(_:)`, used by the CLI and the script parser).
    public static func addressText(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = IPv4Address(text)
        _ = IPv6Address(text)
        guard let address = IPAddress(text) else { return }
        precondition(IPAddress(address.description) == address, "address \(address) does not parse from its description")
    }

    static func roundTrip(_ header: TCPHeader) -> TCPHeader {
        var buffer = PacketBuffer.make(payloadCapacity: 0)
        header.prepend(to: &buffer, source: addressV4, destination: addressV4, computeChecksum: true)
        guard var (again, _) = try? TCPHeader.parse(buffer, source: addressV4, destination: addressV4, verifyChecksum: true)
        else { preconditionFailure("a TCP header we wrote does not parse: \(header)") }
        again.checksum = 0
        return again
    }

    /// The input behind `PacketBuffer.headroom` octets, as a datagram from a link would be.
    static func packet(_ bytes: UnsafeRawBufferPointer) -> ByteBuffer {
        var buffer = PacketBuffer.make(payloadCapacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }
}
