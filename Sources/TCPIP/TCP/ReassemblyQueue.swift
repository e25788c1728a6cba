import NIOCore
import TCPIPWire

/// Segments that arrived ahead of rcv.nxt, held until the gap before them is filled
/// (RFC 9293 §3.10.7.4, seventh: "process the segment text"; segments beyond rcv.nxt may be kept).
///
/// Held ranges never overlap: bytes already held are not replaced (the first copy wins, as in Linux), and
/// of a segment overlapping held data only the new bytes between held ranges are kept, as slices of the
/// arrived buffer. Memory is accounted by the storage those slices pin (`ByteBuffer.pinnedStorageBytes`),
/// per slice, so a segment split around held data is counted once per piece: an overestimate, never an
/// underestimate. The number of pieces is capped too, so a peer sending thousands of 1-byte segments
/// cannot turn the queue into a long list.
///
/// Sequence numbers are compared as offsets from rcv.nxt: everything held lies in the receive window,
/// far less than 2^31 ahead, so the offsets are exact across the 2^32 wrap.
struct ReassemblyQueue {
    /// At most this many pieces are held; beyond it `insert` answers `.overLimit`.
    static let maximumSegmentCount = 1024

    private struct Segment {
        var start: SequenceNumber
        var payload: ByteBuffer
        /// When this piece was last received (a counter, higher is more recent), for RFC 2018 §4's order.
        var stamp: UInt64

        var end: SequenceNumber { start + payload.readableBytes }
    }

    /// Held pieces in descending sequence order, so that taking the in-order one is `removeLast()` (O(1))
    /// and pruning the highest is `removeFirst(_:)`.
    private var segments: [Segment] = []
    private var nextStamp: UInt64 = 1

    /// The sequence number of a FIN held beyond rcv.nxt; no data is held at or after it.
    private(set) var finSequence: SequenceNumber?
    /// Payload bytes held.
    private(set) var byteCount: Int = 0
    /// Storage pinned by the held pieces.
    private(set) var pinnedBytes: Int = 0

    init() {}

    /// Nothing held: no data and no FIN.
    var isEmpty: Bool { segments.isEmpty && finSequence == nil }

    /// How many pieces are held.
    var segmentCount: Int { segments.count }

    enum InsertOutcome: Hashable, Sendable {
        /// Some new bytes or a new FIN were kept.
        case queued
        /// Everything was already held (or lies before rcv.nxt).
        case duplicate
        /// Refused: keeping it would exceed the pinned-memory limit or the piece cap. Nothing was kept.
        case overLimit
    }

    /// Keeps the new bytes of a segment whose payload starts at `sequence`, maybe followed by a FIN.
    ///
    /// Bytes before `rcvNxt` are trimmed off; bytes already held are kept as they are. A FIN is kept unless
    /// it contradicts what is held (another FIN, or data beyond it); bytes at or beyond a held FIN are
    /// dropped. The segment is taken whole or not at all: `.overLimit` when the pinned storage would
    /// exceed `pinnedLimit` or the piece count would exceed `maximumSegmentCount`.
    ///
    /// Whatever the outcome other than `.overLimit`, the held range containing this segment becomes the
    /// most recent one for `sackBlocks(limit:)` (RFC 2018 §4: the first block reports the segment that
    /// triggered the ACK).
    mutating func insert(
        _ payload: ByteBuffer,
        at sequence: SequenceNumber,
        fin: Bool,
        rcvNxt: SequenceNumber,
        pinnedLimit: Int
    ) -> InsertOutcome {
        advance(to: rcvNxt)
        let payloadStart = offset(of: sequence, from: rcvNxt)
        let payloadEnd = payloadStart + payload.readableBytes
        let start = max(payloadStart, 0)
        var end = payloadEnd

        var isNewFIN = false
        if fin, finSequence == nil, payloadEnd >= 0 {
            let heldEnd = segments.first.map { offset(of: $0.end, from: rcvNxt) } ?? 0
            isNewFIN = heldEnd <= payloadEnd
        }
        if let finSequence {
            end = min(end, offset(of: finSequence, from: rcvNxt))
        }

        // First pass: count the pieces of [start, end) not yet held, and check the limits.
        var firstOverlap = firstIndex(endingAfter: start, rcvNxt: rcvNxt)
        let pieceCount = gapCount(from: start, to: end, firstOverlap: firstOverlap, rcvNxt: rcvNxt)
        let addedPinned = pieceCount * payload.pinnedStorageBytes
        if pieceCount > 0 {
            var fits: Bool {
                pinnedBytes + addedPinned <= pinnedLimit && segments.count + pieceCount <= Self.maximumSegmentCount
            }
            if !fits {
                // Over a limit only because small pieces pin big buffers: copy them out first.
                guard compact(), fits else { return .overLimit }
                // Compaction joined adjacent pieces, so the array's indices moved: find the first
                // overlap again (the gaps in sequence space, and so `pieceCount`, are unchanged).
                firstOverlap = firstIndex(endingAfter: start, rcvNxt: rcvNxt)
            }
        }

        let stamp = nextStamp
        nextStamp += 1
        markReceived(from: start, to: end, firstOverlap: firstOverlap, stamp: stamp, rcvNxt: rcvNxt)

        // Second pass: insert the pieces. Each goes just below (at a higher array index than) the held
        // piece above it, so the indices still to be visited do not move.
        if pieceCount > 0 {
            var cursor = start
            var index = firstOverlap - 1
            while index >= 0 {
                let heldStart = offset(of: segments[index].start, from: rcvNxt)
                if heldStart >= end { break }
                if heldStart > cursor {
                    insertPiece(
                        of: payload, payloadStart: payloadStart, from: cursor, to: heldStart,
                        at: index + 1, stamp: stamp, rcvNxt: rcvNxt
                    )
                }
                cursor = max(cursor, offset(of: segments[index].end, from: rcvNxt))
                index -= 1
            }
            if cursor < end {
                insertPiece(
                    of: payload, payloadStart: payloadStart, from: cursor, to: end,
                    at: index + 1, stamp: stamp, rcvNxt: rcvNxt
                )
            }
        }
        pinnedBytes += addedPinned

        if isNewFIN {
            finSequence = rcvNxt + payloadEnd
        }
        if pinnedBytes > Self.compactionSlack, pinnedBytes > Self.compactionRatio * byteCount {
            compact()
        }
        return pieceCount > 0 || isNewFIN ? .queued : .duplicate
    }

    /// Removes and returns the held data that starts at `rcvNxt` (after trimming anything before it), with
    /// `fin` true when the FIN follows it. A FIN alone at `rcvNxt` comes back as an empty payload.
    /// Returns nil when nothing starts at `rcvNxt`. Call it until it returns nil.
    mutating func popInOrder(rcvNxt: SequenceNumber) -> (payload: ByteBuffer, fin: Bool)? {
        advance(to: rcvNxt)
        if let lowest = segments.last, lowest.start == rcvNxt {
            segments.removeLast()
            byteCount -= lowest.payload.readableBytes
            pinnedBytes -= lowest.payload.pinnedStorageBytes
            let fin = finSequence == lowest.end
            if fin { finSequence = nil }
            return (lowest.payload, fin)
        }
        if finSequence == rcvNxt {
            finSequence = nil
            return (ByteBuffer(), true)
        }
        return nil
    }

    /// Held ranges as SACK blocks, at most `limit` (and at most `SACKBlocks.capacity`).
    ///
    /// RFC 2018 §4: the first block is the range containing the most recently received segment; the
    /// rest follow by how recently they were received, so each range is reported in several ACKs.
    func sackBlocks(limit: Int) -> SACKBlocks {
        var blocks = SACKBlocks()
        let wanted = min(limit, SACKBlocks.capacity)
        // A few passes over the held ranges, each taking the most recent one older than the last taken:
        // no allocation, and range stamps are distinct (one insert's pieces all join one range).
        var newerThanWanted = UInt64.max
        for _ in 0..<max(wanted, 0) {
            var best: (block: SACKBlock, stamp: UInt64)?
            forEachRange { block, stamp in
                let isOlderThanTaken = stamp < newerThanWanted
                if isOlderThanTaken, stamp > best?.stamp ?? 0 {
                    best = (block, stamp)
                }
            }
            guard let best else { break }
            blocks.append(best.block)
            newerThanWanted = best.stamp
        }
        return blocks
    }

    /// The whole held range (adjacent pieces joined) that contains `block`, if one does: RFC 2883
    /// §4 (4)'s "(possibly larger) block of data in the receiver's data queue" a D-SACK block belongs to.
    func heldRange(containing block: SACKBlock) -> SACKBlock? {
        var found: SACKBlock?
        forEachRange { range, _ in
            if found == nil, range.start.isAtOrBefore(block.start), block.end.isAtOrBefore(range.end) { found = range }
        }
        return found
    }

    /// The first held range overlapping `start ..< end`, clipped to it (RFC 2883 §4: the D-SACK block
    /// for a segment that repeats data held out of order). Adjacent held pieces count as one range.
    func firstHeldRange(
        overlapping start: SequenceNumber, to end: SequenceNumber, rcvNxt: SequenceNumber
    ) -> SACKBlock? {
        let low = offset(of: start, from: rcvNxt)
        let high = offset(of: end, from: rcvNxt)
        var index = segments.count - 1
        while index >= 0 {
            let pieceStart = offset(of: segments[index].start, from: rcvNxt)
            var pieceEnd = offset(of: segments[index].end, from: rcvNxt)
            if pieceStart >= high { return nil }
            if pieceEnd > low {
                let first = max(pieceStart, low)
                index -= 1
                while index >= 0, offset(of: segments[index].start, from: rcvNxt) == pieceEnd, pieceEnd < high {
                    pieceEnd = offset(of: segments[index].end, from: rcvNxt)
                    index -= 1
                }
                return SACKBlock(start: rcvNxt + first, end: rcvNxt + min(pieceEnd, high))
            }
            index -= 1
        }
        return nil
    }

    /// The queue compacts when it pins more than this many times the bytes it holds …
    static let compactionRatio = 4
    /// … and more than this in all: a few full-sized segments are not worth copying.
    static let compactionSlack = 64 * 1024

    /// Copies the held pieces into right-sized buffers of our own, one per contiguous run, so they
    /// stop pinning the (much larger) buffers they arrived in — Linux's tcp_collapse_ofo_queue.
    /// A peer's one-byte segments each arrive in a link-sized buffer; held as slices, a thousand of
    /// them pin megabytes. Runs keep their most recent stamp, as `forEachRange` reports them.
    ///
    /// - Returns: whether it freed anything.
    @discardableResult
    mutating func compact() -> Bool {
        guard !segments.isEmpty else { return false }
        var compacted: [Segment] = []
        var compactedPinned = 0
        // Pieces are in descending order: a run is a stretch where each piece starts where the next
        // (lower) one ends. Walk from the lowest up so each run is copied in sequence order.
        var index = segments.count - 1
        var runs: [(start: SequenceNumber, payload: ByteBuffer, stamp: UInt64)] = []
        while index >= 0 {
            let start = segments[index].start
            var length = segments[index].payload.readableBytes
            var stamp = segments[index].stamp
            var last = index
            while last > 0, segments[last - 1].start == segments[last].end {
                last -= 1
                length += segments[last].payload.readableBytes
                stamp = max(stamp, segments[last].stamp)
            }
            var payload = ByteBufferAllocator().buffer(capacity: length)
            for piece in stride(from: index, through: last, by: -1) {
                payload.writeImmutableBuffer(segments[piece].payload)
            }
            compactedPinned += payload.pinnedStorageBytes
            runs.append((start, payload, stamp))
            index = last - 1
        }
        guard compactedPinned < pinnedBytes else { return false }
        compacted.reserveCapacity(runs.count)
        for run in runs.reversed() {
            compacted.append(Segment(start: run.start, payload: run.payload, stamp: run.stamp))
        }
        segments = compacted
        pinnedBytes = compactedPinned
        return true
    }

    /// Drops everything held, FIN included.
    mutating func removeAll() {
        segments.removeAll(keepingCapacity: true)
        finSequence = nil
        byteCount = 0
        pinnedBytes = 0
    }

    /// Frees memory by dropping the highest-sequence pieces first until `pinnedBytes <= target`
    /// (Linux's pruning of the out-of-order queue). The sender still has that data and will retransmit it;
    /// RFC 2018 §8 allows discarding SACKed data. A held FIN is kept: it costs nothing.
    mutating func prune(toPinnedBytes target: Int) {
        var dropCount = 0
        while pinnedBytes > target, dropCount < segments.count {
            byteCount -= segments[dropCount].payload.readableBytes
            pinnedBytes -= segments[dropCount].payload.pinnedStorageBytes
            dropCount += 1
        }
        segments.removeFirst(dropCount)
    }

    // MARK: - Helpers

    private func offset(of sequence: SequenceNumber, from rcvNxt: SequenceNumber) -> Int {
        Int(rcvNxt.distance(to: sequence))
    }

    /// Drops or trims pieces that rcv.nxt has moved past (the caller received those bytes in order).
    private mutating func advance(to rcvNxt: SequenceNumber) {
        while let lowest = segments.last, offset(of: lowest.start, from: rcvNxt) < 0 {
            let lowestEnd = offset(of: lowest.end, from: rcvNxt)
            if lowestEnd <= 0 {
                segments.removeLast()
                byteCount -= lowest.payload.readableBytes
                pinnedBytes -= lowest.payload.pinnedStorageBytes
            } else {
                let trimmed = -offset(of: lowest.start, from: rcvNxt)
                segments[segments.count - 1].payload.moveReaderIndex(forwardBy: trimmed)
                segments[segments.count - 1].start = rcvNxt
                byteCount -= trimmed
                break
            }
        }
        if let finSequence, offset(of: finSequence, from: rcvNxt) < 0 {
            self.finSequence = nil
        }
    }

    /// The array index just past the pieces that end after `start` (they form a prefix, being descending).
    private func firstIndex(endingAfter start: Int, rcvNxt: SequenceNumber) -> Int {
        var low = 0
        var high = segments.count
        while low < high {
            let middle = low + (high - low) / 2
            if offset(of: segments[middle].end, from: rcvNxt) > start {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }

    /// How many parts of [start, end) are not held: the pieces `insert` would add.
    private func gapCount(from start: Int, to end: Int, firstOverlap: Int, rcvNxt: SequenceNumber) -> Int {
        guard start < end else { return 0 }
        var count = 0
        var cursor = start
        var index = firstOverlap - 1
        while index >= 0 {
            let heldStart = offset(of: segments[index].start, from: rcvNxt)
            if heldStart >= end { break }
            if heldStart > cursor { count += 1 }
            cursor = max(cursor, offset(of: segments[index].end, from: rcvNxt))
            index -= 1
        }
        return cursor < end ? count + 1 : count
    }

    private mutating func insertPiece(
        of payload: ByteBuffer,
        payloadStart: Int,
        from pieceStart: Int,
        to pieceEnd: Int,
        at index: Int,
        stamp: UInt64,
        rcvNxt: SequenceNumber
    ) {
        let slice = payload.getSlice(
            at: payload.readerIndex + (pieceStart - payloadStart),
            length: pieceEnd - pieceStart
        )!
        segments.insert(Segment(start: rcvNxt + pieceStart, payload: slice, stamp: stamp), at: index)
        byteCount += pieceEnd - pieceStart
    }

    /// Gives the held pieces overlapping [start, end) the stamp of the segment just received.
    private mutating func markReceived(
        from start: Int,
        to end: Int,
        firstOverlap: Int,
        stamp: UInt64,
        rcvNxt: SequenceNumber
    ) {
        var index = firstOverlap - 1
        while index >= 0, offset(of: segments[index].start, from: rcvNxt) < end {
            segments[index].stamp = stamp
            index -= 1
        }
    }

    /// Calls `body` for each contiguous held range, in ascending order, with its most recent stamp.
    private func forEachRange(_ body: (SACKBlock, UInt64) -> Void) {
        var index = segments.count - 1
        while index >= 0 {
            let start = segments[index].start
            var end = segments[index].end
            var stamp = segments[index].stamp
            index -= 1
            while index >= 0, segments[index].start == end {
                end = segments[index].end
                stamp = max(stamp, segments[index].stamp)
                index -= 1
            }
            body(SACKBlock(start: start, end: end), stamp)
        }
    }
}
