import NIOCore
import TCPIPWire

/// The sender's record of what is in flight: one entry per segment sent and not yet cumulatively
/// acknowledged, with what SACK (RFC 2018), RFC 6675 and RACK (RFC 8985 §6.1) need to know about it.
///
///     SND.UNA                                                         SND.MAX
///        [ seg ][ seg S ][ seg L ][ seg LR ][ seg S ][ seg ]...[ seg ]
///                  S = SACKed   L = lost   LR = lost and retransmitted
///
/// pipe (RFC 6675 §4 SetPipe) is kept as running byte totals, so reading it is O(1):
/// FlightSize − SACKed − lost + lost-and-retransmitted. With nothing SACKed or lost it equals
/// FlightSize, and the bulk path does no more than append an entry per segment sent and drop entries
/// per ACK — the array keeps its capacity, so neither allocates in steady state.
///
/// Bounded: at most `maximumSegments` entries, or one per `octetsPerEntry` octets in flight when that
/// is more. Beyond it a new segment extends the last entry, and a SACK block that would split an
/// entry marks only the entries it covers whole; `refusedSplits` counts those, so a peer's SACK
/// blocks can cost precision but never memory out of proportion to what is in flight (an entry is
/// 24 bytes: under 5 % of the octets it describes). The bound grows with the flight because a fixed
/// one cost precision on every long fat path: with 2,048 entries, a window of 6,000 full-sized
/// segments (50 ms at 500 Mbit/s) ran into it, SACKed octets inside merged entries were resent, the
/// receiver D-SACKed them, and the recovery was undone as spurious (RFC 2883 §4.1) when it was not.
struct Scoreboard {
    static let maximumSegments = 2048
    /// Past `maximumSegments`, one more entry per this many octets in flight (well under an MSS, so
    /// full-sized segments always get an entry each).
    static let octetsPerEntry = 512

    struct Flags: OptionSet, Hashable {
        let rawValue: UInt8
        /// Reported by a SACK block (RFC 6675 §2 "SACKed").
        static let sacked = Flags(rawValue: 1)
        /// Judged lost (RFC 6675 IsLost, RACK, or an RTO) and not known to have arrived.
        static let lost = Flags(rawValue: 2)
        /// Lost, then sent again: the retransmission is in flight (counts in pipe once more, RFC 6675 §4).
        static let retransmitted = Flags(rawValue: 4)
        /// Sent more than once, ever (RFC 8985 Segment.retransmitted).
        static let everRetransmitted = Flags(rawValue: 8)
    }

    struct Segment: Hashable {
        var start: SequenceNumber
        var end: SequenceNumber
        /// RFC 8985 Segment.xmit_ts: when it was last (re)transmitted.
        var sentAt: Instant
        var flags: Flags = []
        var length: Int { Int(start.octets(to: end)) }
    }

    /// Entries from `head` on are live, in ascending sequence order and contiguous.
    private var segments: [Segment] = []
    private var head = 0

    /// Octets SACKed above SND.UNA.
    private(set) var sackedBytes = 0
    /// Entries SACKed (RFC 8985 RACK.segs_sacked).
    private(set) var sackedSegments = 0
    /// Octets lost and not SACKed.
    private(set) var lostBytes = 0
    /// Of those, octets sent again and in flight.
    private(set) var retransmittedBytes = 0
    /// The highest SACKed sequence number, while anything is SACKed.
    private(set) var highestSacked: SequenceNumber?
    /// SACK blocks or segments that could not get an entry of their own at the bound.
    private(set) var refusedSplits: UInt64 = 0

    init() {}

    var isEmpty: Bool { head == segments.count }
    var count: Int { segments.count - head }
    /// Lost octets waiting for a retransmission (NextSeg rule 1 has something to return).
    var hasLostToRetransmit: Bool { lostBytes > retransmittedBytes }

    /// RFC 6675 §4 SetPipe, given FlightSize (SND.MAX − SND.UNA).
    func pipe(flightSize: Int) -> Int {
        max(0, flightSize - sackedBytes - lostBytes + retransmittedBytes)
    }

    /// At the bound (see the type's comment): `maximumSegments` entries, and at least one per
    /// `octetsPerEntry` octets between the first entry's start and the last one's end.
    var isFull: Bool {
        guard count >= Self.maximumSegments, let first, let last else { return false }
        return count >= Int(first.start.octets(to: last.end)) / Self.octetsPerEntry
    }

    subscript(index: Int) -> Segment { segments[head + index] }
    var last: Segment? { isEmpty ? nil : segments[segments.count - 1] }
    var first: Segment? { isEmpty ? nil : segments[head] }

    // MARK: Sending

    /// RFC 8985 §6.1: records a (re)transmission of `start ..< end` at `now`. Octets beyond the last
    /// entry are new; octets within entries are retransmissions of them.
    mutating func recordSent(from start: SequenceNumber, to end: SequenceNumber, now: Instant) {
        guard start.isBefore(end) else { return }
        var cursor = start
        if let last, start.isBefore(last.end) {
            var index = firstIndex(endingAfter: start)
            while index < segments.count, segments[index].start.isBefore(end) {
                retransmitted(at: index, now: now)
                index += 1
            }
            cursor = last.end
        }
        guard cursor.isBefore(end) else { return }
        if isFull, let last, last.flags.isEmpty {
            segments[segments.count - 1].end = end
            segments[segments.count - 1].sentAt = now
            refusedSplits &+= 1
        } else {
            segments.append(Segment(start: cursor, end: end, sentAt: now))
        }
    }

    private mutating func retransmitted(at index: Int, now: Instant) {
        var segment = segments[index]
        segment.sentAt = now
        segment.flags.insert(.everRetransmitted)
        if segment.flags.contains(.lost), !segment.flags.contains(.sacked), !segment.flags.contains(.retransmitted) {
            segment.flags.insert(.retransmitted)
            retransmittedBytes += segment.length
        }
        segments[index] = segment
    }

    /// RFC 6675 §4 NextSeg rule (1): the lowest lost octets not yet retransmitted, at most `maximumLength`
    /// of them (the entry is split so that what is sent is one entry).
    mutating func nextLostSegment(maximumLength: Int) -> (start: SequenceNumber, end: SequenceNumber)? {
        guard hasLostToRetransmit, maximumLength > 0 else { return nil }
        var index = head
        while index < segments.count {
            let segment = segments[index]
            if segment.flags.contains(.lost), !segment.flags.contains(.sacked), !segment.flags.contains(.retransmitted) {
                if segment.length > maximumLength, split(at: index, offset: maximumLength) {
                    return (segment.start, segment.start + maximumLength)
                }
                return (segment.start, segment.end)
            }
            index += 1
        }
        return nil
    }

    // MARK: Acknowledgment

    /// Drops what SND.UNA now covers, calling `delivered` for each entry that had not been SACKed
    /// (RFC 8985 §6.2 step 2 needs their send times). Returns the octets that had been SACKed.
    @discardableResult
    mutating func acknowledge(upTo ack: SequenceNumber, delivered: (Segment) -> Void) -> Int {
        var previouslySacked = 0
        while head < segments.count, segments[head].start.isBefore(ack) {
            var segment = segments[head]
            let whole = segment.end.isAtOrBefore(ack)
            if !whole {
                // Partly acknowledged: keep the rest.
                let removed = Segment(start: segment.start, end: ack, sentAt: segment.sentAt, flags: segment.flags)
                adjustTotals(for: removed, sign: -1)
                if !segment.flags.contains(.sacked) { delivered(removed) } else { previouslySacked += removed.length }
                segment.start = ack
                segments[head] = segment
                break
            }
            adjustTotals(for: segment, sign: -1)
            if segment.flags.contains(.sacked) {
                sackedSegments -= 1
                previouslySacked += segment.length
            } else {
                delivered(segment)
            }
            head += 1
        }
        if isEmpty {
            clearEntries()
            head = 0
        } else if head >= 64 && head * 2 >= segments.count {
            segments.removeFirst(head)
            head = 0
        }
        if let highest = highestSacked, highest.isAtOrBefore(ack) || sackedSegments == 0 {
            highestSacked = nil
        }
        return previouslySacked
    }

    /// RFC 6675 §4 Update(): marks the octets of `block` SACKed, calling `delivered` for each entry newly
    /// SACKed. Returns the octets newly SACKed. The block must already be clipped to (SND.UNA, SND.MAX].
    @discardableResult
    mutating func sack(_ block: SACKBlock, delivered: (Segment) -> Void) -> Int {
        guard block.start.isBefore(block.end) else { return 0 }
        var newly = 0
        var index = firstIndex(endingAfter: block.start)
        while index < segments.count, segments[index].start.isBefore(block.end) {
            if segments[index].flags.contains(.sacked) {
                index += 1
                continue
            }
            // Split off what lies outside the block, when there is room for another entry.
            if segments[index].start.isBefore(block.start) {
                if split(at: index, offset: Int(segments[index].start.octets(to: block.start))) {
                    index += 1
                } else {
                    index += 1
                    continue
                }
            }
            if block.end.isBefore(segments[index].end) {
                if !split(at: index, offset: Int(segments[index].start.octets(to: block.end))) {
                    break
                }
            }
            var segment = segments[index]
            adjustTotals(for: segment, sign: -1)
            segment.flags.insert(.sacked)
            segments[index] = segment
            adjustTotals(for: segment, sign: 1)
            sackedSegments += 1
            newly += segment.length
            delivered(segment)
            if highestSacked.map({ $0.isBefore(segment.end) }) ?? true { highestSacked = segment.end }
            index += 1
        }
        return newly
    }

    // MARK: Loss marking

    /// RFC 6675 §4 IsLost, for every entry below the highest SACKed octet: lost when DupThresh
    /// discontiguous SACKed segments, or more than (DupThresh − 1)·SMSS SACKed octets, lie above it.
    /// Returns the octets newly marked lost.
    mutating func markLostByDuplicateThreshold(_ dupThresh: Int, smss: Int) -> Int {
        guard sackedSegments > 0 else { return 0 }
        var sackedAbove = 0
        var sackedSegmentsAbove = 0
        var newly = 0
        var index = segments.count - 1
        while index >= head {
            let segment = segments[index]
            if segment.flags.contains(.sacked) {
                sackedAbove += segment.length
                sackedSegmentsAbove += 1
            } else if sackedSegmentsAbove >= dupThresh || sackedAbove > (dupThresh - 1) * smss {
                if segment.flags.contains(.lost) { break }  // everything below was marked before
                newly += markLost(at: index)
            }
            index -= 1
        }
        return newly
    }

    /// RFC 8985 §6.3 RACK_mark_losses_on_RTO, and RFC 6675 §5.1: after a timeout the first unacknowledged
    /// segment is lost, and every other one sent at least `rtt + reorderingWindow` ago (pass nil to mark
    /// every one not SACKed, as without RACK). Earlier retransmissions count as lost again.
    mutating func markLostOnTimeout(now: Instant, rackWindow: TimeAmount?) {
        if !isEmpty, segments[head].flags.contains(.sacked) {
            // SND.UNA's own segment SACKed but never cumulatively acknowledged: the receiver reneged
            // (RFC 2018 §8). Forget every SACK, as Linux does, so that everything can be resent.
            forgetSACKs()
        }
        var index = head
        while index < segments.count {
            let segment = segments[index]
            if !segment.flags.contains(.sacked) {
                let expired = rackWindow.map { segment.sentAt + $0 <= now } ?? true
                if index == head || expired {
                    if segment.flags.contains(.retransmitted) {
                        segments[index].flags.remove(.retransmitted)
                        retransmittedBytes -= segment.length
                    } else if !segment.flags.contains(.lost) {
                        _ = markLost(at: index)
                    }
                }
            }
            index += 1
        }
    }

    /// RFC 8985 §6.2 step 5 RACK_detect_loss: every entry not SACKed and sent before the RACK segment
    /// (`rackSentAt`, `rackEnd`) is lost once `rtt + reorderingWindow` has passed since it was sent.
    /// Returns the octets newly marked lost and, if some are still inside the window, how long until the
    /// last of them expires (the reordering timer).
    mutating func detectLossesRACK(
        rackSentAt: Instant, rackEnd: SequenceNumber, rtt: TimeAmount, reorderingWindow: TimeAmount, now: Instant
    ) -> (newlyLost: Int, timeout: TimeAmount?) {
        var newly = 0
        var timeout: TimeAmount?
        var index = head
        while index < segments.count {
            let segment = segments[index]
            let sentBefore = segment.sentAt < rackSentAt || (segment.sentAt == rackSentAt && segment.end.isBefore(rackEnd))
            if !sentBefore {
                // Entries never retransmitted are in send order: none past this one was sent earlier.
                if !segment.flags.contains(.everRetransmitted) { break }
            } else if !segment.flags.contains(.sacked)
                && !(segment.flags.contains(.lost) && !segment.flags.contains(.retransmitted))
            {
                let remaining = (segment.sentAt + rtt + reorderingWindow) - now
                if remaining.nanoseconds <= 0 {
                    if segment.flags.contains(.retransmitted) {
                        // The retransmission itself is lost (RFC 8985 §6.2: a segment can be lost again),
                        // but only once a segment sent strictly later was delivered. DEVIATION(RFC 8985
                        // §6.2 step 5): RACK_sent_after's sequence tie-break is not applied here. With a
                        // RACK.rtt of zero (a SACK covering data sent at this instant, as a forged one
                        // can) it would re-mark every hole retransmitted at this instant on each duplicate
                        // ACK, against RFC 6675 NextSeg rule (1): found by the stack fuzzer as an endless
                        // exchange at one instant.
                        guard segment.sentAt < rackSentAt else {
                            index += 1
                            continue
                        }
                        segments[index].flags.remove(.retransmitted)
                        retransmittedBytes -= segment.length
                        newly += segment.length
                    } else {
                        newly += markLost(at: index)
                    }
                } else {
                    timeout = max(timeout ?? .zero, remaining)
                }
            }
            index += 1
        }
        return (newly, timeout)
    }

    /// Marks the first unacknowledged segment lost (three duplicate ACKs, RFC 5681 §3.2; a partial ACK,
    /// RFC 6582 §3.2 step 5).
    mutating func markFirstLost() {
        guard !isEmpty else { return }
        if segments[head].flags.contains(.retransmitted) {
            segments[head].flags.remove(.retransmitted)
            retransmittedBytes -= segments[head].length
        } else {
            _ = markLost(at: head)
        }
    }

    /// Linux's `tcp_simple_retransmit`: every entry longer than `length` and not SACKed is lost — the
    /// path MTU went down and it was too big to arrive. Earlier retransmissions of it count as lost
    /// again. Returns the octets now waiting to be retransmitted because of this.
    mutating func markLost(longerThan length: Int) -> Int {
        var marked = 0
        var index = head
        while index < segments.count {
            let segment = segments[index]
            if segment.length > length, !segment.flags.contains(.sacked) {
                if segment.flags.contains(.retransmitted) {
                    segments[index].flags.remove(.retransmitted)
                    retransmittedBytes -= segment.length
                    marked += segment.length
                } else {
                    marked += markLost(at: index)
                }
            }
            index += 1
        }
        return marked
    }

    /// Forgets every lost mark (the retransmissions were judged spurious, RFC 3522).
    mutating func clearLost() {
        var index = head
        while index < segments.count {
            segments[index].flags.subtract([.lost, .retransmitted])
            index += 1
        }
        lostBytes = 0
        retransmittedBytes = 0
    }

    /// Clears every SACK mark (reneging, RFC 2018 §8).
    private mutating func forgetSACKs() {
        var index = head
        while index < segments.count {
            if segments[index].flags.contains(.sacked) {
                segments[index].flags.subtract([.sacked, .lost, .retransmitted])
            }
            index += 1
        }
        sackedBytes = 0
        sackedSegments = 0
        highestSacked = nil
    }

    /// Forgets entries at or after `sequence` (SND.MAX moved back: a zero-window probe's byte was refused).
    mutating func removeAll(from sequence: SequenceNumber) {
        while let last, last.end.isAfter(sequence) {
            if last.start.isBefore(sequence) {
                adjustTotals(for: last, sign: -1)
                segments[segments.count - 1].end = sequence
                adjustTotals(for: segments[segments.count - 1], sign: 1)
                break
            }
            adjustTotals(for: last, sign: -1)
            if last.flags.contains(.sacked) { sackedSegments -= 1 }
            segments.removeLast()
        }
        if isEmpty { removeAll() }
    }

    /// The entries' storage, emptied, for a new connection's scoreboard (`Stack.recycledScoreboards`);
    /// nil when there is none, or when it grew past what is worth keeping.
    mutating func takeStorage() -> [Segment]? {
        guard segments.capacity > 0, segments.capacity <= Self.recycledCapacityLimit else { return nil }
        removeAll()
        var storage: [Segment] = []
        swap(&storage, &segments)
        return storage
    }

    /// Storage a closed connection's scoreboard gave up (`takeStorage`), for this new one.
    mutating func adoptStorage(_ storage: consuming [Segment]) {
        guard segments.capacity == 0, storage.isEmpty else { return }
        segments = storage
    }

    /// The largest storage, in entries, kept for another connection.
    static var recycledCapacityLimit: Int { 64 }

    /// Empties `segments`, keeping its capacity. `removeAll(keepingCapacity:)` goes through the
    /// generic `replaceSubrange` (110 instructions); a scoreboard emptied by an ACK usually held one
    /// entry, and dropping the last one is a few.
    private mutating func clearEntries() {
        if segments.count == 1 {
            segments.removeLast()
        } else if !segments.isEmpty {
            segments.removeAll(keepingCapacity: true)
        }
    }

    mutating func removeAll() {
        clearEntries()
        head = 0
        sackedBytes = 0
        sackedSegments = 0
        lostBytes = 0
        retransmittedBytes = 0
        highestSacked = nil
    }

    // MARK: Helpers

    private mutating func markLost(at index: Int) -> Int {
        var segment = segments[index]
        guard !segment.flags.contains(.lost), !segment.flags.contains(.sacked) else { return 0 }
        segment.flags.insert(.lost)
        segments[index] = segment
        lostBytes += segment.length
        return segment.length
    }

    private mutating func adjustTotals(for segment: Segment, sign: Int) {
        let length = segment.length * sign
        if segment.flags.contains(.sacked) {
            sackedBytes += length
        } else if segment.flags.contains(.lost) {
            lostBytes += length
            if segment.flags.contains(.retransmitted) { retransmittedBytes += length }
        }
    }

    /// Splits the entry at `index` after `offset` octets; false (and counted) at the bound.
    private mutating func split(at index: Int, offset: Int) -> Bool {
        let segment = segments[index]
        guard offset > 0, offset < segment.length else { return true }
        guard !isFull else {
            refusedSplits &+= 1
            return false
        }
        var first = segment
        first.end = segment.start + offset
        var second = segment
        second.start = first.end
        segments[index] = first
        segments.insert(second, at: index + 1)
        if segment.flags.contains(.sacked) { sackedSegments += 1 }
        return true
    }

    /// The array index of the first live entry ending after `sequence` (binary search).
    private func firstIndex(endingAfter sequence: SequenceNumber) -> Int {
        var low = head
        var high = segments.count
        while low < high {
            let middle = low + (high - low) / 2
            if segments[middle].end.isAfter(sequence) {
                high = middle
            } else {
                low = middle + 1
            }
        }
        return low
    }
}
