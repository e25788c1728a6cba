import NIOCore

/// The UDP header of RFC 768, as a value.
///
///      0      7 8     15 16    23 24    31
///     +--------+--------+--------+--------+
///     |     Source      |   Destination   |
///     |      Port       |      Port       |
///     +--------+--------+--------+--------+
///     |                 |                 |
///     |     Length      |    Checksum     |
///     +--------+--------+--------+--------+
///
/// `length` and `checksum` are as parsed; `prepend(to:source:destination:)` computes both.
public struct UDPHeader: Hashable, Sendable {
    /// Octets of the header.
    public static let length = 8

    /// The sender's port (0: none, no reply expected).
    public var sourcePort: UInt16
    /// The receiver's port.
    public var destinationPort: UInt16
    /// Header and data, in octets (RFC 768): as parsed.
    public var length: UInt16
    /// As parsed; 0 means the sender computed none (IPv4 only).
    public var checksum: UInt16

    /// A header with these ports; `length` and `checksum` are computed when it is written.
    public init(sourcePort: UInt16, destinationPort: UInt16) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.length = UInt16(UDPHeader.length)
        self.checksum = 0
    }

    /// The most data one UDP datagram can carry: the length field counts the header too.
    public static let maximumPayloadLength = Int(UInt16.max) - length

    /// Parses a UDP datagram: `datagram`'s readable bytes are the IP payload (`IPDatagram.payload`).
    ///
    /// RFC 768: the length field covers header and data; octets beyond it (IP padding) are not data.
    /// RFC 768 / RFC 1122 §4.1.3.4: a zero checksum over IPv4 means none was computed, and the datagram
    /// is accepted; RFC 8200 §8.1: over IPv6 the checksum is mandatory, and a zero one is dropped.
    /// - Returns: the header and the data: `datagram` itself, its indices moved to the data (`consuming`:
    ///   no slice, so no second reference to the storage).
    public static func parse(
        _ datagram: consuming ByteBuffer, source: IPAddress, destination: IPAddress, verifyChecksum: Bool = true
    ) throws(WireError) -> (header: UDPHeader, payload: ByteBuffer) {
        let available = datagram.readableBytes
        guard available >= length else { throw .truncated }
        let fields = datagram.withWireReader { reader in
            (source: reader.wireUInt16(at: 0), destination: reader.wireUInt16(at: 2),
             length: reader.wireUInt16(at: 4), checksum: reader.wireUInt16(at: 6))
        }
        let datagramLength = Int(fields.length)
        // RFC 768: the minimum value of the length is eight; a length past the IP payload is a lie.
        guard datagramLength >= length, datagramLength <= available else { throw .badLength }
        if fields.checksum == 0 {
            if case .v6 = source { throw .missingChecksum }
        } else if verifyChecksum {
            var sum = InternetChecksum()
            sum.addPseudoHeader(
                source: source, destination: destination, protocolNumber: IPProtocolNumber.udp,
                upperLayerLength: datagramLength)
            datagram.addToChecksum(&sum, offset: 0, length: datagramLength)
            guard sum.checksum == 0 else { throw .badChecksum }
        }
        var header = UDPHeader(sourcePort: fields.source, destinationPort: fields.destination)
        header.length = fields.length
        header.checksum = fields.checksum
        try datagram.narrow(toOffset: length, length: datagramLength - length)
        return (header, datagram)
    }

    /// Writes the header into the headroom in front of `buffer`'s readable bytes (the data) and moves the
    /// reader index back over it, with the length and the checksum over pseudo-header, header and data.
    ///
    /// RFC 768: a computed checksum of zero is sent as all ones, since zero means "no checksum" — which
    /// we never send (RFC 1122 §4.1.3.4 says it MUST default to checksumming; RFC 8200 §8.1 forbids it).
    /// - Precondition: `buffer.readerIndex >= 8`, the data is at most `maximumPayloadLength` octets, and
    ///   the addresses are of one family.
    public func prepend(to buffer: inout ByteBuffer, source: IPAddress, destination: IPAddress) {
        precondition(buffer.readerIndex >= UDPHeader.length, "no headroom for a UDP header")
        let total = UDPHeader.length + buffer.readableBytes
        precondition(total <= Int(UInt16.max), "UDP datagram of \(total) octets")
        buffer.prependWire(length: UDPHeader.length) { header in
            header.store(sourcePort, at: 0)
            header.store(destinationPort, at: 2)
            header.store(UInt16(total), at: 4)
            header.store(UInt16(0), at: 6)
        }
        var sum = InternetChecksum()
        sum.addPseudoHeader(
            source: source, destination: destination, protocolNumber: IPProtocolNumber.udp, upperLayerLength: total)
        sum.add(buffer)
        let checksum = sum.checksum
        buffer.setInteger(checksum == 0 ? 0xFFFF : checksum, at: buffer.readerIndex + 6, endianness: .big)
    }
}

extension UDPHeader: CustomStringConvertible {
    /// tcpdump's notation, e.g. `UDP, length 5` (the data's length).
    public var description: String {
        "UDP, length \(max(Int(length) - UDPHeader.length, 0))"
    }
}
