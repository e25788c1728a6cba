import NIOCore
@testable import TCPIP
import TCPIPWire
import Testing

/// Fragments through `Stack.receive`: reassembled datagrams continue down the input path as if
/// they had arrived whole; atomic fragments are whole datagrams; and `Stack.fragment` cuts datagrams
/// with unpredictable identifications. Timeouts: ReassemblyTimeExceededTests.
@Suite struct StackFragmentTests {
    typealias F = FragmentFixtures

    /// A segment of 3,000 octets cut at MTU 576 and delivered last fragment first: one segment to TCP.
    @Test(arguments: [false, true])
    func fragmentedSegmentReachesTheConnection(ipv6: Bool) throws {
        var t = try TCPTester(.established, peer: TCPTester.Peer(ipv6: ipv6))
        let datagram = F.clearingDontFragment(try t.datagram("+0 < P. 1:3001(3000) ack 1 win 65535"))
        let fragments = try IPFragmentation.fragment(datagram, mtu: ipv6 ? 1280 : 576, identification: 0x1234_5678)
        #expect(fragments.count == (ipv6 ? 3 : 6))
        for fragment in fragments.reversed() { t.inject(datagram: fragment) }
        try t.expect("+0 > . 1:1(0) ack 3001")
        guard case .data(let bytes) = try t.app.read() else { Issue.record("no data"); return }
        #expect(bytes == TCPTester.payload(from: 1, count: 3000))
        #expect(t.counters.ipReassemblyRequired == UInt64(fragments.count))
        #expect(t.counters.ipReassembled == 1 && t.counters.segmentsReceived >= 1)
        #expect(t.stack.reassemblyStatus.datagrams == 0 && t.stack.reassemblyStatus.pinnedBytes == 0)
    }

    /// Fragments for an address that is not ours are not reassembled (nor kept).
    @Test func fragmentsForOthersAreNotKept() throws {
        var t = try TCPTester(.established)
        var datagram = F.clearingDontFragment(try t.datagram("+0 < P. 1:3001(3000) ack 1 win 65535"))
        datagram.setInteger(IPv4Address(198, 18, 9, 9).rawValue, at: datagram.readerIndex + 16)
        for fragment in try IPFragmentation.fragment(datagram, mtu: 576, identification: 1) { t.inject(datagram: fragment) }
        #expect(t.counters.ipNotForUs == 6 && t.counters.ipReassemblyRequired == 0)
        #expect(t.stack.reassemblyStatus.datagrams == 0)
    }

    /// RFC 6946 §4: an IPv6 atomic fragment is processed at once, in isolation — even while a
    /// reassembly with the same identification is under way, which it leaves alone.
    @Test func atomicFragmentIsAWholeDatagram() throws {
        var t = try TCPTester(.established, peer: TCPTester.Peer(ipv6: true))
        // A reassembly under way with identification 99.
        let pending = F.ipv6(payload: F.pattern(3000), nextHeader: IPProtocolNumber.udp, source: F.peer6)
        let pendingFragments = try IPFragmentation.fragment(pending, mtu: 1280, identification: 99)
        t.inject(datagram: pendingFragments[0])
        // The segment with a Fragment header of offset 0, M clear, identification 99.
        let segment = try t.datagram("+0 < P. 1:101(100) ack 1 win 65535")
        var atomic = PacketBuffer.make(payloadCapacity: segment.readableBytes + 8)
        atomic.writeBytes(IPv6FragmentHeader(nextHeader: IPProtocolNumber.tcp, offset: 0, moreFragments: false, identification: 99).bytes)
        atomic.writeImmutableBuffer(segment.getSlice(at: segment.readerIndex + 40, length: segment.readableBytes - 40)!)
        IPv6Header(source: F.peer6, destination: F.local6, nextHeader: IPProtocolNumber.fragment,
                   payloadLength: atomic.readableBytes).prepend(to: &atomic)
        t.inject(datagram: atomic)
        #expect(t.counters.ipAtomicFragments == 1)
        try t.expect("+.04 > . 1:1(0) ack 101")
        #expect(t.stack.reassemblyStatus.datagrams == 1)
        // The reassembly under way is unharmed: it completes (and, being UDP, goes no further today).
        for fragment in pendingFragments.dropFirst() { t.inject(datagram: fragment) }
        #expect(t.counters.ipReassembled == 1 && t.counters.ipReassemblyFailures == 0)
    }

    /// The decision trace cites the rule behind each fragment dropped.
    @Test func droppedFragmentsAreTraced() throws {
        var t = try TCPTester(.established)
        t.stack.tracing = true
        let datagram = F.clearingDontFragment(try t.datagram("+0 < P. 1:3001(3000) ack 1 win 65535"))
        let wide = try IPFragmentation.fragment(datagram, mtu: 1500, identification: 1)
        let narrow = try IPFragmentation.fragment(datagram, mtu: 576, identification: 1)
        t.inject(datagram: wide[0])
        t.inject(datagram: narrow[1])
        let trace = t.stack.drainTrace().map(\.description)
        #expect(trace.contains("RFC 5722 §4: fragment 552..<1104 overlaps 0..<1480: datagram abandoned"))
        #expect(t.counters.ipFragmentOverlaps == 1 && t.stack.reassemblyStatus.datagrams == 0)
    }

    /// The counters appear in the netstat-style report's Ip section.
    @Test func reportShowsReassembly() throws {
        var t = try TCPTester(.established)
        let datagram = F.clearingDontFragment(try t.datagram("+0 < P. 1:3001(3000) ack 1 win 65535"))
        for fragment in try IPFragmentation.fragment(datagram, mtu: 1500, identification: 1) { t.inject(datagram: fragment) }
        let report = t.counters.report()
        #expect(report.contains("    3 reassemblies required"))
        #expect(report.contains("    1 packets reassembled ok"))
    }

    /// `Stack.fragment`: RFC 7739 §5.3 identifications — distinct for successive datagrams to one
    /// destination, not a shared sequence across destinations, reproducible from the seed.
    @Test func outputFragmentationUsesUnpredictableIdentifications() throws {
        func identifications(seed: UInt64) throws -> [UInt32] {
            let stack = Stack(StackConfiguration(addresses: [.v6(F.local6)], seed: seed))
            var result: [UInt32] = []
            for index in 0..<6 {
                var peer = F.peer6
                peer.low &+= UInt64(index % 2)
                let datagram = F.ipv6(payload: F.pattern(3000), source: peer)
                let fragments = try stack.fragment(datagram, mtu: 1280)
                let first = try IPDatagram.parse(fragments[0], keepingFragments: true)
                result.append(try #require(first.fragment?.identification))
            }
            #expect(stack.counters.ipFragmentedDatagrams == 6 && stack.counters.ipFragmentsCreated == 18)
            return result
        }
        let ids = try identifications(seed: 1)
        #expect(Set(ids).count == 6)
        // One destination: a counter steps by one; another destination: an unrelated offset.
        #expect(ids[2] == ids[0] &+ 1 && ids[4] == ids[2] &+ 1)
        #expect(ids[1] != ids[0] &+ 1)
        #expect(try identifications(seed: 1) == ids)
        #expect(try identifications(seed: 2) != ids)
    }

    @Test func outputFragmentationRefusesDontFragment() throws {
        let stack = Stack(StackConfiguration(addresses: [.v4(F.local4)]))
        var datagram = F.ipv4(payload: F.pattern(3000))
        datagram.setInteger(UInt16(0x4000), at: datagram.readerIndex + 6)
        #expect(throws: FragmentationError.dontFragment) { try stack.fragment(datagram, mtu: 1500) }
        #expect(stack.counters.ipFragmentationFailures == 1)
        // A datagram that fits is returned as it is, and counts as nothing fragmented.
        let small = F.ipv4(payload: F.pattern(100))
        #expect(try stack.fragment(small, mtu: 1500) == [small])
        #expect(stack.counters.ipFragmentedDatagrams == 0)
    }
}
