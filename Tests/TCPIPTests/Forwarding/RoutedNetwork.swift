import NIOCore
@testable import TCPIP
import TCPIPSimulation
import TCPIPWire

/// Stacks behind a `Router` on one virtual clock: host i sits at the far end of an in-memory link
/// whose near end is the router's link i. The driver loop of `VirtualNetwork`, with the router as
/// one more node.
final class RoutedNetwork {
    struct Host {
        let stack: Stack
        let link: PacketLink
        let routerEnd: PacketLink
    }

    private(set) var now = Instant.zero
    let router: Router
    private(set) var hosts: [Host] = []
    /// Every datagram the router put on each link, when `capturing`.
    var capturing = false
    private(set) var captured: [[ByteBuffer]] = []

    init(router: Router) {
        self.router = router
        captured = router.configuration.links.map { _ in [] }
    }

    /// Joins `stack` to the router's next link over a link of `configuration`.
    func attach(_ stack: Stack, link configuration: MemoryLink.Configuration) {
        let (host, near) = MemoryLink.pair(configuration)
        hosts.append(Host(stack: stack, link: host, routerEnd: near))
    }

    func settle() {
        var progress = true
        while progress {
            progress = false
            for (index, host) in hosts.enumerated() {
                while let datagram = host.link.receive(now: now) {
                    host.stack.receive(datagram, now: now)
                    progress = true
                }
                if let deadline = host.stack.nextDeadline, deadline <= now {
                    host.stack.advanceTime(to: now)
                    progress = true
                }
                while let datagram = host.stack.nextPacketToSend() {
                    host.link.send(datagram, now: now)
                    progress = true
                }
                while let datagram = host.routerEnd.receive(now: now) {
                    router.receive(datagram, from: index, now: now)
                    progress = true
                }
            }
            if let deadline = router.nextDeadline, deadline <= now {
                router.advanceTime(to: now)
                progress = true
            }
            for (index, host) in hosts.enumerated() {
                while let datagram = router.nextPacketToSend(on: index) {
                    if capturing { captured[index].append(datagram) }
                    host.routerEnd.send(datagram, now: now)
                    progress = true
                }
            }
        }
    }

    var nextEventTime: Instant? {
        var earliest = router.nextDeadline
        for host in hosts {
            earliest = Instant.earliest(earliest, host.stack.nextDeadline)
            earliest = Instant.earliest(earliest, Instant.earliest(host.link.nextArrival, host.routerEnd.nextArrival))
        }
        return earliest.map { max($0, now) }
    }

    @discardableResult
    func advance() -> Bool {
        settle()
        guard let next = nextEventTime else { return false }
        now = max(now, next)
        settle()
        return true
    }

    /// Sends `total` bytes of a pattern from `client` to `server`'s port 80 and returns what the
    /// server's application read, to the end of the stream.
    func transfer(_ total: Int, from client: Stack, to server: Stack, serverAddress: IPAddress) throws -> (sent: [UInt8], received: [UInt8]) {
        let listener = try server.listen(on: 80, backlog: 1)
        let id = try client.connect(to: Endpoint(serverAddress, 80), now: now)
        let pattern = (0..<total).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        var written = 0
        var received: [UInt8] = []
        var accepted: ConnectionID?
        var finished = false
        var rounds = 0
        while !finished && rounds < 500_000 {
            settle()
            if accepted == nil { accepted = server.accept(listener) }
            while written < total, client.state(id) == .established {
                let chunk = ByteBuffer(bytes: pattern[written..<min(total, written + 65_536)])
                let taken = try client.send(id, chunk, now: now)
                written += taken
                if taken < chunk.readableBytes { break }
            }
            if written == total, client.state(id) == .established { try client.close(id, now: now) }
            if let accepted {
                reading: while true {
                    switch try server.read(accepted, now: now) {
                    case .data(let bytes): received += bytes.readableBytesView
                    case .endOfStream: finished = true; break reading
                    case .wouldBlock: break reading
                    }
                }
            }
            settle()
            if !finished && !advance() { break }
            rounds += 1
        }
        return (pattern, received)
    }
}
