// An async echo server (RFC 862) on our TCP, one import.
//
//   swift run EchoServerExample tun0 198.18.0.2     # on a TUN device (root; see README)
//   swift run EchoServerExample                     # over the in-process pair: a client checks it, then it exits
import TCPIPStack

@main struct EchoServer {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let tun = arguments.first {
            #if os(Linux)
            let device = try TUNDevice(name: tun, options: .init(virtioNetHeader: true))
            let runtime = try await StackRuntime.start(
                StackConfiguration(addresses: [IPAddress(arguments.count > 1 ? arguments[1] : "198.18.0.2")!]),
                source: device, on: MultiThreadedEventLoopGroup.singleton.next())
            print("echoing on port 7 of \(tun)")
            try await serve(on: runtime)
            #else
            fatalError("TUN devices are Linux's; run without arguments for the in-process pair")
            #endif
        } else {
            try await selfTest()
        }
    }

    /// Echoes every connection on port 7 until the runtime stops.
    static func serve(on runtime: StackRuntime) async throws {
        try await serve(try await TCPIPServerBootstrap(runtime: runtime).bind(port: 7, childChannelConfiguration: .init()))
    }

    /// Echoes every connection `server` accepts until it closes.
    static func serve(_ server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask {
                        try? await connection.executeThenClose { inbound, outbound in
                            for try await chunk in inbound { try await outbound.write(chunk) }
                        }
                    }
                }
            }
        }
    }

    /// The server over the in-process pair, a client that checks one echo, then a clean stop.
    static func selfTest() async throws {
        let (client, server) = try await StackRuntime.makePair(
            StackConfiguration(addresses: [IPAddress("198.18.0.1")!]),
            StackConfiguration(addresses: [IPAddress("198.18.0.2")!]),
            group: MultiThreadedEventLoopGroup.singleton)
        // Bound before the client connects: a SYN that arrived first would find no listener (RST).
        let listener = try await TCPIPServerBootstrap(runtime: server).bind(port: 7, childChannelConfiguration: .init())
        async let serving: Void = serve(listener)
        let connection = try await TCPIPClientBootstrap(runtime: client)
            .connect(to: Endpoint("198.18.0.2:7")!, configuration: .init())
        let echoed = try await connection.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "hello, echo\n"))
            var received = ByteBuffer()
            for try await chunk in inbound {
                received.writeImmutableBuffer(chunk)
                if received.readableBytes >= 12 { break }
            }
            return String(buffer: received)
        }
        try await server.stop()
        try await serving
        try await client.stop()
        guard echoed == "hello, echo\n" else { fatalError("echo returned \(echoed.debugDescription)") }
        print("ok: echoed \(echoed.debugDescription)")
    }
}
