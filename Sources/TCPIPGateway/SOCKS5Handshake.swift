import NIOCore

/// Drives a SOCKS5 client handshake (RFC 1928 §3–§6, RFC 1929) on a connected channel whose
/// `autoRead` is off: it reads only what it needs. `result` succeeds with the server's BND address;
/// bytes that follow the reply (the upstream's first data) are kept and passed on when the handler
/// is removed, so nothing is lost between the handshake and the splice. So is the end of the
/// server's input (its FIN, `ChannelEvent.inputClosed`), which a target that answers and closes at
/// once sends in the same read as the reply: without it the flow would wait for a FIN that came.
final class SOCKS5Handshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase { case method, authentication, reply, done, failed }

    private let command: SOCKS5.Command
    private let target: SOCKS5.Address
    private let credentials: Credentials?
    /// The request went out with the greeting (no credentials: only method 0 is offered).
    private let pipelined: Bool
    private let promise: EventLoopPromise<SOCKS5.Address>
    private var phase = Phase.method
    private var buffered = ByteBuffer()
    /// The server's FIN arrived after its reply, before the splice took over.
    private var inputEnded = false
    /// RFC 1928 replies are at most 4 + 1 + 255 + 2 octets: more before the reply is complete is not SOCKS.
    private static let maximumHandshakeBytes = 1024

    var result: EventLoopFuture<SOCKS5.Address> { promise.futureResult }

    /// - Parameter pipelining: without credentials, send the request with the greeting instead of
    ///   after the method reply, saving a round trip per flow (see `SOCKS5Upstream.pipelining`).
    init(command: SOCKS5.Command, target: SOCKS5.Address, credentials: Credentials?, pipelining: Bool = false, eventLoop: EventLoop) {
        self.command = command
        self.target = target
        self.credentials = credentials
        self.pipelined = pipelining && credentials == nil
        self.promise = eventLoop.makePromise()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        var greeting = ByteBuffer(bytes: SOCKS5.greeting(withCredentials: credentials != nil))
        if pipelined {
            // DEVIATION(RFC 1928 §3–§4): the request follows the method reply there. With one method
            // offered (0, no authentication) the reply can only be 0 or X'FF' (and a close), and a
            // server reads its request from the stream whenever it comes; sent at once, it saves
            // a round trip per flow (hev-socks5-tunnel's `pipeline` option does the same).
            var request = SOCKS5.request(command, target)
            greeting.writeBuffer(&request)
        }
        context.writeAndFlush(wrapOutboundOut(greeting), promise: nil)
        context.read()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
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
        if phase == .method || phase == .authentication || phase == .reply { context.read() }
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
                    if pipelined { phase = .reply } else { sendRequest(context: context) }
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
                sendRequest(context: context)
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

    private func sendRequest(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(SOCKS5.request(command, target)), promise: nil)
        phase = .reply
    }

    private func checkSize() throws(SOCKS5Error) {
        if buffered.readableBytes > Self.maximumHandshakeBytes { throw .malformed("reply") }
    }

    private func fail(_ error: Error, context: ChannelHandlerContext?) {
        guard phase != .done, phase != .failed else { return }
        phase = .failed
        promise.fail(error)
        context?.close(promise: nil)
    }
}
