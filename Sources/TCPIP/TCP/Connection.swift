import NIOCore
import TCPIPWire

/// One TCP connection: the Transmission Control Block of RFC 9293 §3.3.1, and the buffers,
/// timers and congestion state that hang off it.
///
/// The sequence variables keep the RFC's names (`sndUna` is SND.UNA, and so on), so a reader can
/// hold this file next to §3.3.1. The connection's behaviour is spread over files named after the
/// RFC's sections: `SegmentArrives*.swift` (§3.10.7), `UserCalls.swift` (§3.10.1–6),
/// `Timers.swift` (§3.10.8), `Output.swift` (§3.8.6, §3.7.4).
struct TCPConnection {
    // Swift lays stored properties out in the order they are declared, each at its alignment, and
    // a TCB sits in every connection's slab slot: an idle connection's memory is mostly this struct.
    // So one-byte and four-byte fields follow the 9-byte optionals (`Instant?`, a tag after eight
    // bytes) and the odd-sized structs, in the padding that would otherwise follow them, and the
    // sections below are ordered by that as much as by topic. HotPathLayoutTests pins the size.

    let tuple: FourTuple
    /// This connection's own slot, for posting events.
    var handle: SlabHandle
    /// The listener whose accept queue this connection was born into, if it came from a passive OPEN.
    var listener: SlabHandle?
    /// The user has called CLOSE or ABORT: once the state is CLOSED the slot is freed.
    var userClosed = false
    /// The application closed its end in both directions (`Stack.release`): it reads no more.
    var released = false
    var pendingEvents: ConnectionEvents = []
    var state: TCPState
    var error: TCPError?
    /// The last soft ICMP error (RFC 1122 §4.2.3.9; Linux's `sk_err_soft`): what a timeout reports
    /// instead of `.timedOut`. Forgotten when data is acknowledged again.
    var softError: TCPError?

    // MARK: Send sequence variables (RFC 9293 §3.3.1)

    /// SND.UNA: oldest unacknowledged sequence number.
    var sndUna: SequenceNumber
    /// SND.NXT: next sequence number to be sent.
    var sndNxt: SequenceNumber
    /// SND.WND: the peer's window, scaled to octets.
    var sndWnd: UInt32 = 0
    /// SND.WL1 / SND.WL2: segment sequence and acknowledgment numbers of the last window update.
    var sndWl1 = SequenceNumber(0)
    var sndWl2 = SequenceNumber(0)
    /// ISS: our initial send sequence number.
    let iss: SequenceNumber
    /// The largest window the peer has offered (RFC 9293 §3.8.6.2.1 "Max(SND.WND)"; RFC 5961 §5 MAX.SND.WND).
    var maxSndWnd: UInt32 = 0
    /// The highest sequence number ever sent (SND.MAX of BSD): what a valid ACK may not exceed.
    var sndMax: SequenceNumber

    // MARK: Receive sequence variables (RFC 9293 §3.3.1)

    /// RCV.NXT: next sequence number expected.
    var rcvNxt = SequenceNumber(0)
    /// IRS: the peer's initial sequence number.
    var irs = SequenceNumber(0)
    /// RCV.NXT + RCV.WND as last advertised. The right edge never moves left (RFC 9293 §3.8.6, MUST-... "shrinking the window" is discouraged).
    var rcvAdvertisedEdge = SequenceNumber(0)
    /// RCV.WND: the window we last advertised, in octets.
    var rcvWnd: UInt32 { rcvNxt.isBefore(rcvAdvertisedEdge) ? rcvNxt.octets(to: rcvAdvertisedEdge) : 0 }
    /// RCV.BUFF: what the receive buffer may hold; grows with receive autotuning (BufferAutotuning.swift).
    /// 32 bits, beside the other receive variables, where the TCB had four bytes of padding.
    private var rcvBuff: UInt32
    var receiveBufferCapacity: Int {
        get { Int(rcvBuff) }
        set { rcvBuff = UInt32(clamping: newValue) }
    }

    // MARK: What the handshake negotiated

    /// TS.Recent and when it was set (RFC 7323 §4.3, §5.5).
    var tsRecent: UInt32 = 0
    var tsRecentTime = Instant.zero
    /// Largest segment the peer accepts, options excluded (min of its MSS option and our MTU's).
    var maximumSegmentSize: Int
    /// Our announced MSS (RFC 9293 §3.7.1).
    let receiveMSS: Int
    /// What the path allows: ICMP's path MTU (RFC 1191, RFC 8201) and the RFC 4821 search (PathMTUDiscovery.swift).
    var path = PathState()
    /// RFC 7323 §2.3: shift applied to the peer's window field, and to ours.
    var sndWindowShift: UInt8 = 0
    var rcvWindowShift: UInt8 = 0
    /// Per-connection offset added to our timestamp clock, so it says nothing about uptime.
    var timestampOffset: UInt32
    /// Last.ACK.sent (RFC 7323 §4.3).
    var lastAckSent = SequenceNumber(0)
    /// RFC 7323 §3: both sides sent TSopt in their SYNs.
    var timestampsEnabled = false
    /// RFC 2018: both sides sent SACK-permitted.
    var sackEnabled = false
    /// RFC 3168: ECN negotiation and the echo state of both directions (ExplicitCongestion.swift).
    var ecn = ECNState()

    // MARK: Buffers

    /// The sequence number of our FIN, once CLOSE has queued it behind all data.
    var finSequence: SequenceNumber?
    /// The last window we advertised was zero (for counting and tracing transitions).
    var zeroWindowAnnounced = false
    /// SO_SNDBUF was set on this connection: send autotuning leaves it alone (as Linux's SOCK_SNDBUF_LOCK).
    var sendBufferLocked = false
    /// What receive autotuning has measured.
    var receiveTuning = ReceiveAutotuning()
    var sendBuffer: SendBuffer
    var receiveBuffer = ReceiveBuffer()
    var reassembly = ReassemblyQueue()
    /// Upper bound on the storage the out-of-order queue may pin. Read from the configuration, not
    /// kept in the TCB: the eight bytes pay for part of `receiveTuning`.
    var reassemblyLimit: Int { configuration.pointee.reassemblyLimit }

    // MARK: Timers (RFC 9293 §3.10.8) — each is a deadline; the stack wakes us at the earliest.

    var retransmissionDeadline: Instant?
    /// Expirations of the retransmission timer (statistics, as the others below: `ss -ti`).
    var timeouts = ConnectionCount()
    var persistDeadline: Instant?
    var zeroWindowProbes = ConnectionCount()
    var delayedAckDeadline: Instant?
    /// An ACK is owed and waits for the end of the batch (`sendAckAtEndOfBatch`); any segment we send first carries it.
    var ackDeferred = false
    /// When the stack last scheduled a wakeup for this connection (maintained by the stack).
    var scheduledWakeup: Instant?
    var persistBackoff = 0

    // MARK: Retransmission and congestion

    var rtt: RTTEstimator
    var rttTimedAt = Instant.zero
    /// Consecutive expirations of the retransmission timer without progress (RFC 9293 §3.8.3 R1/R2).
    var consecutiveTimeouts = 0
    /// When the current run of retransmission timeouts began: when the head segment was last sent.
    var timeoutsStartedAt: Instant?
    /// The segment being timed without timestamps (RFC 6298 §3 with Karn's rule): its end; `rttTimedAt` is its send time.
    var rttTimedSequence: SequenceNumber?
    var congestion: any CongestionControl
    var duplicateAcks = 0
    /// Which algorithm sizes cwnd: the stack's (`TCPConfiguration.congestionControl`) unless the
    /// connection was given its own.
    let congestionAlgorithm: CongestionControlAlgorithm
    /// Whether `congestion` is the algorithm yet, not the `HandshakeWindow` standing in for it.
    /// Every call that changes the algorithm's state goes through `startCongestionControl` first.
    var congestionControlStarted = false
    var inFastRecovery = false
    /// A retransmission timeout fired and SND.UNA has not yet passed `recover` (RFC 6675 §5.1).
    var inTimeoutRecovery = false
    /// RFC 6582 §3.2 `recover` (RFC 6675 RecoveryPoint): the highest sequence number sent when loss
    /// recovery began.
    var recover: SequenceNumber

    // MARK: Loss detection and recovery (LossRecovery.swift)

    /// What is in flight, SACKed and lost (RFC 6675 §3; RFC 8985 §6.1).
    var scoreboard = Scoreboard()
    /// RFC 8985 RACK state.
    var rack = RecentAcknowledgment()
    var fastRecoveries = ConnectionCount()
    /// RFC 8985 §7 TLP state, with the PTO deadline.
    var lossProbe = TailLossProbe()
    var tailLossProbes = ConnectionCount()
    /// The RACK reordering timer (RFC 8985 §6.2 step 5).
    var reorderingDeadline: Instant?
    /// ACKs (or timer expirations) on which RACK marked segments lost.
    var lostSegmentsDetected = ConnectionCount()
    /// RFC 6937 state while in fast recovery.
    var prr: ProportionalRateReduction?
    /// The loss episode under way or just ended, for undoing it if it proves spurious.
    var episode: RecoveryEpisode?
    /// RFC 2883: the D-SACK block the next ACK reports first.
    var pendingDuplicateSACK: SACKBlock?
    /// Pacing (`TCPConfiguration.pacing`, Pacing.swift): when the data sent so far has been sent at
    /// the pacing rate (time zero: nothing paced yet); `pacingTimerArmed` (below) sends the next
    /// burst then.
    var pacingReleaseTime = Instant.zero
    var spuriousEpisodesUndone = ConnectionCount()
    var dsacksReceived = ConnectionCount()
    /// RFC 9293 §3.10.7.3: text in the SYN of a simultaneous open, "queue[d] for processing after
    /// the ESTABLISHED state has been reached". A FIN with the SYN (only let through by
    /// `acceptsSYNWithFIN`) is ignored, as FreeBSD ignores it.
    var textInSYN: ByteBuffer?
    var retransmittedSegments = ConnectionCount()
    var lastSendTime = Instant.zero
    /// Ends of records the application marked (`Stack.send(_:_:endOfRecord:now:)`, Linux's MSG_EOR)
    /// not yet acknowledged, in order: no segment crosses one. Empty unless records are used.
    var recordEnds: [SequenceNumber] = []
    /// The end of the last segment shorter than the MSS we sent (Linux's snd_sml), for Minshall's
    /// Nagle (`TCPConfiguration.nagleMinshall`).
    var lastShortSegmentEnd = SequenceNumber(0)
    var nagle: Bool

    // MARK: Keep-alive (RFC 1122 §4.2.3.6) and user timeout (RFC 5482)

    var keepalive: Keepalive?
    var keepaliveProbesSent = 0
    /// When a segment last arrived from the peer, or the last keep-alive probe left.
    var lastHeardFrom = Instant.zero
    var lastKeepaliveProbe = Instant.zero
    var userTimeout: TimeAmount?

    // MARK: Connection establishment (RFC 9293 §3.8.3 R2 for SYNs)

    /// SYN retransmissions before an active OPEN gives up (TCP_SYNCNT).
    var synRetransmissionLimit: Int
    /// The time an active OPEN may take (TCP_KEEPINIT), counted from `openedAt`.
    var connectionTimeout: TimeAmount?
    /// RFC 7413 §4.2's FastOpened flag: a server connection opened by a SYN with a valid cookie,
    /// which may send data while still in SYN-RECEIVED (§4.2.2 step 6).
    var fastOpened = false
    /// Our SYN carried a Fast Open option (a cookie request or a cookie with data): the SYN-ACK's
    /// cookie is cached (RFC 7413 §4.1.3).
    var fastOpenRequested = false
    /// That option was the experimental form (kind 254, 0xF989), for the SYN-ACK's fallback rule.
    var fastOpenExperimental = false
    /// It carried data and no option (`FastOpen.clientRequiresCookie` off): a cookie back is unsolicited.
    var fastOpenUnsolicited = false
    /// When the first SYN left.
    var openedAt = Instant.zero

    // MARK: Acknowledgment policy (RFC 9293 §3.8.6.3)

    var segmentsSinceAck = 0
    /// Octets taken in order since the last ACK we sent.
    var bytesSinceAck = 0
    /// When the SYN-ACK arrived whose ACK waits for the end of the batch; and whether the
    /// connection is taken as interactive (`TCPConfiguration.interactiveDelayedAcks`).
    var handshakeAckAwaitsWriter: Instant?
    var interactive = false
    /// A burst waits for `pacingReleaseTime` (Pacing.swift); in the padding after `interactive`.
    var pacingTimerArmed = false
    var zeroWindowAdvertisementsSent = ConnectionCount()
    /// Segments still to be acknowledged at once at the start of the connection (quick-ACK).
    var quickAcksLeft = 0
    /// The delayed-ACK timeout, nil with delayed ACKs off. Read from the configuration rather than
    /// kept in the TCB, whose 16 bytes pay for part of `receiveTuning` (an idle connection's size).
    var delayedAckTimeout: TimeAmount? {
        configuration.pointee.delayedAcks ? configuration.pointee.delayedAckTimeout : nil
    }

    // MARK: Statistics (what `ss -ti` shows; the event counts sit beside the state they count)

    /// 64 bits, as Linux's `tcpi_bytes_acked` and `tcpi_bytes_received`: a long transfer passes 4 GiB.
    var bytesAcked: UInt64 = 0
    var bytesReceived: UInt64 = 0

    /// The stack's `TCPConfiguration`, one instance for all its connections (`SharedTCPConfiguration`):
    /// a pointer here instead of a 240-byte copy in every TCB, a seventh of an idle connection's
    /// memory. A plain pointer, not a class reference, so that the TCB stays free of reference counts
    /// (with one, the optimizer copied whole TCBs on the ACK path: bulk transfer 17% slower). The stack
    /// keeps the pointee alive for its whole life, and a TCB never outlives the stack whose slab holds it.
    let configuration: UnsafePointer<TCPConfiguration>

    /// A TCB for an active OPEN (RFC 9293 §3.10.1) or for a passive OPEN whose SYN has arrived.
    init(
        tuple: FourTuple,
        iss: SequenceNumber,
        state: TCPState,
        receiveMSS: Int,
        timestampOffset: UInt32,
        configuration shared: SharedTCPConfiguration,
        algorithm: CongestionControlAlgorithm? = nil
    ) {
        let configuration = shared.pointer.pointee
        self.tuple = tuple
        self.handle = SlabHandle(index: .max, generation: 0)
        self.state = state
        self.iss = iss
        self.lastShortSegmentEnd = iss
        self.sndUna = iss
        self.sndNxt = iss
        self.sndMax = iss
        self.recover = iss
        self.receiveMSS = receiveMSS
        self.maximumSegmentSize = receiveMSS
        self.timestampOffset = timestampOffset
        self.configuration = UnsafePointer(shared.pointer)
        self.sendBuffer = SendBuffer(capacity: configuration.sendBufferSize)
        self.rcvBuff = UInt32(clamping: configuration.receiveBufferSize)
        self.nagle = configuration.nagle
        self.keepalive = configuration.keepalive
        self.userTimeout = configuration.userTimeout
        self.synRetransmissionLimit = configuration.maximumSYNRetransmissions
        self.connectionTimeout = configuration.connectionTimeout
        self.rtt = RTTEstimator(
            initialRTO: configuration.initialRTO, minimumRTO: configuration.minimumRTO,
            maximumRTO: configuration.maximumRTO, clockGranularity: configuration.clockGranularity,
            minimumAddsToSRTT: configuration.minimumRTOAddsToSRTT
        )
        self.congestionAlgorithm = algorithm ?? configuration.congestionControl
        self.congestion = HandshakeWindow(
            algorithm: congestionAlgorithm, maximumSegmentSize: receiveMSS,
            initialWindowSegments: configuration.initialWindowSegments)
        self.rcvWindowShift = configuration.windowScaling ? configuration.offeredWindowShift : 0
    }

    /// RFC 7323 §2.3: the smallest shift that lets the window field cover the whole buffer (at most 14).
    static func windowShift(forBuffer size: Int) -> UInt8 {
        var shift: UInt8 = 0
        while shift < 14 && (size >> Int(shift)) > 65535 { shift += 1 }
        return shift
    }

    // MARK: Derived quantities

    /// Eff.snd.MSS (RFC 9293 §3.7.1): payload per segment once the options every segment carries are paid for.
    var sendMSS: Int { maximumSegmentSize - (timestampsEnabled ? 12 : 0) }

    /// Octets sent and not yet acknowledged (FlightSize of RFC 5681, counting SYN and FIN).
    var flightSize: Int { Int(sndUna.octets(to: sndNxt)) }

    /// Whether our FIN has been sent (it is the last octet, so SND.NXT is past it).
    var finSent: Bool {
        guard let finSequence else { return false }
        return finSequence.isBefore(sndNxt)
    }

    /// Sequence number of the first octet in the send buffer: after the SYN, before the FIN.
    var sendBufferStart: SequenceNumber { state == .synSent || sndUna == iss ? iss + 1 : sndUna }

    /// Offset into the send buffer of SND.NXT: the first octet not yet sent.
    ///
    /// Not inlined, on purpose. A getter called on a TCB that a mutating method holds `inout` gets a
    /// temporary copy of the whole TCB (the `any CongestionControl` makes it address-only), which
    /// the optimizer removes only while the call is a single instruction; inlined into `output`'s
    /// loop, the branches of this body kept the copy: ~60 retains and releases per segment, 20% of
    /// bulk time at MTU 1500 under perf. A call passes the TCB by address instead.
    @inline(never)
    var sendBufferNextOffset: Int {
        min(Int(sendBufferStart.octets(to: sndNxt)), sendBuffer.count)
    }

    /// Bytes the application wrote that were never sent.
    var unsentBytes: Int { sendBuffer.count - sendBufferNextOffset }

    /// Our timestamp clock: milliseconds (RFC 7323 §5.4 allows 1 ms to 1 s per tick).
    func timestampClock(_ now: Instant) -> UInt32 {
        UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) &+ timestampOffset
    }

    /// Marks events for the application, queueing this connection once.
    mutating func post(_ events: ConnectionEvents, io: inout StackIO) {
        if pendingEvents.isEmpty { io.events.append(handle) }
        pendingEvents.formUnion(events)
    }

    /// Moves to CLOSED, dropping buffers and timers, and tells the application.
    mutating func enterClosed(error: TCPError?, io: inout StackIO, now: Instant) {
        // RFC 1122 §4.2.3.9: a soft error is reported when the connection gives up (as Linux's
        // tcp_write_err: sk_err = sk_err_soft ?: ETIMEDOUT).
        let error = error == .timedOut ? softError ?? error : error
        if let error, self.error == nil { self.error = error }
        state = .closed
        retransmissionDeadline = nil
        persistDeadline = nil
        delayedAckDeadline = nil
        sendBuffer.removeAll()
        reassembly.removeAll()
        scoreboard.removeAll()
        reorderingDeadline = nil
        lossProbe.deadline = nil
        pacingTimerArmed = false
        post([.closed, .readable, .writable], io: &io)
    }

    /// Notes the wakeup the stack is about to schedule for `nextDeadline`, unless one at or before it
    /// is scheduled already.
    mutating func armWakeup() -> AfterActivity {
        guard let deadline = nextDeadline else { return .nothing }
        if let scheduled = scheduledWakeup, scheduled <= deadline { return .nothing }
        scheduledWakeup = deadline
        return .wake(deadline)
    }

    /// The earliest instant at which a timer of this connection needs attention.
    ///
    /// Asked after every event (six times a connection in `bench connrate`, once or twice a segment
    /// in `bench bulk`), so the minimum is taken over integers: an absent deadline counts as
    /// `Int64.max`, and `found` says whether any was present at all (a deadline of exactly
    /// `Int64.max` is still one). The chain of optional `Instant.earliest` it replaces compared tags
    /// and values pairwise, 13 more instructions a call.
    var nextDeadline: Instant? {
        var found = false
        var earliest = Int64.max
        @inline(__always)
        func consider(_ deadline: Instant?) {
            guard let deadline else { return }
            found = true
            earliest = Swift.min(earliest, deadline.nanoseconds)
        }
        consider(retransmissionDeadline)
        consider(persistDeadline)
        consider(delayedAckDeadline)
        consider(keepaliveDeadline)
        consider(bufferReclaimDeadline)
        consider(reorderingDeadline)
        consider(lossProbe.deadline)
        if pacingTimerArmed { consider(pacingReleaseTime) }
        consider(establishmentDeadline)
        if case .timeWait(let until) = state { consider(until) }
        return found ? Instant(nanoseconds: earliest) : nil
    }
}

/// What the stack does with a connection after it ran (`Stack.connectionActivity`).
enum AfterActivity {
    /// CLOSED and let go of by the application: free the slot.
    case free
    /// In TIME-WAIT and let go of: keep a record instead of the TCB.
    case reduce
    /// Schedule a wakeup at this deadline.
    case wake(Instant)
    case nothing
}

/// A stack's `TCPConfiguration` at a fixed address, which each of its connections points to.
final class SharedTCPConfiguration {
    let pointer: UnsafeMutablePointer<TCPConfiguration>

    init(_ tcp: TCPConfiguration) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: tcp)
    }

    deinit {
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }
}

/// A per-connection event count for `ss -ti` (retransmissions, timeouts, probes, ECN marks): 32 bits,
/// as Linux's `tcp_info` has them (`tcpi_total_retrans`, `tcpi_delivered_ce`), where 64 would add
/// four bytes of padding each to every TCB. Counted with `&+=`: a count that passes 2^32 wraps, it
/// never traps. Byte counts stay 64-bit.
typealias ConnectionCount = UInt32
