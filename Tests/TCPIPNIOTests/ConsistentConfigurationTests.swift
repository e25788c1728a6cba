#if os(Linux)
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TCPIP
import TCPIPLinks
import TCPIPNIO
import TCPIPWire
import Testing

/// The runtime takes the MTU and the checksum offloads from its packet source; a stack configured
/// for what its source cannot do is refused at start with an error, never left to hang.
@Suite struct ConsistentConfigurationTests {
    static let address = IPAddress("198.18.0.1")!
    let peers = NIOLockedValueBox<[Int32]>([])

    init() {}

    func closePeers() {
        for descriptor in peers.withLockedValue({ $0 }) { close(descriptor) }
    }

    /// One end of a datagram socket pair, adopted as a TUN descriptor without a virtio-net header;
    /// the other end is closed when the test ends.
    func device(mtu: Int) throws -> TUNDevice {
        var descriptors: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &descriptors) == 0 else {
            throw IOError(errnoCode: errno, reason: "socketpair")
        }
        peers.withLockedValue { $0.append(descriptors[1]) }
        return try TUNDevice(adopting: descriptors[0], name: "pair0", mtu: mtu)
    }

    /// `TUNDevice.Options.virtioNetHeader` off with `transmitChecksumOffload` on: the kernel would
    /// drop every segment (TcpInCsumErrors) and the client hang. Now: an error at start.
    @Test func transmitChecksumOffloadWithoutVirtioHeaderThrows() async throws {
        var configuration = StackConfiguration(addresses: [Self.address], mtu: 1500, seed: 1)
        configuration.transmitChecksumOffload = true
        let device = try device(mtu: 1500)
        await #expect(throws: StackRuntime.ConfigurationError.checksumOffloadUnavailable) {
            _ = try await StackRuntime.start(
                stack: Stack(configuration), device: device, on: MultiThreadedEventLoopGroup.singleton.next()
            ).get()
        }
        device.close()
        closePeers()
    }

    @Test func checksumOffloadOnADeviceThrows() async throws {
        let configuration = StackConfiguration(addresses: [Self.address], mtu: 1500, checksumOffload: true, seed: 1)
        let device = try device(mtu: 1500)
        await #expect(throws: StackRuntime.ConfigurationError.checksumVerificationRequired) {
            _ = try await StackRuntime.start(
                stack: Stack(configuration), device: device, on: MultiThreadedEventLoopGroup.singleton.next()
            ).get()
        }
        device.close()
        closePeers()
    }

    /// A stack MTU above the device's would have every full-sized segment dropped at the device.
    @Test func mtuLargerThanTheDeviceThrows() async throws {
        let configuration = StackConfiguration(addresses: [Self.address], mtu: 9000, seed: 1)
        let device = try device(mtu: 1280)
        await #expect(throws: StackRuntime.ConfigurationError.mtuLargerThanSource(stack: 9000, source: 1280)) {
            _ = try await StackRuntime.start(
                stack: Stack(configuration), device: device, on: MultiThreadedEventLoopGroup.singleton.next()
            ).get()
        }
        device.close()
        closePeers()
    }

    /// Started from a configuration, the stack takes the device's MTU and offloads: nothing to
    /// contradict.
    @Test func theRuntimeDerivesWhatTheDeviceKnows() async throws {
        var configuration = StackConfiguration(addresses: [Self.address], mtu: 9000, checksumOffload: true, seed: 1)
        configuration.transmitChecksumOffload = true
        let runtime = try await StackRuntime.start(
            configuration, source: try device(mtu: 1280), on: MultiThreadedEventLoopGroup.singleton.next())
        let derived = try await runtime.eventLoop.submit { runtime.stack.configuration }.get()
        #expect(derived.mtu == 1280)
        #expect(!derived.transmitChecksumOffload)
        #expect(!derived.checksumOffload)
        #expect(derived.seed == 1)
        try await runtime.stop()
        closePeers()
    }

    /// A source with a short queue in front of its reader (a TUN device without offload: 500
    /// datagrams): an autotuned receive window stops at half of it, so a sender cannot have more in
    /// flight than the queue holds while the reader is held up. A fixed window is left alone.
    @Test func anAutotunedWindowStaysWithinHalfTheSourcesQueue() {
        let source = QueuedSource(inboundQueueOctets: 500 * 1500)
        var autotuned = StackConfiguration(addresses: [Self.address], tcp: .packetTunnel)
        autotuned.tcp.receiveBufferSize = 256 * 1024
        autotuned.tcp.receiveBufferMaximum = 4 * 1024 * 1024
        let derived = StackRuntime.derive(autotuned, from: source)
        #expect(derived.tcp.receiveBufferMaximum == 375_000)
        #expect(derived.tcp.receiveBufferSize == 256 * 1024)

        var fixed = StackConfiguration(addresses: [Self.address])
        fixed.tcp.receiveBufferSize = 1024 * 1024
        let kept = StackRuntime.derive(fixed, from: source)
        #expect(kept.tcp.receiveBufferSize == 1024 * 1024 && kept.tcp.receiveBufferMaximum == nil)

        // However short the queue, a window of 64 KiB is left; the start never exceeds the maximum.
        let tiny = StackRuntime.derive(autotuned, from: QueuedSource(inboundQueueOctets: 10 * 1500))
        #expect(tiny.tcp.receiveBufferMaximum == 64 * 1024 && tiny.tcp.receiveBufferSize == 64 * 1024)
        // A source that does not say keeps the configured growth.
        #expect(StackRuntime.derive(autotuned, from: QueuedSource(inboundQueueOctets: nil)).tcp.receiveBufferMaximum == 4 * 1024 * 1024)
    }

    /// The in-process pair is lossless: checksums are neither computed nor verified.
    @Test func theInProcessPairOffersEveryOffload() async throws {
        let (a, b) = try await StackRuntime.makePair(
            StackConfiguration(addresses: [Self.address], seed: 1),
            StackConfiguration(addresses: [IPAddress("198.18.0.2")!], seed: 2),
            mtu: 4000, group: MultiThreadedEventLoopGroup.singleton)
        let derived = try await a.eventLoop.submit { a.stack.configuration }.get()
        #expect(derived.mtu == 4000 && derived.checksumOffload && derived.transmitChecksumOffload)
        try await a.stop()
        try await b.stop()
    }
}

/// A packet source that only describes itself, for `derive`.
private final class QueuedSource: PacketSource {
    let inboundQueueOctets: Int?
    init(inboundQueueOctets: Int?) { self.inboundQueueOctets = inboundQueueOctets }
    var mtu: Int { 1500 }
    var offloads: PacketSourceOffloads { PacketSourceOffloads() }
    func startReading(into receiver: PacketReceiver) throws {}
    func enqueue(_ packet: ByteBuffer) throws {}
    func flush() throws {}
    func close() {}
}
#endif
