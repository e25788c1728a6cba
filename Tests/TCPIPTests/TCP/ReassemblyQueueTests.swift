import NIOCore
import Testing
import TCPIPWire
@testable import TCPIP

/// Fixtures start just below 2^32 so that every test crosses the wrap.
private let base = SequenceNumber(0xFFFF_FF00)

/// The byte the stream holds at `sequence`, xor'ed with `tag` to tell copies of the same range apart.
private func streamByte(_ sequence: SequenceNumber, tag: UInt8 = 0) -> UInt8 {
    UInt8(truncatingIfNeeded: sequence.rawValue ^ (sequence.rawValue >> 8)) ^ tag
}

/// `length` stream bytes starting `offset` after `base`, in a buffer of its own.
private func payload(_ offset: Int, _ length: Int, tag: UInt8 = 0) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: max(length, 1))
    for index in 0..<length {
        buffer.writeInteger(streamByte(base + (offset + index), tag: tag))
    }
    return buffer
}

/// RFC 2018's sequence number `x` as an offset from `base`, shifted so that the RFC's 7000 falls on 0:
/// its examples then straddle the 2^32 wrap.
private func rfc(_ x: Int) -> Int {
    x - 7000 + 0x100
}

/// SACK blocks given in RFC 2018's numbers.
private func sack(_ edges: (left: Int, right: Int)...) -> SACKBlocks {
    var blocks = SACKBlocks()
    for edge in edges {
        blocks.append(block(rfc(edge.left), rfc(edge.right)))
    }
    return blocks
}

private func block(_ start: Int, _ end: Int) -> SACKBlock {
    SACKBlock(start: base + start, end: base + end)
}

private extension ReassemblyQueue {
    mutating func insert(_ offset: Int, _ length: Int, fin: Bool = false, rcvNxt: Int = 0, tag: UInt8 = 0,
                         limit: Int = .max) -> InsertOutcome {
        insert(
            payload(offset, length, tag: tag), at: base + offset, fin: fin, rcvNxt: base + rcvNxt,
            pinnedLimit: limit
        )
    }

    /// Pops everything in order from `rcvNxt`, as the connection does: returns the bytes, whether a FIN
    /// came, and the new rcv.nxt (the FIN counts one).
    mutating func drain(from rcvNxt: Int) -> (bytes: [UInt8], fin: Bool, rcvNxt: Int) {
        var next = rcvNxt
        var bytes: [UInt8] = []
        var fin = false
        while !fin, let (chunk, chunkFIN) = popInOrder(rcvNxt: base + next) {
            bytes += chunk.readableBytesView
            next += chunk.readableBytes
            if chunkFIN {
                fin = true
                next += 1
            }
        }
        return (bytes, fin, next)
    }
}

private func stream(_ offset: Int, _ length: Int) -> [UInt8] {
    (0..<length).map { streamByte(base + (offset + $0)) }
}

@Suite struct ReassemblyQueueTests {
    @Test func holdsOutOfOrderDataUntilTheGapIsFilled() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 50) == .queued)
        #expect(queue.byteCount == 50)
        #expect(queue.segmentCount == 1)
        #expect(queue.popInOrder(rcvNxt: base) == nil)
        // The connection takes bytes 0..<100 in order itself, then asks for what follows.
        let drained = queue.drain(from: 100)
        #expect(drained.bytes == stream(100, 50))
        #expect(!drained.fin)
        #expect(queue.isEmpty)
        #expect(queue.byteCount == 0)
        #expect(queue.pinnedBytes == 0)
    }

    @Test func keepsOnlyNewBytesWhenOverlappingAtBothEnds() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 100) == .queued)
        #expect(queue.insert(300, 100) == .queued)
        // [50, 450) overlaps both held ranges; tagged so we can see which copy survives.
        #expect(queue.insert(50, 400, tag: 0xFF) == .queued)
        #expect(queue.byteCount == 400)
        #expect(Array(queue.sackBlocks(limit: 4)) == [block(50, 450)])

        let drained = queue.drain(from: 50)
        let new = payload(50, 400, tag: 0xFF).readableBytesView
        var expected = Array(new)
        // First copy wins (as Linux): the held ranges keep their original bytes.
        expected.replaceSubrange(50..<150, with: stream(100, 100))
        expected.replaceSubrange(250..<350, with: stream(300, 100))
        #expect(drained.bytes == expected)
    }

    @Test func partialOverlapsKeepTheNewEnds() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 100) == .queued)
        #expect(queue.insert(150, 100) == .queued)  // new tail [200, 250)
        #expect(queue.insert(50, 100) == .queued)  // new head [50, 100)
        #expect(queue.byteCount == 200)
        #expect(queue.drain(from: 50).bytes == stream(50, 200))
    }

    @Test func duplicatesAreRecognised() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 100) == .queued)
        #expect(queue.insert(100, 100) == .duplicate)
        #expect(queue.insert(120, 30) == .duplicate)
        #expect(queue.insert(10, 0) == .duplicate)
        #expect(queue.segmentCount == 1)
        #expect(queue.byteCount == 100)
    }

    @Test func bytesBeforeRcvNxtAreTrimmed() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(0, 100, rcvNxt: 200) == .duplicate)
        #expect(queue.insert(150, 100, rcvNxt: 200) == .queued)
        #expect(queue.byteCount == 50)
        #expect(Array(queue.sackBlocks(limit: 4)) == [block(200, 250)])
        #expect(queue.drain(from: 200).bytes == stream(200, 50))
    }

    @Test func heldDataThatRcvNxtPassedIsTrimmed() {
        // The connection received [0, 150) in order, overlapping held [100, 200).
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 100) == .queued)
        #expect(queue.insert(300, 10) == .queued)
        let drained = queue.drain(from: 150)
        #expect(drained.bytes == stream(150, 50))
        #expect(queue.byteCount == 10)
        #expect(queue.drain(from: 320).bytes.isEmpty)
        #expect(queue.isEmpty)
    }

    @Test func reassemblesAcrossTheSequenceWrap() {
        // base + 0x100 is sequence 0; [0xF0, 0x110) straddles 2^32.
        var queue = ReassemblyQueue()
        #expect(queue.insert(0x180, 0x40) == .queued)
        #expect(queue.insert(0xF0, 0x20) == .queued)
        #expect(queue.insert(0x120, 0x60) == .queued)
        #expect(queue.insert(0x40, 0xB0) == .queued)
        #expect(Array(queue.sackBlocks(limit: 4)) == [block(0x40, 0x110), block(0x120, 0x1C0)])
        #expect(queue.insert(0x100, 0x10) == .duplicate)
        #expect(queue.insert(0x100, 0x20) == .queued)
        #expect(Array(queue.sackBlocks(limit: 4)) == [block(0x40, 0x1C0)])
        #expect(queue.drain(from: 0x40).bytes == stream(0x40, 0x180))
    }

    @Test func finIsDeliveredAfterTheLastByte() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 50, fin: true) == .queued)
        #expect(queue.finSequence == base + 150)
        #expect(queue.insert(50, 50) == .queued)
        let first = queue.popInOrder(rcvNxt: base + 50)
        #expect(first?.payload.readableBytes == 50)
        #expect(first?.fin == false)
        let second = queue.popInOrder(rcvNxt: base + 100)
        #expect(second?.payload.readableBytes == 50)
        #expect(second?.fin == true)
        #expect(queue.isEmpty)
    }

    @Test func finAloneOutOfOrder() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 0, fin: true) == .queued)
        #expect(!queue.isEmpty)
        #expect(queue.insert(100, 0, fin: true) == .duplicate)
        #expect(queue.insert(50, 50) == .queued)
        let drained = queue.drain(from: 50)
        #expect(drained.bytes == stream(50, 50))
        #expect(drained.fin)
        #expect(drained.rcvNxt == 101)
    }

    @Test func finAtRcvNxtPopsAsAnEmptyPayload() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(0, 0, fin: true) == .queued)
        let popped = queue.popInOrder(rcvNxt: base)
        #expect(popped?.payload.readableBytes == 0)
        #expect(popped?.fin == true)
        #expect(queue.popInOrder(rcvNxt: base + 1) == nil)
    }

    @Test func nothingIsKeptBeyondAFIN() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 20, fin: true) == .queued)
        #expect(queue.insert(110, 40) == .duplicate)
        #expect(queue.insert(90, 40) == .queued)  // only [90, 100) is new
        #expect(queue.byteCount == 30)
        #expect(queue.insert(200, 10) == .duplicate)
        // A second, different FIN contradicts the first: ignored.
        #expect(queue.insert(120, 5, fin: true) == .duplicate)
        #expect(queue.finSequence == base + 120)
    }

    @Test func finBeforeHeldDataIsIgnored() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 50) == .queued)
        #expect(queue.insert(50, 10, fin: true) == .queued)  // the bytes are new, the FIN is not believed
        #expect(queue.finSequence == nil)
    }

    @Test func refusesWhatWouldExceedThePinnedLimit() {
        var queue = ReassemblyQueue()
        let pinnedPerSegment = payload(0, 10).pinnedStorageBytes
        let limit = 2 * pinnedPerSegment
        #expect(queue.insert(100, 10, limit: limit) == .queued)
        #expect(queue.insert(200, 10, limit: limit) == .queued)
        #expect(queue.pinnedBytes == limit)
        #expect(queue.insert(300, 10, fin: true, limit: limit) == .overLimit)
        #expect(queue.segmentCount == 2)
        #expect(queue.finSequence == nil)
        // Nothing new to keep costs nothing.
        #expect(queue.insert(100, 10, limit: limit) == .duplicate)
    }

    @Test func splitSegmentsArePinnedPerPiece() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(10, 10) == .queued)
        #expect(queue.insert(30, 10) == .queued)
        let big = payload(0, 50)
        #expect(queue.insert(big, at: base, fin: false, rcvNxt: base + 0, pinnedLimit: .max) == .queued)
        #expect(queue.segmentCount == 5)
        #expect(queue.pinnedBytes == 2 * payload(0, 10).pinnedStorageBytes + 3 * big.pinnedStorageBytes)
    }

    @Test func capsTheNumberOfHeldPieces() {
        // A hostile peer sends 1-byte segments with 1-byte holes between them.
        var queue = ReassemblyQueue()
        for index in 0..<ReassemblyQueue.maximumSegmentCount {
            #expect(queue.insert(1 + 2 * index, 1) == .queued)
        }
        #expect(queue.insert(1 + 2 * ReassemblyQueue.maximumSegmentCount, 1) == .overLimit)
        #expect(queue.segmentCount == ReassemblyQueue.maximumSegmentCount)
        // Filling the holes would add pieces too; refused while full.
        #expect(queue.insert(0, 100) == .overLimit)
        #expect(queue.drain(from: 1).bytes == stream(1, 1))
        #expect(queue.segmentCount == ReassemblyQueue.maximumSegmentCount - 1)
    }

    @Test func pruneDropsTheHighestSequencesFirst() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(300, 10, fin: true) == .queued)
        #expect(queue.insert(100, 10) == .queued)
        #expect(queue.insert(200, 10) == .queued)
        let onePiece = payload(0, 10).pinnedStorageBytes
        queue.prune(toPinnedBytes: onePiece)
        #expect(queue.pinnedBytes == onePiece)
        #expect(queue.byteCount == 10)
        #expect(Array(queue.sackBlocks(limit: 4)) == [block(100, 110)])
        queue.prune(toPinnedBytes: 0)
        #expect(queue.segmentCount == 0)
        #expect(queue.byteCount == 0)
    }

    @Test func removeAllForgetsEverything() {
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 10, fin: true) == .queued)
        queue.removeAll()
        #expect(queue.isEmpty)
        #expect(queue.pinnedBytes == 0)
        #expect(queue.popInOrder(rcvNxt: base + 110) == nil)
    }

    /// RFC 2018 §7, case 2: left window edge 5000, eight 500-byte segments, the first one lost.
    /// Numbers are the RFC's (see `rfc(_:)` for the shift across the wrap).
    @Test func rfc2018Case2() {
        var queue = ReassemblyQueue()
        for segment in stride(from: 5500, through: 8500, by: 500) {
            #expect(queue.insert(rfc(segment), 500, rcvNxt: rfc(5000)) == .queued)
            #expect(queue.sackBlocks(limit: 3) == sack((5500, segment + 500)))
        }
    }

    /// RFC 2018 §7, case 3: the 2nd, 4th, 6th and 8th segments are lost; then the 4th and the 2nd arrive.
    /// The blocks are the RFC's tables, in the RFC's order: the first is the range holding the segment
    /// that triggered the ACK (RFC 2018 §4).
    @Test func rfc2018Case3() {
        var queue = ReassemblyQueue()
        // 5000 arrived in order: ACK 5500, no SACK.
        let ack = rfc(5500)
        #expect(queue.insert(rfc(6000), 500, rcvNxt: ack) == .queued)
        #expect(queue.sackBlocks(limit: 3) == sack((6000, 6500)))
        #expect(queue.insert(rfc(7000), 500, rcvNxt: ack) == .queued)
        #expect(queue.sackBlocks(limit: 3) == sack((7000, 7500), (6000, 6500)))
        #expect(queue.insert(rfc(8000), 500, rcvNxt: ack) == .queued)
        #expect(queue.sackBlocks(limit: 3) == sack((8000, 8500), (7000, 7500), (6000, 6500)))
        // With room for two, the oldest is left out.
        #expect(queue.sackBlocks(limit: 2) == sack((8000, 8500), (7000, 7500)))

        // The 4th segment (6500) arrives.
        #expect(queue.insert(rfc(6500), 500, rcvNxt: ack) == .queued)
        #expect(queue.sackBlocks(limit: 3) == sack((6000, 7500), (8000, 8500)))

        // The 2nd (5500) arrives in order: the connection takes it and pops what follows. ACK 7500.
        let drained = queue.drain(from: rfc(6000))
        #expect(drained.rcvNxt == rfc(7500))
        #expect(queue.sackBlocks(limit: 3) == sack((8000, 8500)))
    }

    @Test func aDuplicateMakesItsRangeTheMostRecent() {
        // RFC 2018 §4: the first block holds the segment that triggered this ACK, even a duplicate one.
        var queue = ReassemblyQueue()
        #expect(queue.insert(100, 10) == .queued)
        #expect(queue.insert(200, 10) == .queued)
        #expect(Array(queue.sackBlocks(limit: 4)) == [block(200, 210), block(100, 110)])
        #expect(queue.insert(100, 10) == .duplicate)
        #expect(Array(queue.sackBlocks(limit: 4)) == [block(100, 110), block(200, 210)])
        #expect(queue.sackBlocks(limit: 0).isEmpty)
    }

    @Test func randomArrivalsReassembleTheStream() {
        // Segments of a 20,000-byte stream arrive shuffled, overlapping and duplicated; the connection
        // takes in-order data itself and pops the rest, as SEGMENT ARRIVES does.
        var generator = SeededGenerator(seed: 42)
        let total = 20_000
        var arrivals: [(offset: Int, length: Int)] = []
        var offset = 0
        while offset < total {
            let length = min(Int.random(in: 1...700, using: &generator), total - offset)
            arrivals.append((offset, length))
            offset += length
        }
        for _ in 0..<200 {
            let start = Int.random(in: 0..<total, using: &generator)
            arrivals.append((start, min(Int.random(in: 1...1500, using: &generator), total - start)))
        }
        arrivals.shuffle(using: &generator)

        var queue = ReassemblyQueue()
        var rcvNxt = 0
        var received: [UInt8] = []
        for arrival in arrivals {
            let end = arrival.offset + arrival.length
            if arrival.offset <= rcvNxt && end > rcvNxt {
                received += stream(rcvNxt, end - rcvNxt)
                rcvNxt = end
            } else {
                _ = queue.insert(arrival.offset, arrival.length, fin: end == total, rcvNxt: rcvNxt)
            }
            let drained = queue.drain(from: rcvNxt)
            received += drained.bytes
            rcvNxt = drained.rcvNxt
            #expect(queue.byteCount >= 0)
        }
        #expect(received == stream(0, total))
        #expect(queue.byteCount == 0)
        #expect(queue.segmentCount == 0)
        #expect(queue.pinnedBytes == 0)
    }
}
