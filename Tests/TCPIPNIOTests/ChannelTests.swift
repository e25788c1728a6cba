import NIOCore
import NIOHTTP1
import NIOPosix
import TCPIP
import TCPIPNIO
import TCPIPWire
import Testing

/// TCP connections as NIO Channels, between two runtimes over a datagram socket pair.
@Suite struct ChannelTests {
    /// NIOAsyncChannel on our TCP: 1 MiB through an echo server and back, then half-close; every byte checked.
    @Test func asyncChannelEchoesEveryByte() async throws {
        let pair = try await RuntimePair()
        _ = try await TCPIPServerBootstrap(runtime: pair.server)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TestEchoHandler()) }
            }
            .bind(port: 7).get()
        let channel = try await TCPIPClientBootstrap(runtime: pair.client)
            .connect(to: Endpoint(RuntimePair.serverAddress, 7)).get()
        let sent = pattern(1 << 20)
        let received = try await sendAndReadBack(sent, over: channel)
        #expect(received == sent)
        try await pair.shutdown()
    }

    /// NIOHTTP1, unchanged, on both ends of our TCP.
    @Test func http1ServerAndClientRunUnchanged() async throws {
        let pair = try await RuntimePair()
        _ = try await TCPIPServerBootstrap(runtime: pair.server)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HelloHandler())
                }
            }
            .bind(port: 80).get()
        let response = pair.client.eventLoop.makePromise(of: String.self)
        let channel = try await TCPIPClientBootstrap(runtime: pair.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(CollectBodyHandler(done: response))
                }
            }
            .connect(to: Endpoint(RuntimePair.serverAddress, 80)).get()
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "198.18.0.2")
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: headers)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        #expect(try await response.futureResult.get() == "hello from our TCP")
        try await channel.close()
        try await pair.shutdown()
    }

    /// A connect to a port nobody listens on fails with the RST's meaning (RFC 9293 §3.10.7.3).
    @Test func connectToClosedPortIsRefused() async throws {
        let pair = try await RuntimePair()
        await #expect(throws: TCPError.connectionRefused) {
            _ = try await TCPIPClientBootstrap(runtime: pair.client)
                .connect(to: Endpoint(RuntimePair.serverAddress, 9)).get()
        }
        try await pair.shutdown()
    }

    /// Back-pressure both ways: a server that never reads closes its window to zero and the client's
    /// channel turns unwritable, which stops its writer; once the server reads, every byte arrives.
    @Test func notReadingClosesTheWindowAndStopsTheWriter() async throws {
        let pair = try await RuntimePair()
        let accepted = pair.server.eventLoop.makePromise(of: Channel.self)
        _ = try await TCPIPServerBootstrap(runtime: pair.server)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CountingHandler())
                    accepted.succeed(channel)
                }
            }
            .bind(port: 9).get()
        let total = 2 << 20
        let client = try await TCPIPClientBootstrap(runtime: pair.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FloodHandler(total: total))
                }
            }
            .connect(to: Endpoint(RuntimePair.serverAddress, 9)).get()
        let server = try await accepted.futureResult.get()
        let windowClosed = try await eventually(on: pair.server) {
            pair.server.stack.allConnections.contains { pair.server.stack.status($0)?.receiveWindow == 0 }
        }
        #expect(windowClosed, "the server's advertised window never reached zero")
        #expect(try await eventually(on: pair.client) { !client.isWritable }, "the writer was never stopped")
        let flood = try await client.pipeline.handler(type: FloodHandler.self).get()
        #expect(try await client.eventLoop.submit { flood.written }.get() < total)

        try await server.setOption(.autoRead, value: true).get()
        let counter = try await server.pipeline.handler(type: CountingHandler.self).get()
        #expect(try await eventually(on: pair.server) { counter.count == total }, "not every byte arrived")
        try await client.close()
        try await pair.shutdown()
    }

    /// Half-close: the client's `close(mode: .output)` is the server's `inputClosed`; the server
    /// still answers, then closes, and the client reads the answer before the end of the stream.
    @Test func halfCloseMapsToOutputAndInputShutdown() async throws {
        let pair = try await RuntimePair()
        _ = try await TCPIPServerBootstrap(runtime: pair.server)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AnswerAtEndHandler()) }
            }
            .bind(port: 5).get()
        let answer = pair.client.eventLoop.makePromise(of: String.self)
        let client = try await TCPIPClientBootstrap(runtime: pair.client)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReadToEndHandler(done: answer))
                }
            }
            .connect(to: Endpoint(RuntimePair.serverAddress, 5)).get()
        try await client.writeAndFlush(ByteBuffer(string: "question"))
        try await client.close(mode: .output)
        #expect(try await answer.futureResult.get() == "got 8 bytes")
        try await client.close()
        try await pair.shutdown()
    }

    /// A channel closed first leaves its connection to the stack as a socket's close() does: the
    /// TIME-WAIT that follows is a compact record, not a whole TCB held for 2·MSL.
    @Test func closingFirstLeavesACompactTimeWait() async throws {
        let pair = try await RuntimePair()
        _ = try await TCPIPServerBootstrap(runtime: pair.server)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TestEchoHandler()) }
            }
            .bind(port: 7).get()
        let client = try await TCPIPClientBootstrap(runtime: pair.client)
            .connect(to: Endpoint(RuntimePair.serverAddress, 7)).get()
        // No data: an echo arriving after the close would rightly be answered with an RST.
        try await client.close()
        let reduced = try await eventually(on: pair.client) {
            pair.client.stack.timeWaitCount == 1 && pair.client.stack.connectionCount == 0
        }
        #expect(reduced, "the client's TIME-WAIT was not reduced to a record")
        #expect(try await eventually(on: pair.server) { pair.server.stack.connectionCount == 0 })
        try await pair.shutdown()
    }

    /// Datagrams that are not IP, and ones larger than the MTU, are dropped and counted by the device.
    @Test func badDatagramsAreDroppedAndCounted() async throws {
        let pair = try await RuntimePair(mtu: 1500)
        // The client's stack cannot produce bad datagrams, so write them on its device by hand.
        try await pair.client.eventLoop.submit {
            try pair.client.device.write(ByteBuffer(bytes: [0x00, 0x01, 0x02]))
            try pair.client.device.write(ByteBuffer(repeating: 0x45, count: 2000))
        }.get()
        let dropped = try await eventually(on: pair.server) {
            pair.server.device.drops.notIP == 1 || pair.server.stack.counters.ipMalformed > 0
        }
        #expect(dropped)
        let tooBig = try await pair.client.eventLoop.submit { pair.client.device.statistics.droppedTooBig }.get()
        #expect(tooBig == 1)
        try await pair.shutdown()
    }
}

final class HelloHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let body = ByteBuffer(string: "hello from our TCP")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

final class CollectBodyHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let done: EventLoopPromise<String>
    var body = ""

    init(done: EventLoopPromise<String>) {
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: break
        case .body(let bytes): body += String(buffer: bytes)
        case .end: done.succeed(body)
        }
    }
}

final class CountingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var count = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        count += unwrapInboundIn(data).readableBytes
    }
}

/// Writes `total` bytes of a pattern, only while the channel is writable.
final class FloodHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    let chunk = pattern(64 * 1024)
    var written = 0

    init(total: Int) {
        self.total = total
    }

    func channelActive(context: ChannelHandlerContext) {
        fill(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        fill(context)
    }

    private func fill(_ context: ChannelHandlerContext) {
        while context.channel.isWritable && written < total {
            let slice = chunk.getSlice(at: 0, length: min(chunk.readableBytes, total - written))!
            written += slice.readableBytes
            context.writeAndFlush(wrapOutboundOut(slice), promise: nil)
        }
    }
}

final class AnswerAtEndHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var count = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        count += unwrapInboundIn(data).readableBytes
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else { return }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "got \(count) bytes")), promise: nil)
        context.close(promise: nil)
    }
}

final class ReadToEndHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<String>
    var text = ""

    init(done: EventLoopPromise<String>) {
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        text += String(buffer: unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { done.succeed(text) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(text)
    }
}
