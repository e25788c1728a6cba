import NIOCore

/// The Internet checksum of RFC 1071: the 16-bit one's-complement of the one's-complement sum of
/// 16-bit big-endian words.
///
/// Bytes may be added in chunks of any length, odd or even; the sum stays right across chunk
/// boundaries (a chunk that starts at an odd offset has its partial sum byte-swapped, RFC 1071 §2(B)).
///
/// The sum runs over eight bytes at a time in native byte order: one's-complement addition is
/// independent of byte order (RFC 1071 §2(B)), so only the folded result needs swapping.
///
///     var sum = InternetChecksum()
///     sum.addPseudoHeader(source: s, destination: d, protocolNumber: IPProtocolNumber.tcp, upperLayerLength: n)
///     sum.add(segment)
///     sum.checksum   // 0 when `segment` carries a correct checksum
public struct InternetChecksum: Sendable {
    /// The running sum of big-endian 16-bit words, with end-around carries not yet folded in.
    @usableFromInline
    var sum: UInt64 = 0
    /// Whether an odd number of bytes has been added, so the next byte is the low half of a word.
    @usableFromInline
    var odd = false

    /// An empty sum: nothing added yet.
    @inlinable
    public init() {}

    /// Adds bytes as if they followed everything added so far.
    @inlinable
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let folded = InternetChecksum.nativeSum(bytes)
        // The native-order sum, byte-swapped on little-endian machines, is the big-endian sum.
        var bigEndianSum = UInt16(bigEndian: folded)
        if odd {
            bigEndianSum = bigEndianSum.byteSwapped
        }
        addFolded(bigEndianSum)
        if bytes.count & 1 == 1 {
            odd.toggle()
        }
    }

    /// Adds the readable bytes of `buffer`.
    @inlinable
    public mutating func add(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { add($0) }
    }

    /// Adds a 16-bit value as two big-endian bytes following everything added so far.
    @inlinable
    public mutating func add(_ word: UInt16) {
        addFolded(odd ? word.byteSwapped : word)
    }

    /// Adds the pseudo-header that TCP and UDP checksums cover.
    ///
    /// RFC 9293 §3.1 (IPv4): source, destination, zero, protocol, TCP length.
    /// RFC 8200 §8.1 (IPv6): source, destination, upper-layer packet length (32 bits), zero, next header.
    /// Both addresses must be of the same family.
    @inlinable
    public mutating func addPseudoHeader(
        source: IPAddress, destination: IPAddress, protocolNumber: UInt8, upperLayerLength: Int
    ) {
        switch (source, destination) {
        case (.v4(let source), .v4(let destination)):
            addWords(UInt64(source.rawValue) &+ UInt64(destination.rawValue)
                &+ UInt64(protocolNumber) &+ UInt64(UInt16(truncatingIfNeeded: upperLayerLength)))
        case (.v6(let source), .v6(let destination)):
            addWords(source.high)
            addWords(source.low)
            addWords(destination.high)
            addWords(destination.low)
            addWords(UInt64(UInt32(truncatingIfNeeded: upperLayerLength)) &+ UInt64(protocolNumber))
        default:
            preconditionFailure("pseudo-header with mixed address families: \(source), \(destination)")
        }
    }

    /// The checksum to put in a header: the complement of the folded sum. Computing it over data that
    /// already holds a correct checksum gives 0.
    @inlinable
    public var checksum: UInt16 {
        ~InternetChecksum.fold(sum)
    }

    /// A checksum updated for one 16-bit word of what it covers changing from `old` to `new`,
    /// without summing the rest again: RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'). (Eqn. 2's
    /// HC - ~m - m' could give 0x0000 where 0xFFFF is right, RFC 1624 §3.)
    @inlinable
    public static func update(_ checksum: UInt16, replacing old: UInt16, with new: UInt16) -> UInt16 {
        ~fold(UInt64(~checksum) &+ UInt64(~old) &+ UInt64(new))
    }

    /// Adds a value made of whole big-endian words, at word alignment with respect to the byte stream.
    @inlinable
    mutating func addWords(_ value: UInt64) {
        let folded = InternetChecksum.fold(value)
        addFolded(odd ? folded.byteSwapped : folded)
    }

    @inlinable
    mutating func addFolded(_ value: UInt16) {
        // Cannot overflow in practice (2^48 additions), but wrap rather than trap.
        sum = sum &+ UInt64(value)
        if sum >= 0xFFFF_0000_0000_0000 {
            sum = UInt64(InternetChecksum.fold(sum))
        }
    }

    /// Folds a 64-bit one's-complement sum to 16 bits with end-around carries.
    @inlinable
    static func fold(_ value: UInt64) -> UInt16 {
        var value = (value >> 32) &+ (value & 0xFFFF_FFFF)     // at most 33 bits
        value = (value >> 32) &+ (value & 0xFFFF_FFFF)         // at most 32 bits
        value = (value >> 16) &+ (value & 0xFFFF)              // at most 17 bits
        value = (value >> 16) &+ (value & 0xFFFF)              // at most 16 bits
        return UInt16(truncatingIfNeeded: value)
    }

    /// The folded one's-complement sum of `bytes` read as native-order 16-bit words from an even offset.
    @inlinable
    static func nativeSum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        guard let base = bytes.baseAddress else { return 0 }
        let count = bytes.count
        var accumulator: UInt64 = 0
        var carries: UInt64 = 0
        var offset = 0
        // Four independent eight-byte loads per round; carries are counted and added back at the end.
        while count - offset >= 32 {
            let a = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let b = base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            let c = base.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)
            let d = base.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)
            var overflow: Bool
            (accumulator, overflow) = accumulator.addingReportingOverflow(a)
            carries &+= overflow ? 1 : 0
            (accumulator, overflow) = accumulator.addingReportingOverflow(b)
            carries &+= overflow ? 1 : 0
            (accumulator, overflow) = accumulator.addingReportingOverflow(c)
            carries &+= overflow ? 1 : 0
            (accumulator, overflow) = accumulator.addingReportingOverflow(d)
            carries &+= overflow ? 1 : 0
            offset += 32
        }
        while count - offset >= 8 {
            let word = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let overflow: Bool
            (accumulator, overflow) = accumulator.addingReportingOverflow(word)
            carries &+= overflow ? 1 : 0
            offset += 8
        }
        if offset < count {
            // The last one to seven bytes, zero-padded at the end: a trailing odd byte is the high
            // half of a big-endian word, exactly as RFC 1071 pads it.
            var tail: UInt64 = 0
            withUnsafeMutableBytes(of: &tail) { tailBytes in
                tailBytes.baseAddress!.copyMemory(from: base + offset, byteCount: count - offset)
            }
            let overflow: Bool
            (accumulator, overflow) = accumulator.addingReportingOverflow(tail)
            carries &+= overflow ? 1 : 0
        }
        // Each carry out of bit 63 is worth 2^64, which is 1 modulo 2^16 - 1.
        let (total, overflow) = accumulator.addingReportingOverflow(carries)
        return fold(overflow ? total &+ 1 : total)
    }
}
