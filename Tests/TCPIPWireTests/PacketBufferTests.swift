import NIOCore
import Testing
import TCPIPWire

@Suite struct PacketBufferTests {
    @Test func makeLeavesHeadroom() {
        let buffer = PacketBuffer.make(payloadCapacity: 1460)
        #expect(buffer.readerIndex == PacketBuffer.headroom)
        #expect(buffer.readableBytes == 0)
        #expect(buffer.capacity >= PacketBuffer.headroom + 1460)
        // The largest headers fit: IPv6 (40) and TCP with full options (60).
        #expect(PacketBuffer.headroom >= IPv6Header.length + 60)
    }

    private let header = TCPHeader(
        sourcePort: 5001, destinationPort: 41234, sequenceNumber: SequenceNumber(0xFFFF_FFFE),
        acknowledgmentNumber: SequenceNumber(7), flags: [.psh, .ack], window: 512,
        options: TCPOptions(timestamps: TCPTimestamps(value: 9, echoReply: 8))
    )

    @Test(arguments: [(v4Source, v4Destination), (v6Source, v6Destination)])
    func tcpDatagramParsesBack(_ source: IPAddress, _ destination: IPAddress) throws {
        let payload = ByteBuffer(bytes: Array(0..<200))
        let datagram = PacketBuffer.tcpDatagram(
            header: header, payload: payload, source: source, destination: destination, timeToLive: 33
        )
        let ipLength: Int
        switch source {
        case .v4: ipLength = 20
        case .v6: ipLength = 40
        }
        #expect(datagram.readerIndex == PacketBuffer.headroom - header.encodedLength - ipLength)
        #expect(datagram.readableBytes == ipLength + header.encodedLength + 200)

        let ip = try IPDatagram.parse(datagram)
        #expect(ip.source == source && ip.destination == destination)
        #expect(ip.upperLayerProtocol == IPProtocolNumber.tcp)
        switch ip.header {
        case .v4(let v4):
            #expect(v4.timeToLive == 33)
            #expect(v4.dontFragment)
        case .v6(let v6):
            #expect(v6.hopLimit == 33)
        }
        var (parsed, parsedPayload) = try TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination)
        parsed.checksum = 0
        #expect(parsed == header)
        #expect(parsedPayload == payload)
    }

    /// RFC 3168 §5: the ECN field goes out in the IPv4 TOS / IPv6 Traffic Class low bits and parses
    /// back, with the header checksum still valid; the default is Not-ECT.
    @Test(arguments: [(v4Source, v4Destination), (v6Source, v6Destination)])
    func ecnFieldRoundTrips(_ source: IPAddress, _ destination: IPAddress) throws {
        for codepoint in ECNCodepoint.allCases {
            let datagram = PacketBuffer.tcpDatagram(
                header: header, payload: ByteBuffer(bytes: [1, 2, 3]), source: source, destination: destination,
                ecn: codepoint)
            let ip = try IPDatagram.parse(datagram, verifyChecksum: true)
            #expect(ip.ecn == codepoint)
            switch ip.header {
            case .v4(let v4): #expect(v4.typeOfService == codepoint.rawValue)
            case .v6(let v6): #expect(v6.trafficClass == codepoint.rawValue)
            }
        }
        let plain = PacketBuffer.tcpDatagram(header: header, payload: nil, source: source, destination: destination)
        #expect(try IPDatagram.parse(plain).ecn == .notECT)
        #expect(ECNCodepoint(trafficClass: 0xB9) == .ect1)
        #expect(ECNCodepoint.congestionExperienced.applied(to: 0xB8) == 0xBB)
        #expect(ECNCodepoint.ect0.isECNCapable && ECNCodepoint.ect1.isECNCapable)
        #expect(!ECNCodepoint.notECT.isECNCapable && !ECNCodepoint.congestionExperienced.isECNCapable)
    }

    /// IPv4 datagrams write both headers in one opening of the buffer (`prependWithIPv4`): the
    /// octets are the ones the two separate prepends write, checksums included, for option and
    /// payload lengths odd and even.
    @Test(arguments: [0, 1, 200, 1459], [false, true])
    func oneOpeningWritesWhatTwoPrependsWrite(payloadLength: Int, sack: Bool) throws {
        guard case .v4(let source) = v4Source, case .v4(let destination) = v4Destination else { return }
        var header = header
        if sack { header.options.sackBlocks = [SACKBlock(start: SequenceNumber(100), end: SequenceNumber(300))] }
        let payload = ByteBuffer(bytes: (0..<payloadLength).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        for checksum in [true, false] {
            let ip = IPv4Header(
                source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
                payloadLength: header.encodedLength + payloadLength, timeToLive: 64, typeOfService: 2)
            var two = PacketBuffer.make(payloadCapacity: payloadLength)
            two.writeImmutableBuffer(payload)
            header.prepend(to: &two, source: v4Source, destination: v4Destination, computeChecksum: checksum)
            ip.prepend(to: &two)
            var one = PacketBuffer.make(payloadCapacity: payloadLength)
            one.writeImmutableBuffer(payload)
            header.prependWithIPv4(
                to: &one, source: source, destination: destination, typeOfService: 2, computeChecksum: checksum)
            #expect(one == two)
            #expect(one.readerIndex == two.readerIndex)
        }
    }

    @Test func tcpDatagramWithoutPayload() throws {
        let datagram = PacketBuffer.tcpDatagram(
            header: header, payload: nil, source: v4Source, destination: v4Destination
        )
        let ip = try IPDatagram.parse(datagram)
        let (_, payload) = try TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination)
        #expect(payload.readableBytes == 0)
    }

    @Test func checksumOffload() throws {
        let datagram = PacketBuffer.tcpDatagram(
            header: header, payload: ByteBuffer(bytes: [1]), source: v4Source, destination: v4Destination,
            computeChecksum: false
        )
        // The IPv4 header checksum is always computed; only TCP's is offloaded.
        let ip = try IPDatagram.parse(datagram)
        #expect(throws: WireError.badChecksum) {
            try TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination)
        }
    }
}

@Suite struct PacketRecyclerTests {
    /// A buffer whose datagram nobody holds any more comes back, emptied, with its storage.
    @Test func reusesABufferNobodyElseHolds() {
        var recycler = PacketRecycler()
        var first = recycler.make(payloadCapacity: 1448)
        first.writeBytes(Array(repeating: 0xAB, count: 1448))
        let storage = first.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } - UInt(PacketBuffer.headroom)
        recycler.sent(first)
        first = ByteBuffer()
        let second = recycler.make(payloadCapacity: 1448)
        #expect(second.readerIndex == PacketBuffer.headroom && second.readableBytes == 0)
        let reused = second.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } - UInt(PacketBuffer.headroom)
        #expect(reused == storage)
    }

    /// While a receiver still holds a slice of the datagram, its buffer is left alone.
    @Test func leavesABufferStillHeldAlone() {
        var recycler = PacketRecycler()
        var first = recycler.make(payloadCapacity: 100)
        first.writeBytes(Array(0..<100))
        recycler.sent(first)
        let slice = first.getSlice(at: first.readerIndex, length: 100)!
        first = ByteBuffer()
        var second = recycler.make(payloadCapacity: 100)
        second.writeBytes(Array(repeating: 0xFF, count: 100))
        #expect(slice.getBytes(at: slice.readerIndex, length: 100) == Array(0..<100))
        recycler.sent(second)
        #expect(recycler.retainedBytes == 2 * second.storageCapacity)
    }

    /// A buffer of another size class is not handed out (it would pin more than a new one).
    @Test func doesNotReuseAnotherSize() {
        var recycler = PacketRecycler()
        recycler.sent(recycler.make(payloadCapacity: 60_000))
        let small = recycler.make(payloadCapacity: 0)
        #expect(small.storageCapacity < 1024)
        #expect(recycler.retainedBytes == 0)
    }

    /// Beyond its limit, the ring lets the oldest buffers go.
    @Test func keepsAtMostItsLimit() {
        var recycler = PacketRecycler(limitBytes: 8192)
        var held: [ByteBuffer] = []
        for _ in 0..<10 {
            let buffer = recycler.make(payloadCapacity: 1448)
            held.append(buffer)
            recycler.sent(buffer)
        }
        #expect(recycler.retainedBytes <= 8192)
    }
}
