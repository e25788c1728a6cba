/// A reference to an element of a `Slab`: a slot index and the generation of the slot when it was filled.
///
/// When a slot is freed its generation moves on, so an old handle stops matching: a connection closed and
/// its slot reused by a new one is never reached through the old connection's handle.
public struct SlabHandle: Hashable, Sendable, CustomStringConvertible {
    public let index: UInt32
    public let generation: UInt32

    @inlinable
    init(index: UInt32, generation: UInt32) {
        self.index = index
        self.generation = generation
    }

    public var description: String { "\(index)#\(generation)" }
}

/// Elements stored in slots of one array and named by `SlabHandle`s.
///
/// This is how the stack owns its connections: one contiguous array, no class per connection, no reference
/// counting per packet, and handles that cannot dangle. Freed slots are reused last-freed-first, so a
/// working set of slots stays warm in cache; iteration is in slot order, so it is deterministic.
struct Slab<Element> {
    fileprivate struct Slot {
        var generation: UInt32
        var element: Element?
        /// The next vacant slot when this one is vacant, `noSlot` at the end of the free list.
        var nextFree: UInt32
        /// Whether `element` is set. Lookups test this flag rather than compare the optional element
        /// with nil, which can copy a whole TCB out of its slot.
        var isOccupied: Bool
    }

    private static var noSlot: UInt32 { .max }

    private var slots: [Slot] = []
    private var firstFree: UInt32 = Slab.noSlot

    /// The number of live elements.
    private(set) var count: Int = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    /// Bytes of the slot array as allocated (its capacity, not its count): what the slab itself costs.
    var storageBytes: Int { slots.capacity * MemoryLayout<Slot>.stride }

    /// Bytes one slot takes, element included.
    static var slotStride: Int { MemoryLayout<Slot>.stride }

    /// Stores `element` in a free slot (the most recently freed one, else a new one) and returns its handle.
    /// The element is moved in: a caller's last use of a local TCB hands it over without a copy.
    mutating func insert(_ element: consuming Element) -> SlabHandle {
        count += 1
        if firstFree != Slab.noSlot {
            let index = Int(firstFree)
            firstFree = slots[index].nextFree
            slots[index].element = consume element
            slots[index].isOccupied = true
            slots[index].nextFree = Slab.noSlot
            return SlabHandle(index: UInt32(index), generation: slots[index].generation)
        }
        precondition(slots.count < Int(Slab.noSlot), "slab is full")
        slots.append(Slot(generation: 0, element: consume element, nextFree: Slab.noSlot, isOccupied: true))
        return SlabHandle(index: UInt32(slots.count - 1), generation: 0)
    }

    /// Whether `handle` names a live element.
    func contains(_ handle: SlabHandle) -> Bool {
        slotIndex(handle) != nil
    }

    /// The element `handle` names, or nil when the handle is stale (its element was removed).
    ///
    /// For small elements and cold paths. The accessor yields either the slot's element or a nil of
    /// its own, and the optimizer often copies the element out to unify the two: under valgrind,
    /// `connections[handle]?.state` copied and destroyed a whole TCB (1,300 instructions), and
    /// under perf `listeners[handle]?.acceptQueue.count` copied the listener. `withElement` is the
    /// one that never copies.
    subscript(handle: SlabHandle) -> Element? {
        _read {
            if let index = slotIndex(handle) { yield slots[index].element } else { yield nil }
        }
    }

    /// A copy of the element `handle` names, or nil for a stale handle: for small elements (a
    /// half-open entry, a TIME-WAIT record). A plain call, where the subscript is a coroutine whose
    /// frame, when the accessor is not inlined, is allocated on the heap: one malloc per completed
    /// handshake under perf, reading the half-open entry.
    func element(_ handle: SlabHandle) -> Element? {
        guard let index = slotIndex(handle) else { return nil }
        return slots[index].element
    }

    /// Runs `body` on the element in place (no copy of the element), or returns nil for a stale handle.
    mutating func withElement<R>(_ handle: SlabHandle, _ body: (inout Element) throws -> R) rethrows -> R? {
        guard let index = slotIndex(handle) else { return nil }
        return try body(&slots[index].element!)
    }

    /// Removes and returns the element, freeing its slot; nil (and no change) for a stale handle.
    @discardableResult
    mutating func remove(_ handle: SlabHandle) -> Element? {
        guard let index = slotIndex(handle) else { return nil }
        let element = slots[index].element.take()
        free(index)
        return element
    }

    private mutating func free(_ index: Int) {
        slots[index].isOccupied = false
        // Moving the generation on now (not at reuse) makes the old handle stale at once.
        slots[index].generation &+= 1
        slots[index].nextFree = firstFree
        firstFree = UInt32(index)
        count -= 1
    }

    /// Removes the element and destroys it in its slot; false (and no change) for a stale handle.
    @discardableResult
    mutating func delete(_ handle: SlabHandle) -> Bool {
        guard let index = slotIndex(handle) else { return false }
        slots[index].element = nil
        free(index)
        return true
    }

    /// Removes every element; outstanding handles all become stale.
    mutating func removeAll() {
        for index in slots.indices where slots[index].isOccupied {
            remove(SlabHandle(index: UInt32(index), generation: slots[index].generation))
        }
    }

    /// Live handles in slot order. Allocates an array; sweeps on the hot path use
    /// `handle(after:)` or `updateEach(_:)` instead.
    var handles: [SlabHandle] {
        var result: [SlabHandle] = []
        result.reserveCapacity(count)
        var cursor = handle(after: nil)
        while let current = cursor {
            result.append(current)
            cursor = handle(after: current)
        }
        return result
    }

    /// The first live handle in a slot after `previous`'s slot (from the start when nil).
    ///
    /// A cursor that survives mutation: the loop body may remove `previous` or insert elements.
    ///
    ///     var cursor = slab.handle(after: nil)
    ///     while let handle = cursor {
    ///         slab.withElement(handle) { $0.sweepTimers(now: now) }
    ///         cursor = slab.handle(after: handle)
    ///     }
    func handle(after previous: SlabHandle?) -> SlabHandle? {
        var index = previous.map { Int($0.index) + 1 } ?? 0
        while index < slots.count {
            if slots[index].isOccupied {
                return SlabHandle(index: UInt32(index), generation: slots[index].generation)
            }
            index += 1
        }
        return nil
    }

    /// Runs `body` on every live element in place, in slot order.
    mutating func updateEach(_ body: (SlabHandle, inout Element) throws -> Void) rethrows {
        for index in slots.indices where slots[index].isOccupied {
            let handle = SlabHandle(index: UInt32(index), generation: slots[index].generation)
            try body(handle, &slots[index].element!)
        }
    }

    private func slotIndex(_ handle: SlabHandle) -> Int? {
        let index = Int(handle.index)
        guard index < slots.count, slots[index].generation == handle.generation, slots[index].isOccupied else {
            return nil
        }
        return index
    }
}

extension Slab: Sendable where Element: Sendable {}

extension Slab.Slot: Sendable where Element: Sendable {}
