import NIOCore

/// A point in time, in nanoseconds since an epoch chosen by whoever drives the stack.
///
/// The stack never reads a clock: every entry point takes `now`. Simulations start
/// at zero and advance virtually; a runtime passes its monotonic clock.
/// Durations are NIOCore's `TimeAmount` (nanoseconds in an `Int64`).
public struct Instant: Hashable, Comparable, Sendable {
    /// Nanoseconds since the clock's zero.
    public var nanoseconds: Int64

    /// The instant `nanoseconds` after zero.
    @inlinable
    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// The clock's zero: the start of a simulation, or whatever the driver's clock counts from.
    public static let zero = Instant(nanoseconds: 0)

    /// Later than any deadline the stack sets; used as "never".
    public static let distantFuture = Instant(nanoseconds: .max)

    @inlinable
    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Saturating: adding to `distantFuture` stays there.
    @inlinable
    public static func + (lhs: Instant, rhs: TimeAmount) -> Instant {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.nanoseconds)
        return Instant(nanoseconds: overflow ? (rhs.nanoseconds > 0 ? .max : .min) : sum)
    }

    /// The time from `rhs` to `lhs` (negative when `lhs` is earlier).
    @inlinable
    public static func - (lhs: Instant, rhs: Instant) -> TimeAmount {
        let (difference, overflow) = lhs.nanoseconds.subtractingReportingOverflow(rhs.nanoseconds)
        return .nanoseconds(overflow ? (lhs.nanoseconds > rhs.nanoseconds ? .max : .min) : difference)
    }

    /// Moves `lhs` on by `rhs`.
    @inlinable
    public static func += (lhs: inout Instant, rhs: TimeAmount) { lhs = lhs + rhs }

    /// Seconds since the epoch, for printing.
    public var seconds: Double { Double(nanoseconds) / 1e9 }
}

extension Instant: CustomStringConvertible {
    public var description: String {
        let microseconds = nanoseconds / 1_000
        let whole = microseconds / 1_000_000
        let fraction = String(microseconds % 1_000_000)
        return "\(whole).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }
}

extension Instant {
    /// The earlier of two optional deadlines; nil means "none".
    @inlinable
    public static func earliest(_ a: Instant?, _ b: Instant?) -> Instant? {
        guard let a else { return b }
        guard let b else { return a }
        return a < b ? a : b
    }
}
