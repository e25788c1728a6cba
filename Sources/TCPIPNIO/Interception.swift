import NIOCore
import TCPIP
import TCPIPWire

/// Intercept mode on the runtime (`StackConfiguration.interception`): the application hears of each
/// connection request and each new UDP flow, dials wherever it relays to, and only then completes the
/// client's handshake — or refuses it, so a client never sees an open port that is not.
///
/// ```swift
/// runtime.setConnectionRequestHandler { request in
///     upstream.connect(to: request.destination).whenComplete { result in
///         switch result {
///         case .success(let outbound):
///             runtime.accept(request) { inbound in inbound.pipeline.addHandler(Splice(outbound)) }
///         case .failure:
///             runtime.refuse(request, with: .reset)
///         }
///     }
/// }
/// ```
///
/// Every handler is called on the runtime's event loop; `accept` and `refuse` may be called from anywhere.
extension StackRuntime {
    /// Called on the loop for every connection request (intercept mode only). Without a handler,
    /// requests are refused with an RST.
    public func setConnectionRequestHandler(_ handler: @escaping @Sendable (ConnectionRequest) -> Void) {
        onLoop { $0.connectionRequestHandler = handler }
    }

    /// Completes the handshake of `request`: the stack sends its SYN-ACK with the options of the
    /// client's SYN. `initializer` runs on the child channel before its first read; the future
    /// succeeds with the channel once ESTABLISHED, and fails if the client went away first (or the
    /// request had already been answered or had expired: `TCPError.connectionDoesNotExist`; or the
    /// runtime has stopped or is stopping gracefully: `ChannelError.ioOnClosedChannel`, and during
    /// a graceful stop the request is refused with RST).
    ///
    /// The channel is the kind a `TCPIPServerBootstrap` accepts: back-pressure through `isWritable`,
    /// `autoRead` and `read()`, half-closure with `ChannelOptions.allowRemoteHalfClosure`
    /// (`ChannelEvent.inputClosed`; `close(mode: .output)` sends our FIN), a reset fired as a `TCPError`.
    /// Its local address is the original destination.
    public func accept(
        _ request: ConnectionRequest, initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        let core = self.core
        if eventLoop.inEventLoop { return core.value.accept(request, initializer: initializer) }
        return eventLoop.flatSubmit { core.value.accept(request, initializer: initializer) }
    }

    /// Turns `request` away: RST, ICMP destination unreachable, or silence (`Refusal`).
    public func refuse(_ request: ConnectionRequest, with refusal: Refusal) {
        onLoop { core in
            guard !core.stopped else { return }
            core.stack.refuse(request.id, with: refusal, now: StackRuntime.now())
            core.pump()
        }
    }

    /// Called on the loop for a new UDP flow, with a channel of `AddressedEnvelope<ByteBuffer>` (as
    /// `TCPIPDatagramBootstrap` makes, connected to the client) whose `localAddress` is the original
    /// destination. The handler adds its handlers synchronously; the first datagram is read after it
    /// returns. The channel closes when the application closes it or the flow stays idle for its
    /// timeout (`InterceptionConfiguration.udpFlowTimeout`). Without a handler, flows are closed.
    public func setUDPFlowHandler(_ handler: @escaping @Sendable (Channel) -> Void) {
        onLoop { $0.udpFlowHandler = handler }
    }

    /// Called on the loop for each echo request when the stack delivers them
    /// (`InterceptionConfiguration.icmpEcho` `.deliver`); answer with `answer(_:)`.
    public func setEchoRequestHandler(_ handler: @escaping @Sendable (EchoRequest) -> Void) {
        onLoop { $0.echoRequestHandler = handler }
    }

    /// Sends the echo reply to a delivered echo request.
    public func answer(_ request: EchoRequest) {
        onLoop { core in
            guard !core.stopped else { return }
            core.stack.answer(request, now: StackRuntime.now())
            core.pump()
        }
    }

    private func onLoop(_ body: @escaping @Sendable (RuntimeCore) -> Void) {
        let core = self.core
        if eventLoop.inEventLoop {
            body(core.value)
        } else {
            eventLoop.execute { body(core.value) }
        }
    }
}

/// A connection the application accepted, waiting for the client's ACK.
struct PendingAccept {
    var initializer: @Sendable (Channel) -> EventLoopFuture<Void>
    var promise: EventLoopPromise<Channel>
}

extension RuntimeCore {
    func accept(
        _ request: ConnectionRequest, initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        guard !stopped else { return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        // A graceful stop accepts no new connection, as it closes its listeners: a request the
        // application answers while the runtime drains is refused (RST) instead.
        if isDraining {
            stack.refuse(request.id, with: .reset, now: StackRuntime.now())
            pump()
            return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        let promise = eventLoop.makePromise(of: Channel.self)
        do {
            let connection = try stack.accept(request.id, now: StackRuntime.now())
            pendingAccepts[connection] = PendingAccept(initializer: initializer, promise: promise)
        } catch {
            promise.fail(error)
        }
        pump()
        return promise.futureResult
    }

    /// A connection request from the stack: to the application's handler, or refused.
    func connectionRequested(_ id: ConnectionRequestID, now: Instant) {
        guard let request = stack.connectionRequest(id) else { return }
        if isDraining {
            // Draining: the SYN meets what a closed listener answers.
            stack.refuse(id, with: .reset, now: now)
        } else if let connectionRequestHandler {
            connectionRequestHandler(request)
        } else {
            stack.refuse(id, with: .reset, now: now)
        }
    }

    /// Events of a connection accepted from a request that has no channel yet: ESTABLISHED makes
    /// its channel, set up by the application's initializer and then activated (as `TCPListener`
    /// does for a listener's connections); CLOSED first fails the accept.
    func acceptedConnectionEvents(_ id: ConnectionID, _ events: ConnectionEvents, now: Instant) {
        guard let pending = pendingAccepts[id] else { return }
        if events.contains(.closed) {
            pendingAccepts[id] = nil
            let error = stack.status(id)?.error ?? TCPError.connectionDoesNotExist
            stack.abort(id, now: now)
            pending.promise.fail(error)
            finishDrainIfIdle()
            return
        }
        guard events.contains(.established) else { return }
        pendingAccepts[id] = nil
        let channel = TCPConnectionChannel(runtime: self, connection: id, parent: nil, connecting: nil)
        register(channel)
        channel.pipeline.fireChannelRegistered()
        pending.initializer(channel).whenComplete { result in
            switch result {
            case .success:
                channel.becomeActive()
                pending.promise.succeed(channel)
                // Accepted before a graceful stop began, established after: it is asked to
                // finish as the channels open at the stop were.
                if channel.runtime.isDraining {
                    channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                }
            case .failure(let error):
                channel.close(promise: nil)
                pending.promise.fail(error)
            }
        }
    }

    func failPendingAccepts(_ error: Error) {
        let pending = pendingAccepts
        pendingAccepts.removeAll()
        for accept in pending.values { accept.promise.fail(error) }
    }

    /// A new UDP flow: its channel, handed to the application's handler before its first read.
    func udpFlowBegan(_ id: UDPEndpointID) {
        guard let udpFlowHandler else {
            stack.close(id)
            return
        }
        let channel = UDPChannel(runtime: self, endpoint: id)
        register(channel)
        channel.pipeline.fireChannelRegistered()
        udpFlowHandler(channel)
        if channel.isOpen { channel.becomeActive() }
    }
}
