// An HTTP/1.1 server on NIOHTTP1, unchanged, over our TCP.
//
//   swift run HTTPServerExample tun0 198.18.0.2   # on a TUN device (root): curl http://198.18.0.2/
//   swift run HTTPServerExample                   # over the in-process pair: a client GETs /, then it exits
import NIOHTTP1
import TCPIPStack

@main struct HTTPServer {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let tun = arguments.first {
            #if os(Linux)
            let device = try TUNDevice(name: tun, options: .init(virtioNetHeader: true))
            let runtime = try await StackRuntime.start(
                StackConfiguration(addresses: [IPAddress(arguments.count > 1 ? arguments[1] : "198.18.0.2")!]),
                source: device, on: MultiThreadedEventLoopGroup.singleton.next())
            _ = try await listen(on: runtime)
            print("serving HTTP on port 80 of \(tun)")
            try await runtime.closeFuture.get()
            #else
            fatalError("TUN devices are Linux's; run without arguments for the in-process pair")
            #endif
        } else {
            try await selfTest()
        }
    }

    /// NIO's HTTP/1.1 server pipeline and a handler, on every connection to port 80.
    static func listen(on runtime: StackRuntime) async throws -> TCPListener {
        try await TCPIPServerBootstrap(runtime: runtime)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HelloHandler())
                }
            }
            .bind(port: 80).get()
    }

    /// A GET over the in-process pair, with NIO's HTTP client codec on the client's side.
    static func selfTest() async throws {
        let (client, server) = try await StackRuntime.makePair(
            StackConfiguration(addresses: [IPAddress("198.18.0.1")!]),
            StackConfiguration(addresses: [IPAddress("198.18.0.2")!]),
            group: MultiThreadedEventLoopGroup.singleton)
        _ = try await listen(on: server)
        let connection = try await TCPIPClientBootstrap(runtime: client)
            .connect(to: Endpoint("198.18.0.2:80")!) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let (status, body) = try await connection.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
            head.headers.add(name: "Host", value: "198.18.0.2")
            try await outbound.write(.head(head))
            try await outbound.write(.end(nil))
            var status = HTTPResponseStatus.imATeapot
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let head): status = head.status
                case .body(let chunk): body.writeImmutableBuffer(chunk)
                case .end: return (status, String(buffer: body))
                }
            }
            return (status, String(buffer: body))
        }
        try await client.stop()
        try await server.stop()
        guard status == .ok, body == HelloHandler.body else { fatalError("GET / answered \(status): \(body)") }
        print("ok: GET / answered \(status.code) \(body.debugDescription)")
    }
}

/// Answers every request with a short text.
final class HelloHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    static let body = "hello from swift-tcpip\n"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "\(Self.body.utf8.count)")
        headers.add(name: "Content-Type", value: "text/plain")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: Self.body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
