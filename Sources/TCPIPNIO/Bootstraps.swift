#if os(Linux)
import NIOCore
import TCPIP
import TCPIPWire

/// A listening port of a `StackRuntime`: each accepted connection becomes a channel, set up by the
/// bootstrap's child initializer, then activated.
public final class TCPListener: @unchecked Sendable {
    public let runtime: StackRuntime
    public let port: UInt16
    let id: ListenerID
    private let childOptions: ChannelOptions.Storage
    private let initializer: @Sendable (Channel) -> EventLoopFuture<Void>
    private var open = true

    init(
        runtime: StackRuntime, id: ListenerID, port: UInt16, childOptions: ChannelOptions.Storage,
        initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) {
        self.runtime = runtime
        self.id = id
        self.port = port
        self.childOptions = childOptions
        self.initializer = initializer
    }

    func accepted(_ connection: ConnectionID, runtime: StackRuntime) {
        let channel = TCPConnectionChannel(runtime: runtime, connection: connection, parent: nil, connecting: nil)
        runtime.register(channel)
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

    /// Stops listening; connections already accepted go on.
    public func close() -> EventLoopFuture<Void> {
        runtime.eventLoop.submit {
            guard self.open else { return }
            self.open = false
            self.runtime.listeners[self.id] = nil
            self.runtime.stack.closeListener(self.id, now: StackRuntime.now())
            self.runtime.pump()
        }
    }

    func runtimeStopped() {
        open = false
    }
}

/// Listens on a port of a `StackRuntime`, as `ServerBootstrap` does on a socket.
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
    public let runtime: StackRuntime
    private var childOptions = ChannelOptions.Storage()
    private var initializer: @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }

    public init(runtime: StackRuntime) {
        self.runtime = runtime
    }

    /// Sets an option on every accepted channel before its initializer runs.
    public func childChannelOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> Self {
        var copy = self
        copy.childOptions.append(key: option, value: value)
        return copy
    }

    public func childChannelInitializer(_ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> Self {
        var copy = self
        copy.initializer = initializer
        return copy
    }

    /// §3.10.1 OPEN, passive, on `port` of every address of the stack (or of `address`).
    public func bind(port: UInt16, address: IPAddress? = nil, backlog: Int = 1024) -> EventLoopFuture<TCPListener> {
        let runtime = self.runtime
        let childOptions = self.childOptions
        let initializer = self.initializer
        return runtime.eventLoop.submit {
            let id = try runtime.stack.listen(on: port, address: address, backlog: backlog)
            let listener = TCPListener(
                runtime: runtime, id: id, port: port, childOptions: childOptions, initializer: initializer)
            runtime.listeners[id] = listener
            return listener
        }
    }
}

/// Opens connections from a `StackRuntime`, as `ClientBootstrap` does with sockets. The future
/// succeeds once the handshake completes and fails with a `TCPError` (refused, timed out).
public struct TCPIPClientBootstrap: Sendable {
    public let runtime: StackRuntime
    private var options = ChannelOptions.Storage()
    private var initializer: @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }

    public init(runtime: StackRuntime) {
        self.runtime = runtime
    }

    public func channelOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> Self {
        var copy = self
        copy.options.append(key: option, value: value)
        return copy
    }

    public func channelInitializer(_ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> Self {
        var copy = self
        copy.initializer = initializer
        return copy
    }

    /// §3.10.1 OPEN, active.
    public func connect(to remote: Endpoint) -> EventLoopFuture<Channel> {
        let runtime = self.runtime
        let options = self.options
        let initializer = self.initializer
        return runtime.eventLoop.flatSubmit {
            let connection: ConnectionID
            do {
                connection = try runtime.stack.connect(to: remote, now: StackRuntime.now())
            } catch {
                return runtime.eventLoop.makeFailedFuture(error)
            }
            let connected = runtime.eventLoop.makePromise(of: Void.self)
            let channel = TCPConnectionChannel(
                runtime: runtime, connection: connection, parent: nil, connecting: connected)
            runtime.register(channel)
            channel.pipeline.fireChannelRegistered()
            runtime.pump()
            return options.applyAllChannelOptions(to: channel).flatMap {
                initializer(channel)
            }.flatMap {
                connected.futureResult
            }.map {
                channel as Channel
            }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
    }
}
#endif
