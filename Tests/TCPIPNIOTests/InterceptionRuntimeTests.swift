import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TCPIP
import TCPIPNIO
import TCPIPWire
import Testing

/// Intercept mode on the runtime: a client stack dials 198.19.5.5, an address nobody owns, through a
/// stack that intercepts everything; the application answers each request on the loop.
@Suite struct InterceptionRuntimeTests {
    static let target = Endpoint(IPAddress.v4(IPv4Address(198, 19, 5, 5)), 443)

    /// A client runtime at 198.18.0.1 and an intercepting runtime with no address, in one process.
    static func pair(
        _ adjust: (inout InterceptionConfiguration) -> Void = { _ in }
    ) async throws -> (client: StackRuntime, gateway: StackRuntime, group: MultiThreadedEventLoopGroup) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var gateway = StackConfiguration(addresses: [], seed: 19)
        var interception = InterceptionConfiguration()
        adjust(&interception)
        gateway.interception = interception
        let (client, intercepting) = try await StackRuntime.makePair(
            StackConfiguration(addresses: [RuntimePair.clientAddress], seed: 1), gateway, group: group)
        return (client, intercepting, group)
    }

    static func shutdown(_ runtimes: (client: StackRuntime, gateway: StackRuntime, group: MultiThreadedEventLoopGroup)) async throws {
        try? await runtimes.client.stop()
        try? await runtimes.gateway.stop()
        try await runtimes.group.shutdownGracefully()
    }

    /// The handler accepts and echoes: 1 MiB to 198.19.5.5:443 and back, every byte checked; the
    /// accepted channel's local address is the original destination.
    @Test func acceptedConnectionEchoesEveryByte() async throws {
        let runtimes = try await Self.pair()
        let gateway = runtimes.gateway
        let seen = NIOLockedValueBox<[ConnectionRequest]>([])
        let accepted = gateway.eventLoop.makePromise(of: Channel.self)
        gateway.setConnectionRequestHandler { request in
            seen.withLockedValue { $0.append(request) }
            gateway.accept(request) { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TestEchoHandler()) }
            }.cascade(to: accepted)
        }
        let channel = try await TCPIPClientBootstrap(runtime: runtimes.client).connect(to: Self.target).get()
        let server = try await accepted.futureResult.get()
        #expect(server.localAddress == Self.target.socketAddress)
        #expect(server.remoteAddress == channel.localAddress)
        let request = try #require(seen.withLockedValue { $0.first })
        #expect(request.destination == Self.target)
        #expect(request.source.address == RuntimePair.clientAddress)

        let sent = pattern(1 << 20)
        let received = try await sendAndReadBack(sent, over: channel)
        #expect(received == sent)
        let counters = try await gateway.eventLoop.submit { gateway.stack.counters }.get()
        #expect(counters.interceptRequests == 1 && counters.interceptAccepted == 1)
        try await Self.shutdown(runtimes)
    }

    /// Refused with RST: the client's connect fails with "connection refused" — never an accept
    /// followed by a close.
    @Test func refusedRequestFailsTheConnect() async throws {
        let runtimes = try await Self.pair()
        let gateway = runtimes.gateway
        gateway.setConnectionRequestHandler { request in gateway.refuse(request, with: .reset) }
        await #expect(throws: TCPError.connectionRefused) {
            _ = try await TCPIPClientBootstrap(runtime: runtimes.client).connect(to: Self.target).get()
        }
        try await Self.shutdown(runtimes)
    }

    /// A request answered later, from another thread (a relay that dialled upstream first): the
    /// client waits in SYN-SENT meanwhile, then connects.
    ///
    /// The answer comes from a task scheduled on the other event loop, not from this test's task:
    /// under the full suite, blocking interop tests can hold the cooperative pool for minutes, and
    /// an answer waiting on this task once came after the client's SYN retries had given up.
    @Test func requestAnsweredLaterFromAnotherThread() async throws {
        let runtimes = try await Self.pair { $0.requestDeadline = .seconds(3600) }
        let gateway = runtimes.gateway
        let otherLoop = try #require(runtimes.group.makeIterator().first { $0 !== gateway.eventLoop })
        let answered = otherLoop.makePromise(of: ConnectionRequest.self)
        let accepted = otherLoop.makePromise(of: Channel.self)
        gateway.setConnectionRequestHandler { request in
            otherLoop.scheduleTask(in: .milliseconds(100)) {
                gateway.accept(request) { $0.eventLoop.makeSucceededVoidFuture() }.cascade(to: accepted)
                answered.succeed(request)
            }
        }
        let channel = try await TCPIPClientBootstrap(runtime: runtimes.client).connect(to: Self.target).get()
        let server = try await accepted.futureResult.get()
        #expect(server.isActive && channel.isActive)
        // Answered once: accepting again fails.
        let request = try await answered.futureResult.get()
        await #expect(throws: TCPError.connectionDoesNotExist) {
            _ = try await gateway.accept(request) { $0.eventLoop.makeSucceededVoidFuture() }.get()
        }
        try await channel.close()
        try await Self.shutdown(runtimes)
    }

    /// A graceful stop accepts no new connection in intercept mode either: while it waits for an
    /// open connection to finish, a new client's connect is refused (RST), and the outcome counts
    /// the one open connection as finished (a stop once printed "-1000 finished" for accepts made
    /// while draining).
    @Test func drainingRefusesNewRequests() async throws {
        let runtimes = try await Self.pair()
        let gateway = runtimes.gateway
        gateway.setConnectionRequestHandler { request in
            _ = gateway.accept(request) { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TestEchoHandler()) }
            }
        }
        let open = try await TCPIPClientBootstrap(runtime: runtimes.client).connect(to: Self.target).get()
        // The future variant submits the drain to the gateway's loop now, before the SYN below
        // can reach it (the loop runs its tasks in order). Were the second connection accepted,
        // the drain would wait for it until the deadline, and the outcome would count it reset.
        let outcome: EventLoopFuture<StackRuntime.ShutdownOutcome> = gateway.shutdownGracefully(deadline: .now() + .seconds(300))
        await #expect(throws: TCPError.connectionRefused) {
            _ = try await TCPIPClientBootstrap(runtime: runtimes.client)
                .connect(to: Endpoint(IPAddress.v4(IPv4Address(198, 19, 5, 6)), 80)).get()
        }
        try await open.close()
        let ended = try await outcome.get()
        #expect(ended.finished == 1 && ended.reset == 0)
        try await runtimes.client.stop()
        try await runtimes.group.shutdownGracefully()
    }

    /// Half-close carried: the client's FIN is the accepted channel's `inputClosed`; it still answers,
    /// and the client reads the answer before the end of the stream.
    @Test func halfCloseIsCarried() async throws {
        let runtimes = try await Self.pair()
        let gateway = runtimes.gateway
        gateway.setConnectionRequestHandler { request in
            _ = gateway.accept(request) { channel in
                channel.setOption(.allowRemoteHalfClosure, value: true).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(AnswerAtEndHandler())
                }
            }
        }
        let answer = runtimes.client.eventLoop.makePromise(of: String.self)
        let client = try await TCPIPClientBootstrap(runtime: runtimes.client)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReadToEndHandler(done: answer))
                }
            }
            .connect(to: Self.target).get()
        try await client.writeAndFlush(ByteBuffer(string: "question"))
        try await client.close(mode: .output)
        #expect(try await answer.futureResult.get() == "got 8 bytes")
        try await client.close()
        try await Self.shutdown(runtimes)
    }

    /// A UDP flow: the handler gets a channel whose local address is the original destination and
    /// echoes; the client's datagrams come back from that address, byte for byte.
    @Test func udpFlowEchoes() async throws {
        let runtimes = try await Self.pair()
        let gateway = runtimes.gateway
        let flowAddress = NIOLockedValueBox<SocketAddress?>(nil)
        gateway.setUDPFlowHandler { channel in
            flowAddress.withLockedValue { $0 = channel.localAddress }
            try! channel.pipeline.syncOperations.addHandler(DatagramEchoHandler())
        }
        let collector = DatagramCollector()
        let target = Endpoint(IPAddress.v4(IPv4Address(198, 19, 5, 5)), 5353)
        let client = try await TCPIPDatagramBootstrap(runtime: runtimes.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(to: target).get()
        let sizes = [1, 100, 1472, 30_000]
        for (index, size) in sizes.enumerated() {
            try await client.writeAndFlush(pattern(size, seed: UInt64(index))).get()
        }
        #expect(try await eventually(on: runtimes.client) { collector.received.withLockedValue { $0.count } == sizes.count })
        let received = collector.received.withLockedValue { $0 }
        for (index, envelope) in received.enumerated() {
            #expect(envelope.remoteAddress == target.socketAddress)
            #expect(envelope.data == pattern(sizes[index], seed: UInt64(index)))
        }
        #expect(flowAddress.withLockedValue { $0 } == target.socketAddress)
        let flows = try await gateway.eventLoop.submit { gateway.stack.udpFlowCount }.get()
        #expect(flows == 1)
        try await client.close()
        try await Self.shutdown(runtimes)
    }

    /// Without a handler, requests are refused: nothing ever looks open.
    @Test func withoutAHandlerRequestsAreRefused() async throws {
        let runtimes = try await Self.pair()
        await #expect(throws: TCPError.connectionRefused) {
            _ = try await TCPIPClientBootstrap(runtime: runtimes.client).connect(to: Self.target).get()
        }
        try await Self.shutdown(runtimes)
    }
}
