import NIOCore
import TCPIP
import TCPIPWire

/// A stack at 198.18.0.2 and 2001:db8::2 and a peer at 198.18.0.1 and 2001:db8::1, with datagrams
/// built by the wire layer and what the stack sends decoded back.
struct IPTester {
    static let local4 = IPv4Address(198, 18, 0, 2)
    static let remote4 = IPv4Address(198, 18, 0, 1)
    static let local6 = IPv6Address("2001:db8::2")!
    static let remote6 = IPv6Address("2001:db8::1")!

    let stack: Stack
    var now = Instant.zero

    init(configure: (inout StackConfiguration) -> Void = { _ in }) {
        var configuration = StackConfiguration(addresses: [.v4(Self.local4), .v6(Self.local6)], seed: 18)
        configure(&configuration)
        stack = Stack(configuration)
    }

    static func local(_ family: Int) -> IPAddress { family == 4 ? .v4(local4) : .v6(local6) }
    static func remote(_ family: Int) -> IPAddress { family == 4 ? .v4(remote4) : .v6(remote6) }

    func inject(_ datagram: ByteBuffer) {
        stack.receive(datagram, now: now)
    }

    /// Everything the stack has queued for the link, parsed.
    func sent() throws -> [IPDatagram] {
        var datagrams: [IPDatagram] = []
        while let packet = stack.nextPacketToSend() {
            datagrams.append(try IPDatagram.parse(packet))
        }
        return datagrams
    }

    /// A UDP datagram from the peer (`family` 4 or 6) to the stack.
    static func udp(
        family: Int, from sourcePort: UInt16 = 40000, to port: UInt16, payload: [UInt8], source: IPAddress? = nil
    ) -> ByteBuffer {
        PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: sourcePort, destinationPort: port), payload: ByteBuffer(bytes: payload),
            source: source ?? remote(family), destination: local(family))
    }

    /// An echo request from the peer to the stack.
    static func echoRequest(family: Int, identifier: UInt16 = 7, sequence: UInt16 = 1, data: [UInt8]) -> ByteBuffer {
        if family == 4 {
            PacketBuffer.icmpv4Datagram(
                message: .echoRequest(identifier: identifier, sequenceNumber: sequence), body: ByteBuffer(bytes: data),
                source: remote4, destination: local4)
        } else {
            PacketBuffer.icmpv6Datagram(
                message: .echoRequest(identifier: identifier, sequenceNumber: sequence), body: ByteBuffer(bytes: data),
                source: remote6, destination: local6)
        }
    }

    /// An IP datagram of protocol `protocolNumber` carrying `payload`.
    static func raw(family: Int, protocolNumber: UInt8, payload: [UInt8]) -> ByteBuffer {
        var buffer = PacketBuffer.make(payloadCapacity: payload.count)
        buffer.writeBytes(payload)
        PacketBuffer.prependIPHeader(
            to: &buffer, source: remote(family), destination: local(family), protocolNumber: protocolNumber)
        return buffer
    }
}
