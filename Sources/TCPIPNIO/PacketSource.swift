import NIOCore
import TCPIPWire

/// Where a `StackRuntime` reads and writes batches of IP datagrams: a TUN device, an in-process pair
/// (`StackRuntime.makePair`), an app's `NEPacketTunnelFlow` or an Android `VpnService` descriptor.
///
/// The runtime calls every method on its event loop, and only there; a source needs no lock for
/// what the runtime calls. Reading is pushed: once `startReading` has been called, the source hands
/// each batch it reads to `receiver.receive(_:)` on the receiver's event loop, and should not run
/// more than a batch or two ahead of it — `receive` returns once the batch has been taken in, which
/// is the source's signal that it may read on (the kernel's queue, or the tunnel's, then holds the
/// rest, as a NIC's ring does).
///
/// An adapter for `NEPacketTunnelFlow` is a few lines:
///
/// ```swift
/// final class TunnelFlowSource: PacketSource {
///     let flow: NEPacketTunnelFlow
///     var mtu: Int { 1500 }
///     var offloads: PacketSourceOffloads { PacketSourceOffloads() }   // no offload on a tunnel flow
///     private var outbound: [NEPacket] = []
///     func startReading(into receiver: PacketReceiver) throws { readNext(receiver) }
///     private func readNext(_ receiver: PacketReceiver) {
///         flow.readPacketObjects { packets in
///             receiver.eventLoop.execute {
///                 receiver.receive(packets.map { InboundDatagram(ByteBuffer(bytes: $0.data)) })
///                 self.readNext(receiver)
///             }
///         }
///     }
///     func enqueue(_ packet: ByteBuffer) throws {
///         let family = packet.getInteger(at: packet.readerIndex, as: UInt8.self)! >> 4 == 6 ? AF_INET6 : AF_INET
///         outbound.append(NEPacket(data: Data(buffer: packet), protocolFamily: sa_family_t(family)))
///     }
///     func flush() throws { flow.writePacketObjects(outbound); outbound.removeAll() }
///     func close() {}
/// }
/// ```
public protocol PacketSource: AnyObject {
    /// The largest datagram the source carries: the stack's MTU and the MSS it announces derive from it.
    var mtu: Int { get }
    /// What the source does for the stack, as a NIC's offload features.
    var offloads: PacketSourceOffloads { get }
    /// Octets of datagrams the queue in front of the source's reader holds before it drops: a TUN
    /// device's transmit queue, `txqueuelen` datagrams of at most an MTU each without segmentation
    /// offload. nil (the default): unknown, or no queue that drops. The runtime keeps autotuned
    /// receive windows within it (`StackRuntime.derive`).
    var inboundQueueOctets: Int? { get }
    /// Begins reading: every batch read from now on goes to `receiver` (on `receiver.eventLoop`),
    /// and a failure that ends reading to `receiver.fail(_:)`, once.
    func startReading(into receiver: PacketReceiver) throws
    /// Writes one datagram of a batch, or queues it until `flush` (a source may join consecutive
    /// segments of a flow into one super-packet). A datagram the source cannot take is dropped and
    /// counted by it, as a NIC drops on a full ring; only a source that can no longer be used throws.
    func enqueue(_ packet: ByteBuffer) throws
    /// Writes what `enqueue` queued: the end of a batch.
    func flush() throws
    /// Datagrams that can be read at once, handed over on the loop right after the runtime wrote a
    /// batch: a source whose other side answers within the write — a TUN device, where the kernel's
    /// TCP sends a SYN-ACK's ACK inside our write(2) — saves the wake-up of its reader and of the
    /// loop for each such answer (two of them per connection accepted). Must keep the order in
    /// which the source would have delivered them, never block, and leave failures to the reader
    /// (`PacketReceiver.fail`). The default: none.
    func readWithoutWaiting() -> [InboundDatagram]
    /// Stops reading and releases the source. Called once, when the runtime stops.
    func close()
    /// `packet` as it must look on a path that checks it, when it was built for
    /// `offloads.transmitChecksum` (its TCP checksum left to the source). The runtime needs it only
    /// for impairment, which may corrupt bytes the peer must then catch.
    func completingChecksum(_ packet: ByteBuffer) -> ByteBuffer
    /// Writes a datagram exactly as it is, its checksum complete: no offload engine finishes or
    /// recomputes it, nothing joins it to others. Impairment needs it — a datagram it corrupted
    /// must reach the peer corrupted, not with a checksum made afresh over the damage.
    func writeAsIs(_ packet: ByteBuffer) throws
}

extension PacketSource {
    public var inboundQueueOctets: Int? { nil }
    public func readWithoutWaiting() -> [InboundDatagram] { [] }
    public func completingChecksum(_ packet: ByteBuffer) -> ByteBuffer { packet }
    public func writeAsIs(_ packet: ByteBuffer) throws { try enqueue(packet) }
}

/// What a packet source does for the stack, as a NIC's features (`ethtool -k`).
public struct PacketSourceOffloads: Hashable, Sendable {
    /// The source finishes the transport checksum of every datagram written to it: a TUN device
    /// opened with a virtio-net header (`TUNDevice.Options.virtioNetHeader`), whose kernel takes the
    /// checksum as partial, or an in-process pair, where nothing can damage the bytes. The stack
    /// then leaves it (`StackConfiguration.transmitChecksumOffload`). Without, every datagram must
    /// carry a correct checksum, or the other side drops it.
    public var transmitChecksum: Bool
    /// Neither direction can damage a datagram (an in-process pair): the stack neither computes
    /// nor verifies checksums (`StackConfiguration.checksumOffload`).
    public var lossless: Bool

    /// What the source offers; the defaults are a wire's: nothing.
    ///
    /// - Parameters:
    ///   - transmitChecksum: the source completes the checksums of what the stack sends, so the stack
    ///     leaves them (implied by `lossless`).
    ///   - lossless: nothing can damage a datagram in either direction.
    public init(transmitChecksum: Bool = false, lossless: Bool = false) {
        self.transmitChecksum = transmitChecksum || lossless
        self.lossless = lossless
    }
}

/// One IP datagram a source read, with what the source knows of its checksum.
public struct InboundDatagram: Sendable {
    /// How far the transport checksum can be trusted without checking it.
    public enum Checksum: Hashable, Sendable {
        /// Check it: the datagram may have crossed a wire.
        case unverified
        /// The source has checked it (a kernel's VIRTIO_NET_HDR_F_DATA_VALID), or nothing can have
        /// damaged it.
        case verified
        /// Left to an offload engine by the sender (VIRTIO_NET_HDR_F_NEEDS_CSUM): the field at
        /// `start + offset` holds only the pseudo-header sum; the bytes never crossed a wire.
        case partial(start: Int, offset: Int)
    }

    /// The IP datagram, from its first header byte.
    public var packet: ByteBuffer
    /// How far the transport checksum can be trusted.
    public var checksum: Checksum

    /// A datagram the source read.
    ///
    /// - Parameters:
    ///   - packet: the IP datagram, from its first header byte.
    ///   - checksum: what the source knows of its checksum.
    public init(_ packet: ByteBuffer, checksum: Checksum = .unverified) {
        self.packet = packet
        self.checksum = checksum
    }

    /// Whether the stack may skip verifying the checksums.
    public var checksumTrusted: Bool { checksum != .unverified }

    /// Computes a partial checksum as the offload engine would have (RFC 1071), so the datagram is
    /// as it would be on a wire; afterwards it is `.unverified` and checks out.
    public mutating func completeChecksum() {
        guard case .partial(let start, let offset) = checksum else { return }
        let base = packet.readerIndex
        guard start >= 0, offset >= 0, start + offset + 2 <= packet.readableBytes else {
            checksum = .unverified
            return
        }
        var sum = InternetChecksum()
        if let tail = packet.getSlice(at: base + start, length: packet.readableBytes - start) { sum.add(tail) }
        packet.setInteger(sum.checksum, at: base + start + offset)
        checksum = .unverified
    }
}

/// Where a `PacketSource` delivers what it reads: the runtime's input, bound to its event loop.
public struct PacketReceiver: Sendable {
    /// The loop to call `receive` and `fail` on.
    public let eventLoop: EventLoop
    let core: NIOLoopBound<RuntimeCore>

    /// Takes a batch into the stack (on `eventLoop`); returns once it has been processed, answers
    /// and all, so the source may read the next.
    public func receive(_ batch: [InboundDatagram]) {
        core.value.received(batch)
    }

    /// Ends the runtime because the source can no longer be read (on `eventLoop`): `closeFuture`
    /// fails with `error`.
    public func fail(_ error: Error) {
        core.value.stop(error: error)
    }
}
