import NIOCore
import TCPIP
import TCPIPWire

/// Forwarding on the wall clock, in memory: UDP datagrams of one size go into a `Router` by link a
/// and come out by link b, over and over. No link, no copy: each datagram leaves in the buffer it
/// came in, and the benchmark puts its TTL back (and the checksum, by RFC 1624) before it goes round
/// again — the work of the stack's caller, a few stores, not counted apart.
///
/// The figure is the router's: parse and check the header, look up the route, decrement the TTL,
/// update the checksum, queue and dequeue. A TUN device's read and write (a system call each) are
/// not in it; `scripts/vs-kernel-under-loss.sh` and the interop tests measure those paths.
public enum ForwardBenchmark {
    /// What one run measured.
    public struct Result: Sendable {
        /// Datagrams forwarded.
        public var packets: Int
        /// Octets of those datagrams.
        public var bytes: Int
        /// Wall-clock seconds the forwarding took.
        public var seconds: Double
        /// Datagrams that left in other storage than they came in: a copy somewhere on the path.
        public var copies: Int
        /// `packets` / `seconds`.
        public var packetsPerSecond: Double { Double(packets) / seconds }
        /// `bytes` × 8 / `seconds`, in Gbit/s.
        public var gigabitsPerSecond: Double { Double(bytes) * 8 / seconds / 1e9 }
    }

    /// Forwards `size`-octet datagrams for `seconds`, or exactly `packets` of them when given.
    public static func run(size: Int, ipVersion: Int, seconds: Double, packets: Int? = nil, routes: Int = 2) -> Result {
        let v4 = ipVersion == 4
        var routeList = [
            RoutingTable.Route(IPPrefix(v4 ? "198.18.0.0/24" : "2001:db8::/64")!, link: 0),
            RoutingTable.Route(IPPrefix(v4 ? "198.18.2.0/24" : "2001:db8:2::/64")!, link: 1),
        ]
        // More routes, to see what a larger table costs: /29s (or /64s) elsewhere in the range.
        for index in 0..<max(0, routes - 2) {
            let prefix = v4 ? IPPrefix(.v4(IPv4Address(rawValue: 0xC613_0000 &+ UInt32(index % 8192) << 3)), length: 29)
                : IPPrefix(.v6(IPv6Address(high: 0x2001_0DB8_8000_0000 | UInt64(index), low: 0)), length: 64)
            routeList.append(RoutingTable.Route(prefix!, link: index % 2))
        }
        let router = Router(RouterConfiguration(
            links: [RouterLink(name: "a", mtu: max(size, 1280)), RouterLink(name: "b", mtu: max(size, 1280))],
            routes: routeList, seed: 1))
        let ring = 256
        var queue = PacketQueue<ByteBuffer>(initialCapacity: ring)
        for index in 0..<ring { queue.append(datagram(size: size, v4: v4, port: UInt16(1024 + index))) }
        let clock = WallClock()
        let start = clock.now()
        var now = start
        var forwarded = 0
        var bytes = 0
        var copies = 0
        let limit = packets ?? .max
        let end = start + .nanoseconds(Int64(seconds * 1e9))
        outer: while forwarded < limit {
            for _ in 0..<1024 {
                guard forwarded < limit, let next = queue.popFirst() else { break outer }
                let storage = next.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
                router.receive(consume next, from: 0, now: now)
                guard var out = router.nextPacketToSend(on: 1) else { break outer }
                if out.withUnsafeReadableBytes({ UInt(bitPattern: $0.baseAddress) }) != storage { copies &+= 1 }
                bytes &+= out.readableBytes
                forwarded &+= 1
                restoreHopCount(&out, v4: v4)
                queue.append(out)
            }
            now = clock.now()
            if packets == nil && now >= end { break }
        }
        return Result(packets: forwarded, bytes: bytes, seconds: WallClock.seconds(from: start, to: clock.now()), copies: copies)
    }

    static func datagram(size: Int, v4: Bool, port: UInt16) -> ByteBuffer {
        let header = v4 ? 28 : 48
        var buffer = PacketBuffer.make(payloadCapacity: size)
        buffer.writeBytes((0..<max(0, size - header)).map { UInt8(truncatingIfNeeded: $0) })
        if v4 {
            let source = IPv4Address(198, 18, 0, 1), destination = IPv4Address(198, 18, 2, 1)
            UDPHeader(sourcePort: port, destinationPort: 9).prepend(to: &buffer, source: .v4(source), destination: .v4(destination))
            IPv4Header(source: source, destination: destination, protocolNumber: IPProtocolNumber.udp,
                       payloadLength: buffer.readableBytes).prepend(to: &buffer)
        } else {
            let source = IPv6Address("2001:db8::1")!, destination = IPv6Address("2001:db8:2::1")!
            UDPHeader(sourcePort: port, destinationPort: 9).prepend(to: &buffer, source: .v6(source), destination: .v6(destination))
            IPv6Header(source: source, destination: destination, nextHeader: IPProtocolNumber.udp,
                       payloadLength: buffer.readableBytes).prepend(to: &buffer)
        }
        return buffer
    }

    /// TTL (hop limit) back to 64, the IPv4 header checksum following (RFC 1624).
    @inline(__always)
    static func restoreHopCount(_ datagram: inout ByteBuffer, v4: Bool) {
        let base = datagram.readerIndex
        guard v4 else {
            datagram.setInteger(UInt8(64), at: base + 7)
            return
        }
        let ttl = datagram.getInteger(at: base + 8, as: UInt8.self)!
        let protocolNumber = datagram.getInteger(at: base + 9, as: UInt8.self)!
        let checksum = datagram.getInteger(at: base + 10, as: UInt16.self)!
        datagram.setInteger(UInt8(64), at: base + 8)
        datagram.setInteger(
            InternetChecksum.update(checksum, replacing: UInt16(ttl) << 8 | UInt16(protocolNumber),
                                    with: 64 << 8 | UInt16(protocolNumber)), at: base + 10)
    }
}
