import NIOCore
import TCPIPWire

/// Bytes the application wrote and the peer has not yet acknowledged, from snd.una onward: first those
/// sent and unacknowledged, then those not yet sent (RFC 9293 §3.10.2 SEND queues them here).
///
///      offset 0 = snd.una      snd.nxt - snd.una                 count
///          |---- sent, unacknowledged ----|-------- unsent --------|
///
/// Large writes are kept as slices of the application's buffers (no copy in); small writes are packed
/// into buffers of our own, so that a byte-at-a-time writer does not build a long list of tiny chunks.
/// Building a segment copies once, from here into the packet buffer.
struct SendBuffer {
    /// A chunk and the stream position just past its last byte, so a lookup by offset is a binary search.
    private struct Chunk {
        var bytes: ByteBuffer
        /// Position (counted from the first byte ever written) just past this chunk's last byte.
        var end: Int
        /// Whether `bytes` is a buffer we allocated to pack small writes into, and may append to.
        var isPacked: Bool
    }

    /// Writes shorter than this are copied into a packed chunk instead of being kept as a slice.
    static let packingThreshold = 512
    /// Size of the buffers small writes are packed into.
    static let packedChunkSize = 4096

    /// Allocated with the first write (`PacketQueue()`): an idle connection's send buffer costs nothing.
    private var chunks = PacketQueue<Chunk>()
    /// Position of offset 0 (snd.una) in the stream: bytes acknowledged so far.
    private var acknowledgedPosition = 0

    /// How many bytes the buffer accepts (SO_SNDBUF). Lowering it below `count` drops nothing; it only
    /// makes `freeSpace` zero until enough is acknowledged.
    var capacity: Int
    /// Bytes held: sent-unacknowledged plus unsent.
    private(set) var count: Int = 0

    init(capacity: Int) {
        precondition(capacity >= 0, "negative send buffer capacity")
        self.capacity = capacity
    }

    var freeSpace: Int { max(0, capacity - count) }

    var isEmpty: Bool { count == 0 }

    /// The ring the chunks are queued in (it grows by doubling and keeps its size): memory a
    /// connection holds beyond what its chunks pin, until `releaseStorage()`.
    var queueStorageBytes: Int { chunks.capacity * MemoryLayout<Chunk?>.stride }

    /// Frees the ring of an empty buffer (an idle connection giving memory back).
    mutating func releaseStorage() {
        guard count == 0, chunks.isEmpty else { return }
        chunks = PacketQueue()
    }

    /// Storage kept alive by the chunks (see `ByteBuffer.pinnedStorageBytes`), kept up to date so the
    /// stack's memory budget can read it on every segment.
    private(set) var pinnedBytes: Int = 0

    /// `pinnedBytes` counted chunk by chunk, O(chunks): for reports, and for tests and fuzzers
    /// to check the running count against.
    var recountedPinnedBytes: Int {
        chunks.reduce(0) { $0 + $1.bytes.pinnedStorageBytes }
    }

    /// Takes as many of `bytes`' readable bytes as fit (the caller's buffer is not consumed).
    ///
    /// - Returns: how many bytes were taken, `min(bytes.readableBytes, freeSpace)`.
    mutating func append(_ bytes: ByteBuffer) -> Int {
        var pool = PackedChunkPool()
        return append(bytes, pool: &pool)
    }

    /// `append(_:)`, with packed chunks taken from the stack's `pool`.
    mutating func append(_ bytes: ByteBuffer, pool: inout PackedChunkPool) -> Int {
        let length = min(bytes.readableBytes, freeSpace)
        guard length > 0 else { return 0 }
        let end = acknowledgedPosition + count + length
        count += length
        if length < Self.packingThreshold {
            appendPacked(bytes, length: length, end: end, pool: &pool)
        } else {
            let slice = bytes.getSlice(at: bytes.readerIndex, length: length)!
            pinnedBytes += slice.pinnedStorageBytes
            chunks.append(Chunk(bytes: slice, end: end, isPacked: false))
        }
        return length
    }

    private mutating func appendPacked(_ bytes: ByteBuffer, length: Int, end: Int, pool: inout PackedChunkPool) {
        let source = bytes.getSlice(at: bytes.readerIndex, length: length)!
        // Asked in place: a copy of the last chunk held across the write would make its storage
        // look shared, and the write would copy it.
        let fitsLastChunk = !chunks.isEmpty && chunks.modify(offset: chunks.count - 1) { chunk in
            chunk.isPacked && chunk.bytes.writableBytes >= length
        }
        if fitsLastChunk {
            // The write may copy the storage (a retransmitted slice still shares it): count the change.
            pinnedBytes += chunks.modify(offset: chunks.count - 1) { chunk -> Int in
                let before = chunk.bytes.pinnedStorageBytes
                chunk.bytes.writeImmutableBuffer(source)
                chunk.end = end
                return chunk.bytes.pinnedStorageBytes - before
            }
            return
        }
        var packed = pool.take(minimumCapacity: length)
        packed.writeImmutableBuffer(source)
        pinnedBytes += packed.pinnedStorageBytes
        chunks.append(Chunk(bytes: packed, end: end, isPacked: true))
    }

    /// Drops `count` bytes from the front: the peer acknowledged them (snd.una advanced).
    mutating func removeFirst(_ count: Int) {
        var pool = PackedChunkPool()
        removeFirst(count, pool: &pool)
    }

    /// `removeFirst(_:)`, giving packed chunks back to the stack's `pool`.
    mutating func removeFirst(_ count: Int, pool: inout PackedChunkPool) {
        precondition(count >= 0 && count <= self.count, "acknowledging bytes that were never written")
        self.count -= count
        acknowledgedPosition += count
        while chunks.modifyFirstIfAny({ $0.end <= acknowledgedPosition }) == true {
            var acknowledged = chunks.popFirst()!
            pinnedBytes -= acknowledged.bytes.pinnedStorageBytes
            if acknowledged.isPacked { pool.giveBack(&acknowledged.bytes) }
        }
        guard !chunks.isEmpty else { return }
        let chunkStart = chunks.modifyFirst { $0.end - $0.bytes.readableBytes }
        let trim = acknowledgedPosition - chunkStart
        if trim > 0 {
            chunks.modifyFirst { chunk in
                chunk.bytes.moveReaderIndex(forwardBy: trim)
                // A packed chunk whose front is acknowledged keeps taking small writes at its back.
            }
        }
    }

    /// Copies `length` bytes starting `offset` bytes after snd.una into `packet` at its writer index.
    ///
    /// This is how segments are built: one copy, from the send buffer into the packet buffer.
    func copyBytes(at offset: Int, length: Int, into packet: inout ByteBuffer) {
        precondition(offset >= 0 && length >= 0 && offset + length <= count, "range outside the send buffer")
        guard length > 0 else { return }
        var position = acknowledgedPosition + offset
        var remaining = length
        var index = chunkIndex(containing: position)
        while remaining > 0 {
            // Borrowed, not copied: a copy of the chunk retained and released its storage for every
            // segment built (2.5% of `tcpip bench bulk --mtu 1500`).
            let taken = chunks.withElement(offset: index) { chunk in
                let chunkStart = chunk.end - chunk.bytes.readableBytes
                let taken = min(remaining, chunk.end - position)
                chunk.bytes.withUnsafeReadableBytes { raw in
                    let from = position - chunkStart
                    packet.writeBytes(UnsafeRawBufferPointer(rebasing: raw[from..<(from + taken)]))
                }
                return taken
            }
            position += taken
            remaining -= taken
            index += 1
        }
    }

    /// `length` bytes starting `offset` bytes after snd.una: a slice (no copy) when they lie in one chunk.
    func bytes(at offset: Int, length: Int) -> ByteBuffer {
        precondition(offset >= 0 && length >= 0 && offset + length <= count, "range outside the send buffer")
        guard length > 0 else { return ByteBuffer() }
        let position = acknowledgedPosition + offset
        let chunk = chunks[offset: chunkIndex(containing: position)]
        if position + length <= chunk.end {
            let chunkStart = chunk.end - chunk.bytes.readableBytes
            return chunk.bytes.getSlice(at: chunk.bytes.readerIndex + (position - chunkStart), length: length)!
        }
        var result = ByteBufferAllocator().buffer(capacity: length)
        copyBytes(at: offset, length: length, into: &result)
        return result
    }

    /// Drops everything (the connection was aborted).
    mutating func removeAll() {
        acknowledgedPosition += count
        count = 0
        pinnedBytes = 0
        chunks.removeAll(keepingCapacity: true)
    }

    /// The chunk holding stream position `position`: the first whose end is beyond it (binary search,
    /// O(log n) in the number of chunks, with no state to keep for sequential sends).
    private func chunkIndex(containing position: Int) -> Int {
        var low = 0
        var high = chunks.count - 1
        while low < high {
            let middle = low + (high - low) / 2
            if chunks[offset: middle].end > position {
                high = middle
            } else {
                low = middle + 1
            }
        }
        return low
    }
}

/// Buffers for send buffers' packed chunks, kept by the stack for all its connections
/// (`StackIO.packedChunks`).
///
/// A long write seldom fits the free space whole, and the piece that does not fit is offered again
/// later, often shorter than `SendBuffer.packingThreshold`, so it is packed: a new 4 KiB buffer per
/// 128 KiB write was bulk transfer's one malloc in steady state (0.011 per segment). An acknowledged
/// packed chunk comes back here when nobody else holds its storage (no retransmitted slice), and
/// the next packing takes it. At most `limit` are kept: 64 KiB per stack, whatever the number of
/// connections, and an idle connection holds none.
struct PackedChunkPool {
    static let limit = 16
    private var spares: [ByteBuffer] = []

    /// Storage the pool keeps alive, in octets.
    var retainedBytes: Int { spares.count * SendBuffer.packedChunkSize }

    /// An empty buffer of `SendBuffer.packedChunkSize` octets (or `minimumCapacity`, if larger).
    mutating func take(minimumCapacity: Int) -> ByteBuffer {
        if minimumCapacity <= SendBuffer.packedChunkSize, var reused = spares.popLast() {
            reused.clear()
            return reused
        }
        return ByteBufferAllocator().buffer(capacity: max(SendBuffer.packedChunkSize, minimumCapacity))
    }

    /// Keeps `buffer`'s storage if nobody else holds it. In place (`inout`): a copy would itself
    /// be a second reference.
    mutating func giveBack(_ buffer: inout ByteBuffer) {
        guard spares.count < Self.limit else { return }
        let reusable = buffer.modifyIfUniquelyOwned { $0.capacity == SendBuffer.packedChunkSize } ?? false
        if reusable { spares.append(buffer) }
    }
}
