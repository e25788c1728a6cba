// A client: connects with async/await, sends a request line, prints the answer.
//
//   swift run ClientExample tun0 198.18.0.1 198.18.0.2:7   # on a TUN device (root), to a server on the kernel side
//   swift run ClientExample                                 # over the in-process pair, to a server of its own
import TCPIPStack

@main struct Client {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.count == 3 {
            #if os(Linux)
            let device = try TUNDevice(name: arguments[0], options: .init(virtioNetHeader: true))
            let runtime = try await StackRuntime.start(
                StackConfiguration(addresses: [IPAddress(arguments[1])!]),
                source: device, on: MultiThreadedEventLoopGroup.singleton.next())
            guard let server = Endpoint(arguments[2]) else { fatalError("not an address:port: \(arguments[2])") }
            print(try await ask(server, "hello\n", on: runtime))
            try await runtime.stop()
            #else
            fatalError("TUN devices are Linux's; run without arguments for the in-process pair")
            #endif
        } else {
            try await selfTest()
        }
    }

    /// Sends `request` to `server` and returns everything it answers until it closes.
    static func ask(_ server: Endpoint, _ request: String, on runtime: StackRuntime) async throws -> String {
        let connection = try await TCPIPClientBootstrap(runtime: runtime)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: server, configuration: .init(isOutboundHalfClosureEnabled: true))
        return try await connection.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            outbound.finish()
            var answer = ByteBuffer()
            for try await chunk in inbound { answer.writeImmutableBuffer(chunk) }
            return String(buffer: answer)
        }
    }

    /// Over the in-process pair, against a server written with handlers (the future-based API),
    /// which greets, answers in upper case, and closes.
    static func selfTest() async throws {
        let (client, server) = try await StackRuntime.makePair(
            StackConfiguration(addresses: [IPAddress("198.18.0.1")!]),
            StackConfiguration(addresses: [IPAddress("198.18.0.2")!]),
            group: MultiThreadedEventLoopGroup.singleton)
        _ = try await TCPIPServerBootstrap(runtime: server)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ShoutHandler()) }
            }
            .bind(port: 7).get()
        let answer = try await ask(Endpoint("198.18.0.2:7")!, "hello\n", on: client)
        try await client.stop()
        try await server.stop()
        guard answer == "HELLO\n" else { fatalError("answered \(answer.debugDescription)") }
        print("ok: answered \(answer.debugDescription)")
    }
}

/// Answers each read in upper case, and closes once the client has finished.
final class ShoutHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: unwrapInboundIn(data)).uppercased()
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }
}
