import NIOCore
import TCPIPWire

extension ByteBuffer {
    /// The memory this buffer keeps alive: its whole storage, however little of it is readable
    /// (Linux's "truesize"). A 1-byte slice of a 64 KiB receive buffer pins 64 KiB.
    ///
    /// Queues account memory by this, not by readable bytes, so that a peer sending many tiny
    /// segments cannot make us hold far more memory than the bytes we have promised to keep.
    @inlinable
    var pinnedStorageBytes: Int { storageCapacity }
}

/// In-order received bytes waiting for the application (RFC 9293 §3.10.3's "queued incoming segments"
/// that are already in sequence).
///
/// Payload is kept as slices of the buffers the segments arrived in: no copy on the way in. When slices
/// pin much more storage than they hold, `compact()` copies them into one right-sized buffer.
struct ReceiveBuffer {
    private var chunks = PacketQueue<ByteBuffer>()

    /// Readable bytes.
    private(set) var count: Int = 0
    /// Storage kept alive by the chunks (see `ByteBuffer.pinnedStorageBytes`).
    private(set) var pinnedBytes: Int = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    /// The ring the chunks are queued in (it grows by doubling and keeps its size).
    var queueStorageBytes: Int { chunks.capacity * MemoryLayout<ByteBuffer?>.stride }

    /// Frees the ring of an empty buffer (an idle connection giving memory back).
    mutating func releaseStorage() {
        guard count == 0 else { return }
        chunks = PacketQueue()
    }

    /// Queues `payload`'s readable bytes after those already held, without copying them.
    mutating func append(_ payload: ByteBuffer) {
        guard payload.readableBytes > 0 else { return }
        count += payload.readableBytes
        pinnedBytes += payload.pinnedStorageBytes
        chunks.append(payload)
    }

    /// Removes and returns up to `maxLength` bytes from the front; nil when empty or `maxLength` is 0.
    ///
    /// When the first chunk holds enough, the result is a slice of it (no copy); otherwise the bytes of
    /// several chunks are copied into one new buffer.
    mutating func read(upTo maxLength: Int) -> ByteBuffer? {
        let length = min(maxLength, count)
        guard length > 0 else { return nil }
        count -= length
        let firstLength = chunks.modifyFirst { $0.readableBytes }
        if length == firstLength {
            let chunk = chunks.popFirst()!
            pinnedBytes -= chunk.pinnedStorageBytes
            return chunk
        }
        if length < firstLength {
            return chunks.modifyFirst { $0.readSlice(length: length)! }
        }
        var result = ByteBufferAllocator().buffer(capacity: length)
        var remaining = length
        while remaining > 0 {
            let taken = chunks.modifyFirst { chunk -> Int in
                let taken = min(remaining, chunk.readableBytes)
                var slice = chunk.readSlice(length: taken)!
                result.writeBuffer(&slice)
                return taken
            }
            remaining -= taken
            if chunks.modifyFirst({ $0.readableBytes }) == 0 {
                pinnedBytes -= chunks.popFirst()!.pinnedStorageBytes
            }
        }
        return result
    }

    /// Removes and returns up to `maxLength` bytes from the front, never more than the first chunk
    /// holds: a slice of the buffer they arrived in, so this neither copies nor allocates (what a
    /// receiver that takes the bytes as they came wants; `read(upTo:)` joins chunks by copying).
    mutating func readChunk(upTo maxLength: Int) -> ByteBuffer? {
        guard maxLength > 0, count > 0 else { return nil }
        let firstLength = chunks.modifyFirst { $0.readableBytes }
        guard maxLength < firstLength else {
            count -= firstLength
            let chunk = chunks.popFirst()!
            pinnedBytes -= chunk.pinnedStorageBytes
            return chunk
        }
        count -= maxLength
        return chunks.modifyFirst { $0.readSlice(length: maxLength)! }
    }

    /// The bytes `read(upTo:)` would return, left in place (MSG_PEEK).
    func peek(upTo maxLength: Int) -> ByteBuffer? {
        let length = min(maxLength, count)
        guard length > 0 else { return nil }
        let first = chunks.first!
        if length <= first.readableBytes {
            return first.getSlice(at: first.readerIndex, length: length)
        }
        var result = ByteBufferAllocator().buffer(capacity: length)
        var remaining = length
        for chunk in chunks where remaining > 0 {
            let taken = min(remaining, chunk.readableBytes)
            result.writeImmutableBuffer(chunk.getSlice(at: chunk.readerIndex, length: taken)!)
            remaining -= taken
        }
        return result
    }

    /// Copies everything into one right-sized buffer when the chunks pin more than four times the
    /// bytes they hold (many small slices of big buffers, as a hostile or merely chatty peer causes).
    ///
    /// - Returns: whether it copied.
    @discardableResult
    mutating func compact() -> Bool {
        guard pinnedBytes > 4 * count else { return false }
        guard let all = read(upTo: count) else { return false }
        // `read` returns a slice when one chunk holds everything; copy so the big storage is let go.
        var compacted = ByteBufferAllocator().buffer(capacity: all.readableBytes)
        compacted.writeImmutableBuffer(all)
        append(compacted)
        return true
    }

    /// Drops everything (the connection was aborted).
    mutating func removeAll() {
        chunks.removeAll(keepingCapacity: true)
        count = 0
        pinnedBytes = 0
    }
}
