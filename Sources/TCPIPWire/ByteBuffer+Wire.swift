import NIOCore

extension ByteBuffer {
    // Readers relative to the reader index, for fields whose bounds the caller has already checked.
    // They never trap: a read past the end yields 0, which the length checks make unreachable.

    @inlinable
    func wireUInt8(at offset: Int) -> UInt8 {
        getInteger(at: readerIndex &+ offset, as: UInt8.self) ?? 0
    }

    @inlinable
    func wireUInt16(at offset: Int) -> UInt16 {
        getInteger(at: readerIndex &+ offset, endianness: .big, as: UInt16.self) ?? 0
    }

    @inlinable
    func wireUInt32(at offset: Int) -> UInt32 {
        getInteger(at: readerIndex &+ offset, endianness: .big, as: UInt32.self) ?? 0
    }

    @inlinable
    func wireUInt64(at offset: Int) -> UInt64 {
        getInteger(at: readerIndex &+ offset, endianness: .big, as: UInt64.self) ?? 0
    }

    /// The checksum of `length` readable bytes starting `offset` bytes past the reader index,
    /// added to `checksum`. The caller has checked that they are readable.
    @inlinable
    func addToChecksum(_ checksum: inout InternetChecksum, offset: Int, length: Int) {
        withUnsafeReadableBytes { bytes in
            let start = min(max(offset, 0), bytes.count)
            let end = min(max(start, start &+ length), bytes.count)
            checksum.add(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
        }
    }
}
