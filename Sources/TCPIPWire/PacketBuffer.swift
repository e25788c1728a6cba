import NIOCore

/// Packet buffers with headroom: the sk_buff of this stack.
///
/// A payload is written once behind `headroom` free octets; TCP, then IP, write their headers into the
/// headroom in place, so nothing is copied on the way down.
///
///     |<----------- headroom ----------->|<---- payload ---->|
///                         |<- IP ->|<TCP>|
///                         ^ reader index after both prepends
public enum PacketBuffer {
    /// Room for the largest IPv6 + TCP header (40 + 60) in front of a payload, rounded up.
    public static let headroom = 128

    /// An empty buffer with `headroom` free octets in front and room for `payloadCapacity` octets after.
    public static func make(
        payloadCapacity: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: headroom + max(payloadCapacity, 0))
        buffer.moveWriterIndex(to: headroom)
        buffer.moveReaderIndex(to: headroom)
        return buffer
    }

    /// One IP datagram carrying a TCP segment: copies `payload` once behind the headroom, then prepends the
    /// TCP header and an IPv4 or IPv6 header.
    ///
    /// - Precondition: `source` and `destination` are of the same family.
    public static func tcpDatagram(
        header: TCPHeader, payload: ByteBuffer?, source: IPAddress, destination: IPAddress,
        computeChecksum: Bool = true, timeToLive: UInt8 = 64, ecn: ECNCodepoint = .notECT,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        tcpDatagram(
            header: header, payloadLength: payload?.readableBytes ?? 0, source: source, destination: destination,
            computeChecksum: computeChecksum, timeToLive: timeToLive, ecn: ecn, allocator: allocator
        ) { buffer in
            if let payload { buffer.writeImmutableBuffer(payload) }
        }
    }

    /// One IP datagram carrying a TCP segment whose payload `writePayload` writes (exactly
    /// `payloadLength` octets) straight into the packet buffer — the send path's single copy.
    /// `ecn` is the IP header's ECN field (RFC 3168 §5): the IPv4 TOS or IPv6 Traffic Class low bits.
    @inlinable
    public static func tcpDatagram(
        header: TCPHeader, payloadLength: Int, source: IPAddress, destination: IPAddress,
        computeChecksum: Bool = true, timeToLive: UInt8 = 64, ecn: ECNCodepoint = .notECT,
        allocator: ByteBufferAllocator = ByteBufferAllocator(),
        writePayload: (inout ByteBuffer) -> Void
    ) -> ByteBuffer {
        var buffer = make(payloadCapacity: payloadLength, allocator: allocator)
        writePayload(&buffer)
        header.prepend(to: &buffer, source: source, destination: destination, computeChecksum: computeChecksum)
        switch (source, destination) {
        case (.v4(let source), .v4(let destination)):
            IPv4Header(
                source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
                payloadLength: buffer.readableBytes, timeToLive: timeToLive, typeOfService: ecn.rawValue
            ).prepend(to: &buffer)
        case (.v6(let source), .v6(let destination)):
            var header = IPv6Header(
                source: source, destination: destination, nextHeader: IPProtocolNumber.tcp,
                payloadLength: buffer.readableBytes, hopLimit: timeToLive
            )
            header.trafficClass = ecn.rawValue
            header.prepend(to: &buffer)
        default:
            preconditionFailure("TCP datagram with mixed address families: \(source), \(destination)")
        }
        return buffer
    }
}
