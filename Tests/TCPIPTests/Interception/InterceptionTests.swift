import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// Intercept mode (`StackConfiguration.interception`): a SYN to any address is held as a connection
/// request — no SYN-ACK, its retransmissions absorbed — until the application accepts or refuses it.
///
/// The tester's "local" address (198.18.0.1 or 2001:db8::1, port 8080) is not one of the stack's:
/// the stack owns no addresses, so it stands for whatever address the client dialled.
@Suite struct InterceptionTests {
    static func intercepting(
        ipv6: Bool = false, peer: TCPTester.Peer? = nil, _ adjust: @escaping (inout InterceptionConfiguration) -> Void = { _ in }
    ) throws -> TCPTester {
        try TCPTester(.closed, peer: peer ?? TCPTester.Peer(ipv6: ipv6)) { configuration in
            configuration.addresses = []
            var interception = InterceptionConfiguration()
            adjust(&interception)
            configuration.interception = interception
        }
    }

    /// The one request the stack has announced (and no other event).
    static func request(_ t: TCPTester) throws -> ConnectionRequest {
        let event = try #require(t.stack.nextEvent())
        guard case .connectionRequest(let id) = event else {
            Issue.record("expected a connection request, got \(event)")
            throw TCPTester.Failure(description: "no connection request")
        }
        #expect(t.stack.nextEvent() == nil)
        return try #require(t.stack.connectionRequest(id))
    }

    /// request → no SYN-ACK → the SYN again, absorbed → accept → SYN-ACK with the SYN's options →
    /// ESTABLISHED → data both ways, byte for byte.
    @Test(arguments: [false, true]) func acceptedRequestCompletesWithTheSYNsOptions(ipv6: Bool) throws {
        var t = try Self.intercepting(ipv6: ipv6)
        let mss = ipv6 ? 1440 : 1460
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1400,sackOK,TS val 700 ecr 0,nop,wscale 7>")
        try t.expectNothing(for: .milliseconds(900))
        let request = try Self.request(t)
        #expect(request.source == Endpoint(t.remoteAddress, TCPTester.remotePort))
        #expect(request.destination == Endpoint(t.localAddress, TCPTester.listenPort))
        #expect(request.receivedAt == .zero)
        #expect(t.stack.pendingRequestCount == 1 && t.stack.connectionCount == 0)

        // The client's SYN retransmission (RFC 6298 §5: one second on): absorbed, still no SYN-ACK.
        try t.inject("+.1 < S 0:0(0) win 65535 <mss 1400,sackOK,TS val 700 ecr 0,nop,wscale 7>")
        try t.expectNothing()
        #expect(t.counters.interceptSYNsAbsorbed == 1)
        #expect(t.stack.nextEvent() == nil)

        t.connection = try t.stack.accept(request.id, now: t.now)
        try t.expect("+0 > S. 0:0(0) ack 1 <mss \(mss),sackOK,TS val * ecr 700,nop,wscale 3>")
        #expect(t.stack.connectionRequest(request.id) == nil)
        try t.inject("+.01 < . 1:1(0) ack 1 win 512 <nop,nop,TS val 710 ecr *>")
        #expect(t.state == .established)
        let status = try #require(t.status)
        #expect(status.local == request.destination && status.remote == request.source)
        #expect(status.sendWindowScale == 7 && status.sack && status.timestamps)
        #expect(status.maximumSegmentSize == 1400 - 12)
        guard case .connection(let id, let events)? = t.stack.nextEvent() else {
            Issue.record("no connection event")
            return
        }
        #expect(id == t.connection && events.contains(.established))

        try t.inject("+0 < P. 1:1001(1000) ack 1 win 512 <nop,nop,TS val 720 ecr *>")
        try t.expect("+.04 > . 1:1(0) ack 1001 <nop,nop,TS val * ecr 720>")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 1000)))
        #expect(try t.app.send(1000) == 1000)
        try t.expect("+0 > P. 1:1001(1000) ack 1001 <nop,nop,TS val * ecr 720>")
        try t.inject("+.01 < . 1001:1001(0) ack 1001 win 512 <nop,nop,TS val 730 ecr *>")
        try t.expectNothing()
        #expect(t.counters.interceptRequests == 1 && t.counters.interceptAccepted == 1)
    }

    /// Without options in the SYN, the SYN-ACK offers none but the MSS (RFC 7323 §2.2, §3.2; RFC 2018 §2).
    @Test func synWithoutOptionsGetsOnlyTheMSS() throws {
        var t = try Self.intercepting()
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        let request = try Self.request(t)
        t.connection = try t.stack.accept(request.id, now: t.now)
        try t.run("""
            +0 > S. 0:0(0) ack 1 <mss 1460>
            +.01 < . 1:1(0) ack 1 win 65535
            """)
        #expect(t.state == .established)
        #expect(t.status?.sack == false && t.status?.timestamps == false && t.status?.sendWindowScale == 0)
    }

    /// A client that never sends the final ACK: the SYN-ACK is retransmitted with backoff and the
    /// connection times out, closed with an error for the application.
    @Test func acceptedRequestWhoseClientVanishesTimesOut() throws {
        var t = try Self.intercepting { _ in }
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        let request = try Self.request(t)
        t.connection = try t.stack.accept(request.id, now: t.now)
        try t.expect("+0 > S. 0:0(0) ack 1 <mss 1460>")
        try t.expect("+1 > S. 0:0(0) ack 1 <mss 1460>")
        _ = t.takeSegments()
        t.advance(by: .seconds(300))
        _ = t.takeSegments()
        #expect(t.state == .closed)
        #expect(t.status == nil || t.status?.error == .timedOut)
    }

    /// Accepted with a TCP configuration of its own: its buffers and ACK policy, not the stack's.
    @Test func acceptWithAConfigurationOfItsOwn() throws {
        var t = try Self.intercepting()
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        let request = try Self.request(t)
        var tcp = TCPConfiguration()
        tcp.receiveBufferSize = 8192
        tcp.receiveBufferMaximum = 8192
        t.connection = try t.stack.accept(request.id, configuration: tcp, now: t.now)
        try t.run("""
            +0 > S. 0:0(0) ack 1 win 8192 <mss 1460>
            +.01 < . 1:1(0) ack 1 win 65535
            +0 < P. 1:1001(1000) ack 1 win 65535
            +0 > . 1:1(0) ack 1001 win 7192
            """)
        // At once, not 40 ms later: this configuration's quick-ACK start (`quickAcks` 16), where the
        // tester's stack has none.
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 1000)))
    }

    /// Refused with RST: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK> (RFC 9293 §3.10.7.1); the client's
    /// connect fails with "connection refused".
    @Test(arguments: [false, true]) func refusedWithReset(ipv6: Bool) throws {
        var t = try Self.intercepting(ipv6: ipv6)
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        let request = try Self.request(t)
        t.stack.refuse(request.id, with: .reset, now: t.now)
        try t.expect("+0 > R. 0:0(0) ack 1")
        #expect(t.stack.pendingRequestCount == 0 && t.counters.interceptRefusedReset == 1)
        // Answered once: a second answer, or an accept, finds nothing.
        t.stack.refuse(request.id, with: .reset, now: t.now)
        #expect(throws: TCPError.connectionDoesNotExist) { try t.stack.accept(request.id, now: t.now) }
        try t.expectNothing(for: .seconds(20))
    }

    /// Refused with ICMP destination unreachable, quoting the SYN: the code as given over IPv4, its
    /// RFC 7915 §4.2 translation over IPv6 (host unreachable → no route, prohibited → 1).
    @Test(arguments: [(false, UInt8(1)), (false, UInt8(13)), (true, UInt8(1)), (true, UInt8(13))])
    func refusedWithUnreachable(ipv6: Bool, code: UInt8) throws {
        var t = try Self.intercepting(ipv6: ipv6)
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        let request = try Self.request(t)
        t.stack.refuse(request.id, with: .unreachable(code: code), now: t.now)
        let packet = try #require(t.stack.nextPacketToSend())
        #expect(t.stack.nextPacketToSend() == nil)
        let ip = try IPDatagram.parse(packet)
        #expect(ip.source == t.localAddress && ip.destination == t.remoteAddress)
        let quoted: ICMPQuotedDatagram
        if ipv6 {
            guard case .v6(let from) = ip.source, case .v6(let to) = ip.destination else { return }
            let icmp = try ICMPv6Packet.parse(ip.payload, source: from, destination: to)
            #expect(icmp.message == .destinationUnreachable(code == 13 ? .administrativelyProhibited : .noRoute))
            quoted = try #require(icmp.quoted)
        } else {
            let icmp = try ICMPv4Packet.parse(ip.payload)
            #expect(icmp.message == .destinationUnreachable(ICMPv4UnreachableCode(rawValue: code), nextHopMTU: 0))
            quoted = try #require(icmp.quoted)
        }
        #expect(quoted.source == t.remoteAddress && quoted.destination == t.localAddress)
        #expect(quoted.sourcePort == TCPTester.remotePort && quoted.destinationPort == TCPTester.listenPort)
        #expect(quoted.upperLayerProtocol == IPProtocolNumber.tcp)
        #expect(t.counters.interceptRefusedUnreachable == 1)
        try t.expectNothing(for: .seconds(20))
    }

    /// Refused with silence: nothing, then or at the deadline.
    @Test func refusedWithSilence() throws {
        var t = try Self.intercepting()
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        let request = try Self.request(t)
        t.stack.refuse(request.id, with: .silence, now: t.now)
        try t.expectNothing(for: .seconds(30))
        // Its SYN again is a new request.
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        #expect(try Self.request(t).id != request.id)
        #expect(t.counters.interceptRefusedSilence == 1)
    }

    /// Unanswered until the deadline: refused with RST, and counted.
    @Test func deadlineRefusesWithReset() throws {
        var t = try Self.intercepting { $0.requestDeadline = .seconds(3) }
        t.stack.tracing = true
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        let request = try Self.request(t)
        try t.inject("+1 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+2 > R. 0:0(0) ack 1")
        // The trace says what happened, and by which rule.
        let trace = t.stack.drainTrace()
        #expect(trace.map(\.rule) == ["RFC 9293 §3.10.7.2", "RFC 9293 §3.10.7.2", "RFC 9293 §3.10.7.1"])
        #expect(trace.last?.message.contains("3000 ms (requestDeadline)") == true)
        #expect(t.stack.connectionRequest(request.id) == nil)
        #expect(t.counters.interceptDeadlineExpired == 1 && t.stack.pendingRequestCount == 0)
        #expect(throws: TCPError.connectionDoesNotExist) { try t.stack.accept(request.id, now: t.now) }
        // The event of a request gone before the application looked is not delivered.
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+3 > R. 0:0(0) ack 1")
        #expect(t.stack.nextEvent() == nil)
    }

    /// The pending table full: the next SYN is refused with RST, and counted.
    @Test func pendingTableFullRefuses() throws {
        var t = try Self.intercepting { $0.maxPendingRequests = 2 }
        t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: 7000))
        t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: 7001))
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+0 > R. 0:0(0) ack 1")
        #expect(t.stack.pendingRequestCount == 2)
        #expect(t.counters.interceptPendingFull == 1 && t.counters.interceptRequests == 2)
    }

    /// The connection table full (pending requests count against it): refused with RST, and counted;
    /// the connection that holds the place keeps working.
    @Test func connectionTableFullRefuses() throws {
        var t = try Self.intercepting { $0.maxConnections = 1 }
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        let request = try Self.request(t)
        t.connection = try t.stack.accept(request.id, now: t.now)
        try t.run("""
            +0 > S. 0:0(0) ack 1 <mss 1460>
            +.01 < . 1:1(0) ack 1 win 65535
            """)
        let second = try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: 7000)
        t.inject(datagram: second)
        let refusal = t.takeSegments()
        #expect(refusal.count == 1 && refusal.first?.flags == [.rst, .ack] && refusal.first?.destinationPort == 7000)
        #expect(t.counters.interceptConnectionsFull == 1)
        try t.inject("+0 < P. 1:101(100) ack 1 win 65535")
        try t.expect("+.04 > . 1:1(0) ack 101")
        #expect(try t.app.read() == .data(TCPTester.payload(from: 1, count: 100)))
    }

    /// A SYN that reopens a 4-tuple in TIME-WAIT (RFC 6191 §2) is a new connection request, and the
    /// accepted incarnation's ISS is above the old one's SND.NXT (RFC 1122 §4.2.2.13).
    @Test func synInTimeWaitIsANewRequest() throws {
        var t = try Self.intercepting()
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 700 ecr 0,nop,wscale 7>")
        let request = try Self.request(t)
        t.connection = try t.stack.accept(request.id, now: t.now)
        try t.run("""
            +0 > S. 0:0(0) ack 1 <mss 1460,sackOK,TS val * ecr 700,nop,wscale 3>
            +.01 < . 1:1(0) ack 1 win 512 <nop,nop,TS val 710 ecr *>
            """)
        try t.app.close()
        try t.app.release()
        try t.expect("+0 > F. 1:1(0) ack 1 <nop,nop,TS val * ecr 710>")
        try t.inject("+.01 < F. 1:1(0) ack 2 win 512 <nop,nop,TS val 720 ecr *>")
        try t.expect("+0 > . 2:2(0) ack 2 <nop,nop,TS val * ecr 720>")
        #expect(t.stack.timeWaitCount == 1)
        while t.stack.nextEvent() != nil {}
        let oldSndNxt = try #require(t.iss) + UInt32(2)
        t.advance(by: .seconds(1))
        t.beginNewIncarnation()
        try t.inject("+0 < S 1000:1000(0) win 65535 <mss 1460,sackOK,TS val 2000 ecr 0,nop,wscale 7>")
        try t.expectNothing()
        let again = try Self.request(t)
        #expect(t.stack.timeWaitCount == 0 && again.source == request.source)
        t.connection = try t.stack.accept(again.id, now: t.now)
        try t.expect("+0 > S. 0:0(0) ack 1001 <mss 1460,sackOK,TS val * ecr 2000,nop,wscale 3>")
        #expect(try #require(t.iss).isAfter(oldSndNxt))
    }

    /// At the memory budget, a SYN is refused as a listener's would be (`memoryBudgetRefusal`), and
    /// a pending request costs a compact record, not a TCB.
    @Test func memoryBudgetRefusesRequests() throws {
        let budget = 64 * 1024
        var t = try TCPTester(.closed) { configuration in
            configuration.addresses = []
            configuration.interception = InterceptionConfiguration()
            configuration.memoryBudget = budget
        }
        #expect(Stack.connectionRequestEntryBytes <= Stack.halfOpenEntryBytes + 16)
        #expect(Stack.connectionRequestEntryBytes < Stack.connectionEntryBytes / 4)
        var port: UInt16 = 7000
        while t.counters.memoryBudgetRefusals == 0 && port < 9000 {
            t.inject(datagram: try t.datagram("+0 < S 0:0(0) win 65535 <mss 1460>", fromPort: port))
            port += 1
        }
        #expect(t.counters.memoryBudgetRefusals == 1)
        #expect(t.stack.memoryInUse <= budget)
        #expect(t.stack.pendingRequestCount == Int(port - 7000) - 1)
        let refusal = t.takeSegments()
        #expect(refusal.count == 1 && refusal.first?.flags == [.rst, .ack])
    }

    /// Normal mode is untouched: a SYN to an address that is not ours is not for us.
    @Test func normalModeDropsWhatIsNotForUs() throws {
        var t = try TCPTester(.closed) { $0.addresses = [.v4(IPv4Address(198, 18, 0, 9))] }
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        try t.expectNothing()
        #expect(t.counters.ipNotForUs == 1 && t.stack.nextEvent() == nil)
    }

    /// A flood of 100,000 SYNs to random addresses and ports: at most `maxPendingRequests` records,
    /// memory bounded by them, every other SYN refused and counted; at the deadline all are gone.
    @Test func synFloodToRandomAddressesStaysBounded() throws {
        var t = try Self.intercepting { $0.maxPendingRequests = 1024 }
        var random = SystemRandomNumberGenerator()
        let source = IPv4Address(198, 18, 0, 2)
        var header = TCPHeader(
            sourcePort: 1, destinationPort: 1, sequenceNumber: SequenceNumber(1), acknowledgmentNumber: SequenceNumber(0),
            flags: .syn, window: 65535, options: TCPOptions(maximumSegmentSize: 1460))
        var highest = 0
        for _ in 0..<100_000 {
            header.sourcePort = UInt16.random(in: 1024...65535, using: &random)
            header.destinationPort = UInt16.random(in: 1...65535, using: &random)
            header.sequenceNumber = SequenceNumber(UInt32.random(in: 0...UInt32.max, using: &random))
            let destination = IPv4Address(198, 19, UInt8.random(in: 0...255, using: &random), UInt8.random(in: 1...254, using: &random))
            t.stack.receive(
                PacketBuffer.tcpDatagram(header: header, payload: nil, source: .v4(source), destination: .v4(destination)),
                now: t.now)
            while t.stack.nextPacketToSend() != nil {}
            highest = max(highest, t.stack.pendingRequestCount)
        }
        #expect(highest == 1024)
        #expect(t.stack.memoryInUse <= 1024 * Stack.connectionRequestEntryBytes)
        #expect(t.counters.interceptRequests == 1024)
        #expect(t.counters.interceptPendingFull == 100_000 - 1024)
        #expect(t.stack.connectionCount == 0)
        while t.stack.nextEvent() != nil {}
        t.advance(by: .seconds(11))
        while t.stack.nextPacketToSend() != nil {}
        #expect(t.stack.pendingRequestCount == 0 && t.stack.memoryInUse == 0)
        #expect(t.counters.interceptDeadlineExpired == 1024)
        #expect(t.stack.nextDeadline == nil)
    }
}
