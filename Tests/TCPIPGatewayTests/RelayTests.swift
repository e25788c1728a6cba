import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TCPIP
import TCPIPGateway
import TCPIPNIO
import TCPIPWire
import Testing

/// A deterministic byte stream and its digest (FNV-1a 64), so a transfer is verified byte for byte
/// without keeping it.
struct Pattern {
    static func bytes(_ count: Int, offset: Int = 0, seed: UInt8 = 0) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            for index in 0..<count {
                let position = offset + index
                raw[index] = UInt8(truncatingIfNeeded: position &* 31 &+ position >> 11) ^ seed
            }
            return count
        }
        return buffer
    }

    static func digest(_ count: Int, seed: UInt8 = 0) -> UInt64 {
        var digest = Digest()
        var offset = 0
        while offset < count {
            let chunk = min(65536, count - offset)
            digest.add(bytes(chunk, offset: offset, seed: seed))
            offset += chunk
        }
        return digest.value
    }

    /// Writes the first `count` bytes of the stream to `channel` in 128 KiB pieces, each flushed,
    /// then closes its output (our FIN).
    static func send(_ count: Int, over channel: Channel) async throws {
        var offset = 0
        while offset < count {
            let chunk = min(128 * 1024, count - offset)
            try await channel.writeAndFlush(bytes(chunk, offset: offset))
            offset += chunk
        }
        try await channel.close(mode: .output)
    }
}

struct Digest: Sendable {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    var count = 0

    mutating func add(_ buffer: ByteBuffer) {
        count += buffer.readableBytes
        value = buffer.withUnsafeReadableBytes { raw in
            var digest = value
            for byte in raw { digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return digest
        }
    }
}

/// Reads to the end of the stream (digesting it), then sends `reply` bytes and closes: the server
/// of a half-close test. With `reading` off it never reads (a stalled peer).
final class ReadThenReply: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: Int
    let received: EventLoopPromise<Digest>
    var digest = Digest()

    init(reply: Int, received: EventLoopPromise<Digest>) {
        self.reply = reply
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        digest.add(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else { return }
        received.succeed(digest)
        var offset = 0
        while offset < reply {
            let chunk = min(65536, reply - offset)
            context.write(wrapOutboundOut(Pattern.bytes(chunk, offset: offset, seed: 0x5A)), promise: nil)
            offset += chunk
        }
        // NIO escalates a half-close after the input's end to a full close, which would drop what
        // is still queued: close once the last write has gone.
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        received.fail(ChannelError.eof)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        received.fail(error)
        context.close(promise: nil)
    }
}

/// The client: digests what it reads until the end of the stream.
final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<Digest>
    var digest = Digest()

    init(done: EventLoopPromise<Digest>) {
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        digest.add(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { done.succeed(digest) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(digest)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        done.fail(error)
    }
}

/// A relay on kernel sockets, all on 127.0.0.1: connections to `listener` are the "intercepted"
/// ones (their accept is immediate, as the stack's would be after the dial), relayed to `target` by
/// a `Gateway` with `DirectUpstream`.
final class LoopbackRelay: Sendable {
    let group: MultiThreadedEventLoopGroup
    let loop: EventLoop
    let gateway: NIOLoopBound<Gateway>
    let listener: Channel
    let refusals = NIOLockedValueBox<[GatewayRefusal]>([])

    init(target: SocketAddress, configure: (inout GatewayConfiguration) -> Void = { _ in }) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        self.loop = loop
        var configuration = GatewayConfiguration(upstream: DirectUpstream())
        configure(&configuration)
        let frozen = configuration
        gateway = try await loop.submit { NIOLoopBound(Gateway(configuration: frozen, loop: loop), eventLoop: loop) }.get()
        let gateway = self.gateway
        let refusals = self.refusals
        let destination = try #require(Endpoint(target))
        listener = try await ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { child in
                let source = Endpoint(child.remoteAddress!)!
                gateway.value.relayConnection(
                    source: source, destination: destination,
                    accept: { initializer in initializer(child).map { child } },
                    refuse: { refusal in
                        refusals.withLockedValue { $0.append(refusal) }
                        child.close(promise: nil)
                    })
                return child.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func shutdown() async throws {
        try await listener.close()
        try await group.shutdownGracefully()
    }
}

@Suite struct RelayTests {
    /// A server whose handler the test supplies; on 127.0.0.1.
    static func server(
        _ group: EventLoopGroup, _ handler: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer(handler)
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// Half-close both ways, every byte checked: the client sends 10 MB and its FIN; the server reads to
    /// the end, then sends 10 MB and its FIN; both arrive whole through the relay.
    @Test func tenMegabytesEachWayAcrossAHalfClose() async throws {
        let size = 10 * 1024 * 1024
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let serverReceived = group.next().makePromise(of: Digest.self)
        let target = try await Self.server(group) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ReadThenReply(reply: size, received: serverReceived))
            }
        }
        let relay = try await LoopbackRelay(target: target.localAddress!)
        let clientReceived = group.next().makePromise(of: Digest.self)
        let client = try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(done: clientReceived))
                }
            }
            .connect(to: relay.listener.localAddress!).get()
        try await Pattern.send(size, over: client)
        let atServer = try await serverReceived.futureResult.get()
        #expect(atServer.count == size)
        #expect(atServer.value == Pattern.digest(size))
        let atClient = try await clientReceived.futureResult.get()
        #expect(atClient.count == size)
        #expect(atClient.value == Pattern.digest(size, seed: 0x5A))
        try? await client.closeFuture.get()
        let table = try await relay.loop.submit { relay.gateway.value.flows.all.map { ($0.bytesFromClient, $0.bytesToClient) } }.get()
        #expect(table.first.map { $0.0 } == UInt64(size))
        #expect(table.first.map { $0.1 } == UInt64(size))
        try await relay.shutdown()
        try await target.close()
        try await group.shutdownGracefully()
    }

    /// An upstream socket has TCP_NODELAY (set by NIO's bootstrap, at IPPROTO_TCP) and keep-alive,
    /// and not SO_DEBUG, which a TCP_NODELAY set at SOL_SOCKET used to turn on (both are option 1).
    @Test func anUpstreamSocketHasNoDelayAndKeepAliveButNotDebug() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let target = try await Self.server(group) { $0.eventLoop.makeSucceededVoidFuture() }
        let address = try #require(target.localAddress)
        let loop = group.next()
        let connection = try await DirectUpstream().connect(to: .ip(.v4(IPv4Address(127, 0, 0, 1)), port: UInt16(address.port!)), on: loop).get()
        let channel = connection.channel
        #expect(try await channel.getOption(.tcpOption(.tcp_nodelay)).get() != 0)
        #expect(try await channel.getOption(.socketOption(.so_keepalive)).get() != 0)
        #expect(try await channel.getOption(.socketOption(.init(rawValue: 1))).get() == 0)   // SO_DEBUG
        try await channel.close()
        try await target.close()
        try await group.shutdownGracefully()
    }

    /// Dial before accept: a closed port upstream is a RST to the client's SYN, never an accept.
    @Test func aClosedPortUpstreamIsRefusedWithReset() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let closed = try await Self.server(group) { $0.eventLoop.makeSucceededVoidFuture() }
        let address = closed.localAddress!
        try await closed.close()
        let relay = try await LoopbackRelay(target: address)
        let client = try await ClientBootstrap(group: group).connect(to: relay.listener.localAddress!).get()
        try? await client.closeFuture.get()
        #expect(relay.refusals.withLockedValue { $0 } == [.reset])
        let state = try await relay.loop.submit { relay.gateway.value.flows.all.first?.state }.get()
        #expect(state == .refused)
        try await relay.shutdown()
        try await group.shutdownGracefully()
    }

    /// Back-pressure: the target never reads; the client writes 64 MB as fast as it can. The relay
    /// stops reading the client once its upstream socket is full: what it took from the client stays
    /// within the socket buffers plus one high-water mark, far from 64 MB.
    @Test func aStalledUpstreamStopsReadsFromTheClient() async throws {
        let size = 64 * 1024 * 1024
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let target = try await ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)
            .bind(host: "127.0.0.1", port: 0).get()
        let relay = try await LoopbackRelay(target: target.localAddress!)
        let client = try await ClientBootstrap(group: group).connect(to: relay.listener.localAddress!).get()
        var offset = 0
        // Writes without waiting: the client's own buffer holds what the relay does not take.
        while offset < size {
            let chunk = min(1024 * 1024, size - offset)
            client.write(Pattern.bytes(chunk, offset: offset), promise: nil)
            offset += chunk
        }
        client.flush()
        try await Task.sleep(for: .seconds(2))
        let relayed = try await relay.loop.submit { relay.gateway.value.flows.all.first?.bytesFromClient ?? 0 }.get()
        #expect(relayed > 0)
        #expect(relayed < 32 * 1024 * 1024, "the relay read \(relayed) bytes while its upstream read none")
        try await client.close()
        try await relay.shutdown()
        try await target.close()
        try await group.shutdownGracefully()
    }
}
