import Testing
@testable import TCPIP

@Suite struct SlabTests {
    @Test func insertedElementsAreReachableByHandle() {
        var slab = Slab<String>()
        let a = slab.insert("a")
        let b = slab.insert("b")
        #expect(slab.count == 2)
        #expect(slab[a] == "a")
        #expect(slab[b] == "b")
        #expect(a != b)
    }

    @Test func removedHandleIsStaleEvenAfterTheSlotIsReused() {
        var slab = Slab<String>()
        let old = slab.insert("old")
        #expect(slab.remove(old) == "old")
        #expect(slab[old] == nil)
        #expect(slab.remove(old) == nil)
        #expect(slab.count == 0)

        let new = slab.insert("new")
        #expect(new.index == old.index)
        #expect(new.generation == old.generation &+ 1)
        #expect(slab[old] == nil)
        let hijacked: Void? = slab.withElement(old) { $0 = "hijacked" }
        #expect(hijacked == nil)
        #expect(slab[new] == "new")
    }

    /// A value moved in with the body (as a segment into its TCB) reaches a live element; with a
    /// stale handle the body does not run and the value is dropped.
    @Test func aValuePassedToTheBodyReachesOnlyALiveElement() {
        var slab = Slab<String>()
        let live = slab.insert("live")
        let stale = slab.insert("stale")
        slab.remove(stale)
        let appended = slab.withElement(live, passing: Token(" + token")) { element, token in
            element += token.text
            return element.count
        }
        #expect(appended == "live + token".count)
        #expect(slab[live] == "live + token")
        let missed: Int? = slab.withElement(stale, passing: Token("lost")) { _, _ in
            Issue.record("body ran for a stale handle")
            return 0
        }
        #expect(missed == nil)
    }

    private struct Token: ~Copyable {
        let text: String
        init(_ text: String) { self.text = text }
    }

    @Test func elementsBuiltInTheirSlotTakeSlotsAsInsertedOnesDo() {
        var slab = Slab<String>()
        let handles = (0..<20).map { n in slab.insert(making: { "built \(n)" }) }  // past the first growth (16)
        #expect(slab.count == 20)
        #expect(handles.enumerated().allSatisfy { slab[$1] == "built \($0)" })
        slab.remove(handles[7])
        let reused = slab.insert(making: { "again" })
        #expect(reused.index == handles[7].index)
        #expect(reused.generation == handles[7].generation &+ 1)
        #expect(slab[handles[7]] == nil)
        #expect(slab[reused] == "again")
        #expect(slab.insert("moved").index == 20)
    }

    @Test func freedSlotsAreReusedLastFreedFirst() {
        var slab = Slab<Int>()
        let handles = (0..<4).map { slab.insert($0) }
        slab.remove(handles[1])
        slab.remove(handles[3])
        #expect(slab.insert(30).index == handles[3].index)
        #expect(slab.insert(10).index == handles[1].index)
        #expect(slab.insert(40).index == 4)
    }

    @Test func handleFromBeyondTheSlabIsStale() {
        var slab = Slab<Int>()
        _ = slab.insert(1)
        #expect(slab[SlabHandle(index: 7, generation: 0)] == nil)
        #expect(slab.remove(SlabHandle(index: 7, generation: 0)) == nil)
    }

    @Test func withElementMutatesInPlace() {
        var slab = Slab<[Int]>()
        let handle = slab.insert([1, 2])
        let count = slab.withElement(handle) { array -> Int in
            array.append(3)
            return array.count
        }
        #expect(count == 3)
        #expect(slab[handle] == [1, 2, 3])
    }

    @Test func handlesAreInSlotOrder() {
        var slab = Slab<Int>()
        let handles = (0..<5).map { slab.insert($0) }
        slab.remove(handles[2])
        #expect(slab.handles == [handles[0], handles[1], handles[3], handles[4]])
        let reused = slab.insert(9)
        #expect(slab.handles == [handles[0], handles[1], reused, handles[3], handles[4]])
    }

    @Test func cursorSurvivesRemovalDuringTheSweep() {
        var slab = Slab<Int>()
        for value in 0..<6 { _ = slab.insert(value) }
        var visited: [Int] = []
        var cursor = slab.handle(after: nil)
        while let handle = cursor {
            let value = slab[handle]!
            visited.append(value)
            if value.isMultiple(of: 2) { slab.remove(handle) }
            cursor = slab.handle(after: handle)
        }
        #expect(visited == [0, 1, 2, 3, 4, 5])
        #expect(slab.handles.map { slab[$0]! } == [1, 3, 5])
        #expect(slab.count == 3)
    }

    @Test func updateEachVisitsEveryLiveElement() {
        var slab = Slab<Int>()
        let handles = (0..<4).map { slab.insert($0) }
        slab.remove(handles[0])
        var seen: [SlabHandle] = []
        slab.updateEach { handle, value in
            seen.append(handle)
            value *= 10
        }
        #expect(seen == Array(handles.dropFirst()))
        #expect(slab.handles.map { slab[$0]! } == [10, 20, 30])
    }

    @Test func removeAllMakesEveryHandleStale() {
        var slab = Slab<Int>()
        let handles = (0..<3).map { slab.insert($0) }
        slab.removeAll()
        #expect(slab.count == 0)
        #expect(handles.allSatisfy { slab[$0] == nil })
        #expect(slab.handle(after: nil) == nil)
    }

    /// The slab manages its elements' memory itself: every element inserted is destroyed exactly
    /// once — when deleted, when moved out, when the slab goes — and growth moves live elements
    /// over without losing, duplicating or destroying any.
    @Test func everyElementIsDestroyedExactlyOnce() {
        final class Tracked {
            let value: Int
            let onDeinit: (Int) -> Void
            init(_ value: Int, onDeinit: @escaping (Int) -> Void) { self.value = value; self.onDeinit = onDeinit }
            deinit { onDeinit(value) }
        }
        var destroyed: [Int] = []
        do {
            var slab = Slab<Tracked>()
            var handles: [SlabHandle] = []
            for value in 0..<40 {  // past two growths (16, 32, 64)
                handles.append(slab.insert(Tracked(value) { destroyed.append($0) }))
                if value == 20 {
                    slab.delete(handles[5])
                    #expect(slab.remove(handles[6])?.value == 6)
                }
            }
            #expect(destroyed.sorted() == [5, 6])
            #expect(slab.count == 38)
            #expect(slab[handles[39]]?.value == 39)
            #expect(slab[handles[0]]?.value == 0)
            #expect(slab[handles[5]] == nil)
            // The slots freed at 20 went to 21 and 22, last freed first.
            #expect(handles[21].index == handles[6].index && slab[handles[21]]?.value == 21)
            #expect(handles[22].index == handles[5].index && slab[handles[22]]?.value == 22)
            _ = slab.insert(Tracked(100) { destroyed.append($0) })
            #expect(destroyed.count == 2)
        }
        #expect(destroyed.sorted() == Array(0..<40) + [100])
    }
}
