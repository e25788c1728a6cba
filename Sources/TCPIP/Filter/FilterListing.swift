import NIOCore
import TCPIPWire

/// A ruleset printed as `nft list ruleset` prints one: tabs, one rule a line, counters in place.
/// What it prints parses back to the same ruleset.
public enum FilterListing {
    /// `ruleset` in nft's notation, as `nft list ruleset` prints it.
    public static func ruleset(_ ruleset: FilterRuleset) -> String {
        var out = ""
        for (number, table) in ruleset.tables.enumerated() {
            if number > 0 { out += "\n" }
            out += "table \(table.family.rawValue) \(table.name) {\n"
            var blocks: [String] = []
            for set in table.sets { blocks.append(self.set(set)) }
            for chain in table.chains { blocks.append(self.chain(chain)) }
            out += blocks.joined(separator: "\n")
            out += "}\n"
        }
        return out
    }

    static func set(_ set: FilterSet) -> String {
        var out = "\tset \(set.name) {\n\t\ttype \(set.type.rawValue)\n"
        if !set.flags.isEmpty { out += "\t\tflags \(set.flags.joined(separator: ","))\n" }
        let elements = set.type == .service ? set.ports.map(port) : set.addresses.map(\.description)
        if !elements.isEmpty { out += "\t\telements = { \(elements.joined(separator: ", ")) }\n" }
        return out + "\t}\n"
    }

    static func chain(_ chain: FilterChain) -> String {
        var out = "\tchain \(chain.name) {\n"
        if let base = chain.base {
            out += "\t\ttype \(base.type) hook \(base.hook.rawValue) priority \(base.priority); policy \(base.policyAccepts ? "accept" : "drop");\n"
        }
        for rule in chain.rules { out += "\t\t\(self.rule(rule, counters: true))\n" }
        return out + "\t}\n"
    }

    /// One rule: matches, then its counter (when `counters`), then statements.
    public static func rule(_ rule: FilterRule, counters: Bool) -> String {
        var words = rule.matches.map(match)
        if counters { words.append("counter packets \(rule.packets) bytes \(rule.bytes)") }
        words += rule.statements.map(statement)
        return words.joined(separator: " ")
    }

    static let protocolNames: [(String, UInt8)] = [
        ("icmp", 1), ("igmp", 2), ("tcp", 6), ("udp", 17), ("ipv6-icmp", 58), ("gre", 47), ("esp", 50), ("ah", 51), ("sctp", 132),
    ]
    static let flagNames: [(String, TCPFlags)] = [
        ("fin", .fin), ("syn", .syn), ("rst", .rst), ("psh", .psh), ("ack", .ack), ("urg", .urg), ("ecn", .ece), ("cwr", .cwr),
    ]

    static func list(_ items: [String]) -> String {
        items.count == 1 ? items[0] : "{ \(items.joined(separator: ", ")) }"
    }

    static func negation(_ negated: Bool) -> String { negated ? "!= " : "" }

    static func port(_ range: ClosedRange<UInt16>) -> String {
        range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)"
    }

    static func flags(_ flags: TCPFlags) -> [String] {
        flagNames.filter { flags.contains($0.1) }.map(\.0)
    }

    static func match(_ match: FilterMatch) -> String {
        switch match {
        case .family(let ipv4):
            return "meta nfproto \(ipv4 ? "ipv4" : "ipv6")"
        case .protocolNumber(let numbers, let negated):
            let names = numbers.map { n in protocolNames.first { $0.1 == n }?.0 ?? String(n) }
            return "meta l4proto \(negation(negated))\(list(names))"
        case .address(let ipv4, let source, let operand, let negated):
            let value: String
            switch operand {
            case .prefix(let prefix): value = prefix.description
            case .named(let name): value = "@\(name)"
            case .anonymous(let elements): value = "{ \(elements.map(\.description).joined(separator: ", ")) }"
            }
            return "\(ipv4 ? "ip" : "ip6") \(source ? "saddr" : "daddr") \(negation(negated))\(value)"
        case .port(let proto, let source, let operand, let negated):
            let name = proto == IPProtocolNumber.tcp ? "tcp" : (proto == IPProtocolNumber.udp ? "udp" : "th")
            let value: String
            switch operand {
            case .ranges(let ranges): value = list(ranges.map(port))
            case .named(let set): value = "@\(set)"
            }
            return "\(name) \(source ? "sport" : "dport") \(negation(negated))\(value)"
        case .tcpFlags(let mask, let value, let equal):
            // An empty mask (`tcp flags 0`) has no names: it lists as the number it was written as.
            if !equal && value.isEmpty { return "tcp flags \(mask.isEmpty ? "0x0" : flags(mask).joined(separator: ","))" }
            if equal && mask.rawValue == 0xFF { return "tcp flags == \(flagValue(value))" }
            return "tcp flags & (\(flagValue(mask))) \(equal ? "==" : "!=") \(flagValue(value))"
        case .icmpType(let ipv4, let types, let negated):
            return "\(ipv4 ? "icmp" : "icmpv6") type \(negation(negated))\(list(types.map { ICMPKind.name($0, v4: ipv4) }))"
        case .icmpCode(let ipv4, let codes, let negated):
            return "\(ipv4 ? "icmp" : "icmpv6") code \(negation(negated))\(list(codes.map(String.init)))"
        case .length(let comparison, let range):
            let value = range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)"
            return "meta length \(comparison == .equal ? "" : comparison.rawValue + " ")\(value)"
        case .linkName(let input, let names, let negated):
            return "\(input ? "iifname" : "oifname") \(negation(negated))\(list(names.map { "\"\($0)\"" }))"
        case .connectionState(let states, let negated):
            let names = ConnectionStateSet.names.filter { states.contains($0.1) }.map(\.0)
            return "ct state \(negation(negated))\(names.joined(separator: ","))"
        case .limit(let limit):
            return self.limit(limit)
        case .meter(let name, let size, let source, let ipv4, let limit):
            return "meter \(name) size \(size) { \(ipv4 ? "ip" : "ip6") \(source ? "saddr" : "daddr") \(self.limit(limit)) }"
        case .random(let modulus, let comparison, let value):
            return "numgen random mod \(modulus) \(comparison.rawValue) \(value)"
        }
    }

    static func flagValue(_ value: TCPFlags) -> String {
        value.isEmpty ? "0x0" : flags(value).joined(separator: " | ")
    }

    static func limit(_ limit: RateLimit) -> String {
        "limit rate \(limit.over ? "over " : "")\(limit.rate)/\(limit.unit.rawValue)\(limit.burst == 5 ? "" : " burst \(limit.burst) packets")"
    }

    static func statement(_ statement: FilterStatement) -> String {
        switch statement {
        case .accept: return "accept"
        case .drop: return "drop"
        case .return: return "return"
        case .continue: return "continue"
        case .jump(let chain): return "jump \(chain)"
        case .goto(let chain): return "goto \(chain)"
        case .log(let prefix): return prefix.map { "log prefix \"\($0)\"" } ?? "log"
        case .reject(let kind):
            switch kind {
            case .default: return "reject"
            case .tcpReset: return "reject with tcp reset"
            case .icmp(let code): return "reject with icmp \(RejectKind.icmpCodes.first { $0.1 == code }?.0 ?? String(code))"
            case .icmpv6(let code): return "reject with icmpv6 \(RejectKind.icmpv6Codes.first { $0.1 == code }?.0 ?? String(code))"
            case .icmpx(let code): return "reject with icmpx \(code.rawValue)"
            }
        case .impair(let spec):
            return impairment(spec)
        }
    }

    static func impairment(_ spec: ImpairmentSpec) -> String {
        var words = ["impair"]
        if spec.lossPPM > 0 { words.append("loss \(percent(spec.lossPPM))") }
        if spec.duplicatePPM > 0 { words.append("duplicate \(percent(spec.duplicatePPM))") }
        if spec.reorderPPM > 0 { words.append("reorder \(percent(spec.reorderPPM))") }
        if spec.corruptPPM > 0 { words.append("corrupt \(percent(spec.corruptPPM))") }
        if spec.delay > .zero { words.append("delay \(duration(spec.delay))") }
        if spec.jitter > .zero { words.append("jitter \(duration(spec.jitter))") }
        if spec.rate > 0 { words.append("rate \(bitRate(spec.rate))") }
        if spec.queue != 1000 { words.append("queue \(spec.queue)") }
        // `impair duplicate 0%` changes nothing, but it parsed: its listing must parse back too, and a
        // bare `impair` does not (the parser asks for at least one parameter).
        if words.count == 1 { words.append("loss 0%") }
        return words.joined(separator: " ")
    }

    /// Parts per million as a percentage: 1000 → `0.1%`.
    static func percent(_ ppm: Int) -> String {
        let whole = ppm / 10_000, fraction = ppm % 10_000
        guard fraction != 0 else { return "\(whole)%" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 4 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)%"
    }

    static func duration(_ amount: TimeAmount) -> String {
        let ns = amount.nanoseconds
        for (unit, size) in [("h", Int64(3_600_000_000_000)), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)]
        where ns % size == 0 {
            return "\(ns / size)\(unit)"
        }
        return "\(ns)ns"
    }

    static func bitRate(_ bits: Int) -> String {
        for (unit, size) in [("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1_000)] where bits % size == 0 {
            return "\(bits / size)\(unit)"
        }
        return "\(bits)bit"
    }
}
