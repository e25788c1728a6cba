import NIOCore
import NIOPosix
import TCPIP
import TCPIPNIO
import TCPIPWire
import Testing

/// The async/await API over the in-process pair: no root, no device, no C library.
@Suite struct AsyncAPITests {
    static let clientAddress = IPAddress("198.18.0.1")!
    static let serverAddress = IPAddress("198.18.0.2")!

    static func makePair(mtu: Int = 1500) async throws -> (client: StackRuntime, server: StackRuntime) {
        try await StackRuntime.makePair(
            StackConfiguration(addresses: [clientAddress], seed: 1),
            StackConfiguration(addresses: [serverAddress], seed: 2),
            mtu: mtu, group: MultiThreadedEventLoopGroup.singleton)
    }

    /// `bind(…) async` hands each connection over as an `NIOAsyncChannel`; `connect(…) async`
    /// returns one. 1 MiB each way through an echo server, every byte compared.
    @Test func asyncEchoOverTheInProcessPair() async throws {
        let (client, server) = try await Self.makePair()
        // Half-close both ways: the echo goes on after the client's FIN, then the server's FIN ends it.
        let listener = try await TCPIPServerBootstrap(runtime: server)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(port: 7, childChannelConfiguration: .init(isOutboundHalfClosureEnabled: true))
        let serving = Task {
            try await withThrowingDiscardingTaskGroup { group in
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
        }
        let connection = try await TCPIPClientBootstrap(runtime: client)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: Endpoint(Self.serverAddress, 7), configuration: .init(isOutboundHalfClosureEnabled: true))
        let sent = pattern(1 << 20)
        let received = try await connection.executeThenClose { inbound, outbound in
            async let written: Void = {
                var rest = sent
                while let chunk = rest.readSlice(length: min(rest.readableBytes, 65_536)) {
                    try await outbound.write(chunk)
                    if rest.readableBytes == 0 { break }
                }
                outbound.finish()
            }()
            var all = ByteBuffer()
            for try await chunk in inbound { all.writeImmutableBuffer(chunk) }
            try await written
            return all
        }
        #expect(received == sent)
        serving.cancel()
        try await client.stop()
        try await server.stop()
        _ = await serving.result
    }

    /// The server speaks first: bytes that arrive before the client reads are not lost, because the
    /// initializer wraps the channel before the handshake completes.
    @Test func connectWrapsBeforeTheFirstRead() async throws {
        let (client, server) = try await Self.makePair()
        _ = try await TCPIPServerBootstrap(runtime: server)
            .childChannelInitializer { channel in
                channel.writeAndFlush(ByteBuffer(string: "220 ready\r\n")).flatMap { channel.close() }
            }
            .bind(port: 25).get()
        let connection = try await TCPIPClientBootstrap(runtime: client)
            .connect(to: Endpoint("198.18.0.2:25")!, configuration: .init())
        // Give the greeting every chance to arrive before anyone reads.
        try await Task.sleep(for: .milliseconds(50))
        let greeting = try await connection.executeThenClose { inbound, _ in
            var all = ByteBuffer()
            for try await chunk in inbound { all.writeImmutableBuffer(chunk) }
            return all
        }
        #expect(String(buffer: greeting) == "220 ready\r\n")
        try await client.stop()
        try await server.stop()
    }

    /// A listener is a Channel: closing it completes its `closeFuture` and refuses new connections;
    /// stopping the runtime closes the ones still open.
    @Test func listenerCloseFutureAndRuntimeStop() async throws {
        let (client, server) = try await Self.makePair()
        let listener = try await TCPIPServerBootstrap(runtime: server).bind(port: 80).get()
        #expect(listener.isActive)
        #expect(listener.localAddress == (try SocketAddress(ipAddress: "198.18.0.2", port: 80)))
        try await listener.close()
        try await listener.closeFuture.get()
        #expect(!listener.isActive)
        await #expect(throws: TCPError.self) {
            _ = try await TCPIPClientBootstrap(runtime: client).connect(to: Endpoint(Self.serverAddress, 80)).get()
        }
        let second = try await TCPIPServerBootstrap(runtime: server).bind(port: 81).get()
        try await server.stop()
        try await second.closeFuture.get()
        try await client.stop()
        await #expect(throws: (any Error).self) {
            _ = try await TCPIPServerBootstrap(runtime: server).bind(port: 82).get()
        }
    }

    /// `TCPIPDatagramBootstrap.bind(…) async` and `connect(…) async` return `NIOAsyncChannel`s of
    /// envelopes: an echo server and a connected client over the in-process pair, datagrams of
    /// 0 to 30,000 octets (the large ones fragmented and reassembled) back byte for byte, in order.
    @Test func asyncUDPEchoOverTheInProcessPair() async throws {
        let (client, server) = try await Self.makePair()
        let echo = try await TCPIPDatagramBootstrap(runtime: server).bind(port: 7, configuration: .init())
        let serving = Task {
            try await echo.executeThenClose { inbound, outbound in
                for try await datagram in inbound {
                    try await outbound.write(AddressedEnvelope(remoteAddress: datagram.remoteAddress, data: datagram.data))
                }
            }
        }
        let sizes = [0, 1, 100, 1472, 1473, 8_000, 20_000, 30_000]
        let serverAddress = try SocketAddress(ipAddress: "198.18.0.2", port: 7)
        let connected = try await TCPIPDatagramBootstrap(runtime: client)
            .connect(to: Endpoint(Self.serverAddress, 7), configuration: .init())
        try await connected.executeThenClose { inbound, outbound in
            var replies = inbound.makeAsyncIterator()
            // One at a time, each reply awaited before the next is sent, so replies pair with requests.
            for (index, size) in sizes.enumerated() {
                let sent = pattern(size, seed: UInt64(index))
                try await outbound.write(AddressedEnvelope(remoteAddress: serverAddress, data: sent))
                let reply = try #require(try await replies.next())
                #expect(reply.remoteAddress == serverAddress)
                #expect(reply.data == sent, "datagram of \(size) octets")
            }
        }

        // The generic, initializer-returning variant, on a bound (unconnected) channel that names
        // the destination of each write.
        let unconnected = try await TCPIPDatagramBootstrap(runtime: client)
            .bind(port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                        wrappingChannelSynchronously: channel)
                }
            }
        try await unconnected.executeThenClose { inbound, outbound in
            var replies = inbound.makeAsyncIterator()
            let sent = pattern(30_000, seed: 99)
            try await outbound.write(AddressedEnvelope(remoteAddress: serverAddress, data: sent))
            let reply = try #require(try await replies.next())
            #expect(reply.data == sent && reply.remoteAddress == serverAddress)
        }
        serving.cancel()
        try await client.stop()
        try await server.stop()
        _ = await serving.result
    }

    @Test func endpointsFromTextAndSocketAddresses() throws {
        #expect(Endpoint("198.18.0.2:80") == Endpoint(IPAddress("198.18.0.2")!, 80))
        #expect(Endpoint("[2001:db8::2]:443") == Endpoint(IPAddress("2001:db8::2")!, 443))
        for bad in ["198.18.0.2", "198.18.0.2:", "198.18.0.2:65536", "2001:db8::2:80", "[2001:db8::2]80", "host:80", ":80"] {
            #expect(Endpoint(bad) == nil, "\(bad)")
        }
        let endpoint = Endpoint(IPAddress("2001:db8::2")!, 8080)
        #expect(Endpoint(endpoint.socketAddress) == endpoint)
        #expect(Endpoint(try SocketAddress(ipAddress: "198.18.0.9", port: 9)) == Endpoint("198.18.0.9:9"))
        #expect(Endpoint(try SocketAddress(unixDomainSocketPath: "/tmp/x")) == nil)
        #expect(Endpoint(endpoint.description) == endpoint)
    }
}
