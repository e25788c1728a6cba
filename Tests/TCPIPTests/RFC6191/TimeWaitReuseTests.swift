import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// Our `connect` to a 4-tuple we hold in TIME-WAIT (we closed first and let go): Linux's
/// `tcp_tw_reuse` — only when no tuple is free, timestamps were on and the old connection's last
/// segment came a second or more ago — and the RFC 6056 Algorithm 4 port choice around it.
@Suite struct TimeWaitReuseTests {
    static let timestamps = TCPTester.Peer(timestampValue: 5000)

    /// Active open from the single ephemeral port 50000, active close, released: a record.
    static func timeWait(
        peer: TCPTester.Peer = timestamps, ports: ClosedRange<UInt16> = 50000...50000,
        configure: (inout StackConfiguration) -> Void = { _ in }
    ) throws -> TCPTester {
        var t = try TCPTester(.establishedActive, peer: peer) {
            $0.ephemeralPorts = ports
            configure(&$0)
        }
        try t.app.close()
        try t.app.release()
        try t.expect("+0 > F. 1:1(0) ack 1 \(peer.timestampValue == nil ? "" : "<nop,nop,TS val * ecr 5000>")")
        try t.inject("+0 < F. 1:1(0) ack 2 win 65535 \(t.segmentOptions)")
        try t.expect("+0 > . 2:2(0) ack 2 \(peer.timestampValue == nil ? "" : "<nop,nop,TS val * ecr 5000>")")
        #expect(t.stack.timeWaitCount == 1)
        return t
    }

    static func reconnect(_ t: inout TCPTester) throws -> ConnectionID {
        try t.stack.connect(to: Endpoint(t.remoteAddress, TCPTester.remotePort), now: .zero + t.elapsed)
    }

    @Test func reusedAfterASecondWithTimestamps() throws {
        var t = try Self.timeWait()
        let oldSndNxt = try #require(t.iss) + UInt32(2)
        let oldTSval = try #require(t.latestTSval)
        // Within a second of the peer's last segment: no tuple.
        #expect(throws: TCPError.addressUnavailable) { try Self.reconnect(&t) }
        t.advance(by: .seconds(1))
        t.beginNewIncarnation()
        t.connection = try Self.reconnect(&t)
        try t.expect("+0 > S 0:0(0) <mss 1460,sackOK,TS val * ecr 0,wscale 3>")
        let iss = try #require(t.iss)
        // Linux's choice, old SND.NXT + 65537: no ACK of the old incarnation is acceptable.
        #expect(iss.isAfter(oldSndNxt))
        // RFC 7323 §5.4: the TS offset is per 4-tuple, so our TSvals go on increasing.
        #expect(Int32(bitPattern: try #require(t.latestTSval) &- oldTSval) > 0)
        #expect(t.stack.timeWaitCount == 0)
        #expect(t.counters.timeWaitReusedByConnect == 1)
        try t.inject("+0 < S. 0:0(0) ack 1 win 65535 <mss 1460,TS val 6000 ecr *>")
        try t.expect("+0 > . 1:1(0) ack 1 <nop,nop,TS val * ecr 6000>")
        #expect(t.state == .established)
    }

    @Test func notReusedWithoutTimestamps() throws {
        var t = try Self.timeWait(peer: TCPTester.Peer())
        t.advance(by: .seconds(5))
        #expect(throws: TCPError.addressUnavailable) { try Self.reconnect(&t) }
        #expect(t.stack.timeWaitCount == 1)
    }

    @Test func notReusedWhenTurnedOff() throws {
        var t = try Self.timeWait { $0.timeWaitReuse = false }
        t.advance(by: .seconds(5))
        #expect(throws: TCPError.addressUnavailable) { try Self.reconnect(&t) }
        #expect(t.counters.timeWaitReusedByConnect == 0)
    }

    /// A free tuple is taken before one in TIME-WAIT.
    @Test func freeTupleFirst() throws {
        var t = try Self.timeWait(ports: 50000...50001)
        t.advance(by: .seconds(5))
        let id = try Self.reconnect(&t)
        let port = try #require(t.stack.status(id)).local.port
        #expect(port != t.localPort)
        #expect(t.stack.timeWaitCount == 1)
        #expect(t.counters.timeWaitReusedByConnect == 0)
    }
}

/// RFC 6056 §3.3.4, Algorithm 4.
@Suite struct EphemeralPortTests {
    static func stack(seed: UInt64 = 1, ports: ClosedRange<UInt16> = 49152...65535) -> Stack {
        var configuration = StackConfiguration(addresses: [.v4(IPv4Address(198, 18, 0, 1))], checksumOffload: true, seed: seed)
        configuration.ephemeralPorts = ports
        return Stack(configuration)
    }

    static func localPort(_ stack: Stack, _ id: ConnectionID) -> UInt16 { stack.status(id)!.local.port }

    /// Successive connections to one destination take successive ports, every port of the range
    /// once before any comes back.
    @Test func oneDestinationWalksTheWholeRange() throws {
        let stack = Self.stack(ports: 50000...50099)
        let remote = Endpoint(.v4(IPv4Address(198, 18, 0, 2)), 80)
        var seen = Set<UInt16>()
        var previous: UInt16?
        for _ in 0..<100 {
            let id = try stack.connect(to: remote, now: .zero)
            let port = Self.localPort(stack, id)
            #expect((50000...50099).contains(port))
            if let previous { #expect(port == (previous == 50099 ? 50000 : previous + 1)) }
            previous = port
            seen.insert(port)
        }
        #expect(seen.count == 100)
        #expect(throws: TCPError.addressUnavailable) { try stack.connect(to: remote, now: .zero) }
    }

    /// Where a destination's search starts depends on the destination and a secret: another
    /// destination, or another stack's secret, starts elsewhere.
    @Test func startDependsOnDestinationAndSecret() throws {
        let remotes = (1...8).map { Endpoint(.v4(IPv4Address(198, 18, 1, UInt8($0))), 443) }
        let first = Self.stack(seed: 1)
        let firstPorts = try remotes.map { Self.localPort(first, try first.connect(to: $0, now: .zero)) }
        #expect(Set(firstPorts).count > 1)
        let second = Self.stack(seed: 2)
        let secondPorts = try remotes.map { Self.localPort(second, try second.connect(to: $0, now: .zero)) }
        #expect(firstPorts != secondPorts)
        // The same seed gives the same ports: determinism.
        let again = Self.stack(seed: 1)
        #expect(try remotes.map { Self.localPort(again, try again.connect(to: $0, now: .zero)) } == firstPorts)
    }
}
