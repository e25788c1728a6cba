import NIOCore
import TCPIP
import TCPIPWire

/// A router hop with a narrow next link, in front of one end of a link: it forwards datagrams of up
/// to `pathMTU` octets, and answers a larger one that may not be fragmented (IPv4 with DF, every
/// IPv6 datagram) as a router does — ICMP fragmentation needed with the next-hop MTU (RFC 1191 §4,
/// RFC 792) or ICMPv6 packet too big (RFC 4443 §3.2), from a router address — or, as a black hole,
/// drops it without a word (RFC 2923 §2.1: the failure PLPMTUD exists for).
///
/// The error comes back after `delay` (the router sits one link delay away). A larger IPv4
/// datagram without DF is dropped and counted too: this router does not fragment, and TCP never
/// asks it to.
public final class PathMTURouter: PacketLink {
    /// What the router did.
    public struct Statistics: Hashable, Sendable {
        /// Datagrams forwarded.
        public var forwarded: UInt64 = 0
        /// Datagrams too big for the next hop, of which those answered with an ICMP error.
        public var tooBig: UInt64 = 0
        /// ICMP errors sent back for them (none as a black hole).
        public var errorsSent: UInt64 = 0
        /// The largest datagram forwarded.
        public var largestForwarded = 0
    }

    /// The router's own addresses: in the benchmarking ranges (RFC 2544's 198.18.0.0/15, RFC 3849's
    /// 2001:db8::/32), like everything in the simulation.
    public static let routerAddress4 = IPv4Address(198, 18, 255, 254)
    /// The router's IPv6 address, the source of its packet-too-big messages.
    public static let routerAddress6 = IPv6Address("2001:db8:ffff::1")!

    /// The link the router sits in front of.
    public let inner: PacketLink
    /// The next link's MTU: the largest datagram forwarded.
    public let pathMTU: Int
    /// Drop too-big datagrams without an ICMP error.
    public let blackHole: Bool
    /// How long an ICMP error takes to come back.
    public let delay: TimeAmount
    /// What it did so far.
    public private(set) var statistics = Statistics()
    /// ICMP errors on their way back to this end.
    private var errors = CircularBuffer<(packet: ByteBuffer, arrival: Instant)>()

    /// A router in front of `inner` whose next link carries at most `pathMTU` octets (68 at least); `blackHole`
    /// drops what is too big silently, and errors come back after `delay`.
    public init(wrapping inner: PacketLink, pathMTU: Int, blackHole: Bool = false, delay: TimeAmount = .zero) {
        precondition(pathMTU >= 68, "PathMTURouter: a path MTU below 68 octets")
        self.inner = inner
        self.pathMTU = pathMTU
        self.blackHole = blackHole
        self.delay = delay
    }

    public var mtu: Int { inner.mtu }
    /// The wrapped link's.
    public var capabilities: LinkCapabilities { inner.capabilities }

    public var nextArrival: Instant? { Instant.earliest(inner.nextArrival, errors.first?.arrival) }

    public func send(_ packet: ByteBuffer, now: Instant) {
        guard packet.readableBytes > pathMTU else {
            statistics.forwarded &+= 1
            statistics.largestForwarded = max(statistics.largestForwarded, packet.readableBytes)
            inner.send(packet, now: now)
            return
        }
        statistics.tooBig &+= 1
        guard !blackHole, let error = tooBigError(for: packet) else { return }
        statistics.errorsSent &+= 1
        errors.append((error, now + delay))
    }

    public func receive(now: Instant) -> ByteBuffer? {
        if let first = errors.first, first.arrival <= now {
            return errors.removeFirst().packet
        }
        return inner.receive(now: now)
    }

    /// The ICMP error a router sends about `packet`, or nil when it sends none (not IP, IPv4 without DF).
    func tooBigError(for packet: ByteBuffer) -> ByteBuffer? {
        guard let version = packet.getInteger(at: packet.readerIndex, as: UInt8.self).map({ $0 >> 4 }) else { return nil }
        switch version {
        case 4:
            guard let header = try? IPv4Header.parse(packet, verifyChecksum: false), header.dontFragment else { return nil }
            // RFC 1812 §4.3.2.3: quote as much as fits in 576 octets.
            let quote = packet.getSlice(at: packet.readerIndex, length: min(packet.readableBytes, 576 - 28))!
            return PacketBuffer.icmpv4Datagram(
                message: .destinationUnreachable(.fragmentationNeeded, nextHopMTU: UInt16(clamping: pathMTU)), body: quote,
                source: Self.routerAddress4, destination: header.source)
        case 6:
            guard packet.readableBytes >= 40 else { return nil }
            let source = IPv6Address(
                high: packet.getInteger(at: packet.readerIndex + 8, as: UInt64.self)!,
                low: packet.getInteger(at: packet.readerIndex + 16, as: UInt64.self)!)
            // RFC 4443 §2.4 (c): as much as fits in the minimum MTU.
            let quote = packet.getSlice(at: packet.readerIndex, length: min(packet.readableBytes, 1280 - 48))!
            return PacketBuffer.icmpv6Datagram(
                message: .packetTooBig(mtu: UInt32(pathMTU)), body: quote, source: Self.routerAddress6, destination: source)
        default:
            return nil
        }
    }
}
