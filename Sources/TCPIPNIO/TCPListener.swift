import NIOConcurrencyHelpers
import NIOCore
import TCPIP
import TCPIPWire

/// A listening port of a `StackRuntime`, as a NIO server `Channel`: each accepted connection
/// becomes a child channel (whose `parent` is the listener), set up by the bootstrap's child
/// initializer, then activated. What the initializer makes of it is read through this channel's
/// pipeline — which is how `TCPIPServerBootstrap.bind(…) async` hands connections to an
/// `NIOAsyncChannel`'s inbound stream. `close()` stops listening; connections already accepted go on.
///
/// Connections are accepted as they complete whatever the channel's read state: the listener's
/// backlog (`bind(… backlog:)`) is what bounds them, as the kernel's accept queue does.
public final class TCPListener: Channel, ChannelCore, @unchecked Sendable {
    // @unchecked: the mutable state (`open`) is touched only on `eventLoop`, as in NIO's own channels.
    /// The runtime whose stack listens.
    public let runtime: StackRuntime
    /// The port it listens on.
    public let port: UInt16
    public let eventLoop: EventLoop
    public let allocator = ByteBufferAllocator()
    let id: ListenerID
    private let core: RuntimeCore
    private let childOptions: ChannelOptions.Storage
    private let initializer: @Sendable (Channel) -> EventLoopFuture<Void>
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    private let activeBox = NIOLockedValueBox(true)
    private let local: SocketAddress?
    private var open = true

    init(
        runtime: StackRuntime, id: ListenerID, port: UInt16, address: IPAddress?,
        childOptions: ChannelOptions.Storage, initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) {
        let core = runtime.core.value
        self.runtime = runtime
        self.core = core
        self.eventLoop = runtime.eventLoop
        self.id = id
        self.port = port
        self.childOptions = childOptions
        self.initializer = initializer
        self.closePromise = runtime.eventLoop.makePromise()
        self.local = Endpoint(address ?? core.stack.configuration.addresses.first ?? .v4(IPv4Address(0, 0, 0, 0)), port)
            .socketAddress
        self._pipeline = ChannelPipeline(channel: self)
    }

    func accepted(_ connection: ConnectionID) {
        let channel = TCPConnectionChannel(runtime: core, connection: connection, parent: self, connecting: nil)
        core.register(channel)
        channel.pipeline.fireChannelRegistered()
        childOptions.applyAllChannelOptions(to: channel).flatMap {
            self.initializer(channel)
        }.whenComplete { result in
            switch result {
            case .success:
                channel.becomeActive()
            case .failure:
                channel.close(promise: nil)
            }
        }
    }

    func runtimeStopped(_ error: Error?) {
        guard open else { return }
        open = false
        activeBox.withLockedValue { $0 = false }
        if let error { pipeline.fireErrorCaught(error) }
        becomeClosed()
    }

    private func becomeClosed() {
        pipeline.fireChannelInactive()
        pipeline.fireChannelUnregistered()
        eventLoop.execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed(())
        }
    }

    // MARK: Channel

    public var pipeline: ChannelPipeline { _pipeline }
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    public var localAddress: SocketAddress? { local }
    public var remoteAddress: SocketAddress? { nil }
    public var parent: Channel? { nil }
    public var isWritable: Bool { false }
    public var isActive: Bool { activeBox.withLockedValue { $0 } }
    public var _channelCore: ChannelCore { self }

    public func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        // Socket options (SO_REUSEADDR in code written for sockets) are accepted and ignored.
        if option is ChannelOptions.Types.SocketOption || option is ChannelOptions.Types.AutoReadOption {
            return eventLoop.makeSucceededVoidFuture()
        }
        return eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    public func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        if option is ChannelOptions.Types.AutoReadOption { return eventLoop.makeSucceededFuture(true as! Option.Value) }
        return eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    // MARK: ChannelCore

    public func localAddress0() throws -> SocketAddress {
        guard let local else { throw ChannelError.unknownLocalAddress }
        return local
    }

    public func remoteAddress0() throws -> SocketAddress { throw ChannelError.operationUnsupported }
    public func register0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    public func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    public func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func flush0() {}
    public func read0() {}
    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    public func channelRead0(_ data: NIOAny) {}
    public func errorCaught0(error: Error) {}

    /// Stops listening (§3.10.4 CLOSE of a LISTEN: the half-open connections are reset).
    public func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        guard open else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        open = false
        activeBox.withLockedValue { $0 = false }
        core.listeners[id] = nil
        if !core.stopped {
            core.stack.closeListener(id, now: StackRuntime.now())
            core.pump()
        }
        promise?.succeed(())
        becomeClosed()
    }
}
