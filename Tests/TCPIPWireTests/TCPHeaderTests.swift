import NIOCore
import Testing
import TCPIPWire

@Suite struct TCPHeaderTests {
    private var synAck: TCPHeader {
        TCPHeader(
            sourcePort: 80, destinationPort: 40000, sequenceNumber: SequenceNumber(0xFFFF_FFF0),
            acknowledgmentNumber: SequenceNumber(0x1000), flags: [.syn, .ack], window: 65535,
            options: TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                                timestamps: TCPTimestamps(value: 1, echoReply: 0))
        )
    }

    private func emit(_ header: TCPHeader, payload: [UInt8], source: IPAddress, destination: IPAddress,
                      computeChecksum: Bool = true) -> ByteBuffer {
        var buffer = PacketBuffer.make(payloadCapacity: payload.count)
        buffer.writeBytes(payload)
        header.prepend(to: &buffer, source: source, destination: destination, computeChecksum: computeChecksum)
        return buffer
    }

    @Test(arguments: [(v4Source, v4Destination), (v6Source, v6Destination)])
    func roundTrip(_ source: IPAddress, _ destination: IPAddress) throws {
        for payload in [[], [0x42], Array(0..<255)] as [[UInt8]] {
            var header = synAck
            header.urgentPointer = 7
            let segment = emit(header, payload: payload, source: source, destination: destination)
            #expect(segment.readableBytes == header.encodedLength + payload.count)
            var (parsed, parsedPayload) = try TCPHeader.parse(segment, source: source, destination: destination)
            #expect(parsedPayload.bytes == payload)
            #expect(parsed.checksum != 0)
            parsed.checksum = 0
            #expect(parsed == header)
        }
    }

    @Test func fieldsOnTheWire() {
        var header = TCPHeader(
            sourcePort: 0x1234, destinationPort: 0x5678, sequenceNumber: SequenceNumber(0x0102_0304),
            acknowledgmentNumber: SequenceNumber(0x0506_0708), flags: [.psh, .ack], window: 0x9ABC
        )
        header.urgentPointer = 0xDEF0
        let segment = emit(header, payload: [], source: v4Source, destination: v4Destination, computeChecksum: false)
        let bytes = segment.bytes
        #expect(bytes == [0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4, 5, 6, 7, 8, 0x50, 0x18, 0x9A, 0xBC, 0, 0, 0xDE, 0xF0])
    }

    /// A segment whose checksum was computed by hand: the fields of fieldsOnTheWire from 198.18.0.1 to 198.18.0.2.
    /// Pseudo-header c612+0001+c612+0002+0006+0014 = 0x18c41; header 1234+5678+0102+0304+0506+0708+5018+9abc+def0
    /// = 0x24284; together 0x3cec5, folded 0xcec8, complemented 0x3137.
    @Test func knownChecksum() throws {
        var header = TCPHeader(
            sourcePort: 0x1234, destinationPort: 0x5678, sequenceNumber: SequenceNumber(0x0102_0304),
            acknowledgmentNumber: SequenceNumber(0x0506_0708), flags: [.psh, .ack], window: 0x9ABC
        )
        header.urgentPointer = 0xDEF0
        let segment = emit(header, payload: [], source: v4Source, destination: v4Destination)
        #expect(segment.getInteger(at: segment.readerIndex + 16, as: UInt16.self) == 0x3137)
        #expect(try TCPHeader.parse(segment, source: v4Source, destination: v4Destination).header.checksum == 0x3137)
    }

    @Test func checksumOffloadLeavesZero() throws {
        let segment = emit(
            synAck, payload: [1, 2, 3], source: v4Source, destination: v4Destination, computeChecksum: false
        )
        #expect(segment.getInteger(at: segment.readerIndex + 16, as: UInt16.self) == 0)
        #expect(throws: WireError.badChecksum) {
            try TCPHeader.parse(segment, source: v4Source, destination: v4Destination)
        }
        let parsed = try TCPHeader.parse(segment, source: v4Source, destination: v4Destination, verifyChecksum: false)
        #expect(parsed.payload.bytes == [1, 2, 3])
    }

    /// The checksum is summed through the same opening of the buffer as the fields: a flipped bit
    /// anywhere in header, options or payload is caught, over both families; with verification
    /// off the same segment parses.
    @Test(arguments: [(v4Source, v4Destination), (v6Source, v6Destination)])
    func flippedBitAnywhere(_ source: IPAddress, _ destination: IPAddress) throws {
        let good = emit(synAck, payload: Array(0..<13), source: source, destination: destination)
        for offset in 0..<good.readableBytes {
            var flipped = good
            let octet = good.getInteger(at: good.readerIndex + offset, as: UInt8.self)!
            flipped.setInteger(octet ^ 0x10, at: good.readerIndex + offset)
            #expect(throws: WireError.self) {
                try TCPHeader.parse(flipped, source: source, destination: destination)
            }
            if offset < 12 || (offset > 12 && offset < TCPHeader.minimumLength) || offset >= synAck.encodedLength {
                // (Not the data offset's octet, nor the options': they change what parses, not only
                // the sum.)
                #expect(throws: Never.self) {
                    try TCPHeader.parse(flipped, source: source, destination: destination, verifyChecksum: false)
                }
            }
        }
    }

    @Test func badChecksum() {
        let segment = rawTCPSegment(payload: [1, 2, 3], correctChecksum: false)
        #expect(throws: WireError.badChecksum) {
            try TCPHeader.parse(segment, source: v4Source, destination: v4Destination)
        }
        // The right bytes with the wrong pseudo-header: another destination.
        let good = rawTCPSegment(payload: [1, 2, 3])
        #expect(throws: WireError.badChecksum) {
            try TCPHeader.parse(good, source: v4Source, destination: .v4(IPv4Address(198, 18, 0, 3)))
        }
        // A flipped bit in the payload.
        var flipped = good
        flipped.setInteger(UInt8(3 ^ 0x40), at: flipped.writerIndex - 1)
        #expect(throws: WireError.badChecksum) {
            try TCPHeader.parse(flipped, source: v4Source, destination: v4Destination)
        }
    }

    @Test func truncated() {
        let segment = rawTCPSegment()
        for length in 0..<TCPHeader.minimumLength {
            let prefix = segment.getSlice(at: 0, length: length)!
            #expect(throws: WireError.truncated) {
                try TCPHeader.parse(prefix, source: v4Source, destination: v4Destination, verifyChecksum: false)
            }
        }
    }

    @Test func badDataOffset() {
        for words in 0..<5 {
            #expect(throws: WireError.badDataOffset) {
                try TCPHeader.parse(rawTCPSegment(dataOffsetWords: words), source: v4Source, destination: v4Destination)
            }
        }
        // Data offset 6 (24 octets) on a 20-octet segment; 15 on a 40-octet one.
        #expect(throws: WireError.badDataOffset) {
            try TCPHeader.parse(rawTCPSegment(dataOffsetWords: 6), source: v4Source, destination: v4Destination)
        }
        #expect(throws: WireError.badDataOffset) {
            try TCPHeader.parse(rawTCPSegment(dataOffsetWords: 15, payload: [UInt8](repeating: 1, count: 20)),
                                source: v4Source, destination: v4Destination)
        }
    }

    @Test func synWithFinIsInvalid() {
        #expect(throws: WireError.invalidFlags) {
            try TCPHeader.parse(rawTCPSegment(flags: 0x03), source: v4Source, destination: v4Destination)
        }
        #expect(throws: WireError.invalidFlags) {
            try TCPHeader.parse(rawTCPSegment(flags: 0xFF), source: v4Source, destination: v4Destination)
        }
    }

    /// FreeBSD's drop_synfin=0 (TCPConfiguration.acceptsSYNWithFIN): the segment parses as sent.
    @Test func synWithFinParsesWhenAccepted() throws {
        let (header, _) = try TCPHeader.parse(
            rawTCPSegment(flags: 0x03), source: v4Source, destination: v4Destination, acceptsSYNWithFIN: true)
        #expect(header.flags == [.syn, .fin])
    }

    @Test func payloadIsASliceOfTheInput() throws {
        let segment = rawTCPSegment(options: [1, 1, 1, 1], payload: [9, 8, 7, 6])
        let (header, payload) = try TCPHeader.parse(segment, source: v4Source, destination: v4Destination)
        #expect(header.options == TCPOptions())
        #expect(header.sequenceNumber == SequenceNumber(0xFFFF_FF00))
        #expect(header.acknowledgmentNumber == SequenceNumber(0x1234_5678))
        #expect(header.flags == .ack)
        #expect(header.window == 1000)
        #expect(payload.bytes == [9, 8, 7, 6])
        // Same storage: the slice's bytes live at the segment's offset 24.
        let sameStorage = segment.withUnsafeReadableBytes { whole in
            payload.withUnsafeReadableBytes { slice in whole.baseAddress! + 24 == slice.baseAddress! }
        }
        #expect(sameStorage)
    }

    @Test func flagsDescription() {
        let cases: [(TCPFlags, String)] = [
            (.syn, "S"), ([.syn, .ack], "S."), (.ack, "."), ([.psh, .ack], "P."), ([.fin, .ack], "F."),
            (.rst, "R"), ([.rst, .ack], "R."), ([.fin, .psh, .ack], "FP."), ([.syn, .ece, .cwr], "SEW"),
            ([.syn, .ack, .ece], "S.E"), ([.urg, .ack], ".U"), ([], "none"),
        ]
        for (flags, text) in cases {
            #expect(flags.description == text)
        }
    }

    @Test func tcpdumpDescriptions() {
        var synAck = TCPHeader(
            sourcePort: 80, destinationPort: 40000, sequenceNumber: SequenceNumber(100),
            acknowledgmentNumber: SequenceNumber(200), flags: [.syn, .ack], window: 65535,
            options: TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                                timestamps: TCPTimestamps(value: 1, echoReply: 0))
        )
        #expect(synAck.description == "Flags [S.], seq 100, ack 200, win 65535, "
            + "options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0")
        synAck.options = TCPOptions(maximumSegmentSize: 1460, windowScale: 0, sackPermitted: true)
        #expect(synAck.description
            == "Flags [S.], seq 100, ack 200, win 65535, options [mss 1460,nop,nop,sackOK,nop,wscale 0], length 0")

        let data = TCPHeader(
            sourcePort: 80, destinationPort: 40000, sequenceNumber: SequenceNumber(0xFFFF_FFF1),
            acknowledgmentNumber: SequenceNumber(1001), flags: [.psh, .ack], window: 512,
            options: TCPOptions(timestamps: TCPTimestamps(value: 5, echoReply: 4))
        )
        #expect(data.description(payloadLength: 1024, sequenceBase: 0xFFFF_FFF0, acknowledgmentBase: 1000)
            == "Flags [P.], seq 1:1025, ack 1, win 512, options [nop,nop,TS val 5 ecr 4], length 1024")

        let pureAck = TCPHeader(
            sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(1),
            acknowledgmentNumber: SequenceNumber(1025), flags: .ack, window: 0
        )
        #expect(pureAck.description == "Flags [.], ack 1025, win 0, length 0")

        let reset = TCPHeader(
            sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(5),
            acknowledgmentNumber: SequenceNumber(0), flags: .rst, window: 0
        )
        #expect(reset.description == "Flags [R], seq 5, win 0, length 0")

        var sackBlocks = SACKBlocks()
        sackBlocks.append(SACKBlock(start: SequenceNumber(2001), end: SequenceNumber(3001)))
        sackBlocks.append(SACKBlock(start: SequenceNumber(4001), end: SequenceNumber(5001)))
        let sack = TCPHeader(
            sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(1),
            acknowledgmentNumber: SequenceNumber(1001), flags: .ack, window: 512,
            options: TCPOptions(timestamps: TCPTimestamps(value: 5, echoReply: 4), sackBlocks: sackBlocks)
        )
        #expect(sack.description(payloadLength: 0, acknowledgmentBase: 1000) == "Flags [.], ack 1, win 512, "
            + "options [nop,nop,TS val 5 ecr 4,nop,nop,sack 2 {1001:2001}{3001:4001}], length 0")

        var urgent = pureAck
        urgent.flags = [.urg, .ack]
        urgent.urgentPointer = 3
        #expect(urgent.description(payloadLength: 3) == "Flags [.U], seq 1:4, ack 1025, win 0, urg 3, length 3")
    }
}
