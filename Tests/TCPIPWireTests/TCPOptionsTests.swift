import NIOCore
import Testing
import TCPIPWire

@Suite struct TCPOptionsTests {
    private let timestamps = TCPTimestamps(value: 0x0102_0304, echoReply: 0x0A0B_0C0D)

    private func block(_ start: UInt32, _ end: UInt32) -> SACKBlock {
        SACKBlock(start: SequenceNumber(start), end: SequenceNumber(end))
    }

    /// The option bytes `options` encode to, read back from an emitted header.
    private func encoded(_ options: TCPOptions) -> [UInt8] {
        let header = TCPHeader(
            sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(0),
            acknowledgmentNumber: SequenceNumber(0), flags: .ack, window: 0, options: options
        )
        var buffer = PacketBuffer.make(payloadCapacity: 0)
        header.prepend(to: &buffer, source: v4Source, destination: v4Destination)
        #expect(buffer.readableBytes == header.encodedLength)
        #expect(Int(buffer.bytes[12] >> 4) * 4 == header.encodedLength)
        return Array(buffer.bytes.dropFirst(20))
    }

    /// Linux's SYN: mss, sackOK, TS, nop, wscale.
    @Test func synLayout() {
        let options = TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true, timestamps: timestamps)
        #expect(options.encodedLength == 20)
        #expect(encoded(options) == [2, 4, 0x05, 0xB4, 4, 2, 8, 10]
            + be32(0x0102_0304) + be32(0x0A0B_0C0D) + [1, 3, 3, 7])
    }

    @Test func synWithoutSACK() {
        let options = TCPOptions(maximumSegmentSize: 1460, windowScale: 7, timestamps: timestamps)
        #expect(encoded(options) == [2, 4, 0x05, 0xB4, 1, 1, 8, 10]
            + be32(0x0102_0304) + be32(0x0A0B_0C0D) + [1, 3, 3, 7])
    }

    @Test func synWithoutTimestamps() {
        let options = TCPOptions(maximumSegmentSize: 536, windowScale: 0, sackPermitted: true)
        #expect(encoded(options) == [2, 4, 0x02, 0x18, 1, 1, 4, 2, 1, 3, 3, 0])
    }

    @Test func dataWithSACK() {
        var blocks = SACKBlocks()
        blocks.append(block(1000, 2000))
        blocks.append(block(3000, 4000))
        let options = TCPOptions(timestamps: timestamps, sackBlocks: blocks)
        #expect(options.encodedLength == 32)
        #expect(encoded(options) == [1, 1, 8, 10] + be32(0x0102_0304) + be32(0x0A0B_0C0D)
            + [1, 1, 5, 18] + be32(1000) + be32(2000) + be32(3000) + be32(4000))
    }

    @Test func noOptions() {
        #expect(TCPOptions().encodedLength == 0)
        #expect(encoded(TCPOptions()) == [])
    }

    /// 40 octets hold TS and three blocks, or four blocks alone, or a full SYN's options and two.
    @Test func sackBlocksDroppedFromTheEnd() throws {
        let four: SACKBlocks = [block(1, 2), block(3, 4), block(5, 6), block(7, 8)]
        #expect(four.count == 4)
        #expect(TCPOptions(sackBlocks: four).encodedLength == 36)
        let withTimestamps = TCPOptions(timestamps: timestamps, sackBlocks: four)
        #expect(withTimestamps.encodedLength == 40)
        let parsed = try parse(encoded(withTimestamps))
        #expect(Array(parsed.sackBlocks) == Array(four.prefix(3)))
        let syn = TCPOptions(
            maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true, timestamps: timestamps, sackBlocks: four
        )
        #expect(syn.encodedLength == 40)
        #expect(Array(try parse(encoded(syn)).sackBlocks) == Array(four.prefix(2)))
    }

    @Test func sackBlocksStoreFourInline() {
        var blocks = SACKBlocks()
        #expect(blocks.isEmpty)
        for index in 0..<6 { blocks.append(block(UInt32(index), UInt32(index + 1))) }
        #expect(blocks.count == SACKBlocks.capacity)
        #expect(blocks.last == block(3, 4))
        var other = blocks
        other.truncate(to: 2)
        #expect(Array(other) == [block(0, 1), block(1, 2)])
        #expect(other != blocks)
        blocks.removeAll()
        #expect(blocks.isEmpty)
        #expect(blocks == SACKBlocks())
        // Equality and hashing look at the stored blocks only.
        var a = SACKBlocks()
        a.append(block(9, 10))
        a.removeAll()
        #expect(a == SACKBlocks())
        #expect(a.hashValue == SACKBlocks().hashValue)
    }

    /// Every combination of options survives emit then parse.
    @Test func roundTripEveryCombination() throws {
        let allBlocks = [block(0xFFFF_FFF0, 0x10), block(100, 200), block(300, 400), block(500, 600)]
        for mss in [nil, UInt16(1460)] {
            for windowScale in [nil, UInt8(0), UInt8(14)] {
                for sackPermitted in [false, true] {
                    for timestamps in [nil, self.timestamps] {
                        for blockCount in 0...4 {
                            var blocks = SACKBlocks()
                            for block in allBlocks.prefix(blockCount) { blocks.append(block) }
                            let options = TCPOptions(
                                maximumSegmentSize: mss, windowScale: windowScale, sackPermitted: sackPermitted,
                                timestamps: timestamps, sackBlocks: blocks
                            )
                            let bytes = encoded(options)
                            #expect(bytes.count == options.encodedLength)
                            #expect(bytes.count % 4 == 0 && bytes.count <= 40)
                            let parsed = try parse(bytes)
                            var expected = options
                            expected.sackBlocks.truncate(to: parsed.sackBlocks.count)
                            #expect(parsed == expected)
                            // Blocks are only ever dropped for lack of room.
                            if parsed.sackBlocks.count < blockCount {
                                #expect(options.encodedLength + 8 > 40)
                            }
                        }
                    }
                }
            }
        }
    }

    private func parse(_ options: [UInt8]) throws(WireError) -> TCPOptions {
        let segment = rawTCPSegment(options: options)
        return try TCPHeader.parse(segment, source: v4Source, destination: v4Destination).header.options
    }

    /// RFC 7323 §2.3: a shift count above 14 is used as 14.
    @Test func windowScaleClampedTo14() throws {
        #expect(try parse([3, 3, 14]).windowScale == 14)
        #expect(try parse([3, 3, 15]).windowScale == 14)
        #expect(try parse([3, 3, 255]).windowScale == 14)
        #expect(try parse([3, 3, 0]).windowScale == 0)
    }

    @Test func unknownOptionsSkipped() throws {
        // An experimental option (RFC 6994, kind 254), then MSS.
        let options = try parse([254, 6, 0xF9, 0x89, 0, 0, 2, 4, 0x05, 0xB4])
        #expect(options == TCPOptions(maximumSegmentSize: 1460))
        // An unknown option of length 2.
        #expect(try parse([99, 2, 4, 2]) == TCPOptions(sackPermitted: true))
    }

    @Test func endOfListStopsParsing() throws {
        // After EOL, even bytes that would be malformed options are ignored.
        #expect(try parse([2, 4, 0x05, 0xB4, 0, 2, 0, 0]) == TCPOptions(maximumSegmentSize: 1460))
        #expect(try parse([0, 2, 4, 0x05, 0xB4]) == TCPOptions())
    }

    /// NOP, NOP, TS in a 32-octet header is read beside the fixed fields (the aligned layout); the
    /// same 12 octets in any other order, or with anything after them, take the general walk. Both
    /// must agree.
    @Test func alignedTimestampsAgreeWithTheGeneralWalk() throws {
        let stamps = be32(0x0102_0304) + be32(0x0A0B_0C0D)
        #expect(try parse([1, 1, 8, 10] + stamps) == TCPOptions(timestamps: timestamps))
        #expect(try parse([8, 10] + stamps + [1, 1]) == TCPOptions(timestamps: timestamps))
        #expect(try parse([1, 1, 8, 10] + stamps + [1, 1, 4, 2])
            == TCPOptions(sackPermitted: true, timestamps: timestamps))
        // The aligned word with a bad length behind it is no timestamps option at all.
        #expect(throws: WireError.badOptionLength) { try parse([1, 1, 8, 12] + stamps) }
        // Payload that looks like the layout, behind a header without options, is payload.
        let segment = rawTCPSegment(payload: [1, 1, 8, 10] + stamps)
        let parsed = try TCPHeader.parse(segment, source: v4Source, destination: v4Destination)
        #expect(parsed.header.options == TCPOptions())
        #expect(parsed.payload.readableBytes == 12)
    }

    /// MSS, SACK permitted, timestamps, NOP, window scale — a SYN from Linux or from us — is read with
    /// the header; it must mean what the option walk makes of the same octets, and anything that is
    /// not exactly that layout goes the general way.
    @Test func synLayoutAgreesWithTheGeneralWalk() throws {
        let stamps = be32(0x0102_0304) + be32(0x0A0B_0C0D)
        for shift: UInt8 in [0, 7, 14, 15, 255] {
            let layout: [UInt8] = [2, 4, 0x05, 0xB4, 4, 2, 8, 10] + stamps + [1, 3, 3, shift]
            let expected = TCPOptions(
                maximumSegmentSize: 1460, windowScale: min(shift, 14), sackPermitted: true, timestamps: timestamps)
            #expect(try parse(layout) == expected)
        }
        // Near misses: other orders, other lengths, and the layout with a bad window scale length.
        #expect(try parse([2, 4, 0x05, 0xB4, 1, 1, 8, 10] + stamps + [1, 3, 3, 7])
            == TCPOptions(maximumSegmentSize: 1460, windowScale: 7, timestamps: timestamps))
        #expect(try parse([2, 4, 0x05, 0xB4, 4, 2, 8, 10] + stamps + [3, 3, 7, 0])
            == TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true, timestamps: timestamps))
        #expect(throws: WireError.badOptionLength) { try parse([2, 4, 0x05, 0xB4, 4, 2, 8, 10] + stamps + [1, 3, 4, 7]) }
        #expect(throws: WireError.badOptionLength) { try parse([2, 4, 0x05, 0xB4, 4, 2, 8, 12] + stamps + [1, 3, 3, 7]) }
    }

    @Test func lastOccurrenceWins() throws {
        #expect(try parse([2, 4, 0x05, 0xB4, 2, 4, 0x02, 0x18]).maximumSegmentSize == 536)
    }

    @Test(arguments: [
        [2, 0, 0, 0] as [UInt8],           // length 0
        [2, 1, 0, 0],                      // length 1
        [99, 0],                           // unknown kind, length 0
        [99, 1, 0, 0],                     // unknown kind, length 1
        [1, 1, 1, 2],                      // kind with no room for its length octet
        [1, 1, 99, 3],                     // unknown kind running past the header
        [2, 8, 0x05, 0xB4],                // MSS running past the header
        [2, 3, 0x05, 1],                   // MSS of length 3
        [2, 5, 0x05, 0xB4, 0, 1, 1, 1],    // MSS of length 5
        [3, 2, 1, 1],                      // window scale of length 2
        [3, 4, 7, 0],                      // window scale of length 4
        [4, 3, 0, 1],                      // sackOK of length 3
        [8, 8, 0, 0, 0, 1, 0, 0],          // timestamps of length 8
        [8, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0],   // timestamps of length 12
        [5, 2, 1, 1],                      // SACK with no block
        [5, 9, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1],    // SACK of length 9
        [5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1],   // SACK of length 11
        [5, 18, 0, 0, 0, 1, 0, 0, 0, 2],         // SACK running past the header
    ])
    func badOptionLength(_ options: [UInt8]) {
        #expect(throws: WireError.badOptionLength) { try parse(options) }
    }
}
