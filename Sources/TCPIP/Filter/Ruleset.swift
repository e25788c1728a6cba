import NIOCore
import TCPIPWire

/// The five places netfilter hands a datagram to its rules.
///
///     in ─▶ prerouting ─▶ (routing) ─▶ input ─▶ stack        stack ─▶ output ─▶ postrouting ─▶ out
///                              └─────▶ forward ─────────────────────────────────┘
public enum FilterHook: String, CaseIterable, Sendable {
    /// Every datagram that arrives, before routing.
    case prerouting
    /// Datagrams for the stack itself.
    case input
    /// Datagrams routed through (a `Router`).
    case forward
    /// Datagrams the stack sends.
    case output
    /// Every datagram that leaves, after routing.
    case postrouting
}

/// A table's family: `ip` sees IPv4, `ip6` IPv6, `inet` both.
public enum TableFamily: String, CaseIterable, Sendable {
    /// IPv4 only.
    case ip
    /// IPv6 only.
    case ip6
    /// Both.
    case inet

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
    /// The tables, in the order written.
    public var tables: [FilterTable]

    /// A ruleset of `tables` (none by default: every datagram accepted).
    public init(tables: [FilterTable] = []) {
        self.tables = tables
    }
}

/// A table: a family, a name, and its sets and chains (`table inet filter { … }`).
public struct FilterTable: Equatable, Sendable {
    /// Which datagrams its chains see.
    public var family: TableFamily
    /// Its name.
    public var name: String
    /// Its named sets.
    public var sets: [FilterSet] = []
    /// Its chains.
    public var chains: [FilterChain] = []

    /// An empty table.
    public init(family: TableFamily, name: String) {
        self.family = family
        self.name = name
    }
}

/// A named set (`set blocked { type ipv4_addr; flags interval; elements = { … } }`).
public struct FilterSet: Equatable, Sendable {
    /// What the set holds, as nft names it.
    public enum ElementType: String, Sendable {
        /// IPv4 addresses (`ipv4_addr`).
        case ipv4 = "ipv4_addr"
        /// IPv6 addresses (`ipv6_addr`).
        case ipv6 = "ipv6_addr"
        /// Ports (`inet_service`).
        case service = "inet_service"
    }

    /// Its name, as rules refer to it (`@blocked`).
    public var name: String
    /// What it holds.
    public var type: ElementType
    /// Its flags as written (`interval`).
    public var flags: [String] = []
    /// Its addresses, for an address set.
    public var addresses: [AddressElement] = []
    /// Its port ranges, for a service set.
    public var ports: [ClosedRange<UInt16>] = []

    /// An empty set.
    public init(name: String, type: ElementType) {
        self.name = name
        self.type = type
    }
}

/// A chain of rules: a base chain attached to a hook, or a user chain reached by `jump` and `goto`.
public struct FilterChain: Equatable, Sendable {
    /// What makes a chain a base chain: the hook it is attached to, where, and its policy.
    public struct Base: Equatable, Sendable {
        /// The chain type as written (`filter`).
        public var type: String = "filter"
        /// The hook it is attached to.
        public var hook: FilterHook
        /// Its place among the chains of the same hook: lower runs first.
        public var priority: Int
        /// `accept` or `drop`.
        public var policyAccepts: Bool = true

        /// A base chain on `hook` at `priority`, whose policy accepts or drops.
        public init(hook: FilterHook, priority: Int, policyAccepts: Bool = true) {
            self.hook = hook
            self.priority = priority
            self.policyAccepts = policyAccepts
        }
    }

    /// Its name.
    public var name: String
    /// nil for a user chain, reached only by `jump` and `goto`.
    public var base: Base?
    /// Its rules, in order.
    public var rules: [FilterRule] = []

    /// An empty chain; a base chain with `base`.
    public init(name: String, base: Base? = nil) {
        self.name = name
        self.base = base
    }
}

/// One rule: every match must hold, then the statements run in order. Its counter is always kept.
public struct FilterRule: Equatable, Sendable {
    /// What a datagram must match, all of it.
    public var matches: [FilterMatch]
    /// What then happens, in order.
    public var statements: [FilterStatement]
    /// Datagrams the rule matched.
    public var packets: UInt64 = 0
    /// Octets of those datagrams.
    public var bytes: UInt64 = 0

    /// A rule with these matches and statements, its counter at `packets` and `bytes`.
    public init(matches: [FilterMatch], statements: [FilterStatement], packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.matches = matches
        self.statements = statements
        self.packets = packets
        self.bytes = bytes
    }
}

/// `==`, `!=`, `<`, `>`, `<=`, `>=`.
public enum Comparison: String, Sendable {
    /// `==` (also what no operator means): within the range.
    case equal = "=="
    /// `!=`: outside the range.
    case notEqual = "!="
    /// `<`.
    case less = "<"
    /// `>`.
    case greater = ">"
    /// `<=`.
    case lessOrEqual = "<="
    /// `>=`.
    case greaterOrEqual = ">="

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
    /// An address or prefix (`198.18.0.0/15`).
    case prefix(IPPrefix)
    /// A named set (`@blocked`).
    case named(String)
    /// An anonymous set (`{ 198.18.0.1, 198.18.2.0/24 }`).
    case anonymous([AddressElement])
}

/// Where ports come from: ports and ranges written out, or a named set.
public enum PortOperand: Equatable, Sendable {
    /// Ports and ranges (`80`, `{ 22, 8000-8080 }`).
    case ranges([ClosedRange<UInt16>])
    /// A named set (`@web`).
    case named(String)
}

/// `ct state` bits.
public struct ConnectionStateSet: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// A datagram that fits no tracked flow it claims to belong to.
    public static let invalid = ConnectionStateSet(rawValue: 1)
    /// A datagram of a flow that has seen traffic both ways.
    public static let established = ConnectionStateSet(rawValue: 2)
    /// An ICMP error about a tracked flow.
    public static let related = ConnectionStateSet(rawValue: 4)
    /// The first datagram of a flow.
    public static let new = ConnectionStateSet(rawValue: 8)
    /// A datagram the tracker does not follow.
    public static let untracked = ConnectionStateSet(rawValue: 64)

    static let names: [(String, ConnectionStateSet)] = [
        ("invalid", .invalid), ("established", .established), ("related", .related), ("new", .new), ("untracked", .untracked),
    ]
}

/// A token bucket's parameters: `rate` per `unit`, `burst` packets beyond it.
public struct RateLimit: Equatable, Sendable {
    /// The period the rate is counted over.
    public enum Unit: String, CaseIterable, Sendable {
        /// Per second.
        case second
        /// Per minute.
        case minute
        /// Per hour.
        case hour
        /// Per day.
        case day
        var nanoseconds: Int64 {
            switch self {
            case .second: 1_000_000_000
            case .minute: 60_000_000_000
            case .hour: 3_600_000_000_000
            case .day: 86_400_000_000_000
            }
        }
    }

    /// Packets per `unit`.
    public var rate: Int
    /// The period `rate` counts over.
    public var unit: Unit
    /// Packets allowed at once on top of the rate; nft's default is 5.
    public var burst: Int
    /// `limit rate over`: the rule matches what exceeds the rate.
    public var over: Bool

    /// A limit of `rate` per `unit` with `burst` beyond it; with `over`, the rule matches the excess.
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
    /// A TCP RST (`reject with tcp reset`), for TCP datagrams.
    case tcpReset
    /// ICMP destination unreachable with this code (`reject with icmp port-unreachable`), IPv4 only.
    case icmp(UInt8)
    /// ICMPv6 destination unreachable with this code, IPv6 only.
    case icmpv6(UInt8)
    /// A code of either family (`reject with icmpx admin-prohibited`).
    case icmpx(ICMPXCode)

    /// nft's `icmpx` codes, which mean one code in ICMP and its counterpart in ICMPv6.
    public enum ICMPXCode: String, CaseIterable, Sendable {
        /// Port unreachable (ICMP 3, ICMPv6 4).
        case portUnreachable = "port-unreachable"
        /// Administratively prohibited (ICMP 13, ICMPv6 1).
        case adminProhibited = "admin-prohibited"
        /// No route (ICMP 0, ICMPv6 0).
        case noRoute = "no-route"
        /// Host unreachable (ICMP 1, ICMPv6 3).
        case hostUnreachable = "host-unreachable"

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
    /// Duplicated, in parts per million.
    public var duplicatePPM = 0
    /// Sent at once rather than after the delay, in parts per million.
    public var reorderPPM = 0
    /// With one bit flipped, in parts per million.
    public var corruptPPM = 0
    /// How long each datagram is held.
    public var delay: TimeAmount = .zero
    /// The delay varies uniformly within ±jitter.
    public var jitter: TimeAmount = .zero
    /// Bits per second; 0: no rate limit.
    public var rate = 0
    /// Datagrams waiting for the rate before the tail is dropped.
    public var queue = 1000

    /// No impairment.
    public init() {}

    /// `lossPPM` as a probability.
    public var loss: Double { Double(lossPPM) / 1e6 }
    /// `duplicatePPM` as a probability.
    public var duplicate: Double { Double(duplicatePPM) / 1e6 }
    /// `reorderPPM` as a probability.
    public var reorder: Double { Double(reorderPPM) / 1e6 }
    /// `corruptPPM` as a probability.
    public var corrupt: Double { Double(corruptPPM) / 1e6 }
}

/// What a rule does once it matches.
public enum FilterStatement: Equatable, Sendable {
    /// `accept`: the datagram passes this chain (and its hook's base chains decide on).
    case accept
    /// `drop`: the datagram is dropped, silently.
    case drop
    /// `reject …`: dropped and answered.
    case reject(RejectKind)
    /// `jump CHAIN`: run that chain, then come back.
    case jump(String)
    /// `goto CHAIN`: run that chain and do not come back.
    case goto(String)
    /// `return`: back to the chain that jumped here (or the policy of a base chain).
    case `return`
    /// `continue`: go on with the next rule.
    case `continue`
    /// `log [prefix "…"]`: a trace line with the rule.
    case log(prefix: String?)
    /// `impair …`: the datagram meets a bad path (netem's model).
    case impair(ImpairmentSpec)
}
