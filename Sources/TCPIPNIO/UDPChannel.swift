import NIOConcurrencyHelpers
import NIOCore
import TCPIP
import TCPIPWire

/// One UDP endpoint of a `Stack`, as a NIO `Channel` carrying `AddressedEnvelope<ByteBuffer>`, as a
/// `DatagramBootstrap`'s channel does: each read is one datagram with its sender's address, each
/// write one datagram to the envelope's address (a connected channel also takes a bare `ByteBuffer`).
///
/// - Reads follow NIO's read(): datagrams are taken from the endpoint's queue only while a read is
///   pending (always with `autoRead`); unread ones wait there, up to the stack's receive buffer.
/// - Writes go to the stack at flush; UDP has no send buffer to wait for, so the channel is always
///   writable. A write that fails (too large, no route of its family) fails its promise with a `UDPError`.
/// - Port unreachable for a connected channel's datagram is fired as `UDPError.connectionRefused`
///   through `errorCaught`, as NIO's datagram channels fire ECONNREFUSED; the channel stays open.
///
/// All state is touched on the event loop only; `isActive` is readable anywhere.
final class UDPChannel: LoopBoundOptionsChannel, ChannelCore, @unchecked Sendable {
    let runtime: RuntimeCore
    let endpoint: UDPEndpointID
    let eventLoop: EventLoop
    let parent: Channel? = nil
    let allocator = ByteBufferAllocator()
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    private let activeBox = NIOLockedValueBox(false)
    private let local: SocketAddress?
    private let remote: SocketAddress?

    private var open = true
    private var autoRead = true
    private var readPending = false
    private var deliveryScheduled = false
    private var maxMessagesPerRead = 16
    private var pendingWrites = CircularBuffer<(datagram: AddressedEnvelope<ByteBuffer>?, buffer: ByteBuffer, promise: EventLoopPromise<Void>?)>()
    private var flushedCount = 0

    init(runtime: RuntimeCore, endpoint: UDPEndpointID) {
        self.runtime = runtime
        self.endpoint = endpoint
        self.eventLoop = runtime.eventLoop
        self.closePromise = runtime.eventLoop.makePromise()
        let status = runtime.stack.udpStatus(endpoint)
        let wildcard: IPAddress = .v6(IPv6Address(high: 0, low: 0))
        self.local = status.flatMap { Endpoint($0.localAddress ?? wildcard, $0.localPort).socketAddress }
        self.remote = status?.remote?.socketAddress
        self._pipeline = ChannelPipeline(channel: self)
    }

    // MARK: Channel

    var pipeline: ChannelPipeline { _pipeline }
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    var localAddress: SocketAddress? { local }
    var remoteAddress: SocketAddress? { remote }
    var isActive: Bool { activeBox.withLockedValue { $0 } }
    var isWritable: Bool { true }
    var _channelCore: ChannelCore { self }

    var syncOptions: NIOSynchronousChannelOptions? { LoopBoundSynchronousOptions(channel: self) }

    func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            let on = value as! Bool
            let wasOff = !autoRead
            autoRead = on
            if on && wasOff && open { pipeline.read() }
        case _ as ChannelOptions.Types.MaxMessagesPerReadOption:
            maxMessagesPerRead = max(1, Int(value as! UInt))
        case _ as ChannelOptions.Types.SocketOption, _ as ChannelOptions.Types.RecvAllocatorOption:
            // Accepted and ignored (SO_REUSEADDR, receive allocators), so code written for
            // DatagramBootstrap runs unchanged.
            break
        default:
            throw ChannelError.operationUnsupported
        }
    }

    func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption: return autoRead as! Option.Value
        case _ as ChannelOptions.Types.MaxMessagesPerReadOption: return UInt(maxMessagesPerRead) as! Option.Value
        default: throw ChannelError.operationUnsupported
        }
    }

    // MARK: ChannelCore

    func localAddress0() throws -> SocketAddress {
        guard let local else { throw ChannelError.unknownLocalAddress }
        return local
    }

    func remoteAddress0() throws -> SocketAddress {
        guard let remote else { throw ChannelError.operationUnsupported }
        return remote
    }

    func register0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard open else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if let envelope = tryUnwrapData(data, as: AddressedEnvelope<ByteBuffer>.self) {
            pendingWrites.append((envelope, envelope.data, promise))
        } else if remote != nil, let buffer = tryUnwrapData(data, as: ByteBuffer.self) {
            pendingWrites.append((nil, buffer, promise))
        } else {
            promise?.fail(ChannelError.operationUnsupported)
        }
    }

    func flush0() {
        flushedCount = pendingWrites.count
        guard open else { return }
        let now = StackRuntime.now()
        var outcomes: [(EventLoopPromise<Void>?, Error?)] = []
        while flushedCount > 0, let write = pendingWrites.popFirst() {
            flushedCount -= 1
            do {
                var destination: Endpoint?
                if let address = write.datagram?.remoteAddress {
                    guard let endpoint = Endpoint(address) else { throw UDPError.invalidArgument }
                    destination = endpoint
                }
                try runtime.stack.send(endpoint, write.buffer, to: destination, now: now)
                outcomes.append((write.promise, nil))
            } catch {
                outcomes.append((write.promise, error))
            }
        }
        runtime.pump()
        for (promise, error) in outcomes {
            if let error { promise?.fail(error) } else { promise?.succeed(()) }
        }
    }

    func read0() {
        guard open else { return }
        readPending = true
        scheduleDelivery()
    }

    func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        guard open else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        runtime.stack.close(endpoint)
        becomeClosed(promise: promise, error: ChannelError.ioOnClosedChannel)
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func channelRead0(_ data: NIOAny) {}
    func errorCaught0(error: Error) {}

    // MARK: From the runtime

    func becomeActive() {
        activeBox.withLockedValue { $0 = true }
        pipeline.fireChannelActive()
        if autoRead && open { pipeline.read() }
    }

    /// The stack has a datagram or an error for this endpoint.
    func readable(now: Instant) {
        if readPending { deliverReads() }
    }

    /// Reads are delivered from the loop, not from inside `read()`: a handler that reads again from
    /// `channelReadComplete` would otherwise recurse.
    private func scheduleDelivery() {
        guard !deliveryScheduled else { return }
        deliveryScheduled = true
        eventLoop.execute {
            self.deliveryScheduled = false
            if self.readPending { self.deliverReads() }
        }
    }

    private func deliverReads() {
        var delivered = 0
        while open && readPending && delivered < maxMessagesPerRead {
            let datagram: UDPDatagram?
            do {
                datagram = try runtime.stack.receive(endpoint)
            } catch {
                pipeline.fireErrorCaught(error)
                continue
            }
            guard let datagram else { break }
            let sender = datagram.source.socketAddress
            delivered += 1
            readPending = false
            pipeline.fireChannelRead(AddressedEnvelope(remoteAddress: sender, data: datagram.payload))
            if autoRead { readPending = true }
        }
        if delivered > 0 { pipeline.fireChannelReadComplete() }
        // More than one turn's worth queued: the rest next turn, after other channels had theirs.
        if open && readPending && delivered == maxMessagesPerRead { scheduleDelivery() }
    }

    /// Not closed yet (by the application or the stack).
    var isOpen: Bool { open }

    /// The stack closed the endpoint itself (an intercepted flow that stayed idle): the channel
    /// closes as if the application had closed it.
    func endpointClosedByStack() {
        guard open else { return }
        becomeClosed(promise: nil, error: ChannelError.ioOnClosedChannel)
    }

    func runtimeStopped(_ error: Error?) {
        guard open else { return }
        if let error { pipeline.fireErrorCaught(error) }
        becomeClosed(promise: nil, error: error ?? ChannelError.ioOnClosedChannel)
    }

    private func becomeClosed(promise: EventLoopPromise<Void>?, error: Error) {
        open = false
        readPending = false
        let failed = pendingWrites.map(\.promise)
        pendingWrites.removeAll()
        flushedCount = 0
        runtime.unregister(self)
        let wasActive = isActive
        activeBox.withLockedValue { $0 = false }
        for promise in failed { promise?.fail(error) }
        promise?.succeed(())
        if wasActive { pipeline.fireChannelInactive() }
        pipeline.fireChannelUnregistered()
        eventLoop.execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed(())
        }
    }
}
