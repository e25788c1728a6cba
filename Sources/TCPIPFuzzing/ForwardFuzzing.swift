import NIOCore
import TCPIP
import TCPIPWire

/// The forwarding path as libFuzzer sees it: datagrams of any shape, arriving by any of three links
/// (MTUs 1500, 1280 and 576), played against a `Router` with nested routes, interleaved with time
/// steps. After every event: nothing trapped, every datagram leaving by a link fits its MTU, and
/// every IPv4 datagram forwarded from one whose header checksum held still has a header checksum
/// that holds (RFC 1624's incremental update never breaks it).
///
/// Input format, one event after another until the bytes run out:
///
///     op % 4 == 0  raw datagram     link:u8, len:u16be, then len octets (fewer if the input ends)
///     op % 4 == 1  time step        step:u8 — the clock moves step² milliseconds
///     op % 4 == 2  crafted IPv4     link:u8, ttl:u8, flags:u8, size:u16be, destination:u8 — a UDP
///                                   datagram of `size % 3000` octets to 198.18.<destination % 4>.1
///     op % 4 == 3  crafted IPv6     link:u8, hop:u8, size:u16be, destination:u8 — the same, to
///                                   2001:db8:<destination % 4>::1
public enum ForwardFuzzing {
    public static let maximumEvents = 512
    static let mtus = [1500, 1280, 576]

    public static func router() -> Router {
        Router(RouterConfiguration(
            links: [RouterLink(name: "a", addresses: [.v4(IPv4Address(198, 18, 0, 254)), IPAddress("2001:db8::fe")!]),
                    RouterLink(name: "b", mtu: 1280, addresses: [.v4(IPv4Address(198, 18, 1, 254))]),
                    RouterLink(name: "c", mtu: 576)],
            routes: [
                RoutingTable.Route(IPPrefix("198.18.0.0/15")!, link: 0), RoutingTable.Route(IPPrefix("198.18.1.0/24")!, link: 1),
                RoutingTable.Route(IPPrefix("198.18.2.0/24")!, link: 2), RoutingTable.Route(IPPrefix("2001:db8::/32")!, link: 0),
                RoutingTable.Route(IPPrefix("2001:db8:1::/48")!, link: 1), RoutingTable.Route(IPPrefix("2001:db8:2::/48")!, link: 2),
            ],
            seed: 20))
    }

    /// Plays `input` against a fresh router. Never traps unless forwarding has a bug.
    public static func forward(_ input: UnsafeRawBufferPointer) {
        let router = router()
        var reader = StackFuzzing.Reader(bytes: input)
        var now = Instant.zero + .seconds(1)
        var events = 0
        while events < maximumEvents, let op = reader.byte() {
            events += 1
            var headerChecksumHeld = false
            switch op % 4 {
            case 0:
                guard let link = reader.byte(), let datagram = reader.datagram() else { break }
                headerChecksumHeld = (try? IPv4Header.parse(datagram, verifyChecksum: true)) != nil
                router.receive(datagram, from: Int(link) % mtus.count, now: now)
            case 1:
                guard let step = reader.byte() else { break }
                now = now + .milliseconds(Int64(step) * Int64(step))
                router.advanceTime(to: now)
            case 2:
                guard let link = reader.byte(), let ttl = reader.byte(), let flags = reader.byte(), let size = reader.uint16(),
                      let destination = reader.byte() else { break }
                let to = IPv4Address(198, 18, destination % 4, 1)
                var datagram = payload(Int(size) % 3000)
                UDPHeader(sourcePort: 40000, destinationPort: 33434).prepend(
                    to: &datagram, source: .v4(IPv4Address(198, 18, 0, 1)), destination: .v4(to))
                IPv4Header(source: IPv4Address(198, 18, 0, 1), destination: to, protocolNumber: IPProtocolNumber.udp,
                           payloadLength: datagram.readableBytes, timeToLive: ttl, dontFragment: flags & 1 != 0).prepend(to: &datagram)
                headerChecksumHeld = true
                router.receive(datagram, from: Int(link) % mtus.count, now: now)
            default:
                guard let link = reader.byte(), let hop = reader.byte(), let size = reader.uint16(),
                      let destination = reader.byte() else { break }
                let to = IPv6Address(high: 0x2001_0DB8_0000_0000 | UInt64(destination % 4) << 16, low: 1)
                var datagram = payload(Int(size) % 3000)
                UDPHeader(sourcePort: 40000, destinationPort: 33434).prepend(
                    to: &datagram, source: IPAddress("2001:db8::1")!, destination: .v6(to))
                IPv6Header(source: IPv6Address("2001:db8::1")!, destination: to, nextHeader: IPProtocolNumber.udp,
                           payloadLength: datagram.readableBytes, hopLimit: hop).prepend(to: &datagram)
                router.receive(datagram, from: Int(link) % mtus.count, now: now)
            }
            for link in mtus.indices {
                while let out = router.nextPacketToSend(on: link) {
                    precondition(out.readableBytes <= mtus[link], "a datagram larger than link \(link)'s MTU left by it")
                    if headerChecksumHeld, out.getInteger(at: out.readerIndex, as: UInt8.self).map({ $0 >> 4 }) == 4 {
                        precondition((try? IPv4Header.parse(out, verifyChecksum: true)) != nil,
                                     "a forwarded IPv4 datagram whose header checksum no longer holds")
                    }
                }
            }
        }
    }

    private static func payload(_ count: Int) -> ByteBuffer {
        var buffer = PacketBuffer.make(payloadCapacity: count)
        buffer.writeBytes((0..<count).map { UInt8(truncatingIfNeeded: $0) })
        return buffer
    }

    /// Seeds: a traceroute, datagrams too big for each link, a mix of both families.
    static let seeds: [(String, [UInt8])] = [
        ("traceroute-v4", [2, 0, 1, 0, 0, 60, 1, 2, 0, 2, 0, 0, 60, 1, 1, 10]),
        ("too-big-v4", [2, 0, 64, 1, 0x05, 0xDC, 1, 2, 0, 64, 0, 0x05, 0xDC, 2]),
        ("too-big-v6", [3, 0, 64, 0x05, 0xDC, 1, 3, 0, 64, 0x05, 0xDC, 2, 3, 0, 1, 0, 100, 1]),
        ("mixed", [2, 1, 64, 1, 0, 200, 0, 3, 2, 64, 0, 200, 0, 1, 50, 2, 0, 255, 0, 0x0B, 0xB8, 2, 0, 0, 4, 0x45, 0, 0, 20]),
    ]
}
