import NIOCore
@testable import TCPIP
import TCPIPWire
import Testing

/// The reassembly table (RFC 791 §3.2, RFC 815, RFC 8200 §4.5) on its own: fragments made by our
/// own output fragmentation, in any order and duplicated, come back as the datagram that was cut —
/// byte for byte — and every hostile shape is refused and counted.
@Suite struct FragmentReassemblyTests {
    typealias F = FragmentFixtures

    static func reassembly(_ adjust: (inout FragmentReassemblyConfiguration) -> Void = { _ in }) -> FragmentReassembly {
        var configuration = FragmentReassemblyConfiguration()
        adjust(&configuration)
        return FragmentReassembly(configuration: configuration)
    }

    /// Cuts, shuffles, duplicates and reassembles; the result must be the original datagram exactly.
    static func roundTrip(_ original: ByteBuffer, mtu: Int, seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        let fragments = try IPFragmentation.fragment(original, mtu: mtu, identification: 0xBEEF)
        for fragment in fragments { #expect(fragment.readableBytes <= mtu) }
        var arrivals = fragments
        for _ in 0..<Int(random.next() % 4) { arrivals.append(fragments[Int(random.next() % UInt64(fragments.count))]) }
        arrivals.shuffle(using: &random)
        var table = reassembly { $0.maximumFragmentsPerDatagram = 10_000 }
        var counters = StackCounters()
        var whole: ByteBuffer?
        for arrival in arrivals {
            if fragments.count == 1 {
                whole = arrival
                break
            }
            let outcome = try F.feed(&table, arrival, now: .zero, counters: &counters)
            #expect(!outcome.isDropped, "mtu \(mtu), \(original.readableBytes) octets")
            if let complete = outcome.completed {
                whole = complete
                break
            }
        }
        #expect(whole.map { Array($0.readableBytesView) } == Array(original.readableBytesView), "mtu \(mtu), \(original.readableBytes) octets")
        #expect(table.count == 0 && table.pinnedBytes == 0)
        if fragments.count > 1 {
            #expect(counters.ipReassembled == 1)
            #expect(counters.ipReassemblyFailures == 0)
        }
    }

    @Test(arguments: [68, 96, 576, 1280, 1500, 9000])
    func ipv4RoundTrip(mtu: Int) throws {
        for (index, size) in [0, 1, 7, 8, 9, 47, 48, 49, 100, 556, 557, 1000, 1480, 1481, 4000, 8000, 30_000, 65_515].enumerated() {
            let original = F.ipv4(payload: F.pattern(size, seed: index), identification: 0xBEEF)
            try Self.roundTrip(original, mtu: mtu, seed: UInt64(mtu * 100 + index))
        }
    }

    @Test(arguments: [96, 1280, 1500, 9000])
    func ipv6RoundTrip(mtu: Int) throws {
        let chains: [[UInt8]] = [
            [], [IPProtocolNumber.hopByHop], [IPProtocolNumber.destinationOptions],
            [IPProtocolNumber.hopByHop, IPProtocolNumber.destinationOptions, IPProtocolNumber.routing, IPProtocolNumber.destinationOptions],
        ]
        for (index, size) in [0, 1, 7, 8, 9, 100, 1232, 1233, 4000, 8000, 30_000, 65_000].enumerated() {
            for (chainIndex, chain) in chains.enumerated() {
                let original = F.ipv6(payload: F.pattern(size, seed: index), extensionHeaders: chain)
                try Self.roundTrip(original, mtu: mtu, seed: UInt64(mtu * 100 + index * 10 + chainIndex))
            }
        }
    }

    /// After reassembly the datagram parses as if it had come whole: an IPv6 Destination Options
    /// header that was in the fragmentable part is walked, and the upper layer found behind it.
    @Test func reassembledDatagramParsesThroughTheRestOfTheChain() throws {
        let original = F.ipv6(payload: F.pattern(3000), nextHeader: IPProtocolNumber.tcp,
                              extensionHeaders: [IPProtocolNumber.hopByHop, IPProtocolNumber.destinationOptions])
        let fragments = try IPFragmentation.fragment(original, mtu: 1280, identification: 77)
        #expect(fragments.count == 3)
        // The unfragmentable part is the IPv6 and Hop-by-Hop headers; the Fragment header names the
        // Destination Options header (RFC 8200 §4.5).
        let first = try IPDatagram.parse(fragments[0], keepingFragments: true)
        #expect(first.fragment?.headerLength == 40 + 8 + 8)
        #expect(first.upperLayerProtocol == IPProtocolNumber.destinationOptions)
        var table = Self.reassembly()
        var counters = StackCounters()
        var whole: ByteBuffer?
        for fragment in fragments.reversed() {
            whole = try F.feed(&table, fragment, now: .zero, counters: &counters).completed ?? whole
        }
        let parsed = try IPDatagram.parse(try #require(whole))
        #expect(parsed.upperLayerProtocol == IPProtocolNumber.tcp)
        #expect(Array(parsed.payload.readableBytesView) == F.pattern(3000))
    }

    /// RFC 5722 §4: an overlap abandons the whole datagram, for IPv6 and (our choice, as Linux) IPv4;
    /// the teardrop shape — a fragment lying inside another — too.
    @Test(arguments: [false, true])
    func overlapAbandonsTheDatagram(ipv6: Bool) throws {
        let original = ipv6 ? F.ipv6(payload: F.pattern(3000)) : F.ipv4(payload: F.pattern(3000))
        let fragments = try IPFragmentation.fragment(original, mtu: 1280, identification: 5)
        let narrow = try IPFragmentation.fragment(original, mtu: 576, identification: 5)
        var table = Self.reassembly()
        var counters = StackCounters()
        #expect(try F.feed(&table, fragments[0], now: .zero, counters: &counters).isIncomplete)
        // Teardrop: a smaller fragment whose bytes lie inside the first one.
        let outcome = try F.feed(&table, narrow[1], now: .zero, counters: &counters)
        #expect(outcome.isDropped)
        #expect(counters.ipFragmentOverlaps == 1 && counters.ipReassemblyFailures == 1)
        #expect(table.count == 0 && table.pinnedBytes == 0)
        // What follows starts over, and the datagram can never be completed from a mixture.
        for fragment in fragments.dropFirst() {
            #expect(try F.feed(&table, fragment, now: .zero, counters: &counters).isIncomplete)
        }
        #expect(counters.ipReassembled == 0)
    }

    /// RFC 8200 §4.5: exact duplicates are dropped alone; one with other bytes at the same place is an overlap.
    @Test func duplicatesAreDroppedAloneButConflictingCopiesAreOverlaps() throws {
        let original = F.ipv4(payload: F.pattern(3000))
        let fragments = try IPFragmentation.fragment(original, mtu: 1500, identification: 9)
        var table = Self.reassembly()
        var counters = StackCounters()
        _ = try F.feed(&table, fragments[0], now: .zero, counters: &counters)
        #expect(try F.feed(&table, fragments[0], now: .zero, counters: &counters).isIncomplete)
        #expect(counters.ipFragmentDuplicates == 1 && table.count == 1)
        var forged = fragments[0]
        forged.setInteger(UInt8(0xFF), at: forged.readerIndex + 30)
        #expect(try F.feed(&table, forged, now: .zero, counters: &counters).isDropped)
        #expect(counters.ipFragmentOverlaps == 1 && table.count == 0)
    }

    /// A second "last" fragment with another end, or data beyond the end, corrupts the datagram.
    @Test func conflictingEndsAbandonTheDatagram() throws {
        let original = F.ipv4(payload: F.pattern(3000))
        let fragments = try IPFragmentation.fragment(original, mtu: 1500, identification: 9)
        let shorter = try IPFragmentation.fragment(F.ipv4(payload: F.pattern(2000)), mtu: 1500, identification: 9)
        var table = Self.reassembly()
        var counters = StackCounters()
        _ = try F.feed(&table, fragments[2], now: .zero, counters: &counters)
        #expect(try F.feed(&table, shorter[1], now: .zero, counters: &counters).isDropped)
        #expect(counters.ipReassemblyFailures == 1)
    }

    /// RFC 1858 §3.2 / RFC 3128 §3: a TCP first fragment that does not hold the whole TCP header, and
    /// any TCP fragment at offset 8, are dropped with the datagram they belong to.
    @Test(arguments: [false, true])
    func tinyFragmentsSplittingTheTCPHeaderAreDropped(ipv6: Bool) throws {
        let segment = F.pattern(200)  // byte 12 gives a data offset of (12*7 % 251) >> 4 = 5: 20 octets
        let original = ipv6 ? F.ipv6(payload: segment, nextHeader: IPProtocolNumber.tcp)
            : F.ipv4(payload: segment, protocolNumber: IPProtocolNumber.tcp)
        let headers = ipv6 ? 48 : 20
        let tiny = try IPFragmentation.fragment(original, mtu: headers + 8, identification: 3)
        var table = Self.reassembly()
        var counters = StackCounters()
        #expect(try F.feed(&table, tiny[0], now: .zero, counters: &counters).isDropped)
        #expect(try F.feed(&table, tiny[1], now: .zero, counters: &counters).isDropped)
        #expect(counters.ipFragmentsDropped == 2 && table.count == 0)
        // Sixteen octets (ports, sequence and acknowledgment numbers, but not the flags) are not enough either.
        let sixteen = try IPFragmentation.fragment(original, mtu: headers + 16, identification: 4)
        #expect(try F.feed(&table, sixteen[0], now: .zero, counters: &counters).isDropped)
        // Twenty-four octets hold the header: the datagram reassembles.
        let whole = try IPFragmentation.fragment(original, mtu: headers + 24, identification: 0xBEEF)
        var result: ByteBuffer?
        var large = Self.reassembly { $0.maximumFragmentsPerDatagram = 100 }
        for fragment in whole { result = try F.feed(&large, fragment, now: .zero, counters: &counters).completed ?? result }
        #expect(result.map { Array($0.readableBytesView) } == Array(original.readableBytesView))
        // The same tiny fragments of UDP (8 octets hold its header) are fine.
        let udp = ipv6 ? F.ipv6(payload: segment) : F.ipv4(payload: segment)
        result = nil
        for fragment in try IPFragmentation.fragment(udp, mtu: headers + 8, identification: 0xBEEF) {
            result = try F.feed(&large, fragment, now: .zero, counters: &counters).completed ?? result
        }
        #expect(result.map { Array($0.readableBytesView) } == Array(udp.readableBytesView))
    }

    /// More than 64 fragments for one datagram: refused, the datagram dropped.
    @Test func sixtyFifthFragmentIsRefused() throws {
        let original = F.ipv4(payload: F.pattern(65 * 16))
        let fragments = try IPFragmentation.fragment(original, mtu: 20 + 16, identification: 1)
        #expect(fragments.count == 65)
        var table = Self.reassembly()
        var counters = StackCounters()
        for fragment in fragments.prefix(64) {
            #expect(try F.feed(&table, fragment, now: .zero, counters: &counters).isIncomplete)
        }
        #expect(try F.feed(&table, fragments[64], now: .zero, counters: &counters).isDropped)
        #expect(table.count == 0 && table.pinnedBytes == 0 && counters.ipReassemblyFailures == 1)
        // 64 fragments are fine.
        let sixtyFour = try IPFragmentation.fragment(F.ipv4(payload: F.pattern(64 * 16)), mtu: 20 + 16, identification: 2)
        var result: ByteBuffer?
        for fragment in sixtyFour { result = try F.feed(&table, fragment, now: .zero, counters: &counters).completed ?? result }
        #expect(result != nil)
    }

    /// A chain of fragments that would make a datagram beyond 65,535 octets (the ping of death).
    @Test(arguments: [false, true])
    func datagramBeyond65535OctetsIsRefused(ipv6: Bool) throws {
        var table = Self.reassembly()
        var counters = StackCounters()
        let start = try IPFragmentation.fragment(
            ipv6 ? F.ipv6(payload: F.pattern(3000)) : F.ipv4(payload: F.pattern(3000)), mtu: 1500, identification: 8)
        #expect(try F.feed(&table, start[0], now: .zero, counters: &counters).isIncomplete)
        // The last fragment, at offset 65,528 with 100 octets: RFC 8200 §4.5 / RFC 791 limits.
        let tail = Self.rawFragment(ipv6: ipv6, identification: 8, offset: 65_528, more: false, payload: F.pattern(100))
        #expect(try F.feed(&table, tail, now: .zero, counters: &counters).isDropped)
        #expect(table.count == 0 && counters.ipFragmentsDropped == 1 && counters.ipReassemblyFailures == 1)
    }

    /// Non-last fragments must carry a multiple of 8 octets (RFC 8200 §4.5).
    @Test func nonLastFragmentOfOddLengthIsDropped() throws {
        var table = Self.reassembly()
        var counters = StackCounters()
        let odd = Self.rawFragment(ipv6: false, identification: 1, offset: 0, more: true, payload: F.pattern(100))
        #expect(try F.feed(&table, odd, now: .zero, counters: &counters).isDropped)
        let odd6 = Self.rawFragment(ipv6: true, identification: 1, offset: 0, more: true, payload: F.pattern(100))
        #expect(try F.feed(&table, odd6, now: .zero, counters: &counters).isDropped)
        #expect(counters.ipFragmentsDropped == 2 && table.count == 0)
    }

    /// The memory bound: storage pinned, not octets carried, and the oldest datagrams go first.
    @Test func memoryBoundEvictsTheOldestFirst() throws {
        var table = Self.reassembly { $0.memoryLimit = 64 * 1024 }
        var counters = StackCounters()
        var now = Instant.zero
        for identification in 0..<200 {
            let fragments = try IPFragmentation.fragment(
                F.ipv4(payload: F.pattern(3000), identification: UInt16(identification)), mtu: 1500,
                identification: UInt32(identification))
            _ = try F.feed(&table, fragments[0], now: now, counters: &counters)
            #expect(table.pinnedBytes <= 64 * 1024)
            now = now + .milliseconds(1)
        }
        #expect(counters.ipReassemblyEvictions > 0)
        #expect(counters.ipReassemblyEvictions == UInt64(200 - table.count))
        // The youngest are still there: their second and third fragments complete them.
        let youngest = try IPFragmentation.fragment(F.ipv4(payload: F.pattern(3000), identification: 199), mtu: 1500, identification: 199)
        _ = try F.feed(&table, youngest[1], now: now, counters: &counters)
        #expect(try F.feed(&table, youngest[2], now: now, counters: &counters).completed != nil)
        // The oldest is gone: its other fragments start a new, incomplete datagram.
        let oldest = try IPFragmentation.fragment(F.ipv4(payload: F.pattern(3000), identification: 0), mtu: 1500, identification: 0)
        _ = try F.feed(&table, oldest[1], now: now, counters: &counters)
        #expect(try F.feed(&table, oldest[2], now: now, counters: &counters).isIncomplete)
    }

    /// A fragment sliced out of a large buffer counts at most about twice its size: it is copied out
    /// rather than pinning the whole buffer (and the whole buffer is never counted as only 8 octets).
    @Test func smallFragmentsOfLargeBuffersAreCopiedOut() throws {
        let fragment = Self.rawFragment(ipv6: false, identification: 1, offset: 8, more: true, payload: F.pattern(8))
        var big = ByteBufferAllocator().buffer(capacity: 65_536)
        big.writeImmutableBuffer(fragment)
        var table = Self.reassembly()
        var counters = StackCounters()
        #expect(try F.feed(&table, big, now: .zero, counters: &counters).isIncomplete)
        #expect(table.pinnedBytes < 1024)
    }

    /// Timeouts: 30 s for IPv4, 60 s for IPv6 by default; a notice for ICMP time exceeded only when
    /// the first fragment had arrived (RFC 792, RFC 1122 §3.3.2, RFC 8200 §4.5).
    @Test func timeoutsAndTimeExceededNotices() throws {
        var table = Self.reassembly()
        var counters = StackCounters()
        let v4 = try IPFragmentation.fragment(F.ipv4(payload: F.pattern(3000)), mtu: 1500, identification: 1)
        let v6 = try IPFragmentation.fragment(F.ipv6(payload: F.pattern(3000)), mtu: 1500, identification: 1)
        let v4Late = try IPFragmentation.fragment(F.ipv4(payload: F.pattern(3000), identification: 2), mtu: 1500, identification: 2)
        _ = try F.feed(&table, v4[0], now: .zero, counters: &counters)
        _ = try F.feed(&table, v6[0], now: .zero, counters: &counters)
        _ = try F.feed(&table, v4Late[1], now: .zero + .seconds(1), counters: &counters)
        #expect(table.nextDeadline == .zero + .seconds(30))
        #expect(table.expire(now: .zero + .seconds(29), counters: &counters).isEmpty)
        let first = table.expire(now: .zero + .seconds(30), counters: &counters)
        #expect(first.count == 1)
        #expect(first.first.map { Array($0.quote.readableBytesView) } == Array(v4[0].readableBytesView.prefix(ReassemblyTimeExceeded.maximumQuote)))
        #expect(first.first?.source == .v4(F.peer4))
        // The datagram without its first fragment times out silently.
        #expect(table.nextDeadline == .zero + .seconds(31))
        #expect(table.expire(now: .zero + .seconds(31), counters: &counters).isEmpty)
        #expect(table.nextDeadline == .zero + .seconds(60))
        let second = table.expire(now: .zero + .seconds(60), counters: &counters)
        #expect(second.count == 1 && second.first?.source == .v6(F.peer6))
        #expect(second.first?.quote.readableBytes == ReassemblyTimeExceeded.maximumQuote)
        #expect(counters.ipReassemblyTimeouts == 3 && table.count == 0 && table.pinnedBytes == 0 && table.nextDeadline == nil)
    }

    /// RFC 3168 §5.3: CE on one fragment marks the whole datagram; CE among Not-ECT fragments drops it.
    @Test func congestionExperiencedSurvivesReassembly() throws {
        for (other, expected) in [(ECNCodepoint.ect0, ECNCodepoint.congestionExperienced), (.notECT, nil)] {
            for ipv6 in [false, true] {
                let plain = ipv6 ? F.ipv6(payload: F.pattern(3000), ecn: other) : F.ipv4(payload: F.pattern(3000), ecn: other)
                let marked = ipv6 ? F.ipv6(payload: F.pattern(3000), ecn: .congestionExperienced)
                    : F.ipv4(payload: F.pattern(3000), ecn: .congestionExperienced)
                let fragments = try IPFragmentation.fragment(plain, mtu: 1500, identification: 4)
                let markedFragments = try IPFragmentation.fragment(marked, mtu: 1500, identification: 4)
                var table = Self.reassembly()
                var counters = StackCounters()
                _ = try F.feed(&table, fragments[0], now: .zero, counters: &counters)
                _ = try F.feed(&table, markedFragments[1], now: .zero, counters: &counters)
                let outcome = try F.feed(&table, fragments[2], now: .zero, counters: &counters)
                if let expected {
                    #expect(try IPDatagram.parse(try #require(outcome.completed)).ecn == expected)
                } else {
                    #expect(outcome.isDropped)
                }
            }
        }
    }

    /// A fragment built by hand: any offset, any flag, any length.
    static func rawFragment(ipv6: Bool, identification: UInt32, offset: Int, more: Bool, payload: [UInt8]) -> ByteBuffer {
        if ipv6 {
            let fragmentHeader = IPv6FragmentHeader(
                nextHeader: IPProtocolNumber.udp, offset: offset, moreFragments: more, identification: identification)
            var buffer = PacketBuffer.make(payloadCapacity: 8 + payload.count)
            buffer.writeBytes(fragmentHeader.bytes + payload)
            IPv6Header(source: F.peer6, destination: F.local6, nextHeader: IPProtocolNumber.fragment,
                       payloadLength: 8 + payload.count).prepend(to: &buffer)
            return buffer
        }
        var buffer = PacketBuffer.make(payloadCapacity: payload.count)
        buffer.writeBytes(payload)
        var header = IPv4Header(source: F.peer4, destination: F.local4, protocolNumber: IPProtocolNumber.udp,
                                payloadLength: payload.count, identification: UInt16(truncatingIfNeeded: identification),
                                dontFragment: false)
        header.moreFragments = more
        header.fragmentOffset = UInt16(offset / 8)
        header.prepend(to: &buffer)
        return buffer
    }
}
