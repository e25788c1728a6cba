import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
@testable import TCPIPGateway
import TCPIPWire
import Testing

/// SOCKS5 connections opened ahead: the handshake that stops after the greeting, and the pool.
@Suite struct SOCKS5PoolTests {
    /// Opened ahead: only the greeting leaves; the method reply makes it ready; the request leaves
    /// with `send` and the reply ends the handshake as usual.
    @Test func openedAheadWaitsForItsRequest() throws {
        let channel = EmbeddedChannel()
        let handshake = SOCKS5Handshake(credentials: nil, eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(handshake)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [5, 1, 0]))
        let ready = NIOLockedValueBox(false)
        handshake.ready?.whenSuccess { ready.withLockedValue { $0 = true } }
        try channel.writeInbound(ByteBuffer(bytes: [5, 0]))
        #expect(ready.withLockedValue { $0 })
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        handshake.send(.connect, .ip(.v4(IPv4Address(198, 19, 0, 1)), port: 80))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [5, 1, 0, 1, 198, 19, 0, 1, 0, 80]))
        let bound = NIOLockedValueBox<SOCKS5.Address?>(nil)
        handshake.result.whenSuccess { address in bound.withLockedValue { $0 = address } }
        try channel.writeInbound(ByteBuffer(bytes: [5, 0, 0, 1, 198, 18, 1, 2, 0x04, 0x38]))
        #expect(bound.withLockedValue { $0 } == .ip(.v4(IPv4Address(198, 18, 1, 2)), port: 1080))
        _ = try channel.finish()
    }

    /// With credentials it is ready after the authentication succeeds.
    @Test func openedAheadAuthenticatesFirst() throws {
        let channel = EmbeddedChannel()
        let handshake = SOCKS5Handshake(credentials: Credentials(username: "u", password: "p"), eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(handshake)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [5, 2, 0, 2]))
        let ready = NIOLockedValueBox(false)
        handshake.ready?.whenSuccess { ready.withLockedValue { $0 = true } }
        try channel.writeInbound(ByteBuffer(bytes: [5, 2]))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [1, 1, 117, 1, 112]))
        #expect(!ready.withLockedValue { $0 })
        try channel.writeInbound(ByteBuffer(bytes: [1, 0]))
        #expect(ready.withLockedValue { $0 })
        _ = try channel.finish()
    }

    /// A server that speaks before the request, or closes the idle connection: the request can no
    /// longer be made; `send` fails `result` as a close during the handshake (the caller dials afresh).
    @Test func anIdleConnectionTheServerClosedFailsItsRequest() throws {
        for event in ["data", "close"] {
            let channel = EmbeddedChannel()
            let handshake = SOCKS5Handshake(credentials: nil, eventLoop: channel.eventLoop)
            try channel.pipeline.syncOperations.addHandler(handshake)
            try channel.writeInbound(ByteBuffer(bytes: [5, 0]))
            if event == "data" {
                _ = try? channel.writeInbound(ByteBuffer(bytes: [5]))
            } else {
                channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
            #expect(!channel.isActive)
            let failure = NIOLockedValueBox<SOCKS5Error?>(nil)
            handshake.result.whenFailure { error in failure.withLockedValue { $0 = error as? SOCKS5Error } }
            handshake.send(.connect, .ip(.v4(IPv4Address(198, 19, 0, 1)), port: 80))
            #expect(failure.withLockedValue { $0 } != nil)
        }
    }

    /// Through a SOCKS5 server on loopback: the first flow dials (and the pool fills), the next
    /// ones take connections opened ahead (no new connection to the server at the time of the
    /// request), and each relays what it was sent, byte for byte. When the server closes its idle
    /// connections, the pool lets them go and a flow still gets through (a fresh dial).
    @Test func flowsTakeConnectionsOpenedAhead() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let server = try await MiniSOCKS5Server.start(on: loop)
        // Idle connections kept for an hour: under the whole suite this task can wait for the
        // cooperative pool longer than the default 10 s, and the pool, emptied by its timeout,
        // refills only when a flow takes one.
        let upstream = SOCKS5Upstream(server: server.address, preconnect: 2, preconnectIdleTimeout: .hours(1))
        let target = SOCKS5.Address.ip(.v4(IPv4Address(198, 19, 0, 1)), port: 7)

        func relay(_ text: String) async throws {
            let connection = try await loop.flatSubmit { upstream.connect(to: target, on: loop) }.get()
            let echo = loop.makePromise(of: ByteBuffer.self)
            try await loop.submit {
                let pipeline = connection.channel.pipeline.syncOperations
                try pipeline.addHandler(EchoCollector(expected: text.utf8.count, done: echo))
                if let handshake = connection.handshake { pipeline.removeHandler(handshake.value, promise: nil) }
                connection.channel.read()
                connection.channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
            }.get()
            #expect(try await echo.futureResult.get() == ByteBuffer(string: text))
            try await connection.channel.close()
        }

        try await relay("first")
        #expect(server.accepted.withLockedValue { $0 } >= 1)
        // The pool fills in the background: two idle, greeted connections.
        for _ in 0..<3000 where try await loop.submit({ upstream.idleConnectionsAhead(on: loop) }).get() < 2 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try await loop.submit { upstream.idleConnectionsAhead(on: loop) }.get() == 2)
        let acceptedBefore = server.accepted.withLockedValue { $0 }
        try await relay("second, from a connection opened ahead")
        #expect(server.requests.withLockedValue { $0 } == 2)
        // The request came on a connection the server had accepted before the flow began.
        #expect(try #require(server.requestedOn.withLockedValue { $0.last }) <= acceptedBefore)

        // The server closes every idle connection: the pool notices and a flow still gets through.
        server.closeIdle()
        for _ in 0..<3000 where try await loop.submit({ upstream.idleConnectionsAhead(on: loop) }).get() > 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        try await relay("third, after the server closed the idle ones")
        #expect(server.requests.withLockedValue { $0 } == 3)

        // A connection the server closes just as a flow takes it (here: on the request, unanswered)
        // costs the flow a fresh dial, not its connection.
        for _ in 0..<3000 where try await loop.submit({ upstream.idleConnectionsAhead(on: loop) }).get() < 1 {
            try await Task.sleep(for: .milliseconds(10))
        }
        server.hangUpOnRequests.withLockedValue { $0 = 1 }
        try await relay("fourth, after a connection opened ahead failed")
        #expect(server.hangUpOnRequests.withLockedValue { $0 } == 0)
        #expect(server.requests.withLockedValue { $0 } == 4)
        try await server.channel.close()
        try await group.shutdownGracefully()
    }
}

/// Reads `expected` octets, then completes `done` with them.
private final class EchoCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let expected: Int
    let done: EventLoopPromise<ByteBuffer>
    var received = ByteBuffer()

    init(expected: Int, done: EventLoopPromise<ByteBuffer>) {
        self.expected = expected
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        if received.readableBytes >= expected { done.succeed(received) }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.read() }
}

/// A SOCKS5 server on 127.0.0.1 for tests: method 0 only, CONNECT to anything, then echoes what it
/// reads (the "target" is itself). Counts connections accepted and requests answered.
private final class MiniSOCKS5Server: Sendable {
    let channel: Channel
    let accepted = NIOLockedValueBox(0)
    let requests = NIOLockedValueBox(0)
    /// For each request answered, the number of its connection in the order of acceptance (1, 2, …).
    let requestedOn = NIOLockedValueBox<[Int]>([])
    /// Requests to answer by closing the connection instead.
    let hangUpOnRequests = NIOLockedValueBox(0)
    /// Connections that have not made their request yet.
    let waiting = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    var address: SocketAddress { channel.localAddress! }

    private init(channel: Channel) { self.channel = channel }

    static func start(on loop: EventLoop) async throws -> MiniSOCKS5Server {
        let box = NIOLockedValueBox<MiniSOCKS5Server?>(nil)
        let channel = try await ServerBootstrap(group: loop)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let server = box.withLockedValue { $0 }!
                    let number = server.accepted.withLockedValue { count in
                        count += 1
                        return count
                    }
                    server.waiting.withLockedValue { $0[ObjectIdentifier(child)] = child }
                    try child.pipeline.syncOperations.addHandler(Handler(server: server, number: number))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = MiniSOCKS5Server(channel: channel)
        box.withLockedValue { $0 = server }
        return server
    }

    func closeIdle() {
        for child in waiting.withLockedValue({ $0.values }) { child.close(promise: nil) }
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let server: MiniSOCKS5Server
        /// The connection's number in the order of acceptance.
        let number: Int
        var buffered = ByteBuffer()
        var stage = 0

        init(server: MiniSOCKS5Server, number: Int) {
            self.server = server
            self.number = number
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            buffered.writeBuffer(&bytes)
            if stage == 0, buffered.readableBytes >= 3 {
                buffered.moveReaderIndex(forwardBy: 3)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, 0])), promise: nil)
                stage = 1
            }
            // An IPv4 request is 10 octets.
            if stage == 1, buffered.readableBytes >= 10 {
                buffered.moveReaderIndex(forwardBy: 10)
                let hangUp = server.hangUpOnRequests.withLockedValue { count in
                    defer { count = max(0, count - 1) }
                    return count > 0
                }
                if hangUp {
                    context.close(promise: nil)
                    return
                }
                server.requests.withLockedValue { $0 += 1 }
                server.requestedOn.withLockedValue { $0.append(number) }
                server.waiting.withLockedValue { _ = $0.removeValue(forKey: ObjectIdentifier(context.channel)) }
                context.write(wrapOutboundOut(ByteBuffer(bytes: [5, 0, 0, 1, 127, 0, 0, 1, 0, 7])), promise: nil)
                stage = 2
            }
            if stage == 2, buffered.readableBytes > 0 {
                context.write(wrapOutboundOut(buffered), promise: nil)
                buffered.clear()
            }
            context.flush()
        }

        func channelInactive(context: ChannelHandlerContext) {
            server.waiting.withLockedValue { _ = $0.removeValue(forKey: ObjectIdentifier(context.channel)) }
        }
    }
}
