import NIOCore
import Testing
@testable import TCPIP

private func bytes(_ range: Range<Int>, capacity: Int? = nil) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: capacity ?? range.count)
    for value in range { buffer.writeInteger(UInt8(truncatingIfNeeded: value)) }
    return buffer
}

private func array(_ range: Range<Int>) -> [UInt8] {
    range.map { UInt8(truncatingIfNeeded: $0) }
}

private func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
    buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
}

@Suite struct ReceiveBufferTests {
    @Test func emptyBufferReadsNothing() {
        var buffer = ReceiveBuffer()
        buffer.append(ByteBuffer())
        #expect(buffer.count == 0)
        #expect(buffer.read(upTo: 100) == nil)
        #expect(buffer.peek(upTo: 100) == nil)
    }

    @Test func readWithinOneChunkIsASliceOfIt() {
        var buffer = ReceiveBuffer()
        let segment = bytes(0..<1000)
        buffer.append(segment)
        let first = buffer.read(upTo: 300)!
        #expect(Array(first.readableBytesView) == array(0..<300))
        #expect(address(first) == address(segment))
        let rest = buffer.read(upTo: 5000)!
        #expect(Array(rest.readableBytesView) == array(300..<1000))
        #expect(address(rest) == address(segment).map { $0 + 300 })
        #expect(buffer.count == 0)
        #expect(buffer.pinnedBytes == 0)
    }

    @Test func readAcrossChunksJoinsThem() {
        var buffer = ReceiveBuffer()
        buffer.append(bytes(0..<100))
        buffer.append(bytes(100..<250))
        buffer.append(bytes(250..<300))
        #expect(buffer.count == 300)
        #expect(Array(buffer.read(upTo: 120)!.readableBytesView) == array(0..<120))
        #expect(Array(buffer.read(upTo: 170)!.readableBytesView) == array(120..<290))
        #expect(buffer.count == 10)
        #expect(Array(buffer.read(upTo: 170)!.readableBytesView) == array(290..<300))
        #expect(buffer.read(upTo: 1) == nil)
        #expect(buffer.pinnedBytes == 0)
    }

    @Test func readChunkNeverCopies() {
        var buffer = ReceiveBuffer()
        let first = bytes(0..<1000)
        let second = bytes(1000..<1500)
        buffer.append(first)
        buffer.append(second)
        let head = buffer.readChunk(upTo: 300)
        #expect(address(head!) == address(first))
        #expect(head?.readableBytes == 300)
        let rest = buffer.readChunk(upTo: .max)
        #expect(rest?.readableBytes == 700)
        #expect(rest?.getBytes(at: rest!.readerIndex, length: 700) == array(300..<1000))
        let last = buffer.readChunk(upTo: .max)
        #expect(address(last!) == address(second))
        #expect(buffer.count == 0 && buffer.pinnedBytes == 0)
        #expect(buffer.readChunk(upTo: .max) == nil)
    }

    @Test func peekLeavesTheBytes() {
        var buffer = ReceiveBuffer()
        buffer.append(bytes(0..<100))
        buffer.append(bytes(100..<200))
        #expect(Array(buffer.peek(upTo: 50)!.readableBytesView) == array(0..<50))
        #expect(Array(buffer.peek(upTo: 150)!.readableBytesView) == array(0..<150))
        #expect(buffer.count == 200)
        #expect(Array(buffer.read(upTo: 200)!.readableBytesView) == array(0..<200))
    }

    @Test func pinnedBytesCountTheWholeStorage() {
        var buffer = ReceiveBuffer()
        var big = bytes(0..<2000, capacity: 65536)
        let storage = big.storageCapacity
        buffer.append(big.readSlice(length: 1)!)
        #expect(buffer.count == 1)
        #expect(buffer.pinnedBytes == storage)
    }

    @Test func compactionLetsGoOfBigStorages() {
        // A peer's tiny segments, each a slice of a big link buffer.
        var buffer = ReceiveBuffer()
        for index in 0..<10 {
            buffer.append(bytes(index..<(index + 1), capacity: 16384))
        }
        #expect(buffer.pinnedBytes >= 10 * 16384)
        let compacted = buffer.compact()
        #expect(compacted)
        #expect(buffer.count == 10)
        #expect(buffer.pinnedBytes < 4 * 10 + 64)
        #expect(Array(buffer.read(upTo: 10)!.readableBytesView) == array(0..<10))
    }

    @Test func compactionIsSkippedWhenStorageIsWellUsed() {
        var buffer = ReceiveBuffer()
        let segment = bytes(0..<1000)
        buffer.append(segment)
        let compacted = buffer.compact()
        #expect(!compacted)
        #expect(address(buffer.peek(upTo: 10)!) == address(segment))
    }
}
