#if os(Linux)
import Glibc
import NIOCore
import TCPIPWire

/// Joins runs of consecutive TCP segments of one flow into TSO super-packets, for a TUN device
/// opened with a virtio-net header: what a NIC's TCP segmentation offload takes, in reverse.
///
/// A run is segments that a NIC could have cut from one large segment (as Linux's tcp_gso_segment
/// does): IPv4 without options or IPv6 without extension headers; the same addresses, IP fields,
/// ports, acknowledgment, window and TCP options (the timestamps of one burst are equal); contiguous
/// sequence numbers; ACK alone, except PSH on the last; every segment but the last exactly
/// `segmentSize` octets of text. The super-packet carries the first segment's headers with the run's
/// lengths, PSH if the last had it, and a partial checksum (the pseudo-header sum) for the kernel to
/// finish — for the kernel's own TCP in the namespace it needs no cutting at all: a run arrives as
/// one GSO segment, as GRO would have made it, and costs one pass through its receive path instead
/// of one per segment.
///
/// Anything else — SYN, FIN, RST, URG, pure ACKs, fragments — leaves as it came.
struct SegmentCoalescer {
    /// A datagram to write and its virtio-net header.
    struct Frame {
        var header: VirtioNetHeader
        var packet: ByteBuffer
    }

    /// The IP and TCP header layout of a segment that may join a run.
    struct Shape: Equatable {
        var version: UInt8
        var ipHeaderLength: Int
        var tcpHeaderLength: Int
        var headersLength: Int { ipHeaderLength + tcpHeaderLength }
    }

    private static let flagACK: UInt8 = 0x10
    private static let flagPSH: UInt8 = 0x08
    /// The most an IPv4 total length or an IPv6 payload length can say.
    private static let largestLength = 65535

    private struct Run {
        var shape: Shape
        /// The first segment as it came: the reference the others' headers are compared with.
        var first: ByteBuffer
        /// The super-packet being built, once a second segment has joined.
        var merged: ByteBuffer?
        var segmentSize: Int
        var segments = 1
        var textLength: Int
        var nextSequence: UInt32
        var push = false
        /// No segment may join: the last was short or had PSH.
        var closed = false
    }

    private var run: Run?
    private let allocator = ByteBufferAllocator()

    /// Super-packets emitted so far (runs of two or more segments).
    private(set) var superPackets: UInt64 = 0

    /// Adds `packet` to the current run, or emits the run and starts another (or emits `packet` as
    /// it is, when it cannot be part of any run).
    mutating func add(_ packet: ByteBuffer, _ emit: (Frame) throws(TUNError) -> Void) throws(TUNError) {
        guard let shape = Self.shape(of: packet) else {
            try flush(emit)
            try emit(Self.single(packet))
            return
        }
        if run != nil, join(packet, shape: shape) { return }
        try flush(emit)
        let text = packet.readableBytes - shape.headersLength
        run = Run(
            shape: shape, first: packet, segmentSize: text, textLength: text,
            nextSequence: Self.sequence(of: packet, shape) &+ UInt32(text),
            push: Self.flags(of: packet, shape) & Self.flagPSH != 0)
        run!.closed = run!.push
    }

    /// Emits the run in progress, if any.
    mutating func flush(_ emit: (Frame) throws(TUNError) -> Void) throws(TUNError) {
        guard run != nil else { return }
        guard run!.merged != nil else {
            try emit(Self.single(run.take()!.first))
            return
        }
        // Moved out, not copied: the super-packet's storage keeps one owner and is patched in place.
        var merged = run!.merged.take()!
        let run = self.run.take()!
        superPackets &+= 1
        let shape = run.shape
        let base = merged.readerIndex
        let tcpLength = shape.tcpHeaderLength + run.textLength
        if shape.version == 4 {
            merged.setInteger(UInt16(shape.ipHeaderLength + tcpLength), at: base + 2)
            merged.setInteger(UInt16(0), at: base + 10)
            var sum = InternetChecksum()
            if let header = merged.getSlice(at: base, length: shape.ipHeaderLength) { sum.add(header) }
            merged.setInteger(sum.checksum, at: base + 10)
        } else {
            merged.setInteger(UInt16(tcpLength), at: base + 4)
        }
        let tcp = base + shape.ipHeaderLength
        if run.push, let flags = merged.getInteger(at: tcp + 13, as: UInt8.self) {
            merged.setInteger(flags | Self.flagPSH, at: tcp + 13)
        }
        Self.leavePartialChecksum(&merged, version: shape.version, ipHeaderLength: shape.ipHeaderLength)
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum,
            gsoType: shape.version == 4 ? VirtioNetHeader.gsoTCPv4 : VirtioNetHeader.gsoTCPv6,
            headerLength: UInt16(shape.headersLength), segmentSize: UInt16(run.segmentSize),
            checksumStart: UInt16(shape.ipHeaderLength), checksumOffset: 16)
        try emit(Frame(header: header, packet: merged))
    }

    /// A datagram that leaves alone: a TCP segment with its checksum left to the kernel (it may
    /// have none yet: `StackConfiguration.transmitChecksumOffload`), anything else as it is.
    static func single(_ packet: ByteBuffer) -> Frame {
        guard let (version, ipHeaderLength) = tcpLayout(of: packet) else { return Frame(header: .wholePacket, packet: packet) }
        var packet = packet
        leavePartialChecksum(&packet, version: version, ipHeaderLength: ipHeaderLength)
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: UInt16(ipHeaderLength), checksumOffset: 16)
        return Frame(header: header, packet: packet)
    }

    /// The IP version and header length of a TCP segment in an unfragmented IPv4 datagram or an
    /// IPv6 one without extension headers, whose fixed TCP header is all there (the TCP header is
    /// whole only in an unfragmented datagram); nil for anything else.
    static func tcpLayout(of packet: ByteBuffer) -> (version: UInt8, ipHeaderLength: Int)? {
        let base = packet.readerIndex
        guard let first = packet.getInteger(at: base, as: UInt8.self) else { return nil }
        let ipHeaderLength: Int
        switch first >> 4 {
        case 4:
            guard packet.getInteger(at: base + 9, as: UInt8.self) == IPProtocolNumber.tcp,
                let fragment = packet.getInteger(at: base + 6, as: UInt16.self), fragment & 0x3FFF == 0
            else { return nil }
            ipHeaderLength = Int(first & 0x0F) * 4
        case 6:
            guard packet.getInteger(at: base + 6, as: UInt8.self) == IPProtocolNumber.tcp else { return nil }
            ipHeaderLength = 40
        default:
            return nil
        }
        guard ipHeaderLength >= 20, packet.readableBytes >= ipHeaderLength + 20 else { return nil }
        return (first >> 4, ipHeaderLength)
    }

    /// CHECKSUM_PARTIAL: the TCP checksum field holds the pseudo-header's one's-complement sum (RFC
    /// 9293 §3.1), not its complement; the kernel adds the segment's bytes (RFC 1071) for each
    /// segment it makes — or, delivering locally, trusts it as it trusts its own.
    static func leavePartialChecksum(_ packet: inout ByteBuffer, version: UInt8, ipHeaderLength: Int) {
        let base = packet.readerIndex
        var pseudo = InternetChecksum()
        let addresses = version == 4 ? (base + 12, 8) : (base + 8, 32)
        if let bytes = packet.getSlice(at: addresses.0, length: addresses.1) { pseudo.add(bytes) }
        pseudo.add(UInt16(IPProtocolNumber.tcp))
        pseudo.add(UInt16(truncatingIfNeeded: packet.readableBytes - ipHeaderLength))
        packet.setInteger(~pseudo.checksum, at: base + ipHeaderLength + 16)
    }

    /// Appends `packet` to the run if it continues it; false if it cannot.
    ///
    /// The run is changed in place through `run!` — never through a copy, which would give the
    /// super-packet's storage a second owner and make every append copy all of it.
    private mutating func join(_ packet: ByteBuffer, shape: Shape) -> Bool {
        guard run != nil, !run!.closed, run!.shape == shape else { return false }
        let text = packet.readableBytes - shape.headersLength
        guard text <= run!.segmentSize,
            Self.sequence(of: packet, shape) == run!.nextSequence,
            shape.headersLength + run!.textLength + text - (shape.version == 6 ? 40 : 0) <= Self.largestLength,
            Self.sameHeaders(packet, run!.first, shape)
        else { return false }
        if run!.merged == nil {
            var merged = allocator.buffer(capacity: Self.largestLength + 40)
            merged.writeImmutableBuffer(run!.first)
            run!.merged = merged
        }
        run!.merged!.writeImmutableBuffer(packet.getSlice(at: packet.readerIndex + shape.headersLength, length: text)!)
        run!.segments += 1
        run!.textLength += text
        run!.nextSequence = run!.nextSequence &+ UInt32(text)
        run!.push = Self.flags(of: packet, shape) & Self.flagPSH != 0
        run!.closed = run!.push || text < run!.segmentSize
        return true
    }

    /// The layout of `packet` if it is a TCP segment with text, ACK and perhaps PSH, that may be
    /// part of a run; nil otherwise.
    static func shape(of packet: ByteBuffer) -> Shape? {
        guard let (version, ipHeaderLength) = tcpLayout(of: packet) else { return nil }
        let base = packet.readerIndex
        let length = packet.readableBytes
        // IPv4 without options (what a segmentation engine copies as is), and a datagram exactly as
        // long as its IP header says.
        let declared = version == 4
            ? packet.getInteger(at: base + 2, as: UInt16.self).map(Int.init)
            : packet.getInteger(at: base + 4, as: UInt16.self).map { Int($0) + 40 }
        guard ipHeaderLength == (version == 4 ? 20 : 40), declared == length,
            let offset = packet.getInteger(at: base + ipHeaderLength + 12, as: UInt8.self)
        else { return nil }
        let shape = Shape(version: version, ipHeaderLength: ipHeaderLength, tcpHeaderLength: Int(offset >> 4) * 4)
        guard shape.tcpHeaderLength >= 20, shape.headersLength < length,
            flags(of: packet, shape) & ~flagPSH == flagACK
        else { return nil }
        return shape
    }

    private static func flags(of packet: ByteBuffer, _ shape: Shape) -> UInt8 {
        packet.getInteger(at: packet.readerIndex + shape.ipHeaderLength + 13, as: UInt8.self) ?? 0
    }

    private static func sequence(of packet: ByteBuffer, _ shape: Shape) -> UInt32 {
        packet.getInteger(at: packet.readerIndex + shape.ipHeaderLength + 4, as: UInt32.self) ?? 0
    }

    /// Whether two segments of one shape agree in every header field a segmentation engine copies:
    /// all but the IP length, identification and checksum, the sequence number, PSH and the TCP
    /// checksum.
    private static func sameHeaders(_ a: ByteBuffer, _ b: ByteBuffer, _ shape: Shape) -> Bool {
        a.withUnsafeReadableBytes { a in
            b.withUnsafeReadableBytes { b in
                func same(_ from: Int, _ to: Int) -> Bool {
                    memcmp(a.baseAddress! + from, b.baseAddress! + from, to - from) == 0
                }
                let tcp = shape.ipHeaderLength
                let ip = shape.version == 4
                    ? same(0, 2) && same(6, 10) && same(12, 20)  // not total length, identification, checksum
                    : same(0, 4) && same(6, 40)  // not payload length
                return ip && same(tcp, tcp + 4)  // ports
                    && same(tcp + 8, tcp + 13)  // acknowledgment, data offset
                    && (a[tcp + 13] | flagPSH) == (b[tcp + 13] | flagPSH)
                    && same(tcp + 14, tcp + 16)  // window
                    && same(tcp + 18, tcp + shape.tcpHeaderLength)  // urgent pointer, options
            }
        }
    }
}
#endif
