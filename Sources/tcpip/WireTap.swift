import NIOCore
import TCPIP

/// Watches one end of a link as tcpdump watches an interface: each datagram is reported when it
/// leaves (at the `now` of `send`) or arrives (at the `now` of `receive`), then passed on untouched.
final class WireTap: PacketLink {
    let inner: PacketLink
    /// Called with every datagram that crosses, before it moves on.
    var observe: (ByteBuffer, Instant) -> Void = { _, _ in }

    init(wrapping inner: PacketLink) {
        self.inner = inner
    }

    var mtu: Int { inner.mtu }
    var capabilities: LinkCapabilities { inner.capabilities }
    var nextArrival: Instant? { inner.nextArrival }

    func send(_ packet: ByteBuffer, now: Instant) {
        observe(packet, now)
        inner.send(packet, now: now)
    }

    func receive(now: Instant) -> ByteBuffer? {
        guard let packet = inner.receive(now: now) else { return nil }
        observe(packet, now)
        return packet
    }
}
