/// The control bits of the TCP header (RFC 9293 §3.1, RFC 3168 §6.1 for ECE and CWR).
public struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8

    @inlinable
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)

    /// tcpdump's notation: one letter per flag in tcpdump's order, F S R P . U E W, with "." for ACK:
    /// `"S"`, `"S."`, `"."`, `"P."`, `"F."`, `"R."`, `"FP."`, `"S.E"`; `"none"` when no flag is set.
    public var description: String {
        guard rawValue != 0 else { return "none" }
        var text = ""
        if contains(.fin) { text += "F" }
        if contains(.syn) { text += "S" }
        if contains(.rst) { text += "R" }
        if contains(.psh) { text += "P" }
        if contains(.ack) { text += "." }
        if contains(.urg) { text += "U" }
        if contains(.ece) { text += "E" }
        if contains(.cwr) { text += "W" }
        return text
    }
}
