#if os(Linux)
import Glibc
import NIOCore
import TCPIP

/// Why a TUN device could not be opened or used.
public enum TUNError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `/dev/net/tun` could not be opened (no such device node, or no permission: needs CAP_NET_ADMIN).
    case open(Errno)
    /// TUNSETIFF refused the interface: a device of another kind has the name, or it belongs to
    /// another user, or the flags do not match a persistent device.
    case attach(name: String, Errno)
    /// Interface names are at most 15 bytes (IFNAMSIZ less the terminator).
    case nameTooLong(String)
    /// The MTU could not be read or set.
    case mtu(Errno)
    /// The interface was deleted or its descriptor is no longer usable (EBADFD, EIO, ENODEV).
    case deviceGone(Errno)
    /// Some other failure of read(2) or write(2).
    case io(Errno)
    /// An option this build does not implement yet.
    case unsupported(String)

    public var description: String {
        switch self {
        case .open(let errno): "cannot open /dev/net/tun: \(errno)"
        case .attach(let name, let errno): "cannot attach TUN interface \(name): \(errno)"
        case .nameTooLong(let name): "interface name too long (at most 15 bytes): \(name)"
        case .mtu(let errno): "cannot read or set the MTU: \(errno)"
        case .deviceGone(let errno): "the TUN device is gone: \(errno)"
        case .io(let errno): "TUN I/O failed: \(errno)"
        case .unsupported(let what): "not supported yet: \(what)"
        }
    }
}

/// A Linux TUN interface opened with `IFF_TUN | IFF_NO_PI`: each read(2) returns one IP datagram
/// and each write(2) injects one, with no Ethernet header and no packet-information prefix.
///
/// The descriptor is non-blocking: `receive` returns nil when nothing is queued, and `send` drops
/// (and counts) a datagram the kernel cannot take rather than waiting. Every system call goes
/// through `SystemCall`, so failures arrive as `Errno` and then as `TUNError`.
///
/// Not thread-safe: one owner, as the stack it feeds.
public final class TUNDevice: PacketLink {
    /// How to open the device.
    public struct Options: Hashable, Sendable {
        /// IFF_MULTI_QUEUE: open one queue of a multi-queue device, so that several descriptors
        /// (one per core, each with its own stack) share the interface and the kernel hashes flows
        /// to them. The interface must have been created multi-queue as well.
        public var multiQueue: Bool
        /// IFF_VNET_HDR with TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6): a virtio-net
        /// header in front of each datagram, and the kernel offloads to us as to a NIC. It leaves
        /// checksums of what it sends partial (nothing to verify: it never crossed a wire) and sends
        /// TCP in super-packets of up to 64 KiB instead of MTU-sized segments, so one read(2) carries
        /// up to ~44 segments' worth. Datagrams we write carry a header saying "whole packet".
        public var virtioNetHeader: Bool
        /// Set the interface MTU to this before use; nil keeps the interface's own.
        public var mtu: Int?

        /// Options for `TUNDevice.init(name:options:)`; the defaults open a plain single-queue device.
        ///
        /// - Parameters:
        ///   - multiQueue: attach one queue of a multi-queue device (`IFF_MULTI_QUEUE`).
        ///   - virtioNetHeader: exchange datagrams with a virtio-net header (`IFF_VNET_HDR`), for offloads.
        ///   - mtu: the interface MTU to set; nil keeps the interface's own.
        public init(multiQueue: Bool = false, virtioNetHeader: Bool = false, mtu: Int? = nil) {
            self.multiQueue = multiQueue
            self.virtioNetHeader = virtioNetHeader
            self.mtu = mtu
        }
    }

    /// Counters beyond `LinkStatistics`: what was read but not handed to the stack.
    public struct DropCounters: Hashable, Sendable {
        /// Read datagrams whose first nibble is neither 4 nor 6 (IFF_NO_PI gives no protocol field).
        public var notIP: UInt64 = 0
        /// Reads that filled the whole buffer: the datagram may have been cut, so it is dropped.
        public var truncated: UInt64 = 0
        /// Writes that failed for a reason other than a full queue or a missing device.
        public var writeErrors: UInt64 = 0
        /// Datagrams whose virtio-net header was short, asked for a segmentation we did not offer,
        /// or placed the checksum outside the datagram.
        public var badVirtioNetHeader: UInt64 = 0
        /// No drops yet.
        public init() {}
    }

    // linux/if_tun.h and linux/sockios.h
    static let tunSetInterface: UInt = 0x4004_54ca  // TUNSETIFF = _IOW('T', 202, int)
    static let flagTUN: Int16 = 0x0001  // IFF_TUN
    static let flagNoPacketInformation: Int16 = 0x1000  // IFF_NO_PI
    static let flagMultiQueue: Int16 = 0x0100  // IFF_MULTI_QUEUE
    static let flagVirtioNetHeader: Int16 = 0x4000  // IFF_VNET_HDR
    static let tunSetOffload: UInt = 0x4004_54d0  // TUNSETOFFLOAD = _IOW('T', 208, unsigned int)
    static let offloadChecksum: UInt = 0x01  // TUN_F_CSUM
    static let offloadTSO4: UInt = 0x02  // TUN_F_TSO4
    static let offloadTSO6: UInt = 0x04  // TUN_F_TSO6
    /// The largest datagram IPv4's total length or IPv6's payload length can describe (a GSO
    /// super-packet is at most this).
    static let largestDatagram = 65535 + 40
    static let getMTU: UInt = 0x8921  // SIOCGIFMTU
    static let setMTU: UInt = 0x8922  // SIOCSIFMTU
    static let getTransmitQueueLength: UInt = 0x8942  // SIOCGIFTXQLEN
    static let interfaceRequestSize = 40  // sizeof(struct ifreq)
    static let interfaceNameSize = 16  // IFNAMSIZ

    /// The interface name the kernel gave (the one asked for, or `tunN` for a pattern).
    public let name: String
    /// The interface's MTU, read from the kernel when the device was opened (or set from `Options.mtu`).
    public let mtu: Int
    /// Whether each datagram read or written carries a virtio-net header (`Options.virtioNetHeader`).
    public let virtioNetHeader: Bool
    /// The interface's transmit queue (`ip link … txqueuelen`, 500 for TUN by default): how many
    /// datagrams the kernel holds for our reads before it drops the next (TX dropped). nil for an
    /// adopted descriptor, or when the kernel would not say.
    public let queueLength: Int?
    /// A TUN device checks nothing for us: checksums are computed and verified by the stack (unless
    /// `virtioNetHeader` hands them to the kernel).
    public let capabilities = LinkCapabilities(checksumOffload: false)
    public var nextArrival: Instant? { nil }
    /// Datagrams and bytes read and written.
    public private(set) var statistics = LinkStatistics()
    /// What was read but not handed on, by reason.
    public private(set) var drops = DropCounters()
    /// The first error that made the device unusable; once set, `send` drops and `receive` returns nil.
    public private(set) var failure: TUNError?
    /// The open descriptor (a `TUNReceiver` reads through a duplicate of it). Owned by this object.
    public private(set) var descriptor: Int32
    private let allocator = ByteBufferAllocator()
    /// Where a datagram with a virtio-net header is read before its packet is copied out at its own
    /// size (a 64 KiB buffer per 1500-byte datagram would pin 40 times the memory it holds).
    private var scratch: [UInt8] = []
    private var coalescer = SegmentCoalescer()

    /// Opens `/dev/net/tun` and attaches to the interface `name`, creating it if it does not exist
    /// (a created interface disappears when the descriptor is closed).
    public init(name: String, options: Options = Options()) throws(TUNError) {
        guard name.utf8.count < Self.interfaceNameSize else { throw .nameTooLong(name) }
        let descriptor: Int32
        do {
            descriptor = try SystemCall.openFile("/dev/net/tun", flags: O_RDWR | O_NONBLOCK | O_CLOEXEC, mode: 0)
        } catch {
            throw .open(error)
        }
        var flags = Self.flagTUN | Self.flagNoPacketInformation
        if options.multiQueue { flags |= Self.flagMultiQueue }
        if options.virtioNetHeader { flags |= Self.flagVirtioNetHeader }
        var request = Self.interfaceRequest(name: name)
        request.withUnsafeMutableBytes { $0.storeBytes(of: flags, toByteOffset: Self.interfaceNameSize, as: Int16.self) }
        do {
            try SystemCall.ioControl(descriptor, Self.tunSetInterface, &request)
        } catch {
            try? SystemCall.closeFile(descriptor)
            throw .attach(name: name, error)
        }
        if options.virtioNetHeader {
            do {
                try SystemCall.ioControl(
                    descriptor, Self.tunSetOffload, value: Self.offloadChecksum | Self.offloadTSO4 | Self.offloadTSO6)
            } catch {
                try? SystemCall.closeFile(descriptor)
                throw .attach(name: name, error)
            }
        }
        if !options.virtioNetHeader {
            // A persistent device keeps the offloads its last user turned on (TUNSETOFFLOAD): without
            // a virtio-net header to describe them, the kernel would still hand over TSO
            // super-packets, each larger than the MTU and dropped here. Off, as a new device has them.
            try? SystemCall.ioControl(descriptor, Self.tunSetOffload, value: 0)
        }
        let attached = request.withUnsafeBytes { bytes in
            String(decoding: bytes.prefix(Self.interfaceNameSize).prefix { $0 != 0 }, as: UTF8.self)
        }
        do {
            if let mtu = options.mtu { try Self.setMTU(mtu, of: attached) }
            self.mtu = try Self.mtu(of: attached)
        } catch {
            try? SystemCall.closeFile(descriptor)
            throw .mtu(error)
        }
        self.name = attached
        self.descriptor = descriptor
        self.virtioNetHeader = options.virtioNetHeader
        self.queueLength = try? Self.transmitQueueLength(of: attached)
    }

    /// Adopts a descriptor that already carries one IP datagram per read(2) and write(2): a TUN
    /// descriptor opened elsewhere, or one end of an AF_UNIX SOCK_SEQPACKET pair (tests join two
    /// stacks that way without root). It is made non-blocking and closed with this object.
    /// `virtioNetHeader`: each datagram carries a virtio-net header, as on a TUN descriptor opened
    /// with IFF_VNET_HDR (the kernel side of a socket pair must then write them).
    public init(adopting descriptor: Int32, name: String, mtu: Int, virtioNetHeader: Bool = false) throws(TUNError) {
        do {
            try SystemCall.setNonBlocking(descriptor)
        } catch {
            throw .io(error)
        }
        self.descriptor = descriptor
        self.name = name
        self.mtu = mtu
        self.virtioNetHeader = virtioNetHeader
        self.queueLength = nil
    }

    deinit {
        close()
    }

    /// Called once when the device closes: a reader on a thread of its own (a `StackRuntime`'s)
    /// stops there.
    public var whenClosed: (() -> Void)?

    /// Closes the descriptor. Further sends drop, receives return nil.
    public func close() {
        let closing = whenClosed
        whenClosed = nil
        closing?()
        guard descriptor >= 0 else { return }
        try? SystemCall.closeFile(descriptor)
        descriptor = -1
        if failure == nil { failure = .deviceGone(Errno(rawValue: EBADF)) }
    }

    // MARK: Datagrams

    /// Reads one datagram, or returns nil when none is queued (EAGAIN).
    ///
    /// Datagrams that are not IP, or that filled the whole buffer (so may have been cut), are dropped
    /// and counted, and the next one is read instead. With a virtio-net header, a partial checksum
    /// is completed here, so the datagram is as it would be on a wire.
    /// - Throws: `TUNError.deviceGone` when the interface was deleted; later calls return nil.
    public func read() throws(TUNError) -> ByteBuffer? {
        while true {
            guard failure == nil else { return nil }
            let read: TUNDatagram?
            do {
                read = try Self.readDatagram(
                    from: descriptor, mtu: mtu, virtioNetHeader: virtioNetHeader, scratch: &scratch, allocator: allocator)
            } catch {
                if error == .wouldBlock { return nil }
                throw fail(error)
            }
            guard var datagram = read else {
                drops.badVirtioNetHeader &+= 1
                continue
            }
            datagram.completeChecksum()
            if admit(datagram) { return datagram.packet }
        }
    }

    /// Reads up to `limit` datagrams that are queued now, without waiting, as `TUNReceiver.read`
    /// does on its thread: for the device's owner between its writes (the kernel's TCP answers some
    /// of what we write — a SYN-ACK's ACK — within the write(2) itself). The datagrams are not yet
    /// admitted (`admit`), their checksums as the kernel left them.
    /// - Throws: `TUNError.deviceGone` when the interface was deleted, `.io` for another error.
    public func readQueued(upTo limit: Int) throws(TUNError) -> TUNReceiver.Batch {
        guard descriptor >= 0 else { return TUNReceiver.Batch() }
        return try Self.readBatch(
            from: descriptor, upTo: limit, mtu: mtu, virtioNetHeader: virtioNetHeader, scratch: &scratch, allocator: allocator)
    }

    /// Up to `limit` datagrams queued on `descriptor`, stopping at the first read that would block:
    /// the device's reads between writes and `TUNReceiver.read` on its thread.
    static func readBatch(
        from descriptor: Int32, upTo limit: Int, mtu: Int, virtioNetHeader: Bool, scratch: inout [UInt8],
        allocator: ByteBufferAllocator
    ) throws(TUNError) -> TUNReceiver.Batch {
        var batch = TUNReceiver.Batch()
        while batch.datagrams.count < limit {
            do {
                if let datagram = try readDatagram(
                    from: descriptor, mtu: mtu, virtioNetHeader: virtioNetHeader, scratch: &scratch, allocator: allocator)
                {
                    // Room for the batch once there is something in it: most reads between writes find nothing.
                    if batch.datagrams.isEmpty { batch.datagrams.reserveCapacity(min(limit, 64)) }
                    batch.datagrams.append(datagram)
                } else {
                    batch.badVirtioNetHeaders += 1
                }
            } catch {
                if error == .wouldBlock { break }
                throw classify(error)
            }
        }
        return batch
    }

    /// The state of the thread a runtime reads this device on (TCPIPNIO's `StackRuntime`), for the
    /// runtime's reads between its writes to agree with that thread on who reads when. Nothing in
    /// this module touches it; the runtime clears it when the device closes. `package`: it is the
    /// runtime's business, not an embedder's.
    package var reader: AnyObject?

    /// One read(2) from `descriptor`: the datagram, or nil for one whose virtio-net header makes it
    /// one to drop. Throws EAGAIN (`.wouldBlock`) when nothing is queued, and EBADFD for a read of 0
    /// (a TUN descriptor never reads 0; a datagram socket does once its peer has gone — either way
    /// nothing more will come, and reading on would spin).
    static func readDatagram(
        from descriptor: Int32, mtu: Int, virtioNetHeader: Bool, scratch: inout [UInt8], allocator: ByteBufferAllocator
    ) throws(Errno) -> TUNDatagram? {
        guard virtioNetHeader else {
            // One byte more than the MTU, so that a datagram larger than the MTU shows as a full buffer.
            var buffer = allocator.buffer(capacity: mtu + 1)
            let count = try buffer.withUnsafeMutableWritableBytes { bytes in
                Result { () throws(Errno) in try SystemCall.readOnce(descriptor, into: bytes) }
            }.get()
            guard count > 0 else { throw Errno(rawValue: EBADFD) }
            buffer.moveWriterIndex(forwardBy: count)
            return TUNDatagram(packet: buffer)
        }
        let capacity = VirtioNetHeader.size + largestDatagram + 1
        if scratch.count < capacity { scratch = [UInt8](repeating: 0, count: capacity) }
        return try scratch.withUnsafeMutableBytes { bytes in
            Result { () throws(Errno) -> TUNDatagram? in
                let count = try SystemCall.readOnce(descriptor, into: UnsafeMutableRawBufferPointer(rebasing: bytes[..<capacity]))
                guard count > 0 else { throw Errno(rawValue: EBADFD) }
                guard count >= VirtioNetHeader.size else { return nil }
                let length = count - VirtioNetHeader.size
                guard let (checksum, segmentSize) = VirtioNetHeader(UnsafeRawBufferPointer(bytes)).describe(length: length) else {
                    return nil
                }
                var packet = allocator.buffer(capacity: length)
                packet.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[VirtioNetHeader.size..<count]))
                return TUNDatagram(packet: packet, checksum: checksum, segmentSize: segmentSize)
            }
        }.get()
    }

    /// Checks and counts a datagram read from this device by someone else (a reader thread with a
    /// duplicate of the descriptor): false for one to drop, which is counted.
    public func admit(_ datagram: TUNDatagram) -> Bool {
        let packet = datagram.packet
        // A datagram that filled the read buffer may have been cut. A super-packet may exceed the
        // MTU; nothing may exceed what an IP length field can say.
        guard packet.readableBytes <= (datagram.segmentSize == nil ? mtu : Self.largestDatagram - 1) else {
            drops.truncated &+= 1
            return false
        }
        guard let first = packet.getInteger(at: packet.readerIndex, as: UInt8.self), first >> 4 == 4 || first >> 4 == 6 else {
            drops.notIP &+= 1
            return false
        }
        statistics.packetsDelivered &+= 1
        statistics.bytesDelivered &+= UInt64(packet.readableBytes)
        return true
    }

    /// Where `flush` hands each batch of datagrams (counted, checksums complete) to be written
    /// elsewhere: a thread with a `TUNTransmitter`. Only without a virtio-net header; nil (the
    /// default): `enqueue` writes each at once. Set it before the first `enqueue`.
    public var handOff: (([ByteBuffer]) -> Void)?
    private var outbound: [ByteBuffer] = []

    /// Counts what a `TUNTransmitter` could not write, as `write` counts its own.
    public func countDropped(_ outcome: TUNTransmitter.Outcome) {
        statistics.droppedQueueFull &+= UInt64(outcome.droppedQueueFull)
        drops.writeErrors &+= UInt64(outcome.writeErrors)
        if let failure = outcome.failure, self.failure == nil { self.failure = failure }
    }

    /// Counts datagrams a `TUNReceiver` dropped for their virtio-net header.
    public func countDropped(badVirtioNetHeaders count: Int) {
        drops.badVirtioNetHeader &+= UInt64(count)
    }

    /// Writes one datagram. A datagram larger than the MTU, or one the kernel's queue has no room
    /// for, is dropped and counted; a vanished device throws.
    public func write(_ packet: ByteBuffer) throws(TUNError) {
        guard admitOutgoing(packet) else { return }
        try transmit(packet, header: nil)
    }

    /// Queues a datagram to write by `flush()`. With offload (`virtioNetHeader`), consecutive
    /// full-sized segments of one flow leave as one TSO super-packet (`SegmentCoalescer`), which the
    /// kernel's TCP takes in one pass as if GRO had joined them; without, it is written at once.
    /// Counted and dropped as `write` does, per datagram.
    /// With `handOff` set (and no virtio-net header), the datagram waits for `flush`, which hands
    /// the batch over instead of writing it.
    public func enqueue(_ packet: ByteBuffer) throws(TUNError) {
        if handOff != nil, !virtioNetHeader {
            guard admitOutgoing(packet) else { return }
            outbound.append(packet)
            return
        }
        guard virtioNetHeader else { return try write(packet) }
        guard admitOutgoing(packet) else { return }
        try coalescer.add(packet) { frame throws(TUNError) in try transmit(frame.packet, header: frame.header) }
    }

    /// Writes what `enqueue` holds back, or hands it to `handOff`.
    public func flush() throws(TUNError) {
        if !outbound.isEmpty, let handOff {
            handOff(outbound)
            outbound.removeAll(keepingCapacity: true)
            return
        }
        try coalescer.flush { frame throws(TUNError) in try transmit(frame.packet, header: frame.header) }
    }

    /// `packet` with its TCP checksum computed, for a path that will check it: a datagram built with
    /// `StackConfiguration.transmitChecksumOffload` has none, which only `enqueue` makes right.
    public static func completingChecksum(_ packet: ByteBuffer) -> ByteBuffer {
        let frame = SegmentCoalescer.single(packet)
        guard frame.header.flags & VirtioNetHeader.flagNeedsChecksum != 0 else { return packet }
        var datagram = TUNDatagram(
            packet: frame.packet,
            checksum: .partial(start: Int(frame.header.checksumStart), offset: Int(frame.header.checksumOffset)))
        datagram.completeChecksum()
        return datagram.packet
    }

    /// Super-packets written so far, each a run of two or more segments.
    public var superPacketsWritten: UInt64 { coalescer.superPackets }

    /// Counts an outgoing datagram; false for one to drop (device failed, larger than the MTU).
    private func admitOutgoing(_ packet: ByteBuffer) -> Bool {
        guard failure == nil else {
            statistics.droppedQueueFull &+= 1
            return false
        }
        statistics.packetsSent &+= 1
        statistics.bytesSent &+= UInt64(packet.readableBytes)
        guard packet.readableBytes <= mtu else {
            statistics.droppedTooBig &+= 1
            return false
        }
        return true
    }

    /// One write(2), behind a virtio-net header when the device has them (`header`, or a plain one).
    private func transmit(_ packet: ByteBuffer, header: VirtioNetHeader?) throws(TUNError) {
        do {
            _ = try packet.withUnsafeReadableBytes { bytes in
                Result { () throws(Errno) in
                    guard virtioNetHeader else { return try SystemCall.writeOnce(descriptor, bytes) }
                    let prefix = header.map { $0 == .wholePacket ? Self.plainHeader : $0.bytes } ?? Self.plainHeader
                    return try prefix.withUnsafeBytes { prefix in
                        Result { () throws(Errno) in try SystemCall.writeOnce(descriptor, prefix, bytes) }
                    }.get()
                }
            }.get()
        } catch {
            switch error {
            case .wouldBlock, .noBufferSpace:
                statistics.droppedQueueFull &+= 1
            case .badFileDescriptorState, .noDevice, Errno(rawValue: EIO), Errno(rawValue: EBADF):
                throw fail(error)
            default:
                drops.writeErrors &+= 1
            }
        }
    }

    /// The virtio-net header of every datagram we write: flags 0 (our checksums are complete), no
    /// segmentation.
    private static let plainHeader = [UInt8](repeating: 0, count: VirtioNetHeader.size)

    private func fail(_ error: Errno) -> TUNError {
        let failure = Self.classify(error)
        if self.failure == nil { self.failure = failure }
        return failure
    }

    /// The errors after which the device is unusable, as `deviceGone`; the rest as `io`.
    static func classify(_ error: Errno) -> TUNError {
        switch error {
        case .badFileDescriptorState, .noDevice, Errno(rawValue: EIO), Errno(rawValue: EBADF): .deviceGone(error)
        default: .io(error)
        }
    }

    // MARK: PacketLink

    /// Writes `packet`; a failure is kept in `failure` (a link's send cannot throw).
    public func send(_ packet: ByteBuffer, now: Instant) {
        try? write(packet)
    }

    public func receive(now: Instant) -> ByteBuffer? {
        try? read()
    }

    // MARK: Interface requests

    private static func interfaceRequest(name: String) -> [UInt8] {
        var request = [UInt8](repeating: 0, count: interfaceRequestSize)
        for (index, byte) in name.utf8.prefix(interfaceNameSize - 1).enumerated() { request[index] = byte }
        return request
    }

    /// SIOCGIFMTU on a throwaway datagram socket (the ioctl needs a socket, not the TUN descriptor).
    static func mtu(of name: String) throws(Errno) -> Int {
        let socket = try SystemCall.openSocket(domain: AF_INET, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        defer { try? SystemCall.closeFile(socket) }
        var request = interfaceRequest(name: name)
        try SystemCall.ioControl(socket, getMTU, &request)
        return Int(request.withUnsafeBytes { $0.load(fromByteOffset: interfaceNameSize, as: Int32.self) })
    }

    /// SIOCGIFTXQLEN (ifr_qlen, an int where ifr_mtu is), on a throwaway datagram socket.
    static func transmitQueueLength(of name: String) throws(Errno) -> Int {
        let socket = try SystemCall.openSocket(domain: AF_INET, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        defer { try? SystemCall.closeFile(socket) }
        var request = interfaceRequest(name: name)
        try SystemCall.ioControl(socket, getTransmitQueueLength, &request)
        return Int(request.withUnsafeBytes { $0.load(fromByteOffset: interfaceNameSize, as: Int32.self) })
    }

    static func setMTU(_ mtu: Int, of name: String) throws(Errno) {
        let socket = try SystemCall.openSocket(domain: AF_INET, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        defer { try? SystemCall.closeFile(socket) }
        var request = interfaceRequest(name: name)
        request.withUnsafeMutableBytes { $0.storeBytes(of: Int32(mtu), toByteOffset: interfaceNameSize, as: Int32.self) }
        try SystemCall.ioControl(socket, setMTU, &request)
    }

    /// A second descriptor on the same open file (for an event loop that wants to own one).
    public func duplicateDescriptor() throws(TUNError) -> Int32 {
        do {
            return try SystemCall.duplicate(descriptor)
        } catch {
            throw .io(error)
        }
    }
}
#endif
