import NIOCore
import NIOPosix
import TCPIPWire

/// Where a relayed flow goes out: a kernel socket (`DirectUpstream`) or a SOCKS5 server
/// (`SOCKS5Upstream`). Every future completes on `loop`.
public protocol Upstream: Sendable, CustomStringConvertible {
    /// Opens a TCP connection to `target`. The channel it succeeds with is connected end to end
    /// (for SOCKS5: the server has answered CONNECT), reads are held (`autoRead` off) until a
    /// `SpliceHandler` is installed with `UpstreamConnection.splice`, and remote half-closure is allowed.
    ///
    /// - Parameters:
    ///   - target: the flow's destination, an address or (with fake DNS) a name.
    ///   - loop: the gateway's loop, where the channel lives and the future completes.
    func connect(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UpstreamConnection>
    /// Opens a UDP session for one flow whose datagrams go to `target`.
    ///
    /// - Parameters:
    ///   - target: the flow's destination.
    ///   - loop: the gateway's loop, where the session lives and the future completes.
    func openUDP(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UDPSession>
}

/// How a failed dial ends, for choosing what the tunnel's client is told.
public enum UpstreamFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The destination refused (RST to our SYN; SOCKS5 REP 5).
    case refused
    /// No route, or the host did not answer (EHOSTUNREACH, ENETUNREACH; SOCKS5 REP 3, 4).
    case unreachable(network: Bool)
    /// The connect did not complete in time (SOCKS5 REP 6, TTL expired, counts here too).
    case timedOut
    /// Anything else: the SOCKS server failed, refused the rule set, or spoke nonsense.
    case failed(String)

    /// How the dial failed, in words: `refused`, `host unreachable`, `timed out`.
    public var description: String {
        switch self {
        case .refused: "refused"
        case .unreachable(let network): network ? "network unreachable" : "host unreachable"
        case .timedOut: "timed out"
        case .failed(let why): "failed: \(why)"
        }
    }

    /// The failure's kind as a metrics label: `refused`, `unreachable`, `timed_out`, `failed`.
    public var metricName: String {
        switch self {
        case .refused: "refused"
        case .unreachable: "unreachable"
        case .timedOut: "timed_out"
        case .failed: "failed"
        }
    }

    /// The failure behind an error from NIO, a socket or the SOCKS5 handshake.
    ///
    /// - Parameter error: what the dial failed with.
    public init(_ error: Error) {
        switch error {
        case let failure as UpstreamFailure:
            self = failure
        case let error as IOError:
            self = Self(errno: error.errnoCode) ?? .failed("\(error)")
        case let error as NIOConnectionError:
            // Every address of a name failed: the first error decides.
            if let first = error.connectionErrors.first?.error {
                self = Self(first)
            } else {
                self = .failed("\(error)")
            }
        case let error as ChannelError:
            if case .connectTimeout = error { self = .timedOut } else { self = .failed("\(error)") }
        case let error as SOCKS5Error:
            switch error {
            case .reply(.connectionRefused): self = .refused
            case .reply(.networkUnreachable): self = .unreachable(network: true)
            case .reply(.hostUnreachable): self = .unreachable(network: false)
            case .reply(.ttlExpired): self = .timedOut
            default: self = .failed(error.description)
            }
        default:
            self = .failed("\(error)")
        }
    }

    init?(errno: CInt) {
        switch errno {
        case Errno.connectionRefused: self = .refused
        case Errno.hostUnreachable: self = .unreachable(network: false)
        case Errno.networkUnreachable: self = .unreachable(network: true)
        case Errno.timedOut: self = .timedOut
        default: return nil
        }
    }
}

/// A connected upstream channel, its reads held until the splice is installed.
public struct UpstreamConnection: Sendable {
    /// The connected channel: to the destination, or to the SOCKS5 server that reached it.
    public let channel: Channel
    /// The SOCKS5 handshake handler, if any: removed when the splice goes in, handing on what the
    /// server sent after its reply.
    let handshake: NIOLoopBound<SOCKS5Handshake>?

    /// Installs `handler` (the upstream half of a splice) and lets reads flow. On the channel's loop.
    /// An upstream that already closed (it answered and hung up while the client's handshake
    /// completed) hands on what it sent and its FIN, then closes the splice.
    ///
    /// - Parameter handler: the upstream half of ``SpliceHandler/pair(flow:idleTimeout:resetClient:resetUpstream:)``.
    public func splice(_ handler: SpliceHandler) throws {
        let pipeline = channel.pipeline.syncOperations
        do {
            try pipeline.addHandler(handler)
        } catch {
            handler.channelClosedBeforeSplice()
            throw error
        }
        if let handshake {
            pipeline.removeHandler(handshake.value, promise: nil)
        }
        if !channel.isActive { handler.channelClosedBeforeSplice() }
    }
}

/// TCP settings for upstream sockets.
public struct UpstreamSocketOptions: Sendable {
    /// How long a connect (and, for SOCKS5, its handshake) may take before the flow is refused.
    public var connectTimeout: TimeAmount = .seconds(10)
    /// TCP keep-alive on upstream sockets: idle seconds before the first probe, seconds between
    /// probes, probes before giving up (Linux only for the three numbers; elsewhere SO_KEEPALIVE
    /// with the system's timers). nil: no keep-alive.
    public var keepAlive: KeepAlive? = KeepAlive()
    /// `SO_BINDTODEVICE`: the interface relayed sockets leave by, so they cannot loop into the
    /// tunnel (Linux; root or CAP_NET_RAW).
    public var outboundInterface: String?
    /// `SO_MARK` on relayed sockets, for policy routing (`ip rule add fwmark N …`; Linux, CAP_NET_ADMIN).
    public var mark: UInt32?
    /// The socket's write buffer high-water mark: beyond it the splice stops reading the client.
    public var writeBufferHighWaterMark = 256 * 1024

    /// The three timers of TCP keep-alive (`TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`).
    public struct KeepAlive: Sendable, Hashable {
        /// Seconds without traffic before the first probe.
        public var idle: Int32 = 60
        /// Seconds between unanswered probes.
        public var interval: Int32 = 30
        /// Unanswered probes before the connection is dropped.
        public var count: Int32 = 9

        /// Keep-alive with these timers.
        ///
        /// - Parameters:
        ///   - idle: seconds without traffic before the first probe.
        ///   - interval: seconds between unanswered probes.
        ///   - count: unanswered probes before the connection is dropped.
        public init(idle: Int32 = 60, interval: Int32 = 30, count: Int32 = 9) {
            self.idle = idle
            self.interval = interval
            self.count = count
        }
    }

    /// The defaults: a 10-second connect timeout, keep-alive on, no interface or mark, 256 KiB of
    /// write buffer.
    public init() {}

    /// Applies what must be set before connect or bind (device, mark, keep-alive) to a socket channel.
    func apply(to channel: Channel, tcp: Bool) -> EventLoopFuture<Void> {
        var futures: [EventLoopFuture<Void>] = []
        if tcp {
            // TCP_NODELAY: NIO's ClientBootstrap, which opens every TCP socket here, sets it already
            // (at IPPROTO_TCP). A `.socketOption(.tcp_nodelay)` here was a second system call per
            // dial, and at SOL_SOCKET it set option 1 there, SO_DEBUG, which needs CAP_NET_ADMIN.
            futures.append(channel.setOption(.allowRemoteHalfClosure, value: true))
            futures.append(channel.setOption(.autoRead, value: false))
            // Reads start at 512 octets rather than NIO's 2 KiB, and grow to 64 KiB within two full
            // reads when the flow is busy. NIO keeps each channel's last read buffer for reuse, so an
            // idle flow (a SOCKS reply and a greeting were all it read) holds 512, not 2048.
            futures.append(channel.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 64 * 1024)))
            futures.append(channel.setOption(
                .writeBufferWaterMark,
                value: .init(low: writeBufferHighWaterMark / 2, high: writeBufferHighWaterMark)))
            if let keepAlive {
                futures.append(channel.setOption(.socketOption(.so_keepalive), value: 1))
                #if os(Linux)
                // TCP_KEEPIDLE 4, TCP_KEEPINTVL 5, TCP_KEEPCNT 6 (linux/tcp.h).
                futures.append(channel.setOption(.tcpOption(.init(rawValue: 4)), value: SocketOptionValue(keepAlive.idle)))
                futures.append(channel.setOption(.tcpOption(.init(rawValue: 5)), value: SocketOptionValue(keepAlive.interval)))
                futures.append(channel.setOption(.tcpOption(.init(rawValue: 6)), value: SocketOptionValue(keepAlive.count)))
                #endif
            }
        }
        #if os(Linux)
        if let mark {
            // SO_MARK is 36 (asm-generic/socket.h).
            futures.append(channel.setOption(.socketOption(.init(rawValue: 36)), value: SocketOptionValue(mark)))
        }
        if let outboundInterface, let options = channel as? SocketOptionProvider {
            // SO_BINDTODEVICE is 25; its value is the interface name, NUL-terminated, IFNAMSIZ (16) octets.
            var name: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &name) { raw in
                for (index, byte) in outboundInterface.utf8.prefix(15).enumerated() { raw[index] = byte }
            }
            futures.append(options.unsafeSetSocketOption(level: .socket, name: .init(rawValue: 25), value: name))
        }
        #endif
        return EventLoopFuture.andAllSucceed(futures, on: channel.eventLoop)
    }
}

/// A kernel socket per flow (NIO's `ClientBootstrap` / `DatagramBootstrap`).
public struct DirectUpstream: Upstream {
    /// The options of every socket it opens.
    public var options: UpstreamSocketOptions

    /// A direct upstream with these socket options.
    ///
    /// - Parameter options: connect timeout, keep-alive, interface, mark and buffer for every socket.
    public init(options: UpstreamSocketOptions = UpstreamSocketOptions()) {
        self.options = options
    }

    /// `direct`, with the outbound interface and mark when set.
    public var description: String {
        var text = "direct"
        if let interface = options.outboundInterface { text += " dev \(interface)" }
        if let mark = options.mark { text += " mark \(mark)" }
        return text
    }

    /// Opens a TCP connection to `target` (see ``Upstream/connect(to:on:)``).
    ///
    /// - Parameters:
    ///   - target: the flow's destination.
    ///   - loop: the gateway's loop.
    public func connect(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        let options = self.options
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(options.connectTimeout)
            .channelInitializer { channel in options.apply(to: channel, tcp: true) }
        let connected: EventLoopFuture<Channel>
        switch target {
        case .ip(let address, let port):
            do {
                connected = bootstrap.connect(to: try SocketAddress(ipAddress: address.description, port: Int(port)))
            } catch {
                return loop.makeFailedFuture(UpstreamFailure.failed("\(error)"))
            }
        case .domain(let name, let port):
            connected = bootstrap.connect(host: name, port: Int(port))
        }
        return connected
            .map { UpstreamConnection(channel: $0, handshake: nil) }
            .flatMapErrorThrowing { throw UpstreamFailure($0) }
    }

    /// Opens a UDP session for one flow to `target` (see ``Upstream/openUDP(to:on:)``).
    ///
    /// - Parameters:
    ///   - target: the flow's destination.
    ///   - loop: the gateway's loop.
    public func openUDP(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UDPSession> {
        guard case .ip(let address, let port) = target,
            let destination = try? SocketAddress(ipAddress: address.description, port: Int(port))
        else {
            // A name needs a resolver; a direct UDP flow always has an address (fake DNS names go by SOCKS5).
            return loop.makeFailedFuture(UpstreamFailure.failed("direct UDP needs an address"))
        }
        let options = self.options
        let session = UDPSession(loop: loop, encapsulation: nil, relay: destination)
        let any = if case .v6 = address { "::" } else { "0.0.0.0" }
        return session.bindSocket(host: any, options: options).map { channel in
            session.attach(channel)
            return session
        }
    }
}

/// One UDP flow's way out: a datagram socket, and for SOCKS5 the association's control connection.
/// On its loop only (futures carry it across, hence `@unchecked Sendable`: every member is touched
/// on `loop`, which the methods check). Datagrams from upstream go to `onDatagram`.
public final class UDPSession: @unchecked Sendable {
    /// Reads of the session's socket take a whole datagram, up to IPv4's 65,535 bytes with a SOCKS5
    /// header (NIO's default of 2,048 bytes would truncate larger ones without a word).
    static let receiveAllocator = FixedSizeRecvByteBufferAllocator(capacity: 65_536)

    let loop: EventLoop
    /// For SOCKS5: the destination every datagram is encapsulated for (RFC 1928 §7). nil: direct.
    let encapsulation: SOCKS5.Address?
    /// Where datagrams are sent: the destination (direct) or the server's relay (SOCKS5).
    let relay: SocketAddress
    private var channel: Channel?
    private var control: Channel?
    private var closed = false
    /// Each datagram from upstream, with its payload (decapsulated for SOCKS5).
    public var onDatagram: ((ByteBuffer) -> Void)?
    /// Called once when the session ends (closed here, by the socket, or by the control connection).
    public var onClose: (() -> Void)?
    /// Datagrams dropped: malformed from the relay, or written after the session closed.
    public private(set) var dropped = 0

    init(loop: EventLoop, encapsulation: SOCKS5.Address?, relay: SocketAddress) {
        self.loop = loop
        self.encapsulation = encapsulation
        self.relay = relay
    }

    /// The session's datagram socket: bound to any port of `host` (a wildcard address), with
    /// `options` and the handler that hands its datagrams to the session. `attach` it once bound.
    func bindSocket(host: String, options: UpstreamSocketOptions) -> EventLoopFuture<Channel> {
        DatagramBootstrap(group: loop)
            .channelOption(.recvAllocator, value: UDPSession.receiveAllocator)
            .channelInitializer { [self] channel in
                options.apply(to: channel, tcp: false).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(UDPSessionHandler(self))
                }
            }
            .bind(host: host, port: 0)
    }

    func attach(_ channel: Channel, control: Channel? = nil) {
        self.channel = channel
        self.control = control
        let this = NIOLoopBound(self, eventLoop: loop)
        channel.closeFuture.whenComplete { _ in this.value.close() }
        // RFC 1928 §7: "A UDP association terminates when the TCP connection that the UDP ASSOCIATE
        // request arrived on terminates."
        control?.closeFuture.whenComplete { _ in this.value.close() }
        // Keep reading the control connection so its close is seen.
        if let control {
            control.pipeline.syncOperations.removeHandler(name: "socks5", promise: nil)
            _ = control.setOption(.autoRead, value: true)
        }
    }

    /// Sends one datagram of the flow upstream.
    ///
    /// - Parameter payload: the client's datagram.
    public func send(_ payload: ByteBuffer) {
        loop.preconditionInEventLoop()
        guard !closed, let channel else {
            dropped += 1
            return
        }
        let data = encapsulation.map { SOCKS5.encapsulate(payload, to: $0) } ?? payload
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: relay, data: data), promise: nil)
    }

    func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard !closed else { return }
        if encapsulation != nil {
            guard let (_, payload) = SOCKS5.decapsulate(envelope.data) else {
                dropped += 1
                return
            }
            onDatagram?(payload)
        } else {
            onDatagram?(envelope.data)
        }
    }

    /// Ends the session: the datagram socket and the control connection close.
    public func close() {
        loop.preconditionInEventLoop()
        guard !closed else { return }
        closed = true
        channel?.close(promise: nil)
        control?.close(promise: nil)
        let onClose = self.onClose
        self.onClose = nil
        onDatagram = nil
        onClose?()
    }
}

/// Hands what a session's datagram socket reads to the session.
final class UDPSessionHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let session: UDPSession

    init(_ session: UDPSession) {
        self.session = session
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // An ICMP error on an unconnected datagram socket (ECONNREFUSED) is not the flow's end.
    }
}
