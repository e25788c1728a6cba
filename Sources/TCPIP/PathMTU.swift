import NIOCore
import TCPIPWire

/// Path MTU discovery: what the stack remembers of each destination's path MTU (RFC 1191 for
/// IPv4, RFC 8201 for IPv6) and how it may change.
public struct PathMTUConfiguration: Sendable {
    /// How long a lowered estimate is kept before the stack tries the link MTU again. RFC 1191 §6.3:
    /// "The recommended setting for this timer is twice its minimum value (10 minutes)"; RFC 8201
    /// §4 likewise ("at least 5 minutes", 10 recommended). Linux's `mtu_expires` is the same 600 s.
    /// When an estimate ages out, the connections it lowered get their MSS back. RFC 1191 §6.3 asks
    /// for a way to set it to "infinity": `.nanoseconds(.max)` never forgets.
    public var ageing: TimeAmount = .seconds(600)
    /// Most destinations remembered at once; beyond it the entry closest to expiry is forgotten
    /// first, so a flood of valid errors for many destinations costs bounded memory.
    public var cacheLimit: Int = 4096
    /// The lowest IPv4 path MTU believed. RFC 1191 §3: "a host MUST never reduce its estimate of
    /// the Path MTU below 68 octets"; we stop at 576, the datagram every host must accept (RFC 1122
    /// §3.3.3, RFC 791), as Linux stops at `min_pmtu` (552): an ICMP error claiming a smaller MTU
    /// would otherwise cut every segment to a few octets. Configurable down to 68.
    public var minimumIPv4: Int = 576
    /// RFC 8201 §4: "A node MUST NOT reduce its estimate of the Path MTU below the IPv6 minimum
    /// link MTU" (1280, RFC 8200 §5). Not configurable.
    public static let minimumIPv6 = 1280

    /// The defaults of each property (Linux's ageing, the minimums above).
    public init() {}
}

/// TCP's packetization-layer path MTU discovery for black holes (RFC 4821; Linux's
/// `tcp_mtu_probing=1`): when full-sized segments see repeated retransmission timeouts and no ICMP
/// error arrives, the MSS falls back, then grows again by probing.
public struct MTUProbing: Sendable, Hashable {
    /// Consecutive retransmission timeouts after which a black hole is suspected (Linux:
    /// `tcp_retries1`, 3). RFC 4821 §7.5 leaves the threshold to the implementation.
    public var blackHoleTimeouts: Int = 3
    /// The MSS of the first fall-back (Linux's `tcp_base_mss`, 1024); later ones halve it, down to
    /// the family's minimum path MTU.
    public var baseMSS: Int = 1024
    /// How long after a search ends the next one starts (Linux's `tcp_probe_interval`, 600 s;
    /// RFC 4821 §7.7 suggests 10 minutes).
    public var interval: TimeAmount = .seconds(600)
    /// A search ends when the bounds are this close (Linux's `tcp_probe_threshold`, 8).
    public var threshold: Int = 8

    /// Linux's defaults (`tcp_mtu_probing` = 1, `tcp_base_mss` = 1024).
    public init() {}
}

/// What the stack knows of each destination's path MTU: one entry per remote address whose path
/// was found smaller than the link (RFC 1191 §5: "the PMTU ... associated with the destination").
/// Entries age out (RFC 1191 §6.3) and are bounded in number.
struct PathMTUCache {
    struct Entry {
        var mtu: Int
        /// When this estimate is forgotten (RFC 1191 §6.3) and the link MTU is tried again.
        var expires: Instant
    }

    private(set) var entries: [IPAddress: Entry] = [:]
    /// Every estimate recorded, in order of expiry (the ageing is one constant and time only moves
    /// forward, so that is the order they were recorded in): what `expire(now:)` walks and
    /// `nextExpiry` reads in O(1). A record whose entry was lowered again since is stale and skipped.
    private var expiries = CircularBuffer<(destination: IPAddress, expires: Instant)>()
    let configuration: PathMTUConfiguration

    init(_ configuration: PathMTUConfiguration) {
        self.configuration = configuration
    }

    var count: Int { entries.count }

    /// The path MTU to `destination`, if it is known to be smaller than the link's and has not aged out.
    /// Inlined up to the empty test: every open asks, and the cache is nearly always empty.
    @inline(__always)
    mutating func mtu(to destination: IPAddress, now: Instant) -> Int? {
        entries.isEmpty ? nil : storedMTU(to: destination, now: now)
    }

    @inline(never)
    private mutating func storedMTU(to destination: IPAddress, now: Instant) -> Int? {
        guard let entry = entries[destination] else { return nil }
        guard now < entry.expires else {
            // RFC 1191 §6.3: the estimate is stale; the link MTU is tried again.
            entries[destination] = nil
            return nil
        }
        return entry.mtu
    }

    /// Records `mtu` for `destination` if it lowers what was known (RFC 1191 §6.1: "MUST NOT increase
    /// its estimate of the Path MTU in response to the contents of a Datagram Too Big message").
    /// Returns whether the estimate changed.
    mutating func lower(_ destination: IPAddress, to mtu: Int, now: Instant) -> Bool {
        if let known = self.mtu(to: destination, now: now), known <= mtu { return false }
        if entries[destination] == nil, entries.count >= max(1, configuration.cacheLimit) {
            // Full: forget the estimate that would age out first.
            if let oldest = entries.min(by: { $0.value.expires < $1.value.expires })?.key {
                entries[oldest] = nil
            }
        }
        let expires = now + configuration.ageing
        entries[destination] = Entry(mtu: mtu, expires: expires)
        // An estimate that never ages (the "infinity" of RFC 1191 §6.3) is no deadline to wake for.
        guard expires != .distantFuture else { return true }
        expiries.append((destination, expires))
        if expiries.count > 2 * max(entries.count, configuration.cacheLimit, 16) {
            // Lowered again and again: the stale records go, the live ones stay in order.
            expiries = CircularBuffer(
                entries.map { (destination: $0.key, expires: $0.value.expires) }.sorted { $0.expires < $1.expires })
        }
        return true
    }

    /// When the oldest estimate ages out (a stale record may make it early: one wakeup that finds nothing).
    var nextExpiry: Instant? { expiries.first?.expires }

    /// Whether any estimate waits to age out: the inlined test `nextExpiry` is worth asking after.
    var hasExpiries: Bool { !expiries.isEmpty }

    /// RFC 1191 §6.3: forgets every estimate that has not been lowered for `configuration.ageing` at
    /// `now`, and returns the destinations whose estimate went, for their connections to be told.
    /// (Also those whose entry a lookup already dropped as stale, or the bound evicted: their
    /// connections still hold the lower MTU.)
    mutating func expire(now: Instant) -> [IPAddress] {
        var expired: [IPAddress] = []
        while let (destination, expires) = expiries.first, expires <= now {
            expiries.removeFirst()
            if let entry = entries[destination] {
                guard entry.expires == expires else { continue }
                entries[destination] = nil
            }
            expired.append(destination)
        }
        return expired
    }

    /// RFC 1191 §7 table 7-1: the plateaus, highest first, for a router that reports no next-hop MTU.
    static let plateaus = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68]

    /// RFC 1191 §5: "the PMTU should be reduced to the next lower plateau" below the length of the
    /// datagram that was too big.
    static func plateau(below totalLength: Int) -> Int {
        plateaus.first { $0 < totalLength } ?? 68
    }
}

extension IPAddress {
    /// The IP header TCP's segments carry in this family (no options, no extension headers).
    var ipHeaderLength: Int {
        if case .v6 = self { 40 } else { 20 }
    }

    /// The smallest path MTU believed for this family (`PathMTUConfiguration`).
    func minimumPathMTU(_ configuration: PathMTUConfiguration) -> Int {
        if case .v6 = self { PathMTUConfiguration.minimumIPv6 } else { max(68, configuration.minimumIPv4) }
    }
}
