import NIOCore
import TCPIPWire

/// What connection tracking concluded about one datagram, as `ct state` matches it.
public enum ConnectionState: Hashable, Sendable {
    /// The first datagram of a flow.
    case new
    /// A datagram of a flow that has seen traffic both ways.
    case established
    /// An ICMP error about a tracked flow.
    case related
    /// A datagram that fits no tracked flow it claims to belong to (a TCP segment outside the windows, say).
    case invalid
    /// A datagram the tracker does not follow.
    case untracked

    var bit: ConnectionStateSet {
        switch self {
        case .new: .new
        case .established: .established
        case .related: .related
        case .invalid: .invalid
        case .untracked: .untracked
        }
    }
}

/// A TCP connection's state as the tracker sees it from the middle, in the spirit of Linux's
/// `nf_conntrack_proto_tcp` (its `tcp_conntracks` states).
public enum TrackedTCPState: String, Hashable, Sendable {
    /// A SYN seen, nothing back yet (120 s).
    case synSent = "SYN_SENT"
    /// SYN and SYN-ACK seen (60 s).
    case synReceived = "SYN_RECV"
    /// The handshake completed (five days).
    case established = "ESTABLISHED"
    /// A FIN seen from one side, not yet acknowledged (120 s).
    case finWait = "FIN_WAIT"
    /// One side's FIN acknowledged, the other side still sending (60 s).
    case closeWait = "CLOSE_WAIT"
    /// FINs seen from both sides, the last not yet acknowledged (30 s).
    case lastAck = "LAST_ACK"
    /// Both FINs acknowledged (120 s).
    case timeWait = "TIME_WAIT"
    /// Reset (10 s).
    case close = "CLOSE"

    /// Linux's defaults (`nf_conntrack_tcp_timeout_*`).
    var timeout: TimeAmount {
        switch self {
        case .synSent: .seconds(120)
        case .synReceived: .seconds(60)
        case .established: .seconds(432_000)
        case .finWait: .seconds(120)
        case .closeWait: .seconds(60)
        case .lastAck: .seconds(30)
        case .timeWait: .seconds(120)
        case .close: .seconds(10)
        }
    }
}

/// The connection-tracking table: flows by their tuple, each with its state and a deadline; bounded,
/// as `nf_conntrack_max` bounds Linux's (a new flow that finds the table full of live flows is refused:
/// the datagram is dropped and counted).
public struct ConnectionTracker: Sendable {
    /// Per direction window tracking (Linux's `ip_ct_tcp_state`).
    struct Side: Sendable {
        /// Highest sequence number sent plus one (`td_end`).
        var end: UInt32 = 0
        /// Highest acknowledgment plus window seen from the other side (`td_maxend`).
        var maxEnd: UInt32 = 0
        /// Largest window advertised (`td_maxwin`), 0 before this side was seen.
        var maxWindow: UInt32 = 0
        var scale: UInt8 = 0
        var scaleOffered = false
        var finEnd: UInt32?
        /// Whether the other side acknowledged this side's FIN.
        var finAcknowledged = false
    }

    /// What a flow carries, with TCP's tracked state.
    public enum Kind: Sendable {
        /// A TCP connection in this state.
        case tcp(TrackedTCPState)
        /// A UDP flow.
        case udp
        /// An ICMP echo exchange.
        case icmp
    }

    /// One tracked flow.
    public struct Entry: Sendable {
        /// The tuple of the flow's first datagram.
        public var original: FlowTuple
        /// What it carries.
        public var kind: Kind
        /// Whether a datagram has been seen in the reply direction.
        public var replied = false
        /// When it expires unless more of it is seen.
        public var deadline: Instant
        var sides = (Side(), Side())
    }

    /// What the tracker did.
    public struct Counters: Sendable, Equatable {
        /// Flows created.
        public var created = 0
        /// New flows refused because the table was full of live ones (Linux: "table full, dropping packet").
        public var tableFull = 0
        /// Flows removed when their deadline passed.
        public var expired = 0
        /// Datagrams found `ConnectionState.invalid`.
        public var invalid = 0
    }

    /// The most flows tracked at once (`nf_conntrack_max`).
    public let capacity: Int
    /// What the tracker did so far.
    public private(set) var counters = Counters()
    private var index: [FlowTuple: Int] = [:]
    private var entries: [Entry?] = []
    private var free: [Int] = []
    private var lastSweep = Instant(nanoseconds: .min)

    /// How long a UDP flow seen one way lives (Linux's `nf_conntrack_udp_timeout`).
    public static let udpTimeout = TimeAmount.seconds(30)
    /// How long a UDP flow seen both ways lives (`nf_conntrack_udp_timeout_stream`).
    public static let udpStreamTimeout = TimeAmount.seconds(120)
    /// How long an ICMP echo exchange lives (`nf_conntrack_icmp_timeout`).
    public static let icmpTimeout = TimeAmount.seconds(30)
    /// Linux's `MAXACKWINDOW`: acknowledgments this far below the other side's `td_end` are accepted.
    static let minimumAckWindow: UInt32 = 66_000

    /// An empty table of at most `capacity` flows.
    public init(capacity: Int = 65_536) {
        precondition(capacity > 0, "ConnectionTracker: capacity must be positive")
        self.capacity = capacity
        index.reserveCapacity(min(capacity, 4096))
    }

    /// Flows tracked now.
    public var count: Int { index.count }

    /// The entry for a flow in either direction, if live.
    public func entry(for tuple: FlowTuple) -> Entry? {
        (index[tuple] ?? index[tuple.reversed]).flatMap { entries[$0] }
    }

    /// Tracks one datagram and returns its state. Returns nil when it would start a flow and the
    /// table is full of live ones: the caller drops it.
    public mutating func track(_ p: FilterPacket, now: Instant) -> ConnectionState? {
        let isICMP = p.protocolNumber == IPProtocolNumber.icmp || p.protocolNumber == IPProtocolNumber.icmpv6
        if isICMP, let quoted = p.quoted {
            // RFC 792 / RFC 4443 §2.4: an error quotes the datagram that caused it; it belongs to that flow.
            guard let slot = index[quoted] ?? index[quoted.reversed], let entry = entries[slot], entry.deadline > now else {
                counters.invalid += 1
                return .invalid
            }
            return .related
        }
        guard p.transportComplete else {
            counters.invalid += 1
            return .invalid
        }
        switch p.protocolNumber {
        case IPProtocolNumber.tcp, IPProtocolNumber.udp: break
        case IPProtocolNumber.icmp, IPProtocolNumber.icmpv6:
            guard ICMPKind.isEcho(p.icmpType, v4: p.protocolNumber == IPProtocolNumber.icmp) else { return .untracked }
        default:
            return .untracked
        }
        let tuple = p.flow
        if let slot = index[tuple] ?? index[tuple.reversed] {
            if let entry = entries[slot], entry.deadline > now {
                return update(slot, p, original: entry.original == tuple, now: now)
            }
            remove(slot)
            counters.expired += 1
        }
        return create(tuple, p, now: now)
    }

    private mutating func create(_ tuple: FlowTuple, _ p: FilterPacket, now: Instant) -> ConnectionState? {
        let kind: Kind
        switch p.protocolNumber {
        case IPProtocolNumber.tcp:
            // DEVIATION(Linux nf_conntrack_tcp_loose=1): only a SYN (without ACK) starts a connection;
            // a mid-stream segment of a flow we never saw is invalid, not picked up.
            guard p.tcpFlags.intersection([.syn, .ack, .rst, .fin]) == .syn else {
                counters.invalid += 1
                return .invalid
            }
            kind = .tcp(.synSent)
        case IPProtocolNumber.udp:
            kind = .udp
        default:
            // An echo reply with no request before it starts nothing.
            guard ICMPKind.isEchoRequest(p.icmpType, v4: p.protocolNumber == IPProtocolNumber.icmp) else {
                counters.invalid += 1
                return .invalid
            }
            kind = .icmp
        }
        if index.count >= capacity {
            sweep(now: now)
            guard index.count < capacity else {
                counters.tableFull += 1
                return nil
            }
        }
        var entry = Entry(original: tuple, kind: kind, deadline: now)
        if case .tcp = kind {
            var side = Side()
            let end = p.sequenceNumber &+ UInt32(truncatingIfNeeded: p.payloadLength) &+ 1
            side.end = end
            side.maxWindow = max(UInt32(p.window), 1)
            side.maxEnd = end
            side.scale = p.windowScale ?? 0
            side.scaleOffered = p.windowScale != nil
            entry.sides.0 = side
            entry.deadline = now + TrackedTCPState.synSent.timeout
        } else {
            entry.deadline = now + (kind.isICMP ? Self.icmpTimeout : Self.udpTimeout)
        }
        let slot: Int
        if let reused = free.popLast() {
            slot = reused
            entries[slot] = entry
        } else {
            slot = entries.count
            entries.append(entry)
        }
        index[tuple] = slot
        counters.created += 1
        return .new
    }

    private mutating func update(_ slot: Int, _ p: FilterPacket, original: Bool, now: Instant) -> ConnectionState {
        guard var entry = entries[slot] else { return .invalid }
        if !original { entry.replied = true }
        var result: ConnectionState = entry.replied ? .established : .new
        switch entry.kind {
        case .udp:
            entry.deadline = now + (entry.replied ? Self.udpStreamTimeout : Self.udpTimeout)
        case .icmp:
            entry.deadline = now + Self.icmpTimeout
        case .tcp(let state):
            if let next = tcpTransition(&entry, state, p, original: original) {
                entry.kind = .tcp(next)
                entry.deadline = now + next.timeout
                if next == .synSent || (next == .synReceived && original) { result = .new }
                if next == .close { entry.deadline = now + TrackedTCPState.close.timeout }
            } else {
                counters.invalid += 1
                result = .invalid
            }
        }
        entries[slot] = entry
        return result
    }

    /// The TCP state machine and window check: the next state, or nil for an invalid segment (which
    /// changes nothing).
    private func tcpTransition(_ entry: inout Entry, _ state: TrackedTCPState, _ p: FilterPacket, original: Bool) -> TrackedTCPState? {
        let flags = p.tcpFlags
        let syn = flags.contains(.syn), ack = flags.contains(.ack), fin = flags.contains(.fin), rst = flags.contains(.rst)
        var sender = original ? entry.sides.0 : entry.sides.1
        var receiver = original ? entry.sides.1 : entry.sides.0
        // The handshake: SYN, SYN-ACK, ACK.
        if syn {
            switch (state, original, ack) {
            case (.synSent, true, false), (.timeWait, true, false), (.close, true, false):
                // A retransmitted SYN, or a new connection reusing the tuple after the old one closed.
                if state != .synSent {
                    entry = Entry(original: entry.original, kind: .tcp(.synSent), deadline: entry.deadline)
                    var side = Side()
                    side.end = p.sequenceNumber &+ 1
                    side.maxEnd = side.end
                    side.maxWindow = max(UInt32(p.window), 1)
                    side.scale = p.windowScale ?? 0
                    side.scaleOffered = p.windowScale != nil
                    entry.sides.0 = side
                }
                return .synSent
            case (.synSent, false, true), (.synReceived, false, true):
                // The SYN-ACK must acknowledge the SYN exactly.
                guard p.acknowledgmentNumber == entry.sides.0.end else { return nil }
                var side = Side()
                side.end = p.sequenceNumber &+ 1
                side.maxEnd = side.end
                side.maxWindow = max(UInt32(p.window), 1)
                // RFC 7323 §2.2: window scaling only when both SYNs carry the option.
                if let scale = p.windowScale, entry.sides.0.scaleOffered {
                    side.scale = scale
                } else {
                    side.scale = 0
                    entry.sides.0.scale = 0
                }
                entry.sides.0.maxEnd = p.acknowledgmentNumber &+ max(UInt32(p.window), 1)
                entry.sides.1 = side
                return .synReceived
            default:
                return nil
            }
        }
        guard receiver.maxWindow != 0 || rst else { return nil }  // nothing but a SYN before the reply side is known
        // Linux tcp_in_window(): the segment must lie within what the receiver could accept, and its
        // acknowledgment within what the receiver has sent.
        let window = UInt32(p.window) << UInt32(sender.scale)
        let end = p.sequenceNumber &+ UInt32(truncatingIfNeeded: p.payloadLength) &+ (fin ? 1 : 0)
        let acknowledgment = ack ? p.acknowledgmentNumber : receiver.end
        let maxAckWindow = max(sender.maxWindow, Self.minimumAckWindow)
        let inWindow = Self.before(p.sequenceNumber, sender.maxEnd &+ 1)
            && !Self.before(end, sender.end &- receiver.maxWindow)
            && Self.before(acknowledgment, receiver.end &+ 1)
            && !Self.before(acknowledgment, receiver.end &- maxAckWindow)
        guard inWindow else { return nil }
        if rst {
            return .close
        }
        if sender.maxWindow < window { sender.maxWindow = window }
        if Self.before(sender.end, end) { sender.end = end }
        if receiver.maxWindow != 0, Self.before(sender.maxEnd, end) { receiver.maxWindow &+= end &- sender.maxEnd }
        if !Self.before(acknowledgment &+ window, receiver.maxEnd) {
            receiver.maxEnd = acknowledgment &+ window &+ (window == 0 ? 1 : 0)
        }
        if fin, sender.finEnd == nil { sender.finEnd = end }
        if ack, let finEnd = receiver.finEnd, !Self.before(acknowledgment, finEnd) { receiver.finAcknowledged = true }
        if original { entry.sides = (sender, receiver) } else { entry.sides = (receiver, sender) }
        let bothFINs = sender.finEnd != nil && receiver.finEnd != nil
        switch state {
        case .synSent:
            return nil
        case .synReceived:
            guard original && ack else { return .synReceived }
            return fin ? .finWait : .established
        case .established, .finWait, .closeWait, .lastAck:
            if bothFINs { return sender.finAcknowledged && receiver.finAcknowledged ? .timeWait : .lastAck }
            if sender.finEnd == nil && receiver.finEnd == nil { return .established }
            return sender.finAcknowledged || receiver.finAcknowledged ? .closeWait : .finWait
        case .timeWait:
            return .timeWait
        case .close:
            return .close
        }
    }

    /// `before(a, b)` of Linux: a precedes b in sequence space.
    static func before(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) < 0 }

    private mutating func remove(_ slot: Int) {
        guard let entry = entries[slot] else { return }
        index[entry.original] = nil
        entries[slot] = nil
        free.append(slot)
    }

    /// Drops every expired entry. Runs when the table is full, at most once per second of `now`.
    public mutating func sweep(now: Instant) {
        guard now - lastSweep >= .seconds(1) else { return }
        lastSweep = now
        for slot in entries.indices {
            if let entry = entries[slot], entry.deadline <= now {
                remove(slot)
                counters.expired += 1
            }
        }
    }

    /// The state of every TCP connection tracked, by its original tuple (for tests and listings).
    public func tcpState(of tuple: FlowTuple) -> TrackedTCPState? {
        guard let entry = entry(for: tuple), case .tcp(let state) = entry.kind else { return nil }
        return state
    }
}

extension ConnectionTracker.Kind {
    var isICMP: Bool {
        if case .icmp = self { return true }
        return false
    }
}

