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
    func rebuildTimeWait(_ recordHandle: SlabHandle) -> SlabHandle? {
        guard let record = removeTimeWait(recordHandle) else { return nil }
        let handle = connections.insert(record.rebuilt(configuration: sharedTCPConfiguration))
        connections.withElement(handle) { $0.handle = handle }
        connectionTable[record.tuple] = handle
        return handle
    }

    /// Forgets a TIME-WAIT record, returning it.
    @discardableResult
    func removeTimeWait(_ recordHandle: SlabHandle) -> TimeWaitConnection? {
        guard let record = timeWait.remove(recordHandle) else { return nil }
        timeWaitTable[record.tuple] = nil
        timers.cancel(.timeWait(recordHandle))
        return record
    }

    // MARK: A new incarnation (RFC 6191, RFC 1122 §4.2.2.13)

    /// A segment for a 4-tuple in TIME-WAIT (`recordHandle` is its record).
    ///
    /// A SYN that cannot be an old duplicate of the connection the record keeps (RFC 6191 §2; RFC 1122
    /// §4.2.2.13 without timestamps) ends the TIME-WAIT and goes to the listener as a new connection
    /// request, as BSD and Linux accept it. Any other segment — and such a SYN that fails the test,
    /// or finds no listener — meets the old incarnation's TCB rebuilt from the record, which answers
    /// a SYN with an ACK (RFC 9293 §3.10.7.4, RFC 5961 §4) and ignores an RST (RFC 1337).
    ///
    /// DEVIATION(RFC 1122 §4.2.2.13 (2)): a reopened connection does not return to TIME-WAIT if the
    /// SYN turns out to be an old duplicate (an RST answers our SYN-ACK): the half-open entry is
    /// simply forgotten, as BSD and Linux do, because keeping the record beside every half-open entry
    /// would double what TIME-WAIT costs for a case the tests above make rare.
    /// DEVIATION(RFC 6191 §2): a SYN that fails the test is answered with an ACK rather than silently
    /// dropped, as Linux does and this stack did before: a peer that lost its state learns from it (its
    /// RST is ignored, RFC 1337) and retries.
    func timeWaitSegmentArrives(_ recordHandle: SlabHandle, _ segment: consuming IncomingSegment, now: Instant) {
        if segment.syn, !segment.flags.contains(.ack), !segment.flags.contains(.rst),
           let record = timeWait[recordHandle], case let listener = listener(for: record.tuple.local),
           listener != nil || interceptsEverything {
            let timestamps = segment.header.options.timestamps
            let verdict = record.verdict(onSYN: segment.seq, timestamps: timestamps, timestampsOn: configuration.tcp.timestamps)
            let sequence = segment.seq
            // For the trace only, so built only when it records.
            func shown() -> String {
                timestamps.map { "TSval \($0.value), TS.Recent \(record.tsRecent)" }
                    ?? "SEG.SEQ \(sequence), RCV.NXT \(record.rcvNxt)"
            }
            switch verdict {
            case .newerTimestamp, .sameTimestampHigherSequence, .timestampsNew, .higherSequence:
                if admitsNewConnection() {
                    removeTimeWait(recordHandle)
                    if verdict == .higherSequence {
                        io.counters.timeWaitRecycledBySequence &+= 1
                        io.decision("RFC 1122 §4.2.2.13", "TIME-WAIT recycled by RFC 1122: SYN past the old incarnation (\(shown()))",
                                    connection: record.tuple, now: now)
                    } else {
                        io.counters.timeWaitRecycledByTimestamp &+= 1
                        io.decision("RFC 6191 §2", "TIME-WAIT recycled by RFC 6191: SYN newer than the old incarnation (\(shown()))",
                                    connection: record.tuple, now: now)
                    }
                    if let listener {
                        listenSegmentArrives(listener, tuple: record.tuple, segment, now: now, previousSndNxt: record.sndNxt)
                    } else {
                        // Intercept mode: the new incarnation is a connection request like any other.
                        interceptedSegmentArrives(tuple: record.tuple, segment, now: now, previousSndNxt: record.sndNxt)
                    }
                    return
                }
            case .oldTimestamp:
                io.counters.timeWaitSYNsRejected &+= 1
                io.decision("RFC 6191 §2", "SYN in TIME-WAIT rejected: old TSval (\(shown()))", connection: record.tuple, now: now)
            case .oldSequence:
                io.counters.timeWaitSYNsRejected &+= 1
                io.decision("RFC 1122 §4.2.2.13", "SYN in TIME-WAIT rejected: old sequence number (\(shown()))",
                            connection: record.tuple, now: now)
            }
        }
        guard let handle = rebuildTimeWait(recordHandle) else { return }
        connectionSegmentArrives(handle, segment, now: now)
    }

    /// The ISS of a new incarnation of a 4-tuple whose last one sent up to `previousSndNxt`, and its
    /// timestamp offset (RFC 7323 §5.4), both from one keyed hash (`InitialSequenceNumberGenerator`).
    ///
    /// RFC 1122 §4.2.2.13 (1): reopening from TIME-WAIT, the ISS must be "larger than the largest
    /// sequence number it used on the previous connection incarnation". The RFC 6528 clock makes it
    /// so unless the old incarnation sent faster than the clock ticks (250,000 octets a second); then,
    /// as Linux, SND.NXT + 65537: past anything the old connection could have had acknowledged, so no
    /// old duplicate ACK is acceptable in the new one. With timestamps RFC 6191 does not need it, but
    /// it costs nothing, and the peer may not check PAWS on every segment.
    func initialNumbers(
        for tuple: FourTuple, now: Instant, previousSndNxt: SequenceNumber?
    ) -> (iss: SequenceNumber, timestampOffset: UInt32) {
        let numbers = initialSequenceNumbers.numbers(for: tuple, now: now)
        guard let previousSndNxt, !numbers.iss.isAfter(previousSndNxt) else { return numbers }
        return (previousSndNxt + UInt32(65537), numbers.timestampOffset)
    }

    /// A TIME-WAIT record that `connect` may take over for `tuple`, under Linux's `tcp_tw_reuse`
    /// conditions (`TimeWaitConnection.reusableForConnect`), or nil.
    func reusableTimeWait(_ tuple: FourTuple, now: Instant) -> SlabHandle? {
        guard configuration.timeWaitReuse, let recordHandle = timeWaitTable[tuple],
              let reusable = timeWait.withElement(recordHandle, { $0.reusableForConnect(now: now, after: .seconds(1)) }),
              reusable
        else { return nil }
        return recordHandle
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
