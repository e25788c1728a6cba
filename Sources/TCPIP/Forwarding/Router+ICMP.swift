import NIOCore
import TCPIPWire

/// The ICMP errors a router sends about datagrams it cannot forward: time exceeded (RFC 792,
/// RFC 4443 §3.3), fragmentation needed (RFC 1191 §4) and packet too big (RFC 4443 §3.2), and
/// no route (RFC 1812 §5.2.7.1, RFC 4443 §3.1) — each from the router's address on the link the
/// datagram came in by, so that traceroute names the hop, and each from one token bucket.
extension Router {
    /// RFC 1812 §4.3.2.3: an ICMP error datagram is at most 576 octets.
    static var maximumIPv4ErrorDatagram: Int { 576 }
    /// RFC 4443 §2.4(c): no larger than the minimum IPv6 MTU.
    static var minimumIPv6MTU: Int { 1280 }

    func sendError4(_ message: ICMPv4Message, about datagram: ByteBuffer, header: IPv4Header, from link: Int, now: Instant) {
        // RFC 1812 §4.3.2.7: never about an ICMP error or a non-first fragment (the source and
        // destination were checked by the caller, or are what made the datagram unroutable).
        guard header.fragmentOffset == 0, IPAddress.v4(header.source).namesSingleHost else {
            counters.icmpErrorsSuppressed &+= 1
            return
        }
        if header.protocolNumber == IPProtocolNumber.icmp {
            let type = datagram.getInteger(at: datagram.readerIndex + header.headerLength, as: UInt8.self) ?? 3
            guard !ICMPv4Message.isError(type: type) else {
                counters.icmpErrorsSuppressed &+= 1
                return
            }
        }
        guard case .v4(let source)? = ownAddress(on: link, v4: true),
              let back = table.link(for: .v4(header.source)) else {
            counters.icmpErrorsSuppressed &+= 1
            return
        }
        // RFC 1812 §4.3.2.8: rate-limited.
        guard icmpErrors.allow(now: now) else {
            counters.icmpErrorsRateLimited &+= 1
            return
        }
        // RFC 1812 §4.3.2.3: as much of the datagram as fits in 576 octets.
        let room = Self.maximumIPv4ErrorDatagram - IPv4Header.minimumLength - ICMPv4Message.headerLength
        let quote = datagram.getSlice(at: datagram.readerIndex, length: min(datagram.readableBytes, room))!
        let error = PacketBuffer.icmpv4Datagram(message: message, body: quote, source: source, destination: header.source)
        counters.icmpErrorsSent &+= 1
        enqueueError(error, on: back, now: now)
    }

    func sendError6(_ message: ICMPv6Message, about datagram: ByteBuffer, header: IPv6Header, from link: Int, now: Instant) {
        // RFC 4443 §2.4(e): never about an ICMPv6 error (or a redirect), nor to a source that names
        // no single host. (The check sees only a first Next Header of ICMPv6, as Linux's does.)
        guard IPAddress.v6(header.source).namesSingleHost, !Self.isLinkLocal(header.source) else {
            counters.icmpErrorsSuppressed &+= 1
            return
        }
        if header.nextHeader == IPProtocolNumber.icmpv6 {
            let type = datagram.getInteger(at: datagram.readerIndex + IPv6Header.length, as: UInt8.self) ?? 1
            guard !ICMPv6Message.isError(type: type), type != 137 else {
                counters.icmpErrorsSuppressed &+= 1
                return
            }
        }
        guard case .v6(let source)? = ownAddress(on: link, v4: false),
              let back = table.link(for: .v6(header.source)) else {
            counters.icmpErrorsSuppressed &+= 1
            return
        }
        // RFC 4443 §2.4(f): rate-limited.
        guard icmpErrors.allow(now: now) else {
            counters.icmpErrorsRateLimited &+= 1
            return
        }
        let room = Self.minimumIPv6MTU - IPv6Header.length - ICMPv6Message.headerLength
        let quote = datagram.getSlice(at: datagram.readerIndex, length: min(datagram.readableBytes, room))!
        let error = PacketBuffer.icmpv6Datagram(message: message, body: quote, source: source, destination: header.source)
        counters.icmpErrorsSent &+= 1
        enqueueError(error, on: back, now: now)
    }

    /// The router's address of the family on `link`, else on any link (RFC 1812 §4.3.2.4 lets the
    /// source be any of the router's addresses; the incoming link's is what traceroute expects).
    func ownAddress(on link: Int, v4: Bool) -> IPAddress? {
        let family = { (address: IPAddress) in address.isV4 == v4 }
        return configuration.links[link].addresses.first(where: family)
            ?? configuration.links.lazy.flatMap(\.addresses).first(where: family)
    }

    /// fe80::/10 (RFC 4291 §2.5.6).
    static func isLinkLocal(_ address: IPv6Address) -> Bool {
        address.high >> 54 == 0x3FA
    }
}
