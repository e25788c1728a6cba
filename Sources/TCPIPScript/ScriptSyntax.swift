import TCPIPWire

/// A parsed packetdrill script: option lines, the init command, timed events, the cleanup command.
///
/// The grammar is packetdrill's (`gtests/net/packetdrill/parser.y`), summarised in
/// `shared/reference/packetdrill-language.md`:
///
/// ```
/// script := options? init_command? event+ cleanup_command?
/// event  := time (packet | syscall | `shell` | %{ python }%)
/// ```
public struct Script: Sendable {
    /// `--name=value` lines at the top, in order (`--name` alone has an empty value).
    public var options: [(name: String, value: String)]
    /// A backquoted command before the first event (`defaults.sh` in the Linux scripts).
    public var initCommand: String?
    public var events: [ScriptEvent]
    /// A backquoted command after the last event.
    public var cleanupCommand: String?

    /// The value of `--name`, if the script sets it.
    public func option(_ name: String) -> String? {
        options.last(where: { $0.name == name })?.value
    }
}

/// Where something is in a script, 1-based.
public struct SourcePosition: Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    public var description: String { "\(line):\(column)" }
}

/// A point in script time: seconds since the script began, or since the previous event.
public struct ScriptTime: Hashable, Sendable, CustomStringConvertible {
    public var relative: Bool
    public var microseconds: Int64
    public init(relative: Bool, microseconds: Int64) {
        self.relative = relative
        self.microseconds = microseconds
    }
    public var description: String {
        let whole = microseconds / 1_000_000
        let fraction = microseconds % 1_000_000
        let text = fraction == 0 ? "\(whole)" : "\(whole).\(String(String(fraction + 1_000_000).dropFirst()))"
        return relative ? "+\(text)" : text
    }
}

/// When an event happens (packetdrill `time`).
public enum ScriptTiming: Hashable, Sendable {
    /// `0`, `1.5`, `+.1`.
    case at(ScriptTime)
    /// `0.1~0.3`, `+.3~+.31`: outbound packets only.
    case range(ScriptTime, ScriptTime)
    /// `*`: outbound packets only; no timing check.
    case any
    /// `START...END`: a blocking system call made at START that must return at END. With a relative
    /// START, END counts from the same base (`+.1...0.200` returns at base + 0.2).
    case blocking(start: ScriptTime, end: ScriptTime)
}

public struct ScriptEvent: Sendable {
    public var position: SourcePosition
    public var timing: ScriptTiming
    public var action: ScriptAction
}

public enum ScriptAction: Sendable {
    case packet(ScriptPacket)
    case systemCall(ScriptSystemCall)
    /// `` `command` ``
    case shell(String)
    /// `%{ code }%`
    case python(String)
}

/// A `<` (injected) or `>` (expected) packet line.
public struct ScriptPacket: Sendable {
    public enum Direction: Sendable { case inbound, outbound }

    /// What the packet's option list says.
    public enum OptionList: Sendable, Equatable {
        /// No `<...>` at all: outbound, "carries no options".
        case none
        /// `<...>`: options are not checked (outbound only).
        case unchecked
        case list([ScriptOption])
    }

    public var direction: Direction
    /// `[ect0]`, `(tos 0x10)` and the like, as written. The runner injects and checks the ECN
    /// codepoints (`[noecn]`, `[ect0]`, `[ect1]`, `[ect01]`, `[ce]`) and the fields of `ip`.
    public var ipInformation: [String]
    /// The IP header fields the line names (`(tos 0x10)`, `(ttl 64)`, `(hlim 64)`, `[flowlabel 0x1]`).
    public var ip = ScriptIPFields()
    /// `!` after the sequence range (`1:1001(1000)!`), as written; the runner does not interpret it.
    public var marked = false
    /// `...(0)` instead of `start:end`: any sequence number (nplab's packetdrill).
    public var anySequence = false
    /// `/udp(9811 > 1)` after the segment (nplab's packetdrill: TCP encapsulated in UDP), as written.
    public var encapsulation: String?
    /// The flags written; empty for `-` (explicitly no flags).
    public var flags: TCPFlags
    public var start: UInt32
    public var end: UInt32
    public var length: Int
    public var acknowledgment: UInt32?
    public var window: UInt16?
    public var urgentPointer: UInt16?
    public var options: OptionList
    /// Non-TCP packets (`icmp …`, `udp …`) as written; the runner cannot play them.
    public var other: String?
    /// The fields of `TS val * ecr *` written as `*` (their value in `options` is then 0). Only when the
    /// parser is asked for them (`ScriptParser.parse(_:defines:timestampWildcards:)`): packetdrill has no
    /// such notation, the TCPIPTests' `TCPTester` does.
    public var timestampWildcards: ScriptTimestampWildcards = []
}

/// Which fields of a `TS` option a line leaves open with `*`.
public struct ScriptTimestampWildcards: OptionSet, Sendable, Hashable {
    /// One bit per field.
    public var rawValue: UInt8
    /// The fields whose bits are set in `rawValue`.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `TS val *`
    public static let value = ScriptTimestampWildcards(rawValue: 1 << 0)
    /// `TS … ecr *`
    public static let echo = ScriptTimestampWildcards(rawValue: 1 << 1)
}

/// The IP header fields a packet line names: injected as written on `<` lines, compared on `>` lines,
/// and neither when not named (packetdrill's `run_packet.c` checks TOS and TTL only if the script
/// specifies them).
public struct ScriptIPFields: Sendable, Equatable {
    /// The whole TOS octet (IPv4) or traffic class (IPv6), ECN bits included.
    public var typeOfService: UInt8?
    /// TTL (IPv4) or hop limit (IPv6): `(ttl N)` and `(hlim N)` are the same field.
    public var timeToLive: UInt8?
    /// The IPv6 flow label.
    public var flowLabel: UInt32?
    public init() {}
}

/// One TCP option of a packet line, in the order written.
public enum ScriptOption: Sendable, Equatable {
    case nop
    case eol
    case mss(UInt16)
    case windowScale(UInt8)
    case sackPermitted
    case sack([(UInt32, UInt32)])
    case timestamp(value: UInt32, echo: UInt32)
    /// `md5 KEY`: RFC 2385's signature option (kind 19, 18 octets), with the digest as written.
    case md5(String)
    /// `FO`, `FOEXP`, `ECN`, … as written.
    case other(String)

    public static func == (lhs: ScriptOption, rhs: ScriptOption) -> Bool {
        switch (lhs, rhs) {
        case (.nop, .nop), (.eol, .eol), (.sackPermitted, .sackPermitted): true
        case (.mss(let a), .mss(let b)): a == b
        case (.windowScale(let a), .windowScale(let b)): a == b
        case (.sack(let a), .sack(let b)): a.count == b.count && zip(a, b).allSatisfy { $0 == $1 }
        case (.timestamp(let a, let b), .timestamp(let c, let d)): a == c && b == d
        case (.other(let a), .other(let b)), (.md5(let a), .md5(let b)): a == b
        default: false
        }
    }
}

/// `name(arguments) = result [ERRNO] [(note)]`.
public struct ScriptSystemCall: Sendable {
    public var name: String
    public var arguments: [ScriptExpression]
    public var result: Int64
    public var errno: String?
    public var note: String?
}

/// An argument of a system call.
public indirect enum ScriptExpression: Sendable, Equatable, CustomStringConvertible {
    case integer(Int64)
    case symbol(String)
    /// `...`: "use the default".
    case ellipsis
    case string(String)
    /// `[1]`, `[{fd=4, …}]`: a value passed by pointer, or an array.
    case list([ScriptExpression])
    /// `{fd=4, events=POLLIN}`, `{..., 100}`: fields in order, named or not.
    case structure([ScriptField])
    /// `O_RDWR|O_NONBLOCK`
    case bitwiseOr(ScriptExpression, ScriptExpression)
    /// `htons(8080)`, `msg_iov(1)`
    case call(String, [ScriptExpression])

    public var description: String {
        switch self {
        case .integer(let value): "\(value)"
        case .symbol(let name): name
        case .ellipsis: "..."
        case .string(let text): "\"\(text)\""
        case .list(let items): "[\(items.map(\.description).joined(separator: ", "))]"
        case .structure(let fields): "{\(fields.map(\.description).joined(separator: ", "))}"
        case .bitwiseOr(let a, let b): "\(a)|\(b)"
        case .call(let name, let arguments): "\(name)(\(arguments.map(\.description).joined(separator: ", ")))"
        }
    }
}

public struct ScriptField: Sendable, Equatable, CustomStringConvertible {
    /// `fd` in `fd=4`; nil for a positional field.
    public var name: ScriptExpression?
    public var value: ScriptExpression
    public init(name: ScriptExpression?, value: ScriptExpression) {
        self.name = name
        self.value = value
    }
    public var description: String { name.map { "\($0)=\(value)" } ?? value.description }
}

/// A script that cannot be read, with where.
public struct ScriptSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    public var position: SourcePosition
    public var message: String
    public var description: String { "\(position): \(message)" }
}
