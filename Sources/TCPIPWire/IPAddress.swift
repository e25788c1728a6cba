/// An IPv4 address, stored as its 32 bits in network (big-endian) order of significance.
///
/// `198.18.0.1` has `rawValue == 0xC612_0001`.
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    /// The address's 32 bits, the first octet in the most significant byte.
    public var rawValue: UInt32

    /// The address whose 32 bits are `rawValue` (`0xC612_0001` is 198.18.0.1).
    @inlinable
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// The address `a.b.c.d`: `IPv4Address(198, 18, 0, 1)`.
    @inlinable
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses a dotted quad strictly: exactly four decimal parts, each 0...255, no leading zeros, no spaces.
    public init?(_ string: String) {
        var utf8 = string.utf8[...]
        guard let value = IPv4Address.parseDottedQuad(&utf8), utf8.isEmpty else { return nil }
        rawValue = value
    }

    /// Parses a dotted quad from the front of `text`, consuming it; nil if it is not one.
    /// Leading zeros are rejected, as glibc's `inet_pton` does, because some parsers read them as octal.
    static func parseDottedQuad(_ text: inout Substring.UTF8View) -> UInt32? {
        var result: UInt32 = 0
        for part in 0..<4 {
            if part > 0 {
                guard text.first == UInt8(ascii: "."), !text.isEmpty else { return nil }
                text.removeFirst()
            }
            var value: UInt32 = 0
            var digits = 0
            while let byte = text.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                if digits == 1 && value == 0 { return nil }
                value = value * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard value <= 255 else { return nil }
                text.removeFirst()
            }
            guard digits > 0 else { return nil }
            result = result << 8 | value
        }
        return result
    }

    public var description: String {
        "\(rawValue >> 24).\(rawValue >> 16 & 0xFF).\(rawValue >> 8 & 0xFF).\(rawValue & 0xFF)"
    }
}

/// An IPv6 address, stored as two big-endian halves: `high` holds bytes 0..<8, `low` bytes 8..<16.
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    /// Bytes 0..<8 of the address, the first in the most significant byte.
    public var high: UInt64
    /// Bytes 8..<16 of the address, the eighth in the most significant byte.
    public var low: UInt64

    /// The address whose halves are `high` (bytes 0..<8) and `low` (bytes 8..<16).
    @inlinable
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The eight 16-bit groups, most significant first.
    @inlinable
    public func group(_ index: Int) -> UInt16 {
        precondition(index >= 0 && index < 8)
        let half = index < 4 ? high : low
        return UInt16(truncatingIfNeeded: half >> (UInt64(3 - index % 4) * 16))
    }

    /// Parses the text forms of RFC 4291 §2.2: eight groups of one to four hex digits, one `::` standing for
    /// one or more zero groups, and a trailing dotted quad in place of the last two groups.
    public init?(_ string: String) {
        var text = string.utf8[...]
        // Groups before "::" and after it, each shifted in from the right of a 128-bit pair.
        var head: (UInt64, UInt64) = (0, 0)
        var tail: (UInt64, UInt64) = (0, 0)
        var headCount = 0
        var tailCount = 0
        var sawDoubleColon = false

        func shiftIn(_ group: UInt16, to halves: inout (UInt64, UInt64)) {
            halves.0 = halves.0 << 16 | halves.1 >> 48
            halves.1 = halves.1 << 16 | UInt64(group)
        }
        func append(_ group: UInt16) {
            if sawDoubleColon {
                shiftIn(group, to: &tail)
                tailCount += 1
            } else {
                shiftIn(group, to: &head)
                headCount += 1
            }
        }

        if text.starts(with: "::".utf8) {
            sawDoubleColon = true
            text.removeFirst(2)
        } else if text.first == UInt8(ascii: ":") {
            return nil
        }
        while !text.isEmpty {
            // A dotted quad may stand for the last two groups (RFC 4291 §2.2, 3.).
            var probe = text
            if headCount + tailCount <= 6, let quad = IPv4Address.parseDottedQuad(&probe), probe.isEmpty {
                append(UInt16(quad >> 16))
                append(UInt16(truncatingIfNeeded: quad))
                break
            }
            var value: UInt16 = 0
            var digits = 0
            while let byte = text.first, let nibble = IPv6Address.hexValue(byte) {
                guard digits < 4 else { return nil }
                value = value << 4 | UInt16(nibble)
                digits += 1
                text.removeFirst()
            }
            guard digits > 0, headCount + tailCount < 8 else { return nil }
            append(value)
            if text.isEmpty { break }
            guard text.first == UInt8(ascii: ":") else { return nil }
            text.removeFirst()
            if text.first == UInt8(ascii: ":") {
                guard !sawDoubleColon else { return nil }
                sawDoubleColon = true
                text.removeFirst()
            } else if text.isEmpty {
                return nil       // a single trailing colon
            }
        }
        // "::" stands for at least one zero group (RFC 4291 §2.2, 2.); without it there are exactly eight.
        guard sawDoubleColon ? headCount + tailCount <= 7 : headCount == 8 else { return nil }
        // Move the head groups to the top; the tail groups are already at the bottom.
        for _ in headCount..<8 { shiftIn(0, to: &head) }
        high = head.0 | tail.0
        low = head.1 | tail.1
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The RFC 5952 text form: lowercase hex without leading zeros, the longest run of two or more zero groups
    /// (the first, on a tie) shortened to `::`, and IPv4-mapped addresses ending in a dotted quad (§5).
    public var description: String {
        if high == 0 && low >> 32 == 0xFFFF {
            return "::ffff:" + IPv4Address(rawValue: UInt32(truncatingIfNeeded: low)).description
        }
        var bestStart = -1
        var bestLength = 1          // RFC 5952 §4.2.2: a single zero group is not shortened
        var runStart = -1
        for index in 0...8 {
            if index < 8 && group(index) == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength {
                    bestStart = runStart
                    bestLength = index - runStart
                }
                runStart = -1
            }
        }
        var text = ""
        var index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            // No separator right after "::" (when there is no run, bestStart + bestLength is 0).
            if index > 0 && index != bestStart + bestLength {
                text += ":"
            }
            text += String(group(index), radix: 16)
            index += 1
        }
        return text
    }
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address.
    case v4(IPv4Address)
    /// An IPv6 address.
    case v6(IPv6Address)

    /// Parses a dotted quad or an RFC 4291 text form.
    public init?(_ string: String) {
        if let v4 = IPv4Address(string) {
            self = .v4(v4)
        } else if let v6 = IPv6Address(string) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .v4(let address): address.description
        case .v6(let address): address.description
        }
    }

    /// Each datagram's addresses are looked up among the stack's own: hashed by `TableHash`.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(_rawHashValue(seed: 0))
    }

    public func _rawHashValue(seed: Int) -> Int {
        switch self {
        case .v4(let address): TableHash.hash(UInt64(address.rawValue), 4, seed: seed)
        case .v6(let address): TableHash.hash(address.high, address.low, seed: seed)
        }
    }

    /// The address in one word, for hashing it with others (`FourTuple`).
    @inlinable
    public var foldedForHashing: UInt64 {
        switch self {
        case .v4(let address): UInt64(address.rawValue)
        case .v6(let address): TableHash.fold(address.high, address.low)
        }
    }
}
