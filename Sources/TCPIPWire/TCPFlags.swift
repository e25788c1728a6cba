/// The control bits of the TCP header (RFC 9293 §3.1, RFC 3168 §6.1 for ECE and CWR).
public struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8

    @inlinable
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    // Computed and inlinable, not `static let`: a stored static of another module is reached through
    // its addressor and a `swift_once` check on every use (2% of `tcpip bench connrate` under perf);
    // these fold to constants.
    /// FIN: no more data from the sender (RFC 9293 §3.1).
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    /// SYN: synchronize sequence numbers, opening a connection.
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    /// RST: reset the connection.
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    /// PSH: push the data to the receiving application.
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    /// ACK: the acknowledgment field is significant.
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    /// URG: the urgent pointer field is significant.
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    /// ECE: ECN-Echo (RFC 3168 §6.1): congestion was experienced.
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    /// CWR: congestion window reduced (RFC 3168 §6.1), answering ECE.
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }

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
