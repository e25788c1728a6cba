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
#endif
