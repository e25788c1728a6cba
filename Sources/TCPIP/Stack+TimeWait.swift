import NIOCore
import TCPIPWire

/// TIME-WAIT connections whose application has let go of them, kept as `TimeWaitConnection` records
/// instead of whole TCBs: a table by 4-tuple, and their 2·MSL expiries.
extension Stack {
    /// Connections held in TIME-WAIT as compact records (not counted in `connectionCount`).
    public var timeWaitCount: Int { timeWait.count }

    /// The state of the connection on `tuple`, whatever holds it — a TCB, a TIME-WAIT record or a
    /// half-open entry — or nil when there is none. This reaches connections whose handles the
    /// application has let go of, as `ss` lists sockets no process holds.
    public func state(of tuple: FourTuple) -> TCPState? {
        if let handle = connectionTable[tuple] { return connections.withElement(handle) { $0.state } }
        if let handle = timeWaitTable[tuple], let record = timeWait[handle] { return .timeWait(until: record.until) }
        if halfOpenTable[tuple] != nil { return .synReceived }
        return nil
    }

    /// What one TIME-WAIT record costs: its slot, its table entry and its expiry.
    public static var timeWaitEntryBytes: Int {
        MemoryLayout<TimeWaitConnection?>.stride + 2 * MemoryLayout<UInt32>.stride
            + MemoryLayout<FourTuple>.stride + MemoryLayout<SlabHandle>.stride
            + MemoryLayout<TimeWaitExpiry>.stride
    }

    /// Replaces the TCB at `handle` by a TIME-WAIT record when it can be (`TimeWaitConnection.init?`).
    /// Returns whether it did; the handle is then stale, as for any connection that is gone.
    func reduceToTimeWait(_ handle: SlabHandle, now: Instant) -> Bool {
        guard let record = connections.withElement(handle, { TimeWaitConnection($0) }) ?? nil else { return false }
        removeConnection(handle)
        guard timeWait.count < configuration.maximumTimeWaitRecords else {
            io.counters.timeWaitOverflows &+= 1
            io.decision("RFC 9293 §3.10.7.4", "TIME-WAIT record limit (\(configuration.maximumTimeWaitRecords)) reached: closed without the 2·MSL wait",
                        connection: record.tuple, now: now)
            return true
        }
        let recordHandle = timeWait.insert(record)
        timeWaitTable[record.tuple] = recordHandle
        if let last = timeWaitExpiries.last, record.until < last.deadline {
            // Expiries nearly always come in order (2·MSL after each close), so a queue holds them;
            // one that would jump the queue (a connection released long after it entered TIME-WAIT)
            // goes to the timer heap instead.
            timers.schedule(.timeWait(recordHandle), at: record.until)
        } else {
            timeWaitExpiries.append(TimeWaitExpiry(handle: recordHandle, deadline: record.until))
        }
        return true
    }

    /// A segment has arrived for a 4-tuple in TIME-WAIT: the TCB is rebuilt from its record, so the
    /// segment meets the same RFC 9293 §3.10.7.4 processing as in any other state. Returns its handle.
    func rebuildTimeWait(_ tuple: FourTuple) -> SlabHandle? {
        guard let recordHandle = timeWaitTable.removeValue(forKey: tuple),
              let record = timeWait.remove(recordHandle)
        else { return nil }
        timers.cancel(.timeWait(recordHandle))
        let handle = connections.insert(record.rebuilt(configuration: sharedTCPConfiguration))
        connections.withElement(handle) { $0.handle = handle }
        connectionTable[tuple] = handle
        return handle
    }

    /// Forgets the TIME-WAIT records whose 2·MSL has elapsed (RFC 9293 §3.10.8: "delete the TCB,
    /// enter the CLOSED state"). Nothing is sent and nobody is told: the application let go long ago.
    func expireTimeWait(now: Instant) {
        while let first = timeWaitExpiries.first, first.deadline <= now {
            timeWaitExpiries.removeFirst()
            timeWaitExpired(first.handle, deadline: first.deadline)
        }
    }

    func timeWaitExpired(_ handle: SlabHandle, deadline: Instant) {
        // A stale handle: the record was rebuilt into a TCB when a segment arrived.
        guard let record = timeWait[handle], record.until == deadline else { return }
        timeWait.remove(handle)
        timers.cancel(.timeWait(handle))
        timeWaitTable[record.tuple] = nil
    }
}

/// When a TIME-WAIT record's 2·MSL ends.
struct TimeWaitExpiry {
    var handle: SlabHandle
    var deadline: Instant
}
