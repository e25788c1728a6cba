#if os(Linux)
import NIOCore
import TCPIPWire

/// One IP datagram read from a TUN device, with what the kernel said about it.
public struct TUNDatagram: Sendable {
    /// How far the transport checksum can be trusted without checking it.
    public enum Checksum: Hashable, Sendable {
        /// Check it: the datagram may have crossed a wire (or no virtio-net header says otherwise).
        case unverified
        /// VIRTIO_NET_HDR_F_DATA_VALID: the kernel has checked it.
        case verified
        /// VIRTIO_NET_HDR_F_NEEDS_CSUM: the kernel built this datagram and left the checksum to an
        /// offload engine, as it does for a NIC with TX checksumming. The field at `start + offset`
        /// holds only the pseudo-header sum; the bytes never crossed a wire, so there is nothing to
        /// check — `completeChecksum()` fills it in for a reader that wants a datagram as on the wire.
        case partial(start: Int, offset: Int)
    }

    /// The IP datagram, from its first header byte.
    public var packet: ByteBuffer
    /// What the kernel said of the transport checksum (with a virtio-net header), or `.unverified`.
    public var checksum: Checksum
    /// A TSO/GSO super-packet (`gso_type` TCPV4 or TCPV6): one TCP segment of several MSS, larger
    /// than the MTU, that the kernel did not cut into wire-sized segments because the device
    /// offered to (TUN_F_TSO4/6). TCP takes it as one segment (RFC 9293 puts no upper bound on a
    /// received segment's length; only the window does).
    public var segmentSize: Int?

    /// A datagram as read from the device.
    ///
    /// - Parameters:
    ///   - packet: the IP datagram, from its first header byte.
    ///   - checksum: what the virtio-net header said of its checksum.
    ///   - segmentSize: the MSS of a TSO/GSO super-packet; nil for one wire-sized datagram.
    public init(packet: ByteBuffer, checksum: Checksum = .unverified, segmentSize: Int? = nil) {
        self.packet = packet
        self.checksum = checksum
        self.segmentSize = segmentSize
    }

    /// Whether the stack may skip verifying the checksums.
    public var checksumTrusted: Bool { checksum != .unverified }

    /// Computes a partial checksum as the offload engine would have (RFC 1071 over the bytes from
    /// `start`, whose checksum field already holds the pseudo-header sum), so the datagram is as it
    /// would appear on a wire; afterwards it is `.unverified` again and checks out.
    public mutating func completeChecksum() {
        guard case .partial(let start, let offset) = checksum else { return }
        let base = packet.readerIndex
        var sum = InternetChecksum()
        if let tail = packet.getSlice(at: base + start, length: packet.readableBytes - start) { sum.add(tail) }
        packet.setInteger(sum.checksum, at: base + start + offset)
        checksum = .unverified
    }
}

/// struct virtio_net_hdr of linux/virtio_net.h: the 10 bytes in front of every datagram on a TUN
/// descriptor opened with IFF_VNET_HDR. Fields are little-endian (the host's order on the
/// little-endian machines Linux TUN runs on; TUNSETVNETLE is not needed there).
struct VirtioNetHeader: Hashable {
    static let size = 10
    static let flagNeedsChecksum: UInt8 = 1  // VIRTIO_NET_HDR_F_NEEDS_CSUM
    static let flagDataValid: UInt8 = 2  // VIRTIO_NET_HDR_F_DATA_VALID
    static let gsoNone: UInt8 = 0  // VIRTIO_NET_HDR_GSO_NONE
    static let gsoTCPv4: UInt8 = 1  // VIRTIO_NET_HDR_GSO_TCPV4
    static let gsoTCPv6: UInt8 = 4  // VIRTIO_NET_HDR_GSO_TCPV6
    static let gsoECN: UInt8 = 0x80  // VIRTIO_NET_HDR_GSO_ECN, or'ed into the type

    let flags: UInt8
    let gsoType: UInt8
    let headerLength: UInt16
    let segmentSize: UInt16
    let checksumStart: UInt16
    let checksumOffset: UInt16

    init(
        flags: UInt8 = 0, gsoType: UInt8 = gsoNone, headerLength: UInt16 = 0, segmentSize: UInt16 = 0,
        checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0
    ) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.segmentSize = segmentSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// A whole packet whose checksums are done, not to be segmented: what we write by default.
    static let wholePacket = VirtioNetHeader()

    /// The 10 bytes as they go in front of a datagram.
    var bytes: [UInt8] {
        func le(_ value: UInt16) -> [UInt8] { [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)] }
        return [flags, gsoType] + le(headerLength) + le(segmentSize) + le(checksumStart) + le(checksumOffset)
    }

    init(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= Self.size)
        flags = bytes[0]
        gsoType = bytes[1]
        headerLength = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        segmentSize = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        checksumStart = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        checksumOffset = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
    }

    /// What the header says of a datagram of `length` bytes that follows it; nil for one to drop:
    /// a segmentation type we did not offer (UDP, USO), or a checksum field outside the datagram.
    func describe(length: Int) -> (TUNDatagram.Checksum, segmentSize: Int?)? {
        let segmentSize: Int?
        switch gsoType & ~Self.gsoECN {
        case Self.gsoNone: segmentSize = nil
        case Self.gsoTCPv4, Self.gsoTCPv6: segmentSize = Int(self.segmentSize)
        default: return nil
        }
        if flags & Self.flagNeedsChecksum != 0 {
            let start = Int(checksumStart)
            let offset = Int(checksumOffset)
            guard start + offset + 2 <= length else { return nil }
            return (.partial(start: start, offset: offset), segmentSize)
        }
        return (flags & Self.flagDataValid != 0 ? .verified : .unverified, segmentSize)
    }
}
#endif
