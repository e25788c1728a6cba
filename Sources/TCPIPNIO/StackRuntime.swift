#if os(Linux)
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TCPIP
import TCPIPLinks
import TCPIPWire

/// A `Stack` on one SwiftNIO `EventLoop`, with its TUN device: the driver loop of DESIGN.md.
///
///     TUN readable ──▶ read a batch ──▶ stack.receive ─┐
///     timer (nextDeadline) ──▶ stack.advanceTime ──────┼─▶ pump: events ▶ channels, packets ▶ TUN
///     channel write/flush/read/close ──────────────────┘
///
/// The loop watches the TUN descriptor through a NIO pipe channel that owns a duplicate of it; that
/// channel's read wakes the runtime, which then drains the device itself (NIO's stream reader stops
/// after every short read, one datagram per wakeup). Everything that touches the stack happens on
/// `eventLoop`; the stack itself is not thread-safe.
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
    private var dirty: [TCPConnectionChannel] = []
    private var pumping = false
    private var pumpAgain = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: Instant?
    private var watcher: Channel?
    private var receivedInBatch = 0
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
        let watched: Int32
        do {
            watched = try device.duplicateDescriptor()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return NIOPipeBootstrap(group: eventLoop)
            .channelOption(.autoRead, value: true)
            // NIO reads the device, up to a batch per wakeup; the runtime never reads it behind NIO's
            // back (a read NIO was told would succeed and finds empty trips its own invariant).
            .channelOption(.maxMessagesPerRead, value: UInt(Self.readBatch))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: device.mtu + 1))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DeviceWatcher(runtime: runtime))
                }
            }
            .takingOwnershipOfDescriptor(input: watched)
            .map { channel in
                runtime.watcher = channel
                runtime.pump()
                return runtime
            }
    }

    /// Stops the runtime: aborts nothing, closes the device watcher, completes `closeFuture`.
    public func stop() {
        eventLoop.execute { self.stop(error: nil) }
    }

    // MARK: The loop

    /// One datagram from the watcher's own read, then a batch straight from the device.
    /// One datagram NIO read from the device.
    func received(_ packet: ByteBuffer) {
        if device.admit(packet) { deliver(packet) }
        receivedInBatch += 1
        // Let the application read and the ACKs and window updates go out every few datagrams,
        // so the sender is not kept waiting for the whole batch.
        if receivedInBatch % Self.pumpEvery == 0 { pump() }
    }

    /// NIO's read loop for this wakeup is over.
    func batchEnded() {
        receivedInBatch = 0
        pump()
    }

    private func deliver(_ packet: ByteBuffer) {
        let now = Self.now()
        packetObserver?(packet, now, .inbound)
        if impairer != nil {
            for copy in impairer!.admit(packet, inbound: true, now: now) { stack.receive(copy, now: now) }
            armImpairmentTimer()
        } else {
            stack.receive(packet, now: now)
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
                    try device.write(packet)
                } else {
                    for copy in impairer!.admit(packet, inbound: false, now: now) { try device.write(copy) }
                }
            } catch {
                stop(error: error)
                return
            }
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

    func stop(error: Error?) {
        guard !stopped else { return }
        stopped = true
        timer?.cancel()
        timer = nil
        impairmentTimer?.cancel()
        impairmentTimer = nil
        let failure = error ?? ChannelError.eof
        for channel in Array(channels.values) { channel.runtimeStopped(failure) }
        channels.removeAll()
        for listener in listeners.values { listener.runtimeStopped() }
        listeners.removeAll()
        watcher?.close(promise: nil)
        watcher = nil
        device.close()
        if let error { closePromise.fail(error) } else { closePromise.succeed(()) }
    }
}

/// Wakes the runtime when the TUN descriptor is readable.
private final class DeviceWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let runtime: StackRuntime

    init(runtime: StackRuntime) {
        self.runtime = runtime
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        runtime.received(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        runtime.batchEnded()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        runtime.stop(error: TUNError.deviceGone(Errno(rawValue: (error as? IOError)?.errnoCode ?? 5)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        runtime.stop(error: TUNError.deviceGone(Errno(rawValue: 5)))
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
