import NIOCore
import TCPIPWire

/// What a stack's connections cost in memory, from its own accounting: the tables it holds and the
/// buffer storage its queues pin. `tcpip bench memory` prints this beside the process's resident size.
public struct StackMemory: Hashable, Sendable {
    /// The connection slabs (TCBs, half-open entries, TIME-WAIT records): slot capacity × slot size
    /// (a TCB is stored inline in its slot).
    public var connectionSlots: Int
    /// The 4-tuple → handle hash tables (connections, half-open, TIME-WAIT), by capacity.
    public var lookupTables: Int
    /// The timer heap and the TIME-WAIT expiry queue, by capacity.
    public var timers: Int
    /// Storage pinned by TCP's send, receive and out-of-order queues and UDP's receive queues
    /// (Linux's truesize).
    public var buffers: Int
    /// Size of one slot, TCB included.
    public var bytesPerSlot: Int
    /// The rings the send and receive queues are kept in, by capacity: nothing for a connection
    /// that never carried data, and nothing again once an idle one gave its buffers back
    /// (`TCPConfiguration.idleBufferReclaim`).
    public var queueRings: Int = 0

    /// Everything above, in bytes.
    public var total: Int { connectionSlots + lookupTables + timers + buffers + queueRings }
}

extension Stack {
    /// The memory this stack's connections hold, as the stack accounts it. O(connections): for reports.
    public var memory: StackMemory {
        var buffers = 0
        var rings = 0
        for handle in connections.handles {
            guard let connection = connections[handle] else { continue }
            rings += connection.sendBuffer.queueStorageBytes + connection.receiveBuffer.queueStorageBytes
            // Recounted chunk by chunk, so comparing this with `memoryInUse` checks the running totals.
            buffers += connection.sendBuffer.recountedPinnedBytes + connection.receiveBuffer.pinnedBytes
                + connection.reassembly.pinnedBytes
        }
        for handle in udpEndpoints.handles {
            buffers += udpEndpoints[handle]?.queue.reduce(0) { $0 + $1.payload.pinnedStorageBytes } ?? 0
        }
        let tableEntry = MemoryLayout<FourTuple>.stride + MemoryLayout<SlabHandle>.stride
        // A Swift Dictionary stores keys and values in separate arrays plus one bit per bucket.
        let tableCapacity = connectionTable.capacity + halfOpenTable.capacity + timeWaitTable.capacity
        let tables = tableCapacity * tableEntry + tableCapacity / 8
        return StackMemory(
            connectionSlots: connections.storageBytes + halfOpen.storageBytes + timeWait.storageBytes,
            lookupTables: tables,
            timers: timers.storageBytes + timeWaitExpiries.capacity * MemoryLayout<TimeWaitExpiry>.stride,
            buffers: buffers,
            bytesPerSlot: Slab<TCPConnection>.slotStride,
            queueRings: rings)
    }
}

/// The storage all connections' queues pin, kept current by `withConnection` and `removeConnection`
/// so that the memory budget costs O(1) per segment.
struct PinnedTotals {
    /// Send, receive and out-of-order queues together.
    var buffers = 0
    /// Out-of-order queues alone: what pressure prunes first.
    var outOfOrder = 0
    /// UDP endpoints' receive queues (Stack+UDP.swift keeps it).
    var datagrams = 0
}

/// A stack's memory against its budget (`Stack.memoryPressure`), as Linux's tcp_mem states.
public enum MemoryPressure: String, Hashable, Sendable {
    /// Below the pressure threshold: buffers grow as their connections need.
    case normal
    /// Buffers stop growing; the largest shrink to the fair share.
    case pressure
    /// New connections are refused; at the budget itself, arriving data is dropped.
    case limit
}

/// What a stack at its memory budget does with a new connection (`StackConfiguration.memoryBudget`).
public enum MemoryBudgetRefusal: String, Hashable, Sendable {
    /// Answer the SYN (or the ACK returning a SYN cookie) with an RST: the client fails at once.
    case reset
    /// Drop it: the client retries its SYN with backoff, and gets in once memory is free again.
    case silence
}

extension TCPConnection {
    /// Storage this connection's send, receive and out-of-order queues pin.
    var pinnedBytes: Int { sendBuffer.pinnedBytes + receiveBuffer.pinnedBytes + reassembly.pinnedBytes }
}

// MARK: - The stack-wide memory budget

extension Stack {
    /// Bytes the stack pins by its own accounting: connection slots, half-open entries, and the
    /// storage of every send, receive and out-of-order queue and of every UDP receive queue. O(1).
    /// This is what `StackConfiguration.memoryBudget` bounds (its tables and timer heap grow with the
    /// counts and are left out, as Linux's tcp_mem leaves out its hash tables).
    public var memoryInUse: Int {
        pinned.buffers + pinned.datagrams + connections.count * Self.connectionEntryBytes + halfOpen.count * Self.halfOpenEntryBytes
            + timeWait.count * Self.timeWaitEntryBytes + requests.count * Self.connectionRequestEntryBytes
    }

    /// Runs `body` on a connection and keeps the pinned totals in step with what it did to the queues.
    @inline(__always)
    func withConnection<R>(_ handle: SlabHandle, _ body: (inout TCPConnection) -> R) -> R? {
        connections.withElement(handle) { connection in
            let buffers = connection.pinnedBytes
            let outOfOrder = connection.reassembly.pinnedBytes
            let result = body(&connection)
            pinned.buffers += connection.pinnedBytes - buffers
            pinned.outOfOrder += connection.reassembly.pinnedBytes - outOfOrder
            return result
        }
    }

    /// `withConnection` with a segment moved into `body` (`Slab.withElement(_:passing:_:)`).
    @inline(__always)
    func withConnection<R>(
        _ handle: SlabHandle, passing segment: consuming IncomingSegment,
        _ body: (inout TCPConnection, consuming IncomingSegment) -> R
    ) -> R? {
        connections.withElement(handle, passing: segment) { connection, segment in
            let buffers = connection.pinnedBytes
            let outOfOrder = connection.reassembly.pinnedBytes
            let result = body(&connection, segment)
            pinned.buffers += connection.pinnedBytes - buffers
            pinned.outOfOrder += connection.reassembly.pinnedBytes - outOfOrder
            return result
        }
    }

    /// Frees a connection's slot and table entry, and what its queues pinned.
    ///
    /// The TCB is destroyed in its slot (`Slab.delete`), not moved out first: the moves of 1.2 KB
    /// TCBs out of their slots were 1.4% of the connection-rate benchmark under perf, 0.5% after.
    func removeConnection(_ handle: SlabHandle) {
        guard let (tuple, buffers, outOfOrder) = connections.withElement(handle, { connection in
            if recycledScoreboards.count < Self.recycledScoreboardLimit, let storage = connection.scoreboard.takeStorage() {
                recycledScoreboards.append(storage)
            }
            return (connection.tuple, connection.pinnedBytes, connection.reassembly.pinnedBytes)
        }) else { return }
        connections.delete(handle)
        timers.cancel(.connection(handle))
        if !acceptedConfigurations.isEmpty { acceptedConfigurations[handle] = nil }
        connectionTable[tuple] = nil
        pinned.buffers -= buffers
        pinned.outOfOrder -= outOfOrder
    }

    /// Where the stack stands against its budget, as Linux's tcp_mem: below two thirds, buffers grow
    /// as their connections need; from there, under pressure, no buffer grows and those above the
    /// fair share shrink to it; in the last eighth, at the limit, new connections are refused too
    /// (and at the budget itself, arriving data is dropped). O(1).
    public var memoryPressure: MemoryPressure {
        guard let budget = configuration.memoryBudget else { return .normal }
        let inUse = memoryInUse
        if inUse + Self.connectionEntryBytes > budget - budget / 8 { return .limit }
        return inUse >= Self.pressureThreshold(budget) ? .pressure : .normal
    }

    /// tcp_mem's "pressure": two thirds of the budget (Linux's defaults put it at two thirds of "high").
    static func pressureThreshold(_ budget: Int) -> Int { budget / 3 * 2 }

    /// Tells the connection about to run how far its buffers may go (`StackIO.bufferCeiling`): no
    /// limit below the pressure threshold; above it, the fair share — the threshold divided among
    /// the connections — so growth stops and the largest buffers shrink first. Called only with a budget.
    func updateBufferCeiling() {
        guard let budget = configuration.memoryBudget else { return }
        let threshold = Self.pressureThreshold(budget)
        io.bufferCeiling = memoryInUse >= threshold ? threshold / max(1, 2 * connections.count) : nil
    }

    /// Whether the budget has room for one more connection. The last eighth of the budget is kept
    /// for the connections already open (Linux's tcp_mem "pressure" below its hard limit): at the
    /// limit they can still take in data while new ones are turned away.
    func admitsNewConnection() -> Bool {
        guard let budget = configuration.memoryBudget else { return true }
        return memoryInUse + Self.connectionEntryBytes <= budget - budget / 8
    }

    /// Turns a new connection away at the budget, as configured: RST or silence, counted either way.
    func refuseForMemory(tuple: FourTuple, _ segment: IncomingSegment, now: Instant) {
        io.counters.memoryBudgetRefusals &+= 1
        io.decision("memory budget", "\(memoryInUse) of \(configuration.memoryBudget ?? 0) bytes in use: new connection refused"
                        + (configuration.memoryBudgetRefusal == .reset ? " with RST" : ""),
                    connection: tuple, now: now)
        guard configuration.memoryBudgetRefusal == .reset else { return }
        if segment.flags.contains(.ack) {
            sendReset(tuple: tuple, sequence: segment.ack, acknowledging: nil)
        } else {
            sendReset(tuple: tuple, sequence: SequenceNumber(0), acknowledging: segment.seq + segment.length)
        }
    }

    /// Makes room for `bytes` more under the budget, pruning out-of-order queues if it must.
    /// - Returns: false when even that leaves no room: the caller must not queue them.
    func makeRoom(for bytes: Int) -> Bool {
        guard let budget = configuration.memoryBudget else { return true }
        if memoryInUse + bytes <= budget { return true }
        pruneOutOfOrder(toFree: memoryInUse + bytes - budget)
        return memoryInUse + bytes <= budget
    }

    /// Brings the stack back under its budget after a segment, pruning out-of-order data.
    func enforceBudget() {
        guard let budget = configuration.memoryBudget, memoryInUse > budget else { return }
        pruneOutOfOrder(toFree: memoryInUse - budget)
    }

    /// Drops out-of-order data, whole queues at a time, until `bytes` are freed or none is left —
    /// the first thing to go under memory pressure, as in Linux's tcp_prune_ofo_queue: the peers
    /// still hold that data and send it again. RFC 2018 §8 lets a receiver discard data it has SACKed.
    func pruneOutOfOrder(toFree bytes: Int) {
        guard pinned.outOfOrder > 0 else { return }
        var freed = 0
        var cursor = connections.handle(after: nil)
        while let handle = cursor, freed < bytes, pinned.outOfOrder > 0 {
            cursor = connections.handle(after: handle)
            let released = withConnection(handle) { connection -> Int in
                let before = connection.reassembly.pinnedBytes
                guard before > 0 else { return 0 }
                connection.reassembly.prune(toPinnedBytes: 0)
                return before - connection.reassembly.pinnedBytes
            } ?? 0
            if released > 0 {
                freed += released
                io.counters.memoryBudgetOutOfOrderPrunes &+= 1
            }
        }
    }
}
