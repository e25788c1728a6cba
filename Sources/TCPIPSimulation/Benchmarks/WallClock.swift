import NIOCore
import TCPIP

/// The monotonic clock benchmarks run on: `Instant`s measured from when the clock was made.
///
/// The stack itself never reads a clock (time is a parameter); only drivers such as the benchmarks do.
public struct WallClock: Sendable {
    private let origin = ContinuousClock.now

    /// A clock whose zero is now.
    public init() {}

    /// Now, in nanoseconds since this clock was made (plus one second, so that zero never looks like "unset").
    public func now() -> Instant {
        let elapsed = ContinuousClock.now - origin
        let (seconds, attoseconds) = elapsed.components
        return Instant(nanoseconds: 1_000_000_000 &+ seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000)
    }

    /// Seconds between two instants of this clock.
    public static func seconds(from start: Instant, to end: Instant) -> Double {
        Double((end - start).nanoseconds) / 1e9
    }
}
