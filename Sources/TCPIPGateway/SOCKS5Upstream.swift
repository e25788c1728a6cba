import NIOCore
import NIOPosix
import TCPIPWire

/// A SOCKS5 server (RFC 1928), with username/password (RFC 1929) when given: CONNECT by address or
/// by name, UDP ASSOCIATE.
public struct SOCKS5Upstream: Upstream {
    /// The SOCKS5 server's address.
    public var server: SocketAddress
    /// The username and password (RFC 1929) offered to the server; nil: no authentication.
    public var credentials: Credentials?
    /// The options of the sockets to the server (and of the UDP sockets of its associations).
    public var options: UpstreamSocketOptions
    /// Without credentials, the request goes out with the greeting rather than after the server's
    /// method reply: one round trip to the server per flow instead of two (it halves the dial when
    /// the server is near). Off for a server that insists on the strict order.
    public var pipelining: Bool
    /// How many connections to the server each loop keeps opened ahead, greeted (and
    /// authenticated), for the next flows (see `SOCKS5Pool`): a flow then costs the CONNECT's round
    /// trip only. 0: none, every flow dials. Fixed at `init`.
    public let preconnect: Int
    /// How long a connection opened ahead waits for a flow before it is closed, by default.
    public static let preconnectIdleTimeout = TimeAmount.seconds(10)
    /// The connections opened ahead, shared by copies of this upstream.
    private let pool: SOCKS5Pool?

    /// A SOCKS5 upstream through `server`.
    ///
    /// - Parameters:
    ///   - server: the SOCKS5 server's address.
    ///   - credentials: the username and password to offer (RFC 1929); nil for no authentication.
    ///   - options: the options of every socket to the server.
    ///   - pipelining: whether the request goes out with the greeting (see ``pipelining``).
    ///   - preconnect: connections per loop opened ahead for the next flows (see ``preconnect``).
    ///   - preconnectIdleTimeout: how long one of those waits for a flow before it is closed.
    public init(
        server: SocketAddress, credentials: Credentials? = nil, options: UpstreamSocketOptions = UpstreamSocketOptions(),
        pipelining: Bool = true, preconnect: Int = 0, preconnectIdleTimeout: TimeAmount = SOCKS5Upstream.preconnectIdleTimeout
    ) {
        self.server = server
        self.credentials = credentials
        self.options = options
        self.pipelining = pipelining
        self.preconnect = max(0, preconnect)
        pool = preconnect > 0
            ? SOCKS5Pool(size: preconnect, idleTimeout: preconnectIdleTimeout) { loop in
                Self.prepare(server: server, credentials: credentials, options: options, on: loop)
            } : nil
    }

    /// A connection to `server` opened ahead: greeted (and authenticated), waiting for its request.
    private static func prepare(
        server: SocketAddress, credentials: Credentials?, options: UpstreamSocketOptions, on loop: EventLoop
    ) -> EventLoopFuture<SOCKS5Pool.Prepared> {
        open(server: server, options: options, on: loop) {
            SOCKS5Handshake(credentials: credentials, eventLoop: loop)
        } until: { handshake in
            handshake.ready ?? loop.makeSucceededVoidFuture()
        }.map { channel, handshake, _ in
            SOCKS5Pool.Prepared(channel: channel, handshake: handshake)
        }
    }

    /// A TCP connection to `server` with `makeHandshake`'s handler installed, once `until` (a
    /// future of that handshake) has succeeded. The handshake is bounded by the same deadline as
    /// the connect; on failure or at the deadline the channel is closed and the error passed on.
    private static func open<Value: Sendable>(
        server: SocketAddress, options: UpstreamSocketOptions, on loop: EventLoop,
        _ makeHandshake: @escaping @Sendable () -> SOCKS5Handshake,
        until: @escaping @Sendable (SOCKS5Handshake) -> EventLoopFuture<Value>
    ) -> EventLoopFuture<(Channel, NIOLoopBound<SOCKS5Handshake>, Value)> {
        ClientBootstrap(group: loop)
            .connectTimeout(options.connectTimeout)
            .channelInitializer { channel in options.apply(to: channel, tcp: true) }
            .connect(to: server)
            .flatMap { channel in
                let handshake = makeHandshake()
                let bound = NIOLoopBound(handshake, eventLoop: loop)
                do {
                    try channel.pipeline.syncOperations.addHandler(handshake, name: "socks5")
                } catch {
                    channel.close(promise: nil)
                    return loop.makeFailedFuture(error)
                }
                let timeout = loop.scheduleTask(in: options.connectTimeout) { channel.close(promise: nil) }
                return until(handshake).map { value in
                    timeout.cancel()
                    return (channel, bound, value)
                }.flatMapErrorThrowing { error in
                    timeout.cancel()
                    channel.close(promise: nil)
                    throw error
                }
            }
    }

    /// Connections opened ahead and idle on `loop` (0 without `preconnect`). On `loop`.
    func idleConnectionsAhead(on loop: EventLoop) -> Int { pool?.idleCount(on: loop) ?? 0 }

    /// CONNECT on a connection opened ahead; a server that closed it first (before any reply) is
    /// answered with a fresh dial, so a pool's stale connection never fails a flow.
    private func connect(
        _ prepared: SOCKS5Pool.Prepared, to target: SOCKS5.Address, on loop: EventLoop
    ) -> EventLoopFuture<UpstreamConnection> {
        let channel = prepared.channel
        let handshake = prepared.handshake.value
        let expired = NIOLoopBoundBox(false, eventLoop: loop)
        let timeout = loop.scheduleTask(in: options.connectTimeout) {
            expired.value = true
            channel.close(promise: nil)
        }
        handshake.send(.connect, target)
        return handshake.result.map { _ in
            timeout.cancel()
            return UpstreamConnection(channel: channel, handshake: prepared.handshake)
        }.flatMapError { error in
            timeout.cancel()
            channel.close(promise: nil)
            if expired.value { return loop.makeFailedFuture(UpstreamFailure.timedOut) }
            if case SOCKS5Error.closedDuringHandshake = error {
                return self.handshake(.connect, target, on: loop).map { channel, handshake, _ in
                    UpstreamConnection(channel: channel, handshake: handshake)
                }
            }
            return loop.makeFailedFuture(UpstreamFailure(error))
        }
    }

    /// `socks5` and the server's address.
    public var description: String { "socks5 \(server.ipAddress ?? "?"):\(server.port ?? 0)" }

    /// A connected control channel on which the handshake for `command` completed; its BND address.
    private func handshake(
        _ command: SOCKS5.Command, _ target: SOCKS5.Address, on loop: EventLoop
    ) -> EventLoopFuture<(Channel, NIOLoopBound<SOCKS5Handshake>, SOCKS5.Address)> {
        let credentials = self.credentials
        let pipelining = self.pipelining
        return Self.open(server: server, options: options, on: loop) {
            SOCKS5Handshake(command: command, target: target, credentials: credentials, pipelining: pipelining, eventLoop: loop)
        } until: { handshake in
            handshake.result.flatMapErrorThrowing { error in
                // Closed by the deadline (or by the server) before the reply.
                if case SOCKS5Error.closedDuringHandshake = error { throw UpstreamFailure.timedOut }
                throw error
            }
        }.flatMapErrorThrowing { throw UpstreamFailure($0) }
    }

    /// Opens a TCP connection to `target` (see ``Upstream/connect(to:on:)``).
    ///
    /// - Parameters:
    ///   - target: the flow's destination.
    ///   - loop: the gateway's loop.
    public func connect(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        guard let pool else { return dial(target, on: loop) }
        // The request goes out first; the pool's dials after it, while the server works on it.
        defer { pool.refill(on: loop) }
        if let prepared = pool.take(on: loop) {
            return connect(prepared, to: target, on: loop)
        }
        return dial(target, on: loop)
    }

    private func dial(_ target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        handshake(.connect, target, on: loop).map { channel, handshake, _ in
            UpstreamConnection(channel: channel, handshake: handshake)
        }
    }

    /// RFC 1928 §7: an association whose lifetime is the control connection's: when either ends,
    /// the other is closed.
    /// Opens a UDP session for one flow to `target` (see ``Upstream/openUDP(to:on:)``).
    ///
    /// - Parameters:
    ///   - target: the flow's destination.
    ///   - loop: the gateway's loop.
    public func openUDP(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UDPSession> {
        let server = self.server
        let options = self.options
        // §4: DST.ADDR/DST.PORT of UDP ASSOCIATE is where the client will send from; zeros when not
        // known (the relay then learns it from the first datagram).
        let any: SOCKS5.Address = if server.protocol == .inet6 { .ip(.v6(IPv6Address(high: 0, low: 0)), port: 0) } else {
            .ip(.v4(IPv4Address(rawValue: 0)), port: 0)
        }
        return handshake(.udpAssociate, any, on: loop).flatMap { control, _, bound in
            // A relay address of all zeros means "the server's own address" in practice (dante, hev).
            let relay: SocketAddress
            do {
                switch bound {
                case .ip(let address, let port):
                    let unspecified = address == .v4(IPv4Address(rawValue: 0)) || address == .v6(IPv6Address(high: 0, low: 0))
                    relay = try SocketAddress(ipAddress: unspecified ? server.ipAddress ?? "" : address.description, port: Int(port))
                case .domain:
                    throw UpstreamFailure.failed("UDP relay named by domain")
                }
            } catch {
                control.close(promise: nil)
                return loop.makeFailedFuture(UpstreamFailure(error))
            }
            let session = UDPSession(loop: loop, encapsulation: target, relay: relay)
            let any = relay.protocol == .inet6 ? "::" : "0.0.0.0"
            return session.bindSocket(host: any, options: options)
                .map { channel in
                    session.attach(channel, control: control)
                    return session
                }
                .flatMapErrorThrowing { error in
                    control.close(promise: nil)
                    throw error
                }
        }
    }
}
