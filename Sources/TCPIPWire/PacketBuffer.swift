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
        tcpDatagram(
            in: make(payloadCapacity: payloadLength, allocator: allocator), header: header, source: source,
            destination: destination, computeChecksum: computeChecksum, timeToLive: timeToLive, ecn: ecn,
            writePayload: writePayload)
    }

    /// The same datagram, built in `buffer`: an empty buffer with `headroom` free octets in front, as
    /// `make` or `PacketRecycler.make` return.
    @inlinable
    public static func tcpDatagram(
        in buffer: consuming ByteBuffer, header: TCPHeader, source: IPAddress, destination: IPAddress,
        computeChecksum: Bool = true, timeToLive: UInt8 = 64, ecn: ECNCodepoint = .notECT,
        writePayload: (inout ByteBuffer) -> Void
    ) -> ByteBuffer {
        var buffer = buffer
        writePayload(&buffer)
        switch (source, destination) {
        case (.v4(let source), .v4(let destination)):
            header.prependWithIPv4(
                to: &buffer, source: source, destination: destination, timeToLive: timeToLive,
                typeOfService: ecn.rawValue, computeChecksum: computeChecksum)
        case (.v6(let source), .v6(let destination)):
            header.prepend(to: &buffer, source: .v6(source), destination: .v6(destination), computeChecksum: computeChecksum)
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

/// Reuses the buffers of datagrams already sent, so that steady traffic allocates nothing per packet.
///
/// Every datagram's buffer is kept in a first-in, first-out ring as well as handed out. A datagram
/// lives on after it leaves — its payload sits in the receiver's queue as slices of it until the
/// application reads — so the oldest buffer is taken back only when the ring holds its only
/// reference (nobody can see it any more), and only if it is of the size a new one would be (a
/// buffer pins its whole storage wherever its bytes are queued; see `pinnedStorageBytes`).
/// Otherwise a new buffer is allocated, as without the ring.
///
/// Measured on `tcpip bench bulk --mtu 1500`: a new buffer per datagram (storage object and bytes;
/// an ACK every other segment) made all of the 3.0 mallocs per segment; with the ring, 0.01 are left
/// (one per 128 KiB write the application makes).
public struct PacketRecycler {
    /// Buffers handed out, oldest first.
    private var sent = PacketQueue<ByteBuffer>(initialCapacity: 16)
    /// Their storage, in octets.
    private var heldBytes = 0
    /// At most this much storage is kept for reuse (beyond it, the oldest buffers are left to
    /// whoever still reads them): enough for a 256 KiB receive window and more of MTU-sized datagrams.
    public let limitBytes: Int
    /// Where new buffers come from when none can be reused.
    public let allocator: ByteBufferAllocator

    /// A recycler keeping at most `limitBytes` of storage for reuse, allocating from `allocator`.
    public init(limitBytes: Int = 1 << 20, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.limitBytes = limitBytes
        self.allocator = allocator
    }

    /// Storage the ring keeps alive, in octets.
    public var retainedBytes: Int { heldBytes }

    /// An empty buffer with `PacketBuffer.headroom` free octets in front and room for `payloadCapacity`
    /// octets after: the oldest buffer sent if nobody else holds it any more, else a new one. Once the
    /// datagram is written, pass it to `sent(_:)` (not before: the ring's reference would make the
    /// writes copy the storage).
    public mutating func make(payloadCapacity: Int) -> ByteBuffer {
        let capacity = PacketBuffer.headroom + max(payloadCapacity, 0)
        var buffer = reuseOldest(capacity: capacity) ?? allocator.buffer(capacity: capacity)
        buffer.moveWriterIndex(to: PacketBuffer.headroom)
        buffer.moveReaderIndex(to: PacketBuffer.headroom)
        return buffer
    }

    /// Keeps `datagram`'s buffer (from `make`) for reuse once whoever receives it lets go.
    public mutating func sent(_ datagram: ByteBuffer) {
        // `capacity`, not `storageCapacity`: the same for these unsliced buffers, and read from the
        // buffer itself rather than its storage object (whose every access is a dynamic
        // exclusivity check; they made a third of this type's cost under perf).
        heldBytes += datagram.capacity
        sent.append(datagram)
        while heldBytes > limitBytes, let oldest = sent.popFirst() {
            heldBytes -= oldest.capacity
        }
    }

    private enum Verdict {
        case reuse, release, inUse
    }

    /// The oldest buffer when the ring holds its only reference and it fits `capacity` within a
    /// factor of two (the power-of-two size class the allocator would round `capacity` to).
    private mutating func reuseOldest(capacity: Int) -> ByteBuffer? {
        guard !sent.isEmpty else { return nil }
        // Looked at in place: taken out to be looked at, it would be retained and released.
        let verdict = sent.modifyFirst { oldest -> Verdict in
            oldest.modifyIfUniquelyOwned { buffer in
                buffer.capacity >= capacity && buffer.capacity < 2 * capacity ? .reuse : .release
            } ?? .inUse
        }
        switch verdict {
        case .reuse:
            // Nobody else can see it: its old bytes are simply written over.
            let oldest = sent.popFirst()!
            heldBytes -= oldest.capacity
            return oldest
        case .release:
            // Nobody else holds it, but it is of another size: let it go.
            heldBytes -= sent.popFirst()!.capacity
            return nil
        case .inUse:
            // Still queued somewhere; the ones behind it are younger.
            return nil
        }
    }
}

extension PacketBuffer {
    /// Prepends an IPv4 (DF as told, no options) or IPv6 header (no extension headers) carrying
    /// `protocolNumber` to `buffer`'s readable bytes.
    ///
    /// - Precondition: `buffer.readerIndex` leaves room for the header; the addresses are of one family.
    public static func prependIPHeader(
        to buffer: inout ByteBuffer, source: IPAddress, destination: IPAddress, protocolNumber: UInt8,
        timeToLive: UInt8 = 64, dontFragment: Bool = false, identification: UInt16 = 0
    ) {
        switch (source, destination) {
        case (.v4(let source), .v4(let destination)):
            IPv4Header(
                source: source, destination: destination, protocolNumber: protocolNumber,
                payloadLength: buffer.readableBytes, timeToLive: timeToLive, identification: identification,
                dontFragment: dontFragment
            ).prepend(to: &buffer)
        case (.v6(let source), .v6(let destination)):
            IPv6Header(
                source: source, destination: destination, nextHeader: protocolNumber,
                payloadLength: buffer.readableBytes, hopLimit: timeToLive
            ).prepend(to: &buffer)
        default:
            preconditionFailure("IP datagram with mixed address families: \(source), \(destination)")
        }
    }

    /// One IP datagram carrying a UDP datagram: copies `payload` once behind the headroom, then prepends
    /// the UDP header (length and checksum computed) and an IP header.
    ///
    /// - Precondition: the payload is at most `UDPHeader.maximumPayloadLength` octets and the whole fits
    ///   in one IP datagram; the addresses are of one family.
    public static func udpDatagram(
        header: UDPHeader, payload: ByteBuffer, source: IPAddress, destination: IPAddress, timeToLive: UInt8 = 64,
        identification: UInt16 = 0, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        var buffer = make(payloadCapacity: payload.readableBytes, allocator: allocator)
        buffer.writeImmutableBuffer(payload)
        header.prepend(to: &buffer, source: source, destination: destination)
        prependIPHeader(
            to: &buffer, source: source, destination: destination, protocolNumber: IPProtocolNumber.udp,
            timeToLive: timeToLive, identification: identification)
        return buffer
    }

    /// One IPv4 datagram carrying an ICMP message whose body is `body` (echo data or a quote).
    public static func icmpv4Datagram(
        message: ICMPv4Message, body: ByteBuffer, source: IPv4Address, destination: IPv4Address,
        timeToLive: UInt8 = 64, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        var buffer = make(payloadCapacity: body.readableBytes, allocator: allocator)
        buffer.writeImmutableBuffer(body)
        message.prepend(to: &buffer)
        prependIPHeader(
            to: &buffer, source: .v4(source), destination: .v4(destination), protocolNumber: IPProtocolNumber.icmp,
            timeToLive: timeToLive)
        return buffer
    }

    /// One IPv6 datagram carrying an ICMPv6 message whose body is `body` (echo data or a quote).
    public static func icmpv6Datagram(
        message: ICMPv6Message, body: ByteBuffer, source: IPv6Address, destination: IPv6Address,
        hopLimit: UInt8 = 64, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        var buffer = make(payloadCapacity: body.readableBytes, allocator: allocator)
        buffer.writeImmutableBuffer(body)
        message.prepend(to: &buffer, source: source, destination: destination)
        prependIPHeader(
            to: &buffer, source: .v6(source), destination: .v6(destination), protocolNumber: IPProtocolNumber.icmpv6,
            timeToLive: hopLimit)
        return buffer
    }
}
