import NIOCore
import TCPIPWire

/// One line of a packetdrill-like script: `+0.1 < P. 1:1001(1000) ack 1 win 65535 <nop,nop,TS val 5 ecr *>`.
///
/// Sequence numbers are relative to the sender's initial sequence number, acknowledgment numbers
/// and SACK blocks to the receiver's, as packetdrill and tcpdump print them. Timestamps are absolute.
struct ScriptLine: Hashable, Sendable {
    enum Direction: Hashable, Sendable {
        /// `<`: the remote peer sends, the stack receives.
        case inbound
        /// `>`: the stack sends, the remote peer receives.
        case outbound
    }

    /// When the event happens: `+0.1` relative to the previous event, `0.1` since the script
    /// began, `+0.2~+0.3` within a range (outbound only), `*` at any time (outbound only).
    enum Timing: Hashable, Sendable {
        case relative(earliest: TimeAmount, latest: TimeAmount)
        case absolute(earliest: TimeAmount, latest: TimeAmount)
        case any
    }

    /// Options as written. `nil` values inside `timestamps` are `*` (match anything, or, inbound
    /// for `ecr`, echo the stack's latest TSval).
    struct Options: Hashable, Sendable {
        var maximumSegmentSize: UInt16?
        var windowScale: UInt8?
        var sackPermitted = false
        var timestamps: Timestamps?
        var sackBlocks: [Block] = []

        struct Timestamps: Hashable, Sendable {
            var value: UInt32?
            var echoReply: UInt32?
        }

        struct Block: Hashable, Sendable {
            var start: UInt32
            var end: UInt32
        }
    }

    var timing: Timing
    var direction: Direction
    var flags: TCPFlags
    var sequence: UInt32
    var length: Int
    var acknowledgment: UInt32?
    var window: UInt16?
    /// `nil` when the line gives no `<...>`: outbound, options are then not checked.
    var options: Options?

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    init(_ text: String) throws(ParseError) {
        var body = Substring(text.trimmingWhitespace())
        var optionText: Substring?
        // The options are the trailing `<...>`; the direction `<` is never followed by `>` on the line end.
        if body.hasSuffix(">"), let open = body.lastIndex(of: "<"), body[..<open].contains(where: { $0 == ":" }) {
            optionText = body[body.index(after: open)..<body.index(before: body.endIndex)]
            body = body[..<open]
        }
        var tokens = body.split(whereSeparator: { $0 == " " || $0 == "\t" })[...]
        guard tokens.count >= 4 else { throw ParseError(description: "expected `time dir flags seq:end(len) …` in \"\(text)\"") }
        timing = try Self.parseTiming(tokens.removeFirst())
        switch tokens.removeFirst() {
        case "<": direction = .inbound
        case ">": direction = .outbound
        case let other: throw ParseError(description: "direction must be < or >, not \"\(other)\"")
        }
        flags = try Self.parseFlags(tokens.removeFirst())
        (sequence, length) = try Self.parseSequence(tokens.removeFirst())
        while let keyword = tokens.popFirst() {
            guard let value = tokens.popFirst() else { throw ParseError(description: "\"\(keyword)\" needs a value") }
            switch keyword {
            case "ack": acknowledgment = try Self.number(value)
            case "win": window = try UInt16(exactly: Self.number(value))
            default: throw ParseError(description: "unknown field \"\(keyword)\" in \"\(text)\"")
            }
        }
        if let optionText { options = try Self.parseOptions(optionText) }
        if direction == .inbound, case .relative(let earliest, let latest) = timing, earliest != latest {
            throw ParseError(description: "a time range is for outbound segments only")
        }
        if direction == .inbound, timing == .any { throw ParseError(description: "`*` is for outbound segments only") }
    }

    // MARK: Pieces

    private static func parseTiming(_ token: Substring) throws(ParseError) -> Timing {
        if token == "*" { return .any }
        let parts = token.split(separator: "~", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw ParseError(description: "bad time \"\(token)\"") }
        let relative = parts[0].hasPrefix("+")
        var bounds: [TimeAmount] = []
        for part in parts {
            guard part.hasPrefix("+") == relative else { throw ParseError(description: "mixed relative and absolute time \"\(token)\"") }
            bounds.append(try seconds(part.drop(while: { $0 == "+" })))
        }
        let earliest = bounds[0], latest = bounds.last!
        guard earliest <= latest else { throw ParseError(description: "empty time range \"\(token)\"") }
        return relative ? .relative(earliest: earliest, latest: latest) : .absolute(earliest: earliest, latest: latest)
    }

    /// Decimal seconds to nanoseconds, exactly: `1.5`, `.04`, `2`.
    private static func seconds(_ text: Substring) throws(ParseError) -> TimeAmount {
        let pieces = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = pieces[0].isEmpty ? 0 : Int64(pieces[0]) else { throw ParseError(description: "bad time \"\(text)\"") }
        var nanoseconds = whole * 1_000_000_000
        if pieces.count == 2 {
            let fraction = pieces[1]
            guard fraction.count <= 9, fraction.allSatisfy(\.isNumber), let digits = Int64(fraction.isEmpty ? "0" : fraction) else {
                throw ParseError(description: "bad time \"\(text)\"")
            }
            var scale: Int64 = 1
            for _ in 0..<(9 - fraction.count) { scale *= 10 }
            nanoseconds += digits * scale
        }
        return .nanoseconds(nanoseconds)
    }

    private static func parseFlags(_ token: Substring) throws(ParseError) -> TCPFlags {
        var flags: TCPFlags = []
        for character in token {
            switch character {
            case "S": flags.insert(.syn)
            case "F": flags.insert(.fin)
            case "R": flags.insert(.rst)
            case "P": flags.insert(.psh)
            case ".": flags.insert(.ack)
            case "U": flags.insert(.urg)
            case "E": flags.insert(.ece)
            case "W": flags.insert(.cwr)
            default: throw ParseError(description: "unknown flag \"\(character)\" in \"\(token)\"")
            }
        }
        return flags
    }

    /// `start:end(length)`; end - start must equal length (mod 2^32).
    private static func parseSequence(_ token: Substring) throws(ParseError) -> (UInt32, Int) {
        guard let colon = token.firstIndex(of: ":"), let open = token.firstIndex(of: "("), token.last == ")",
              colon < open
        else { throw ParseError(description: "expected start:end(length), got \"\(token)\"") }
        let start = try number(token[..<colon])
        let end = try number(token[token.index(after: colon)..<open])
        let length = try number(token[token.index(after: open)..<token.index(before: token.endIndex)])
        guard end &- start == length else { throw ParseError(description: "\"\(token)\": end - start is not the length") }
        return (start, Int(length))
    }

    private static func parseOptions(_ text: Substring) throws(ParseError) -> Options {
        var options = Options()
        for item in text.split(separator: ",") {
            let words = item.split(separator: " ")
            guard let name = words.first else { continue }
            switch name {
            case "nop", "eol": break
            case "sackOK": options.sackPermitted = true
            case "mss":
                guard words.count == 2 else { throw ParseError(description: "mss needs one value") }
                options.maximumSegmentSize = try UInt16(exactly: number(words[1]))
            case "wscale":
                guard words.count == 2 else { throw ParseError(description: "wscale needs one value") }
                options.windowScale = try UInt8(exactly: number(words[1]))
            case "TS":
                guard words.count == 5, words[1] == "val", words[3] == "ecr" else {
                    throw ParseError(description: "expected `TS val N ecr N` in \"\(item)\"")
                }
                options.timestamps = try Options.Timestamps(value: wildcard(words[2]), echoReply: wildcard(words[4]))
            case "sack":
                for block in words.dropFirst() {
                    let ends = block.split(separator: ":")
                    guard ends.count == 2 else { throw ParseError(description: "bad SACK block \"\(block)\"") }
                    options.sackBlocks.append(try Options.Block(start: number(ends[0]), end: number(ends[1])))
                }
            default:
                throw ParseError(description: "unknown option \"\(item)\"")
            }
        }
        return options
    }

    /// A number, or nil for `*`.
    private static func wildcard(_ text: Substring) throws(ParseError) -> UInt32? {
        if text == "*" { return nil }
        return try number(text)
    }

    static func number(_ text: Substring) throws(ParseError) -> UInt32 {
        let value = text.hasPrefix("0x") ? UInt32(text.dropFirst(2), radix: 16) : UInt32(text)
        guard let value else { throw ParseError(description: "bad number \"\(text)\"") }
        return value
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> Substring {
        let start = firstIndex(where: { !$0.isWhitespace }) ?? endIndex
        let end = lastIndex(where: { !$0.isWhitespace }).map { index(after: $0) } ?? endIndex
        return self[start..<end]
    }
}
