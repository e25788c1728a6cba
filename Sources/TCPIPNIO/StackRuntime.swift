#if os(Linux)
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TCPIP
import TCPIPLinks
import TCPIPWire

/// A `Stack` on one SwiftNIO `EventLoop`, with its TUN device: the driver loop of DESIGN.md.
///
///     reader thread: poll ▶ read a batch ──▶ stack.receive ─┐
///     timer (nextDeadline) ──▶ stack.advanceTime ───────────┼─▶ pump: events ▶ channels, packets ▶ TUN
///     channel write/flush/read/close ───────────────────────┘
///
/// A thread of the runtime's own reads the device (`DeviceReader`) and hands batches of datagrams
/// to the loop, at most two batches ahead of it; everything that touches the stack, and every
/// write to the device, happens on `eventLoop` (the stack is not thread-safe).
///
/// Why not a NIO channel on the descriptor: NIO takes an error condition on a descriptor for the
/// end of its input and then requires a read to return data or end-of-file; TUN signals an error
/// (POLLERR) while its interface is being deleted and a read then returns EAGAIN, which NIO treats
/// as a broken invariant and traps on. A device that disappears must stop the runtime cleanly.
public final class StackRuntime: @unchecked Sendable {
    /// Datagrams read from the device per turn of the loop before other work gets a chance.
    public static let readBatch = 256
    /// Datagrams between two pumps while draining the device. Measured with the peers kit's sender at
    /// MTU 1500: pumping only after 256 gave 1.2–1.4 Gbit/s, every 32 gave 1.6–2.2, every 4 gave 1.3.
    static let pumpEvery = 32

    public let eventLoop: EventLoop
    /// Touch only on `eventLoop`.
    public let stack: Stack
    /// Touch only on `eventLoop`.
    public let device: TUNDevice
    /// Succeeds when the runtime stops; fails with the `TUNError` that stopped it.
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }

    /// Called on the loop with every datagram that crosses the device, for `--trace` and captures.
    public var packetObserver: ((ByteBuffer, Instant, Direction) -> Void)?
    /// Called on the loop with the decision trace after each pump when the stack is tracing.
    public var traceObserver: (([TraceRecord]) -> Void)?

    public enum Direction: Sendable { case inbound, outbound }

    let closePromise: EventLoopPromise<Void>
    var channels: [ConnectionID: TCPConnectionChannel] = [:]
    var listeners: [ListenerID: TCPListener] = [:]
    var udpChannels: [UDPEndpointID: UDPChannel] = [:]
    private var dirty: [TCPConnectionChannel] = []
    private var pumping = false
    private var pumpAgain = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: Instant?
    private var reader: DeviceReader?
    private var stopped = false
    private var impairer: Impairer?
    private var impairmentTimer: Scheduled<Void>?

    private init(stack: Stack, device: TUNDevice, eventLoop: EventLoop) {
        self.stack = stack
        self.device = device
        self.eventLoop = eventLoop
        self.closePromise = eventLoop.makePromise()
    }

    /// The monotonic clock the runtime passes to the stack.
    public static func now() -> Instant {
        Instant(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds))
    }

    /// Starts a stack on `eventLoop` reading from and writing to `device`.
    ///
    /// The device is handed over: from now on only the loop may use it.
    public static func start(
        stack: Stack, device: TUNDevice, on eventLoop: EventLoop
    ) -> EventLoopFuture<StackRuntime> {
        let runtime = StackRuntime(stack: stack, device: device, eventLoop: eventLoop)
        let receiver: TUNReceiver
        do {
            receiver = try TUNReceiver(device)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return eventLoop.submit {
            let reader = DeviceReader(receiver: receiver, runtime: runtime)
            runtime.reader = reader
            reader.start()
            runtime.pump()
            return runtime
        }
    }

    /// Stops the runtime: aborts nothing, stops the reader thread, completes `closeFuture`.
    public func stop() {
        eventLoop.execute { self.stop(error: nil) }
    }

    // MARK: The loop

    /// A batch the reader thread read from the device.
    func received(_ batch: TUNReceiver.Batch) {
        guard !stopped else { return }
        if batch.badVirtioNetHeaders > 0 { device.countDropped(badVirtioNetHeaders: batch.badVirtioNetHeaders) }
        for (index, datagram) in batch.datagrams.enumerated() {
            if device.admit(datagram) { deliver(datagram) }
            // Let the application read and the ACKs and window updates go out every few datagrams,
            // so the sender is not kept waiting for the whole batch.
            if (index + 1) % Self.pumpEvery == 0 { pump() }
        }
        pump()
    }

    private func deliver(_ datagram: TUNDatagram) {
        let now = Self.now()
        packetObserver?(datagram.packet, now, .inbound)
        if impairer != nil {
            // Impairment may corrupt bytes, which the stack must then catch: give it checksums to check.
            var datagram = datagram
            datagram.completeChecksum()
            for copy in impairer!.admit(datagram.packet, inbound: true, now: now) { stack.receive(copy, now: now) }
            armImpairmentTimer()
        } else {
            stack.receive(datagram.packet, now: now, checksumVerified: datagram.checksumTrusted)
        }
    }

    /// Impairs every datagram crossing the device from now on (see `Impairment`); nil for none.
    public func impair(_ model: Impairment?) {
        eventLoop.preconditionInEventLoop()
        impairer = model.map(Impairer.init)
    }

    private func armImpairmentTimer() {
        guard impairmentTimer == nil, let release = impairer?.held.first?.release else { return }
        impairmentTimer = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(UInt64(max(0, release.nanoseconds)))) { [self] in
            impairmentTimer = nil
            let now = Self.now()
            for (packet, inbound) in impairer?.due(now: now) ?? [] {
                if inbound {
                    stack.receive(packet, now: now)
                } else {
                    do { try device.write(packet) } catch { stop(error: error); return }
                }
            }
            armImpairmentTimer()
            pump()
        }
    }

    /// Runs timers that are due, hands events to channels and datagrams to the device, until nothing
    /// more happens; then arms the timer for the stack's next deadline. Re-entrant calls (a handler
    /// writing from inside a read) ask the running pump for another round instead of nesting.
    func pump() {
        guard !stopped else { return }
        if pumping {
            pumpAgain = true
            return
        }
        pumping = true
        repeat {
            pumpAgain = false
            let now = Self.now()
            if let deadline = stack.nextDeadline, deadline <= now {
                stack.advanceTime(to: now)
            }
            while let event = stack.nextEvent() {
                dispatch(event, now: now)
            }
            while !dirty.isEmpty {
                let channels = dirty
                dirty.removeAll(keepingCapacity: true)
                for channel in channels {
                    channel.isDirty = false
                    channel.service(now: now)
                }
            }
            transmit(now: now)
        } while pumpAgain && !stopped
        pumping = false
        if stack.tracing, let traceObserver {
            let records = stack.drainTrace()
            if !records.isEmpty { traceObserver(records) }
        }
        armTimer()
    }

    private func transmit(now: Instant) {
        while let packet = stack.nextPacketToSend() {
            packetObserver?(packet, now, .outbound)
            do {
                if impairer == nil {
                    try device.enqueue(packet)
                } else {
                    // Impairment may corrupt bytes, which the kernel must then catch: checksums in full.
                    let whole = stack.configuration.transmitChecksumOffload ? TUNDevice.completingChecksum(packet) : packet
                    for copy in impairer!.admit(whole, inbound: false, now: now) { try device.write(copy) }
                }
            } catch {
                stop(error: error)
                return
            }
        }
        do {
            try device.flush()
        } catch {
            stop(error: error)
            return
        }
        if impairer != nil { armImpairmentTimer() }
    }

    private func dispatch(_ event: StackEvent, now: Instant) {
        switch event {
        case .acceptable(let id):
            guard let listener = listeners[id] else { return }
            while let connection = stack.accept(id) {
                listener.accepted(connection, runtime: self)
            }
        case .connection(let id, let events):
            channels[id]?.handle(events, now: now)
        case .udpReadable(let id):
            udpChannels[id]?.readable(now: now)
        }
    }

    private func armTimer() {
        guard let deadline = stack.nextDeadline, !stopped else { return }
        // A timer that fires earlier than needed just re-arms; rescheduling costs more than that.
        if let armed = timerDeadline, armed <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let when = NIODeadline.uptimeNanoseconds(UInt64(max(0, deadline.nanoseconds)))
        timer = eventLoop.scheduleTask(deadline: when) { [self] in
            timerDeadline = nil
            timer = nil
            pump()
        }
    }

    /// Asks the pump to service `channel` (deliver reads, push writes) on its next round.
    func markDirty(_ channel: TCPConnectionChannel) {
        if !channel.isDirty {
            channel.isDirty = true
            dirty.append(channel)
        }
        pump()
    }

    func register(_ channel: TCPConnectionChannel) {
        channels[channel.connection] = channel
    }

    func unregister(_ channel: TCPConnectionChannel) {
        if channels[channel.connection] === channel { channels[channel.connection] = nil }
    }

    func register(_ channel: UDPChannel) {
        udpChannels[channel.endpoint] = channel
    }

    func unregister(_ channel: UDPChannel) {
        if udpChannels[channel.endpoint] === channel { udpChannels[channel.endpoint] = nil }
    }

    func stop(error: Error?) {
        guard !stopped else { return }
        stopped = true
        timer?.cancel()
        timer = nil
        impairmentTimer?.cancel()
        impairmentTimer = nil
        for channel in Array(channels.values) { channel.runtimeStopped(error) }
        channels.removeAll()
        for listener in listeners.values { listener.runtimeStopped() }
        listeners.removeAll()
        for channel in Array(udpChannels.values) { channel.runtimeStopped(error) }
        udpChannels.removeAll()
        reader?.stop()
        reader = nil
        device.close()
        if let error { closePromise.fail(error) } else { closePromise.succeed(()) }
    }
}

/// The runtime's reading thread: waits for the device, reads a batch, hands it to the loop.
///
/// At most `permits` batches wait on the loop at once, so a loop that falls behind slows the
/// reader rather than letting datagrams pile up in memory; the kernel's queue (500 datagrams by
/// default) then fills and the kernel drops, as it would for a slow NIC.
private final class DeviceReader: @unchecked Sendable {
    static let permits = 2

    private let receiver: TUNReceiver
    private let runtime: StackRuntime
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let credit = DispatchSemaphore(value: DeviceReader.permits)
    /// `stopping` and whether the receiver is closed, so `stop` never wakes a closed receiver.
    private let state = NIOLockedValueBox((stopping: false, closed: false))

    init(receiver: TUNReceiver, runtime: StackRuntime) {
        self.receiver = receiver
        self.runtime = runtime
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

    private func run() {
        let loop = runtime.eventLoop
        while true {
            credit.wait()
            if stopping { return }
            do {
                guard try receiver.wait(), !stopping else { return }
                let batch = try receiver.read(upTo: StackRuntime.readBatch)
                if batch.datagrams.isEmpty, batch.badVirtioNetHeaders == 0 {
                    credit.signal()
                    continue
                }
                loop.execute { [self] in
                    runtime.received(batch)
                    credit.signal()
                }
            } catch {
                loop.execute { [runtime] in runtime.stop(error: error) }
                return
            }
        }
    }
}

extension Endpoint {
    /// The NIO spelling of this endpoint, for `Channel.localAddress` and `remoteAddress`.
    var socketAddress: SocketAddress? {
        try? SocketAddress(ipAddress: address.description, port: Int(port))
    }

    /// The stack's spelling of a NIO address; nil for a Unix-domain address.
    init?(_ address: SocketAddress) {
        guard let text = address.ipAddress, let ip = IPAddress(text), let port = address.port else { return nil }
        self.init(ip, UInt16(port))
    }
}
#endif
