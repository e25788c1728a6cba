import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// Each match and verdict on crafted datagrams.
@Suite struct PacketFilterTests {
    typealias P = FilterPackets

    /// A filter whose input chain holds `rules` (one per line) ahead of `policy`.
    static func filter(_ rules: String, policy: String = "accept", hook: String = "input", extra: String = "") throws -> PacketFilter {
        try PacketFilter(FilterRuleset(parsing: """
            table inet t {
                \(extra)
                chain c {
                    type filter hook \(hook) priority 0; policy \(policy);
                    \(rules)
                }
            }
            """))
    }

    static func verdict(_ rules: String, _ packet: FilterPacket, extra: String = "") throws -> FilterVerdict {
        var filter = try filter(rules, extra: extra)
        var packet = packet
        return filter.evaluate(&packet, hook: .input, now: .zero)
    }

    static let syn = P.tcp(flags: .syn)
    static let synAck = P.tcp(flags: [.syn, .ack])
    static let ack = P.tcp(flags: .ack)
    static let syn6 = P.tcp(from: .v6(P.client6), to: .v6(P.server6), flags: .syn)

    @Test func familyAndProtocol() throws {
        #expect(try Self.verdict("meta nfproto ipv4 drop", Self.syn) == .drop)
        #expect(try Self.verdict("meta nfproto ipv4 drop", Self.syn6) == .accept)
        #expect(try Self.verdict("meta nfproto ipv6 drop", Self.syn6) == .drop)
        #expect(try Self.verdict("meta l4proto tcp drop", Self.syn) == .drop)
        #expect(try Self.verdict("meta l4proto udp drop", Self.syn) == .accept)
        #expect(try Self.verdict("meta l4proto { udp, tcp } drop", Self.syn) == .drop)
        #expect(try Self.verdict("meta l4proto != tcp drop", P.udp()) == .drop)
        #expect(try Self.verdict("ip protocol tcp drop", Self.syn6) == .accept)
        #expect(try Self.verdict("ip6 nexthdr tcp drop", Self.syn6) == .drop)
    }

    @Test func tablesSeeOnlyTheirFamily() throws {
        var filter = try PacketFilter(FilterRuleset(parsing: """
            table ip four { chain c { type filter hook input priority 0; drop } }
            """))
        var v4 = Self.syn, v6 = Self.syn6
        #expect(filter.evaluate(&v4, hook: .input, now: .zero) == .drop)
        #expect(filter.evaluate(&v6, hook: .input, now: .zero) == .accept)
        #expect(filter.hasRules(at: .input) && !filter.hasRules(at: .output))
    }

    @Test func addressesPrefixesAndSets() throws {
        #expect(try Self.verdict("ip saddr 198.18.0.0/24 drop", Self.syn) == .drop)
        #expect(try Self.verdict("ip saddr 198.18.1.0/24 drop", Self.syn) == .accept)
        #expect(try Self.verdict("ip daddr 198.18.1.1 drop", Self.syn) == .drop)
        #expect(try Self.verdict("ip saddr != 198.18.0.0/24 drop", Self.syn) == .accept)
        #expect(try Self.verdict("ip saddr { 10.0.0.0/8, 198.18.0.1 } drop", Self.syn) == .drop)
        #expect(try Self.verdict("ip saddr { 198.18.0.2-198.18.0.9 } drop", Self.syn) == .accept)
        #expect(try Self.verdict("ip6 saddr 2001:db8::/32 drop", Self.syn6) == .drop)
        #expect(try Self.verdict("ip6 saddr 2001:db8::/32 drop", Self.syn) == .accept)
        let set = "set b { type ipv4_addr; flags interval; elements = { 198.18.0.0/31, 203.0.113.7 } }"
        #expect(try Self.verdict("ip saddr @b drop", Self.syn, extra: set) == .drop)
        #expect(try Self.verdict("ip daddr @b drop", Self.syn, extra: set) == .accept)
        #expect(try Self.verdict("ip saddr != @b drop", Self.syn, extra: set) == .accept)
    }

    @Test func portsAndRanges() throws {
        #expect(try Self.verdict("tcp dport 22 drop", Self.syn) == .drop)
        #expect(try Self.verdict("tcp dport 23 drop", Self.syn) == .accept)
        #expect(try Self.verdict("tcp dport 20-30 drop", Self.syn) == .drop)
        #expect(try Self.verdict("tcp dport { 80, 10-21 } drop", Self.syn) == .accept)
        #expect(try Self.verdict("tcp sport 40000 drop", Self.syn) == .drop)
        #expect(try Self.verdict("tcp dport != 22 drop", Self.syn) == .accept)
        #expect(try Self.verdict("udp dport 22 drop", Self.syn) == .accept)
        #expect(try Self.verdict("udp dport 53 drop", P.udp()) == .drop)
        #expect(try Self.verdict("th dport 53 drop", P.udp()) == .drop)
        #expect(try Self.verdict("th dport 22 drop", Self.syn) == .drop)
        let set = "set svc { type inet_service; elements = { 22, 8000-8080 } }"
        #expect(try Self.verdict("tcp dport @svc drop", Self.syn, extra: set) == .drop)
        #expect(try Self.verdict("tcp dport @svc drop", P.tcp(40000, 8080, flags: .syn), extra: set) == .drop)
        #expect(try Self.verdict("tcp dport @svc drop", P.tcp(40000, 8081, flags: .syn), extra: set) == .accept)
    }

    @Test func tcpFlags() throws {
        for (rule, packet, dropped) in [
            ("tcp flags syn drop", Self.syn, true), ("tcp flags syn drop", Self.synAck, true), ("tcp flags syn drop", Self.ack, false),
            ("tcp flags syn,!ack drop", Self.syn, true), ("tcp flags syn,!ack drop", Self.synAck, false),
            ("tcp flags & (syn | ack) == syn drop", Self.syn, true), ("tcp flags & (syn | ack) == syn drop", Self.synAck, false),
            ("tcp flags & (syn | ack) != syn drop", Self.synAck, true),
            ("tcp flags syn / syn,ack drop", Self.syn, true), ("tcp flags syn / syn,ack drop", Self.synAck, false),
            ("tcp flags == syn drop", Self.syn, true), ("tcp flags == syn drop", Self.synAck, false),
            ("tcp flags != syn drop", Self.synAck, true), ("tcp flags syn drop", P.udp(), false),
        ] as [(String, FilterPacket, Bool)] {
            #expect(try Self.verdict(rule, packet) == (dropped ? .drop : .accept), "\(rule) on \(packet.tcpFlags)")
        }
    }

    @Test func icmpTypesAndCodes() throws {
        let ping = P.icmp(type: 8, identifier: 7)
        let ping6 = P.icmp(from: .v6(P.client6), to: .v6(P.server6), type: 128, identifier: 7)
        #expect(try Self.verdict("icmp type echo-request drop", ping) == .drop)
        #expect(try Self.verdict("icmp type echo-reply drop", ping) == .accept)
        #expect(try Self.verdict("icmp type { echo-reply, echo-request } drop", ping) == .drop)
        #expect(try Self.verdict("icmp type echo-request drop", ping6) == .accept)
        #expect(try Self.verdict("icmpv6 type echo-request drop", ping6) == .drop)
        #expect(try Self.verdict("icmp type != echo-request drop", ping) == .accept)
        #expect(try Self.verdict("icmp code 3 drop", P.icmp(type: 3, code: 3)) == .drop)
        #expect(try Self.verdict("icmp code 3 drop", P.icmp(type: 3, code: 1)) == .accept)
    }

    @Test func packetLength() throws {
        let big = P.tcp(flags: .ack, length: 1000)  // 20 + 20 + 1000
        #expect(big.length == 1040)
        #expect(try Self.verdict("meta length > 1000 drop", big) == .drop)
        #expect(try Self.verdict("meta length < 1000 drop", big) == .accept)
        #expect(try Self.verdict("meta length 1040 drop", big) == .drop)
        #expect(try Self.verdict("meta length 1000-2000 drop", big) == .drop)
        #expect(try Self.verdict("meta length != 1000-2000 drop", big) == .accept)
        #expect(try Self.verdict("meta length <= 1040 drop", big) == .drop)
        #expect(try Self.verdict("meta length >= 1041 drop", big) == .accept)
        let big6 = P.tcp(from: .v6(P.client6), to: .v6(P.server6), flags: .ack, length: 1000)
        #expect(big6.length == 1060)
    }

    @Test func linkNames() throws {
        let packet = P.tcp(flags: .syn, link: "tun0")
        #expect(try Self.verdict("iifname \"tun0\" drop", packet) == .drop)
        #expect(try Self.verdict("iifname \"tun*\" drop", packet) == .drop)
        #expect(try Self.verdict("iifname \"eth0\" drop", packet) == .accept)
        #expect(try Self.verdict("iifname != \"eth0\" drop", packet) == .drop)
        #expect(try Self.verdict("meta iifname { \"eth0\", \"tun0\" } drop", packet) == .drop)
        #expect(try Self.verdict("oifname \"tun0\" drop", packet) == .accept)
    }

    @Test func connectionState() throws {
        var filter = try Self.filter("ct state new tcp flags syn,!ack counter accept\nct state established accept\nct state invalid drop",
                                     policy: "drop")
        var syn = Self.syn
        #expect(filter.evaluate(&syn, hook: .input, now: .zero) == .accept)
        #expect(syn.connectionState == .new)
        // A stray ACK of a flow never seen is invalid.
        var stray = P.tcp(40001, 22, flags: .ack, seq: 5, ack: 5)
        #expect(filter.evaluate(&stray, hook: .input, now: .zero) == .drop)
        #expect(stray.connectionState == .invalid)
        var reply = P.tcp(from: .v4(P.server4), to: .v4(P.client4), 22, 40000, flags: [.syn, .ack], seq: 1000, ack: 1)
        #expect(filter.evaluate(&reply, hook: .input, now: .zero) == .accept)
        #expect(reply.connectionState == .established)
    }

    @Test func rateLimitIsATokenBucket() throws {
        var filter = try Self.filter("limit rate 10/second burst 2 packets accept", policy: "drop")
        func pass(_ at: Int64) -> Bool {
            var packet = Self.syn
            return filter.evaluate(&packet, hook: .input, now: Instant(nanoseconds: at)) == .accept
        }
        // A burst of 2, then one per 100 ms.
        #expect(pass(0) && pass(0) && !pass(0))
        #expect(!pass(50_000_000))
        #expect(pass(100_000_000))
        #expect(!pass(150_000_000))
        #expect(pass(200_000_000))
        // Idle time refills to the burst, no further.
        #expect(pass(10_000_000_000) && pass(10_000_000_000) && !pass(10_000_000_000))
    }

    @Test func rateLimitOver() throws {
        var filter = try Self.filter("limit rate over 1/second burst 1 packets drop")
        var first = Self.syn, second = Self.syn
        #expect(filter.evaluate(&first, hook: .input, now: .zero) == .accept)
        #expect(filter.evaluate(&second, hook: .input, now: .zero) == .drop)
    }

    @Test func meterKeepsABucketPerSource() throws {
        var filter = try Self.filter("meter m size 2 { ip saddr limit rate 1/second burst 1 packets } accept", policy: "drop")
        func pass(_ last: UInt8) -> Bool {
            var packet = P.tcp(from: .v4(IPv4Address(198, 18, 0, last)), flags: .syn)
            return filter.evaluate(&packet, hook: .input, now: .zero) == .accept
        }
        #expect(pass(1) && !pass(1))
        #expect(pass(2) && !pass(2))
        // The meter holds two sources; a third is treated as over the rate.
        #expect(!pass(3))
    }

    @Test func randomProbabilityIsSeeded() throws {
        func drops(seed: UInt64) throws -> Int {
            var filter = try PacketFilter(FilterRuleset(parsing: """
                table ip t { chain c { type filter hook input priority 0; numgen random mod 100 < 25 drop } }
                """), seed: seed)
            var count = 0
            for _ in 0..<10_000 {
                var packet = Self.syn
                if filter.evaluate(&packet, hook: .input, now: .zero) == .drop { count += 1 }
            }
            return count
        }
        let first = try drops(seed: 7)
        #expect(first == (try drops(seed: 7)))
        #expect((2_300...2_700).contains(first))
    }

    @Test func rejectReplies() throws {
        #expect(try Self.verdict("reject", Self.syn) == .reject(.icmpUnreachable(code: 3)))
        #expect(try Self.verdict("reject", Self.syn6) == .reject(.icmpUnreachable(code: 4)))
        #expect(try Self.verdict("reject with tcp reset", Self.syn) == .reject(.tcpReset))
        #expect(try Self.verdict("reject with tcp reset", P.udp()) == .reject(.icmpUnreachable(code: 3)))
        #expect(try Self.verdict("reject with icmp host-prohibited", Self.syn) == .reject(.icmpUnreachable(code: 10)))
        #expect(try Self.verdict("reject with icmpv6 admin-prohibited", Self.syn6) == .reject(.icmpUnreachable(code: 1)))
        #expect(try Self.verdict("reject with icmpx admin-prohibited", Self.syn) == .reject(.icmpUnreachable(code: 13)))
        #expect(try Self.verdict("reject with icmpx admin-prohibited", Self.syn6) == .reject(.icmpUnreachable(code: 1)))
    }

    @Test func jumpReturnGotoAndPolicy() throws {
        let ruleset = try FilterRuleset(parsing: """
            table inet t {
                chain c {
                    type filter hook input priority 0; policy drop;
                    tcp dport 22 jump ssh
                    tcp dport 80 goto web
                    tcp dport 443 accept
                }
                chain ssh {
                    ip saddr 198.18.0.1 return
                    accept
                }
                chain web {
                    ip saddr 198.18.0.1 drop
                }
            }
            """)
        var filter = try PacketFilter(ruleset)
        func verdict(_ source: UInt8, _ port: UInt16) -> FilterVerdict {
            var packet = P.tcp(from: .v4(IPv4Address(198, 18, 0, source)), 40000, port, flags: .syn)
            return filter.evaluate(&packet, hook: .input, now: .zero)
        }
        #expect(verdict(1, 22) == .drop)    // returned, then the policy
        #expect(verdict(2, 22) == .accept)  // accepted in ssh
        #expect(verdict(1, 80) == .drop)
        #expect(verdict(2, 80) == .drop)    // goto: the end of web ends the base chain, policy drop
        #expect(verdict(2, 443) == .accept)
    }

    @Test func baseChainsRunInPriorityOrderAndAcceptPassesOn() throws {
        var filter = try PacketFilter(FilterRuleset(parsing: """
            table inet t {
                chain late { type filter hook input priority 10; policy accept; tcp dport 22 drop }
                chain early { type filter hook input priority -10; policy accept; tcp dport 22 log prefix "early " accept }
            }
            """))
        var packet = Self.syn
        #expect(filter.evaluate(&packet, hook: .input, now: .zero) == .drop)
        let log = filter.drainLog()
        #expect(log.count == 1 && log[0].chain == "early")
        #expect(log[0].description.contains("early input early: src=198.18.0.1 dst=198.18.1.1 proto=6 sport=40000 dport=22 len=40"))
        #expect(log[0].description.hasSuffix("rule: tcp dport 22 log prefix \"early \" accept"))
    }

    @Test func countersAreKeptForEveryRuleAndListed() throws {
        var filter = try Self.filter("tcp dport 22 accept\nudp dport 53 counter drop")
        for _ in 0..<3 {
            var packet = P.tcp(flags: .ack, length: 100)
            _ = filter.evaluate(&packet, hook: .input, now: .zero)
        }
        var dns = P.udp()
        _ = filter.evaluate(&dns, hook: .input, now: .zero)
        let rules = filter.currentRuleset.tables[0].chains[0].rules
        #expect(rules[0].packets == 3 && rules[0].bytes == 3 * 140)
        #expect(rules[1].packets == 1 && rules[1].bytes == 38)
        #expect(filter.listing().contains("tcp dport 22 counter packets 3 bytes 420 accept"))
        #expect(filter.listing().contains("udp dport 53 counter packets 1 bytes 38 drop"))
        // A listing with counters loads with them.
        let reloaded = try PacketFilter(FilterRuleset(parsing: filter.listing()))
        #expect(reloaded.currentRuleset == filter.currentRuleset)
    }

    @Test func impairmentDecisions() throws {
        var lossy = try Self.filter("impair loss 50%")
        var lost = 0
        for _ in 0..<1000 {
            var packet = Self.ack
            guard case .impair(let decision) = lossy.evaluate(&packet, hook: .input, now: .zero) else {
                Issue.record("not impaired")
                return
            }
            if decision.lost { lost += 1 }
        }
        #expect((420...580).contains(lost))

        var delayed = try Self.filter("impair delay 25ms jitter 5ms")
        for _ in 0..<100 {
            var packet = Self.ack
            guard case .impair(let decision) = delayed.evaluate(&packet, hook: .input, now: .zero) else { return }
            #expect(!decision.lost && !decision.duplicate && decision.corruptBit == nil)
            #expect((20_000_000...30_000_000).contains(decision.delay.nanoseconds))
        }

        var all = try Self.filter("impair duplicate 100% corrupt 100% reorder 100% delay 10ms")
        var packet = Self.ack
        guard case .impair(let decision) = all.evaluate(&packet, hook: .input, now: .zero) else { return }
        #expect(decision.duplicate && decision.delay == .zero)
        #expect((0..<(40 * 8)).contains(decision.corruptBit ?? -1))
    }

    @Test func impairmentRateQueuesAndDropsTheTail() throws {
        // 1000-octet datagrams at 8 Mbit/s: 1 ms each; a queue of 3.
        var filter = try Self.filter("impair rate 8mbit queue 3")
        func delay(_ at: Int64) -> TimeAmount? {
            var packet = P.tcp(flags: .ack, length: 960)
            guard case .impair(let decision) = filter.evaluate(&packet, hook: .input, now: Instant(nanoseconds: at)) else { return nil }
            return decision.lost ? nil : decision.delay
        }
        #expect(delay(0) == .milliseconds(1))
        #expect(delay(0) == .milliseconds(2))
        #expect(delay(0) == .milliseconds(3))
        #expect(delay(0) == nil)  // tail dropped
        #expect(delay(1_000_000) == .milliseconds(3))  // one left: room again
    }

    @Test func truncatedTransportMatchesNoPorts() throws {
        var buffer = PacketBuffer.make(payloadCapacity: 4)
        buffer.writeBytes([0, 22, 0, 22])
        FilterPackets.ip(.v4(P.client4), .v4(P.server4), IPProtocolNumber.tcp, &buffer)
        let packet = FilterPacket(P.datagram(buffer))
        #expect(!packet.transportComplete)
        #expect(try Self.verdict("tcp dport 22 drop", packet) == .accept)
        #expect(try Self.verdict("tcp flags syn drop", packet) == .accept)
    }

    @Test func prefixSetsLookUpInLogarithmicTime() {
        var elements: [AddressElement] = []
        for index in 0..<10_000 {
            let address = IPv4Address(rawValue: 0x0A00_0000 | UInt32(index) << 8)
            elements.append(.prefix(IPPrefix(.v4(address), length: 24)!))
        }
        elements.append(.prefix(IPPrefix("2001:db8:1::/48")!))
        elements.append(.range(IPAddress("198.18.0.10")!, IPAddress("198.18.0.20")!))
        let set = PrefixSet(elements)
        // Adjacent /24s merge into one range.
        #expect(set.rangeCount == 3)
        #expect(set.contains(IPAddress("10.0.5.9")!))
        #expect(set.contains(IPAddress("10.39.15.255")!))
        #expect(!set.contains(IPAddress("10.39.16.0")!))
        #expect(set.contains(IPAddress("198.18.0.15")!) && !set.contains(IPAddress("198.18.0.21")!))
        #expect(set.contains(IPAddress("2001:db8:1:ffff::1")!) && !set.contains(IPAddress("2001:db8:2::")!))
        let sparse = PrefixSet((0..<10_000).map { .prefix(IPPrefix(.v4(IPv4Address(rawValue: UInt32($0) * 7)), length: 32)!) })
        #expect(sparse.rangeCount == 10_000)
        #expect(sparse.contains(.v4(IPv4Address(rawValue: 69_993))) && !sparse.contains(.v4(IPv4Address(rawValue: 69_994))))
    }
}
