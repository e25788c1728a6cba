import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// Rules installed in a stack: the hooks see the datagrams they should, the verdicts act, and
/// connection tracking follows real exchanges.
@Suite struct StackFilterTests {
    typealias Pair = FilterPair

    /// The bytes 0, 1, 2, … (mod 251: no period that divides a segment size).
    static func pattern(_ count: Int, from start: Int = 0) -> ByteBuffer {
        var buffer = ByteBuffer()
        for index in start..<(start + count) { buffer.writeInteger(UInt8(index % 251)) }
        return buffer
    }

    /// Sends `count` bytes from A's `client` to B's `server` (B reading all), then A closes; returns what B read.
    static func transfer(_ pair: Pair, client: ConnectionID, server: ConnectionID, count: Int, limit: TimeAmount = .seconds(120)) -> [UInt8] {
        var sent = 0
        var received: [UInt8] = []
        var closed = false
        var ended = false
        pair.applications = {
            if sent < count {
                let chunk = min(count - sent, 65_536)
                sent += (try? pair.a.send(client, pattern(chunk, from: sent), now: pair.now)) ?? 0
            } else if !closed {
                closed = true
                try? pair.a.close(client, now: pair.now)
            }
            while case .data(let bytes)? = try? pair.b.read(server, now: pair.now) {
                received.append(contentsOf: bytes.readableBytesView)
            }
            if case .endOfStream? = try? pair.b.read(server, now: pair.now) { ended = true }
        }
        pair.run(for: limit) { ended }
        pair.applications = {}
        return received
    }

    // MARK: Hooks

    @Test func everyHookSeesItsDatagramsIPv4AndIPv6() throws {
        let pair = try Pair(b: """
            table inet t {
                chain pre { type filter hook prerouting priority 0; tcp dport 7 counter }
                chain in { type filter hook input priority 0; tcp dport 7 counter }
                chain out { type filter hook output priority 0; tcp sport 7 counter }
                chain post { type filter hook postrouting priority 0; tcp sport 7 counter }
                chain fwd { type filter hook forward priority 0; tcp dport 9 drop }
            }
            """)
        let (client, server) = try pair.connect(to: 7)
        // The handshake: SYN and ACK in, SYN-ACK out.
        #expect(pair.b.ruleCounter("pre", 0) == 2)
        #expect(pair.b.ruleCounter("in", 0) == 2)
        #expect(pair.b.ruleCounter("out", 0) == 1)
        #expect(pair.b.ruleCounter("post", 0) == 1)
        let received = Self.transfer(pair, client: client, server: try #require(server), count: 20_000)
        #expect(received == Array(Self.pattern(20_000).readableBytesView))
        let v4In = UInt64(Pair.segments(pair.fromA, port: 7).count)
        let v4Out = UInt64(Pair.segments(pair.fromB, port: 7).count)
        #expect(pair.b.ruleCounter("pre", 0) == v4In)
        #expect(pair.b.ruleCounter("in", 0) == v4In)
        #expect(pair.b.ruleCounter("out", 0) == v4Out)
        #expect(pair.b.ruleCounter("post", 0) == v4Out)

        // The same over IPv6 (an inet table sees both families).
        pair.fromA = []
        pair.fromB = []
        let listener6 = try pair.b.listen(on: 7, address: .v6(Pair.b6))
        _ = try pair.a.connect(to: Endpoint(.v6(Pair.b6), 7), now: pair.now)
        pair.run(for: .seconds(1))
        #expect(pair.b.accept(listener6) != nil)
        #expect(Pair.segments(pair.fromA, port: 7).count == 2)
        #expect(pair.b.ruleCounter("pre", 0) == v4In + 2)
        #expect(pair.b.ruleCounter("in", 0) == v4In + 2)
        #expect(pair.b.ruleCounter("out", 0) == v4Out + 1)
        #expect(pair.b.ruleCounter("post", 0) == v4Out + 1)

        // Forward, as a router calls it: port 9 dropped, anything else through untouched.
        func forwarded(_ port: UInt16) -> ByteBuffer {
            let header = TCPHeader(sourcePort: 40000, destinationPort: port, sequenceNumber: SequenceNumber(1),
                                   acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 1000)
            return PacketBuffer.tcpDatagram(header: header, payload: nil, source: .v4(Pair.a4), destination: .v4(IPv4Address(198, 19, 0, 9)))
        }
        let dropped = pair.b.counters.filterDropped
        #expect(pair.b.filterForward(forwarded(9), inputLink: "a", outputLink: "b", now: pair.now) == nil)
        let other = forwarded(10)
        #expect(pair.b.filterForward(other, inputLink: "a", outputLink: "b", now: pair.now) == other)
        #expect(pair.b.ruleCounter("fwd", 0) == 1)
        #expect(pair.b.counters.filterDropped == dropped + 1)
        // Rules on other hooks never saw them.
        #expect(pair.b.ruleCounter("pre", 0) == v4In + 2)
    }

    @Test func noRulesNoHooks() throws {
        let pair = try Pair(b: "table inet t { chain in { type filter hook input priority 0; tcp dport 99 drop } }")
        let (client, server) = try pair.connect(to: 7)
        let received = Self.transfer(pair, client: client, server: try #require(server), count: 5_000)
        #expect(received.count == 5_000)
        #expect(pair.b.ruleCounter("in", 0) == 0)
        #expect(pair.b.counters.filterDropped == 0)
        // Removing the rules leaves no filter behind.
        try pair.b.install(nil)
        #expect(pair.b.packetFilter == nil && pair.b.filterListing() == nil)
    }

    @Test func chainsRunInPriorityOrderWithJumpsAndPolicies() throws {
        let pair = try Pair(b: """
            table inet t {
                chain late { type filter hook input priority 10; policy drop; tcp dport 7 accept }
                chain early { type filter hook input priority -10; tcp dport 7 jump sub; tcp dport 7 counter }
                chain sub { tcp flags syn counter; return; tcp dport 7 drop }
            }
            """)
        _ = try pair.connect(to: 7)
        // SYN and ACK: both through `early` (the jump returns), both accepted by `late`.
        #expect(pair.b.ruleCounter("sub", 0) == 1)
        #expect(pair.b.ruleCounter("sub", 2) == 0)
        #expect(pair.b.ruleCounter("early", 1) == 2)
        #expect(pair.b.ruleCounter("late", 0) == 2)
        // Anything else meets `late`'s policy.
        _ = try pair.a.connect(to: Endpoint(.v4(Pair.b4), 8), now: pair.now)
        pair.run(for: .milliseconds(100))
        #expect(pair.b.counters.filterDropped == 1)
        #expect(Pair.segments(pair.fromB, port: 8).isEmpty)
    }

    // MARK: Reject

    @Test func rejectAnswersWithResetOrUnreachable() throws {
        let pair = try Pair(b: """
            table inet t {
                chain in {
                    type filter hook input priority 0
                    tcp dport 81 reject with tcp reset
                    tcp dport 82 reject
                    meta nfproto ipv6 udp dport 53 reject with icmpv6 type admin-prohibited
                    udp dport 53 reject with icmp type host-unreachable
                }
            }
            """)
        _ = try pair.b.listen(on: 81)
        _ = try pair.b.listen(on: 82)
        // A SYN to 81: <SEQ=0><ACK=ISS+1><CTL=RST,ACK>, and the client's connection is refused.
        let refused = try pair.a.connect(to: Endpoint(.v4(Pair.b4), 81), now: pair.now)
        pair.run(for: .milliseconds(100))
        let resets = Pair.segments(pair.fromB, port: 81)
        #expect(resets.count == 1)
        let syn = try #require(Pair.segments(pair.fromA, port: 81).first)
        #expect(resets.first?.header.flags == [.rst, .ack])
        #expect(resets.first?.header.acknowledgmentNumber == syn.header.sequenceNumber + 1)
        #expect(pair.a.counters.resetsReceived == 1)
        #expect(pair.a.status(refused) == nil || pair.a.status(refused)?.state == .closed)
        #expect(pair.b.connectionCount == 0 && pair.b.halfOpenCount == 0)

        // A SYN to 82: ICMP port unreachable (nft's plain `reject`).
        _ = try pair.a.connect(to: Endpoint(.v4(Pair.b4), 82), now: pair.now)
        pair.run(for: .milliseconds(100))
        // UDP to 53 over both families: host unreachable, ICMPv6 administratively prohibited.
        let udp = try pair.a.bindUDP()
        try pair.a.send(udp, ByteBuffer(string: "query"), to: Endpoint(.v4(Pair.b4), 53), now: pair.now)
        try pair.a.send(udp, ByteBuffer(string: "query"), to: Endpoint(.v6(Pair.b6), 53), now: pair.now)
        pair.run(for: .milliseconds(100))
        let icmp = Pair.parsed(pair.fromB).filter {
            $0.upperLayerProtocol == IPProtocolNumber.icmp || $0.upperLayerProtocol == IPProtocolNumber.icmpv6
        }.map { (Array($0.payload.readableBytesView.prefix(2)), $0.upperLayerProtocol) }
        #expect(icmp.count == 3)
        #expect(icmp.map(\.0) == [[3, 3], [3, 1], [1, 1]])
        #expect(pair.b.counters.filterRejected == 4)
        #expect(pair.a.counters.icmpInDestinationUnreachables == 2)
        #expect(pair.a.counters.icmp6InDestinationUnreachables == 1)
    }

    @Test func rejectOnOutputAnswersOurOwnConnection() throws {
        let pair = try Pair(a: """
            table ip t { chain out { type filter hook output priority 0; tcp dport 83 reject with tcp reset } }
            """)
        _ = try pair.b.listen(on: 83)
        let refused = try pair.a.connect(to: Endpoint(.v4(Pair.b4), 83), now: pair.now)
        pair.run(for: .milliseconds(100))
        // Nothing left A; the RST the rule made reset A's own connection, as Linux's output reject does.
        #expect(pair.fromA.isEmpty)
        #expect(pair.a.counters.resetsReceived == 1)
        #expect(pair.a.status(refused) == nil || pair.a.status(refused)?.state == .closed)
    }

    // MARK: Impairment

    /// "Drop 1% of the data segments from A to B, only after the handshake": every byte still arrives.
    @Test func onePercentOfDataSegmentsLostAfterTheHandshake() throws {
        let pair = try Pair(b: """
            table inet lossy {
                chain pre {
                    type filter hook prerouting priority 0;
                    ip saddr 198.18.0.1 ip daddr 198.18.0.2 tcp dport 5001 ct state established meta length > 100 impair loss 1%
                }
                chain out { type filter hook output priority 0; ct state established counter }
            }
            """)
        let (client, server) = try pair.connect(to: 5001)
        #expect(pair.b.ruleCounter("pre", 0) == 0)  // not the SYN, not the handshake's ACK
        let count = 1_000_000
        let received = Self.transfer(pair, client: client, server: try #require(server), count: count)
        #expect(received == Array(Self.pattern(count).readableBytesView))
        let dataSegments = Pair.segments(pair.fromA, port: 5001).filter { $0.payload > 48 }.count
        #expect(pair.b.ruleCounter("pre", 0) == UInt64(dataSegments))
        let lost = pair.b.counters.filterImpairLost
        #expect(lost > 0)
        // About 1%: well within 0.3%...3% over this many segments.
        #expect(Double(lost) > 0.003 * Double(dataSegments) && Double(lost) < 0.03 * Double(dataSegments))
        #expect(pair.a.counters.segmentsRetransmitted >= lost)
    }

    @Test func delayJitterDuplicateReorderCorruptKeepEveryByte() throws {
        let pair = try Pair(
            a: "table ip a { chain out { type filter hook output priority 0; impair delay 3ms } }",
            b: """
                table ip b {
                    chain pre {
                        type filter hook prerouting priority 0;
                        tcp dport 5002 impair delay 5ms jitter 2ms duplicate 1% reorder 2% corrupt 3%
                    }
                }
                """)
        let listener = try pair.b.listen(on: 5002)
        let client = try pair.a.connect(to: Endpoint(.v4(Pair.b4), 5002), now: pair.now)
        // The SYN waits 3 ms in A's hold; the next deadline says when.
        #expect(pair.a.nextPacketToSend() == nil)
        #expect(pair.a.filterHeldCount == 1)
        #expect(pair.a.nextDeadline == pair.now + .milliseconds(3))
        pair.run(for: .seconds(1)) { pair.b.halfOpenCount + pair.b.connectionCount > 0 }
        pair.run(for: .seconds(1))
        let server = try #require(pair.b.accept(listener))
        let count = 150_000
        let received = Self.transfer(pair, client: client, server: server, count: count)
        #expect(received == Array(Self.pattern(count).readableBytesView))
        let counters = pair.b.counters
        #expect(counters.filterImpairDelayed > 0 && counters.filterImpairDuplicated > 0 && counters.filterImpairCorrupted > 0)
        // Each corrupted segment was caught by a checksum, IP's or TCP's.
        #expect(counters.badChecksums + counters.ipBadChecksum + counters.ipMalformed + counters.badSegments >= counters.filterImpairCorrupted)
        #expect(pair.a.status(client).map { $0.smoothedRTT ?? .zero } ?? .zero >= .milliseconds(6))
    }

    @Test func heldQueueIsBounded() throws {
        let pair = try Pair(b: "table ip b { chain pre { type filter hook prerouting priority 0; impair delay 10s } }")
        let udp = try pair.a.bindUDP()
        for _ in 0..<(Stack.filterHeldLimit + 10) {
            try pair.a.send(udp, ByteBuffer(string: "x"), to: Endpoint(.v4(Pair.b4), 9), now: pair.now)
            while let packet = pair.a.nextPacketToSend() { pair.b.receive(packet, now: pair.now) }
        }
        #expect(pair.b.filterHeldCount == Stack.filterHeldLimit)
        #expect(pair.b.counters.filterHeldOverflows == 10)
        pair.b.advanceTime(to: pair.now + .seconds(10))
        #expect(pair.b.filterHeldCount == 0)
    }

    @Test func logRulesWriteTraceLines() throws {
        let pair = try Pair(b: #"table ip b { chain in { type filter hook input priority 0; tcp flags syn log prefix "syn: " } }"#)
        pair.b.tracing = true
        _ = try pair.connect(to: 7)
        let lines = pair.b.drainTrace().filter { $0.rule == "netfilter" }
        #expect(lines.count == 1)
        #expect(lines.first?.message.contains("syn: input") == true)
        #expect(lines.first?.message.contains("dport=7") == true)
    }

    // MARK: Connection tracking on real exchanges

    @Test func connectionTrackingFollowsRealExchanges() throws {
        let pair = try Pair(b: """
            table inet ct {
                chain pre {
                    type filter hook prerouting priority 0;
                    ct state new counter
                    ct state established counter
                    ct state related counter
                    ct state invalid counter drop
                }
                chain out { type filter hook output priority 0; ct state new,established counter }
            }
            """)
        // Handshake: the SYN is new, its ACK established.
        let (client, server) = try pair.connect(to: 7)
        let local = try #require(pair.a.status(client)).local
        let flow = FlowTuple(source: .v4(Pair.a4), destination: .v4(Pair.b4), protocolNumber: IPProtocolNumber.tcp,
                             sourcePort: local.port, destinationPort: 7)
        #expect(pair.b.ruleCounter("pre", 0) == 1)
        #expect(pair.b.ruleCounter("pre", 1) == 1)
        #expect(pair.b.packetFilter?.tracker.tcpState(of: flow) == .established)

        // Data: established.
        _ = try pair.a.send(client, Self.pattern(3000), now: pair.now)
        pair.run(for: .seconds(1))
        #expect(try pair.b.read(try #require(server), now: pair.now) == .data(Self.pattern(3000)))
        #expect(pair.b.ruleCounter("pre", 1)! >= 3)

        // Out of the window the tracker knows: invalid, dropped.
        let status = try #require(pair.a.status(client))
        let wild = TCPHeader(sourcePort: local.port, destinationPort: 7, sequenceNumber: SequenceNumber(status.sendNext &+ 0x4000_0000),
                             acknowledgmentNumber: SequenceNumber(status.receiveNext), flags: .ack, window: 1000)
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0x55, count: 100)
        pair.b.receive(PacketBuffer.tcpDatagram(header: wild, payload: payload, source: .v4(Pair.a4), destination: .v4(Pair.b4)), now: pair.now)
        #expect(pair.b.ruleCounter("pre", 3) == 1)
        #expect(pair.b.counters.filterDropped == 1)

        // FIN both ways: the tracker follows the close.
        try pair.a.close(client, now: pair.now)
        pair.run(for: .seconds(1))
        try pair.b.close(try #require(server), now: pair.now)
        pair.run(for: .seconds(1))
        #expect(pair.b.packetFilter?.tracker.tcpState(of: flow) == .timeWait)

        // RST: a second connection aborted.
        let second = try pair.a.connect(to: Endpoint(.v4(Pair.b4), 7), now: pair.now)
        pair.run(for: .seconds(1))
        let secondPort = try #require(pair.a.status(second)).local.port
        pair.a.abort(second, now: pair.now)
        pair.run(for: .seconds(1))
        let secondFlow = FlowTuple(source: .v4(Pair.a4), destination: .v4(Pair.b4), protocolNumber: IPProtocolNumber.tcp,
                                   sourcePort: secondPort, destinationPort: 7)
        #expect(pair.b.packetFilter?.tracker.tcpState(of: secondFlow) == .close)

        // ICMP related: B's datagram to a port nobody on A listens on draws a port unreachable,
        // which belongs to B's UDP flow.
        let related = pair.b.ruleCounter("pre", 2)
        let udp = try pair.b.bindUDP()
        try pair.b.send(udp, ByteBuffer(string: "hello"), to: Endpoint(.v4(Pair.a4), 9999), now: pair.now)
        pair.run(for: .milliseconds(100))
        #expect(pair.a.counters.udpNoPorts == 1)
        #expect(pair.b.ruleCounter("pre", 2) == related! + 1)
    }

    @Test func limitRateLetsTheBurstThrough() throws {
        let pair = try Pair(b: """
            table inet t {
                chain in {
                    type filter hook input priority 0;
                    tcp flags syn limit rate over 2/second burst 2 packets drop
                }
            }
            """)
        _ = try pair.b.listen(on: 7)
        for _ in 0..<10 { _ = try pair.a.connect(to: Endpoint(.v4(Pair.b4), 7), now: pair.now) }
        pair.run(for: .milliseconds(10))
        // Two SYNs fit the bucket (a burst of 2); the other eight were dropped.
        #expect(pair.b.ruleCounter("in", 0) == 8)
        #expect(pair.b.counters.filterDropped == 8)
        #expect(pair.b.connectionCount == 2)
    }
}
