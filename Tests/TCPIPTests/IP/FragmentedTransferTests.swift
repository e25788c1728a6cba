import NIOCore
@testable import TCPIP
import TCPIPSimulation
import TCPIPWire
import Testing

/// Every datagram one side sends is cut into fragments on the way (a link of a smaller MTU behind
/// a router that fragments, DF ignored), delivered last fragment first: a TCP transfer over both
/// families still arrives byte for byte, each segment reassembled once.
@Suite struct FragmentedTransferTests {
    /// Fragments what it sends for `fragmentMTU`, in reverse order.
    final class FragmentingLink: PacketLink {
        let inner: PacketLink
        let fragmentMTU: Int
        private var identification: UInt32 = 0

        init(wrapping inner: PacketLink, fragmentMTU: Int) {
            self.inner = inner
            self.fragmentMTU = fragmentMTU
        }

        var mtu: Int { inner.mtu }
        var capabilities: LinkCapabilities { inner.capabilities }
        var nextArrival: Instant? { inner.nextArrival }
        func receive(now: Instant) -> ByteBuffer? { inner.receive(now: now) }
        func send(_ packet: ByteBuffer, now: Instant) {
            identification &+= 1
            let fragments = (try? IPFragmentation.fragment(
                FragmentFixtures.clearingDontFragment(packet), mtu: fragmentMTU, identification: identification)) ?? [packet]
            for fragment in fragments.reversed() { inner.send(fragment, now: now) }
        }
    }

    @Test(arguments: [false, true])
    func transferOverFragments(ipv6: Bool) throws {
        let total = 300_000
        let (a, b) = MemoryLink.pair(.init(delay: .milliseconds(5), bandwidthBitsPerSecond: 50_000_000,
                                           queueLimitBytes: 1 << 20, checksumOffload: false))
        let clientAddress: IPAddress = ipv6 ? .v6(FragmentFixtures.peer6) : .v4(FragmentFixtures.peer4)
        let serverAddress: IPAddress = ipv6 ? .v6(FragmentFixtures.local6) : .v4(FragmentFixtures.local4)
        let client = Stack(StackConfiguration(addresses: [clientAddress], seed: 1))
        let server = Stack(StackConfiguration(addresses: [serverAddress], seed: 2))
        let network = VirtualNetwork()
        network.addHost(client, link: FragmentingLink(wrapping: a, fragmentMTU: ipv6 ? 1280 : 576))
        network.addHost(server, link: b)
        let listener = try server.listen(on: 80, backlog: 1)
        let id = try client.connect(to: Endpoint(serverAddress, 80), now: network.now)
        let pattern = FragmentFixtures.pattern(total)
        var written = 0
        var received: [UInt8] = []
        var accepted: ConnectionID?
        var finished = false
        var rounds = 0
        while !finished && rounds < 200_000 {
            network.settle()
            if accepted == nil { accepted = server.accept(listener) }
            while written < total, client.state(id) == .established {
                let chunk = ByteBuffer(bytes: pattern[written..<min(total, written + 16_384)])
                let taken = (try? client.send(id, chunk, now: network.now)) ?? 0
                written += taken
                if taken < chunk.readableBytes { break }
            }
            if written == total, client.state(id) == .established { try client.close(id, now: network.now) }
            if let accepted {
                readLoop: while true {
                    switch try server.read(accepted, now: network.now) {
                    case .data(let bytes): received += bytes.readableBytesView
                    case .endOfStream: finished = true; break readLoop
                    case .wouldBlock: break readLoop
                    }
                }
            }
            network.settle()
            if !finished && !network.advance() { break }
            rounds += 1
        }
        #expect(finished)
        #expect(received == pattern)
        let counters = server.counters
        #expect(counters.ipReassembled > 100)
        #expect(counters.ipReassemblyFailures == 0 && counters.ipFragmentOverlaps == 0)
        #expect(server.reassemblyStatus.datagrams == 0)
    }
}
