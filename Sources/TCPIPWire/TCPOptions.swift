import NIOCore

/// One SACK block of RFC 2018 §3: the received octets `start ..< end`.
public struct SACKBlock: Hashable, Sendable, CustomStringConvertible {
    /// The first octet of the block.
    public var start: SequenceNumber
    /// The octet after the block's last.
    public var end: SequenceNumber

    /// The block `start ..< end`.
    @inlinable
    public init(start: SequenceNumber, end: SequenceNumber) {
        self.start = start
        self.end = end
    }

    public var description: String { "{\(start):\(end)}" }
}

/// Up to four SACK blocks, stored inline: no heap allocation per segment.
///
/// Four is the most that fit in the 40 octets of TCP options (RFC 2018 §3).
public struct SACKBlocks: Hashable, Sendable, RandomAccessCollection, ExpressibleByArrayLiteral {
    /// The most blocks a segment can carry.
    public static let capacity = 4

    @usableFromInline
    var storage: (SACKBlock, SACKBlock, SACKBlock, SACKBlock)
    @usableFromInline
    var _count: UInt8

    /// No blocks.
    @inlinable
    public init() {
        let empty = SACKBlock(start: SequenceNumber(0), end: SequenceNumber(0))
        storage = (empty, empty, empty, empty)
        _count = 0
    }

    /// The first four of `elements`.
    public init(arrayLiteral elements: SACKBlock...) {
        self.init()
        for block in elements { append(block) }
    }

    public typealias Index = Int

    @inlinable
    public var startIndex: Int { 0 }

    @inlinable
    public var endIndex: Int { Int(_count) }

    /// Whether `capacity` blocks are held.
    @inlinable
    public var isFull: Bool { _count == SACKBlocks.capacity }

    @inlinable
    public subscript(position: Int) -> SACKBlock {
        get {
            precondition(position >= 0 && position < Int(_count), "SACK block index out of range")
            switch position {
            case 0: return storage.0
            case 1: return storage.1
            case 2: return storage.2
            default: return storage.3
            }
        }
        set {
            precondition(position >= 0 && position < Int(_count), "SACK block index out of range")
            switch position {
            case 0: storage.0 = newValue
            case 1: storage.1 = newValue
            case 2: storage.2 = newValue
            default: storage.3 = newValue
            }
        }
    }

    /// Appends `block`; does nothing when four are stored already.
    @inlinable
    public mutating func append(_ block: SACKBlock) {
        guard !isFull else { return }
        _count += 1
        self[Int(_count) - 1] = block
    }

    /// Removes every block.
    @inlinable
    public mutating func removeAll() {
        self = SACKBlocks()
    }

    /// Keeps only the first `count` blocks.
    @inlinable
    public mutating func truncate(to count: Int) {
        let kept = prefix(Swift.max(count, 0))
        var result = SACKBlocks()
        for block in kept { result.append(block) }
        self = result
    }

    @inlinable
    public static func == (lhs: SACKBlocks, rhs: SACKBlocks) -> Bool {
        lhs.elementsEqual(rhs)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(_count)
        for block in self { hasher.combine(block) }
    }
}

/// The RFC 7323 §3 timestamps option: TSval and TSecr.
public struct TCPTimestamps: Hashable, Sendable {
    /// TSval: the sender's timestamp clock when it sent the segment.
    public var value: UInt32
    /// TSecr: the most recent TSval received from the peer (RFC 7323 §4.3).
    public var echoReply: UInt32

    /// The option with TSval `value` and TSecr `echoReply`.
    @inlinable
    public init(value: UInt32, echoReply: UInt32) {
        self.value = value
        self.echoReply = echoReply
    }
}

/// The TCP Fast Open cookie option of RFC 7413 §4.1.1: kind 34, or the experimental form the
/// option had before kind 34 was assigned (kind 254 with the magic 0xF989, RFC 6994), which Linux
/// still speaks. An empty cookie is a cookie request. Stored inline: no allocation per segment.
public struct TCPFastOpenCookie: Hashable, Sendable, CustomStringConvertible {
    /// Which of the two option kinds carries the cookie.
    public enum Form: UInt8, Hashable, Sendable {
        /// Kind 34, length 2 + cookie (RFC 7413 §4.1.1).
        case standard
        /// Kind 254, length 4 + cookie, magic 0xF989 (RFC 7413 §4.1.1's experimental option, RFC 6994).
        case experimental
    }

    /// The kind of option the cookie came in, and goes out in.
    public var form: Form
    /// Octets of cookie: 0 (a request), or 4 to 16 (RFC 7413 §4.1.1: "between 4 and 16 bytes").
    public var length: UInt8 { storedLength }
    @usableFromInline var storedLength: UInt8
    /// The cookie's octets in wire order, four to a word, big-endian. 32-bit words rather than two
    /// 64-bit ones keep the cookie's alignment, and so `TCPOptions`', at 4: with 8, padding took
    /// `TCPHeader` from 96 to 104 bytes and the stack's segment past 128, which the compiler copies
    /// by calling memcpy (six calls per segment received, 3% of `bench bulk`'s instructions).
    @usableFromInline var word0: UInt32
    @usableFromInline var word1: UInt32
    @usableFromInline var word2: UInt32
    @usableFromInline var word3: UInt32

    /// The fewest octets a cookie has (RFC 7413 §4.1.1).
    public static let minimumLength = 4
    /// The most octets a cookie has (RFC 7413 §4.1.1).
    public static let maximumLength = 16

    /// A cookie request: the option without a cookie (RFC 7413 §4.1.2).
    public static func request(_ form: Form = .standard) -> TCPFastOpenCookie {
        TCPFastOpenCookie(form: form, length: 0, high: 0, low: 0)
    }

    @usableFromInline
    init(form: Form, length: UInt8, high: UInt64, low: UInt64) {
        self.form = form
        self.storedLength = length
        word0 = UInt32(truncatingIfNeeded: high >> 32)
        word1 = UInt32(truncatingIfNeeded: high)
        word2 = UInt32(truncatingIfNeeded: low >> 32)
        word3 = UInt32(truncatingIfNeeded: low)
    }

    /// A cookie of `bytes`; nil when the length is not 0 or an even 4…16 — such an option is
    /// ignored (RFC 7413 §4.1.1 bounds the cookie; Linux, tcp_parse_fastopen_option, also wants an
    /// even length).
    public init?(form: Form = .standard, bytes: some Collection<UInt8>) {
        guard Self.isValidLength(bytes.count) else { return nil }
        self.form = form
        self.storedLength = UInt8(bytes.count)
        (word0, word1, word2, word3) = (0, 0, 0, 0)
        for (index, byte) in bytes.enumerated() { setByte(byte, at: index) }
    }

    /// The cookie as the first 8 octets of a 64-bit MAC, written in little-endian order (as Linux
    /// writes its SipHash: `cpu_to_le64`).
    public init(form: Form, littleEndianMAC mac: UInt64) {
        self.init(form: form, length: 8, high: mac.byteSwapped, low: 0)
    }

    @inlinable
    static func isValidLength(_ count: Int) -> Bool {
        count == 0 || (count >= minimumLength && count <= maximumLength && count % 2 == 0)
    }

    /// Whether this is a cookie request: an empty cookie (RFC 7413 §4.1.1).
    public var isRequest: Bool { length == 0 }

    /// The cookie's octets.
    public var bytes: [UInt8] { (0..<Int(length)).map(byte(at:)) }

    /// Whether the cookies are the same octets, whatever the option's form.
    public func sameCookie(as other: TCPFastOpenCookie) -> Bool {
        length == other.length && word0 == other.word0 && word1 == other.word1 && word2 == other.word2
            && word3 == other.word3
    }

    @inlinable
    func byte(at index: Int) -> UInt8 {
        let word = switch index >> 2 {
        case 0: word0
        case 1: word1
        case 2: word2
        default: word3
        }
        return UInt8(truncatingIfNeeded: word >> (24 - 8 * (index & 3)))
    }

    @inlinable
    mutating func setByte(_ value: UInt8, at index: Int) {
        let bits = UInt32(value) << (24 - 8 * (index & 3))
        switch index >> 2 {
        case 0: word0 |= bits
        case 1: word1 |= bits
        case 2: word2 |= bits
        default: word3 |= bits
        }
    }

    /// The option's length field: the kind, the length octet, the magic of the experimental form,
    /// and the cookie.
    @inlinable
    var optionLength: Int { (form == .standard ? 2 : 4) + Int(length) }

    /// What the option takes on the wire, padded with NOPs to a multiple of 4 (as Linux writes it).
    @inlinable
    var paddedLength: Int { (optionLength + 3) & ~3 }

    public var description: String {
        let hex = bytes.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
        let name = form == .standard ? "FO" : "FOEXP"
        return hex.isEmpty ? name : "\(name) \(hex)"
    }
}

/// The TCP options this stack understands, as a value. Unknown options are skipped when parsing.
///
/// Options are written in Linux's order and layout, so captures of this stack and of Linux read alike:
///
///     SYN:   mss, sackOK, TS, nop, wscale       (sackOK and TS share 12 octets)
///     SYN without SACK:     mss, nop, nop, TS, nop, wscale
///     SYN without TS:       mss, nop, nop, sackOK, nop, wscale
///     data:  nop, nop, TS, nop, nop, sack ...
///
/// When everything does not fit in the 40 octets of option space, SACK blocks are dropped from the end.
public struct TCPOptions: Hashable, Sendable {
    /// How a segment carrying an MSS option (a SYN or SYN-ACK) arranges its options. RFC 9293 §3.2
    /// leaves the order to the sender; both layouts take the same number of octets.
    public enum Layout: UInt8, Hashable, Sendable {
        /// Ours and Linux's: mss, sackOK with TS (or nop, nop, TS), nop, wscale.
        case linux
        /// 4.4BSD's and FreeBSD's (tcp_output.c, tcp_addoptions): mss, nop, wscale, sackOK, TS,
        /// each aligned with NOPs, and the list ended by EOL and zero padding.
        case bsd
    }

    /// MSS (RFC 9293 §3.7.1), on a SYN only: the most octets of data the sender can receive in one segment.
    public var maximumSegmentSize: UInt16?
    /// The shift count; parsing clamps it to 14 (RFC 7323 §2.3).
    public var windowScale: UInt8?
    /// SACK-permitted (RFC 2018 §2), on a SYN only.
    public var sackPermitted: Bool
    /// Timestamps (RFC 7323 §3).
    public var timestamps: TCPTimestamps?
    /// SACK blocks (RFC 2018 §3): what was received above the cumulative ACK.
    public var sackBlocks: SACKBlocks
    /// The arrangement of a SYN's options; parsing always yields `.linux` (order is not kept).
    public var layout: Layout = .linux
    /// RFC 7413's Fast Open cookie option (in a SYN or SYN-ACK only, §4.1.1).
    public var fastOpen: TCPFastOpenCookie?

    /// The most octets of options a TCP header can carry (data offset 15).
    public static let maximumLength = 40
    /// RFC 7323 §2.3: a larger shift count is treated as 14.
    public static let maximumWindowScale: UInt8 = 14

    /// Options with these values (each as the property of the same name); the layout is Linux's.
    @inlinable
    public init(
        maximumSegmentSize: UInt16? = nil, windowScale: UInt8? = nil, sackPermitted: Bool = false,
        timestamps: TCPTimestamps? = nil, sackBlocks: SACKBlocks = SACKBlocks()
    ) {
        self.maximumSegmentSize = maximumSegmentSize
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.timestamps = timestamps
        self.sackBlocks = sackBlocks
    }

    /// Octets of options this value encodes to: a multiple of 4, at most 40.
    ///
    /// Always inlined: called, it took the options by copy, and `prependWithIPv4` copied them out
    /// of the header its caller had just written (16-octet loads across the fields' stores, which
    /// the store buffer cannot forward): 1 % of `bench connrate` on this one function's first load.
    @inlinable @inline(__always)
    public var encodedLength: Int {
        let fixed = fixedLength
        // Most segments carry no SACK blocks: nothing to fit.
        guard !sackBlocks.isEmpty else { return fixed }
        let blocks = sackBlocksThatFit(after: fixed)
        return fixed + (blocks > 0 ? 4 + 8 * blocks : 0)
    }

    /// Octets of everything but SACK blocks.
    @inlinable
    var fixedLength: Int {
        var length = 0
        if maximumSegmentSize != nil { length += 4 }
        if timestamps != nil { length += 12 }             // sackOK, if any, rides in the TS word's padding
        else if sackPermitted { length += 4 }
        if windowScale != nil { length += 4 }
        if let fastOpen { length += fastOpen.paddedLength }
        return length
    }

    /// How many SACK blocks fit behind `fixedLength` octets of other options.
    @inlinable
    func sackBlocksThatFit(after fixedLength: Int) -> Int {
        let room = (TCPOptions.maximumLength - fixedLength - 4) / 8
        return max(0, min(sackBlocks.count, room))
    }

    /// NOP, NOP, kind 8, length 10: the first word of options that are timestamps alone, as we and
    /// Linux write them (RFC 7323 Appendix A).
    @usableFromInline
    static let alignedTimestampsWord: UInt32 = 0x0101_080A

    /// MSS (kind 2, length 4), then SACK permitted (4, 2) with timestamps (8, 10), then NOP and window
    /// scale (3, 3): the fixed octets of the first word's top half, the second word, and the top
    /// three octets of the fifth, in the 20 octets of options a SYN from Linux or from us carries.
    @usableFromInline
    static let synLayoutWords: (UInt32, UInt32, UInt32) = (0x0204, 0x0402_080A, 0x01_0303)

    /// The option kinds of RFC 9293 §3.2, RFC 7323 and RFC 2018.
    enum Kind {
        static let endOfList: UInt8 = 0
        static let noOperation: UInt8 = 1
        static let maximumSegmentSize: UInt8 = 2
        static let windowScale: UInt8 = 3
        static let sackPermitted: UInt8 = 4
        static let sack: UInt8 = 5
        static let timestamps: UInt8 = 8
        /// RFC 7413 §4.1.1.
        static let fastOpen: UInt8 = 34
        /// RFC 6994 §2 (RFC 4727's experimental kind), with RFC 7413's magic 0xF989 after the length.
        static let experimental: UInt8 = 254
        static let fastOpenMagic: UInt16 = 0xF989
    }

    /// Writes the options at `index`, returning the octets written (`encodedLength`).
    func write(to header: WireWriter, at index: Int) -> Int {
        // The two shapes nearly every segment has, as whole words behind one bounds check: each
        // `store` below checks its own bounds and is a call (150 instructions a segment in `bench
        // connrate` for what is three or five stores).
        if let timestamps, sackBlocks.isEmpty, fastOpen == nil {
            if maximumSegmentSize == nil, windowScale == nil, !sackPermitted {
                // nop, nop, TS: every segment of a connection with timestamps but its SYN.
                header.store(Self.alignedTimestampsWord, timestamps.value, timestamps.echoReply, at: index)
                return 12
            }
            if layout == .linux, let mss = maximumSegmentSize, let windowScale, sackPermitted {
                // mss, sackOK, TS, nop, wscale: our SYN and SYN-ACK (`synLayoutWords`).
                header.store(
                    Self.synLayoutWords.0 << 16 | UInt32(mss), Self.synLayoutWords.1, timestamps.value,
                    timestamps.echoReply, Self.synLayoutWords.2 << 8 | UInt32(windowScale), at: index)
                return 20
            }
        }
        if layout == .bsd, maximumSegmentSize != nil, sackBlocks.isEmpty { return writeBSD(to: header, at: index) }
        var at = index
        func word(_ value: UInt32) {
            header.store(value, at: at)
            at += 4
        }
        let nop = UInt32(Kind.noOperation)
        if let mss = maximumSegmentSize {
            word(UInt32(Kind.maximumSegmentSize) << 24 | 4 << 16 | UInt32(mss))
        }
        if let timestamps {
            if sackPermitted {
                word(UInt32(Kind.sackPermitted) << 24 | 2 << 16 | UInt32(Kind.timestamps) << 8 | 10)
            } else {
                word(nop << 24 | nop << 16 | UInt32(Kind.timestamps) << 8 | 10)
            }
            word(timestamps.value)
            word(timestamps.echoReply)
        } else if sackPermitted {
            word(nop << 24 | nop << 16 | UInt32(Kind.sackPermitted) << 8 | 2)
        }
        if let windowScale {
            word(nop << 24 | UInt32(Kind.windowScale) << 16 | 3 << 8 | UInt32(windowScale))
        }
        if let fastOpen { at += Self.write(fastOpen, to: header, at: at) }
        let blocks = sackBlocksThatFit(after: at - index)
        if blocks > 0 {
            word(nop << 24 | nop << 16 | UInt32(Kind.sack) << 8 | UInt32(2 + 8 * blocks))
            for position in 0..<blocks {
                word(sackBlocks[position].start.rawValue)
                word(sackBlocks[position].end.rawValue)
            }
        }
        return at - index
    }

    /// FreeBSD's tcp_addoptions (sys/netinet/tcp_output.c): MSS at a 4-octet boundary; window scale
    /// at an odd offset; SACK permitted at an even one; timestamps at 2 modulo 4 (a SYN has no SACK blocks);
    /// NOPs before each as needed; then EOL and zeros to the next word. For every combination of
    /// options a SYN carries this is as long as our layout (`encodedLength`).
    private func writeBSD(to header: WireWriter, at index: Int) -> Int {
        var length = 0
        func byte(_ value: UInt8) {
            header.store(value, at: index + length)
            length += 1
        }
        func pad(until aligned: (Int) -> Bool) {
            while !aligned(length) { byte(Kind.noOperation) }
        }
        if let mss = maximumSegmentSize {
            pad { $0 % 4 == 0 }
            byte(Kind.maximumSegmentSize)
            byte(4)
            byte(UInt8(mss >> 8))
            byte(UInt8(truncatingIfNeeded: mss))
        }
        if let windowScale {
            pad { $0 != 0 && $0 % 2 == 1 }
            byte(Kind.windowScale)
            byte(3)
            byte(windowScale)
        }
        if sackPermitted {
            pad { $0 % 2 == 0 }
            byte(Kind.sackPermitted)
            byte(2)
        }
        if let timestamps {
            pad { $0 != 0 && $0 % 4 == 2 }
            byte(Kind.timestamps)
            byte(10)
            header.store(timestamps.value, at: index + length)
            header.store(timestamps.echoReply, at: index + length + 4)
            length += 8
        }
        if let fastOpen {
            if fastOpen.form == .standard {
                // tcp_addoptions' TOF_FASTOPEN: kind 34 where it falls, unaligned.
                byte(Kind.fastOpen)
                byte(UInt8(fastOpen.optionLength))
                for position in 0..<Int(fastOpen.length) { byte(fastOpen.byte(at: position)) }
            } else {
                length += Self.write(fastOpen, to: header, at: index + length)
            }
        }
        if length % 4 != 0 { byte(Kind.endOfList) }
        // Zeros to a word, and to the length of our layout when FreeBSD's is shorter (an unaligned
        // Fast Open option): the header's data offset counts `encodedLength`.
        while length % 4 != 0 || length < encodedLength { byte(0) }
        return length
    }

    /// The Fast Open option, then NOPs to a multiple of 4 (Linux's tcp_options_write); returns its
    /// padded length.
    private static func write(_ cookie: TCPFastOpenCookie, to header: WireWriter, at index: Int) -> Int {
        var at = index
        if cookie.form == .standard {
            header.store(Kind.fastOpen, at: at)
            header.store(UInt8(cookie.optionLength), at: at + 1)
            at += 2
        } else {
            header.store(Kind.experimental, at: at)
            header.store(UInt8(cookie.optionLength), at: at + 1)
            header.store(Kind.fastOpenMagic, at: at + 2)
            at += 4
        }
        for position in 0..<Int(cookie.length) {
            header.store(cookie.byte(at: position), at: at)
            at += 1
        }
        while (at - index) % 4 != 0 {
            header.store(Kind.noOperation, at: at)
            at += 1
        }
        return at - index
    }

    /// Parses the options in `length` octets at `offset` past `segment`'s reader index.
    ///
    /// EOL ends the list; NOP is skipped; unknown kinds are skipped by their length. A length below 2 or
    /// running past the header, or the wrong length for a kind we know, throws `.badOptionLength`.
    static func parse(_ segment: ByteBuffer, offset: Int, length: Int) throws(WireError) -> TCPOptions {
        guard length > 0 else { return TCPOptions() }
        return try segment.withWireReader { reader in
            Result { () throws(WireError) in try parse(reader, offset: offset, length: length) }
        }.get()
    }

    private static func parse(_ segment: WireReader, offset: Int, length: Int) throws(WireError) -> TCPOptions {
        var options = TCPOptions()
        var at = offset
        let end = offset + length
        while at < end {
            let kind = segment.wireUInt8(at: at)
            if kind == Kind.endOfList { break }
            if kind == Kind.noOperation {
                at += 1
                continue
            }
            guard end - at >= 2 else { throw .badOptionLength }
            let optionLength = Int(segment.wireUInt8(at: at + 1))
            guard optionLength >= 2, optionLength <= end - at else { throw .badOptionLength }
            switch kind {
            case Kind.maximumSegmentSize:
                guard optionLength == 4 else { throw .badOptionLength }
                options.maximumSegmentSize = segment.wireUInt16(at: at + 2)
            case Kind.windowScale:
                guard optionLength == 3 else { throw .badOptionLength }
                // RFC 7323 §2.3: a shift count above 14 is used as 14.
                options.windowScale = min(segment.wireUInt8(at: at + 2), maximumWindowScale)
            case Kind.sackPermitted:
                guard optionLength == 2 else { throw .badOptionLength }
                options.sackPermitted = true
            case Kind.sack:
                // RFC 2018 §3: 2 + 8n octets, n >= 1.
                guard optionLength >= 10, (optionLength - 2) % 8 == 0 else { throw .badOptionLength }
                options.sackBlocks.removeAll()
                var blockAt = at + 2
                while blockAt < at + optionLength {
                    options.sackBlocks.append(SACKBlock(
                        start: SequenceNumber(segment.wireUInt32(at: blockAt)),
                        end: SequenceNumber(segment.wireUInt32(at: blockAt + 4))
                    ))
                    blockAt += 8
                }
            case Kind.timestamps:
                guard optionLength == 10 else { throw .badOptionLength }
                options.timestamps = TCPTimestamps(
                    value: segment.wireUInt32(at: at + 2), echoReply: segment.wireUInt32(at: at + 6)
                )
            case Kind.fastOpen:
                // RFC 7413 §4.1.1; a cookie of a length it does not allow is ignored (as Linux does).
                options.fastOpen = fastOpenCookie(segment, form: .standard, at: at + 2, length: optionLength - 2)
            case Kind.experimental:
                if optionLength >= 4, segment.wireUInt16(at: at + 2) == Kind.fastOpenMagic {
                    options.fastOpen = fastOpenCookie(segment, form: .experimental, at: at + 4, length: optionLength - 4)
                }
            default:
                break
            }
            at += optionLength
        }
        return options
    }

    private static func fastOpenCookie(_ segment: WireReader, form: TCPFastOpenCookie.Form, at: Int, length: Int) -> TCPFastOpenCookie? {
        guard TCPFastOpenCookie.isValidLength(length) else { return nil }
        var cookie = TCPFastOpenCookie(form: form, length: UInt8(length), high: 0, low: 0)
        for index in 0..<length { cookie.setByte(segment.wireUInt8(at: at + index), at: index) }
        return cookie
    }
}
