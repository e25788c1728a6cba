import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// Requirements of RFC 9293's summary table (Appendix B) that no other test shows on its own;
/// `docs/RFC9293-REQUIREMENTS.md` cites each by its number.
@Suite struct RequirementSummaryTests {
    // MARK: Window

    /// MUST-37 (§3.8.6.1): "As long as the receiving TCP peer continues to send acknowledgments in
    /// response to the probe segments, the sending TCP peer MUST allow the connection to stay open."
    /// Three hours of a zero window, every probe answered: the connection is still there, and the
    /// data goes when the window opens.
    @Test func zeroWindowStaysOpenWhileProbesAreAnswered() throws {
        var t = try TCPTester(.established) { $0.tcp.maximumRetransmissions = 3 }
        try t.inject("+0 < . 1:1(0) ack 1 win 0")
        _ = try t.app.send(1000)
        var probes = 0
        while t.elapsed < .seconds(3 * 3600) {
            t.advance(by: .seconds(30))
            let sent = t.takeOutput()
            #expect(sent.allSatisfy { $0.contains("1:2(1)") }, "only probes: \(sent)")
            probes += sent.count
            try t.inject("+0 < . 1:1(0) ack 1 win 0")
        }
        #expect(probes > 3)
        #expect(t.state == .established)
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        try t.expect("+0 > P. 1:1001(1000) ack 1")
    }

    /// MUST-66 (§3.4): "A TCP receiver MUST process the RST and URG fields of all incoming segments,
    /// even when the receive window is zero."
    @Test func resetIsTakenInAZeroWindow() throws {
        var t = try TCPTester(.established) { $0.tcp.receiveBufferSize = 2000 }
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.inject("+0 < . 1001:2001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 2001 win 0")
        try t.inject("+0 < R. 2001:2001(0) ack 1 win 0")
        try t.expectNothing()
        #expect(t.state == .closed)
        #expect(t.status?.error == .connectionReset)
    }

    // MARK: Closing connections

    /// SHLD-2 (§3.5.3): "TCP implementations SHOULD allow a received RST segment to include data."
    @Test func resetCarryingDataResets() throws {
        var t = try TCPTester(.established)
        try t.inject("+0 < R. 1:21(20) ack 1 win 65535")
        try t.expectNothing()
        #expect(t.state == .closed)
        #expect(throws: TCPError.connectionReset) { try t.app.read() }
    }

    // MARK: Opening connections

    /// MUST-41 (§3.9.1.1): a passive OPEN "either creates a new connection record in LISTEN state,
    /// or it returns an error; it MUST NOT affect any previously created connection record."
    @Test func secondListenOnAPortFailsAndLeavesTheFirst() throws {
        var t = try TCPTester(.listen)
        #expect(throws: TCPError.addressInUse) { _ = try t.stack.listen(on: TCPTester.listenPort) }
        try t.inject("+0 < S 0:0(0) win 65535 <mss 1460>")
        try t.expect("+0 > S. 0:0(0) ack 1")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535")
        #expect(t.state == .established)
    }

    /// MUST-42 (§3.9.1.1): an application can "LISTEN on a port while a connection block with the
    /// same local port is in SYN-SENT or SYN-RECEIVED state". Both go on: the connection's segments
    /// reach it, a SYN from elsewhere reaches the listener.
    @Test func listenOnThePortOfAConnectionInSynSent() throws {
        var t = try TCPTester(.synSent)
        try t.expect("+0 > S 0:0(0)")
        let port = try #require(t.status?.local.port)
        let listener = try t.stack.listen(on: port)
        let other = IPAddress.v4(IPv4Address(198, 18, 0, 3))
        let header = TCPHeader(
            sourcePort: 6000, destinationPort: port, sequenceNumber: SequenceNumber(1000),
            acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 65535,
            options: TCPOptions(maximumSegmentSize: 1460))
        // Straight to the stack: the answer goes to another peer than the tester's.
        t.stack.receive(PacketBuffer.tcpDatagram(
            header: header, payload: nil, source: other, destination: t.localAddress, computeChecksum: false), now: .zero)
        let answer = try IPDatagram.parse(try #require(t.stack.nextPacketToSend()))
        #expect(answer.destination == other)
        let (synAck, _) = try TCPHeader.parse(
            answer.payload, source: answer.source, destination: answer.destination, verifyChecksum: false)
        #expect(synAck.flags == [.syn, .ack])
        #expect(synAck.destinationPort == 6000)
        #expect(t.stack.nextPacketToSend() == nil)
        #expect(t.stack.halfOpenCount == 1)
        #expect(t.stack.accept(listener) == nil)
        #expect(t.state == .synSent)
    }

    /// MUST-43 (§3.9.1.1): OPEN takes an optional local address; MUST-44: without one, IP chooses
    /// (the first address of the remote's family); MUST-45: every later segment leaves from the
    /// address the first one did.
    @Test func connectFromAChosenLocalAddress() throws {
        let first = IPAddress.v4(IPv4Address(198, 18, 0, 1))
        let second = IPAddress.v4(IPv4Address(198, 18, 0, 5))
        let remote = Endpoint(.v4(IPv4Address(198, 18, 0, 2)), 80)
        let stack = Stack(StackConfiguration(addresses: [first, second], checksumOffload: true))
        let chosen = try stack.connect(to: remote, from: second, now: .zero)
        let unspecified = try stack.connect(to: remote, now: .zero)
        stack.abort(chosen, now: .zero)
        stack.abort(unspecified, now: .zero)
        var sources: [IPAddress] = []
        while let datagram = stack.nextPacketToSend() {
            sources.append(try IPDatagram.parse(datagram).source)
        }
        // The two SYNs; an ABORT in SYN-SENT sends nothing.
        #expect(sources == [second, first])
        #expect(throws: TCPError.addressUnavailable) {
            _ = try stack.connect(to: remote, from: .v4(IPv4Address(198, 18, 0, 9)), now: .zero)
        }
    }

    /// MUST-46 (§3.9.1.1): "A TCP implementation MUST reject as an error a local OPEN call for an
    /// invalid remote IP address (e.g., a broadcast or multicast address)."
    @Test(arguments: ["255.255.255.255", "224.0.0.1", "239.1.2.3", "0.0.0.0", "ff02::1", "::"])
    func openToBroadcastOrMulticastIsRefused(address: String) throws {
        let stack = Stack(StackConfiguration(
            addresses: [.v4(IPv4Address(198, 18, 0, 1)), .v6(IPv6Address("2001:db8::1")!)], checksumOffload: true))
        let remote = try #require(IPAddress(address))
        #expect(throws: TCPError.invalidArgument) { _ = try stack.connect(to: Endpoint(remote, 80), now: .zero) }
        #expect(stack.nextPacketToSend() == nil)
        #expect(stack.connectionCount == 0)
    }

    /// MUST-57 (§3.9.2.3): "A TCP implementation MUST silently discard an incoming SYN segment that
    /// is addressed to a broadcast or multicast address."
    @Test(arguments: ["255.255.255.255", "224.0.0.1", "198.18.0.255"])
    func synToBroadcastOrMulticastIsDiscarded(address: String) throws {
        var t = try TCPTester(.listen)
        let destination = IPAddress.v4(try #require(IPv4Address(address)))
        let header = TCPHeader(
            sourcePort: TCPTester.remotePort, destinationPort: TCPTester.listenPort, sequenceNumber: SequenceNumber(1),
            acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 65535,
            options: TCPOptions(maximumSegmentSize: 1460))
        t.inject(datagram: PacketBuffer.tcpDatagram(
            header: header, payload: nil, source: t.remoteAddress, destination: destination, computeChecksum: false))
        try t.expectNothing()
        #expect(t.stack.halfOpenCount == 0)
        #expect(t.counters.ipNotForUs == 1)
    }

    /// MUST-63 (§3.9.2.3): "An incoming SYN with an invalid source address MUST be ignored" — our own
    /// address, a broadcast, multicast or unspecified one (RFC 1122 §3.2.1.3); and port 0.
    @Test(arguments: [
        ("198.18.0.1", TCPTester.remotePort), ("255.255.255.255", TCPTester.remotePort), ("224.0.0.9", TCPTester.remotePort),
        ("0.0.0.0", TCPTester.remotePort), ("198.18.0.2", 0),
    ] as [(String, UInt16)])
    func synFromAnInvalidSourceIsIgnored(address: String, port: UInt16) throws {
        var t = try TCPTester(.listen)
        let source = IPAddress.v4(try #require(IPv4Address(address)))
        let header = TCPHeader(
            sourcePort: port, destinationPort: TCPTester.listenPort, sequenceNumber: SequenceNumber(1),
            acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 65535,
            options: TCPOptions(maximumSegmentSize: 1460))
        t.inject(datagram: PacketBuffer.tcpDatagram(
            header: header, payload: nil, source: source, destination: t.localAddress, computeChecksum: false))
        try t.expectNothing()
        #expect(t.stack.halfOpenCount == 0)
        #expect(t.counters.badSegments == 1)
    }

    // MARK: Sending data

    /// MUST-49 (§3.9.2): "The TTL value used to send TCP segments MUST be configurable" — and the
    /// IPv6 hop limit with it.
    @Test(arguments: [false, true])
    func timeToLiveIsConfigurable(ipv6: Bool) throws {
        let t = try TCPTester(.closed, peer: .init(ipv6: ipv6)) { $0.timeToLive = 17 }
        let connection = try t.stack.connect(to: Endpoint(t.remoteAddress, TCPTester.remotePort), now: .zero)
        let datagram = try #require(t.stack.nextPacketToSend())
        switch try IPDatagram.parse(datagram).header {
        case .v4(let header): #expect(header.timeToLive == 17 && !ipv6)
        case .v6(let header): #expect(header.hopLimit == 17 && ipv6)
        }
        t.stack.abort(connection, now: .zero)
        #expect(StackConfiguration(addresses: []).timeToLive == 64)
    }

    // MARK: Connection failures

    /// SHLD-11 (§3.8.3): "The value of R2 SHOULD correspond to at least 100 seconds." With the
    /// defaults, data unacknowledged from the start (RTO 1 s) is still being retransmitted after
    /// 100 s; the connection ends later, with ETIMEDOUT.
    @Test func defaultRetryLimitOutlastsOneHundredSeconds() throws {
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        _ = try t.app.send(100)
        t.advance(by: .seconds(100))
        #expect(t.state == .established)
        #expect(t.takeOutput().count > 5)
        t.advance(by: .seconds(3600))
        #expect(t.state == .closed)
        #expect(t.status?.error == .timedOut)
        _ = t.takeOutput()
    }

    /// MUST-23 (§3.8.3): R2 for a SYN "MUST be set large enough to provide retransmission of the
    /// segment for at least 3 minutes". Not met by default: 6 retransmissions (Linux's
    /// tcp_syn_retries) at 1, 3, 7, 15, 31 and 63 s, and the RTO capped at 60 s, give up at 123 s;
    /// 7 would last until 183 s.
    @Test(arguments: [(6, 123), (7, 183)] as [(Int, Int64)])
    func synRetryLimitInSeconds(retransmissions: Int, seconds: Int64) throws {
        var t = try TCPTester(.synSent) { $0.tcp.maximumSYNRetransmissions = retransmissions }
        #expect(StackConfiguration(addresses: []).tcp.maximumSYNRetransmissions == 6)
        t.advance(by: .milliseconds(seconds * 1000 - 1))
        #expect(t.state == .synSent)
        t.advance(by: .milliseconds(1))
        #expect(t.state == .closed)
        #expect(t.status?.error == .timedOut)
        #expect(t.takeOutput().count == 1 + retransmissions)
    }

    // MARK: Keep-alives

    /// MUST-25 (§3.8.4): keep-alives "MUST default to off": an idle connection sends nothing,
    /// however long it stays idle.
    @Test func keepalivesAreOffByDefault() throws {
        var t = try TCPTester(.established)
        try t.expectNothing(for: .seconds(24 * 3600))
        #expect(t.state == .established)
        #expect(t.counters.keepaliveProbesSent == 0)
    }

    /// MUST-28 (§3.8.4): the interval "MUST default to no less than two hours"; MUST-26: it counts
    /// from the last segment received. Turned on with the defaults, the first probe goes two hours
    /// after the peer was last heard from.
    @Test func defaultKeepaliveWaitsTwoHours() throws {
        var t = try TCPTester(.established)
        t.stack.setKeepalive(try #require(t.connection), Keepalive(), now: .zero)
        try t.inject("+3600 < . 1:1(0) ack 1 win 65535")
        try t.expectNothing(for: .seconds(7199))
        try t.expect("+1 > . 0:0(0) ack 1")
        #expect(t.elapsed == .seconds(3600 + 7200))
    }

    // MARK: ICMP

    /// MUST-55 (§3.9.2.2): Source Quench is silently discarded; MUST-56: a soft error (Destination
    /// Unreachable code 1, Time Exceeded, Parameter Problem) does not abort the connection. Each
    /// message quotes the segment in flight, as a router would.
    @Test func icmpErrorsLeaveTheConnectionAlone() throws {
        var t = try TCPTester(.established)
        _ = try t.app.send(10)
        try t.expect("+0 > P. 1:11(10) ack 1")
        let status = try #require(t.status)
        guard case .v4(let from) = t.remoteAddress, case .v4(let to) = t.localAddress else { return }
        for (type, code) in [(4, 0), (3, 1), (11, 0), (12, 0)] as [(UInt8, UInt8)] {
            // The ICMP header, then our datagram's IP header and the first eight octets of its TCP header.
            var message = PacketBuffer.make(payloadCapacity: 36)
            message.writeBytes([type, code, 0, 0, 0, 0, 0, 0])
            let quoted = PacketBuffer.tcpDatagram(
                header: TCPHeader(
                    sourcePort: TCPTester.listenPort, destinationPort: TCPTester.remotePort,
                    sequenceNumber: SequenceNumber(status.sendUnacknowledged),
                    acknowledgmentNumber: SequenceNumber(status.receiveNext), flags: [.psh, .ack], window: 65535),
                payload: TCPTester.payload(from: 1, count: 10), source: t.localAddress, destination: t.remoteAddress,
                computeChecksum: false)
            message.writeImmutableBuffer(try #require(quoted.getSlice(at: quoted.readerIndex, length: 28)))
            IPv4Header(source: from, destination: to, protocolNumber: IPProtocolNumber.icmp, payloadLength: 36)
                .prepend(to: &message)
            t.inject(datagram: message)
        }
        try t.expectNothing()
        #expect(t.state == .established)
        try t.inject("+.1 < . 1:1(0) ack 11 win 65535")
        _ = try t.app.send(10)
        try t.expect("+0 > P. 11:21(10) ack 1")
        #expect(t.status?.error == nil)
    }
}
