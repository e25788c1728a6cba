import NIOCore
import Testing
import TCPIPWire

@Suite struct PacketQueueTests {
    @Test func firstInFirstOutAcrossGrowthAndWrapAround() {
        var queue = PacketQueue<Int>(initialCapacity: 2)
        var expected: [Int] = []
        var next = 0
        // Interleave appends and pops so that the ring wraps before and after it grows.
        for round in 0..<50 {
            for _ in 0..<(round % 5 + 1) {
                queue.append(next)
                expected.append(next)
                next += 1
            }
            if round % 2 == 0, let popped = queue.popFirst() {
                #expect(popped == expected.removeFirst())
            }
            #expect(queue.count == expected.count)
            #expect(Array(queue) == expected)
            #expect(queue.first == expected.first)
        }
        while let popped = queue.popFirst() { #expect(popped == expected.removeFirst()) }
        #expect(expected.isEmpty && queue.isEmpty && queue.popFirst() == nil)
    }

    @Test func modifyFirstChangesTheElementInPlace() {
        var queue = PacketQueue<[Int]>()
        queue.append([1])
        queue.append([2])
        queue.modifyFirst { $0.append(10) }
        #expect(queue.popFirst() == [1, 10])
        #expect(queue.popFirst() == [2])
    }

    @Test func removeAllKeepsOrDropsTheSlots() {
        var queue = PacketQueue<Int>(initialCapacity: 4)
        for value in 0..<100 { queue.append(value) }
        let grown = queue.capacity
        queue.removeAll(keepingCapacity: true)
        #expect(queue.isEmpty && queue.capacity == grown)
        queue.append(7)
        queue.removeAll()
        #expect(queue.isEmpty && queue.capacity < grown)
    }

    @Test func anEmptyQueueAllocatesNothingUntilItsFirstElement() {
        var queue = PacketQueue<Int>()
        #expect(queue.capacity == 0 && queue.isEmpty && queue.first == nil && queue.popFirst() == nil)
        #expect(queue.modifyFirstIfAny { $0 } == nil)
        queue.append(1)
        #expect(queue.capacity == 4 && queue.first == 1)
        queue.removeAll()
        #expect(queue.capacity == 0)
    }

    @Test func elementsAreReachedByOffsetAcrossWrapAround() {
        var queue = PacketQueue<Int>(initialCapacity: 4)
        for value in 0..<3 { queue.append(value) }
        _ = queue.popFirst()
        _ = queue.popFirst()
        for value in 3..<6 { queue.append(value) }   // 2, 3, 4, 5, wrapping in four slots
        #expect((0..<queue.count).map { queue[offset: $0] } == [2, 3, 4, 5])
        queue.modify(offset: 3) { $0 *= 10 }
        #expect(queue[offset: 3] == 50)
        #expect(queue.modifyFirstIfAny { $0 } == 2)
        #expect((0..<queue.count).map { offset in queue.withElement(offset: offset) { $0 } } == [2, 3, 4, 50])
    }

    /// `withElement` reads buffers where they lie and leaves them queued, unchanged.
    @Test func withElementBorrowsInPlace() {
        var queue = PacketQueue<ByteBuffer>()
        queue.append(ByteBuffer(bytes: [1, 2, 3]))
        queue.append(ByteBuffer(bytes: [4, 5]))
        #expect(queue.withElement(offset: 1) { $0.readableBytesView.first } == 4)
        #expect(queue.withElement(offset: 0) { $0.readableBytes } == 3)
        var first = queue.popFirst()!
        #expect(first.readInteger(as: UInt8.self) == 1)
    }
}
