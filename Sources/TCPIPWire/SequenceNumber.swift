/// A TCP sequence number: a point on the 2^32 circle of RFC 9293 §3.4.
///
/// Sequence numbers wrap, so "less than" only means something for two numbers less
/// than 2^31 apart. That is why this type is deliberately not `Comparable`: every
/// comparison is a named operation that says which circle arithmetic it does.
///
///       snd.una            snd.nxt          snd.una + snd.wnd
///          |------ in flight --|---- usable ------|
///
/// All arithmetic wraps; none of it can trap, whatever a peer puts in a header.
public struct SequenceNumber: Hashable, Sendable {
    /// The 32 bits as they appear in the header.
    public var rawValue: UInt32

    /// The sequence number `rawValue`.
    @inlinable
    public init(_ rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// `self + count`, modulo 2^32.
    @inlinable
    public static func + (lhs: SequenceNumber, rhs: UInt32) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &+ rhs)
    }

    /// `self + count`, modulo 2^32. `count` may be negative and any size; only its low 32 bits matter.
    @inlinable
    public static func + (lhs: SequenceNumber, rhs: Int) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &+ UInt32(truncatingIfNeeded: rhs))
    }

    /// `self - count`, modulo 2^32.
    @inlinable
    public static func - (lhs: SequenceNumber, rhs: UInt32) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &- rhs)
    }

    /// Advances `lhs` by `rhs` octets, modulo 2^32.
    @inlinable
    public static func += (lhs: inout SequenceNumber, rhs: UInt32) { lhs = lhs + rhs }

    /// Advances `lhs` by `rhs` octets (negative: moves it back), modulo 2^32.
    @inlinable
    public static func += (lhs: inout SequenceNumber, rhs: Int) { lhs = lhs + rhs }

    /// The signed distance from `self` forward to `other` (`other - self`), interpreted in (-2^31, 2^31].
    @inlinable
    public func distance(to other: SequenceNumber) -> Int32 {
        Int32(bitPattern: other.rawValue &- rawValue)
    }

    /// The number of octets from `self` forward to `other`, modulo 2^32 (`other - self`, unsigned).
    @inlinable
    public func octets(to other: SequenceNumber) -> UInt32 {
        other.rawValue &- rawValue
    }

    /// `self < other` in circle arithmetic (RFC 9293 §3.4: "a < b").
    @inlinable
    public func isBefore(_ other: SequenceNumber) -> Bool { distance(to: other) > 0 }

    /// `self =< other` in circle arithmetic.
    @inlinable
    public func isAtOrBefore(_ other: SequenceNumber) -> Bool { distance(to: other) >= 0 }

    /// `self > other` in circle arithmetic.
    @inlinable
    public func isAfter(_ other: SequenceNumber) -> Bool { distance(to: other) < 0 }

    /// `self >= other` in circle arithmetic.
    @inlinable
    public func isAtOrAfter(_ other: SequenceNumber) -> Bool { distance(to: other) <= 0 }

    /// `start =< self < start + length`, the window test of RFC 9293 §3.10.7.4.
    /// An empty window contains nothing.
    @inlinable
    public func isInWindow(start: SequenceNumber, length: UInt32) -> Bool {
        start.octets(to: self) < length
    }

    /// `lower < self =< upper`, e.g. the ACK acceptability test `snd.una < seg.ack =< snd.nxt`.
    @inlinable
    public func isBetween(after lower: SequenceNumber, atOrBefore upper: SequenceNumber) -> Bool {
        let span = lower.octets(to: upper)
        let offset = lower.octets(to: self)
        return offset != 0 && offset <= span
    }

    /// The later of two sequence numbers in circle arithmetic.
    @inlinable
    public static func latest(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber {
        a.isBefore(b) ? b : a
    }

    /// The earlier of two sequence numbers in circle arithmetic.
    @inlinable
    public static func earliest(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber {
        a.isBefore(b) ? a : b
    }
}

extension SequenceNumber: CustomStringConvertible {
    public var description: String { String(rawValue) }
}
