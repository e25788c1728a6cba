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
}
