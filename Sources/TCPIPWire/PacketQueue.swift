/// A first-in, first-out ring that moves elements out rather than copying them: the queues the
/// packets of a stream pass through (datagrams to send, payload chunks to read, a link's wire).
///
/// NIO's `CircularBuffer` returns a copy of its first element and then destroys the one it held
/// (`removeFirst`, `popFirst`); for a `ByteBuffer` that is a retain and a release per packet and
/// queue which a move does not need. With three such queues on a datagram's way (the stack's
/// outgoing queue, the receive buffer, the in-memory link) and the `PacketRecycler`'s ring, moving
/// instead took `tcpip bench bulk --mtu 1500` from 21.1 to 22.5 Gbit/s.
public struct PacketQueue<Element> {
    /// A power-of-two number of slots; the elements are `count` slots from `head`, wrapping.
    @usableFromInline var slots: ContiguousArray<Element?>
    @usableFromInline var head = 0
    @usableFromInline var storedCount = 0

    /// An empty queue that allocates nothing until its first element: a TCB's queues cost no malloc
    /// while the connection has nothing queued, and a connection that never carries data (a short
    /// request refused, a port scan) never allocates them at all.
    @inlinable
    public init() {
        slots = []
    }

    /// A queue with room for `initialCapacity` elements (rounded up to a power of two) allocated now.
    @inlinable
    public init(initialCapacity: Int) {
        var capacity = 2
        while capacity < initialCapacity { capacity <<= 1 }
        slots = ContiguousArray(repeating: nil, count: capacity)
    }

    /// Elements in the queue.
    @inlinable public var count: Int { storedCount }
    /// Whether the queue holds nothing.
    @inlinable public var isEmpty: Bool { storedCount == 0 }
    /// Slots allocated (the queue grows by doubling and never shrinks).
    @inlinable public var capacity: Int { slots.count }

    /// A copy of the first element.
    @inlinable public var first: Element? { storedCount > 0 ? slots[head] : nil }

    /// Adds `element` at the end; `consuming`, so that a caller's last use of it moves it in.
    @inlinable
    public mutating func append(_ element: consuming Element) {
        if storedCount == slots.count { grow() }
        slots[slot(storedCount)] = element
        storedCount &+= 1
    }

    /// Removes the first element and returns it, moved out of its slot.
    @inlinable
    public mutating func popFirst() -> Element? {
        guard storedCount > 0 else { return nil }
        let element = slots[head].take()
        head = slot(1)
        storedCount &-= 1
        return element
    }

    /// The element `offset` places behind the first, copied.
    ///
    /// - Precondition: `offset < count`.
    @inlinable
    public subscript(offset offset: Int) -> Element {
        precondition(offset >= 0 && offset < storedCount, "PacketQueue offset out of range")
        return slots[slot(offset)]!
    }

    /// Runs `body` on the element `offset` places behind the first, borrowed where it lies: reading
    /// through `subscript(offset:)` copies the element (for a `ByteBuffer`, a retain and a release).
    ///
    /// - Precondition: `offset < count`.
    @inlinable
    public func withElement<Result>(offset: Int, _ body: (borrowing Element) throws -> Result) rethrows -> Result {
        precondition(offset >= 0 && offset < storedCount, "PacketQueue offset out of range")
        let index = slot(offset)
        return try slots.withUnsafeBufferPointer { slots in try body(slots[index]!) }
    }

    /// Runs `body` in place on the element `offset` places behind the first.
    ///
    /// - Precondition: `offset < count`.
    @inlinable
    public mutating func modify<Result>(offset: Int, _ body: (inout Element) throws -> Result) rethrows -> Result {
        precondition(offset >= 0 && offset < storedCount, "PacketQueue offset out of range")
        return try body(&slots[slot(offset)]!)
    }

    /// Runs `body` on the first element in place.
    ///
    /// - Precondition: the queue is not empty.
    @inlinable
    public mutating func modifyFirst<Result>(_ body: (inout Element) throws -> Result) rethrows -> Result {
        precondition(storedCount > 0, "modifyFirst on an empty PacketQueue")
        return try body(&slots[head]!)
    }

    /// Runs `body` on the first element in place, or returns nil when the queue is empty.
    @inlinable
    public mutating func modifyFirstIfAny<Result>(_ body: (inout Element) throws -> Result) rethrows -> Result? {
        guard storedCount > 0 else { return nil }
        return try body(&slots[head]!)
    }

    /// Empties the queue; with `keepingCapacity`, its slots stay allocated for reuse.
    @inlinable
    public mutating func removeAll(keepingCapacity: Bool = false) {
        if keepingCapacity {
            while popFirst() != nil {}
        } else {
            self = PacketQueue()
        }
    }

    /// The slot `offset` places behind the head, wrapping (the capacity is a power of two).
    @inlinable
    func slot(_ offset: Int) -> Int {
        (head &+ offset) & (slots.count &- 1)
    }

    @usableFromInline
    mutating func grow() {
        var larger = ContiguousArray<Element?>(repeating: nil, count: Swift.max(slots.count * 2, 4))
        for offset in 0..<storedCount {
            larger[offset] = slots[slot(offset)].take()
        }
        slots = larger
        head = 0
    }
}

extension PacketQueue: Sequence {
    public struct Iterator: IteratorProtocol {
        @usableFromInline let queue: PacketQueue
        @usableFromInline var offset = 0

        @inlinable init(queue: PacketQueue) { self.queue = queue }

        @inlinable
        public mutating func next() -> Element? {
            guard offset < queue.storedCount else { return nil }
            defer { offset += 1 }
            return queue.slots[queue.slot(offset)]
        }
    }

    @inlinable public func makeIterator() -> Iterator { Iterator(queue: self) }
    @inlinable public var underestimatedCount: Int { storedCount }
}

extension PacketQueue: Sendable where Element: Sendable {}
