import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TCPIP
import TCPIPGateway
import TCPIPNIO
import TCPIPWire
import Testing

/// A direct upstream whose targets live on 127.0.0.1: the port of 198.19.0.1:P (or of any name) is
/// dialed there. It records the names it was asked for (fake DNS connects by name).
struct LoopbackUpstream: Upstream {
    let base = DirectUpstream()
    let names = NIOLockedValueBox<[String]>([])
    var description: String { "loopback" }

    func local(_ target: SOCKS5.Address) -> SOCKS5.Address {
        if case .domain(let name, _) = target { names.withLockedValue { $0.append(name) } }
        return .ip(.v4(IPv4Address(127, 0, 0, 1)), port: target.port)
    }

    func connect(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UpstreamConnection> {
        base.connect(to: local(target), on: loop)
    }

    func openUDP(to target: SOCKS5.Address, on loop: EventLoop) -> EventLoopFuture<UDPSession> {
        base.openUDP(to: local(target), on: loop)
    }
}

/// UDP echo on a kernel socket (RFC 862).
final class KernelUDPEcho: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Answers the first bytes it reads with a reset (SO_LINGER 0, then close).
final class ResetOnRead: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        SpliceHandler.resetSocket(context.channel)
    }
}

/// Collects datagrams a test's channel reads.
final class DatagramCollector: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let received: NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>
    let first: EventLoopPromise<Void>

    init(received: NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>, first: EventLoopPromise<Void>) {
        self.received = received
        self.first = first
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        received.withLockedValue { $0.append(envelope) }
        first.succeed(())
    }
}

/// The gateway's relays over the in-process packet source, without root: a client stack at
/// 198.18.0.1 whose every flow enters a stack in intercept mode, relayed by a `Gateway` to kernel
/// sockets on 127.0.0.1.
@Suite struct InProcessGatewayTests {
    struct Setup {
        let group: MultiThreadedEventLoopGroup
        let client: StackRuntime
        let intercepting: StackRuntime
        let gateway: NIOLoopBound<Gateway>
        let upstream: LoopbackUpstream

        func shutdown() async throws {
            try? await client.stop()
            try? await intercepting.stop()
            try await group.shutdownGracefully()
        }
    }

    static func setup(_ configure: @escaping @Sendable (inout GatewayConfiguration) -> Void = { _ in }) async throws -> Setup {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var gatewayStack = StackConfiguration(addresses: [], seed: 19)
        gatewayStack.interception = InterceptionConfiguration()
        let (client, intercepting) = try await StackRuntime.makePair(
            StackConfiguration(addresses: [IPAddress("198.18.0.1")!], seed: 1), gatewayStack, group: group)
        let upstream = LoopbackUpstream()
        let loop = intercepting.eventLoop
        let gateway = try await loop.submit {
            var configuration = GatewayConfiguration(upstream: upstream)
            configure(&configuration)
            let gateway = Gateway(configuration: configuration, loop: loop)
            gateway.serve(intercepting)
            return NIOLoopBound(gateway, eventLoop: loop)
        }.get()
        return Setup(group: group, client: client, intercepting: intercepting, gateway: gateway, upstream: upstream)
    }

    /// 4 MB up, the client's FIN, 4 MB down: every byte through the stack, the relay and a kernel
    /// socket, checked.
    @Test func tcpAcrossAHalfCloseThroughTheInterceptingStack() async throws {
        let size = 4 * 1024 * 1024
        let setup = try await Self.setup()
        let serverReceived = setup.group.next().makePromise(of: Digest.self)
        let target = try await RelayTests.server(setup.group) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ReadThenReply(reply: size, received: serverReceived))
            }
        }
        let port = UInt16(target.localAddress!.port!)
        let clientReceived = setup.client.eventLoop.makePromise(of: Digest.self)
        let channel = try await TCPIPClientBootstrap(runtime: setup.client)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(done: clientReceived))
                }
            }
            .connect(to: Endpoint(IPAddress("198.19.0.1")!, port)).get()
        try await Pattern.send(size, over: channel)
        let atServer = try await serverReceived.futureResult.get()
        #expect(atServer.count == size)
        #expect(atServer.value == Pattern.digest(size))
        let atClient = try await clientReceived.futureResult.get()
        #expect(atClient.count == size)
        #expect(atClient.value == Pattern.digest(size, seed: 0x5A))
        try await target.close()
        try await setup.shutdown()
    }

    /// Dial before SYN-ACK: a port nothing listens on refuses the client's connect.
    @Test func aClosedPortIsConnectionRefused() async throws {
        let setup = try await Self.setup()
        let closed = try await RelayTests.server(setup.group) { $0.eventLoop.makeSucceededVoidFuture() }
        let port = UInt16(closed.localAddress!.port!)
        try await closed.close()
        await #expect(throws: TCPError.connectionRefused) {
            _ = try await TCPIPClientBootstrap(runtime: setup.client).connect(to: Endpoint(IPAddress("198.19.0.1")!, port)).get()
        }
        let refused = try await setup.intercepting.eventLoop.submit { setup.gateway.value.flows.refused }.get()
        #expect(refused == 1)
        try await setup.shutdown()
    }

    /// A reset by the server is carried to the client as a reset: its channel fails with
    /// `connectionReset`, not an orderly end of stream.
    @Test func aServerResetReachesTheClientAsAReset() async throws {
        let setup = try await Self.setup()
        let target = try await RelayTests.server(setup.group) { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ResetOnRead()) }
        }
        let port = UInt16(target.localAddress!.port!)
        let done = setup.client.eventLoop.makePromise(of: Digest.self)
        let channel = try await TCPIPClientBootstrap(runtime: setup.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(done: done)) }
            }
            .connect(to: Endpoint(IPAddress("198.19.0.1")!, port)).get()
        try await channel.writeAndFlush(ByteBuffer(string: "reset me"))
        await #expect(throws: TCPError.connectionReset) { _ = try await done.futureResult.get() }
        try await target.close()
        try await setup.shutdown()
    }

    /// UDP: a datagram to 198.19.0.1 goes out a kernel socket, its echo comes back from 198.19.0.1.
    @Test func udpEchoedThroughADirectSocket() async throws {
        let setup = try await Self.setup()
        let echo = try await DatagramBootstrap(group: setup.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(KernelUDPEcho()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let destination = Endpoint(IPAddress("198.19.0.1")!, UInt16(echo.localAddress!.port!))
        let received = NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>([])
        let first = setup.client.eventLoop.makePromise(of: Void.self)
        let channel = try await TCPIPDatagramBootstrap(runtime: setup.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramCollector(received: received, first: first))
                }
            }
            .bind(port: 40000).get()
        let payload = Pattern.bytes(1200, seed: 3)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination.socketAddress, data: payload))
        try await first.futureResult.get()
        let echoed = try #require(received.withLockedValue { $0.first })
        #expect(echoed.data == payload)
        #expect(echoed.remoteAddress == destination.socketAddress)
        try await channel.close()
        try await echo.close()
        try await setup.shutdown()
    }

    /// Fake DNS: a query through the tunnel is answered from the pool; a connection to the answer
    /// goes upstream by name.
    @Test func fakeDNSAnswersAndConnectsByName() async throws {
        let setup = try await Self.setup { $0.fakeDNS = FakeDNSPool(cidr: "198.18.128.0/17") }
        let received = NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>([])
        let first = setup.client.eventLoop.makePromise(of: Void.self)
        let channel = try await TCPIPDatagramBootstrap(runtime: setup.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramCollector(received: received, first: first))
                }
            }
            .bind(port: 40001).get()
        let resolver = Endpoint(IPAddress("198.19.0.53")!, 53)
        try await channel.writeAndFlush(
            AddressedEnvelope(remoteAddress: resolver.socketAddress, data: FakeDNSTests.query("target.test", type: 1, id: 77)))
        try await first.futureResult.get()
        let answer = try #require(received.withLockedValue { $0.first })
        let addresses = try #require(FakeDNSTests.answers(answer.data, id: 77))
        #expect(addresses == [.v4(IPv4Address(198, 18, 128, 1))])
        try await channel.close()

        let target = try await RelayTests.server(setup.group) { $0.eventLoop.makeSucceededVoidFuture() }
        let port = UInt16(target.localAddress!.port!)
        let connection = try await TCPIPClientBootstrap(runtime: setup.client).connect(to: Endpoint(addresses[0], port)).get()
        #expect(setup.upstream.names.withLockedValue { $0 } == ["target.test"])
        try await connection.close()
        try await target.close()
        try await setup.shutdown()
    }
}
