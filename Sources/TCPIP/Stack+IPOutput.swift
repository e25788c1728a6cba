import NIOCore
import TCPIPWire

extension Stack {
    /// Queues a whole IP datagram that UDP or ICMP built for the link.
    ///
    /// The one place a datagram larger than the link MTU would be fragmented (RFC 791 §2.3, RFC 8200
    /// §4.5, RFC 1122 §3.3.3). Output fragmentation is not here yet: such a datagram is refused
    /// (`false`), and UDP reports `UDPError.messageTooLong`. TCP never comes here: it sends
    /// segments that fit.
    func transmitIPDatagram(_ datagram: consuming ByteBuffer) -> Bool {
        guard datagram.readableBytes <= configuration.mtu else {
            io.counters.ipOutputTooBig &+= 1
            return false
        }
        io.outgoing.append(datagram)
        io.counters.ipPacketsSent &+= 1
        return true
    }
}

extension IPAddress {
    /// Whether the address names a single host (RFC 1122 §3.2.1.3, RFC 4291 §2.7): not unspecified,
    /// not multicast, not the limited broadcast or class E (IPv4), not loopback. An ICMP error or an echo
    /// reply is only ever sent to such an address.
    var namesSingleHost: Bool {
        switch self {
        case .v4(let address):
            let first = address.rawValue >> 24
            return first != 0 && first != 127 && first < 224
        case .v6(let address):
            let unspecified = address.high == 0 && address.low == 0
            let loopback = address.high == 0 && address.low == 1
            let multicast = address.high >> 56 == 0xFF
            return !unspecified && !loopback && !multicast
        }
    }
}
