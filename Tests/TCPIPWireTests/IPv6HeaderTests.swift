import NIOCore
import Testing
import TCPIPWire

@Suite struct IPv6HeaderTests {
    @Test func roundTrip() throws {
        var buffer = PacketBuffer.make(payloadCapacity: 10)
        buffer.writeBytes([UInt8](repeating: 0x5A, count: 10))
        var header = IPv6Header(
            source: IPv6Address("fe80::1")!, destination: IPv6Address("ff02::1:ff00:2")!,
            nextHeader: IPProtocolNumber.tcp, payloadLength: 10, hopLimit: 255
        )
        header.trafficClass = 0xB8
        header.flowLabel = 0xABCDE
        header.prepend(to: &buffer)
        #expect(buffer.readerIndex == PacketBuffer.headroom - 40)
        #expect(Array(buffer.bytes.prefix(8)) == [0x6B, 0x8A, 0xBC, 0xDE, 0, 10, 6, 255])
        let parsed = try IPv6Header.parse(buffer)
        #expect(parsed == header)
        let datagram = try IPDatagram.parse(buffer)
        #expect(datagram.payload.bytes == [UInt8](repeating: 0x5A, count: 10))
        #expect(datagram.source == .v6(header.source))
        #expect(datagram.upperLayerProtocol == IPProtocolNumber.tcp)
    }

    @Test func truncated() {
        let datagram = rawIPv6(nextHeader: 6, rest: [1, 2, 3])
        for length in 0..<IPv6Header.length {
            let prefix = datagram.getSlice(at: 0, length: length)!
            #expect(throws: WireError.truncated) { try IPv6Header.parse(prefix) }
            #expect(throws: WireError.truncated) { try IPDatagram.parse(prefix) }
        }
    }

    @Test func badVersion() {
        let v4 = rawIPv4(payload: [UInt8](repeating: 0, count: 30))
        #expect(throws: WireError.unsupportedVersion) { try IPv6Header.parse(v4) }
    }

    @Test func payloadLengthLies() throws {
        let long = rawIPv6(nextHeader: 6, rest: [1, 2], payloadLength: 3)
        #expect(throws: WireError.badTotalLength) { try IPDatagram.parse(long) }
        // Padding after the payload is trimmed.
        let padded = try IPDatagram.parse(rawIPv6(nextHeader: 6, rest: [1, 2, 3], payloadLength: 2))
        #expect(padded.payload.bytes == [1, 2])
    }

    /// Hop-by-hop, routing (no segments left), destination options: walked to the TCP segment behind them.
    @Test func walksExtensionHeaders() throws {
        let chain = extensionHeader(next: IPProtocolNumber.routing)
            + extensionHeader(next: IPProtocolNumber.destinationOptions, units: 1)
            + extensionHeader(next: IPProtocolNumber.tcp, units: 2)
        let datagram = try IPDatagram.parse(rawIPv6(nextHeader: IPProtocolNumber.hopByHop, rest: chain + [7, 7, 7]))
        #expect(datagram.upperLayerProtocol == IPProtocolNumber.tcp)
        #expect(datagram.payload.bytes == [7, 7, 7])
        guard case .v6(let header) = datagram.header else {
            Issue.record("expected an IPv6 header")
            return
        }
        #expect(header.nextHeader == IPProtocolNumber.hopByHop)
    }

    @Test func noNextHeader() throws {
        let rest = extensionHeader(next: IPProtocolNumber.noNextHeader)
        let datagram = try IPDatagram.parse(rawIPv6(nextHeader: IPProtocolNumber.destinationOptions, rest: rest))
        #expect(datagram.upperLayerProtocol == IPProtocolNumber.noNextHeader)
        #expect(datagram.payload.readableBytes == 0)
    }

    @Test func extensionHeaderRunsOffTheEnd() {
        // Says 24 octets; 8 are there.
        let long = Array(extensionHeader(next: 6, units: 2).prefix(8))
        #expect(throws: WireError.badExtensionHeader) {
            try IPDatagram.parse(rawIPv6(nextHeader: IPProtocolNumber.destinationOptions, rest: long))
        }
        // Fewer than 8 octets left for the header's fixed part.
        for length in 0..<8 {
            let short = Array(extensionHeader(next: 6).prefix(length))
            #expect(throws: WireError.badExtensionHeader) {
                try IPDatagram.parse(rawIPv6(nextHeader: IPProtocolNumber.hopByHop, rest: short))
            }
        }
        // The bytes are there, but the payload length ends before the header does.
        let cut = extensionHeader(next: 6, units: 1)
        #expect(throws: WireError.badExtensionHeader) {
            try IPDatagram.parse(rawIPv6(nextHeader: IPProtocolNumber.routing, rest: cut, payloadLength: 8))
        }
    }

    @Test func fragmentHeader() {
        let fragment: [UInt8] = [6, 0, 0, 1, 0, 0, 0, 42]
        #expect(throws: WireError.fragment) {
            try IPDatagram.parse(rawIPv6(nextHeader: IPProtocolNumber.fragment, rest: fragment))
        }
        // Behind another extension header too.
        #expect(throws: WireError.fragment) {
            try IPDatagram.parse(rawIPv6(
                nextHeader: IPProtocolNumber.hopByHop, rest: extensionHeader(next: IPProtocolNumber.fragment) + fragment
            ))
        }
    }

    /// RFC 8200 §4.3: hop-by-hop options only right after the IPv6 header.
    @Test func hopByHopOnlyFirst() {
        let chain = extensionHeader(next: IPProtocolNumber.hopByHop) + extensionHeader(next: 6)
        #expect(throws: WireError.badExtensionHeader) {
            try IPDatagram.parse(rawIPv6(nextHeader: IPProtocolNumber.destinationOptions, rest: chain))
        }
    }

    /// RFC 8200 §4.4: we are not a router, so a routing header with segments left is not for us.
    @Test func routingHeaderWithSegmentsLeft() {
        let routing = extensionHeader(next: 6, units: 2, segmentsLeft: 1)
        #expect(throws: WireError.badExtensionHeader) {
            try IPDatagram.parse(rawIPv6(nextHeader: IPProtocolNumber.routing, rest: routing))
        }
    }

    @Test func chainLengthLimit() throws {
        func chain(_ count: Int) -> [UInt8] {
            (0..<count).flatMap { index in
                extensionHeader(next: index == count - 1 ? 6 : IPProtocolNumber.destinationOptions)
            }
        }
        let limit = IPDatagram.maximumExtensionHeaders
        let eight = rawIPv6(nextHeader: IPProtocolNumber.destinationOptions, rest: chain(limit))
        #expect(try IPDatagram.parse(eight).upperLayerProtocol == 6)
        let nine = rawIPv6(nextHeader: IPProtocolNumber.destinationOptions, rest: chain(limit + 1))
        #expect(throws: WireError.badExtensionHeader) { try IPDatagram.parse(nine) }
    }
}
