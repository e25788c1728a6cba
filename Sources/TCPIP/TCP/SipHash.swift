/// SipHash-2-4, the keyed hash of Aumasson and Bernstein ("SipHash: a fast short-input PRF", 2012):
/// two compression rounds per 64-bit message word, four finalization rounds, 64-bit output.
///
/// Used where a peer must not be able to predict or steer a hash: RFC 6528 initial sequence numbers and
/// SYN cookies. Input is fed incrementally and buffered into 64-bit words, so hashing a 4-tuple costs a few
/// rounds and allocates nothing. Multi-byte integers are taken in little-endian byte order, as the
/// reference implementation reads its message.
struct SipHash24 {
    private var v0: UInt64
    private var v1: UInt64
    private var v2: UInt64
    private var v3: UInt64
    /// Message bytes not yet compressed, in the low `pendingCount` bytes (little-endian order).
    private var pending: UInt64 = 0
    private var pendingCount: Int = 0
    /// Total message length in bytes; only its low 8 bits enter the final word.
    private var length: UInt64 = 0

    /// `key0` is the first 8 key bytes read little-endian, `key1` the last 8.
    @inline(__always)
    init(key0: UInt64, key1: UInt64) {
        // The constants spell "somepseudorandomlygeneratedbytes".
        v0 = key0 ^ 0x736f_6d65_7073_6575
        v1 = key1 ^ 0x646f_7261_6e64_6f6d
        v2 = key0 ^ 0x6c79_6765_6e65_7261
        v3 = key1 ^ 0x7465_6462_7974_6573
    }

    @inline(__always)
    mutating func combine(_ value: UInt64) {
        combine(littleEndianBytes: value, count: 8)
    }

    @inline(__always)
    mutating func combine(_ value: UInt32) {
        combine(littleEndianBytes: UInt64(value), count: 4)
    }

    @inline(__always)
    mutating func combine(_ value: UInt16) {
        combine(littleEndianBytes: UInt64(value), count: 2)
    }

    @inline(__always)
    mutating func combine(_ value: UInt8) {
        combine(littleEndianBytes: UInt64(value), count: 1)
    }

    mutating func combine(bytes: UnsafeRawBufferPointer) {
        var index = 0
        // Top up a partial word byte by byte, then take whole words straight from memory.
        while pendingCount != 0, index < bytes.count {
            combine(littleEndianBytes: UInt64(bytes[index]), count: 1)
            index += 1
        }
        while bytes.count - index >= 8 {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            compress(word)
            length &+= 8
            index += 8
        }
        while index < bytes.count {
            combine(littleEndianBytes: UInt64(bytes[index]), count: 1)
            index += 1
        }
    }

    /// The 64-bit hash of everything combined.
    @inline(__always)
    consuming func finalize() -> UInt64 {
        // The last word: the remaining bytes, with the message length (mod 256) in the top byte.
        compress(pending | (length << 56))
        v2 ^= 0xff
        for _ in 0..<4 { round() }
        return v0 ^ v1 ^ v2 ^ v3
    }

    /// The hash of a message of 9 to 15 bytes given as its first 8 bytes and the rest, each a
    /// little-endian word (`rest` holds `length - 8` bytes): what combining those bytes one value at
    /// a time and `finalize()` give, without the bookkeeping of partial words. For the 4-tuples of
    /// the connection path (`combineIPv4`), hashed once or twice a connection.
    @inline(__always)
    static func hash(key0: UInt64, key1: UInt64, first: UInt64, rest: UInt64, length: Int) -> UInt64 {
        var hasher = SipHash24(key0: key0, key1: key1)
        hasher.compress(first)
        hasher.pending = rest
        hasher.pendingCount = length - 8
        hasher.length = UInt64(length)
        return hasher.finalize()
    }

    /// Appends the low `count` bytes of `value` (least significant first) to the message.
    @inline(__always)
    private mutating func combine(littleEndianBytes value: UInt64, count: Int) {
        length &+= UInt64(count)
        let space = 8 - pendingCount
        if count < space {
            pending |= value << UInt64(pendingCount * 8)
            pendingCount += count
            return
        }
        // Fill the word, compress it, keep the bytes that did not fit.
        let word = pendingCount == 0 ? value : pending | (value << UInt64(pendingCount * 8))
        compress(word)
        let rest = count - space
        pending = rest == 0 ? 0 : value >> UInt64(space * 8)
        pendingCount = rest
    }

    @inline(__always)
    private mutating func compress(_ word: UInt64) {
        v3 ^= word
        round()
        round()
        v0 ^= word
    }

    @inline(__always)
    private mutating func round() {
        v0 &+= v1
        v1 = v1.rotatedLeft(by: 13)
        v1 ^= v0
        v0 = v0.rotatedLeft(by: 32)
        v2 &+= v3
        v3 = v3.rotatedLeft(by: 16)
        v3 ^= v2
        v0 &+= v3
        v3 = v3.rotatedLeft(by: 21)
        v3 ^= v0
        v2 &+= v1
        v1 = v1.rotatedLeft(by: 17)
        v1 ^= v2
        v2 = v2.rotatedLeft(by: 32)
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(by count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 - count))
    }
}
