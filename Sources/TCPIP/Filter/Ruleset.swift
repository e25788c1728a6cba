import NIOCore
import TCPIPWire

/// The five places netfilter hands a datagram to its rules.
///
///     in ─▶ prerouting ─▶ (routing) ─▶ input ─▶ stack        stack ─▶ output ─▶ postrouting ─▶ out
///                              └─────▶ forward ─────────────────────────────────┘
public enum FilterHook: String, CaseIterable, Sendable {
    case prerouting, input, forward, output, postrouting
}

/// A table's family: `ip` sees IPv4, `ip6` IPv6, `inet` both.
public enum TableFamily: String, CaseIterable, Sendable {
    case ip, ip6, inet

    func admits(v4: Bool) -> Bool {
        switch self {
        case .ip: v4
        case .ip6: !v4
        case .inet: true
        }
    }
}

/// A ruleset as written: tables of sets and chains of rules. Parsed from nftables' syntax
/// (`FilterRuleset(parsing:)`), listed back in it (`listing()`), run by a `PacketFilter`.
public struct FilterRuleset: Equatable, Sendable {
    public var tables: [FilterTable]

    public init(tables: [FilterTable] = []) {
        self.tables = tables
    }
}

public struct FilterTable: Equatable, Sendable {
    public var family: TableFamily
    public var name: String
    public var sets: [FilterSet] = []
    public var chains: [FilterChain] = []

    public init(family: TableFamily, name: String) {
        self.family = family
        self.name = name
    }
}

/// A named set (`set blocked { type ipv4_addr; flags interval; elements = { … } }`).
public struct FilterSet: Equatable, Sendable {
    public enum ElementType: String, Sendable {
        case ipv4 = "ipv4_addr", ipv6 = "ipv6_addr", service = "inet_service"
    }

    public var name: String
    public var type: ElementType
    public var flags: [String] = []
    public var addresses: [AddressElement] = []
    public var ports: [ClosedRange<UInt16>] = []

    public init(name: String, type: ElementType) {
        self.name = name
        self.type = type
    }
}

public struct FilterChain: Equatable, Sendable {
    /// What makes a chain a base chain: the hook it is attached to, where, and its policy.
    public struct Base: Equatable, Sendable {
        public var type: String = "filter"
        public var hook: FilterHook
        public var priority: Int
        /// `accept` or `drop`.
        public var policyAccepts: Bool = true

        public init(hook: FilterHook, priority: Int, policyAccepts: Bool = true) {
            self.hook = hook
            self.priority = priority
            self.policyAccepts = policyAccepts
        }
    }

    public var name: String
    /// nil for a user chain, reached only by `jump` and `goto`.
    public var base: Base?
    public var rules: [FilterRule] = []

    public init(name: String, base: Base? = nil) {
        self.name = name
        self.base = base
    }
}

/// One rule: every match must hold, then the statements run in order. Its counter is always kept.
public struct FilterRule: Equatable, Sendable {
    public var matches: [FilterMatch]
    public var statements: [FilterStatement]
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0

    public init(matches: [FilterMatch], statements: [FilterStatement], packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.matches = matches
        self.statements = statements
        self.packets = packets
        self.bytes = bytes
    }
}

/// `==`, `!=`, `<`, `>`, `<=`, `>=`.
public enum Comparison: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", greater = ">", lessOrEqual = "<=", greaterOrEqual = ">="

    func holds(_ value: Int, _ range: ClosedRange<Int>) -> Bool {
        switch self {
        case .equal: range.contains(value)
        case .notEqual: !range.contains(value)
        case .less: value < range.lowerBound
        case .greater: value > range.lowerBound
        case .lessOrEqual: value <= range.lowerBound
        case .greaterOrEqual: value >= range.lowerBound
        }
    }
}

/// Where an address comes from: a prefix, a named set, or an anonymous set in braces.
public enum AddressOperand: Equatable, Sendable {
    case prefix(IPPrefix)
    case named(String)
    case anonymous([AddressElement])
}

public enum PortOperand: Equatable, Sendable {
    case ranges([ClosedRange<UInt16>])
    case named(String)
}

/// `ct state` bits.
public struct ConnectionStateSet: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let invalid = ConnectionStateSet(rawValue: 1)
    public static let established = ConnectionStateSet(rawValue: 2)
    public static let related = ConnectionStateSet(rawValue: 4)
    public static let new = ConnectionStateSet(rawValue: 8)
    public static let untracked = ConnectionStateSet(rawValue: 64)

    static let names: [(String, ConnectionStateSet)] = [
        ("invalid", .invalid), ("established", .established), ("related", .related), ("new", .new), ("untracked", .untracked),
    ]
}

/// A token bucket's parameters: `rate` per `unit`, `burst` packets beyond it.
public struct RateLimit: Equatable, Sendable {
    public enum Unit: String, CaseIterable, Sendable {
        case second, minute, hour, day
        var nanoseconds: Int64 {
            switch self {
            case .second: 1_000_000_000
            case .minute: 60_000_000_000
            case .hour: 3_600_000_000_000
            case .day: 86_400_000_000_000
            }
        }
    }

    public var rate: Int
    public var unit: Unit
    /// Packets allowed at once on top of the rate; nft's default is 5.
    public var burst: Int
    /// `limit rate over`: the rule matches what exceeds the rate.
    public var over: Bool

    public init(rate: Int, unit: Unit, burst: Int = 5, over: Bool = false) {
        self.rate = rate
        self.unit = unit
        self.burst = burst
        self.over = over
    }
}

/// What a rule matches on.
public enum FilterMatch: Equatable, Sendable {
    /// `meta nfproto ipv4|ipv6`.
    case family(ipv4: Bool)
    /// `meta l4proto`, `ip protocol`, `ip6 nexthdr`.
    case protocolNumber([UInt8], negated: Bool)
    /// `ip saddr`, `ip6 daddr`, …: `ipv4` chooses the header, `source` the field.
    case address(ipv4: Bool, source: Bool, AddressOperand, negated: Bool)
    /// `tcp dport`, `udp sport`, `th dport`: protocol nil for `th` (TCP or UDP).
    case port(protocolNumber: UInt8?, source: Bool, PortOperand, negated: Bool)
    /// `(tcp flags & mask) == value`, or `!=` when `equal` is false.
    case tcpFlags(mask: TCPFlags, value: TCPFlags, equal: Bool)
    /// `icmp type`, `icmpv6 type`.
    case icmpType(ipv4: Bool, [UInt8], negated: Bool)
    /// `icmp code`, `icmpv6 code`.
    case icmpCode(ipv4: Bool, [UInt8], negated: Bool)
    /// `meta length`.
    case length(Comparison, ClosedRange<Int>)
    /// `iifname`, `oifname`; a name ending in `*` matches by prefix.
    case linkName(input: Bool, [String], negated: Bool)
    /// `ct state`.
    case connectionState(ConnectionStateSet, negated: Bool)
    /// `limit rate …`: one bucket for the rule.
    case limit(RateLimit)
    /// `meter NAME { ip saddr limit rate … }`: one bucket per source (or destination) address.
    case meter(name: String, size: Int, source: Bool, ipv4: Bool, RateLimit)
    /// `numgen random mod N < K`.
    case random(modulus: Int, Comparison, Int)
}

/// What a reject sends: nft's `reject`, `reject with tcp reset`, `reject with icmp|icmpv6|icmpx …`.
public enum RejectKind: Equatable, Sendable {
    /// Port unreachable in the packet's family.
    case `default`
    case tcpReset
    case icmp(UInt8)
    case icmpv6(UInt8)
    case icmpx(ICMPXCode)

    public enum ICMPXCode: String, CaseIterable, Sendable {
        case portUnreachable = "port-unreachable", adminProhibited = "admin-prohibited"
        case noRoute = "no-route", hostUnreachable = "host-unreachable"

        var v4: UInt8 {
            switch self {
            case .portUnreachable: 3
            case .adminProhibited: 13
            case .noRoute: 0
            case .hostUnreachable: 1
            }
        }

        var v6: UInt8 {
            switch self {
            case .portUnreachable: 4
            case .adminProhibited: 1
            case .noRoute: 0
            case .hostUnreachable: 3
            }
        }
    }

    static let icmpCodes: [(String, UInt8)] = [
        ("net-unreachable", 0), ("host-unreachable", 1), ("prot-unreachable", 2), ("port-unreachable", 3),
        ("net-prohibited", 9), ("host-prohibited", 10), ("admin-prohibited", 13),
    ]
    static let icmpv6Codes: [(String, UInt8)] = [
        ("no-route", 0), ("admin-prohibited", 1), ("addr-unreachable", 3), ("port-unreachable", 4),
        ("policy-fail", 5), ("reject-route", 6),
    ]
}

/// netem's model of a bad path, as a rule's statement: `impair loss 1% delay 25ms jitter 5ms`.
/// The same parameters as `FaultInjector` and `--impair` (loss, duplicate, reorder as "sent at once
/// rather than after the delay", one flipped bit), plus jitter and a rate with a drop-tail queue.
public struct ImpairmentSpec: Equatable, Sendable {
    /// Probabilities in parts per million (`loss 0.1%` is 1000), so a listing parses back exactly.
    public var lossPPM = 0
    public var duplicatePPM = 0
    public var reorderPPM = 0
    public var corruptPPM = 0
    public var delay: TimeAmount = .zero
    /// The delay varies uniformly within ±jitter.
    public var jitter: TimeAmount = .zero
    /// Bits per second; 0: no rate limit.
    public var rate = 0
    /// Datagrams waiting for the rate before the tail is dropped.
    public var queue = 1000

    public init() {}

    public var loss: Double { Double(lossPPM) / 1e6 }
    public var duplicate: Double { Double(duplicatePPM) / 1e6 }
    public var reorder: Double { Double(reorderPPM) / 1e6 }
    public var corrupt: Double { Double(corruptPPM) / 1e6 }
}

public enum FilterStatement: Equatable, Sendable {
    case accept, drop
    case reject(RejectKind)
    case jump(String), goto(String)
    case `return`, `continue`
    /// `log [prefix "…"]`: a trace line with the rule.
    case log(prefix: String?)
    case impair(ImpairmentSpec)
}
