import NIOCore
import TCPIPWire

/// A rule: the matches (`meta`, `ip`/`ip6`, `tcp`/`udp`/`th`, `icmp`, `iifname`, `ct state`, `limit`,
/// `meter`, `numgen`) and the statements that follow them (`FilterParser+Verdicts.swift` parses the
/// arguments of `reject` and `impair`).
extension FilterParser {
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
}
