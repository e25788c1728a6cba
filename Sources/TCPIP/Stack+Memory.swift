import NIOCore
import TCPIPWire

/// What a stack's connections cost in memory, from its own accounting: the tables it holds and the
/// buffer storage its queues pin. `tcpip bench memory` prints this beside the process's resident size.
public struct StackMemory: Hashable, Sendable {
    /// The connection slab: slot capacity × slot size (a TCB is stored inline in its slot).
    public var connectionSlots: Int
    /// The 4-tuple → handle hash tables (established and half-open), by capacity.
    public var lookupTables: Int
    /// The timer heap, by capacity.
    public var timers: Int
    /// Storage pinned by send, receive and out-of-order queues (Linux's truesize).
    public var buffers: Int
    /// Size of one slot, TCB included.
    public var bytesPerSlot: Int

    public var total: Int { connectionSlots + lookupTables + timers + buffers }
}

extension Stack {
    /// The memory this stack's connections hold, as the stack accounts it. O(connections): for reports.
    public var memory: StackMemory {
        var buffers = 0
        for handle in connections.handles {
            guard let connection = connections[handle] else { continue }
            buffers += connection.sendBuffer.pinnedBytes + connection.receiveBuffer.pinnedBytes
                + connection.reassembly.pinnedBytes
        }
        let tableEntry = MemoryLayout<FourTuple>.stride + MemoryLayout<SlabHandle>.stride
        // A Swift Dictionary stores keys and values in separate arrays plus one bit per bucket.
        let tables = (connectionTable.capacity + halfOpenTable.capacity) * tableEntry
            + (connectionTable.capacity + halfOpenTable.capacity) / 8
        return StackMemory(
            connectionSlots: connections.storageBytes + halfOpen.storageBytes,
            lookupTables: tables,
            timers: timers.storageBytes,
            buffers: buffers,
            bytesPerSlot: Slab<TCPConnection>.slotStride)
    }
}
