import TCPIPWire

/// An address prefix, `198.18.0.0/15` or `2001:db8::/32`, host bits cleared.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The prefix's first address (host bits cleared).
    public private(set) var address: IPAddress
    /// Its length in bits.
    public private(set) var length: Int

    /// The prefix of `length` bits of `address` (host bits cleared); nil when `length` is out of range.
    public init?(_ address: IPAddress, length: Int) {
        let bits = address.isV4 ? 32 : 128
        guard (0...bits).contains(length) else { return nil }
        let (low, _) = AddressKey.bounds(address, length: length)
        self.address = low.address(v4: address.isV4)
        self.length = length
    }

    /// `a.b.c.d`, `a.b.c.d/n`, `x::y`, `x::y/n`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        var length = address.isV4 ? 32 : 128
        if parts.count == 2 {
            guard let given = Int(parts[1]) else { return nil }
            length = given
        }
        self.init(address, length: length)
    }

    /// Whether `other` is in the prefix (never for the other family).
    public func contains(_ other: IPAddress) -> Bool {
        guard other.isV4 == address.isV4 else { return false }
        let (low, high) = AddressKey.bounds(address, length: length)
        let key = AddressKey(other)
        return low <= key && key <= high
    }

    public var description: String {
        length == (address.isV4 ? 32 : 128) ? address.description : "\(address)/\(length)"
    }
}

/// One element of an address set: a prefix (a single address is a full-length prefix) or a range.
public enum AddressElement: Hashable, Sendable, CustomStringConvertible {
    /// A prefix, or one address.
    case prefix(IPPrefix)
    /// Every address from the first to the second, both included (`198.18.0.10-198.18.0.20`).
    case range(IPAddress, IPAddress)

    var bounds: (AddressKey, AddressKey) {
        switch self {
        case .prefix(let prefix): AddressKey.bounds(prefix.address, length: prefix.length)
        case .range(let low, let high): (AddressKey(low), AddressKey(high))
        }
    }

    var isV4: Bool {
        switch self {
        case .prefix(let prefix): prefix.address.isV4
        case .range(let low, _): low.isV4
        }
    }

    public var description: String {
        switch self {
        case .prefix(let prefix): prefix.description
        case .range(let low, let high): "\(low)-\(high)"
        }
    }
}

extension IPAddress {
    var isV4: Bool {
        if case .v4 = self { return true }
        return false
    }
}

/// An address as a 128-bit number (IPv4 in the low 32 bits), for ordering.
struct AddressKey: Comparable, Hashable, Sendable {
    var high: UInt64
    var low: UInt64

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(_ address: IPAddress) {
        switch address {
        case .v4(let v4): self.init(high: 0, low: UInt64(v4.rawValue))
        case .v6(let v6): self.init(high: v6.high, low: v6.low)
        }
    }

    static func < (a: AddressKey, b: AddressKey) -> Bool { a.high != b.high ? a.high < b.high : a.low < b.low }

    func address(v4: Bool) -> IPAddress {
        v4 ? .v4(IPv4Address(rawValue: UInt32(truncatingIfNeeded: low))) : .v6(IPv6Address(high: high, low: low))
    }

    /// The first and last address of a prefix.
    static func bounds(_ address: IPAddress, length: Int) -> (AddressKey, AddressKey) {
        let key = AddressKey(address)
        let hostBits = (address.isV4 ? 32 : 128) - length
        func mask(_ bits: Int) -> UInt64 { bits >= 64 ? .max : (bits <= 0 ? 0 : (UInt64(1) << UInt64(bits)) - 1) }
        let lowMask = mask(hostBits), highMask = mask(hostBits - 64)
        return (AddressKey(high: key.high & ~highMask, low: key.low & ~lowMask),
                AddressKey(high: key.high | highMask, low: key.low | lowMask))
    }

    /// The next address, saturating at the top.
    var successor: AddressKey {
        if low == .max { return high == .max ? self : AddressKey(high: high + 1, low: 0) }
        return AddressKey(high: high, low: low + 1)
    }
}

/// A set of address prefixes and ranges, for IPv4 and IPv6: sorted, merged, disjoint ranges, looked up
/// by binary search — O(log n), so ten thousand entries cost about what ten do (17 probes against 4).
public struct PrefixSet: Sendable, Equatable {
    private var v4: [(low: AddressKey, high: AddressKey)] = []
    private var v6: [(low: AddressKey, high: AddressKey)] = []

    /// The set of `elements`; an empty range (its end below its start) adds nothing.
    public init<S: Sequence>(_ elements: S) where S.Element == AddressElement {
        var four: [(low: AddressKey, high: AddressKey)] = []
        var six: [(low: AddressKey, high: AddressKey)] = []
        for element in elements {
            let (low, high) = element.bounds
            guard low <= high else { continue }
            if element.isV4 { four.append((low, high)) } else { six.append((low, high)) }
        }
        v4 = Self.merged(four)
        v6 = Self.merged(six)
    }

    public static func == (a: PrefixSet, b: PrefixSet) -> Bool {
        a.v4.elementsEqual(b.v4) { $0.low == $1.low && $0.high == $1.high }
            && a.v6.elementsEqual(b.v6) { $0.low == $1.low && $0.high == $1.high }
    }

    /// Ranges after merging overlapping and adjacent ones.
    public var rangeCount: Int { v4.count + v6.count }

    static func merged(_ ranges: [(low: AddressKey, high: AddressKey)]) -> [(low: AddressKey, high: AddressKey)] {
        var result: [(low: AddressKey, high: AddressKey)] = []
        result.reserveCapacity(ranges.count)
        for range in ranges.sorted(by: { $0.low < $1.low }) {
            if let last = result.last, range.low <= last.high.successor {
                if last.high < range.high { result[result.count - 1].high = range.high }
            } else {
                result.append(range)
            }
        }
        return result
    }

    /// Whether `address` is in the set.
    public func contains(_ address: IPAddress) -> Bool {
        let key = AddressKey(address)
        return address.isV4 ? Self.search(v4, key) : Self.search(v6, key)
    }

    /// The last range starting at or before `key`, and whether it reaches `key`.
    private static func search(_ ranges: [(low: AddressKey, high: AddressKey)], _ key: AddressKey) -> Bool {
        var lower = 0, upper = ranges.count
        while lower < upper {
            let middle = (lower + upper) / 2
            if key < ranges[middle].low { upper = middle } else { lower = middle + 1 }
        }
        return lower > 0 && key <= ranges[lower - 1].high
    }
}
