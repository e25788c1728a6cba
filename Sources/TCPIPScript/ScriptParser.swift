import TCPIPWire

/// Parses packetdrill's script language into a `Script`, or fails with the line and column of the
/// first thing it cannot read.
///
/// Packet lines end at the end of their line; system calls may span lines (a multi-line `poll`).
public enum ScriptParser {
    /// - Parameter defines: names for `#ifdef` (the FreeBSD suite's `#ifdef STANDARD` / `#ifdef FreeBSD`
    ///   branches, which packetdrill reads through the C preprocessor). `STANDARD` by default: the
    ///   RFC's behaviour rather than one platform's.
    /// - Parameter timestampWildcards: reads `*` for the value or echo of a `TS` option
    ///   (`ScriptPacket.timestampWildcards`), the notation of the TCPIPTests' `TCPTester`; packetdrill's
    ///   scripts never write it, so by default it is an error.
    public static func parse(
        _ text: String, defines: Set<String> = ["STANDARD"], timestampWildcards: Bool = false
    ) throws(ScriptSyntaxError) -> Script {
        var parser = Parser(tokens: try ScriptLexer.tokens(try preprocess(text, defines: defines)))
        parser.allowsTimestampWildcards = timestampWildcards
        return try parser.script()
    }

    /// Keeps the lines of the branches `defines` selects; directive and dropped lines become blank,
    /// so line numbers stay those of the file.
    static func preprocess(_ text: String, defines: Set<String>) throws(ScriptSyntaxError) -> String {
        guard text.contains("#") else { return text }
        var output: [Substring] = []
        var stack: [(active: Bool, taken: Bool)] = []
        var active: Bool { stack.allSatisfy(\.active) }
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            // Only these directives: a `#` line inside a Python block or shell command is text.
            guard let directive = words.first, ["#ifdef", "#ifndef", "#else", "#endif"].contains(directive) else {
                output.append(active ? line : "")
                continue
            }
            let name = words.count > 1 ? String(words[1]) : ""
            switch directive {
            case "#ifdef": stack.append((defines.contains(name), defines.contains(name)))
            case "#ifndef": stack.append((!defines.contains(name), !defines.contains(name)))
            case "#else":
                guard let top = stack.popLast() else {
                    throw ScriptSyntaxError(position: .init(line: number + 1, column: 1), message: "#else without #ifdef")
                }
                stack.append((!top.taken, true))
            case "#endif":
                guard stack.popLast() != nil else {
                    throw ScriptSyntaxError(position: .init(line: number + 1, column: 1), message: "#endif without #ifdef")
                }
            default: break
            }
            output.append("")
        }
        guard stack.isEmpty else { throw ScriptSyntaxError(position: .init(line: output.count, column: 1), message: "#ifdef without #endif") }
        return output.joined(separator: "\n")
    }
}

private struct Parser {
    var tokens: [ScriptToken]
    var index = 0
    var allowsTimestampWildcards = false
    /// The `*` fields of the TS option of the packet being read.
    var timestampWildcards: ScriptTimestampWildcards = []

    init(tokens: [ScriptToken]) {
        self.tokens = tokens
    }

    var current: ScriptToken? { index < tokens.count ? tokens[index] : nil }
    var endPosition: SourcePosition { tokens.last.map { SourcePosition(line: $0.position.line + 1, column: 1) } ?? .init(line: 1, column: 1) }

    func error(_ message: String, at token: ScriptToken? = nil) -> ScriptSyntaxError {
        let token = token ?? current
        return ScriptSyntaxError(position: token?.position ?? endPosition, message: message + (token.map { ", found \(describe($0))" } ?? ", found end of script"))
    }

    func describe(_ token: ScriptToken) -> String {
        switch token.kind {
        case .number(let text): "`\(text)`"
        case .word(let text): "`\(text)`"
        case .string(let text): "\"\(text)\""
        case .ellipsis: "`...`"
        case .backquoted: "a backquoted command"
        case .python: "a %{ python }% block"
        case .option(let text): "`--\(text)`"
        case .punctuation(let character): "`\(character)`"
        }
    }

    mutating func take() -> ScriptToken? {
        defer { index += 1 }
        return current
    }

    mutating func accept(_ character: Character) -> Bool {
        if current?.isPunctuation(character) == true {
            index += 1
            return true
        }
        return false
    }

    mutating func expect(_ character: Character, _ context: String) throws(ScriptSyntaxError) {
        guard accept(character) else { throw error("expected `\(character)` \(context)") }
    }

    mutating func acceptWord(_ word: String) -> Bool {
        if current?.kind == .word(word) {
            index += 1
            return true
        }
        return false
    }

    // MARK: Script

    mutating func script() throws(ScriptSyntaxError) -> Script {
        var script = Script(options: [], initCommand: nil, events: [], cleanupCommand: nil)
        var header = ScriptHeader()
        while let token = current, case .option(let text) = token.kind {
            index += 1
            let option: (name: String, value: String)
            if let equals = text.firstIndex(of: "=") {
                option = (String(text[..<equals]), String(text[text.index(after: equals)...]))
            } else {
                option = (text, "")
            }
            // packetdrill's config.c: an unknown option or a bad value stops the script at its line.
            if let problem = header.apply(name: option.name, value: option.value) {
                throw ScriptSyntaxError(position: token.position, message: problem)
            }
            script.options.append(option)
        }
        try substitute(header.defines)
        if case .backquoted(let command)? = current?.kind {
            script.initCommand = command
            index += 1
        }
        while let token = current {
            if case .backquoted(let command) = token.kind, index == tokens.count - 1, !script.events.isEmpty {
                script.cleanupCommand = command
                index += 1
                break
            }
            script.events.append(try event())
        }
        guard !script.events.isEmpty else { throw error("a script needs at least one event") }
        return script
    }

    /// `--define=NAME=value`: every later word NAME reads as the tokens of `value` (packetdrill
    /// substitutes defined symbols in expressions; a script uses them for keys and cookies).
    mutating func substitute(_ defines: [String: String]) throws(ScriptSyntaxError) {
        guard !defines.isEmpty else { return }
        var replaced = Array(tokens[..<index])
        for token in tokens[index...] {
            guard case .word(let word) = token.kind, let value = defines[word] else {
                replaced.append(token)
                continue
            }
            // The value's tokens take the word's place, so errors still point at the script line.
            for var substitute in try ScriptLexer.tokens(value) {
                substitute.position = SourcePosition(
                    line: token.position.line, column: token.position.column + substitute.position.column - 1)
                replaced.append(substitute)
            }
        }
        tokens = replaced
    }

    mutating func event() throws(ScriptSyntaxError) -> ScriptEvent {
        guard let first = current else { throw error("expected an event") }
        let timing = try timing()
        guard let token = current else { throw error("expected a packet, system call, command or python block after the time") }
        let action: ScriptAction
        switch token.kind {
        case .punctuation("<"), .punctuation(">"):
            action = .packet(try packet())
        case .backquoted(let command):
            index += 1
            action = .shell(command)
        case .python(let code):
            index += 1
            action = .python(code)
        case .word:
            action = .systemCall(try systemCall())
        default:
            throw error("expected `<`, `>`, a system call, a backquoted command or %{ python }%")
        }
        switch (timing, action) {
        case (.range, .packet(let packet)) where packet.direction == .outbound, (.any, .packet(let packet)) where packet.direction == .outbound:
            break
        case (.range, _), (.any, _):
            throw ScriptSyntaxError(position: first.position, message: "time ranges and `*` are allowed on outbound packets only")
        case (.blocking, .systemCall):
            break
        case (.blocking, _):
            throw ScriptSyntaxError(position: first.position, message: "`start...end` is allowed on system calls only")
        default:
            break
        }
        return ScriptEvent(position: first.position, timing: timing, action: action)
    }

    // MARK: Time

    mutating func timing() throws(ScriptSyntaxError) -> ScriptTiming {
        if accept("*") { return .any }
        let start = try time()
        if current?.kind == .ellipsis {
            index += 1
            let end = try time(allowSign: false)
            return .blocking(start: start, end: ScriptTime(relative: start.relative, microseconds: end.microseconds))
        }
        if accept("~") {
            let end = try time()
            guard end.relative == start.relative else { throw error("both ends of a time range must be absolute or both relative") }
            return .range(start, end)
        }
        return .at(start)
    }

    mutating func time(allowSign: Bool = true) throws(ScriptSyntaxError) -> ScriptTime {
        let relative = allowSign && accept("+")
        guard case .number(let text)? = current?.kind else { throw error("expected a time in seconds") }
        guard let microseconds = Self.microseconds(text) else { throw error("cannot read the time") }
        index += 1
        return ScriptTime(relative: relative, microseconds: microseconds)
    }

    static func microseconds(_ text: String) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = parts.first else { return nil }
        let whole = wholeText.isEmpty ? 0 : Int64(wholeText)
        guard let whole else { return nil }
        var fraction: Int64 = 0
        if parts.count == 2 {
            let digits = String(parts[1].prefix(6))
            guard digits.allSatisfy(\.isASCIIDigit) else { return nil }
            fraction = (Int64(digits) ?? 0) * Int64(pow10(6 - digits.count))
        }
        return whole * 1_000_000 + fraction
    }

    static func pow10(_ exponent: Int) -> Int {
        (0..<exponent).reduce(1) { value, _ in value * 10 }
    }

    // MARK: Packets

    mutating func packet() throws(ScriptSyntaxError) -> ScriptPacket {
        let directionToken = take()!
        let direction: ScriptPacket.Direction = directionToken.isPunctuation("<") ? .inbound : .outbound
        let line = directionToken.position.line
        func onLine(_ parser: Parser) -> Bool { parser.current.map { $0.position.line == line } ?? false }

        var packet = ScriptPacket(
            direction: direction, ipInformation: [], flags: [], start: 0, end: 0, length: 0,
            acknowledgment: nil, window: nil, urgentPointer: nil, options: .none, other: nil)

        // IP information: `[ect0]`, `(tos 0x10)`, `(hlim 64)`.
        while onLine(self), current!.isPunctuation("[") || current!.isPunctuation("(") {
            let close: Character = current!.isPunctuation("[") ? "]" : ")"
            index += 1
            var words: [ScriptToken] = []
            while onLine(self), !current!.isPunctuation(close) { words.append(take()!) }
            try expect(close, "to close the IP information")
            try ipFields(words, into: &packet.ip)
            packet.ipInformation.append(words.map(tokenText).joined(separator: " "))
        }
        if case .word(let word)? = current?.kind, ["udp", "icmp", "icmp6", "ipv4", "ipv6", "gre", "mpls", "encap"].contains(word) {
            var words: [String] = []
            while onLine(self) { words.append(tokenText(take()!)) }
            packet.other = words.joined(separator: " ")
            return packet
        }
        packet.flags = try flags(onLine: line)
        guard onLine(self) else { throw error("expected `start:end(length)`") }
        if current?.kind == .ellipsis {
            // nplab's packetdrill: `...(0)`, any sequence number (outbound).
            index += 1
            try expect("(", "before the payload length")
            let length = try unsignedNumber("payload length", UInt32.self)
            try expect(")", "after the payload length")
            packet.anySequence = true
            packet.length = Int(length)
            packet.end = length
        } else {
            let start = try unsignedNumber("sequence start", UInt32.self)
            try expect(":", "between the start and end sequence numbers")
            let end = try unsignedNumber("sequence end", UInt32.self)
            try expect("(", "before the payload length")
            let length = try unsignedNumber("payload length", UInt32.self)
            try expect(")", "after the payload length")
            guard end &- start == length else {
                throw ScriptSyntaxError(position: directionToken.position, message: "inconsistent sequence: \(start):\(end)(\(length)) — end must be start + length")
            }
            packet.start = start
            packet.end = end
            packet.length = Int(length)
        }
        if accept("!") { packet.marked = true }

        while onLine(self) {
            if acceptWord("ack") {
                packet.acknowledgment = try unsignedNumber("acknowledgment number", UInt32.self)
            } else if acceptWord("win") {
                packet.window = try unsignedNumber("window", UInt16.self)
            } else if acceptWord("urg") {
                packet.urgentPointer = try unsignedNumber("urgent pointer", UInt16.self)
            } else if current!.isPunctuation("<") {
                timestampWildcards = []
                packet.options = try optionList(direction: direction)
                packet.timestampWildcards = timestampWildcards
            } else if current!.isPunctuation("/") {
                // nplab's packetdrill: `/udp(sport > dport)`, the segment encapsulated in UDP.
                index += 1
                var words: [String] = []
                while onLine(self) { words.append(tokenText(take()!)) }
                packet.encapsulation = words.joined(separator: " ")
            } else {
                throw error("expected `ack`, `win`, `urg` or `<options>`")
            }
        }
        if direction == .inbound && packet.window == nil {
            throw ScriptSyntaxError(position: directionToken.position, message: "inbound packets need `win`")
        }
        return packet
    }

    /// The words of one `[…]` or `(…)` group before the flags: ECN codepoints (`ect0`, `ect1`,
    /// `ect01`, `ce`, `noecn`, also as `ecn ect0`), `tos N` (`class N`, nplab's IPv6 traffic class),
    /// `ttl N` / `hlim N`, `flowlabel N`,
    /// separated by blanks or commas.
    func ipFields(_ words: [ScriptToken], into fields: inout ScriptIPFields) throws(ScriptSyntaxError) {
        var index = 0
        func number<T: FixedWidthInteger>(after name: ScriptToken, _ type: T.Type) throws(ScriptSyntaxError) -> T {
            guard index < words.count, case .number(let text) = words[index].kind, let value = Self.integer(text),
                let narrowed = T(exactly: value)
            else { throw error("expected a number (\(T.bitWidth) bits) after `\(tokenText(name))`", at: index < words.count ? words[index] : name) }
            index += 1
            return narrowed
        }
        while index < words.count {
            let word = words[index]
            index += 1
            if word.isPunctuation(",") { continue }
            guard case .word(let name) = word.kind else { throw error("expected IP information (tos, ttl, hlim, flowlabel, ecn, ect0, ect1, ect01, ce, noecn)", at: word) }
            switch name.lowercased() {
            case "tos", "tclass", "class": fields.typeOfService = try number(after: word, UInt8.self)
            case "ttl", "hlim": fields.timeToLive = try number(after: word, UInt8.self)
            case "flowlabel": fields.flowLabel = try number(after: word, UInt32.self)
            case "ecn", "ect0", "ect1", "ect01", "ce", "noecn": continue
            default: throw error("expected IP information (tos, ttl, hlim, flowlabel, ecn, ect0, ect1, ect01, ce, noecn)", at: word)
            }
        }
    }

    mutating func flags(onLine line: Int) throws(ScriptSyntaxError) -> TCPFlags {
        if accept("-") { return [] }
        var text = ""
        // `S.`, `F.`, `.`, `SEW`: a word and dots, with nothing between them.
        while let token = current, token.position.line == line {
            if case .word(let word) = token.kind, word.allSatisfy({ "SFRPUEWA".contains($0) }) {
                text += word
            } else if token.isPunctuation(".") {
                text += "."
            } else {
                break
            }
            index += 1
        }
        guard !text.isEmpty else { throw error("expected TCP flags (S F R P . U E W, or - for none)") }
        var flags: TCPFlags = []
        for character in text {
            switch character {
            case "S": flags.insert(.syn)
            case "F": flags.insert(.fin)
            case "R": flags.insert(.rst)
            case "P": flags.insert(.psh)
            case ".": flags.insert(.ack)
            case "U": flags.insert(.urg)
            case "E": flags.insert(.ece)
            case "W": flags.insert(.cwr)
            default: break // `A` (AccECN's AE bit) is not modelled by the stack.
            }
        }
        return flags
    }

    mutating func optionList(direction: ScriptPacket.Direction) throws(ScriptSyntaxError) -> ScriptPacket.OptionList {
        let open = take()!
        if current?.kind == .ellipsis {
            index += 1
            try expect(">", "after `<...`")
            guard direction == .outbound else {
                throw ScriptSyntaxError(position: open.position, message: "`<...>` is allowed on outbound packets only")
            }
            return .unchecked
        }
        var options: [ScriptOption] = []
        if accept(">") { return .list(options) }
        repeat {
            options.append(try option())
        } while accept(",")
        try expect(">", "to close the option list")
        return .list(options)
    }

    mutating func option() throws(ScriptSyntaxError) -> ScriptOption {
        guard case .word(let name)? = current?.kind else { throw error("expected a TCP option") }
        index += 1
        switch name {
        case "nop": return .nop
        case "eol": return .eol
        case "sackOK": return .sackPermitted
        case "mss": return .mss(try unsignedNumber("MSS", UInt16.self))
        case "wscale": return .windowScale(try unsignedNumber("window scale", UInt8.self))
        case "sack":
            var blocks: [(UInt32, UInt32)] = []
            while case .number? = current?.kind {
                let left = try unsignedNumber("SACK block start", UInt32.self)
                try expect(":", "in a SACK block")
                blocks.append((left, try unsignedNumber("SACK block end", UInt32.self)))
            }
            return .sack(blocks)
        case "TS":
            guard acceptWord("val") else { throw error("expected `val` after `TS`") }
            let value = try timestampField("TS val", wildcard: .value)
            guard acceptWord("ecr") else { throw error("expected `ecr` after the TS value") }
            return .timestamp(value: value, echo: try timestampField("TS ecr", wildcard: .echo))
        case "md5":
            // RFC 2385: `md5 KEY-or-digest`, a hex blob (packetdrill's `MD5 hex_blob`).
            var text = ""
            var previous = tokens[index - 1]
            while let token = current, !token.isPunctuation(","), !token.isPunctuation(">"), token.position.line == previous.position.line {
                text += tokenText(token)
                previous = token
                index += 1
            }
            return .md5(text)
        default:
            // FO, FOEXP, ECN, mptcp, experimental options: kept as text.
            // Hex cookies and keys lex as a number and a word (`0001…0a0b…`): glue adjacent tokens.
            var text = name
            var previous = tokens[index - 1]
            while let token = current, !token.isPunctuation(","), !token.isPunctuation(">") {
                let adjacent = token.position.line == previous.position.line
                    && token.position.column == previous.position.column + tokenText(previous).count
                text += (adjacent ? "" : " ") + tokenText(token)
                previous = token
                index += 1
            }
            return .other(text)
        }
    }

    /// A TS value or echo: a number, or `*` when the caller allows wildcards (then 0, and noted).
    mutating func timestampField(_ what: String, wildcard: ScriptTimestampWildcards) throws(ScriptSyntaxError) -> UInt32 {
        if allowsTimestampWildcards && accept("*") {
            timestampWildcards.insert(wildcard)
            return 0
        }
        return try unsignedNumber(what, UInt32.self)
    }

    mutating func unsignedNumber<T: FixedWidthInteger & UnsignedInteger>(_ what: String, _ type: T.Type) throws(ScriptSyntaxError) -> T {
        guard let token = current, case .number(let text) = token.kind, let value = Self.integer(text), value >= 0,
            let narrowed = T(exactly: value)
        else { throw error("expected \(what) (an integer that fits \(T.bitWidth) bits)") }
        index += 1
        return narrowed
    }

    static func integer(_ text: String) -> Int64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return Int64(text.dropFirst(2), radix: 16) }
        return Int64(text)
    }

    func tokenText(_ token: ScriptToken) -> String {
        switch token.kind {
        case .number(let text), .word(let text): text
        case .string(let text): "\"\(text)\""
        case .ellipsis: "..."
        case .backquoted(let text): "`\(text)`"
        case .python(let text): "%{\(text)}%"
        case .option(let text): "--\(text)"
        case .punctuation(let character): String(character)
        }
    }

    // MARK: System calls

    mutating func systemCall() throws(ScriptSyntaxError) -> ScriptSystemCall {
        guard case .word(let name)? = current?.kind else { throw error("expected a system call") }
        index += 1
        try expect("(", "after the system call's name")
        let arguments = try expressions(until: ")")
        try expect("=", "before the system call's result")
        let negative = accept("-")
        guard let token = current, case .number(let text) = token.kind, let magnitude = Self.integer(text) else {
            throw error("expected the system call's integer result")
        }
        index += 1
        let resultLine = token.position.line
        var call = ScriptSystemCall(name: name, arguments: arguments, result: negative ? -magnitude : magnitude, errno: nil, note: nil)
        if let next = current, next.position.line == resultLine, case .word(let errno) = next.kind {
            call.errno = errno
            index += 1
        }
        if let next = current, next.position.line == resultLine, next.isPunctuation("(") {
            index += 1
            var depth = 1
            var words: [String] = []
            while let token = current, token.position.line == resultLine {
                index += 1
                if token.isPunctuation("(") { depth += 1 }
                if token.isPunctuation(")") {
                    depth -= 1
                    if depth == 0 { break }
                }
                words.append(tokenText(token))
            }
            guard depth == 0 else { throw error("unclosed `(` in the note after the result") }
            call.note = words.joined(separator: " ")
        }
        return call
    }

    mutating func expressions(until close: Character) throws(ScriptSyntaxError) -> [ScriptExpression] {
        var items: [ScriptExpression] = []
        if accept(close) { return items }
        repeat {
            items.append(try expression())
        } while accept(",")
        try expect(close, "to close the list")
        return items
    }

    mutating func expression() throws(ScriptSyntaxError) -> ScriptExpression {
        var value = try primary()
        while accept("|") {
            value = .bitwiseOr(value, try primary())
        }
        return value
    }

    mutating func primary() throws(ScriptSyntaxError) -> ScriptExpression {
        guard let token = current else { throw error("expected an argument") }
        switch token.kind {
        case .number(let text):
            index += 1
            guard let value = Self.integer(text) else { throw error("expected an integer", at: token) }
            return .integer(value)
        case .punctuation("-"):
            index += 1
            guard case .number(let text)? = current?.kind, let value = Self.integer(text) else { throw error("expected an integer after `-`") }
            index += 1
            return .integer(-value)
        case .word(let name):
            index += 1
            if accept("(") { return .call(name, try expressions(until: ")")) }
            return .symbol(name)
        case .string(let text):
            index += 1
            return .string(text)
        case .ellipsis:
            index += 1
            return .ellipsis
        case .punctuation("["):
            index += 1
            return .list(try expressions(until: "]"))
        case .punctuation("{"):
            index += 1
            var fields: [ScriptField] = []
            if !accept("}") {
                repeat {
                    let first = try expression()
                    if accept("=") {
                        fields.append(ScriptField(name: first, value: try expression()))
                    } else {
                        fields.append(ScriptField(name: nil, value: first))
                    }
                } while accept(",")
                try expect("}", "to close the structure")
            }
            return .structure(fields)
        default:
            throw error("expected an argument")
        }
    }
}
