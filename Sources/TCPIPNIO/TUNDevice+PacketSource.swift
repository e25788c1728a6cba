// Linux only: the TUN device as a packet source. The rest of TCPIPNIO is portable (no C library);
// this is the one file that knows the platform.
#if os(Linux)
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TCPIP
import TCPIPLinks

/// A TUN device as the runtime's packet source. A thread of the runtime's own reads the device
/// (`DeviceReader`) and hands batches to the loop, at most two batches ahead of it; writes happen
/// on the loop, consecutive segments of a flow joined into TSO super-packets with a virtio-net header.
///
/// Why not a NIO channel on the descriptor: NIO takes an error condition on a descriptor for the
/// end of its input and then requires a read to return data or end-of-file; TUN signals an error
/// (POLLERR) while its interface is being deleted and a read then returns EAGAIN, which NIO treats
/// as a broken invariant and traps on. A device that disappears must stop the runtime cleanly.
extension TUNDevice: PacketSource {
    /// With a virtio-net header (`Options.virtioNetHeader`) the kernel takes our checksums as
    /// partial; without, each datagram must carry its own.
    public var offloads: PacketSourceOffloads {
        PacketSourceOffloads(transmitChecksum: virtioNetHeader)
    }

    /// The transmit queue in octets: `queueLength` datagrams, each a segment of at most an MTU, or a
    /// super-packet of up to 64 KiB when the device has segmentation offload (a virtio-net header).
    public var inboundQueueOctets: Int? {
        queueLength.map { $0 * (virtioNetHeader ? 65535 : mtu) }
    }

    /// Starts a thread of its own that reads the device, and without a virtio-net header another
    /// that writes it (`DeviceWriter`); `close()` stops them.
    public func startReading(into receiver: PacketReceiver) throws {
        let reader = DeviceReader(receiver: try TUNReceiver(self), device: self, inbound: receiver)
        // Held until the device closes (which lets go of it): `readWithoutWaiting` asks it.
        self.reader = reader
        guard !virtioNetHeader else {
            whenClosed = { [weak self] in
                reader.stop()
                self?.reader = nil
            }
            reader.start()
            return
        }
        let writers = try (0..<DeviceWriter.threads).map { _ in
            DeviceWriter(transmitter: try TUNTransmitter(self), device: self, inbound: receiver)
        }
        handOff = { batch in DeviceWriter.handOff(batch, to: writers) }
        whenClosed = { [weak self] in
            reader.stop()
            for writer in writers { writer.stop() }
            // The writers and the reader hold the device (to count what they drop): let go of them.
            self?.handOff = nil
            self?.reader = nil
        }
        reader.start()
        for writer in writers { writer.start() }
    }

    /// What the kernel answered within our writes, read here on the loop, when the reading thread
    /// is not reading and has no batch on its way to the loop (so the order is kept: the thread's
    /// next batch is read after these, and taken in after them). Up to `directReadLimit` datagrams:
    /// a handshake's ACK, or a few of a flow's; a busy device is the thread's. A device that fails
    /// here is left to the thread, whose wait then finds it gone and stops the runtime.
    public func readWithoutWaiting() -> [InboundDatagram] {
        guard let reader = reader as? DeviceReader, reader.beginLoopRead() else { return [] }
        let batch: TUNReceiver.Batch
        do {
            batch = try readQueued(upTo: DeviceReader.directReadLimit)
        } catch {
            reader.endLoopRead(failed: true)
            return []
        }
        reader.endLoopRead(failed: false)
        return admitted(batch)
    }

    /// What of `batch` the stack takes in (`admit`), its bad virtio-net headers counted. On the loop.
    fileprivate func admitted(_ batch: TUNReceiver.Batch) -> [InboundDatagram] {
        if batch.badVirtioNetHeaders > 0 { countDropped(badVirtioNetHeaders: batch.badVirtioNetHeaders) }
        var admitted: [InboundDatagram] = []
        admitted.reserveCapacity(batch.datagrams.count)
        for datagram in batch.datagrams where admit(datagram) {
            admitted.append(InboundDatagram(datagram))
        }
        return admitted
    }

    public func completingChecksum(_ packet: ByteBuffer) -> ByteBuffer {
        Self.completingChecksum(packet)
    }

    /// One write(2), behind a virtio-net header saying "checksum complete, no segmentation" when
    /// the device has them; what `enqueue` still holds goes first, so the order is kept.
    public func writeAsIs(_ packet: ByteBuffer) throws {
        if handOff != nil {
            // Behind what the writing thread holds; without a virtio-net header nothing joins it.
            try enqueue(packet)
            try flush()
            return
        }
        try flush()
        try write(packet)
    }
}

extension StackRuntime {
    /// Starts `stack` on `eventLoop` over `device` (see `start(stack:source:on:logger:)`).
    public static func start(
        stack: Stack, device: TUNDevice, on eventLoop: EventLoop, logger: Logger? = nil
    ) -> EventLoopFuture<StackRuntime> {
        start(stack: stack, source: device, on: eventLoop, logger: logger)
    }

    /// The TUN device of a runtime started on one. Only on `eventLoop`; traps on a runtime over
    /// another source.
    public var device: TUNDevice { packetSource as! TUNDevice }
}

/// The runtime's reading thread: waits for the device, reads a batch, hands it to the loop.
///
/// At most `permits` batches wait on the loop at once, so a loop that falls behind slows the
/// reader rather than letting datagrams pile up in memory; the kernel's queue (500 datagrams by
/// default) then fills and the kernel drops, as it would for a slow NIC.
///
/// The loop also reads between its writes (`readWithoutWaiting`), when the thread is not reading
/// and has no batch on its way: `reading` and `inFlight` say so, under `state`'s lock.
private final class DeviceReader: @unchecked Sendable {
    static let permits = 2
    /// The most datagrams the loop reads at once between its writes.
    static let directReadLimit = 8

    private let receiver: TUNReceiver
    /// Touched only on the loop.
    private let device: TUNDevice
    private let inbound: PacketReceiver
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let credit = DispatchSemaphore(value: DeviceReader.permits)
    private struct State {
        var stopping = false
        /// The receiver is closed: `stop` must not wake it.
        var closed = false
        /// The thread or the loop is reading the device.
        var reading = false
        /// Batches the thread read that the loop has not taken in yet.
        var inFlight = 0
        /// A read on the loop failed: the loop reads no more (the thread finds out and stops the runtime).
        var loopReadFailed = false
    }

    private let state = NIOLockedValueBox(State())

    init(receiver: TUNReceiver, device: TUNDevice, inbound: PacketReceiver) {
        self.receiver = receiver
        self.device = device
        self.inbound = inbound
    }

    func start() {
        pool.start()
        pool.submit { [self] _ in
            run()
            state.withLockedValue { state in
                state.closed = true
                receiver.close()
            }
            pool.shutdownGracefully { _ in }
        }
    }

    /// Any thread: the thread exits at its next wait.
    func stop() {
        state.withLockedValue { state in
            state.stopping = true
            if !state.closed { receiver.wake() }
        }
        credit.signal()
    }

    private var stopping: Bool { state.withLockedValue { $0.stopping } }

    /// On the loop: whether it may read now; if so, `endLoopRead` after.
    func beginLoopRead() -> Bool {
        state.withLockedValue { state in
            guard !state.reading, state.inFlight == 0, !state.loopReadFailed, !state.stopping else { return false }
            state.reading = true
            return true
        }
    }

    func endLoopRead(failed: Bool) {
        state.withLockedValue { state in
            state.reading = false
            if failed { state.loopReadFailed = true }
        }
    }

    /// On the thread: whether it may read now (the loop is not reading); if so, `endThreadRead` after.
    private func beginThreadRead() -> Bool {
        state.withLockedValue { state in
            guard !state.reading else { return false }
            state.reading = true
            return true
        }
    }

    private func endThreadRead(handingOver: Bool) {
        state.withLockedValue { state in
            state.reading = false
            if handingOver { state.inFlight += 1 }
        }
    }

    private func run() {
        let loop = inbound.eventLoop
        while true {
            credit.wait()
            if stopping { return }
            do {
                guard try receiver.wait(), !stopping else { return }
                // The loop is reading what woke us (for a few microseconds): wait again.
                guard beginThreadRead() else {
                    credit.signal()
                    continue
                }
                let batch: TUNReceiver.Batch
                do {
                    batch = try receiver.read(upTo: StackRuntime.readBatch)
                } catch {
                    endThreadRead(handingOver: false)
                    throw error
                }
                let empty = batch.datagrams.isEmpty && batch.badVirtioNetHeaders == 0
                endThreadRead(handingOver: !empty)
                if empty {
                    credit.signal()
                    continue
                }
                loop.execute { [self] in
                    inbound.receive(device.admitted(batch))
                    state.withLockedValue { $0.inFlight -= 1 }
                    credit.signal()
                }
            } catch {
                loop.execute { [inbound] in inbound.fail(error) }
                return
            }
        }
    }
}

/// The runtime's writing thread for a device without offload: the loop hands it each flushed
/// batch (`TUNDevice.handOff`) and goes on; the thread writes them in order (`TUNTransmitter`), one
/// write(2) per datagram, in which the kernel does the receiving host's work.
///
/// A batch of at most `inline` datagrams that finds the thread idle is written on the loop at once:
/// a handshake's SYN-ACK or a lone ACK does not wait for a thread to wake. At most `limit` datagrams
/// wait for the thread; beyond, they are dropped and counted, as a full NIC ring drops.
///
/// There are `threads` of them, and each flow's datagrams always go to the same one (`flowHash`), so
/// a flow's segments leave in order while several flows are written at once: the kernel's work
/// for 4 downloads then runs on two cores instead of one.
private final class DeviceWriter: @unchecked Sendable {
    static let threads = 2
    static let inline = 2
    static let limit = 4096

    /// On the loop: `batch` shared out among `writers` by flow.
    static func handOff(_ batch: [ByteBuffer], to writers: [DeviceWriter]) {
        guard writers.count > 1 else {
            writers[0].handOff(batch)
            return
        }
        var parts = [[ByteBuffer]](repeating: [], count: writers.count)
        for packet in batch { parts[flowHash(packet) % writers.count].append(packet) }
        for (index, part) in parts.enumerated() where !part.isEmpty { writers[index].handOff(part) }
    }

    /// The same for every datagram of a TCP or UDP flow: its addresses' last octets and its ports
    /// (the four octets after the IP header). ICMP messages may go to either writer.
    static func flowHash(_ packet: ByteBuffer) -> Int {
        let base = packet.readerIndex
        guard let first = packet.getInteger(at: base, as: UInt8.self) else { return 0 }
        // The last octet of the source and of the destination address, and the header's length.
        let (source, destination, headerLength) = first >> 4 == 6 ? (23, 39, 40) : (15, 19, Int(first & 0x0f) * 4)
        var hash = UInt32(packet.getInteger(at: base + source, as: UInt8.self) ?? 0)
        hash = hash &* 31 &+ UInt32(packet.getInteger(at: base + destination, as: UInt8.self) ?? 0)
        hash = hash &* 31 &+ (packet.getInteger(at: base + headerLength, as: UInt32.self) ?? 0)
        hash ^= hash >> 16
        return Int(hash & 0xffff)
    }

    private struct State {
        var queue: [ByteBuffer] = []
        /// The thread has datagrams to write, or is writing them: what comes next must queue behind.
        var busy = false
        var stopping = false
    }

    private let transmitter: TUNTransmitter
    /// Touched only on the loop.
    private let device: TUNDevice
    private let inbound: PacketReceiver
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let work = DispatchSemaphore(value: 0)
    private let state = NIOLockedValueBox(State())

    init(transmitter: TUNTransmitter, device: TUNDevice, inbound: PacketReceiver) {
        self.transmitter = transmitter
        self.device = device
        self.inbound = inbound
    }

    func start() {
        pool.start()
        pool.submit { [self] _ in
            run()
            transmitter.close()
            pool.shutdownGracefully { _ in }
        }
    }

    /// Any thread: the thread writes what it holds, then exits.
    func stop() {
        state.withLockedValue { $0.stopping = true }
        work.signal()
    }

    /// On the loop.
    func handOff(_ batch: [ByteBuffer]) {
        let (inline, wake, dropped) = state.withLockedValue { state -> (Bool, Bool, Int) in
            if state.stopping { return (false, false, batch.count) }
            if !state.busy && batch.count <= Self.inline { return (true, false, 0) }
            let room = min(batch.count, max(0, Self.limit - state.queue.count))
            state.queue.append(contentsOf: batch.prefix(room))
            let wake = !state.busy
            state.busy = true
            return (false, wake, batch.count - room)
        }
        if inline { report(transmitter.write(batch)) }
        if dropped > 0 { device.countDropped(TUNTransmitter.Outcome(droppedQueueFull: dropped)) }
        if wake { work.signal() }
    }

    /// On the loop: counts what could not be written; a device that is gone stops the runtime.
    private func report(_ outcome: TUNTransmitter.Outcome) {
        guard outcome.droppedQueueFull > 0 || outcome.writeErrors > 0 || outcome.failure != nil else { return }
        device.countDropped(outcome)
        if let failure = outcome.failure { inbound.fail(failure) }
    }

    private func run() {
        let loop = inbound.eventLoop
        while true {
            work.wait()
            while true {
                let (batch, stopping) = state.withLockedValue { state -> ([ByteBuffer], Bool) in
                    let batch = state.queue
                    state.queue = []
                    if batch.isEmpty { state.busy = false }
                    return (batch, state.stopping)
                }
                if batch.isEmpty {
                    if stopping { return }
                    break
                }
                let outcome = transmitter.write(batch)
                if outcome.droppedQueueFull > 0 || outcome.writeErrors > 0 || outcome.failure != nil {
                    loop.execute { [self] in report(outcome) }
                }
                if outcome.failure != nil { return }
            }
        }
    }
}

extension InboundDatagram {
    init(_ datagram: TUNDatagram) {
        switch datagram.checksum {
        case .unverified: self.init(datagram.packet, checksum: .unverified)
        case .verified: self.init(datagram.packet, checksum: .verified)
        case .partial(let start, let offset): self.init(datagram.packet, checksum: .partial(start: start, offset: offset))
        }
    }
}
#endif
