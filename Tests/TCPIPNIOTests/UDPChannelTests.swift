import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import TCPIP
import TCPIPNIO
import TCPIPWire

/// Echoes each datagram to its sender, as `DatagramBootstrap` servers do.
final class DatagramEchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// Collects datagrams and errors.
final class DatagramCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let received = NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>([])
    let errors = NIOLockedValueBox<[Error]>([])

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        received.withLockedValue { $0.append(envelope) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        errors.withLockedValue { $0.append(error) }
    }
}

@Suite struct UDPChannelTests {
    /// Datagrams through a `TCPIPDatagramBootstrap` echo server arrive back byte for byte, in
    /// envelopes that name the server.
    @Test func datagramsAreEchoedThroughChannels() async throws {
        let pair = try await RuntimePair()
        let server = try await TCPIPDatagramBootstrap(runtime: pair.server)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DatagramEchoHandler()) }
            }
            .bind(port: 7).get()
        let collector = DatagramCollector()
        let client = try await TCPIPDatagramBootstrap(runtime: pair.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .bind(port: 0).get()
        let serverAddress = try SocketAddress(ipAddress: "198.18.0.2", port: 7)
        let sizes = [0, 1, 100, 1000, 1472]
        for (index, size) in sizes.enumerated() {
            try await client.writeAndFlush(AddressedEnvelope(remoteAddress: serverAddress, data: pattern(size, seed: UInt64(index)))).get()
        }
        #expect(try await eventually(on: pair.client) { collector.received.withLockedValue { $0.count } == sizes.count })
        let received = collector.received.withLockedValue { $0 }
        for (index, envelope) in received.enumerated() {
            #expect(envelope.remoteAddress == serverAddress)
            #expect(envelope.data == pattern(sizes[index], seed: UInt64(index)))
        }
        // Larger than the MTU: a typed error until output fragmentation exists.
        await #expect(throws: UDPError.messageTooLong) {
            try await client.writeAndFlush(AddressedEnvelope(remoteAddress: serverAddress, data: pattern(1473))).get()
        }
        try await client.close()
        try await server.close()
        try await pair.shutdown()
    }

    /// A connected channel's datagram to a closed port comes back as ICMP port unreachable, which the
    /// channel fires as `UDPError.connectionRefused`.
    @Test func portUnreachableIsFiredAsConnectionRefused() async throws {
        let pair = try await RuntimePair()
        let collector = DatagramCollector()
        let client = try await TCPIPDatagramBootstrap(runtime: pair.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(to: Endpoint(RuntimePair.serverAddress, 9)).get()
        try await client.writeAndFlush(ByteBuffer(string: "anyone there?")).get()
        #expect(try await eventually(on: pair.client) { collector.errors.withLockedValue { $0.count } == 1 })
        #expect(collector.errors.withLockedValue { $0.first as? UDPError } == .connectionRefused)
        #expect(client.isActive)
        try await client.close()
        try await pair.shutdown()
    }
}
