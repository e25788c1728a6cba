/// A binary min-heap of wakeups, so `nextDeadline` is O(1) and firing is O(log n) at any
/// number of connections.
///
/// Each owner (a connection, a half-open entry, a TIME-WAIT record) has at most one entry, and the
/// heap knows where it is: `positions` maps the owner's slab index to its place in `entries`.
/// Scheduling an owner that has an entry moves that entry; freeing an owner cancels its entry.
/// So the heap holds only wakeups someone still waits for. (It used to leave an entry behind
/// whenever a deadline moved or an owner went away, and skip it when it came due: at 188,000
/// connections a second every connection left three or four behind for up to a second, and
/// sifting through 600,000 dead entries was 10% of the connection-rate benchmark under perf.)
///
/// Owners check what fires against their own deadline all the same (an owner freed without a
/// `cancel` leaves its entry behind, and the entry is dropped when a new owner takes the slot).
struct TimerHeap {
    enum Owner: Hashable {
        case connection(SlabHandle)
        case halfOpen(SlabHandle)
        case timeWait(SlabHandle)
        /// A connection request's deadline (intercept mode).
        case request(SlabHandle)
        /// A UDP flow's idle timer (intercept mode).
        case udpFlow(SlabHandle)
    }

    struct Entry {
        var deadline: Instant
        var owner: Owner
        /// Ties break by the order of scheduling, so runs are deterministic.
        var order: UInt64
    }

    private var entries: [Entry] = []
    private var insertions: UInt64 = 0
    /// Per kind of owner, by slab index: the entry's place in `entries`, or -1.
    private var connectionPositions = PositionIndex()
    private var halfOpenPositions = PositionIndex()
    private var timeWaitPositions = PositionIndex()
    private var requestPositions = PositionIndex()
    private var udpFlowPositions = PositionIndex()

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }
    var earliest: Instant? { entries.first?.deadline }
    /// Bytes of the entry array and the position indexes as allocated.
    var storageBytes: Int {
        entries.capacity * MemoryLayout<Entry>.stride + connectionPositions.storageBytes
            + halfOpenPositions.storageBytes + timeWaitPositions.storageBytes
            + requestPositions.storageBytes + udpFlowPositions.storageBytes
    }

    /// Wakes `owner` at `deadline`, in place of any wakeup it had.
    mutating func schedule(_ owner: Owner, at deadline: Instant) {
        insertions &+= 1
        let entry = Entry(deadline: deadline, owner: owner, order: insertions)
        if let place = position(of: owner) {
            if entries[place].owner == owner {
                replace(at: place, with: entry)
                return
            }
            // The slot's previous owner was freed without a cancel: its wakeup is dead.
            remove(at: place)
        }
        entries.append(entry)
        setPosition(of: owner, to: entries.count - 1)
        siftUp(entries.count - 1)
    }

    /// Forgets the wakeup of an owner that goes away.
    mutating func cancel(_ owner: Owner) {
        guard let place = position(of: owner), entries[place].owner == owner else { return }
        remove(at: place)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: Instant) -> Entry? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        remove(at: 0)
        return first
    }

    private mutating func remove(at place: Int) {
        setPosition(of: entries[place].owner, to: -1)
        let last = entries.removeLast()
        if place < entries.count { replace(at: place, with: last) }
    }

    /// Puts `entry` where another was and sifts it whichever way restores the heap.
    private mutating func replace(at place: Int, with entry: Entry) {
        let earlier = precedes(entry, entries[place])
        put(entry, at: place)
        if earlier { siftUp(place) } else { siftDown(place) }
    }

    /// Stores `entry` at `place` and records where its owner's wakeup now is.
    private mutating func put(_ entry: Entry, at place: Int) {
        entries[place] = entry
        setPosition(of: entry.owner, to: place)
    }

    private func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline < b.deadline || (a.deadline == b.deadline && a.order < b.order)
    }

    /// Moves the entry at `start` towards the root while it precedes its parent, shifting parents
    /// down into the hole (one write per level, positions kept in step).
    private mutating func siftUp(_ start: Int) {
        let moving = entries[start]
        var hole = start
        while hole > 0 {
            let parent = (hole - 1) / 2
            guard precedes(moving, entries[parent]) else { break }
            put(entries[parent], at: hole)
            hole = parent
        }
        if hole != start { put(moving, at: hole) }
    }

    private mutating func siftDown(_ start: Int) {
        let moving = entries[start]
        var hole = start
        while true {
            let left = 2 * hole + 1
            guard left < entries.count else { break }
            var smallest = left
            let right = left + 1
            if right < entries.count && precedes(entries[right], entries[left]) { smallest = right }
            guard precedes(entries[smallest], moving) else { break }
            put(entries[smallest], at: hole)
            hole = smallest
        }
        if hole != start { put(moving, at: hole) }
    }

    /// The place of the wakeup scheduled for `owner`'s slab slot, by whichever generation held it.
    /// Inlined: with five kinds of owner the compiler stopped inlining it (a call per schedule and cancel).
    @inline(__always)
    private func position(of owner: Owner) -> Int? {
        switch owner {
        case .connection(let handle): connectionPositions[handle.index]
        case .halfOpen(let handle): halfOpenPositions[handle.index]
        case .timeWait(let handle): timeWaitPositions[handle.index]
        case .request(let handle): requestPositions[handle.index]
        case .udpFlow(let handle): udpFlowPositions[handle.index]
        }
    }

    @inline(__always)
    private mutating func setPosition(of owner: Owner, to place: Int) {
        switch owner {
        case .connection(let handle): connectionPositions[handle.index] = place
        case .halfOpen(let handle): halfOpenPositions[handle.index] = place
        case .timeWait(let handle): timeWaitPositions[handle.index] = place
        case .request(let handle): requestPositions[handle.index] = place
        case .udpFlow(let handle): udpFlowPositions[handle.index] = place
        }
    }
}

/// Heap places by slab index; grows with the slab it shadows (4 bytes a slot).
private struct PositionIndex {
    private var places: [Int32] = []

    var storageBytes: Int { places.capacity * MemoryLayout<Int32>.stride }

    subscript(index: UInt32) -> Int? {
        get {
            let index = Int(index)
            guard index < places.count else { return nil }
            let place = places[index]
            return place >= 0 ? Int(place) : nil
        }
        set {
            let index = Int(index)
            if index >= places.count {
                guard newValue != nil else { return }
                places.append(contentsOf: repeatElement(-1, count: index - places.count + 1))
            }
            places[index] = Int32(truncatingIfNeeded: newValue ?? -1)
        }
    }
}
