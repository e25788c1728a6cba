import NIOCore
import TCPIPWire

/// A listener's queues, as `ss -lt` shows them (Recv-Q is the accept queue, Send-Q the backlog),
/// with the SYN queue beside them.
public struct ListenerStatus: Hashable, Sendable {
    /// The port listened on.
    public var port: UInt16
    /// Half-open connections (SYN received, SYN-ACK sent) and the most the listener keeps.
    public var synQueue: Int
    /// The most half-open connections it keeps (beyond, SYN cookies or drops).
    public var synQueueLimit: Int
    /// Established connections not yet accepted, and the most it holds.
    public var acceptQueue: Int
    /// The most established connections waiting to be accepted.
    public var backlog: Int
}

extension Stack {
    /// The queues of a listener, or nil for one that is closed.
    public func status(_ id: ListenerID) -> ListenerStatus? {
        listeners[id.handle].map { listener in
            ListenerStatus(
                port: listener.port, synQueue: listener.synQueueCount, synQueueLimit: listener.synQueueLimit,
                acceptQueue: listener.acceptQueue.count, backlog: listener.backlog)
        }
    }

    /// What one half-open entry costs: its slab slot (the entry, the slot's generation and free-list link), its place
    /// in the 4-tuple table and its timer. No buffers: those come with the TCB, after the handshake.
    public static var halfOpenEntryBytes: Int {
        MemoryLayout<HalfOpenConnection?>.stride + 2 * MemoryLayout<UInt32>.stride
            + MemoryLayout<FourTuple>.stride + MemoryLayout<SlabHandle>.stride
            + MemoryLayout<TimerHeap.Entry>.stride
    }

    /// What one TCB costs before any data: its slot, its table entry and its timer.
    public static var connectionEntryBytes: Int {
        MemoryLayout<TCPConnection?>.stride + 2 * MemoryLayout<UInt32>.stride
            + MemoryLayout<FourTuple>.stride + MemoryLayout<SlabHandle>.stride
            + MemoryLayout<TimerHeap.Entry>.stride
    }

    /// Memory the server holds for its handshakes and connections, by the sizes above (buffers
    /// excluded): what a SYN flood can make grow.
    public var handshakeMemoryBytes: Int {
        halfOpen.count * Self.halfOpenEntryBytes + connections.count * Self.connectionEntryBytes
            + timeWait.count * Self.timeWaitEntryBytes
    }
}
