import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TCPIP
import TCPIPNIO
import TCPIPWire
import Testing

/// `PacketSource.readWithoutWaiting`: what the other side answers within our writes (a TUN device's
/// kernel answers a SYN-ACK with its ACK inside our write(2)) is taken in right after the pump that
/// wrote, in a task of the loop's own, with no batch pushed by a reading thread.
@Suite struct ReadAfterWritingTests {
    static let server = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    static let client = IPAddress.v4(IPv4Address(198, 18, 0, 1))

    /// Only the client's SYN and its data are pushed (`PacketReceiver.receive`), as a reading thread
    /// would; its ACK of our SYN-ACK comes back only through `readWithoutWaiting`, after the write of
    /// the SYN-ACK. The runtime's listener accepts, and the echo of 1,000 octets reaches the client
    /// whole.
    @Test func answersWithinAWriteAreTakenInWithoutAReadingThread() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let source = AnsweringSource(peer: Stack(StackConfiguration(addresses: [Self.client], seed: 7)))
        let runtime = try await StackRuntime.start(
            StackConfiguration(addresses: [Self.server], seed: 8), source: source, on: loop)
        let accepted = loop.makePromise(of: Void.self)
        _ = try await TCPIPServerBootstrap(runtime: runtime)
            .childChannelInitializer { channel in
                accepted.succeed()
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TestEchoHandler()) }
            }
            .bind(port: 7).get()

        let connection = try await loop.submit {
            let id = try source.peer.connect(to: Endpoint(Self.server, 7), now: StackRuntime.now())
            source.push()   // the SYN
            return id
        }.get()
        // Without the reads after writing, the ACK would wait forever: give up after 10 s instead.
        let deadline = loop.scheduleTask(in: .seconds(10)) { accepted.fail(ChannelError.connectTimeout(.seconds(10))) }
        try await accepted.futureResult.get()
        deadline.cancel()
        let sent = pattern(1000)
        try await loop.submit {
            #expect(source.peer.state(connection) == .established)
            // The ACK of our SYN-ACK was handed over after the write, not pushed.
            #expect(source.pushes == 1 && source.handedOver >= 1)
            _ = try source.peer.send(connection, sent, now: StackRuntime.now())
            source.push()   // the data
        }.get()
        var echoed = ByteBuffer()
        for _ in 0..<500 where echoed.readableBytes < sent.readableBytes {
            try await Task.sleep(for: .milliseconds(10))
            echoed = try await loop.submit { source.read(connection) }.get()
        }
        #expect(echoed == sent)
        try await runtime.stop()
        try await group.shutdownGracefully()
    }
}

/// A source whose other side is a sans-IO stack that answers within each write, as the kernel does
/// within a write(2) to a TUN device; its answers wait for `readWithoutWaiting`. Used only on the loop.
private final class AnsweringSource: PacketSource, @unchecked Sendable {
    let peer: Stack
    private var receiver: PacketReceiver?
    private var answers: [InboundDatagram] = []
    private var echoed = ByteBuffer()
    private(set) var pushes = 0
    private(set) var handedOver = 0

    init(peer: Stack) { self.peer = peer }

    var mtu: Int { 1500 }
    var offloads: PacketSourceOffloads { PacketSourceOffloads() }
    func startReading(into receiver: PacketReceiver) throws { self.receiver = receiver }

    func enqueue(_ packet: ByteBuffer) throws {
        peer.receive(packet, now: StackRuntime.now())
        collect()
    }

    func flush() throws {}
    func close() {}

    func readWithoutWaiting() -> [InboundDatagram] {
        defer { answers = [] }
        handedOver += answers.count
        return answers
    }

    /// What the peer has to send, pushed as a reading thread would.
    func push() {
        collect()
        let batch = answers
        answers = []
        pushes += 1
        receiver?.receive(batch)
    }

    /// Everything the peer has read on `connection` so far.
    func read(_ connection: ConnectionID) -> ByteBuffer {
        while case .data(var chunk) = try? peer.read(connection, now: StackRuntime.now()) {
            echoed.writeBuffer(&chunk)
        }
        return echoed
    }

    private func collect() {
        while let packet = peer.nextPacketToSend() { answers.append(InboundDatagram(packet)) }
    }
}
