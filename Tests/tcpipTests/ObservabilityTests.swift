import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// The shared formatting of Sources/TCPIP/Observability: tcpdump lines, netstat and ss tables,
/// the netstat -s report, and the hand-written number formatting under them.
@Suite struct ObservabilityTests {
    static let client = Endpoint(IPAddress("198.18.0.1")!, 41234)
    static let server = Endpoint(IPAddress("198.18.0.2")!, 5001)

    static func datagram(
        from source: Endpoint, to destination: Endpoint, seq: UInt32, ack: UInt32, flags: TCPFlags,
        window: UInt16, payload: Int = 0, options: TCPOptions = TCPOptions()
    ) -> ByteBuffer {
        let header = TCPHeader(
            sourcePort: source.port, destinationPort: destination.port, sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(ack), flags: flags, window: window, options: options)
        let bytes = payload > 0 ? ByteBuffer(repeating: 0x61, count: payload) : nil
        return PacketBuffer.tcpDatagram(header: header, payload: bytes, source: source.address, destination: destination.address)
    }

    /// tcpdump's numbering: SYNs absolute, then everything relative to the ISNs, across the 2^32 wrap.
    @Test func segmentsAreNumberedAsTcpdumpNumbersThem() {
        var formatter = SegmentFormatter(timeStyle: .seconds, optionsStyle: .synOnly)
        let clientISN: UInt32 = 4_294_967_000      // wraps after 296 octets
        let serverISN: UInt32 = 1_000
        let lines = [
            formatter.format(Self.datagram(
                from: Self.client, to: Self.server, seq: clientISN, ack: 0, flags: .syn, window: 65535,
                options: TCPOptions(maximumSegmentSize: 1460, windowScale: 7)), at: .zero),
            formatter.format(Self.datagram(
                from: Self.server, to: Self.client, seq: serverISN, ack: clientISN &+ 1, flags: [.syn, .ack],
                window: 8192, options: TCPOptions(maximumSegmentSize: 1460, windowScale: 0)),
                at: Instant(nanoseconds: 5_000_000)),
            formatter.format(Self.datagram(
                from: Self.client, to: Self.server, seq: clientISN &+ 1, ack: serverISN &+ 1, flags: [.psh, .ack],
                window: 512, payload: 1024), at: Instant(nanoseconds: 10_000_000)),
            formatter.format(Self.datagram(
                from: Self.server, to: Self.client, seq: serverISN &+ 1, ack: clientISN &+ 1025, flags: .ack,
                window: 0), at: Instant(nanoseconds: 12_000_250_000)),
        ]
        #expect(lines == [
            "0.000000 IP 198.18.0.1.41234 > 198.18.0.2.5001: Flags [S], seq 4294967000, win 65535, "
                + "options [mss 1460,nop,wscale 7], length 0",
            "0.005000 IP 198.18.0.2.5001 > 198.18.0.1.41234: Flags [S.], seq 1000, ack 4294967001, win 8192, "
                + "options [mss 1460,nop,wscale 0], length 0",
            "0.010000 IP 198.18.0.1.41234 > 198.18.0.2.5001: Flags [P.], seq 1:1025, ack 1, win 512, length 1024",
            "12.000250 IP 198.18.0.2.5001 > 198.18.0.1.41234: Flags [.], ack 1025, win 0, length 0",
        ])
    }

    /// Windows in bytes once both SYNs carried the option (RFC 7323 §2.2); SYN windows never scaled.
    @Test func advertisedWindowsAreScaledAfterTheHandshake() throws {
        var formatter = SegmentFormatter()
        let syn = try #require(try CapturedSegment.parse(Self.datagram(
            from: Self.client, to: Self.server, seq: 1, ack: 0, flags: .syn, window: 65535,
            options: TCPOptions(windowScale: 7))))
        _ = formatter.format(syn, at: .zero)
        #expect(formatter.advertisedWindow(syn) == 65535)
        let data = try #require(try CapturedSegment.parse(Self.datagram(
            from: Self.client, to: Self.server, seq: 2, ack: 1, flags: .ack, window: 100)))
        #expect(formatter.advertisedWindow(data) == 100)       // the server has not agreed yet
        _ = formatter.format(try #require(try CapturedSegment.parse(Self.datagram(
            from: Self.server, to: Self.client, seq: 0, ack: 2, flags: [.syn, .ack], window: 8192,
            options: TCPOptions(windowScale: 2)))), at: .zero)
        #expect(formatter.advertisedWindow(data) == 100 << 7)
        let reply = try #require(try CapturedSegment.parse(Self.datagram(
            from: Self.server, to: Self.client, seq: 1, ack: 2, flags: .ack, window: 10)))
        #expect(formatter.advertisedWindow(reply) == 40)
    }

    @Test func ipv6IsPrintedAsIP6() {
        var formatter = SegmentFormatter(timeStyle: .clock)
        let line = formatter.format(Self.datagram(
            from: Endpoint(IPAddress("2001:db8::2")!, 5001), to: Endpoint(IPAddress("2001:db8::1")!, 41234),
            seq: 7, ack: 9, flags: .ack, window: 0), at: Instant(nanoseconds: 3_723_000_001_000))
        #expect(line == "01:02:03.000001 IP6 2001:db8::2.5001 > 2001:db8::1.41234: Flags [.], ack 9, win 0, length 0")
    }

    @Test func garbageIsReportedNotTrapped() {
        var formatter = SegmentFormatter(timeStyle: .none)
        #expect(formatter.format(ByteBuffer(bytes: [0x45, 0, 0]), at: .zero) == "IP malformed datagram (truncated), length 3")
        #expect(formatter.format(ByteBuffer(), at: .zero).hasPrefix("IP malformed datagram"))
    }

    @Test func netstatTableFitsEightyColumns() {
        var table = NetstatTable()
        table.rows.append(NetstatTable.Row(
            proto: "tcp", receiveQueue: 8192, sendQueue: 262_144, local: "198.18.0.2:5001",
            foreign: "198.18.0.1:49233", state: "ESTABLISHED"))
        table.addListener(Self.server)
        #expect(table.lines == [
            "Proto Recv-Q Send-Q Local Address           Foreign Address         State",
            "tcp     8192 262144 198.18.0.2:5001         198.18.0.1:49233        ESTABLISHED",
            "tcp        0      0 198.18.0.2:5001         0.0.0.0:*               LISTEN",
        ])
        #expect(table.lines.allSatisfy { $0.count <= 80 })
    }

    @Test func fixedPointFormatting() {
        #expect(TextFormat.fixed(12345, scale: 3, digits: 1) == "12.3")
        #expect(TextFormat.fixed(12355, scale: 3, digits: 2) == "12.36")
        #expect(TextFormat.fixed(-5, scale: 3, digits: 3) == "-0.005")
        #expect(TextFormat.fixed(.min, scale: 9, digits: 0) == "-9223372037")
        #expect(TextFormat.milliseconds(.microseconds(10_041)) == "10.041")
        #expect(TextFormat.seconds(Instant(nanoseconds: 12_000_250_999)) == "12.000250")
        #expect(TextFormat.left("ab", 4) + "|" == "ab  |")
        #expect(TextFormat.right("abcdef", 4) == "abcdef")
    }

    @Test func countersReportLeavesOutZeros() {
        var counters = StackCounters()
        counters.segmentsSent = 12
        counters.zeroWindowProbesSent = 3
        #expect(counters.report() == [
            "Tcp:", "    12 segments sent out", "TcpExt:", "    3 zero-window probes sent",
        ])
        // A line per counter and per section title (Ip, Netfilter, Icmp, IcmpMsg, Icmp6, Udp, Intercept,
        // Tcp, TcpExt); IcmpMsg repeats eight Icmp counts by type number, as netstat does.
        #expect(counters.report(includeZero: true).count == counters.all.count + 9 + 8)
    }
}
