import NIOCore

/// Writes datagrams as classic pcap records (not pcapng) with microsecond timestamps and LINKTYPE_RAW,
/// so each record is a bare IPv4 or IPv6 datagram.
///
/// Timestamps come from the `Instant` given, not from a clock, so a simulated capture is the same
/// file on every run. The file is little-endian regardless of the host; readers detect byte order
/// from the magic number.
///
///     global header (24 bytes, once)      record header (16 bytes, per datagram)
///     magic        0xa1b2c3d4             seconds        UInt32
///     version      2.4                    microseconds   UInt32
///     thiszone     0, sigfigs 0           captured len   UInt32  (≤ snaplen)
///     snaplen      65535                  original len   UInt32
///     linktype     101 (LINKTYPE_RAW)
public final class PcapRecorder {
    /// The global header's magic number (microsecond timestamps), written little-endian.
    public static let magic: UInt32 = 0xA1B2_C3D4
    /// The most octets of a datagram recorded; longer ones are cut.
    public static let snapshotLength: UInt32 = 65_535
    /// LINKTYPE_RAW: the record starts with the IP header; the version nibble says which IP.
    public static let linkTypeRaw: UInt32 = 101

    /// Where the capture goes.
    public let sink: PcapSink
    /// Reused for every record header, so recording allocates nothing per datagram.
    private var header: ByteBuffer

    /// Writes the global header to `sink` at once.
    public init(sink: PcapSink) {
        self.sink = sink
        self.header = ByteBufferAllocator().buffer(capacity: 24)
        header.writeInteger(Self.magic, endianness: .little)
        header.writeInteger(UInt16(2), endianness: .little)
        header.writeInteger(UInt16(4), endianness: .little)
        header.writeInteger(Int32(0), endianness: .little)
        header.writeInteger(UInt32(0), endianness: .little)
        header.writeInteger(Self.snapshotLength, endianness: .little)
        header.writeInteger(Self.linkTypeRaw, endianness: .little)
        sink.write(header)
    }

    /// Appends one datagram (its readable bytes), stamped with `instant`.
    ///
    /// Instants before the epoch are recorded as zero; datagrams longer than the snapshot length are cut.
    public func record(_ packet: ByteBuffer, at instant: Instant) {
        let microseconds = max(instant.nanoseconds, 0) / 1_000
        let seconds = UInt32(truncatingIfNeeded: microseconds / 1_000_000)
        let originalLength = UInt32(truncatingIfNeeded: packet.readableBytes)
        let capturedLength = min(originalLength, Self.snapshotLength)

        header.clear()
        header.writeInteger(seconds, endianness: .little)
        header.writeInteger(UInt32(microseconds % 1_000_000), endianness: .little)
        header.writeInteger(capturedLength, endianness: .little)
        header.writeInteger(originalLength, endianness: .little)
        sink.write(header)
        sink.write(packet.getSlice(at: packet.readerIndex, length: Int(capturedLength))!)
    }

    /// Hands what the sink buffers to its storage.
    public func flush() {
        sink.flush()
    }
}

/// Records every datagram that crosses the wrapped link, both directions, into a pcap.
///
/// Sent datagrams are stamped with the `now` of `send`, received ones with the `now` of `receive`.
public final class PcapWriter: PacketLink {
    /// The link recorded.
    public let inner: PacketLink
    /// What records the datagrams.
    public let recorder: PcapRecorder

    /// Writes the pcap global header to `sink` at once.
    public init(wrapping inner: PacketLink, sink: PcapSink) {
        self.inner = inner
        self.recorder = PcapRecorder(sink: sink)
    }

    public var mtu: Int { inner.mtu }
    /// The wrapped link's.
    public var capabilities: LinkCapabilities { inner.capabilities }
    public var nextArrival: Instant? { inner.nextArrival }

    public func send(_ packet: ByteBuffer, now: Instant) {
        recorder.record(packet, at: now)
        inner.send(packet, now: now)
    }

    public func receive(now: Instant) -> ByteBuffer? {
        guard let packet = inner.receive(now: now) else { return nil }
        recorder.record(packet, at: now)
        return packet
    }

    /// Hands what the capture's sink buffers to its storage.
    public func flush() {
        recorder.flush()
    }
}
