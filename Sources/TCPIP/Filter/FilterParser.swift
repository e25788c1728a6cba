import NIOCore
import TCPIPWire

/// A mistake in a ruleset's text, where it is (1-based line and column).
public struct FilterParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The line, from 1.
    public var line: Int
    /// The column, from 1.
    public var column: Int
    /// What is wrong, in words.
    public var message: String

    public var description: String { "\(line):\(column): \(message)" }
}

extension FilterRuleset {
    /// Parses nftables' syntax: the subset of `nft -f` files this filter runs, plus `impair`.
    public init(parsing text: String) throws(FilterParseError) {
        var parser = try FilterParser(text)
        self = try parser.ruleset()
    }

    /// The ruleset in `nft list ruleset`'s form.
    public func listing() -> String { FilterListing.ruleset(self) }
}

struct FilterToken: Equatable {
    enum Kind: Equatable {
        case word, string, setReference, punctuation, newline, end
    }

    var kind: Kind
    var text: String
    var line: Int
    var column: Int
}

/// Splits the text into words (names, numbers, addresses, prefixes, ranges, `10/second`, `1%`),
/// strings, `@set` references, punctuation and newlines (which end rules); `#` comments and
/// `\` line continuations are dropped.
enum FilterLexer {
    static func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "%"), UInt8(ascii: "-"),
             UInt8(ascii: "*"), UInt8(ascii: "$"):
            true
        default:
            false
        }
    }

    static func tokens(_ text: String) throws(FilterParseError) -> [FilterToken] {
        let bytes = Array(text.utf8)
        var tokens: [FilterToken] = []
        var index = 0, line = 1, lineStart = 0
        func token(_ kind: FilterToken.Kind, _ start: Int, _ end: Int) -> FilterToken {
            FilterToken(kind: kind, text: String(decoding: bytes[start..<end], as: UTF8.self), line: line, column: start - lineStart + 1)
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "\n"):
                tokens.append(token(.newline, index, index + 1))
                index += 1
                line += 1
                lineStart = index
            case UInt8(ascii: "#"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "\\"):
                var next = index + 1
                while next < bytes.count && (bytes[next] == UInt8(ascii: " ") || bytes[next] == UInt8(ascii: "\t") || bytes[next] == UInt8(ascii: "\r")) {
                    next += 1
                }
                guard next < bytes.count, bytes[next] == UInt8(ascii: "\n") else {
                    throw FilterParseError(line: line, column: index - lineStart + 1, message: "unexpected '\\'")
                }
                index = next + 1
                line += 1
                lineStart = index
            case UInt8(ascii: "\""):
                var end = index + 1
                while end < bytes.count && bytes[end] != UInt8(ascii: "\"") && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                guard end < bytes.count, bytes[end] == UInt8(ascii: "\"") else {
                    throw FilterParseError(line: line, column: index - lineStart + 1, message: "unterminated string")
                }
                var string = token(.string, index + 1, end)
                string.column -= 1
                tokens.append(string)
                index = end + 1
            case UInt8(ascii: "@"):
                var end = index + 1
                while end < bytes.count && isWordByte(bytes[end]) { end += 1 }
                guard end > index + 1 else {
                    throw FilterParseError(line: line, column: index - lineStart + 1, message: "expected a set name after '@'")
                }
                var reference = token(.setReference, index + 1, end)
                reference.column -= 1
                tokens.append(reference)
                index = end
            case UInt8(ascii: "="), UInt8(ascii: "!"), UInt8(ascii: "<"), UInt8(ascii: ">"):
                let double = index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "=")
                tokens.append(token(.punctuation, index, index + (double ? 2 : 1)))
                index += double ? 2 : 1
            case UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ";"), UInt8(ascii: ","), UInt8(ascii: "("), UInt8(ascii: ")"),
                 UInt8(ascii: "&"), UInt8(ascii: "|"):
                tokens.append(token(.punctuation, index, index + 1))
                index += 1
            default:
                guard isWordByte(byte) else {
                    throw FilterParseError(line: line, column: index - lineStart + 1, message: "unexpected character")
                }
                var end = index
                while end < bytes.count && isWordByte(bytes[end]) { end += 1 }
                tokens.append(token(.word, index, end))
                index = end
            }
        }
        tokens.append(FilterToken(kind: .end, text: "", line: line, column: index - lineStart + 1))
        return tokens
    }
}

/// A recursive-descent parser over `FilterLexer`'s tokens.
struct FilterParser {
    var tokens: [FilterToken]
    var position = 0

    init(_ text: String) throws(FilterParseError) {
        tokens = try FilterLexer.tokens(text)
    }

    static let services: [String: UInt16] = [
        "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "ntp": 123, "https": 443,
    ]

    var current: FilterToken { tokens[position] }

    func error(_ message: String, at token: FilterToken? = nil) -> FilterParseError {
        let token = token ?? current
        let found = token.kind == .end ? "end of input" : (token.kind == .newline ? "end of line" : "'\(token.text)'")
        return FilterParseError(line: token.line, column: token.column, message: "\(message), found \(found)")
    }

    mutating func advance() -> FilterToken {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    func isWord(_ text: String) -> Bool { current.kind == .word && current.text == text }
    func isPunctuation(_ text: String) -> Bool { current.kind == .punctuation && current.text == text }

    mutating func accept(word text: String) -> Bool {
        guard isWord(text) else { return false }
        position += 1
        return true
    }

    mutating func accept(punctuation text: String) -> Bool {
        guard isPunctuation(text) else { return false }
        position += 1
        return true
    }

    mutating func expect(word text: String) throws(FilterParseError) {
        guard accept(word: text) else { throw error("expected '\(text)'") }
    }

    mutating func expect(punctuation text: String) throws(FilterParseError) {
        guard accept(punctuation: text) else { throw error("expected '\(text)'") }
    }

    mutating func name(_ what: String) throws(FilterParseError) -> String {
        guard current.kind == .word || current.kind == .string else { throw error("expected \(what)") }
        return advance().text
    }

    mutating func skipSeparators() {
        while current.kind == .newline || isPunctuation(";") { position += 1 }
    }

    mutating func skipNewlines() {
        while current.kind == .newline { position += 1 }
    }

    // MARK: - Tables, sets, chains

    mutating func ruleset() throws(FilterParseError) -> FilterRuleset {
        var ruleset = FilterRuleset()
        while true {
            skipSeparators()
            if current.kind == .end { return ruleset }
            if accept(word: "flush") {
                try expect(word: "ruleset")
                continue
            }
            guard accept(word: "table") else { throw error("expected 'table'") }
            let table = try self.table()
            guard !ruleset.tables.contains(where: { $0.family == table.family && $0.name == table.name }) else {
                throw error("table \(table.name) defined twice", at: tokens[position - 1])
            }
            ruleset.tables.append(table)
        }
    }

    mutating func table() throws(FilterParseError) -> FilterTable {
        var family = TableFamily.ip
        if current.kind == .word, let named = TableFamily(rawValue: current.text), tokens[position + 1].kind != .punctuation {
            family = named
            position += 1
        }
        var table = FilterTable(family: family, name: try name("a table name"))
        try expect(punctuation: "{")
        var jumps: [(String, FilterToken)] = []
        while true {
            skipSeparators()
            // A block cut short by the end of the input is an error, never an endless loop.
            if current.kind == .end { throw error("expected 'set', 'chain' or '}'") }
            if accept(punctuation: "}") { break }
            if accept(word: "set") {
                let start = tokens[position]
                let set = try self.set()
                guard !table.sets.contains(where: { $0.name == set.name }) else { throw error("set \(set.name) defined twice", at: start) }
                table.sets.append(set)
            } else if accept(word: "chain") {
                let start = tokens[position]
                let chain = try self.chain(table, &jumps)
                guard !table.chains.contains(where: { $0.name == chain.name }) else { throw error("chain \(chain.name) defined twice", at: start) }
                table.chains.append(chain)
            } else {
                throw error("expected 'set', 'chain' or '}'")
            }
        }
        for (target, token) in jumps where !table.chains.contains(where: { $0.name == target }) {
            throw FilterParseError(line: token.line, column: token.column, message: "no chain \(target) in table \(table.name)")
        }
        return table
    }

    mutating func set() throws(FilterParseError) -> FilterSet {
        let name = try self.name("a set name")
        try expect(punctuation: "{")
        var type: FilterSet.ElementType?
        var flags: [String] = []
        var elementsToken: FilterToken?
        var elementTokens: (Int, Int)?
        while true {
            skipSeparators()
            // A block cut short by the end of the input is an error, never an endless loop.
            if current.kind == .end { throw error("expected '}'") }
            if accept(punctuation: "}") { break }
            if accept(word: "type") {
                guard current.kind == .word, let parsed = FilterSet.ElementType(rawValue: current.text) else {
                    throw error("expected ipv4_addr, ipv6_addr or inet_service")
                }
                type = parsed
                position += 1
            } else if accept(word: "flags") {
                repeat {
                    let flag = try self.name("a set flag")
                    guard ["interval", "constant", "timeout", "dynamic"].contains(flag) else {
                        throw error("unknown set flag \(flag)", at: tokens[position - 1])
                    }
                    flags.append(flag)
                } while accept(punctuation: ",")
            } else if accept(word: "elements") {
                elementsToken = tokens[position - 1]
                try expect(punctuation: "=")
                let start = position
                try skipBraces()
                elementTokens = (start, position)
            } else if accept(word: "auto-merge") {
                continue
            } else if accept(word: "size") {
                _ = try number(in: 1...Int(Int32.max))
            } else if accept(word: "comment") {
                guard current.kind == .string else { throw error("expected a string") }
                position += 1
            } else {
                throw error("expected 'type', 'flags', 'elements' or '}'")
            }
        }
        guard let type else { throw error("set \(name) has no type", at: tokens[position - 1]) }
        var set = FilterSet(name: name, type: type)
        set.flags = flags
        if let (start, end) = elementTokens {
            let resume = position
            position = start
            if type == .service {
                set.ports = try portList()
            } else {
                set.addresses = try addressList(ipv4: type == .ipv4, intervals: flags.contains("interval"))
            }
            guard position == end else { throw error("unexpected element", at: elementsToken) }
            position = resume
        }
        return set
    }

    /// Moves past a balanced `{ … }`.
    mutating func skipBraces() throws(FilterParseError) {
        try expect(punctuation: "{")
        var depth = 1
        while depth > 0 {
            if current.kind == .end { throw error("expected '}'") }
            if isPunctuation("{") { depth += 1 }
            if isPunctuation("}") { depth -= 1 }
            position += 1
        }
    }

    mutating func chain(_ table: FilterTable, _ jumps: inout [(String, FilterToken)]) throws(FilterParseError) -> FilterChain {
        var chain = FilterChain(name: try name("a chain name"))
        try expect(punctuation: "{")
        while true {
            skipSeparators()
            // A chain cut short by the end of the input is an error, never an endless loop.
            if current.kind == .end { throw error("expected '}'") }
            if accept(punctuation: "}") { return chain }
            if accept(word: "type") {
                let typeToken = current
                let type = try name("a chain type")
                guard type == "filter" else { throw error("only chains of type filter are supported", at: typeToken) }
                try expect(word: "hook")
                guard current.kind == .word, let hook = FilterHook(rawValue: current.text) else {
                    throw error("expected prerouting, input, forward, output or postrouting")
                }
                position += 1
                if accept(word: "device") { _ = try name("a device") }
                try expect(word: "priority")
                let priority = try self.priority()
                chain.base = FilterChain.Base(hook: hook, priority: priority, policyAccepts: chain.base?.policyAccepts ?? true)
                guard isPunctuation(";") || current.kind == .newline || isPunctuation("}") else { throw error("expected ';'") }
            } else if accept(word: "policy") {
                guard chain.base != nil else { throw error("a policy needs a base chain (type … hook …) first", at: tokens[position - 1]) }
                if accept(word: "accept") {
                    chain.base?.policyAccepts = true
                } else if accept(word: "drop") {
                    chain.base?.policyAccepts = false
                } else {
                    throw error("expected 'accept' or 'drop'")
                }
            } else if accept(word: "comment") {
                guard current.kind == .string else { throw error("expected a string") }
                position += 1
            } else {
                chain.rules.append(try rule(table, &jumps))
            }
        }
    }

    /// A number or one of nft's names (`filter` is 0, `raw` −300, …), optionally `± n`.
    mutating func priority() throws(FilterParseError) -> Int {
        let named: [String: Int] = ["raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100]
        if current.kind == .word, let value = named[current.text] {
            position += 1
            return value
        }
        let value = try number(in: -1_000_000...1_000_000)
        return value
    }

    mutating func number(in range: ClosedRange<Int>) throws(FilterParseError) -> Int {
        guard current.kind == .word, let value = Self.integer(current.text), range.contains(value) else {
            throw error("expected a number in \(range.lowerBound)...\(range.upperBound)")
        }
        position += 1
        return value
    }

    static func integer(_ text: String) -> Int? {
        if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
        return Int(text)
    }

    // MARK: - Rules

    mutating func rule(_ table: FilterTable, _ jumps: inout [(String, FilterToken)]) throws(FilterParseError) -> FilterRule {
        var rule = FilterRule(matches: [], statements: [])
        func ip(_ match: FilterMatch, ipv4: Bool) {
            // `ip protocol`, `ip6 nexthdr`, `ip length` look at one family's header: nft adds the family check.
            if case .address = match {} else if rule.matches.last != .family(ipv4: ipv4) { rule.matches.append(.family(ipv4: ipv4)) }
            rule.matches.append(match)
        }
        var terminal: FilterToken?
        while !(current.kind == .newline || current.kind == .end || isPunctuation(";") || isPunctuation("}")) {
            let start = current
            if let ended = terminal, !isWord("comment") {
                throw error("nothing may follow '\(ended.text)' in a rule", at: start)
            }
            guard current.kind == .word else { throw error("expected a match or a statement") }
            switch advance().text {
            case "meta": rule.matches.append(try meta())
            case "ip", "ip6": ip(try ipHeader(ipv4: start.text == "ip", table), ipv4: start.text == "ip")
            case "tcp", "udp", "th": rule.matches.append(try transport(start.text, table))
            case "icmp", "icmpv6": rule.matches.append(try icmp(ipv4: start.text == "icmp"))
            case "iifname", "oifname": rule.matches.append(try linkName(input: start.text == "iifname"))
            case "ct":
                try expect(word: "state")
                let negated = try negation()
                rule.matches.append(.connectionState(try connectionStates(), negated: negated))
            case "limit": rule.matches.append(.limit(try limit()))
            case "meter": rule.matches.append(try meter())
            case "numgen": rule.matches.append(try numgen())
            case "counter":
                if accept(word: "packets") {
                    rule.packets = UInt64(try number(in: 0...Int.max))
                    try expect(word: "bytes")
                    rule.bytes = UInt64(try number(in: 0...Int.max))
                }
            case "comment":
                guard current.kind == .string else { throw error("expected a string") }
                position += 1
            case "accept": rule.statements.append(.accept); terminal = start
            case "drop": rule.statements.append(.drop); terminal = start
            case "return": rule.statements.append(.return); terminal = start
            case "continue": rule.statements.append(.continue); terminal = start
            case "jump", "goto":
                let target = current
                let chain = try name("a chain name")
                jumps.append((chain, target))
                rule.statements.append(start.text == "jump" ? .jump(chain) : .goto(chain))
                terminal = start
            case "reject": rule.statements.append(.reject(try reject())); terminal = start
            case "log":
                var prefix: String?
                while true {
                    if accept(word: "prefix") {
                        guard current.kind == .string else { throw error("expected a string") }
                        prefix = advance().text
                    } else if accept(word: "level") {
                        _ = try name("a log level")
                    } else {
                        break
                    }
                }
                rule.statements.append(.log(prefix: prefix))
            case "impair": rule.statements.append(.impair(try impairment())); terminal = start
            default:
                throw error("unknown match or statement", at: start)
            }
        }
        return rule
    }

    mutating func negation() throws(FilterParseError) -> Bool {
        if accept(punctuation: "!=") { return true }
        _ = accept(punctuation: "==")
        return false
    }

    /// Items in braces (newlines allowed inside) or a single item.
    mutating func items<T>(_ item: (inout FilterParser) throws(FilterParseError) -> T) throws(FilterParseError) -> [T] {
        guard accept(punctuation: "{") else { return [try item(&self)] }
        var result: [T] = []
        skipNewlines()
        while !accept(punctuation: "}") {
            result.append(try item(&self))
            skipNewlines()
            if accept(punctuation: ",") {
                skipNewlines()
            } else {
                skipNewlines()
                guard isPunctuation("}") else { throw error("expected ',' or '}'") }
            }
        }
        guard !result.isEmpty else { throw error("empty set", at: tokens[position - 1]) }
        return result
    }

    mutating func meta() throws(FilterParseError) -> FilterMatch {
        let keyToken = current
        switch try name("a meta key") {
        case "nfproto":
            _ = accept(punctuation: "==")
            if accept(word: "ipv4") { return .family(ipv4: true) }
            if accept(word: "ipv6") { return .family(ipv4: false) }
            throw error("expected ipv4 or ipv6")
        case "l4proto", "protocol":
            let negated = try negation()
            return .protocolNumber(try items { (p: inout FilterParser) throws(FilterParseError) in try p.protocolNumber() }, negated: negated)
        case "length":
            return try length()
        case "iifname", "oifname":
            return try linkName(input: keyToken.text == "iifname")
        default:
            throw error("unknown meta key", at: keyToken)
        }
    }

    mutating func protocolNumber() throws(FilterParseError) -> UInt8 {
        guard current.kind == .word else { throw error("expected a protocol") }
        if current.text == "icmpv6" {
            position += 1
            return IPProtocolNumber.icmpv6
        }
        if let named = FilterListing.protocolNames.first(where: { $0.0 == current.text }) {
            position += 1
            return named.1
        }
        return UInt8(try number(in: 0...255))
    }

    mutating func length() throws(FilterParseError) -> FilterMatch {
        var comparison = Comparison.equal
        if current.kind == .punctuation, let parsed = Comparison(rawValue: current.text) {
            comparison = parsed
            position += 1
        }
        let range = try numericRange(0...65_535)
        if comparison != .equal && comparison != .notEqual && range.count != 1 {
            throw error("a range takes == or !=", at: tokens[position - 1])
        }
        return .length(comparison, range)
    }

    mutating func numericRange(_ bounds: ClosedRange<Int>) throws(FilterParseError) -> ClosedRange<Int> {
        let token = current
        guard token.kind == .word else { throw error("expected a number") }
        let parts = token.text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let low = Self.integer(String(parts[0])), bounds.contains(low) else {
            throw error("expected a number in \(bounds.lowerBound)...\(bounds.upperBound)")
        }
        var high = low
        if parts.count == 2 {
            guard let value = Self.integer(String(parts[1])), bounds.contains(value), value >= low else {
                throw error("expected a range low-high within \(bounds.lowerBound)...\(bounds.upperBound)")
            }
            high = value
        }
        position += 1
        return low...high
    }

    mutating func ipHeader(ipv4: Bool, _ table: FilterTable) throws(FilterParseError) -> FilterMatch {
        let keyToken = current
        switch try name("an \(ipv4 ? "ip" : "ip6") field") {
        case "saddr", "daddr":
            let source = keyToken.text == "saddr"
            let negated = try negation()
            if current.kind == .setReference {
                let reference = advance()
                guard let set = table.sets.first(where: { $0.name == reference.text }) else {
                    throw FilterParseError(line: reference.line, column: reference.column, message: "no set \(reference.text) in table \(table.name)")
                }
                guard set.type == (ipv4 ? .ipv4 : .ipv6) else {
                    throw FilterParseError(line: reference.line, column: reference.column,
                                           message: "set \(reference.text) holds \(set.type.rawValue), not \(ipv4 ? "ipv4_addr" : "ipv6_addr")")
                }
                return .address(ipv4: ipv4, source: source, .named(reference.text), negated: negated)
            }
            if isPunctuation("{") {
                return .address(ipv4: ipv4, source: source, .anonymous(try addressList(ipv4: ipv4, intervals: true)), negated: negated)
            }
            let token = current
            guard case .prefix(let prefix) = try addressElement(ipv4: ipv4, intervals: true) else {
                throw error("a range needs braces", at: token)
            }
            return .address(ipv4: ipv4, source: source, .prefix(prefix), negated: negated)
        case "protocol", "nexthdr":
            guard (keyToken.text == "protocol") == ipv4 else { throw error("unknown \(ipv4 ? "ip" : "ip6") field", at: keyToken) }
            let negated = try negation()
            return .protocolNumber(try items { (p: inout FilterParser) throws(FilterParseError) in try p.protocolNumber() }, negated: negated)
        case "length":
            return try length()
        default:
            throw error("unknown \(ipv4 ? "ip" : "ip6") field", at: keyToken)
        }
    }

    mutating func addressList(ipv4: Bool, intervals: Bool) throws(FilterParseError) -> [AddressElement] {
        guard isPunctuation("{") else { throw error("expected '{'") }
        return try items { (p: inout FilterParser) throws(FilterParseError) in try p.addressElement(ipv4: ipv4, intervals: intervals) }
    }

    mutating func addressElement(ipv4: Bool, intervals: Bool) throws(FilterParseError) -> AddressElement {
        let token = current
        guard token.kind == .word else { throw error("expected an \(ipv4 ? "IPv4" : "IPv6") address") }
        let family = ipv4 ? "IPv4" : "IPv6"
        // A range `a-b`: IPv6 addresses have no '-', so the first '-' splits.
        if let dash = token.text.firstIndex(of: "-") {
            guard intervals else { throw error("a range needs a set with flags interval", at: token) }
            guard let low = IPAddress(String(token.text[..<dash])), let high = IPAddress(String(token.text[token.text.index(after: dash)...])),
                  low.isV4 == ipv4, high.isV4 == ipv4, AddressKey(low) <= AddressKey(high)
            else { throw error("expected an \(family) range low-high", at: token) }
            position += 1
            return .range(low, high)
        }
        guard let prefix = IPPrefix(token.text), prefix.address.isV4 == ipv4 else {
            throw error("expected an \(family) address or prefix", at: token)
        }
        if prefix.length != (ipv4 ? 32 : 128) && !intervals {
            throw error("a prefix in a set needs flags interval", at: token)
        }
        position += 1
        return .prefix(prefix)
    }

    mutating func transport(_ header: String, _ table: FilterTable) throws(FilterParseError) -> FilterMatch {
        let proto: UInt8? = header == "tcp" ? IPProtocolNumber.tcp : (header == "udp" ? IPProtocolNumber.udp : nil)
        let keyToken = current
        switch try name("a \(header) field") {
        case "sport", "dport":
            let source = keyToken.text == "sport"
            let negated = try negation()
            if current.kind == .setReference {
                let reference = advance()
                guard let set = table.sets.first(where: { $0.name == reference.text }) else {
                    throw FilterParseError(line: reference.line, column: reference.column, message: "no set \(reference.text) in table \(table.name)")
                }
                guard set.type == .service else {
                    throw FilterParseError(line: reference.line, column: reference.column, message: "set \(reference.text) holds \(set.type.rawValue), not inet_service")
                }
                return .port(protocolNumber: proto, source: source, .named(reference.text), negated: negated)
            }
            return .port(protocolNumber: proto, source: source, .ranges(try portList()), negated: negated)
        case "flags" where header == "tcp":
            return try tcpFlags()
        default:
            throw error("unknown \(header) field", at: keyToken)
        }
    }

    mutating func portList() throws(FilterParseError) -> [ClosedRange<UInt16>] {
        try items { (p: inout FilterParser) throws(FilterParseError) in
            if p.current.kind == .word, let service = Self.services[p.current.text] {
                p.position += 1
                return service...service
            }
            let range = try p.numericRange(0...65_535)
            return UInt16(range.lowerBound)...UInt16(range.upperBound)
        }
    }

    mutating func flagName() throws(FilterParseError) -> TCPFlags {
        guard current.kind == .word else { throw error("expected a TCP flag") }
        if let flag = FilterListing.flagNames.first(where: { $0.0 == current.text }) {
            position += 1
            return flag.1
        }
        if current.text == "ece" {
            position += 1
            return .ece
        }
        if let value = Self.integer(current.text), (0...255).contains(value) {
            position += 1
            return TCPFlags(rawValue: UInt8(value))
        }
        throw error("expected a TCP flag (fin, syn, rst, psh, ack, urg, ecn, cwr)")
    }

    /// `| `-joined flags, optionally in parentheses.
    mutating func flagExpression() throws(FilterParseError) -> TCPFlags {
        let parenthesised = accept(punctuation: "(")
        var flags = try flagName()
        while accept(punctuation: "|") { flags.formUnion(try flagName()) }
        if parenthesised { try expect(punctuation: ")") }
        return flags
    }

    /// `tcp flags syn` (any of), `tcp flags syn,!ack` (syn set, ack clear), `tcp flags == syn`,
    /// `tcp flags & (syn | ack) == syn`, `tcp flags syn / syn,ack`, `tcp flags != syn`.
    mutating func tcpFlags() throws(FilterParseError) -> FilterMatch {
        if accept(punctuation: "&") {
            let mask = try flagExpression()
            let equal: Bool
            if accept(punctuation: "==") { equal = true } else if accept(punctuation: "!=") { equal = false } else {
                throw error("expected '==' or '!='")
            }
            let value = try flagExpression()
            return .tcpFlags(mask: mask, value: value, equal: equal)
        }
        if accept(punctuation: "==") { return .tcpFlags(mask: TCPFlags(rawValue: 0xFF), value: try flagExpression(), equal: true) }
        if accept(punctuation: "!=") { return .tcpFlags(mask: TCPFlags(rawValue: 0xFF), value: try flagExpression(), equal: false) }
        var set: TCPFlags = [], clear: TCPFlags = []
        repeat {
            if accept(punctuation: "!") { clear.formUnion(try flagName()) } else { set.formUnion(try flagName()) }
        } while accept(punctuation: ",")
        if current.kind == .word, current.text == "/" || current.text.hasPrefix("/") {
            // `value / mask`: the lexer keeps '/' in words, so `syn / syn,ack` arrives as "/" then words.
            guard clear.isEmpty, current.text == "/" else { throw error("expected '/ mask'") }
            position += 1
            var mask: TCPFlags = []
            repeat { mask.formUnion(try flagName()) } while accept(punctuation: ",")
            return .tcpFlags(mask: mask.union(set), value: set, equal: true)
        }
        if clear.isEmpty { return .tcpFlags(mask: set, value: [], equal: false) }
        return .tcpFlags(mask: set.union(clear), value: set, equal: true)
    }

    mutating func icmp(ipv4: Bool) throws(FilterParseError) -> FilterMatch {
        let keyToken = current
        switch try name("an icmp field") {
        case "type":
            let negated = try negation()
            let types = try items { (p: inout FilterParser) throws(FilterParseError) -> UInt8 in
                if p.current.kind == .word, let type = ICMPKind.type(named: p.current.text, v4: ipv4) {
                    p.position += 1
                    return type
                }
                guard p.current.kind == .word, let value = Self.integer(p.current.text), (0...255).contains(value) else {
                    throw p.error("expected an \(ipv4 ? "icmp" : "icmpv6") type")
                }
                p.position += 1
                return UInt8(value)
            }
            return .icmpType(ipv4: ipv4, types, negated: negated)
        case "code":
            let negated = try negation()
            let codes = try items { (p: inout FilterParser) throws(FilterParseError) in UInt8(try p.number(in: 0...255)) }
            return .icmpCode(ipv4: ipv4, codes, negated: negated)
        default:
            throw error("unknown icmp field", at: keyToken)
        }
    }

    mutating func linkName(input: Bool) throws(FilterParseError) -> FilterMatch {
        let negated = try negation()
        let names = try items { (p: inout FilterParser) throws(FilterParseError) -> String in
            guard p.current.kind == .string || p.current.kind == .word else { throw p.error("expected a link name") }
            let name = p.advance().text
            guard !name.isEmpty, name.utf8.count <= 15 else { throw p.error("a link name has 1 to 15 characters", at: p.tokens[p.position - 1]) }
            return name
        }
        return .linkName(input: input, names, negated: negated)
    }

    /// `new`, `established,related`, `{ established, related }`.
    mutating func connectionStates() throws(FilterParseError) -> ConnectionStateSet {
        func state(_ p: inout FilterParser) throws(FilterParseError) -> ConnectionStateSet {
            guard p.current.kind == .word, let state = ConnectionStateSet.names.first(where: { $0.0 == p.current.text }) else {
                throw p.error("expected new, established, related, invalid or untracked")
            }
            p.position += 1
            return state.1
        }
        var states: ConnectionStateSet = []
        if isPunctuation("{") {
            for item in try items(state) { states.formUnion(item) }
            return states
        }
        repeat { states.formUnion(try state(&self)) } while accept(punctuation: ",")
        return states
    }

    mutating func limit() throws(FilterParseError) -> RateLimit {
        try expect(word: "rate")
        let over = accept(word: "over")
        let token = current
        guard token.kind == .word else { throw error("expected a rate, as 10/second") }
        let parts = token.text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let rate = Int(parts[0]), rate > 0, rate <= 1_000_000_000,
              let unit = RateLimit.Unit(rawValue: String(parts[1]))
        else { throw error("expected a rate, as 10/second") }
        position += 1
        var limit = RateLimit(rate: rate, unit: unit, over: over)
        if accept(word: "burst") {
            limit.burst = try number(in: 1...1_000_000)
            try expect(word: "packets")
        }
        return limit
    }

    mutating func meter() throws(FilterParseError) -> FilterMatch {
        let name = try self.name("a meter name")
        var size = 65_535
        if accept(word: "size") { size = try number(in: 1...1_048_576) }
        try expect(punctuation: "{")
        let ipv4: Bool
        if accept(word: "ip") { ipv4 = true } else if accept(word: "ip6") { ipv4 = false } else { throw error("expected 'ip' or 'ip6'") }
        let source: Bool
        if accept(word: "saddr") { source = true } else if accept(word: "daddr") { source = false } else { throw error("expected 'saddr' or 'daddr'") }
        try expect(word: "limit")
        let limit = try self.limit()
        try expect(punctuation: "}")
        return .meter(name: name, size: size, source: source, ipv4: ipv4, limit)
    }

    mutating func numgen() throws(FilterParseError) -> FilterMatch {
        try expect(word: "random")
        try expect(word: "mod")
        let modulus = try number(in: 1...Int(UInt32.max))
        var comparison = Comparison.equal
        if current.kind == .punctuation, let parsed = Comparison(rawValue: current.text) {
            comparison = parsed
            position += 1
        }
        let value = try number(in: 0...Int(UInt32.max))
        return .random(modulus: modulus, comparison, value)
    }

    mutating func reject() throws(FilterParseError) -> RejectKind {
        guard accept(word: "with") else { return .default }
        let kindToken = current
        switch try name("tcp, icmp, icmpv6 or icmpx") {
        case "tcp":
            try expect(word: "reset")
            return .tcpReset
        case "icmp", "icmpv6", "icmpx":
            _ = accept(word: "type")  // nft before 1.0: `reject with icmp type host-unreachable`
            let codeToken = current
            let code = try name("a reject code")
            switch kindToken.text {
            case "icmp":
                if let named = RejectKind.icmpCodes.first(where: { $0.0 == code }) { return .icmp(named.1) }
                if let value = Self.integer(code), (0...15).contains(value) { return .icmp(UInt8(value)) }
            case "icmpv6":
                if let named = RejectKind.icmpv6Codes.first(where: { $0.0 == code }) { return .icmpv6(named.1) }
                if let value = Self.integer(code), (0...7).contains(value) { return .icmpv6(UInt8(value)) }
            default:
                if let named = RejectKind.ICMPXCode(rawValue: code) { return .icmpx(named) }
            }
            throw error("unknown \(kindToken.text) reject code", at: codeToken)
        default:
            throw error("expected tcp, icmp, icmpv6 or icmpx", at: kindToken)
        }
    }

    // MARK: - impair (ours)

    mutating func impairment() throws(FilterParseError) -> ImpairmentSpec {
        var spec = ImpairmentSpec()
        var seen: Set<String> = []
        while current.kind == .word, ["loss", "duplicate", "reorder", "corrupt", "delay", "jitter", "rate", "queue"].contains(current.text) {
            let key = advance()
            guard seen.insert(key.text).inserted else { throw error("\(key.text) given twice", at: key) }
            switch key.text {
            case "loss": spec.lossPPM = try percent()
            case "duplicate": spec.duplicatePPM = try percent()
            case "reorder": spec.reorderPPM = try percent()
            case "corrupt": spec.corruptPPM = try percent()
            case "delay": spec.delay = try duration()
            case "jitter": spec.jitter = try duration()
            case "rate": spec.rate = try bitRate()
            default: spec.queue = try number(in: 1...100_000)
            }
        }
        guard !seen.isEmpty else { throw error("expected loss, duplicate, reorder, corrupt, delay, jitter, rate or queue") }
        return spec
    }

    /// `1%`, `0.25%`, at most four decimals: parts per million.
    mutating func percent() throws(FilterParseError) -> Int {
        guard current.kind == .word, current.text.hasSuffix("%") else { throw error("expected a percentage, as 1%") }
        let number = current.text.dropLast()
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = Int(parts[0]), parts[0].allSatisfy(\.isNumber) else { throw error("expected a percentage, as 1%") }
        var fraction = 0
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].count <= 4, parts[1].allSatisfy(\.isNumber), let digits = Int(parts[1]) else {
                throw error("expected a percentage with at most four decimals")
            }
            fraction = digits
            for _ in parts[1].count..<4 { fraction *= 10 }
        }
        let ppm = whole * 10_000 + fraction
        guard whole <= 100, ppm <= 1_000_000 else { throw error("a percentage is at most 100%") }
        position += 1
        return ppm
    }

    /// `25ms`, `1s`, `500us`, `2m`, `1h`, `100ns`.
    mutating func duration() throws(FilterParseError) -> TimeAmount {
        guard current.kind == .word else { throw error("expected a duration, as 25ms") }
        let text = current.text
        let digits = text.prefix { $0.isNumber }
        let unit = text.dropFirst(digits.count)
        let scale: Int64? = ["ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000][String(unit)]
        guard !digits.isEmpty, let scale, let value = Int64(digits), value <= Int64.max / scale, value * scale <= 3_600_000_000_000 else {
            throw error("expected a duration up to 1h, as 25ms")
        }
        position += 1
        return .nanoseconds(value * scale)
    }

    /// `10mbit`, `512kbit`, `1gbit`, `9600bit`.
    mutating func bitRate() throws(FilterParseError) -> Int {
        guard current.kind == .word else { throw error("expected a rate, as 10mbit") }
        let text = current.text
        let digits = text.prefix { $0.isNumber }
        let scale: Int? = ["bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000][String(text.dropFirst(digits.count))]
        guard !digits.isEmpty, let scale, let value = Int(digits), value > 0, value <= 400_000_000_000 / scale else {
            throw error("expected a rate up to 400gbit, as 10mbit")
        }
        position += 1
        return value * scale
    }
}
