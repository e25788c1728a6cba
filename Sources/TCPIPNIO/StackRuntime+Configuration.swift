import TCPIP

// What `StackRuntime.start` checks and derives of a stack's configuration from its packet source,
// before the stack is built.
extension StackRuntime {
    /// Why a runtime would not start: the stack and its source disagree, which would otherwise
    /// show only as a silent hang (the peer dropping every segment).
    public enum ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
        /// The stack's MTU is larger than the source's: every full-sized segment would be dropped.
        case mtuLargerThanSource(stack: Int, source: Int)
        /// The stack leaves checksums to the source (`transmitChecksumOffload` or `checksumOffload`),
        /// which does not complete them (a TUN device without `Options.virtioNetHeader`): the
        /// peer's kernel would drop every segment (`TcpInCsumErrors`).
        case checksumOffloadUnavailable
        /// The stack skips verifying received checksums (`checksumOffload`) on a source where
        /// datagrams may be damaged.
        case checksumVerificationRequired

        public var description: String {
            switch self {
            case .mtuLargerThanSource(let stack, let source):
                "the stack's MTU (\(stack)) is larger than its packet source's (\(source))"
            case .checksumOffloadUnavailable:
                "the stack leaves TCP checksums to its packet source, which does not complete them (open a TUN device with virtioNetHeader, or turn transmitChecksumOffload off)"
            case .checksumVerificationRequired:
                "checksumOffload skips verifying checksums, but this packet source can deliver damaged datagrams"
            }
        }
    }

    /// The contradictions between a stack's configuration and its source that `start` refuses.
    public static func validate(_ configuration: StackConfiguration, for source: any PacketSource) throws(ConfigurationError) {
        if configuration.mtu > source.mtu {
            throw .mtuLargerThanSource(stack: configuration.mtu, source: source.mtu)
        }
        let offloads = source.offloads
        if configuration.checksumOffload && !offloads.lossless { throw .checksumVerificationRequired }
        if configuration.transmitChecksumOffload && !offloads.transmitChecksum { throw .checksumOffloadUnavailable }
    }

    /// `configuration` with what the source already knows: its MTU, the checksum offloads it
    /// offers, and the queue in front of its reader — so that a stack never asks for what its
    /// source cannot do.
    ///
    /// An autotuned receive window grows to at most half the source's inbound queue
    /// (`inboundQueueOctets`). Every octet a window admits may sit in that queue while the reader is
    /// held up (a descheduled thread, a long batch), so a larger window lets a fast sender overflow
    /// it: the kernel drops, the sender retransmits and halves. A TUN device without offload queues
    /// 500 datagrams (730 KB at MTU 1500): a `tcpip gateway --no-offload` upload autotuned to 4 MiB
    /// lost 1,000–2,000 segments in 4 s and ran at half the speed of a fixed 256 KiB window. Half,
    /// so that the segments of other flows and the ACKs of downloads find room too. A window the
    /// configuration fixed (no `receiveBufferMaximum`) is the application's choice and kept.
    public static func derive(_ configuration: StackConfiguration, from source: any PacketSource) -> StackConfiguration {
        var configuration = configuration
        configuration.mtu = source.mtu
        configuration.transmitChecksumOffload = source.offloads.transmitChecksum
        configuration.checksumOffload = source.offloads.lossless
        if let queue = source.inboundQueueOctets, let maximum = configuration.tcp.receiveBufferMaximum {
            let limit = max(queue / 2, minimumAutotunedWindow)
            if maximum > limit {
                configuration.tcp.receiveBufferSize = min(configuration.tcp.receiveBufferSize, limit)
                configuration.tcp.receiveBufferMaximum = limit
            }
        }
        return configuration
    }

    /// The least `derive` leaves an autotuned receive window, however short the source's queue.
    static let minimumAutotunedWindow = 64 * 1024
}
