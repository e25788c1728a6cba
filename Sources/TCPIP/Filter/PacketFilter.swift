import NIOCore
import TCPIPWire

/// What the rules decided for one datagram, for the caller to carry out.
public enum FilterVerdict: Equatable, Sendable {
    /// Let it pass.
    case accept
    /// Drop it, silently.
    case drop
    /// Drop it and answer: a TCP reset, or an ICMP (IPv4) / ICMPv6 destination unreachable with this code.
    case reject(RejectReply)
    /// Deliver it as `ImpairmentDecision` says: the caller holds, copies, corrupts or loses it.
    case impair(ImpairmentDecision)
}

/// The answer a rejected datagram gets.
public enum RejectReply: Equatable, Sendable {
    /// A TCP RST.
    case tcpReset
    /// An ICMP (IPv4) or ICMPv6 destination unreachable with this code.
    case icmpUnreachable(code: UInt8)
}

/// One datagram's fate under an `impair` statement, decided when it passed the rule.
public struct ImpairmentDecision: Equatable, Sendable {
    /// Lost: deliver nothing.
    public var lost = false
    /// Deliver a second copy at the same time.
    public var duplicate = false
    /// Flip this bit (counted from the first octet of the datagram, most significant bit first).
    public var corruptBit: Int?
    /// Hold it this long before delivery (delay, jitter and the rate's queue; zero for a reordered one).
    public var delay: TimeAmount = .zero

    /// Delivered at once, intact.
    public init() {}
}

/// A line of `log`: when, where and which rule.
public struct FilterLogRecord: Sendable, CustomStringConvertible {
    /// When the datagram passed the rule.
    public var now: Instant
    /// The hook it was at.
    public var hook: FilterHook
    /// The chain of the rule.
    public var chain: String
    /// The rule, as listed.
    public var rule: String
    /// The `log prefix`, if the rule gave one.
    public var prefix: String?
    /// The datagram's source address.
    public var source: IPAddress
    /// Its destination address.
    public var destination: IPAddress
    /// Its upper-layer protocol.
    public var protocolNumber: UInt8
    /// Its source port (0 when it has none).
    public var sourcePort: UInt16
    /// Its destination port (0 when it has none).
    public var destinationPort: UInt16
    /// Its length in octets.
    public var length: Int

    public var description: String {
        let ports = sourcePort != 0 || destinationPort != 0 ? " sport=\(sourcePort) dport=\(destinationPort)" : ""
        return "\(now) \(prefix ?? "")\(hook.rawValue) \(chain): src=\(source) dst=\(destination) proto=\(protocolNumber)"
            + "\(ports) len=\(length) rule: \(rule)"
    }
}

/// A ruleset at work: the rules compiled (named sets resolved to sorted ranges, jumps to chain
/// numbers), with their counters, rate-limit buckets, meters, random generator and connection tracker.
///
/// `evaluate` allocates nothing in steady state: a meter's first sight of an address and the
/// tracker's first datagram of a flow insert into tables (reserved ahead); `log` fills a bounded ring.
public struct PacketFilter: Sendable {
    struct CompiledRule: Sendable {
        var matches: [CompiledMatch]
        var statements: [CompiledStatement]
        var text: String
    }

    enum CompiledMatch: Sendable {
        case plain(FilterMatch)
        case address(ipv4: Bool, source: Bool, PrefixSet, negated: Bool)
        case port(protocolNumber: UInt8?, source: Bool, [ClosedRange<UInt16>], negated: Bool)
        case limit(bucket: Int, RateLimit)
        case meter(meter: Int, source: Bool, ipv4: Bool, RateLimit)
    }

    enum CompiledStatement: Sendable {
        case accept, drop, `return`, `continue`
        case reject(RejectKind)
        case jump(Int), goto(Int)
        case log(String?)
        case impair(ImpairmentSpec, queue: Int)
    }

    struct CompiledChain: Sendable {
        var name: String
        var family: TableFamily
        var base: FilterChain.Base?
        var firstRule: Int
        var rules: [CompiledRule]
    }

    struct Bucket: Sendable {
        var tokens: Int64
        var last: Instant
    }

    /// Departure times of the datagrams in an `impair rate` queue, oldest first.
    struct RateQueue: Sendable {
        var departures: CircularBuffer<Instant>
        var busyUntil = Instant.zero
    }

    /// Why a ruleset cannot run, with the name concerned.
    public enum CompileError: Error, Equatable, Sendable {
        /// A rule refers to a set its table does not have.
        case unknownSet(String)
        /// A rule uses a set of the wrong type (addresses where ports are matched, or the other way).
        case setTypeMismatch(String)
        /// A `jump` or `goto` to a chain its table does not have.
        case unknownChain(String)
        /// Jumps that come back to where they started, or nest deeper than `maximumJumpDepth`.
        case jumpLoop(String)
    }

    /// The ruleset running, its counters as they are now.
    public private(set) var ruleset: FilterRuleset
    private var chains: [CompiledChain] = []
    /// Base chains per hook, in priority order.
    private var hooks: [[Int]] = Array(repeating: [], count: FilterHook.allCases.count)
    private var packets: [UInt64] = []
    private var bytes: [UInt64] = []
    private var buckets: [Bucket] = []
    private var meters: [(size: Int, buckets: [AddressKey: Bucket])] = []
    private var queues: [RateQueue] = []
    private var jumpStack: [(chain: Int, rule: Int)] = []
    private var generator: SeededGenerator
    private var usesConnectionTracking = false
    /// The connection-tracking table `ct state` reads.
    public var tracker: ConnectionTracker
    /// The most log records kept before the oldest are dropped.
    public let logCapacity: Int
    /// The lines `log` statements wrote, oldest first.
    public private(set) var log: [FilterLogRecord] = []
    /// Log lines dropped because `logCapacity` were kept.
    public private(set) var logDropped = 0
    /// Datagrams dropped because the connection table was full.
    public private(set) var droppedTableFull = 0

    /// nft's limit on nested jumps.
    public static let maximumJumpDepth = 16

    /// Compiles `ruleset`; `seed` seeds the generator of `numgen` and `impair`. Throws what makes it
    /// unable to run.
    public init(_ ruleset: FilterRuleset, seed: UInt64 = 1, tracker: ConnectionTracker = ConnectionTracker(), logCapacity: Int = 256)
        throws(CompileError)
    {
        self.ruleset = ruleset
        self.generator = SeededGenerator(seed: seed)
        self.tracker = tracker
        self.logCapacity = logCapacity
        log.reserveCapacity(logCapacity)
        jumpStack.reserveCapacity(Self.maximumJumpDepth)
        try compile()
    }

    /// Whether some rule matches on `ct state`: then every datagram in and out must be tracked
    /// (`evaluate` at prerouting and output), whether those hooks have chains or not.
    public var tracksConnections: Bool { usesConnectionTracking }

    /// Whether any chain is attached to `hook`: a caller skips building a `FilterPacket` otherwise.
    public func hasRules(at hook: FilterHook) -> Bool { !hooks[Self.hookIndex(hook)].isEmpty }

    static func hookIndex(_ hook: FilterHook) -> Int { FilterHook.allCases.firstIndex(of: hook)! }

    private mutating func compile() throws(CompileError) {
        var chainNumbers: [String: Int] = [:]
        var ruleCount = 0
        for table in ruleset.tables {
            for chain in table.chains {
                chainNumbers["\(table.name)\u{0}\(chain.name)"] = chains.count
                chains.append(CompiledChain(name: chain.name, family: table.family, base: chain.base, firstRule: ruleCount, rules: []))
                ruleCount += chain.rules.count
            }
        }
        var number = 0
        for table in ruleset.tables {
            let sets = Dictionary(table.sets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for chain in table.chains {
                var compiled: [CompiledRule] = []
                for rule in chain.rules {
                    var matches: [CompiledMatch] = []
                    for match in rule.matches {
                        switch match {
                        case .address(let ipv4, let source, let operand, let negated):
                            let elements: [AddressElement]
                            switch operand {
                            case .prefix(let prefix): elements = [.prefix(prefix)]
                            case .anonymous(let list): elements = list
                            case .named(let name):
                                guard let set = sets[name] else { throw .unknownSet(name) }
                                guard set.type == (ipv4 ? .ipv4 : .ipv6) else { throw .setTypeMismatch(name) }
                                elements = set.addresses
                            }
                            matches.append(.address(ipv4: ipv4, source: source, PrefixSet(elements), negated: negated))
                        case .port(let proto, let source, let operand, let negated):
                            let ranges: [ClosedRange<UInt16>]
                            switch operand {
                            case .ranges(let list): ranges = list
                            case .named(let name):
                                guard let set = sets[name] else { throw .unknownSet(name) }
                                guard set.type == .service else { throw .setTypeMismatch(name) }
                                ranges = set.ports
                            }
                            matches.append(.port(protocolNumber: proto, source: source, Self.merged(ranges), negated: negated))
                        case .limit(let limit):
                            matches.append(.limit(bucket: buckets.count, limit))
                            buckets.append(Bucket(tokens: Self.capacity(limit), last: Instant(nanoseconds: .min)))
                        case .meter(_, let size, let source, let ipv4, let limit):
                            matches.append(.meter(meter: meters.count, source: source, ipv4: ipv4, limit))
                            var table: [AddressKey: Bucket] = [:]
                            table.reserveCapacity(min(size, 4096))
                            meters.append((size, table))
                        case .connectionState:
                            usesConnectionTracking = true
                            matches.append(.plain(match))
                        default:
                            matches.append(.plain(match))
                        }
                    }
                    var statements: [CompiledStatement] = []
                    for statement in rule.statements {
                        switch statement {
                        case .accept: statements.append(.accept)
                        case .drop: statements.append(.drop)
                        case .return: statements.append(.return)
                        case .continue: statements.append(.continue)
                        case .reject(let kind): statements.append(.reject(kind))
                        case .log(let prefix): statements.append(.log(prefix))
                        case .jump(let name), .goto(let name):
                            guard let target = chainNumbers["\(table.name)\u{0}\(name)"] else { throw .unknownChain(name) }
                            if case .jump = statement { statements.append(.jump(target)) } else { statements.append(.goto(target)) }
                        case .impair(let spec):
                            statements.append(.impair(spec, queue: queues.count))
                            queues.append(RateQueue(departures: CircularBuffer(initialCapacity: max(1, min(spec.queue, 4096)))))
                        }
                    }
                    compiled.append(CompiledRule(matches: matches, statements: statements, text: FilterListing.rule(rule, counters: false)))
                    number += 1
                }
                chains[chainNumbers["\(table.name)\u{0}\(chain.name)"]!].rules = compiled
            }
        }
        packets = Array(repeating: 0, count: number)
        bytes = Array(repeating: 0, count: number)
        // Counters carried over from a listing that was parsed back.
        var flat = 0
        for table in ruleset.tables {
            for chain in table.chains {
                for rule in chain.rules {
                    packets[flat] = rule.packets
                    bytes[flat] = rule.bytes
                    flat += 1
                }
            }
        }
        for (number, chain) in chains.enumerated() {
            guard let base = chain.base else { continue }
            hooks[Self.hookIndex(base.hook)].append(number)
        }
        for index in hooks.indices {
            hooks[index].sort { (chains[$0].base!.priority, $0) < (chains[$1].base!.priority, $1) }
        }
        try checkLoops()
    }

    /// A jump graph with a cycle would loop forever; nft refuses it when loading, as we do.
    private func checkLoops() throws(CompileError) {
        var state = Array(repeating: 0, count: chains.count)  // 0 unseen, 1 on the path, 2 done
        func visit(_ chain: Int, depth: Int) -> Bool {
            if state[chain] == 1 || depth > Self.maximumJumpDepth { return false }
            if state[chain] == 2 { return true }
            state[chain] = 1
            for rule in chains[chain].rules {
                for statement in rule.statements {
                    switch statement {
                    case .jump(let target), .goto(let target):
                        if !visit(target, depth: depth + 1) { return false }
                    default: break
                    }
                }
            }
            state[chain] = 2
            return true
        }
        for chain in chains.indices where !visit(chain, depth: 0) {
            throw .jumpLoop(chains[chain].name)
        }
    }

    static func capacity(_ limit: RateLimit) -> Int64 {
        cost(limit) * Int64(max(limit.burst, 1))
    }

    static func cost(_ limit: RateLimit) -> Int64 {
        limit.unit.nanoseconds / Int64(max(limit.rate, 1))
    }

    // MARK: - Evaluation

    /// Runs the base chains attached to `hook` (in priority order, those whose table family admits
    /// the packet) and returns the verdict. `accept` in one base chain passes the packet on to the
    /// next; drop, reject and impair end it. Connection tracking runs once per packet, the first time
    /// a hook with `ct` rules sees it (its result is kept in `packet.connectionState`).
    public mutating func evaluate(_ packet: inout FilterPacket, hook: FilterHook, now: Instant) -> FilterVerdict {
        // Tracking comes first, at a hook with no chains too: as Linux's conntrack at prerouting and
        // output, it must see both directions of a flow to know it is established.
        if usesConnectionTracking && packet.connectionState == nil {
            guard let state = tracker.track(packet, now: now) else {
                droppedTableFull += 1
                return .drop
            }
            packet.connectionState = state
        }
        let chainsAtHook = hooks[Self.hookIndex(hook)]
        guard !chainsAtHook.isEmpty else { return .accept }
        let v4 = packet.isIPv4
        for chain in chainsAtHook where chains[chain].family.admits(v4: v4) {
            let verdict = run(chain, &packet, hook: hook, now: now)
            if verdict != .accept { return verdict }
        }
        return .accept
    }

    private mutating func run(_ base: Int, _ packet: inout FilterPacket, hook: FilterHook, now: Instant) -> FilterVerdict {
        jumpStack.removeAll(keepingCapacity: true)
        var chain = base
        var ruleIndex = 0
        while true {
            guard ruleIndex < chains[chain].rules.count else {
                // The end of a user chain returns; the end of the base chain applies its policy.
                if let (caller, next) = jumpStack.popLast() {
                    chain = caller
                    ruleIndex = next
                    continue
                }
                return chains[base].base?.policyAccepts == false ? .drop : .accept
            }
            let number = chains[chain].firstRule + ruleIndex
            ruleIndex += 1
            guard matches(chains[chain].rules[ruleIndex - 1].matches, packet, now: now) else { continue }
            packets[number] &+= 1
            bytes[number] &+= UInt64(packet.length)
            let statementCount = chains[chain].rules[ruleIndex - 1].statements.count
            statements: for position in 0..<statementCount {
                switch chains[chain].rules[ruleIndex - 1].statements[position] {
                case .accept: return .accept
                case .drop: return .drop
                case .reject(let kind): return .reject(Self.reply(kind, packet))
                case .continue: break statements
                case .log(let prefix):
                    record(FilterLogRecord(
                        now: now, hook: hook, chain: chains[chain].name, rule: chains[chain].rules[ruleIndex - 1].text,
                        prefix: prefix, source: packet.source, destination: packet.destination,
                        protocolNumber: packet.protocolNumber, sourcePort: packet.sourcePort,
                        destinationPort: packet.destinationPort, length: packet.length))
                case .jump(let target):
                    guard jumpStack.count < Self.maximumJumpDepth else { return .drop }
                    jumpStack.append((chain, ruleIndex))
                    chain = target
                    ruleIndex = 0
                    break statements
                case .goto(let target):
                    chain = target
                    ruleIndex = 0
                    break statements
                case .return:
                    if let (caller, next) = jumpStack.popLast() {
                        chain = caller
                        ruleIndex = next
                    } else {
                        return chains[base].base?.policyAccepts == false ? .drop : .accept
                    }
                    break statements
                case .impair(let spec, let queue):
                    return .impair(impairment(spec, queue: queue, length: packet.length, now: now))
                }
            }
        }
    }

    private mutating func record(_ entry: FilterLogRecord) {
        if log.count >= logCapacity {
            logDropped += 1
            return
        }
        log.append(entry)
    }

    /// Hands over the log lines gathered so far.
    public mutating func drainLog() -> [FilterLogRecord] {
        defer { log.removeAll(keepingCapacity: true) }
        return log
    }

    static func reply(_ kind: RejectKind, _ packet: FilterPacket) -> RejectReply {
        let v4 = packet.isIPv4
        switch kind {
        case .default:
            // nft: `reject` answers TCP with ICMP port unreachable too; only `with tcp reset` resets.
            return .icmpUnreachable(code: v4 ? 3 : 4)
        case .tcpReset:
            return packet.protocolNumber == IPProtocolNumber.tcp ? .tcpReset : .icmpUnreachable(code: v4 ? 3 : 4)
        case .icmp(let code), .icmpv6(let code):
            return .icmpUnreachable(code: code)
        case .icmpx(let code):
            return .icmpUnreachable(code: v4 ? code.v4 : code.v6)
        }
    }

    private mutating func matches(_ list: [CompiledMatch], _ packet: FilterPacket, now: Instant) -> Bool {
        for match in list {
            guard holds(match, packet, now: now) else { return false }
        }
        return true
    }

    private mutating func holds(_ match: CompiledMatch, _ p: FilterPacket, now: Instant) -> Bool {
        switch match {
        case .address(let ipv4, let source, let set, let negated):
            guard p.isIPv4 == ipv4 else { return false }
            return set.contains(source ? p.source : p.destination) != negated
        case .port(let proto, let source, let ranges, let negated):
            if let proto {
                guard p.protocolNumber == proto else { return false }
            } else {
                guard p.protocolNumber == IPProtocolNumber.tcp || p.protocolNumber == IPProtocolNumber.udp else { return false }
            }
            guard p.transportComplete else { return false }
            let port = source ? p.sourcePort : p.destinationPort
            return Self.contains(ranges, port) != negated
        case .limit(let bucket, let limit):
            return take(&buckets[bucket], limit, now: now) != limit.over
        case .meter(let meter, let source, let ipv4, let limit):
            guard p.isIPv4 == ipv4 else { return false }
            let key = AddressKey(source ? p.source : p.destination)
            if var bucket = meters[meter].buckets[key] {
                let passed = take(&bucket, limit, now: now)
                meters[meter].buckets[key] = bucket
                return passed != limit.over
            }
            guard meters[meter].buckets.count < meters[meter].size else { return limit.over }  // full: as over the rate
            var bucket = Bucket(tokens: Self.capacity(limit), last: now)
            let passed = take(&bucket, limit, now: now)
            meters[meter].buckets[key] = bucket
            return passed != limit.over
        case .plain(let plain):
            return holds(plain, p)
        }
    }

    private mutating func holds(_ match: FilterMatch, _ p: FilterPacket) -> Bool {
        switch match {
        case .family(let ipv4):
            return p.isIPv4 == ipv4
        case .protocolNumber(let numbers, let negated):
            return numbers.contains(p.protocolNumber) != negated
        case .tcpFlags(let mask, let value, let equal):
            guard p.protocolNumber == IPProtocolNumber.tcp, p.transportComplete else { return false }
            return (p.tcpFlags.intersection(mask) == value) == equal
        case .icmpType(let ipv4, let types, let negated):
            guard p.protocolNumber == (ipv4 ? IPProtocolNumber.icmp : IPProtocolNumber.icmpv6), p.transportComplete else { return false }
            return types.contains(p.icmpType) != negated
        case .icmpCode(let ipv4, let codes, let negated):
            guard p.protocolNumber == (ipv4 ? IPProtocolNumber.icmp : IPProtocolNumber.icmpv6), p.transportComplete else { return false }
            return codes.contains(p.icmpCode) != negated
        case .length(let comparison, let range):
            return comparison.holds(p.length, range)
        case .linkName(let input, let names, let negated):
            guard let link = input ? p.inputLink : p.outputLink else { return negated }
            return names.contains { Self.linkMatches($0, link) } != negated
        case .connectionState(let states, let negated):
            return states.contains((p.connectionState ?? .untracked).bit) != negated
        case .random(let modulus, let comparison, let value):
            let draw = Int(generator.next() % UInt64(max(modulus, 1)))
            return comparison.holds(draw, value...value)
        case .address, .port, .limit, .meter:
            preconditionFailure("compiled matches are evaluated before")
        }
    }

    static func linkMatches(_ pattern: String, _ name: String) -> Bool {
        if pattern.hasSuffix("*") { return name.hasPrefix(pattern.dropLast()) }
        return pattern == name
    }

    /// Sorted, merged, disjoint.
    static func merged(_ ranges: [ClosedRange<UInt16>]) -> [ClosedRange<UInt16>] {
        var result: [ClosedRange<UInt16>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, Int(range.lowerBound) <= Int(last.upperBound) + 1 {
                result[result.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }

    /// Binary search in sorted disjoint ranges.
    static func contains(_ ranges: [ClosedRange<UInt16>], _ port: UInt16) -> Bool {
        var lower = 0, upper = ranges.count
        while lower < upper {
            let middle = (lower + upper) / 2
            if port < ranges[middle].lowerBound { upper = middle } else { lower = middle + 1 }
        }
        return lower > 0 && ranges[lower - 1].contains(port)
    }

    /// A token bucket: tokens are nanoseconds of credit, one packet costs `unit / rate`.
    private func take(_ bucket: inout Bucket, _ limit: RateLimit, now: Instant) -> Bool {
        let capacity = Self.capacity(limit)
        if bucket.last.nanoseconds == .min {
            bucket.last = now
        } else if now > bucket.last {
            let earned = (now - bucket.last).nanoseconds
            bucket.tokens = min(capacity, bucket.tokens &+ min(earned, capacity))
            bucket.last = now
        }
        let cost = Self.cost(limit)
        guard bucket.tokens >= cost else { return false }
        bucket.tokens -= cost
        return true
    }

    /// netem's order, as `FaultInjector` decides it: lost; else corrupted, duplicated; delayed (with
    /// jitter) unless reordered — a reordered datagram is sent at once, overtaking the delayed ones;
    /// then the rate's queue, whose tail is dropped when full.
    private mutating func impairment(_ spec: ImpairmentSpec, queue: Int, length: Int, now: Instant) -> ImpairmentDecision {
        var decision = ImpairmentDecision()
        if spec.lossPPM > 0, Int.random(in: 0..<1_000_000, using: &generator) < spec.lossPPM {
            decision.lost = true
            return decision
        }
        if spec.corruptPPM > 0, Int.random(in: 0..<1_000_000, using: &generator) < spec.corruptPPM, length > 0 {
            decision.corruptBit = Int.random(in: 0..<(length * 8), using: &generator)
        }
        if spec.duplicatePPM > 0, Int.random(in: 0..<1_000_000, using: &generator) < spec.duplicatePPM {
            decision.duplicate = true
        }
        var delay = spec.delay
        if spec.jitter > .zero {
            let jitter = Int64.random(in: -spec.jitter.nanoseconds...spec.jitter.nanoseconds, using: &generator)
            delay = .nanoseconds(max(0, delay.nanoseconds &+ jitter))
        }
        if spec.reorderPPM > 0, Int.random(in: 0..<1_000_000, using: &generator) < spec.reorderPPM {
            delay = .zero
        }
        if spec.rate > 0 {
            // Modified in place: a copy of the queue would copy its storage.
            while let first = queues[queue].departures.first, first <= now { queues[queue].departures.removeFirst() }
            if queues[queue].departures.count >= spec.queue {
                decision.lost = true
                return decision
            }
            let transmit = Int64(length) * 8 * 1_000_000_000 / Int64(spec.rate)
            let start = max(now, queues[queue].busyUntil)
            let departure = start + .nanoseconds(transmit)
            queues[queue].busyUntil = departure
            queues[queue].departures.append(departure)
            delay = delay + (departure - now)
        }
        decision.delay = delay
        return decision
    }

    // MARK: - Listing

    /// The ruleset with the counters as they stand now.
    public var currentRuleset: FilterRuleset {
        var result = ruleset
        var flat = 0
        for t in result.tables.indices {
            for c in result.tables[t].chains.indices {
                for r in result.tables[t].chains[c].rules.indices {
                    result.tables[t].chains[c].rules[r].packets = packets[flat]
                    result.tables[t].chains[c].rules[r].bytes = bytes[flat]
                    flat += 1
                }
            }
        }
        return result
    }

    /// `nft list ruleset`: the rules with their counters.
    public func listing() -> String { FilterListing.ruleset(currentRuleset) }
}
