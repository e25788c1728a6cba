/// A reference to an element of a `Slab`: a slot index and the generation of the slot when it was filled.
///
/// When a slot is freed its generation moves on, so an old handle stops matching: a connection closed and
/// its slot reused by a new one is never reached through the old connection's handle.
public struct SlabHandle: Hashable, Sendable, CustomStringConvertible {
    /// The slot.
    public let index: UInt32
    /// The slot's generation when it was filled.
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
///
/// The slots are memory the slab manages itself, not a Swift array of optionals: an element is
/// initialized in place when inserted and destroyed in place when deleted, with the element type's
/// own code. Through `[Element?]`, clearing a slot called the runtime's generic `Optional` witnesses
/// around the TCB's destroy (950 instructions per connection closed where the destroy is 525), and
/// every access paid the array's uniqueness and bounds checks. Noncopyable, so nothing can share the
/// slots: the slab is its one owner, and frees them in `deinit`.
struct Slab<Element>: ~Copyable {
    private struct Slot {
        var generation: UInt32
        /// The next vacant slot when this one is vacant, `noSlot` at the end of the free list.
        var nextFree: UInt32
        /// Whether the element at this index is initialized.
        var isOccupied: Bool
    }

    private static var noSlot: UInt32 { .max }

    /// `capacity` elements, of which those whose slot `isOccupied` are initialized.
    private var elements: UnsafeMutablePointer<Element>
    /// `capacity` slots, of which the first `used` are initialized.
    private var slots: UnsafeMutablePointer<Slot>
    private var capacity: Int = 0
    /// Slots handed out so far (occupied or on the free list); the rest of the capacity is fresh.
    private var used: Int = 0
    private var firstFree: UInt32 = Slab.noSlot

    /// The number of live elements.
    private(set) var count: Int = 0

    init() {
        elements = UnsafeMutablePointer<Element>.allocate(capacity: 0)
        slots = UnsafeMutablePointer<Slot>.allocate(capacity: 0)
    }

    deinit {
        for index in 0..<used where slots[index].isOccupied {
            (elements + index).deinitialize(count: 1)
        }
        slots.deinitialize(count: used)
        elements.deallocate()
        slots.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    /// Bytes of the slots as allocated (their capacity, not their count): what the slab itself costs.
    var storageBytes: Int { capacity * Self.slotStride }

    /// Bytes one slot takes, element included.
    static var slotStride: Int { MemoryLayout<Element>.stride + MemoryLayout<Slot>.stride }

    /// Stores the element `make` returns in a free slot, as `insert(_:)` does, built there: a TCB
    /// (1,184 bytes) built in the caller's frame and then moved in was a copy through 19 more
    /// cache lines of stack on every connection open and every passive open's promotion.
    @inline(__always)
    mutating func insert(making make: () -> Element) -> SlabHandle {
        let index = freeSlot()
        (elements + index).initialize(to: make())
        count += 1
        return SlabHandle(index: UInt32(index), generation: slots[index].generation)
    }

    /// A free slot, marked occupied (the most recently freed one, else a new one).
    @inline(__always)
    private mutating func freeSlot() -> Int {
        if firstFree != Slab.noSlot {
            let index = Int(firstFree)
            firstFree = slots[index].nextFree
            slots[index].nextFree = Slab.noSlot
            slots[index].isOccupied = true
            return index
        }
        precondition(used < Int(Slab.noSlot), "slab is full")
        if used == capacity { grow() }
        let index = used
        (slots + index).initialize(to: Slot(generation: 0, nextFree: Slab.noSlot, isOccupied: true))
        used += 1
        return index
    }

    /// Stores `element` in a free slot (the most recently freed one, else a new one) and returns its handle.
    /// The element is moved in: a caller's last use of a local TCB hands it over without a copy.
    mutating func insert(_ element: consuming Element) -> SlabHandle {
        let index = freeSlot()
        (elements + index).initialize(to: element)
        count += 1
        return SlabHandle(index: UInt32(index), generation: slots[index].generation)
    }

    /// Doubles the capacity, moving the occupied elements and the slots over.
    private mutating func grow() {
        let newCapacity = max(16, capacity * 2)
        let newElements = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        let newSlots = UnsafeMutablePointer<Slot>.allocate(capacity: newCapacity)
        for index in 0..<used where slots[index].isOccupied {
            (newElements + index).moveInitialize(from: elements + index, count: 1)
        }
        newSlots.moveInitialize(from: slots, count: used)
        elements.deallocate()
        slots.deallocate()
        elements = newElements
        slots = newSlots
        capacity = newCapacity
    }

    /// Whether `handle` names a live element.
    func contains(_ handle: SlabHandle) -> Bool {
        slotIndex(handle) != nil
    }

    /// A copy of the element `handle` names, or nil for a stale handle: for small elements (a
    /// half-open entry, a TIME-WAIT record) and cold paths. `withElement` reads or changes one in
    /// place, without a copy; `contains` asks whether it is there.
    subscript(handle: SlabHandle) -> Element? {
        guard let index = slotIndex(handle) else { return nil }
        return elements[index]
    }

    /// Runs `body` on the element in place (no copy of the element), or returns nil for a stale handle.
    mutating func withElement<R>(_ handle: SlabHandle, _ body: (inout Element) throws -> R) rethrows -> R? {
        guard let index = slotIndex(handle) else { return nil }
        return try body(&elements[index])
    }

    /// `withElement` with a value handed to `body` by move: a closure can only borrow what it
    /// captures, and moving a capture out (an optional's `take()`) cost a copy of the value and a
    /// generic destroy of the emptied optional. Dropped with a stale handle.
    mutating func withElement<Argument: ~Copyable, R>(
        _ handle: SlabHandle, passing argument: consuming Argument, _ body: (inout Element, consuming Argument) throws -> R
    ) rethrows -> R? {
        guard let index = slotIndex(handle) else { return nil }
        return try body(&elements[index], argument)
    }

    /// Removes and returns the element, freeing its slot; nil (and no change) for a stale handle.
    @discardableResult
    mutating func remove(_ handle: SlabHandle) -> Element? {
        guard let index = slotIndex(handle) else { return nil }
        let element = (elements + index).move()
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
        (elements + index).deinitialize(count: 1)
        free(index)
        return true
    }

    /// Removes every element; outstanding handles all become stale.
    mutating func removeAll() {
        for index in 0..<used where slots[index].isOccupied {
            delete(SlabHandle(index: UInt32(index), generation: slots[index].generation))
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
        while index < used {
            if slots[index].isOccupied {
                return SlabHandle(index: UInt32(index), generation: slots[index].generation)
            }
            index += 1
        }
        return nil
    }

    /// Runs `body` on every live element in place, in slot order.
    mutating func updateEach(_ body: (SlabHandle, inout Element) throws -> Void) rethrows {
        for index in 0..<used where slots[index].isOccupied {
            let handle = SlabHandle(index: UInt32(index), generation: slots[index].generation)
            try body(handle, &elements[index])
        }
    }

    private func slotIndex(_ handle: SlabHandle) -> Int? {
        let index = Int(handle.index)
        guard index < used, slots[index].generation == handle.generation, slots[index].isOccupied else {
            return nil
        }
        return index
    }
}

// The slots are reached only through the slab, which has one owner at a time (it cannot be copied).
extension Slab: @unchecked Sendable where Element: Sendable {}
