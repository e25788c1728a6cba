import Glibc
import Logging
import NIOCore
import NIOPosix
import TCPIP
import TCPIPLinks
import TCPIPNIO
import TCPIPWire

/// Two runtimes, each a stack on its own event loop, joined by an AF_UNIX SOCK_SEQPACKET pair that
/// carries one datagram per read and write as a TUN descriptor does — no root, no devices.
/// 198.18.0.1 is the client side, 198.18.0.2 the server side.
final class RuntimePair: Sendable {
    static let clientAddress = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    static let serverAddress = IPAddress.v4(IPv4Address(198, 18, 0, 2))

    let group: MultiThreadedEventLoopGroup
    let client: StackRuntime
    let server: StackRuntime

    /// - Parameter inProcess: join the stacks with `InProcessPacketSource`s instead of descriptors, so
    ///   that neither runtime sees its source fail when the other stops first.
    init(
        mtu: Int = 1500, clientLogger: Logger? = nil, serverLogger: Logger? = nil, inProcess: Bool = false,
        configure: (inout TCPConfiguration) -> Void = { _ in }
    ) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var tcp = TCPConfiguration()
        configure(&tcp)
        let loops = Array(group.makeIterator())
        let clientStack = Stack(StackConfiguration(addresses: [Self.clientAddress], mtu: mtu, seed: 1, tcp: tcp))
        let serverStack = Stack(StackConfiguration(addresses: [Self.serverAddress], mtu: mtu, seed: 2, tcp: tcp))
        if inProcess {
            let (near, far) = InProcessPacketSource.makePair(mtu: mtu)
            client = try await StackRuntime.start(stack: clientStack, source: near, on: loops[0], logger: clientLogger).get()
            server = try await StackRuntime.start(stack: serverStack, source: far, on: loops[1], logger: serverLogger).get()
            return
        }
        var descriptors: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &descriptors) == 0 else {
            throw IOError(errnoCode: errno, reason: "socketpair")
        }
        client = try await StackRuntime.start(
            stack: clientStack,
            device: try TUNDevice(adopting: descriptors[0], name: "pair0", mtu: mtu), on: loops[0], logger: clientLogger).get()
        server = try await StackRuntime.start(
            stack: serverStack,
            device: try TUNDevice(adopting: descriptors[1], name: "pair1", mtu: mtu), on: loops[1], logger: serverLogger).get()
    }

    func shutdown() async throws {
        try? await client.stop()
        try? await server.stop()
        try await group.shutdownGracefully()
    }
}

/// RFC 862 echo, for tests.
final class TestEchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// Deterministic bytes: the same `count` for the same seed.
func pattern(_ count: Int, seed: UInt64 = 7) -> ByteBuffer {
    var generator = SeededGenerator(seed: seed)
    var buffer = ByteBufferAllocator().buffer(capacity: count)
    while buffer.readableBytes < count {
        buffer.writeInteger(generator.next(), as: UInt64.self)
    }
    return buffer.getSlice(at: 0, length: count)!
}

/// Polls `condition` on the runtime's loop until it holds or `seconds` pass.
///
/// The condition is checked once more after every sleep, the last one included: under the full
/// suite, blocking interop tests can hold the cooperative pool's threads for longer than `seconds`,
/// and a task that wakes after its deadline must still see what happened while it slept.
func eventually(
    on runtime: StackRuntime, within seconds: Int64 = 20, _ condition: @escaping @Sendable () -> Bool
) async throws -> Bool {
    let deadline = NIODeadline.now() + .seconds(seconds)
    while true {
        if try await runtime.eventLoop.submit(condition).get() { return true }
        if NIODeadline.now() >= deadline { return false }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
}

/// Wraps `channel` in an `NIOAsyncChannel` (outbound half-closure on), writes `sent` in 100,000-byte
/// pieces and then its FIN while reading at the same time, and returns everything read until the
/// peer's FIN: what an echoing peer sent back.
func sendAndReadBack(_ sent: ByteBuffer, over channel: Channel) async throws -> ByteBuffer {
    let asyncChannel = try await channel.eventLoop.submit {
        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
    }.get()
    return try await asyncChannel.executeThenClose { inbound, outbound in
        try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                var rest = sent
                while let chunk = rest.readSlice(length: min(rest.readableBytes, 100_000)) {
                    try await outbound.write(chunk)
                    if rest.readableBytes == 0 { break }
                }
                outbound.finish()
                return nil
            }
            group.addTask {
                var all = ByteBuffer()
                for try await chunk in inbound { all.writeImmutableBuffer(chunk) }
                return all
            }
            var result = ByteBuffer()
            for try await value in group { if let value { result = value } }
            return result
        }
    }
}
