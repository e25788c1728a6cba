import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// UDP and ICMP in the traces and tables: tcpdump's notation and netstat's rows.
@Suite struct IPLayerObservabilityTests {
    static let client4 = IPv4Address(198, 18, 0, 1)
    static let server4 = IPv4Address(198, 18, 0, 2)
    static let client6 = IPv6Address("2001:db8::1")!
    static let server6 = IPv6Address("2001:db8::2")!

    @Test func udpAndICMPArePrintedAsTcpdumpPrintsThem() {
        var formatter = SegmentFormatter(timeStyle: .none)
        let udp = PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: 40000, destinationPort: 7), payload: ByteBuffer(string: "hello"),
            source: .v4(Self.client4), destination: .v4(Self.server4))
        #expect(formatter.format(udp, at: .zero) == "IP 198.18.0.1.40000 > 198.18.0.2.7: UDP, length 5")

        let ping = PacketBuffer.icmpv4Datagram(
            message: .echoRequest(identifier: 7, sequenceNumber: 1), body: ByteBuffer(repeating: 0, count: 56),
            source: Self.client4, destination: Self.server4)
        #expect(formatter.format(ping, at: .zero) == "IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 7, seq 1, length 64")

        let udp6 = PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: 40000, destinationPort: 9), payload: ByteBuffer(string: "x"),
            source: .v6(Self.client6), destination: .v6(Self.server6))
        let unreachable = PacketBuffer.icmpv6Datagram(
            message: .destinationUnreachable(.portUnreachable), body: udp6, source: Self.server6, destination: Self.client6)
        #expect(formatter.format(unreachable, at: .zero)
            == "IP6 2001:db8::2 > 2001:db8::1: ICMP6, destination unreachable, unreachable port 2001:db8::2 udp port 9, length 57")

        var unknown = PacketBuffer.make(payloadCapacity: 12)
        unknown.writeBytes([UInt8](repeating: 1, count: 12))
        PacketBuffer.prependIPHeader(to: &unknown, source: .v4(Self.client4), destination: .v4(Self.server4), protocolNumber: 253)
        #expect(formatter.format(unknown, at: .zero) == "IP 198.18.0.1 > 198.18.0.2: ip-proto-253 12")
    }

    @Test func udpEndpointsAreRowsOfTheTable() throws {
        let stack = Stack(StackConfiguration(addresses: [.v4(Self.server4), .v6(Self.server6)]))
        let server = try stack.bindUDP(port: 7)
        _ = try stack.connectUDP(to: Endpoint(.v6(Self.client6), 53))
        stack.receive(PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: 40000, destinationPort: 7), payload: ByteBuffer(string: "hello"),
            source: .v4(Self.client4), destination: .v4(Self.server4)), now: .zero)
        var table = NetstatTable()
        for endpoint in stack.allUDPEndpoints {
            table.add(try #require(stack.udpStatus(endpoint)))
        }
        let lines = table.lines
        #expect(lines[1].hasPrefix("udp        5      0 *:7                     *:*"))
        #expect(lines[2].hasPrefix("udp6       0      0 [2001:db8::2]:"))
        #expect(lines[2].contains(" [2001:db8::1]:53 ") && lines[2].hasSuffix(" ESTABLISHED"))
        _ = server
    }
}
