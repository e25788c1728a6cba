import NIOCore
import TCPIP
import TCPIPWire

/// Listens on a port of a `StackRuntime`, as `ServerBootstrap` does on a socket.
///
/// With async/await, each connection an `NIOAsyncChannel`:
///
/// ```swift
/// let server = try await TCPIPServerBootstrap(runtime: runtime).bind(port: 7, childChannelConfiguration: .init())
/// try await withThrowingDiscardingTaskGroup { group in
///     try await server.executeThenClose { connections in
///         for try await connection in connections {
///             group.addTask {
///                 try await connection.executeThenClose { inbound, outbound in
///                     for try await chunk in inbound { try await outbound.write(chunk) }
///                 }
///             }
///         }
///     }
/// }
/// ```
///
/// With handlers, as before:
///
/// ```swift
/// let listener = try await TCPIPServerBootstrap(runtime: runtime)
///     .childChannelInitializer { channel in
///         channel.eventLoop.makeCompletedFuture {
///             try channel.pipeline.syncOperations.configureHTTPServerPipeline()
///             try channel.pipeline.syncOperations.addHandler(MyHTTPHandler())
///         }
///     }
///     .bind(port: 80).get()
/// ```
public struct TCPIPServerBootstrap: Sendable {
    /// The runtime whose stack listens.
    public let runtime: StackRuntime
    private var childOptions = ChannelOptions.Storage()
    private var initializer: @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }

    /// A bootstrap for listeners on `runtime`'s stack.
    ///
    /// - Parameter runtime: the runtime whose stack the listeners are opened on.
    public init(runtime: StackRuntime) {
        self.runtime = runtime
    }

    /// Sets an option on every accepted channel before its initializer runs.
    public func childChannelOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> Self {
        var copy = self
        copy.childOptions.append(key: option, value: value)
        return copy
    }

    /// Sets up every accepted channel before it becomes active (and before its first read).
    public func childChannelInitializer(_ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> Self {
        var copy = self
        copy.initializer = initializer
        return copy
    }

    /// §3.10.1 OPEN, passive, on `port` of every address of the stack (or of `address`).
    public func bind(port: UInt16, address: IPAddress? = nil, backlog: Int = 1024) -> EventLoopFuture<TCPListener> {
        listen(port: port, address: address, backlog: backlog, initializer: initializer) { $0 }
    }

    /// §3.10.1 OPEN, passive, with async/await: every accepted connection is set up by
    /// `childChannelInitializer` (after the bootstrap's own) before its first read, and what it
    /// returns (typically an `NIOAsyncChannel`) is an element of the returned channel's inbound stream.
    /// Closing the returned channel (leaving `executeThenClose`) stops listening.
    public func bind<Output: Sendable>(
        port: UInt16, address: IPAddress? = nil, backlog: Int = 1024,
        childChannelInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Output>
    ) async throws -> NIOAsyncChannel<Output, Never> {
        let bootstrapInitializer = initializer
        // The listener is created in `listen` before this initializer can run; it is read from the
        // child's `parent`, where each output is handed to the listener's pipeline.
        let perChild: @Sendable (Channel) -> EventLoopFuture<Void> = { channel in
            bootstrapInitializer(channel).flatMap {
                childChannelInitializer(channel)
            }.map { output in
                // A read and its end: NIOAsyncChannel hands what it buffered over at the end.
                channel.parent?.pipeline.fireChannelRead(output)
                channel.parent?.pipeline.fireChannelReadComplete()
            }
        }
        return try await listen(port: port, address: address, backlog: backlog, initializer: perChild) { listener in
            try NIOAsyncChannel<Output, Never>(wrappingChannelSynchronously: listener)
        }.get()
    }

    /// §3.10.1 OPEN, passive, with async/await: each accepted connection an
    /// `NIOAsyncChannel<ByteBuffer, ByteBuffer>`, wrapped before its first read.
    public func bind(
        port: UInt16, address: IPAddress? = nil, backlog: Int = 1024,
        childChannelConfiguration: NIOAsyncChannel<ByteBuffer, ByteBuffer>.Configuration
    ) async throws -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never> {
        try await bind(port: port, address: address, backlog: backlog) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: channel, configuration: childChannelConfiguration)
            }
        }
    }

    /// Opens the listener on the loop and, before any connection can be accepted, makes of it
    /// what the caller returns (the listener, or an `NIOAsyncChannel` wrapping it).
    private func listen<Result: Sendable>(
        port: UInt16, address: IPAddress?, backlog: Int,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>,
        _ wrap: @escaping @Sendable (TCPListener) throws -> Result
    ) -> EventLoopFuture<Result> {
        let runtime = self.runtime
        let childOptions = self.childOptions
        return runtime.eventLoop.submit {
            let core = runtime.core.value
            guard !core.stopped else { throw ChannelError.ioOnClosedChannel }
            let id = try runtime.stack.listen(on: port, address: address, backlog: backlog)
            let listener = TCPListener(
                runtime: runtime, id: id, port: port, address: address, childOptions: childOptions,
                initializer: initializer)
            let result: Result
            do {
                result = try wrap(listener)
            } catch {
                listener.close(promise: nil)
                throw error
            }
            core.listeners[id] = listener
            return result
        }
    }
}

/// Opens connections from a `StackRuntime`, as `ClientBootstrap` does with sockets. The future
/// succeeds once the handshake completes and fails with a `TCPError` (refused, timed out).
///
/// ```swift
/// let connection = try await TCPIPClientBootstrap(runtime: runtime)
///     .connect(to: Endpoint("198.18.0.2:7")!, configuration: .init())
/// try await connection.executeThenClose { inbound, outbound in … }
/// ```
public struct TCPIPClientBootstrap: Sendable {
    /// The runtime whose stack connects.
    public let runtime: StackRuntime
    private var setup = ChannelSetup()

    /// A bootstrap for connections from `runtime`'s stack.
    /// - Parameter runtime: the running stack the connections belong to.
    public init(runtime: StackRuntime) {
        self.runtime = runtime
    }

    /// Sets an option on every channel before its initializer runs.
    /// - Parameters:
    ///   - option: the option, e.g. `.allowRemoteHalfClosure`.
    ///   - value: its value.
    public func channelOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> Self {
        var copy = self
        copy.setup.options.append(key: option, value: value)
        return copy
    }

    /// Sets up every channel before the handshake completes (and before its first read).
    /// - Parameter initializer: adds the channel's handlers.
    public func channelInitializer(_ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> Self {
        var copy = self
        copy.setup.initializer = initializer
        return copy
    }

    /// §3.10.1 OPEN, active.
    public func connect(to remote: Endpoint) -> EventLoopFuture<Channel> {
        open(to: remote) { $0.eventLoop.makeSucceededFuture($0) }
    }

    /// §3.10.1 OPEN, active, with async/await: `channelInitializer` (after the bootstrap's own)
    /// sets the channel up before the handshake completes, so nothing the peer sends first is
    /// missed; its output is returned once the connection is established.
    public func connect<Output: Sendable>(
        to remote: Endpoint, channelInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Output>
    ) async throws -> Output {
        try await open(to: remote, channelInitializer).get()
    }

    /// §3.10.1 OPEN, active, with async/await: the connection as an `NIOAsyncChannel`, wrapped
    /// before its first read.
    public func connect(
        to remote: Endpoint, configuration: NIOAsyncChannel<ByteBuffer, ByteBuffer>.Configuration
    ) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await connect(to: remote) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel, configuration: configuration)
            }
        }
    }

    /// §3.10.1 OPEN, active, to a NIO `SocketAddress` (IPv4 or IPv6).
    public func connect(to address: SocketAddress) -> EventLoopFuture<Channel> {
        guard let remote = Endpoint(address) else {
            return runtime.eventLoop.makeFailedFuture(TCPError.invalidArgument)
        }
        return connect(to: remote)
    }

    private func open<Output: Sendable>(
        to remote: Endpoint, _ channelInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Output>
    ) -> EventLoopFuture<Output> {
        let runtime = self.runtime
        let setup = self.setup
        return runtime.eventLoop.flatSubmit {
            let core = runtime.core.value
            guard !core.stopped else { return runtime.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            let connection: ConnectionID
            do {
                connection = try core.stack.connect(to: remote, now: StackRuntime.now())
            } catch {
                return runtime.eventLoop.makeFailedFuture(error)
            }
            let connected = runtime.eventLoop.makePromise(of: Void.self)
            let channel = TCPConnectionChannel(runtime: core, connection: connection, parent: nil, connecting: connected)
            core.register(channel)
            channel.pipeline.fireChannelRegistered()
            core.pump()
            return setup.run(on: channel, then: channelInitializer).flatMap { output in
                connected.futureResult.map { output }
            }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
    }
}

/// Binds UDP endpoints on a `StackRuntime`, as `DatagramBootstrap` does with sockets. Each channel
/// carries `AddressedEnvelope<ByteBuffer>`: each read one datagram with its sender's address, each
/// write one datagram to the envelope's address.
///
/// With async/await, the channel an `NIOAsyncChannel`, wrapped before its first read:
///
/// ```swift
/// let server = try await TCPIPDatagramBootstrap(runtime: runtime).bind(port: 7, configuration: .init())
/// try await server.executeThenClose { inbound, outbound in
///     for try await datagram in inbound {
///         try await outbound.write(AddressedEnvelope(remoteAddress: datagram.remoteAddress, data: datagram.data))
///     }
/// }
/// ```
///
/// With handlers:
///
/// ```swift
/// let channel = try await TCPIPDatagramBootstrap(runtime: runtime)
///     .channelInitializer { channel in
///         channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
///     }
///     .bind(port: 7).get()
/// ```
public struct TCPIPDatagramBootstrap: Sendable {
    /// What an async datagram channel carries both ways.
    public typealias AsyncChannel = NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>

    /// The runtime whose stack holds the UDP endpoints.
    public let runtime: StackRuntime
    private var setup = ChannelSetup()

    /// A bootstrap for UDP endpoints of `runtime`'s stack.
    /// - Parameter runtime: the running stack the endpoints belong to.
    public init(runtime: StackRuntime) {
        self.runtime = runtime
    }

    /// Sets an option on every channel before its initializer runs.
    /// - Parameters:
    ///   - option: the option, e.g. `.maxMessagesPerRead`.
    ///   - value: its value.
    public func channelOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> Self {
        var copy = self
        copy.setup.options.append(key: option, value: value)
        return copy
    }

    /// Sets up every channel before it becomes active (and before its first read).
    /// - Parameter initializer: adds the channel's handlers.
    public func channelInitializer(_ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> Self {
        var copy = self
        copy.setup.initializer = initializer
        return copy
    }

    /// Binds `port` (0: an ephemeral one) on every address of the stack, or on `address`.
    /// - Parameters:
    ///   - port: the local port; 0 takes an ephemeral one (RFC 6056, TCP's allocator).
    ///   - address: one of the stack's addresses, or nil for all of them.
    public func bind(port: UInt16, address: IPAddress? = nil) -> EventLoopFuture<Channel> {
        open({ stack throws(UDPError) in try stack.bindUDP(port: port, address: address) }) {
            $0.eventLoop.makeSucceededFuture($0)
        }
    }

    /// Binds `port` with async/await: `channelInitializer` (after the bootstrap's own) sets the
    /// channel up before it becomes active, so no datagram is read before it has run; its output
    /// (typically an `NIOAsyncChannel`) is returned.
    /// - Parameters:
    ///   - port: the local port; 0 takes an ephemeral one.
    ///   - address: one of the stack's addresses, or nil for all of them.
    ///   - channelInitializer: makes of the channel what the caller gets.
    public func bind<Output: Sendable>(
        port: UInt16, address: IPAddress? = nil,
        channelInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Output>
    ) async throws -> Output {
        try await open({ stack throws(UDPError) in try stack.bindUDP(port: port, address: address) }, channelInitializer).get()
    }

    /// Binds `port` with async/await: the channel as an `NIOAsyncChannel` of envelopes, wrapped
    /// before its first read.
    /// - Parameters:
    ///   - port: the local port; 0 takes an ephemeral one.
    ///   - address: one of the stack's addresses, or nil for all of them.
    ///   - configuration: the `NIOAsyncChannel`'s back-pressure and half-closure settings.
    public func bind(
        port: UInt16, address: IPAddress? = nil, configuration: AsyncChannel.Configuration
    ) async throws -> AsyncChannel {
        try await bind(port: port, address: address, channelInitializer: Self.wrap(configuration))
    }

    /// Binds an ephemeral port and connects it to `remote`: the channel receives only `remote`'s
    /// datagrams, takes bare `ByteBuffer` writes, and hears of port unreachable.
    /// - Parameter remote: the peer's address and port.
    public func connect(to remote: Endpoint) -> EventLoopFuture<Channel> {
        open({ stack throws(UDPError) in try stack.connectUDP(to: remote) }) { $0.eventLoop.makeSucceededFuture($0) }
    }

    /// Connects with async/await: `channelInitializer` (after the bootstrap's own) runs before the
    /// channel becomes active, and its output is returned.
    /// - Parameters:
    ///   - remote: the peer's address and port.
    ///   - channelInitializer: makes of the channel what the caller gets.
    public func connect<Output: Sendable>(
        to remote: Endpoint, channelInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Output>
    ) async throws -> Output {
        try await open({ stack throws(UDPError) in try stack.connectUDP(to: remote) }, channelInitializer).get()
    }

    /// Connects with async/await: the channel as an `NIOAsyncChannel` of envelopes (their address
    /// is the peer's), wrapped before its first read.
    /// - Parameters:
    ///   - remote: the peer's address and port.
    ///   - configuration: the `NIOAsyncChannel`'s back-pressure and half-closure settings.
    public func connect(to remote: Endpoint, configuration: AsyncChannel.Configuration) async throws -> AsyncChannel {
        try await connect(to: remote, channelInitializer: Self.wrap(configuration))
    }

    private static func wrap(
        _ configuration: AsyncChannel.Configuration
    ) -> @Sendable (Channel) -> EventLoopFuture<AsyncChannel> {
        { channel in
            channel.eventLoop.makeCompletedFuture {
                try AsyncChannel(wrappingChannelSynchronously: channel, configuration: configuration)
            }
        }
    }

    /// Makes the endpoint on the loop, then the channel, runs the setup and `channelInitializer`,
    /// and only then makes it active (its first read).
    private func open<Output: Sendable>(
        _ make: @escaping @Sendable (Stack) throws(UDPError) -> UDPEndpointID,
        _ channelInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Output>
    ) -> EventLoopFuture<Output> {
        let runtime = self.runtime
        let setup = self.setup
        return runtime.eventLoop.flatSubmit {
            let core = runtime.core.value
            guard !core.stopped else { return runtime.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            let endpoint: UDPEndpointID
            do {
                endpoint = try make(core.stack)
            } catch {
                return runtime.eventLoop.makeFailedFuture(error)
            }
            let channel = UDPChannel(runtime: core, endpoint: endpoint)
            core.register(channel)
            channel.pipeline.fireChannelRegistered()
            return setup.run(on: channel, then: channelInitializer).map { output in
                channel.becomeActive()
                return output
            }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
    }
}
