// Two stacks in one process, joined by the in-process pair: no root, no TUN device, no C library.
// A client sends 1 MiB to an echo server and checks every byte that comes back.
//
//   swift run InProcessPairExample
import TCPIPStack

@main struct InProcessPair {
    static func main() async throws {
        let (client, server) = try await StackRuntime.makePair(
            StackConfiguration(addresses: [IPAddress("198.18.0.1")!]),
            StackConfiguration(addresses: [IPAddress("198.18.0.2")!]),
            group: MultiThreadedEventLoopGroup.singleton)

        // The echo server, with half-close: it echoes until the client's FIN, then sends its own.
        let listener = try await TCPIPServerBootstrap(runtime: server)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(port: 7, childChannelConfiguration: .init(isOutboundHalfClosureEnabled: true))
        async let serving: Void = withThrowingDiscardingTaskGroup { group in
            try await listener.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask {
                        try await connection.executeThenClose { inbound, outbound in
                            for try await chunk in inbound { try await outbound.write(chunk) }
                            outbound.finish()
                        }
                    }
                }
            }
        }

        // The client: writes 1 MiB, closes its side, reads until the server's FIN.
        let block = (0..<251).map { UInt8($0) }  // a prime length, so no chunk boundary lines up with it
        var message = ByteBuffer()
        while message.readableBytes < 1 << 20 { message.writeBytes(block) }
        let sent = message
        let connection = try await TCPIPClientBootstrap(runtime: client)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: Endpoint("198.18.0.2:7")!, configuration: .init(isOutboundHalfClosureEnabled: true))
        let received = try await connection.executeThenClose { inbound, outbound in
            async let writing: Void = {
                try await outbound.write(sent)
                outbound.finish()
            }()
            var received = ByteBuffer()
            for try await chunk in inbound { received.writeImmutableBuffer(chunk) }
            try await writing
            return received
        }

        try await server.stop()
        try await serving
        try await client.stop()
        guard received == sent else { fatalError("\(received.readableBytes) bytes came back, not the \(sent.readableBytes) sent") }
        print("ok: \(received.readableBytes) bytes echoed, every one checked")
    }
}
