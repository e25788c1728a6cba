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

    /// Moves the reader index `length` octets back into the headroom and lets `body` write those octets
    /// through one raw pointer: one uniqueness check per header, not one per field (each `setInteger`
    /// costs a uniqueness check, a capacity check and exclusivity checks of its own).
    ///
    /// - Precondition: `readerIndex >= length` (the caller has checked the headroom).
    @inlinable
    mutating func prependWire(length: Int, _ body: (inout WireWriter) -> Void) {
        moveReaderIndex(to: readerIndex - length)
        withUnsafeMutableReadableBytes { bytes in
            var writer = WireWriter(bytes: UnsafeMutableRawBufferPointer(rebasing: bytes[0..<length]))
            body(&writer)
        }
    }
}

/// Big-endian stores into a header's octets, bounds-checked against the header (a store outside it is
/// our own bug, so it traps).
@usableFromInline
struct WireWriter {
    @usableFromInline let bytes: UnsafeMutableRawBufferPointer

    @inlinable
    init(bytes: UnsafeMutableRawBufferPointer) {
        self.bytes = bytes
    }

    @inlinable
    func store<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
        precondition(offset >= 0 && offset + MemoryLayout<Value>.size <= bytes.count, "store outside the header")
        bytes.baseAddress!.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Value.self)
    }

    /// Three big-endian words from `offset` on, behind one bounds check for all of them.
    @inlinable
    func store(_ word0: UInt32, _ word1: UInt32, _ word2: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 12 <= bytes.count, "store outside the header")
        let base = bytes.baseAddress! + offset
        base.storeBytes(of: word0.bigEndian, as: UInt32.self)
        base.storeBytes(of: word1.bigEndian, toByteOffset: 4, as: UInt32.self)
        base.storeBytes(of: word2.bigEndian, toByteOffset: 8, as: UInt32.self)
    }

    /// Five big-endian words from `offset` on, behind one bounds check for all of them.
    @inlinable
    func store(_ word0: UInt32, _ word1: UInt32, _ word2: UInt32, _ word3: UInt32, _ word4: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 20 <= bytes.count, "store outside the header")
        let base = bytes.baseAddress! + offset
        base.storeBytes(of: word0.bigEndian, as: UInt32.self)
        base.storeBytes(of: word1.bigEndian, toByteOffset: 4, as: UInt32.self)
        base.storeBytes(of: word2.bigEndian, toByteOffset: 8, as: UInt32.self)
        base.storeBytes(of: word3.bigEndian, toByteOffset: 12, as: UInt32.self)
        base.storeBytes(of: word4.bigEndian, toByteOffset: 16, as: UInt32.self)
    }
}

/// Big-endian reads from a packet's readable octets through one raw pointer, with the same never-trapping
/// contract as `ByteBuffer.wireUInt16(at:)`: a read past the end yields 0 (length checks make it unreachable).
/// Parsers read a header's fields through one of these instead of one `getInteger` call per field.
@usableFromInline
struct WireReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer

    @inlinable
    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    @inlinable
    func load<Value: FixedWidthInteger>(at offset: Int, as: Value.Type) -> Value {
        guard offset >= 0, offset <= bytes.count &- MemoryLayout<Value>.size else { return 0 }
        return Value(bigEndian: bytes.baseAddress!.loadUnaligned(fromByteOffset: offset, as: Value.self))
    }

    @inlinable func wireUInt8(at offset: Int) -> UInt8 { load(at: offset, as: UInt8.self) }
    @inlinable func wireUInt16(at offset: Int) -> UInt16 { load(at: offset, as: UInt16.self) }
    @inlinable func wireUInt32(at offset: Int) -> UInt32 { load(at: offset, as: UInt32.self) }
}

extension ByteBuffer {
    /// Runs `body` with a `WireReader` over the readable octets.
    @inlinable
    func withWireReader<Result>(_ body: (WireReader) -> Result) -> Result {
        withUnsafeReadableBytes { body(WireReader($0)) }
    }
}
