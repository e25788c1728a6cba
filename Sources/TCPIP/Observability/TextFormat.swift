import NIOCore

/// Column padding and fixed-point numbers for the tables and traces, written by hand because the
/// core imports neither Foundation nor libc (no `String(format:)`).
public enum TextFormat {
    /// `text` followed by spaces up to `width` characters; longer text is returned whole, never cut
    /// (a wide address should push the row out rather than lie).
    public static func left(_ text: String, _ width: Int) -> String {
        let count = text.count
        return count >= width ? text : text + String(repeating: " ", count: width - count)
    }

    /// Spaces, then `text`, up to `width` characters; longer text is returned whole.
    public static func right(_ text: String, _ width: Int) -> String {
        let count = text.count
        return count >= width ? text : String(repeating: " ", count: width - count) + text
    }

    /// `value / 10^scale` printed with exactly `digits` decimals, rounded half away from zero:
    /// `fixed(12345, scale: 3, digits: 1)` is `"12.3"`.
    public static func fixed(_ value: Int64, scale: Int, digits: Int) -> String {
        precondition(scale >= 0 && digits >= 0 && digits <= scale, "TextFormat.fixed: digits must be 0...scale")
        let negative = value < 0
        // Magnitude as UInt64 so that Int64.min does not trap.
        var magnitude = value.magnitude
        let drop = scale - digits
        if drop > 0 {
            let divisor = power10(drop)
            let remainder = magnitude % divisor
            magnitude /= divisor
            if remainder * 2 >= divisor { magnitude += 1 }
        }
        let unit = power10(digits)
        var text = negative && magnitude != 0 ? "-" : ""
        text += String(magnitude / unit)
        if digits > 0 {
            let fraction = String(magnitude % unit)
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return text
    }

    /// `value` with exactly `digits` decimals, rounded half away from zero: `fixed(2.0456, digits: 3)`
    /// is `"2.046"` (figures of benchmarks and simulations).
    public static func fixed(_ value: Double, digits: Int) -> String {
        fixed(Int64((value * Double(power10(digits))).rounded()), scale: digits, digits: digits)
    }

    /// Milliseconds with `digits` decimals, as `ss` prints rtt and rto: `"10.125"`.
    public static func milliseconds(_ amount: TimeAmount, digits: Int = 3) -> String {
        fixed(amount.nanoseconds, scale: 6, digits: digits)
    }

    /// Seconds with microseconds, as `tcpdump -tt` prints a timestamp: `"12.000250"`.
    public static func seconds(_ instant: Instant) -> String {
        fixed(instant.nanoseconds / 1_000, scale: 6, digits: 6)
    }

    /// `HH:MM:SS.uuuuuu` of the virtual clock, as tcpdump prints a timestamp by default.
    public static func clock(_ instant: Instant) -> String {
        let microseconds = max(instant.nanoseconds, 0) / 1_000
        let seconds = microseconds / 1_000_000
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let fraction = String(microseconds % 1_000_000)
        return "\(two(seconds / 3600)):\(two(seconds / 60 % 60)):\(two(seconds % 60))."
            + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    private static func power10(_ exponent: Int) -> UInt64 {
        var result: UInt64 = 1
        for _ in 0..<exponent { result *= 10 }
        return result
    }
}
