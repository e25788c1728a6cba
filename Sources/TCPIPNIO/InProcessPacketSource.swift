import NIOConcurrencyHelpers
import NIOCore
import TCPIP

/// One end of an in-process link: what one runtime writes, the other reads — no device, no root,
/// no system call, on any platform. `StackRuntime.makePair` joins two stacks with it, as
/// `NIOPipeBootstrap` and `EmbeddedChannel` make NIO code testable.
///
/// Nothing can damage a datagram on the way, so the stacks neither compute nor verify checksums
/// (`PacketSourceOffloads.lossless`). Each flush hands the batch to the other end's loop; TCP's
/// windows bound how much is in flight. Datagrams larger than the MTU, or written while the other
/// end is not reading (not started, or closed), are dropped and counted, as on a link that is down.
public final class InProcessPacketSource: PacketSource {
    /// What crossed this end.
    public struct Statistics: Hashable, Sendable {
        /// Datagrams written to this end.
        public var packetsSent: UInt64 = 0
        /// Datagrams handed to the other end.
        public var packetsDelivered: UInt64 = 0
        /// Larger than the MTU.
        public var droppedTooBig: UInt64 = 0
        /// Written while the other end was not reading.
        public var droppedNoReceiver: UInt64 = 0
    }

    public let mtu: Int
    public var offloads: PacketSourceOffloads { PacketSourceOffloads(lossless: true) }
    /// Only on the loop of the runtime this end belongs to.
    public private(set) var statistics = Statistics()
    private let side: Int
    /// The receivers of both ends, each set when its runtime starts reading and cleared on close.
    private let receivers: NIOLockedValueBox<[PacketReceiver?]>
    private var outbound: [ByteBuffer] = []

    private init(mtu: Int, side: Int, receivers: NIOLockedValueBox<[PacketReceiver?]>) {
        self.mtu = mtu
        self.side = side
        self.receivers = receivers
    }

    /// Two ends of one link.
    public static func makePair(mtu: Int = 1500) -> (InProcessPacketSource, InProcessPacketSource) {
        let receivers = NIOLockedValueBox<[PacketReceiver?]>([nil, nil])
        return (
            InProcessPacketSource(mtu: mtu, side: 0, receivers: receivers),
            InProcessPacketSource(mtu: mtu, side: 1, receivers: receivers)
        )
    }

    public func startReading(into receiver: PacketReceiver) throws {
        receivers.withLockedValue { $0[side] = receiver }
    }

    public func enqueue(_ packet: ByteBuffer) throws {
        guard packet.readableBytes <= mtu else {
            statistics.droppedTooBig &+= 1
            return
        }
        outbound.append(packet)
    }

    public func flush() throws {
        guard !outbound.isEmpty else { return }
        let batch = outbound
        outbound.removeAll(keepingCapacity: true)
        guard let peer = receivers.withLockedValue({ $0[1 - side] }) else {
            statistics.droppedNoReceiver &+= UInt64(batch.count)
            return
        }
        statistics.packetsSent &+= UInt64(batch.count)
        peer.eventLoop.execute {
            peer.receive(batch.map { InboundDatagram($0, checksum: .verified) })
        }
    }

    public func close() {
        receivers.withLockedValue { $0[side] = nil }
        outbound.removeAll()
    }
}

extension StackRuntime {
    /// Two runtimes joined by an in-process link (`InProcessPacketSource`): a client and a server
    /// that need no root, no TUN device and no C library — for tests, examples and simulations on
    /// real event loops. Each stack runs on its own loop of `group` (one loop if it has only one).
    /// MTU and checksum offloads come from the link.
    ///
    /// ```swift
    /// let (client, server) = try await StackRuntime.makePair(
    ///     StackConfiguration(addresses: [IPAddress("198.18.0.1")!]),
    ///     StackConfiguration(addresses: [IPAddress("198.18.0.2")!]),
    ///     group: MultiThreadedEventLoopGroup.singleton)
    /// ```
    public static func makePair(
        _ first: StackConfiguration, _ second: StackConfiguration, mtu: Int = 1500, group: EventLoopGroup
    ) async throws -> (StackRuntime, StackRuntime) {
        let (a, b) = InProcessPacketSource.makePair(mtu: mtu)
        let firstRuntime = try await start(first, source: a, on: group.next())
        do {
            let secondRuntime = try await start(second, source: b, on: group.next())
            return (firstRuntime, secondRuntime)
        } catch {
            try? await firstRuntime.stop()
            throw error
        }
    }
}
