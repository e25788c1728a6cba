import NIOCore
@testable import TCPIP
import TCPIPWire
import Testing

/// RFC 1122 §3.3.2 and RFC 8200 §4.5: a reassembly that times out after its first fragment arrived
/// gets its source an ICMP Time Exceeded (type 11) / ICMPv6 Time Exceeded (type 3), code 1, quoting
/// that fragment — through the ICMP error path, its rules and its token bucket.
@Suite struct ReassemblyTimeExceededTests {
    typealias F = FragmentFixtures

    static func stack(configure: (inout StackConfiguration) -> Void = { _ in }) -> Stack {
        var configuration = StackConfiguration(addresses: [.v4(F.local4), .v6(F.local6)], seed: 1122)
        configure(&configuration)
        return Stack(configuration)
    }

    /// A 3,000-octet UDP datagram from the peer cut into fragments (3 of them for either family).
    static func fragments(ipv6: Bool, identification: UInt32 = 7, payload: [UInt8] = F.pattern(3000)) throws -> [ByteBuffer] {
        let datagram = ipv6 ? F.ipv6(payload: payload)
            : F.ipv4(payload: payload, identification: UInt16(truncatingIfNeeded: identification))
        return try IPFragmentation.fragment(datagram, mtu: ipv6 ? 1280 : 1500, identification: identification)
    }

    static func drain(_ stack: Stack) throws -> [IPDatagram] {
        var sent: [IPDatagram] = []
        while let packet = stack.nextPacketToSend() { sent.append(try IPDatagram.parse(packet)) }
        return sent
    }

    /// The first and last fragments arrive, the middle one never does: at the timeout (30 s IPv4,
    /// 60 s IPv6) and not a nanosecond before, one error goes back to the source, from the address
    /// the fragments were sent to, quoting the first fragment byte for byte as far as the error's
    /// size allows (576 octets in all for IPv4, RFC 1812 §4.3.2.3; 1280 for IPv6, RFC 4443 §2.4(c)).
    @Test(arguments: [false, true])
    func timeoutAfterTheFirstFragmentSendsTimeExceeded(ipv6: Bool) throws {
        let stack = Self.stack()
        let fragments = try Self.fragments(ipv6: ipv6)
        try #require(fragments.count == 3)
        stack.receive(fragments[0], now: .zero)
        stack.receive(fragments[2], now: .zero + .seconds(1))
        let timeout: TimeAmount = ipv6 ? .seconds(60) : .seconds(30)
        #expect(stack.nextDeadline == Instant.zero + timeout)
        stack.advanceTime(to: .zero + (timeout - .nanoseconds(1)))
        #expect(try Self.drain(stack).isEmpty)
        stack.advanceTime(to: .zero + timeout)

        let sent = try Self.drain(stack)
        try #require(sent.count == 1)
        let error = sent[0]
        let first = Array(fragments[0].readableBytesView)
        if ipv6 {
            #expect(error.source == .v6(F.local6) && error.destination == .v6(F.peer6))
            guard case .v6(let from) = error.source, case .v6(let to) = error.destination else { return }
            let packet = try ICMPv6Packet.parse(error.payload, source: from, destination: to)
            #expect(packet.message == .timeExceeded(code: 1))
            #expect(Array(packet.body.readableBytesView) == Array(first.prefix(1280 - 48)))
            #expect(40 + error.payload.readableBytes == 1280)
            #expect(stack.counters.icmp6OutTimeExceeded == 1 && stack.counters.icmp6OutMessages == 1)
        } else {
            #expect(error.source == .v4(F.local4) && error.destination == .v4(F.peer4))
            let packet = try ICMPv4Packet.parse(error.payload)
            #expect(packet.message == .timeExceeded(code: 1))
            #expect(Array(packet.body.readableBytesView) == Array(first.prefix(576 - 28)))
            #expect(20 + error.payload.readableBytes == 576)
            #expect(stack.counters.icmpOutTimeExceeded == 1 && stack.counters.icmpOutMessages == 1)
            #expect(stack.counters.report().contains("    OutType11: 1"))
        }
        #expect(stack.counters.ipReassemblyTimeouts == 1 && stack.reassemblyStatus == (0, 0))
        // The missing fragment, arriving late, starts a new reassembly that cannot complete.
        stack.receive(fragments[1], now: .zero + timeout + .seconds(1))
        #expect(stack.counters.ipReassembled == 0 && stack.reassemblyStatus.datagrams == 1)
    }

    /// "if fragment zero has been received": without it the reassembly times out in silence.
    @Test(arguments: [false, true])
    func noFirstFragmentNoError(ipv6: Bool) throws {
        let stack = Self.stack()
        let fragments = try Self.fragments(ipv6: ipv6)
        stack.receive(fragments[1], now: .zero)
        stack.receive(fragments[2], now: .zero)
        stack.advanceTime(to: .zero + .seconds(61))
        #expect(try Self.drain(stack).isEmpty)
        #expect(stack.counters.ipReassemblyTimeouts == 1)
        #expect(stack.counters.icmpOutTimeExceeded == 0 && stack.counters.icmp6OutTimeExceeded == 0)
        #expect(stack.counters.icmpOutRateLimited == 0 && stack.counters.icmpOutSuppressed == 0)
    }

    /// RFC 1122 §3.2.2 / RFC 4443 §2.4(e): nor is an error sent about a fragmented ICMP error, nor
    /// to a source that names no single host.
    @Test(arguments: [false, true])
    func noErrorAboutAnErrorOrToAMulticastSource(ipv6: Bool) throws {
        let stack = Self.stack()
        // A destination unreachable (type 3 / type 1) too big for one fragment.
        var error = [UInt8](repeating: 0, count: 3000)
        error[0] = ipv6 ? 1 : 3
        let datagram = ipv6 ? F.ipv6(payload: error, nextHeader: IPProtocolNumber.icmpv6)
            : F.ipv4(payload: error, protocolNumber: IPProtocolNumber.icmp)
        let fragments = try IPFragmentation.fragment(datagram, mtu: ipv6 ? 1280 : 1500, identification: 9)
        stack.receive(fragments[0], now: .zero)
        let multicast = ipv6 ? F.ipv6(payload: F.pattern(3000), source: IPv6Address("ff02::1")!)
            : F.ipv4(payload: F.pattern(3000), identification: 10, source: IPv4Address(224, 0, 0, 1))
        stack.receive(try IPFragmentation.fragment(multicast, mtu: ipv6 ? 1280 : 1500, identification: 10)[0], now: .zero)
        stack.advanceTime(to: .zero + .seconds(60))
        #expect(try Self.drain(stack).isEmpty)
        #expect(stack.counters.ipReassemblyTimeouts == 2 && stack.counters.icmpOutSuppressed == 2)
    }

    /// A flood of incomplete datagrams, each with its first fragment, from many sources: the errors
    /// their timeouts earn draw from the one token bucket (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8).
    /// All at once, the burst goes out and the rest are counted as rate-limited; spread over two
    /// seconds, no more than the burst plus the rate per second of elapsed time.
    @Test(arguments: [false, true])
    func floodOfIncompleteDatagramsIsRateLimited(ipv6: Bool) throws {
        let stack = Self.stack { configuration in
            configuration.icmp.errorBurst = 20
            configuration.icmp.errorsPerSecond = 100
            // Room for all 2,000 of the second flood at once: the bound under test is the bucket's.
            configuration.fragments.memoryLimit = 16 * 1024 * 1024
        }
        let timeout: TimeAmount = ipv6 ? .seconds(60) : .seconds(30)
        func flood(_ count: Int, from start: Instant, spacing: TimeAmount, identifications base: UInt32) throws {
            for index in 0..<count {
                // Another source each time: 198.18.x.y / 2001:db8::x:y.
                let identification = base + UInt32(index)
                var source6 = F.peer6
                source6.low &+= UInt64(index)
                let datagram = ipv6 ? F.ipv6(payload: F.pattern(3000), source: source6)
                    : F.ipv4(payload: F.pattern(3000), identification: UInt16(truncatingIfNeeded: identification),
                             source: IPv4Address(198, 18, UInt8(1 + index / 250), UInt8(1 + index % 250)))
                let first = try IPFragmentation.fragment(datagram, mtu: ipv6 ? 1280 : 1500, identification: identification)[0]
                stack.receive(first, now: start + .nanoseconds(spacing.nanoseconds * Int64(index)))
            }
        }

        // 500 at once: the burst, and the rest counted.
        try flood(500, from: .zero, spacing: .zero, identifications: 1000)
        #expect(stack.reassemblyStatus.datagrams == 500)
        stack.advanceTime(to: .zero + timeout)
        let burst = try Self.drain(stack)
        #expect(burst.count == 20)
        #expect(stack.counters.icmpOutRateLimited == 480)
        #expect(stack.counters.ipReassemblyTimeouts == 500 && stack.reassemblyStatus == (0, 0))

        // 2,000 spread over 2 s (one a millisecond), expiring as they came, time advanced in 1 ms steps.
        let start = Instant.zero + timeout + .seconds(10)
        try flood(2000, from: start, spacing: .milliseconds(1), identifications: 5000)
        var sent = 0
        var now = start + timeout
        while now <= start + timeout + .seconds(2) {
            stack.advanceTime(to: now)
            sent += try Self.drain(stack).count
            now = now + .milliseconds(1)
        }
        #expect(stack.counters.ipReassemblyTimeouts == 2500)
        // A full bucket (20) after the quiet spell, then 100 a second for 2 s.
        #expect(sent >= 200 && sent <= 20 + 200 + 1)
        #expect(UInt64(sent) + stack.counters.icmpOutRateLimited == 2500 - 20)
        let family = ipv6 ? stack.counters.icmp6OutTimeExceeded : stack.counters.icmpOutTimeExceeded
        #expect(family == UInt64(20 + sent))
    }
}
