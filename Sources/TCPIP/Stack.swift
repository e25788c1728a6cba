import NIOCore
import TCPIPWire

/// A TCP/IP stack with no I/O of its own: datagrams go in through `receive`, come out through
/// `nextPacketToSend`, and time passes only when the caller says so.
///
/// ```swift
/// let stack = Stack(configuration)
/// stack.receive(datagram, now: now)                  // one IP datagram in
/// stack.advanceTime(to: now)                         // run timers that are due
/// while let out = stack.nextPacketToSend() { link.send(out, now: now) }
/// stack.nextDeadline                                 // when to call again without input
/// ```
///
/// A stack has a single owner (one thread, one event loop); it takes no locks.
public final class Stack {
    /// What the stack was made with; `reconfigure` changes the TCP values that may change later.
    public var configuration: StackConfiguration { _read { yield storedConfiguration } }
    @exclusivity(unchecked) var storedConfiguration: StackConfiguration
    // The state every packet touches is exempt from dynamic exclusivity checks: the stack has one
    // owner, and a class property's check (a thread-local access set, per access) cost 15% of a
    // cookie SYN's time under perf. The accesses that do overlap are to different properties (a
    // connection in `connections` runs with `io` inout), which Swift allows anyway.
    @exclusivity(unchecked) var io: StackIO
    @exclusivity(unchecked) var connections = Slab<TCPConnection>()
    // The two event queues besides `io`'s that `nextEvent` asks on every call, next to the slab it
    // reads: declared with the UDP and intercept state, they sat on lines of the object that nothing
    // else touched in a TCP connection's life, and that call missed there once a connection.
    /// UDP endpoints with something to read since the application last looked.
    @exclusivity(unchecked) var udpEvents = CircularBuffer<SlabHandle>(initialCapacity: 4)
    /// Requests, flows, expired flows and echo requests for the application, oldest first (intercept mode).
    @exclusivity(unchecked) var interceptEvents = CircularBuffer<StackEvent>(initialCapacity: 4)
    @exclusivity(unchecked) var connectionTable: [FourTuple: SlabHandle] = [:] {
        // Any change may make the remembered answer wrong. (A didSet that does not read the old
        // value lets the dictionary be modified in place.)
        didSet { lastConnectionLookup = nil }
    }
    /// The answer of the last `connectionTable` lookup (see `connectionHandle(for:)`).
    @exclusivity(unchecked) var lastConnectionLookup: (tuple: FourTuple, handle: SlabHandle)?
    @exclusivity(unchecked) var listeners = Slab<Listener>()
    @exclusivity(unchecked) var listenerTable: [ListenerKey: SlabHandle] = [:]
    @exclusivity(unchecked) var halfOpen = Slab<HalfOpenConnection>()
    @exclusivity(unchecked) var halfOpenTable: [FourTuple: SlabHandle] = [:]
    @exclusivity(unchecked) var timers = TimerHeap()
    /// TIME-WAIT connections let go of by their applications (Stack+TimeWait.swift).
    @exclusivity(unchecked) var timeWait = Slab<TimeWaitConnection>()
    @exclusivity(unchecked) var timeWaitTable: [FourTuple: SlabHandle] = [:]
    @exclusivity(unchecked) var timeWaitExpiries = CircularBuffer<TimeWaitExpiry>() {
        // `timeWaitExpiries.first?.deadline`, kept for `nextDeadline`: asked after every step of a
        // driver's loop, where `first` was a call into CircularBuffer's specialization (95
        // instructions a connection in `bench connrate`, whose TIME-WAIT queue is never empty).
        didSet { nextTimeWaitExpiry = timeWaitExpiries.first?.deadline }
    }
    /// The deadline at the head of `timeWaitExpiries` (nil when it is empty).
    @exclusivity(unchecked) private(set) var nextTimeWaitExpiry: Instant?
    /// Empty scoreboard storage of closed connections, for new ones: a connection's first segment
    /// (even only its SYN-ACK's ACK, or its FIN) gives its scoreboard an entry, and that array was
    /// one malloc and free per connection. At most `recycledScoreboardLimit`, each small.
    @exclusivity(unchecked) var recycledScoreboards: [[Scoreboard.Segment]] = []
    static var recycledScoreboardLimit: Int { 64 }
    @exclusivity(unchecked) var random: SeededGenerator
    let initialSequenceNumbers: InitialSequenceNumberGenerator
    @exclusivity(unchecked) var synCookies: SYNCookies
    /// RFC 6056 Algorithm 4 (EphemeralPorts.swift).
    @exclusivity(unchecked) var ephemeralPorts: EphemeralPorts
    /// `configuration.tcp`, shared by every connection's TCB.
    let sharedTCPConfiguration: SharedTCPConfiguration
    /// `configuration.addresses`, for the question every datagram asks.
    let localAddresses: LocalAddresses
    /// Running totals of the storage connections' queues pin (Stack+Memory.swift keeps them).
    @exclusivity(unchecked) var pinned = PinnedTotals()
    /// Path MTUs learnt from ICMP, per destination (RFC 1191 §5, RFC 8201 §5.2; Stack+ICMPErrors.swift).
    @exclusivity(unchecked) var pathMTUCache: PathMTUCache
    /// UDP endpoints (Stack+UDP.swift), found through `udpTable`; `udpPortOwners` lists the addresses
    /// bound on each port (nil: every address), for the overlap check of a bind.
    @exclusivity(unchecked) var udpEndpoints = Slab<UDPEndpoint>()
    @exclusivity(unchecked) var udpTable: [UDPKey: SlabHandle] = [:]
    @exclusivity(unchecked) var udpPortOwners: [UInt16: [IPAddress?]] = [:]
    /// The token bucket of the ICMP errors we send (Stack+ICMP.swift).
    @exclusivity(unchecked) var icmpErrorLimiter: ICMPRateLimiter
    /// Datagrams being reassembled from fragments (Stack+Fragments.swift). Unchecked like the rest:
    /// `nextDeadline` reads it on every turn of the caller's loop.
    @exclusivity(unchecked) var reassembly: FragmentReassembly
    /// Identifications of the datagrams we fragment (RFC 7739).
    @exclusivity(unchecked) var fragmentIdentifiers: FragmentIdentifiers
    /// Intercept mode (`StackConfiguration.interception`, Stack+Interception.swift): every address is
    /// ours. Read where a normal stack would drop a datagram as not for us, or answer a segment as
    /// for no connection — never on the path of an established connection.
    let interceptsEverything: Bool
    /// Connection requests held without a SYN-ACK, found by 4-tuple.
    @exclusivity(unchecked) var requests = Slab<PendingConnectionRequest>()
    @exclusivity(unchecked) var requestTable: [FourTuple: SlabHandle] = [:]
    /// UDP endpoints that are intercepted flows.
    @exclusivity(unchecked) var udpFlows = 0
    /// The TCP configurations of connections accepted with one of their own (`accept(_:configuration:now:)`),
    /// kept alive as long as their TCBs point to them.
    @exclusivity(unchecked) var acceptedConfigurations: [SlabHandle: SharedTCPConfiguration] = [:]
    /// The installed rules (Stack+Filter.swift); nil when none are.
    @exclusivity(unchecked) var filter: PacketFilter?
    /// One bit per hook with chains on it (`FilterHook.bit`): 0 when no rules are installed, which
    /// is all the input and output paths look at then.
    @exclusivity(unchecked) var filterHooks: UInt8 = 0
    /// The latest time an entry point was given while rules are installed (`noteFilterTime`).
    var filterNow = Instant.zero
    /// Datagrams `impair` rules hold back, by release time; then those released on the way out or
    /// through, waiting for `nextPacketToSend` and `nextForwardedPacket`.
    @exclusivity(unchecked) var filterHeld = HeldDatagramHeap()
    var filterHeldOrder: UInt64 = 0
    var filterReady = CircularBuffer<ReadyDatagram>()
    var filterForwardReady = CircularBuffer<ReadyDatagram>()
    /// Transit datagrams a router's prerouting held, due: they go back to its routing decision.
    var filterTransitReady = CircularBuffer<ReadyDatagram>()
    static var outputHookBits: UInt8 { FilterHook.output.bit | FilterHook.postrouting.bit }
    static var inputHookBits: UInt8 { FilterHook.prerouting.bit | FilterHook.input.bit }
    /// TCP Fast Open: the server's cookie key (Stack+FastOpen.swift).
    var fastOpenState: FastOpenState

    struct ListenerKey: Hashable {
        var address: IPAddress?
        var port: UInt16
    }

    /// A stack made of `configuration`: its addresses, limits and knobs, and its secrets from
    /// `configuration.seed` or the system's generator.
    public init(_ configuration: StackConfiguration) {
        self.storedConfiguration = configuration
        self.localAddresses = LocalAddresses(configuration.addresses)
        self.sharedTCPConfiguration = SharedTCPConfiguration(configuration.tcp)
        self.pathMTUCache = PathMTUCache(configuration.tcp.pathMTU)
        self.io = StackIO(checksumOffload: configuration.checksumOffload || configuration.transmitChecksumOffload)
        self.io.timeToLive = configuration.timeToLive
        self.interceptsEverything = configuration.interception != nil
        if let seed = configuration.seed {
            // Reproducible: streams of their own from the same seed, so they leave the other draws
            // as they were.
            self.synCookies = SYNCookies(generator: SeededGenerator(seed: seed ^ 0x5359_4E43_4F4F_4B49))
            self.io.challengeAcks = ChallengeAckLimiter(
                limit: configuration.tcp.challengeAckLimit,
                generator: SeededGenerator(seed: seed ^ 0x5246_4335_3936_3137))
            var ports = SeededGenerator(seed: seed ^ 0x5246_4336_3035_3634)
            self.ephemeralPorts = EphemeralPorts(range: configuration.ephemeralPorts, generator: &ports)
            var random = SeededGenerator(seed: seed)
            self.initialSequenceNumbers = InitialSequenceNumberGenerator(generator: &random)
            self.random = random
            self.fragmentIdentifiers = FragmentIdentifiers(generator: SeededGenerator(seed: seed ^ 0x4950_4652_4147_4944))
            var fastOpenKeys = SeededGenerator(seed: seed ^ 0x5446_4F5F_4B45_5953)
            self.fastOpenState = FastOpenState(configuration.tcp.fastOpen, generator: &fastOpenKeys)
        } else {
            // Secure by default: every stream keyed from the OS's cryptographic generator, 256 bits
            // each. The ISN key (which also keys the timestamp offsets) has a stream of its own,
            // because `random`'s outputs may be seen on the wire and xoshiro is not a cryptographic
            // generator: nothing an attacker observes comes from a stream that also made a secret.
            var system = SystemRandomNumberGenerator()
            self.synCookies = SYNCookies(generator: SeededGenerator(entropyFrom: &system))
            self.io.challengeAcks = ChallengeAckLimiter(
                limit: configuration.tcp.challengeAckLimit, generator: SeededGenerator(entropyFrom: &system))
            var ports = SeededGenerator(entropyFrom: &system)
            self.ephemeralPorts = EphemeralPorts(range: configuration.ephemeralPorts, generator: &ports)
            self.initialSequenceNumbers = InitialSequenceNumberGenerator(generator: &system)
            self.random = SeededGenerator(entropyFrom: &system)
            self.fragmentIdentifiers = FragmentIdentifiers(generator: SeededGenerator(entropyFrom: &system))
            self.fastOpenState = FastOpenState(configuration.tcp.fastOpen, generator: &system)
        }
        self.io.fastOpenCookies.limit = configuration.tcp.fastOpen.clientCacheLimit
        self.reassembly = FragmentReassembly(configuration: configuration.fragments)
        self.icmpErrorLimiter = ICMPRateLimiter(
            perSecond: configuration.icmp.errorsPerSecond, burst: configuration.icmp.errorBurst)
        if let rules = configuration.rules {
            do {
                try install(rules)
            } catch {
                preconditionFailure("StackConfiguration.rules do not compile (\(error)); check them with PacketFilter(_:) first")
            }
        }
    }

    // MARK: The sans-IO front door

    /// The next datagram to put on the link, if any.
    ///
    /// The end of a batch: ACKs that connections deferred while it was taken in are built first
    /// (`TCPConfiguration.batchesAcknowledgments`).
    public func nextPacketToSend() -> ByteBuffer? {
        if !io.deferredAcks.isEmpty { sendDeferredAcks() }
        if filterHooks & Self.outputHookBits != 0 { return filteredNextPacket() }
        return io.outgoing.popFirst()
    }

    /// Datagrams waiting to be sent (deferred ACKs included: asking ends the batch).
    public var pendingPacketCount: Int {
        if !io.deferredAcks.isEmpty { sendDeferredAcks() }
        return io.outgoing.count + filterReady.count
    }

    /// Builds the ACKs deferred since the last call, one per connection, each acknowledging all
    /// that arrived meanwhile and carrying the window the application has left.
    func sendDeferredAcks() {
        let now = io.deferredAcksOwedAt
        var index = 0
        while index < io.deferredAcks.count {
            let handle = io.deferredAcks[index]
            index += 1
            // The wakeup is looked at again only if a deadline moved (once a connection in `bench
            // connrate` — its handshake's ACK — this was a second `connectionActivity` that found
            // nothing to do).
            guard withConnection(handle, { $0.sendDeferredAck(now: now, io: &io) }) == true else { continue }
            connectionActivity(handle, now: now)
        }
        io.deferredAcks.removeAll(keepingCapacity: true)
    }

    /// When the stack next needs `advanceTime(to:)` even if no packet arrives.
    public var nextDeadline: Instant? {
        // A driver asks after every step (ten times a connection in `bench connrate`): each source
        // is looked at only when it holds something, and the TIME-WAIT queue's head is kept
        // (`nextTimeWaitExpiry`) rather than asked of the queue (`first`, a call into
        // CircularBuffer's specialization, 30 instructions a question).
        var deadline = timers.earliest
        deadline = Instant.earliest(deadline, nextTimeWaitExpiry)
        if pathMTUCache.hasExpiries { deadline = Instant.earliest(deadline, pathMTUCache.nextExpiry) }
        // Datagrams held back by `impair` rules are released by `advanceTime` too.
        if filterHooks != 0, let held = filterHeld.first { deadline = Instant.earliest(deadline, held.release) }
        return reassembly.count == 0 ? deadline : Instant.earliest(deadline, reassembly.nextDeadline)
    }

    /// Runs every timer due at `now` (RFC 9293 §3.10.8).
    public func advanceTime(to now: Instant) {
        if filterHooks != 0 { releaseHeldDatagrams(now: now) }
        expireTimeWait(now: now)
        expireFragments(now: now)
        if pathMTUCache.hasExpiries, let expiry = pathMTUCache.nextExpiry, expiry <= now { expirePathMTUs(now: now) }
        while let entry = timers.popDue(now: now) {
            switch entry.owner {
            case .connection(let handle):
                let live = withConnection(handle) { connection -> Bool in
                    guard connection.scheduledWakeup == entry.deadline else { return false }
                    connection.scheduledWakeup = nil
                    connection.timersFired(now: now, io: &io)
                    return true
                }
                if live == true { connectionActivity(handle, now: now) }
            case .halfOpen(let handle):
                halfOpenTimerFired(handle, entry: entry, now: now)
            case .timeWait(let handle):
                timeWaitExpired(handle, deadline: entry.deadline)
            case .request(let handle):
                requestDeadlinePassed(handle, deadline: entry.deadline, now: now)
            case .udpFlow(let handle):
                udpFlowTimerFired(handle, now: now)
            }
        }
    }

    /// The next event for the application, if any.
    public func nextEvent() -> StackEvent? {
        if let handle = io.listenerEvents.popFirst() {
            listeners.withElement(handle) { $0.pendingEvent = false }
            return .acceptable(ListenerID(handle: handle))
        }
        if !interceptEvents.isEmpty, let event = nextInterceptEvent() { return event }
        while let handle = io.events.popFirst() {
            let events = connections.withElement(handle) { connection -> ConnectionEvents in
                defer { connection.pendingEvents = [] }
                return connection.pendingEvents
            }
            if let events, !events.isEmpty { return .connection(ConnectionID(handle: handle), events) }
        }
        // UDP after TCP: a busy TCP stack asks here once per event, and finds its own first.
        while let handle = udpEvents.popFirst() {
            let live: Void? = udpEndpoints.withElement(handle) { $0.pendingEvent = false }
            if live != nil { return .udpReadable(UDPEndpointID(handle: handle)) }
        }
        return nil
    }

    /// The running totals, as `netstat -s` shows them.
    public var counters: StackCounters { io.counters }

    /// Record decisions with the RFC rule behind each (see `drainTrace`). Off by default: it costs.
    public var tracing: Bool {
        get { io.tracing }
        set { io.tracing = newValue }
    }

    /// Decisions recorded since the last call.
    public func drainTrace() -> [TraceRecord] {
        defer { io.trace.removeAll(keepingCapacity: true) }
        return Array(io.trace)
    }

    /// Connections the stack holds (TIME-WAIT records kept apart, after their connection was released, not counted).
    public var connectionCount: Int { connections.count }
    /// Passive opens still in a listener's SYN queue.
    public var halfOpenCount: Int { halfOpen.count }

    // MARK: Bookkeeping after a connection ran

    /// Re-arms the connection's wakeup and frees its slot once it is CLOSED and let go of.
    func connectionActivity(_ handle: SlabHandle, now: Instant) {
        let next = connections.withElement(handle) { connection -> AfterActivity in
            if connection.state == .closed && connection.userClosed { return .free }
            // Released in TIME-WAIT: only 2·MSL is left to wait, and a record does that (Stack+TimeWait.swift).
            if connection.released, case .timeWait = connection.state { return .reduce }
            return connection.armWakeup()
        }
        switch next {
        case .free?:
            removeConnection(handle)
        case .reduce?:
            if reduceToTimeWait(handle, now: now) { return }
            // Something a record does not keep is still there: the TCB waits out 2·MSL itself.
            if case .wake(let deadline)? = connections.withElement(handle, { $0.armWakeup() }) {
                timers.schedule(.connection(handle), at: deadline)
            }
        case .wake(let deadline)?:
            timers.schedule(.connection(handle), at: deadline)
        case .nothing?, nil:
            break
        }
    }

    func localAddress(matching family: IPAddress) -> IPAddress? {
        configuration.addresses.first { address in
            switch (address, family) {
            case (.v4, .v4), (.v6, .v6): true
            default: false
            }
        }
    }

    /// Whether `address` is one of ours. Runs twice per datagram (see `LocalAddresses`).
    @inline(__always)
    func isLocal(_ address: IPAddress) -> Bool {
        localAddresses.contains(address)
    }

    /// RFC 9293 §3.7.1: the MSS we announce is the MTU less the fixed IP and TCP headers.
    func announcedMSS(for address: IPAddress, clampedTo userMSS: Int? = nil) -> Int {
        let ipHeader = if case .v6 = address { 40 } else { 20 }
        return min(max(64, configuration.mtu - ipHeader - 20), userMSS ?? .max)
    }

    /// What a listener's connections announce: the link's MSS, or less if the application said so.
    func announcedMSS(for address: IPAddress, listener: SlabHandle) -> Int {
        // Read the one field: a copy of the listener would retain its accept queue (on every SYN).
        announcedMSS(for: address, clampedTo: listeners.withElement(listener) { $0.maximumSegmentSize } ?? nil)
    }
}
