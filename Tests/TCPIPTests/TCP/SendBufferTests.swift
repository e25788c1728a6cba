import NIOCore
import Testing
@testable import TCPIP

private func bytes(_ range: Range<Int>) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: range.count)
    for value in range { buffer.writeInteger(UInt8(truncatingIfNeeded: value)) }
    return buffer
}

private func array(_ range: Range<Int>) -> [UInt8] {
    range.map { UInt8(truncatingIfNeeded: $0) }
}

private func copied(_ buffer: SendBuffer, at offset: Int, length: Int) -> [UInt8] {
    var packet = ByteBufferAllocator().buffer(capacity: 16)
    packet.writeString("hdr")  // segments are built after headers: writes go at the writer index
    buffer.copyBytes(at: offset, length: length, into: &packet)
    #expect(packet.readString(length: 3) == "hdr")
    return Array(packet.readableBytesView)
}

private func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
    buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
}

@Suite struct SendBufferTests {
    @Test func takesWhatFitsAndReportsIt() {
        var buffer = SendBuffer(capacity: 1500)
        #expect(buffer.append(bytes(0..<1000)) == 1000)
        #expect(buffer.freeSpace == 500)
        #expect(buffer.append(bytes(1000..<2000)) == 500)
        #expect(buffer.count == 1500)
        #expect(buffer.freeSpace == 0)
        #expect(buffer.append(bytes(0..<10)) == 0)
        #expect(copied(buffer, at: 0, length: 1500) == array(0..<1500))
    }

    @Test func appendDoesNotConsumeTheCallersBuffer() {
        var buffer = SendBuffer(capacity: 100)
        let source = bytes(0..<10)
        #expect(buffer.append(source) == 10)
        #expect(source.readableBytes == 10)
    }

    @Test func copiesAcrossChunkBoundaries() {
        var buffer = SendBuffer(capacity: 1 << 20)
        // Large chunks kept as slices, small ones packed, in a mix.
        var start = 0
        for length in [600, 700, 10, 20, 3000, 1, 1, 512, 511] {
            #expect(buffer.append(bytes(start..<(start + length))) == length)
            start += length
        }
        let total = start
        #expect(buffer.count == total)
        for offset in stride(from: 0, to: total, by: 97) {
            for length in [0, 1, 100, 1460, total - offset] where offset + length <= total {
                #expect(copied(buffer, at: offset, length: length) == array(offset..<(offset + length)))
            }
        }
    }

    @Test func offsetsFollowTheAcknowledgedFront() {
        var buffer = SendBuffer(capacity: 1 << 20)
        for chunk in 0..<4 {
            _ = buffer.append(bytes((chunk * 1000)..<((chunk + 1) * 1000)))
        }
        buffer.removeFirst(1500)  // one chunk and half of the next
        #expect(buffer.count == 2500)
        #expect(buffer.freeSpace == (1 << 20) - 2500)
        #expect(copied(buffer, at: 0, length: 600) == array(1500..<2100))
        #expect(copied(buffer, at: 400, length: 1200) == array(1900..<3100))
        buffer.removeFirst(1500)
        #expect(copied(buffer, at: 0, length: 1000) == array(3000..<4000))
        buffer.removeFirst(1000)
        #expect(buffer.isEmpty)
        #expect(buffer.append(bytes(0..<700)) == 700)
        #expect(copied(buffer, at: 0, length: 700) == array(0..<700))
    }

    @Test func smallWritesArePackedTogether() {
        var buffer = SendBuffer(capacity: 1 << 20)
        for value in 0..<2000 {
            _ = buffer.append(bytes(value..<(value + 1)))
        }
        #expect(buffer.count == 2000)
        // 2000 one-byte writes share one packed buffer rather than pinning 2000 storages.
        #expect(buffer.pinnedBytes <= SendBuffer.packedChunkSize)
        #expect(copied(buffer, at: 0, length: 2000) == array(0..<2000))
        buffer.removeFirst(1999)
        _ = buffer.append(bytes(2000..<2001))
        #expect(copied(buffer, at: 0, length: 2) == array(1999..<2001))
    }

    @Test func bytesInsideOneChunkAreASliceOfIt() {
        var buffer = SendBuffer(capacity: 1 << 20)
        let large = bytes(0..<4000)
        _ = buffer.append(large)
        _ = buffer.append(bytes(4000..<5000))
        let slice = buffer.bytes(at: 100, length: 1000)
        #expect(Array(slice.readableBytesView) == array(100..<1100))
        #expect(address(slice) == address(large).map { $0 + 100 })
        let spanning = buffer.bytes(at: 3500, length: 1000)
        #expect(Array(spanning.readableBytesView) == array(3500..<4500))
        #expect(buffer.bytes(at: 0, length: 0).readableBytes == 0)
    }

    @Test func loweringTheCapacityDropsNothing() {
        var buffer = SendBuffer(capacity: 1000)
        _ = buffer.append(bytes(0..<800))
        buffer.capacity = 500
        #expect(buffer.count == 800)
        #expect(buffer.freeSpace == 0)
        buffer.removeFirst(400)
        #expect(buffer.freeSpace == 100)
    }

    @Test func removeAllEmptiesTheBuffer() {
        var buffer = SendBuffer(capacity: 1000)
        _ = buffer.append(bytes(0..<800))
        buffer.removeAll()
        #expect(buffer.isEmpty)
        #expect(buffer.append(bytes(0..<600)) == 600)
        #expect(copied(buffer, at: 0, length: 600) == array(0..<600))
    }

    @Test func matchesAModelUnderRandomWritesAcksAndReads() {
        var generator = SeededGenerator(seed: 7)
        var buffer = SendBuffer(capacity: 64 * 1024)
        var model: [UInt8] = []
        var written = 0
        for _ in 0..<1000 {
            switch Int.random(in: 0..<3, using: &generator) {
            case 0:
                let length = [1, 7, 100, 511, 512, 1460, 9000].randomElement(using: &generator)!
                let taken = buffer.append(bytes(written..<(written + length)))
                #expect(taken == min(length, 64 * 1024 - model.count))
                model += array(written..<(written + taken))
                written += taken
            case 1:
                let acknowledged = Int.random(in: 0...model.count, using: &generator)
                buffer.removeFirst(acknowledged)
                model.removeFirst(acknowledged)
            default:
                guard !model.isEmpty else { continue }
                let offset = Int.random(in: 0..<model.count, using: &generator)
                let length = Int.random(in: 0...min(1460, model.count - offset), using: &generator)
                let expected = Array(model[offset..<(offset + length)])
                #expect(copied(buffer, at: offset, length: length) == expected)
                #expect(Array(buffer.bytes(at: offset, length: length).readableBytesView) == expected)
            }
            #expect(buffer.count == model.count)
        }
    }

    @Test func acknowledgedPackedChunksAreReusedThroughThePool() {
        var pool = PackedChunkPool()
        var buffer = SendBuffer(capacity: 4096)
        #expect(buffer.append(bytes(0..<100), pool: &pool) == 100)   // packed: a new buffer
        let first = buffer.bytes(at: 0, length: 100)
        let firstStorage = address(first)
        buffer.removeFirst(100, pool: &pool)
        // `first` still shares the storage (as a retransmitted slice would): not kept.
        #expect(pool.retainedBytes == 0)
        _ = consume first

        #expect(buffer.append(bytes(100..<200), pool: &pool) == 100)
        let secondStorage = address(buffer.bytes(at: 0, length: 100))
        #expect(secondStorage != nil)
        buffer.removeFirst(100, pool: &pool)
        #expect(pool.retainedBytes == SendBuffer.packedChunkSize)

        // The next small write is packed into the storage given back, and its bytes are its own.
        #expect(buffer.append(bytes(200..<300), pool: &pool) == 100)
        #expect(pool.retainedBytes == 0)
        #expect(address(buffer.bytes(at: 0, length: 100)) == secondStorage)
        #expect(copied(buffer, at: 0, length: 100) == array(200..<300))
        #expect(buffer.pinnedBytes == buffer.recountedPinnedBytes)
        _ = firstStorage
    }

    @Test func thePoolKeepsAtMostItsLimit() {
        var pool = PackedChunkPool()
        var buffers: [SendBuffer] = []
        for index in 0..<(PackedChunkPool.limit + 4) {
            var buffer = SendBuffer(capacity: 4096)
            #expect(buffer.append(bytes(index..<(index + 10)), pool: &pool) == 10)
            buffers.append(buffer)
        }
        for index in buffers.indices { buffers[index].removeFirst(10, pool: &pool) }
        #expect(pool.retainedBytes == PackedChunkPool.limit * SendBuffer.packedChunkSize)
    }
}
