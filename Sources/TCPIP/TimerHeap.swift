/// A binary min-heap of wakeups, so `nextDeadline` is O(1) and firing is O(log n) at any
/// number of connections.
///
/// Entries are never removed early: a connection whose deadline moved later simply finds its
/// old entry firing early, checks, and schedules again (the way Linux's timers re-arm). An
/// entry is live only while it matches the owner's `scheduledWakeup`, so each owner has at most
/// one live entry and stale ones are skipped.
struct TimerHeap {
    enum Owner: Hashable {
        case connection(SlabHandle)
        case halfOpen(SlabHandle)
        case timeWait(SlabHandle)
    }

    struct Entry {
        var deadline: Instant
        var owner: Owner
        /// Ties break by insertion order, so runs are deterministic.
        var order: UInt64
    }

    private var entries: [Entry] = []
    private var insertions: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }
    var earliest: Instant? { entries.first?.deadline }
    /// Bytes of the entry array as allocated.
    var storageBytes: Int { entries.capacity * MemoryLayout<Entry>.stride }

    mutating func schedule(_ owner: Owner, at deadline: Instant) {
        insertions &+= 1
        entries.append(Entry(deadline: deadline, owner: owner, order: insertions))
        siftUp(entries.count - 1)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: Instant) -> Entry? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            siftDown(0)
        }
        return first
    }

    private func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline < b.deadline || (a.deadline == b.deadline && a.order < b.order)
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(entries[child], entries[parent]) else { return }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < entries.count else { return }
            var smallest = left
            let right = left + 1
            if right < entries.count && precedes(entries[right], entries[left]) { smallest = right }
            guard precedes(entries[smallest], entries[parent]) else { return }
            entries.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
