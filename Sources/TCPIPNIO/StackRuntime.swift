import Logging
import NIOCore
import TCPIP
import TCPIPWire

/// A `Stack` on one SwiftNIO `EventLoop`, with its packet source: the driver loop of DESIGN.md.
///
///     source: read a batch ──▶ stack.receive ─────────────┐
///     timer (nextDeadline) ──▶ stack.advanceTime ──────────┼─▶ pump: events ▶ channels, packets ▶ source
///     channel write/flush/read/close ──────────────────────┘
///
/// Everything that touches the stack, and every write to the source, happens on `eventLoop` (the
/// stack is not thread-safe). This handle is `Sendable`: what it holds of the loop's state is
/// reachable only on the loop (`stack`, `packetSource` and the observers check), and `stop` may be
/// called from anywhere.
///
/// With a `Logger`, the runtime says what a user needs to know: `info` when it starts (with the
/// configuration it derived from the source) and stops, `error` when its source fails, and `debug`
/// for each connection that ends in error (with `tcp.local` and `tcp.remote` metadata). Nothing is
/// logged per segment.
///
/// ```swift
/// let runtime = try await StackRuntime.start(
///     StackConfiguration(addresses: [IPAddress("198.18.0.2")!]), source: device, on: group.next())
/// ```
public final class StackRuntime: Sendable {
    /// Datagrams read from a device per turn of the loop before other work gets a chance.
    public static let readBatch = 256

    /// The loop the stack runs on: every call into the stack and every channel of it is on this loop.
    public let eventLoop: EventLoop
    let core: NIOLoopBound<RuntimeCore>
    private let closePromise: EventLoopPromise<Void>

    private init(core: RuntimeCore) {
        self.eventLoop = core.eventLoop
        self.core = NIOLoopBound(core, eventLoop: core.eventLoop)
        self.closePromise = core.closePromise
    }

    /// The monotonic clock the runtime passes to the stack.
    public static func now() -> Instant {
        Instant(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds))
    }

    /// The stack. Only on `eventLoop`.
    public var stack: Stack { core.value.stack }
    /// The source the stack reads from and writes to. Only on `eventLoop`.
    public var packetSource: any PacketSource { core.value.source }
    /// Succeeds when the runtime stops; fails with the error of the source that stopped it.
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }

    /// Which way a datagram crossed the source (`packetObserver`).
    public enum Direction: Sendable {
        /// Read from the source, into the stack.
        case inbound
        /// Written by the stack to the source.
        case outbound
    }

    /// Called on the loop with every datagram that crosses the source, for `--trace` and captures.
    /// Only on `eventLoop`.
    public var packetObserver: ((ByteBuffer, Instant, Direction) -> Void)? {
        get { core.value.packetObserver }
        set { core.value.packetObserver = newValue }
    }
    /// Called on the loop with the decision trace after each pump when the stack is tracing.
    /// Only on `eventLoop`.
    public var traceObserver: (([TraceRecord]) -> Void)? {
        get { core.value.traceObserver }
        set { core.value.traceObserver = newValue }
    }

    /// Impairs every datagram crossing the source from now on (see `Impairment`); nil for none.
    /// Only on `eventLoop`.
    public func impair(_ model: Impairment?) {
        core.value.impair(model)
    }

    // MARK: Starting

    /// Starts a stack built from `configuration` on `eventLoop`, over `source`. The MTU and the
    /// checksum offloads come from the source (`derive`), whatever `configuration` says of them.
    ///
    /// The source is handed over: from now on only the loop may use it.
    ///
    /// Not public: beside the `async` variant of the same name, top-level code (a `main.swift`, where
    /// Swift does not prefer `async` overloads) would get this one from `try await` and a future
    /// where it expected the runtime. Handler code outside the package uses `start(stack:source:on:logger:)`.
    package static func start(
        _ configuration: StackConfiguration, source: some PacketSource, on eventLoop: EventLoop, logger: Logger? = nil
    ) -> EventLoopFuture<StackRuntime> {
        let derived = derive(configuration, from: source)
        if let logger, derived.mtu != configuration.mtu {
            logger.debug("MTU taken from the packet source", metadata: [
                "configured": "\(configuration.mtu)", "source": "\(derived.mtu)",
            ])
        }
        return start(stack: Stack(derived), source: source, on: eventLoop, logger: logger)
    }

    /// Starts `stack` on `eventLoop`, over `source`. Fails with a `ConfigurationError` when the
    /// stack was configured for what the source cannot do.
    public static func start(
        stack: Stack, source: some PacketSource, on eventLoop: EventLoop, logger: Logger? = nil
    ) -> EventLoopFuture<StackRuntime> {
        do {
            try validate(stack.configuration, for: source)
        } catch {
            logger?.error("the stack's configuration does not fit its packet source", metadata: ["error": "\(error)"])
            return eventLoop.makeFailedFuture(error)
        }
        // Stack and source are handed over to the loop; nothing else holds them from here on.
        let handOver = UnsafeTransfer((stack, source as any PacketSource))
        return eventLoop.submit {
            let (stack, source) = handOver.value
            let core = RuntimeCore(stack: stack, source: source, eventLoop: eventLoop, logger: logger)
            let runtime = StackRuntime(core: core)
            do {
                try source.startReading(into: PacketReceiver(eventLoop: eventLoop, core: runtime.core))
            } catch {
                core.stop(error: error)
                throw error
            }
            core.logStarted()
            core.pump()
            return runtime
        }
    }

    /// Starts a stack built from `configuration` on `eventLoop`, over `source`, and returns it
    /// running. The MTU and the checksum offloads come from the source, whatever `configuration`
    /// says of them; a stack configured for what the source cannot do throws a `ConfigurationError`.
    ///
    /// The source is handed over: from now on only the loop may use it.
    public static func start(
        _ configuration: StackConfiguration, source: some PacketSource, on eventLoop: EventLoop, logger: Logger? = nil
    ) async throws -> StackRuntime {
        try await start(configuration, source: source, on: eventLoop, logger: logger).get()
    }

    // MARK: Stopping

    /// Stops the runtime: aborts nothing, closes the source, completes `closeFuture`. Any thread.
    /// `promise`, if given, succeeds once it has stopped (or fails with the source's error if that
    /// had stopped it before), as NIO's `close(promise:)` does.
    public func stop(promise: EventLoopPromise<Void>?) {
        requestStop()
        if let promise { closeFuture.cascade(to: promise) }
    }

    /// Stops the runtime and waits until it has: channels closed, source closed. Throws the
    /// source's error if it had stopped the runtime before.
    public func stop() async throws {
        requestStop()
        try await closeFuture.get()
    }

    /// How a graceful shutdown ended.
    public struct ShutdownOutcome: Hashable, Sendable {
        /// Connections that finished on their own before the deadline.
        public var finished: Int
        /// Connections still open at the deadline, reset (RST).
        public var reset: Int
    }

    /// Stops gracefully: listeners close at once (no new connection is accepted), the open
    /// connections' channels are told `ChannelShouldQuiesceEvent` (NIO's HTTP server then closes
    /// idle keep-alive connections), and the runtime waits for them to finish. Those still open at
    /// `deadline` are reset (RFC 9293 §3.10.5 ABORT). Then it stops as `stop()` does. Any thread.
    /// In intercept mode, connection requests are refused with RST meanwhile, as by a closed
    /// listener, whether they arrive or are accepted during the drain.
    public func shutdownGracefully(deadline: NIODeadline) async throws -> ShutdownOutcome {
        let result = try await shutdownGracefully(deadline: deadline).get()
        try await closeFuture.get()
        return result
    }

    /// `shutdownGracefully(deadline:)`, as a future that succeeds once the runtime has stopped.
    /// Package-only, as `stop()` is: top-level code would get it from `try await`.
    package func shutdownGracefully(deadline: NIODeadline) -> EventLoopFuture<ShutdownOutcome> {
        let core = self.core
        return eventLoop.flatSubmit { core.value.drain(deadline: deadline) }
    }

    private func requestStop() {
        let core = self.core
        eventLoop.execute { core.value.stop(error: nil) }
    }
}

/// What the runtime keeps on its loop: the stack, the source, the channels and the pump.
final class RuntimeCore {
    /// Datagrams between two pumps while draining the source. Measured with the peers kit's sender
    /// at MTU 1500: pumping only after 256 gave 1.2–1.4 Gbit/s, every 32 gave 1.6–2.2, every 4 gave 1.3.
    static let pumpEvery = 32

    let eventLoop: EventLoop
    let stack: Stack
    let source: any PacketSource
    let closePromise: EventLoopPromise<Void>
    var packetObserver: ((ByteBuffer, Instant, StackRuntime.Direction) -> Void)?
    var traceObserver: (([TraceRecord]) -> Void)?
    var channels: [ConnectionID: TCPConnectionChannel] = [:]
    var listeners: [ListenerID: TCPListener] = [:]
    var udpChannels: [UDPEndpointID: UDPChannel] = [:]
    /// Intercept mode (Interception.swift): the application's handlers, and the connections it
    /// accepted whose handshake has not completed yet.
    var connectionRequestHandler: (@Sendable (ConnectionRequest) -> Void)?
    var udpFlowHandler: (@Sendable (Channel) -> Void)?
    var echoRequestHandler: (@Sendable (EchoRequest) -> Void)?
    var pendingAccepts: [ConnectionID: PendingAccept] = [:]
    private var dirty: [TCPConnectionChannel] = []
    private var pumping = false
    private var pumpAgain = false
    /// A read of what the source can hand over at once is queued on the loop (`readAfterWriting`).
    private var readAfterWritingQueued = false
    var timer: Scheduled<Void>?
    var timerDeadline: Instant?
    private(set) var stopped = false
    /// While shutting down gracefully: what `drain` promised, and how many connections it waits for.
    private var draining: (promise: EventLoopPromise<StackRuntime.ShutdownOutcome>, open: Int, deadline: Scheduled<Void>)?
    private var impairer: Impairer?
    private var impairmentTimer: Scheduled<Void>?
    /// Nil for silence: the fast path then pays one nil check where it would log.
    let logger: Logger?

    init(stack: Stack, source: any PacketSource, eventLoop: EventLoop, logger: Logger? = nil) {
        self.stack = stack
        self.source = source
        self.eventLoop = eventLoop
        self.closePromise = eventLoop.makePromise()
        self.logger = logger
    }

    func logStarted() {
        guard let logger else { return }
        let configuration = stack.configuration
        logger.info("stack started", metadata: [
            "addresses": "\(configuration.addresses.map { "\($0)" }.joined(separator: " "))",
            "mtu": "\(configuration.mtu)",
            "checksum-offload.transmit": "\(configuration.transmitChecksumOffload)",
            "checksum-offload.receive": "\(configuration.checksumOffload)",
            "source": "\(type(of: source))",
        ])
    }

    // MARK: The loop

    /// A batch the source read.
    func received(_ batch: [InboundDatagram]) {
        guard !stopped else { return }
        for (index, datagram) in batch.enumerated() {
            deliver(datagram)
            // Let the application read and the ACKs and window updates go out every few datagrams,
            // so the sender is not kept waiting for the whole batch.
            if (index + 1) % Self.pumpEvery == 0 { pump() }
        }
        pump()
    }

    private func deliver(_ datagram: InboundDatagram) {
        let now = StackRuntime.now()
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

    func impair(_ model: Impairment?) {
        impairer = model.map(Impairer.init)
    }

    /// Whether the impairment flips bits: only then must a datagram leave exactly as it is.
    private var impairerCorrupts: Bool { (impairer?.model.corrupt ?? 0) > 0 }

    /// An outbound datagram the impairment let through. Without corruption it goes the ordinary
    /// way, `enqueue`: with offload, consecutive segments of a flow then leave as one TSO
    /// super-packet, as they do unimpaired. Written one by one (`writeAsIs`, a write(2) each with
    /// a checksum made in software and checked by the kernel's TCP in software), a 300 Mbit/s
    /// download over `--impair delay=50ms` cost the host ~26,000 writes a second and held the
    /// download well below the upload, whose kernel-sent super-packets are held whole.
    private func writeImpaired(_ packet: ByteBuffer) throws {
        if impairerCorrupts {
            try source.writeAsIs(packet)
        } else {
            try source.enqueue(packet)
        }
    }

    private func armImpairmentTimer() {
        guard impairmentTimer == nil, let release = impairer?.held.first?.release else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        impairmentTimer = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(UInt64(max(0, release.nanoseconds)))) {
            bound.value.impairmentTimerFired()
        }
    }

    private func impairmentTimerFired() {
        impairmentTimer = nil
        let now = StackRuntime.now()
        do {
            for (packet, inbound) in impairer?.due(now: now) ?? [] {
                if inbound {
                    stack.receive(packet, now: now)
                } else {
                    try writeImpaired(packet)
                }
            }
            // The datagrams released together leave together: one batch, as `transmit` ends one.
            try source.flush()
        } catch {
            stop(error: error)
            return
        }
        armImpairmentTimer()
        pump()
    }

    /// Runs timers that are due, hands events to channels and datagrams to the source, until nothing
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
            let now = StackRuntime.now()
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
            if transmit(now: now) { readAfterWriting() }
        } while pumpAgain && !stopped
        pumping = false
        if stack.tracing, let traceObserver {
            let records = stack.drainTrace()
            if !records.isEmpty { traceObserver(records) }
        }
        armTimer()
    }

    /// After a write: what the other side answered within it (`PacketSource.readWithoutWaiting`),
    /// taken in by a task of its own on the loop, as a batch from the source's reader is, but with
    /// no thread woken for it. A task rather than at once: an answer taken in inside the pump that
    /// wrote would complete a handshake inside the application's call that caused the write (an
    /// `accept` from a read handler), where the application does not expect its channel active yet.
    /// One queued at a time.
    private func readAfterWriting() {
        guard !readAfterWritingQueued else { return }
        readAfterWritingQueued = true
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute {
            let core = bound.value
            core.readAfterWritingQueued = false
            guard !core.stopped else { return }
            let answers = core.source.readWithoutWaiting()
            if !answers.isEmpty { core.received(answers) }
        }
    }

    /// Whether anything was written.
    @discardableResult
    private func transmit(now: Instant) -> Bool {
        var wrote = false
        while let packet = stack.nextPacketToSend() {
            wrote = true
            packetObserver?(packet, now, .outbound)
            do {
                if impairer == nil {
                    try source.enqueue(packet)
                } else {
                    // Impairment that may corrupt bytes needs checksums in full: the peer must catch
                    // the damage, not have an offload engine checksum it afresh.
                    let whole = impairerCorrupts && stack.configuration.transmitChecksumOffload
                        ? source.completingChecksum(packet) : packet
                    for copy in impairer!.admit(whole, inbound: false, now: now) { try writeImpaired(copy) }
                }
            } catch {
                stop(error: error)
                return false
            }
        }
        do {
            try source.flush()
        } catch {
            stop(error: error)
            return false
        }
        if impairer != nil { armImpairmentTimer() }
        return wrote
    }

    private func dispatch(_ event: StackEvent, now: Instant) {
        switch event {
        case .acceptable(let id):
            guard let listener = listeners[id] else { return }
            while let connection = stack.accept(id) {
                listener.accepted(connection)
            }
        case .connection(let id, let events):
            if let channel = channels[id] {
                channel.handle(events, now: now)
            } else if !pendingAccepts.isEmpty {
                acceptedConnectionEvents(id, events, now: now)
            }
        case .udpReadable(let id):
            udpChannels[id]?.readable(now: now)
        case .connectionRequest(let id):
            connectionRequested(id, now: now)
        case .udpFlow(let id):
            udpFlowBegan(id)
        case .udpFlowExpired(let id):
            udpChannels[id]?.endpointClosedByStack()
        case .echoRequest(let request):
            echoRequestHandler?(request)
        }
    }

    private func armTimer() {
        guard let deadline = stack.nextDeadline, !stopped else { return }
        // A timer that fires earlier than needed just re-arms; rescheduling costs more than that.
        if let armed = timerDeadline, armed <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let when = NIODeadline.uptimeNanoseconds(UInt64(max(0, deadline.nanoseconds)))
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        timer = eventLoop.scheduleTask(deadline: when) {
            let core = bound.value
            core.timerDeadline = nil
            core.timer = nil
            core.pump()
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
        finishDrainIfIdle()
    }

    /// Connections a graceful stop waits for: those with a channel, and those the application
    /// accepted in intercept mode whose handshake has not completed yet (their client already
    /// counts itself connected once our SYN-ACK reached it).
    var openConnections: Int { channels.count + pendingAccepts.count }

    /// Ends a graceful stop once the last connection it waited for is gone.
    func finishDrainIfIdle() {
        if let draining, openConnections == 0 {
            draining.deadline.cancel()
            self.draining = nil
            let outcome = StackRuntime.ShutdownOutcome(finished: draining.open, reset: 0)
            logger?.info("all connections finished", metadata: ["connections": "\(draining.open)"])
            // Not from inside the channel's own close: let it finish first.
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.execute {
                bound.value.stop(error: nil)
                draining.promise.succeed(outcome)
            }
        }
    }

    /// `StackRuntime.shutdownGracefully(deadline:)`, on the loop.
    /// A graceful stop is under way: listeners are closed and no connection is accepted.
    var isDraining: Bool { draining != nil }

    func drain(deadline: NIODeadline) -> EventLoopFuture<StackRuntime.ShutdownOutcome> {
        if let draining { return draining.promise.futureResult }
        let promise = eventLoop.makePromise(of: StackRuntime.ShutdownOutcome.self)
        guard !stopped else {
            promise.succeed(.init(finished: 0, reset: 0))
            return promise.futureResult
        }
        for listener in Array(listeners.values) { listener.close(promise: nil) }
        let open = openConnections
        logger?.info("shutting down: listeners closed", metadata: ["connections": "\(open)"])
        guard open > 0 else {
            stop(error: nil)
            promise.succeed(.init(finished: 0, reset: 0))
            return promise.futureResult
        }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let timer = eventLoop.scheduleTask(deadline: deadline) { bound.value.drainDeadlinePassed() }
        draining = (promise, open, timer)
        for channel in Array(channels.values) {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        return promise.futureResult
    }

    private func drainDeadlinePassed() {
        guard let draining else { return }
        self.draining = nil
        let now = StackRuntime.now()
        let remaining = Array(channels.values)
        let handshaking = Array(pendingAccepts.keys)
        let reset = remaining.count + handshaking.count
        logger?.warning("shutdown deadline passed: resetting connections", metadata: ["connections": "\(reset)"])
        // RFC 9293 §3.10.5 ABORT: each still-open connection gets its RST before the source closes.
        for channel in remaining {
            logger?.debug("connection reset at shutdown", metadata: channel.logMetadata())
            stack.abort(channel.connection, now: now)
        }
        for connection in handshaking { stack.abort(connection, now: now) }
        transmit(now: now)
        stop(error: nil)
        draining.promise.succeed(.init(finished: draining.open - reset, reset: reset))
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
        if let draining {
            self.draining = nil
            draining.deadline.cancel()
            draining.promise.succeed(.init(finished: draining.open - openConnections, reset: 0))
        }
        timer?.cancel()
        timer = nil
        impairmentTimer?.cancel()
        impairmentTimer = nil
        for channel in Array(channels.values) { channel.runtimeStopped(error) }
        channels.removeAll()
        for listener in listeners.values { listener.runtimeStopped(error) }
        listeners.removeAll()
        for channel in Array(udpChannels.values) { channel.runtimeStopped(error) }
        udpChannels.removeAll()
        failPendingAccepts(error ?? ChannelError.ioOnClosedChannel)
        source.close()
        if let error {
            logger?.error("packet source failed; stack stopped", metadata: ["error": "\(error)"])
            closePromise.fail(error)
        } else {
            logger?.info("stack stopped")
            closePromise.succeed(())
        }
    }
}

/// A value handed from one isolation domain to another, never touched by the first again.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
