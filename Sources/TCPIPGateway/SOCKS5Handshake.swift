import NIOCore

/// Drives a SOCKS5 client handshake (RFC 1928 §3–§6, RFC 1929) on a connected channel whose
/// `autoRead` is off: it reads only what it needs. `result` succeeds with the server's BND address;
/// bytes that follow the reply (the upstream's first data) are kept and passed on when the handler
/// is removed, so nothing is lost between the handshake and the splice. So is the end of the
/// server's input (its FIN, `ChannelEvent.inputClosed`), which a target that answers and closes at
/// once sends in the same read as the reply: without it the flow would wait for a FIN that came.
///
/// Opened ahead (`init(credentials:eventLoop:)`, for `SOCKS5Pool`) it stops after the method
/// exchange (and authentication): `ready` succeeds, and the handler keeps one read outstanding so
/// that a server closing the idle connection is seen at once; `send(_:_:)` later makes the request.
final class SOCKS5Handshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase { case method, authentication, ready, reply, done, failed }

    /// The request: nil until `send` for a connection opened ahead.
    private var request: (command: SOCKS5.Command, target: SOCKS5.Address)?
    private let credentials: Credentials?
    /// The request went out with the greeting (no credentials: only method 0 is offered).
    private let pipelined: Bool
    private let promise: EventLoopPromise<SOCKS5.Address>
    /// Opened ahead: succeeds when the server has accepted the method (and the credentials).
    private let readyPromise: EventLoopPromise<Void>?
    /// Set while the handler is in a pipeline, for `send`.
    private var context: ChannelHandlerContext?
    private var phase = Phase.method
    private var buffered = ByteBuffer()
    /// The server's FIN arrived after its reply, before the splice took over.
    private var inputEnded = false
    /// RFC 1928 replies are at most 4 + 1 + 255 + 2 octets: more before the reply is complete is not SOCKS.
    private static let maximumHandshakeBytes = 1024

    var result: EventLoopFuture<SOCKS5.Address> { promise.futureResult }
    /// Opened ahead: the connection is greeted and waits for `send`. nil for a handshake with its request.
    var ready: EventLoopFuture<Void>? { readyPromise?.futureResult }

    /// - Parameter pipelining: without credentials, send the request with the greeting instead of
    ///   after the method reply, saving a round trip per flow (see `SOCKS5Upstream.pipelining`).
    init(command: SOCKS5.Command, target: SOCKS5.Address, credentials: Credentials?, pipelining: Bool = false, eventLoop: EventLoop) {
        self.request = (command, target)
        self.credentials = credentials
        self.pipelined = pipelining && credentials == nil
        self.promise = eventLoop.makePromise()
        self.readyPromise = nil
    }

    /// A handshake opened ahead: greeting (and authentication) only, the request to come with `send`.
    init(credentials: Credentials?, eventLoop: EventLoop) {
        self.request = nil
        self.credentials = credentials
        self.pipelined = false
        self.promise = eventLoop.makePromise()
        self.readyPromise = eventLoop.makePromise()
    }

    /// Opened ahead and `ready`: sends the request; `result` completes with the server's reply. On
    /// the channel's loop. A connection that is no longer ready (the server closed it) fails `result`.
    func send(_ command: SOCKS5.Command, _ target: SOCKS5.Address) {
        guard phase == .ready, let context else {
            fail(SOCKS5Error.closedDuringHandshake, context: context)
            return
        }
        request = (command, target)
        sendRequest(context: context)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        var greeting = ByteBuffer(bytes: SOCKS5.greeting(withCredentials: credentials != nil))
        if pipelined {
            // DEVIATION(RFC 1928 §3–§4): the request follows the method reply there. With one method
            // offered (0, no authentication) the reply can only be 0 or X'FF' (and a close), and a
            // server reads its request from the stream whenever it comes; sent at once, it saves
            // a round trip per flow (hev-socks5-tunnel's `pipeline` option does the same).
            if let (command, target) = request {
                var bytes = SOCKS5.request(command, target)
                greeting.writeBuffer(&bytes)
            }
        }
        context.writeAndFlush(wrapOutboundOut(greeting), promise: nil)
        context.read()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        if phase != .done { fail(SOCKS5Error.closedDuringHandshake, context: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffered.writeBuffer(&bytes)
        guard phase != .done else { return }
        do {
            try advance(context: context)
        } catch {
            fail(error, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Still waiting for the server: ask for more (autoRead is off until the splice takes over).
        // Opened ahead and idle: a read stays outstanding so that the server's close is seen.
        if phase == .method || phase == .authentication || phase == .ready || phase == .reply { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if phase == .done {
            inputEnded = true
        } else {
            fail(SOCKS5Error.closedDuringHandshake, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(SOCKS5Error.closedDuringHandshake, context: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if phase == .done {
            context.fireErrorCaught(error)
        } else {
            if phase == .method || phase == .authentication { readyPromise?.fail(error) }
            promise.fail(error)
            phase = .failed
            context.close(promise: nil)
        }
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        // Whatever the upstream sent after its reply goes to the handler after us (the splice).
        if phase == .done, buffered.readableBytes > 0 {
            let rest = buffered
            buffered = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        if inputEnded {
            inputEnded = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        context.leavePipeline(removalToken: removalToken)
    }

    private func advance(context: ChannelHandlerContext) throws(SOCKS5Error) {
        while true {
            switch phase {
            case .method:
                guard let version = buffered.getInteger(at: buffered.readerIndex, as: UInt8.self),
                    let method = buffered.getInteger(at: buffered.readerIndex + 1, as: UInt8.self)
                else { return try checkSize() }
                buffered.moveReaderIndex(forwardBy: 2)
                guard version == 0x05 else { throw .malformed("version \(version)") }
                switch method {
                case 0x00:
                    if pipelined { phase = .reply } else { requestOrWait(context: context) }
                case 0x02:
                    guard let credentials else { throw .malformed("method 2 not offered") }
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: SOCKS5.authentication(credentials))), promise: nil)
                    phase = .authentication
                case 0xFF:
                    throw .noAcceptableMethod
                default:
                    throw .malformed("method \(method)")
                }
            case .authentication:
                // RFC 1929 §2: VER (1), STATUS; X'00' is success.
                guard let status = buffered.getInteger(at: buffered.readerIndex + 1, as: UInt8.self) else {
                    return try checkSize()
                }
                buffered.moveReaderIndex(forwardBy: 2)
                guard status == 0 else { throw .authenticationFailed }
                requestOrWait(context: context)
            case .ready:
                // The server speaks only in answer to a request: anything now is not SOCKS.
                if buffered.readableBytes > 0 { throw .malformed("data before the request") }
                return
            case .reply:
                // RFC 1928 §6: VER, REP, RSV, then BND.ADDR and BND.PORT.
                var view = buffered
                guard let version = view.readInteger(as: UInt8.self), let code = view.readInteger(as: UInt8.self),
                    view.readInteger(as: UInt8.self) != nil
                else { return try checkSize() }
                guard version == 0x05 else { throw .malformed("version \(version)") }
                guard code == 0 else {
                    guard let reply = SOCKS5.Reply(rawValue: code) else { throw .unknownReply(code) }
                    throw .reply(reply)
                }
                guard let bound = try SOCKS5.Address.read(from: &view) else { return try checkSize() }
                buffered = view
                phase = .done
                promise.succeed(bound)
                return
            case .done, .failed:
                return
            }
        }
    }

    private func requestOrWait(context: ChannelHandlerContext) {
        guard request != nil else {
            phase = .ready
            readyPromise?.succeed()
            return
        }
        sendRequest(context: context)
    }

    private func sendRequest(context: ChannelHandlerContext) {
        guard let (command, target) = request else { return }
        context.writeAndFlush(wrapOutboundOut(SOCKS5.request(command, target)), promise: nil)
        phase = .reply
    }

    private func checkSize() throws(SOCKS5Error) {
        if buffered.readableBytes > Self.maximumHandshakeBytes { throw .malformed("reply") }
    }

    private func fail(_ error: Error, context: ChannelHandlerContext?) {
        guard phase != .done, phase != .failed else { return }
        if phase == .method || phase == .authentication { readyPromise?.fail(error) }
        phase = .failed
        promise.fail(error)
        context?.close(promise: nil)
    }
}
