import Testing
@testable import TCPIP

@Suite struct TimerHeapTests {
    private func at(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }
    private func connection(_ index: UInt32, generation: UInt32 = 0) -> TimerHeap.Owner {
        .connection(SlabHandle(index: index, generation: generation))
    }

    private func drain(_ heap: inout TimerHeap, until ms: Int64) -> [TimerHeap.Owner] {
        var fired: [TimerHeap.Owner] = []
        while let entry = heap.popDue(now: at(ms)) { fired.append(entry.owner) }
        return fired
    }

    @Test func firesInDeadlineOrderAndTiesInSchedulingOrder() {
        var heap = TimerHeap()
        heap.schedule(connection(0), at: at(30))
        heap.schedule(connection(1), at: at(10))
        heap.schedule(.halfOpen(SlabHandle(index: 0, generation: 0)), at: at(10))
        heap.schedule(.timeWait(SlabHandle(index: 0, generation: 0)), at: at(20))
        #expect(heap.earliest == at(10))
        #expect(drain(&heap, until: 5).isEmpty)
        #expect(drain(&heap, until: 100) == [
            connection(1), .halfOpen(SlabHandle(index: 0, generation: 0)),
            .timeWait(SlabHandle(index: 0, generation: 0)), connection(0),
        ])
        #expect(heap.isEmpty)
    }

    @Test func reschedulingMovesTheOwnersOneEntry() {
        var heap = TimerHeap()
        heap.schedule(connection(0), at: at(50))
        heap.schedule(connection(1), at: at(20))
        heap.schedule(connection(0), at: at(10))   // earlier
        #expect(heap.count == 2)
        heap.schedule(connection(1), at: at(40))   // later
        #expect(heap.count == 2)
        #expect(drain(&heap, until: 100) == [connection(0), connection(1)])
    }

    @Test func cancelledOwnersNeverFire() {
        var heap = TimerHeap()
        for index in 0..<64 as Range<UInt32> { heap.schedule(connection(index), at: at(Int64(index % 7))) }
        for index in stride(from: 0, to: 64, by: 3) { heap.cancel(connection(UInt32(index))) }
        heap.cancel(connection(1000))                      // never scheduled
        heap.cancel(connection(2, generation: 9))          // someone else's generation
        let fired = drain(&heap, until: 100)
        let expected = (0..<64 as Range<UInt32>).filter { $0 % 3 != 0 }
            .sorted { ($0 % 7, $0) < ($1 % 7, $1) }.map { connection($0) }
        #expect(fired == expected)
    }

    @Test func aReusedSlotReplacesTheEntryItsFreedOwnerLeft() {
        var heap = TimerHeap()
        heap.schedule(connection(3, generation: 0), at: at(10))
        heap.schedule(connection(3, generation: 1), at: at(20))
        #expect(heap.count == 1)
        #expect(drain(&heap, until: 100) == [connection(3, generation: 1)])
    }

    /// Against a sorted list under a long random mix of schedule, cancel and pop.
    @Test func agreesWithASortedListUnderRandomOperations() {
        var generator = SeededGenerator(seed: 7)
        var heap = TimerHeap()
        var model: [TimerHeap.Owner: (deadline: Int64, order: Int)] = [:]
        var order = 0
        var now: Int64 = 0
        for _ in 0..<20_000 {
            let owner = connection(UInt32.random(in: 0..<200, using: &generator))
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<6:
                let deadline = now + Int64.random(in: 0..<100, using: &generator)
                heap.schedule(owner, at: at(deadline))
                order += 1
                model[owner] = (deadline, order)
            case 6..<8:
                heap.cancel(owner)
                model[owner] = nil
            default:
                now += Int64.random(in: 0..<20, using: &generator)
                let due = model.filter { $0.value.deadline <= now }
                    .sorted { ($0.value.deadline, $0.value.order) < ($1.value.deadline, $1.value.order) }
                    .map(\.key)
                #expect(drain(&heap, until: now) == due)
                for owner in due { model[owner] = nil }
            }
            #expect(heap.count == model.count)
        }
    }
}
