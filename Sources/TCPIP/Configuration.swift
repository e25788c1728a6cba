import NIOCore
import TCPIPWire

/// Everything a `Stack` needs to know before the first packet: who it is, how big things may get,
/// and where its randomness comes from.
///
/// Secure by default: without a `seed`, every secret (the RFC 6528 ISN key, the SYN-cookie and
/// timestamp-offset keys, the start of the ephemeral ports, the challenge-ACK budget) is drawn from
/// the system's cryptographic generator. Pass a seed only where a run must be reproducible — tests,
/// simulations, benchmarks, fuzzing.
public struct StackConfiguration: Sendable {
    /// The addresses this stack answers for (IPv4 and IPv6 may be mixed).
    public var addresses: [IPAddress]
    /// The link MTU; the MSS we announce is derived from it (RFC 9293 §3.7.1).
    public var mtu: Int
    /// The IPv4 TTL and IPv6 hop limit of every datagram the stack sends (RFC 9293 §3.9.2: "MUST be
    /// configurable (MUST-49)"); 64 as Linux's ip_default_ttl and FreeBSD's net.inet.ip.ttl.
    public var timeToLive: UInt8 = 64
    /// When the link guarantees integrity (the in-memory link, loopback), checksums are neither
    /// computed nor verified — as Linux does on `lo`.
    public var checksumOffload: Bool
    /// When the link finishes the TCP checksum of what we send (a NIC with transmit checksum
    /// offload; a TUN device with a virtio-net header, for which the kernel never needs it on a
    /// local delivery), the stack leaves it 0. Received datagrams are still checked, unless
    /// `checksumOffload` or the link vouches for them one by one (`Stack.receive`'s `checksumVerified`).
    public var transmitChecksumOffload: Bool = false
    /// Where every random choice comes from. nil (the default): each secret is drawn from
    /// `SystemRandomNumberGenerator` (the OS's cryptographic generator), so an off-path attacker
    /// cannot predict sequence numbers (RFC 6528 §3), forge SYN cookies (RFC 4987 §3.6), guess the
    /// next ephemeral port (RFC 6056 §3.1) or learn the challenge-ACK budget (CVE-2016-5696).
    /// A value: everything is derived from it — one seed, one run, bit for bit — which is what
    /// tests, the simulator and benchmarks want, and what a server on a network must not use: the
    /// secrets are then as public as the seed.
    public var seed: UInt64?
    /// TCP's knobs, for every connection the stack makes.
    public var tcp: TCPConfiguration
    /// ICMP and ICMPv6: echo replies and the errors we send.
    public var icmp: ICMPConfiguration = ICMPConfiguration()
    /// UDP endpoints.
    public var udp: UDPConfiguration = UDPConfiguration()
    /// Most connections the stack holds at once (established, closing and TIME-WAIT alike).
    public var maximumConnections: Int
    /// Most TIME-WAIT records (`Stack.timeWaitCount`) held at once. A connection the application has
    /// let go of that reaches TIME-WAIT beyond it is closed at once, without the 2·MSL wait RFC 9293
    /// §3.10.7.4 asks for, and counted (`timeWaitOverflows`) — Linux's `tcp_max_tw_buckets`, whose
    /// default on a machine of 24 GiB is this 131,072. Without it a server that closes first keeps
    /// one record per connection for a minute: 100 bytes at 200,000 connections a second is 1.2 GB.
    public var maximumTimeWaitRecords: Int = 131_072
    /// Whether `connect`, finding no free 4-tuple, may take over one this stack holds in TIME-WAIT:
    /// Linux's `tcp_tw_reuse`, under its conditions — the old connection had timestamps and its last
    /// segment came at least a second ago. (SYNs from peers reopen TIME-WAIT under RFC 6191 always.)
    public var timeWaitReuse: Bool = true
    /// The local ports of active opens (Linux's `ip_local_port_range`); by default IANA's dynamic
    /// range, as RFC 6056 §3.2 recommends.
    public var ephemeralPorts: ClosedRange<UInt16> = 49152...65535
    /// Most bytes the stack may pin (`Stack.memoryInUse`: connection slots, half-open entries, send,
    /// receive and out-of-order storage, UDP receive queues); nil for no limit. At the limit,
    /// out-of-order data is pruned first, then new connections are refused (`memoryBudgetRefusal`),
    /// then arriving data is dropped (its ACK still processed) until the applications read or the
    /// peers acknowledge; a UDP datagram that would pass the budget is dropped (`udpMemoryErrors`).
    public var memoryBudget: Int? = nil
    /// What a new connection meets at the memory budget: an RST, or silence.
    public var memoryBudgetRefusal: MemoryBudgetRefusal = .reset
    /// A hard ceiling for a packet tunnel's whole stack (`TCPConfiguration.packetTunnel`): 32 MiB,
    /// leaving the rest of a 50 MiB extension for the tunnel itself.
    public static let packetTunnelMemoryBudget = 32 * 1024 * 1024
    /// Fragment reassembly (RFC 791, RFC 8200 §4.5): its memory bound and timeouts.
    public var fragments = FragmentReassemblyConfiguration()
    /// Intercept mode: the stack terminates TCP, UDP and ICMP echo to every address, holding each
    /// SYN as a connection request until the application answers it (`InterceptionConfiguration`).
    /// nil (the default): the stack answers for `addresses` only.
    public var interception: InterceptionConfiguration? = nil
    /// Netfilter rules installed when the stack is made (`Stack.install` replaces them later); nil:
    /// none, and the hooks cost one test per datagram. They must compile: check a ruleset read
    /// from a user with `PacketFilter(_:)` first, which reports what is wrong.
    public var rules: FilterRuleset? = nil
    /// Most flows connection tracking holds (`nf_conntrack_max`); a new flow beyond it is dropped.
    public var filterConnectionLimit: Int = 65_536
    /// The name of the stack's link, as `iifname` and `oifname` match it; nil matches no name.
    public var linkName: String? = nil

    /// A configuration owning `addresses`, the rest as the properties of the same name; everything else at its
    /// default.
    public init(
        addresses: [IPAddress],
        mtu: Int = 1500,
        checksumOffload: Bool = false,
        seed: UInt64? = nil,
        tcp: TCPConfiguration = TCPConfiguration(),
        maximumConnections: Int = 1 << 20
    ) {
        self.addresses = addresses
        self.mtu = mtu
        self.checksumOffload = checksumOffload
        self.seed = seed
        self.tcp = tcp
        self.maximumConnections = maximumConnections
    }
}

/// TCP's knobs. The defaults are Linux's where RFCs leave a range, and each says so. Buffers are
/// fixed at 256 KiB each way by default; `server` and `packetTunnel` autotune them.
// DEVIATION(issue 25): autotuning is not yet the default. As the default it halved `tcpip bench
// bulk` on the in-memory pair (RTTs below the receive-RTT clock's resolution never let the
// receive buffer grow past its 128 KiB start) and added allocations per segment as the send
// buffer grew; until both are fixed, applications ask for it with `server` or `packetTunnel`.
public struct TCPConfiguration: Sendable {
    /// Receive buffer per connection at the start (256 KiB; `server` starts at Linux's tcp_rmem[1],
    /// 128 KiB); the advertised
    /// window is its free space (RFC 9293 §3.8.6). Setting it fixes the buffer at that size, as
    /// SO_RCVBUF does on Linux (SOCK_RCVBUF_LOCK turns autotuning off): `receiveBufferMaximum`
    /// becomes nil. Set the maximum after it to grow from a starting size of your own.
    public var receiveBufferSize: Int {
        get { receiveBufferStart }
        set {
            receiveBufferStart = newValue
            receiveBufferMaximum = nil
        }
    }
    private var receiveBufferStart = 256 * 1024
    /// Send buffer per connection at the start: how much SEND accepts before it returns short.
    /// Setting it fixes the buffer at that size, as SO_SNDBUF does on Linux (SOCK_SNDBUF_LOCK):
    /// `sendBufferMaximum` becomes nil. Set the maximum after it to grow from it.
    public var sendBufferSize: Int {
        get { sendBufferStart }
        set {
            sendBufferStart = newValue
            sendBufferMaximum = nil
        }
    }
    private var sendBufferStart = 256 * 1024
    /// Receive autotuning (Linux's dynamic right-sizing, tcp_rcv_space_adjust): the receive buffer
    /// starts at `receiveBufferSize` and grows, once per round trip, to about twice what the
    /// application read in the last one, up to this (8 MiB in `server`). nil (the default): fixed at
    /// `receiveBufferSize`. The Window Scale option offered in the SYN covers this maximum
    /// (RFC 7323 §2.3), not the starting size.
    public var receiveBufferMaximum: Int? = nil
    /// Send autotuning (Linux's tcp_sndbuf_expand): the send buffer starts at `sendBufferSize` and
    /// grows to hold about two congestion windows, up to this (16 MiB in `server`).
    /// nil (the default): fixed at `sendBufferSize`.
    public var sendBufferMaximum: Int? = nil
    /// How long a connection whose buffers grew must sit idle — nothing queued to send, nothing
    /// left to read, nothing heard — before it gives them back: both buffers return to their
    /// starting sizes and the rings that held their queues are freed (the wait is at least an RTO,
    /// as Linux's tcp_cwnd_restart waits before it restarts an idle window). nil: buffers keep
    /// what they grew to.
    public var idleBufferReclaim: TimeAmount? = .seconds(1)
    /// Window scaling (RFC 7323 §2). The shift we offer is `windowScaleShift`, or else the smallest
    /// that covers the receive buffer.
    public var windowScaling: Bool = true
    /// The shift we offer in the Window Scale option, whatever the buffer: RFC 7323 §2.3, "shift.cnt
    /// = R, where R is the value that the TCP would like to use for its receive window" — a stack that
    /// grows its buffer later (autotuning) asks for a larger shift than today's buffer needs, as
    /// FreeBSD does with 64 KiB and shift 6. At most 14 (RFC 7323 §2.3). nil: derived from the buffer.
    public var windowScaleShift: UInt8? = nil
    /// Timestamps (RFC 7323 §3): RTT measurement on every ACK and PAWS.
    public var timestamps: Bool = true
    /// Offer SACK-permitted (RFC 2018). Blocks are reported for out-of-order data when the peer agrees.
    public var selectiveAcknowledgments: Bool = true
    /// RACK-TLP (RFC 8985): time-based loss detection and tail loss probes, where SACK is negotiated.
    /// Off, SACK connections detect loss with RFC 6675's DupThresh rule.
    public var recentAcknowledgment: Bool = true
    /// Nagle's algorithm (RFC 9293 §3.7.4); `false` is TCP_NODELAY.
    public var nagle: Bool = true
    /// Minshall's modification of Nagle's algorithm (RFC 9293 Appendix A.3, draft-minshall-nagle):
    /// a short segment waits only while another short segment is unacknowledged, not while any data
    /// is — as Linux (tcp_minshall_check). Off: the algorithm of §3.7.4 itself.
    public var nagleMinshall: Bool = false
    /// Delayed ACK timeout (RFC 9293 §3.8.6.3 allows up to 500 ms; Linux's minimum is 40 ms).
    public var delayedAckTimeout: TimeAmount = .milliseconds(40)
    /// Turn delayed ACKs off entirely: every segment is acknowledged at once.
    public var delayedAcks: Bool = true
    /// Acknowledge a FIN that arrives in ESTABLISHED, after data, within the delayed-ACK timeout
    /// instead of at once. An application usually answers the peer's FIN by closing, and the ACK then
    /// rides on our own FIN — the piggybacking RFC 1122 §4.2.3.2 delays ACKs for (Linux's "pingpong"
    /// mode). Off (the default), the FIN is acknowledged at once, as RFC 9293 §3.10.7.4 (eighth)
    /// reads and FreeBSD does ("no more input can be expected, send ACK now").
    public var delaysFINAcknowledgment: Bool = false
    /// Take an active open as interactive when the application's data carries the handshake's ACK
    /// (it was waiting to write as the SYN-ACK arrived): from then on the ACK of data it receives
    /// is delayed instead of quick-ACKed, so it can ride on the next reply (RFC 1122 §4.2.3.2's
    /// purpose for delayed ACKs); a delayed ACK that has to go on its own ends the mode. Linux's
    /// "pingpong" mode as its waiting writer enters it (tcp_rcv_synsent_state_process arms ATO for
    /// sk_write_pending, tcp_event_data_sent, tcp_in_quickack_mode, tcp_delack_timer_handler).
    /// Off (the default): the quick ACKs of `quickAcks` go whatever the application sends.
    public var interactiveDelayedAcks: Bool = false
    /// In a simultaneous close (a FIN arrives in FIN-WAIT-1 that does not acknowledge ours), send our
    /// FIN again on the ACK of the peer's, as FreeBSD does: if ours was lost the peer has it without
    /// waiting for our RTO (RFC 9293 §3.8.1 lets a segment be retransmitted at any time); if the two
    /// crossed, the peer acknowledges a duplicate FIN once more. Off (the default), a plain ACK, as
    /// RFC 9293 §3.6 Figure 13 draws it and Linux sends.
    public var repeatsFINInSimultaneousClose: Bool = false
    /// The receiver's silly-window-syndrome avoidance (RFC 9293 §3.8.6.2.2, MUST-39): the RFC's
    /// suggested algorithm by default, or 4.4BSD's (FreeBSD). See `ReceiverSWSAvoidance`.
    public var receiverSWSAvoidance: ReceiverSWSAvoidance = .rightEdge
    /// What RCV.WND is in the acceptability test of RFC 9293 §3.10.7.4 (and so RFC 5961 §3.2's RST
    /// window): the window we announced by default, or the buffer's free space when that is larger
    /// (FreeBSD). See `ReceiveWindowForAcceptance`.
    public var receiveWindowForAcceptance: ReceiveWindowForAcceptance = .announced
    /// Send the ACK owed for every second full-sized segment when the batch of datagrams being taken
    /// in ends (the caller's next `Stack.nextPacketToSend()`), not as the second segment is processed:
    /// segments that arrive together are acknowledged together, by one ACK carrying the window the
    /// application has left — what Linux's GRO makes of a NIC's batch, and the ACK batching the
    /// issue on speed asks for. A caller that hands in one datagram at a time (a packetdrill script)
    /// sees every ACK where it was; quick ACKs, ACKs that fill a hole or report a duplicate, and
    /// duplicate ACKs are never batched. Off: each owed ACK is built at once.
    public var batchesAcknowledgments: Bool = true
    /// Pace what is sent: spread each window over the round trip at Linux's pacing rate (2 · cwnd /
    /// SRTT in slow start, 1.2 · cwnd / SRTT after), in bursts of 1 ms or two segments, instead of
    /// sending all that cwnd allows the moment an ACK arrives. A Linux receiver grows its buffer only
    /// for a sender whose window does not arrive in one burst (`Pacing.swift`). Off: ACK-clocked
    /// bursts, as before (the simulator's figures were measured so).
    public var pacing: Bool = false
    /// Data segments acknowledged at once at the start of a connection, before delayed ACKs begin
    /// (Linux's quick-ACK mode, TCP_MAX_QUICKACKS = 16); 0 delays from the first segment.
    public var quickAcks: Int = 16
    /// RFC 6298 §2.1: before any RTT sample.
    public var initialRTO: TimeAmount = .seconds(1)
    /// DEVIATION(RFC 6298 §2.4): 200 ms like Linux rather than 1 s, so one loss does not cost a second.
    public var minimumRTO: TimeAmount = .milliseconds(200)
    /// DEVIATION(RFC 6298 §2.4): apply `minimumRTO` to the variance term, RTO = SRTT + max(G,
    /// K·RTTVAR, minimumRTO), as Linux does (tcp_set_rto), instead of to RTO. On a 200 ms path with
    /// a steady RTT, RTO is then about 400 ms (Linux's 404–416 ms) rather than 201–205 ms, which a
    /// fast retransmission's ACK, a round trip away, races: without it, issue 20's 200 ms traces show
    /// spurious timeouts in fast recovery, each a go-back-N of what the receiver holds and a window
    /// of 1. The same as `clockGranularity` = `minimumRTO`. Off by default (the simulator's figures);
    /// on in the TUN commands (`--no-minimum-rto-adds-to-srtt` turns it off).
    public var minimumRTOAddsToSRTT: Bool = false
    /// RFC 6298 §2.5: "a maximum value MAY be placed on RTO provided it is at least 60 seconds".
    public var maximumRTO: TimeAmount = .seconds(60)
    /// RFC 6298 §2's G, the clock granularity: the least the variance term adds to SRTT in
    /// RTO = SRTT + max(G, K·RTTVAR) (2.2, 2.3). Our clock counts nanoseconds and timestamps count
    /// milliseconds: 1 ms. Linux bounds that term by its minimum RTO instead (tcp_rto_min bounds
    /// rttvar), so its RTO is never under SRTT + 200 ms: the same formula with G = 200 ms.
    public var clockGranularity: TimeAmount = .milliseconds(1)
    /// Added to RFC 8985 §7.2's PTO (2·SRTT) when more than one segment is in flight (with one,
    /// TLP.max_ack_delay is added). Zero is the RFC's PTO. Linux adds TCP_TIMEOUT_MIN, two jiffies
    /// (net/ipv4/tcp_output.c, tcp_schedule_loss_probe), so that with an SRTT of zero a probe does
    /// not fire in the instant the data left.
    public var lossProbeSlack: TimeAmount = .zero
    /// Retransmissions of one segment before the connection is aborted (RFC 9293 §3.8.3 R2; Linux tcp_retries2 = 15).
    public var maximumRetransmissions: Int = 15
    /// Retransmissions of a SYN or SYN-ACK before giving up (RFC 9293 §3.8.3 R2 for SYNs; Linux
    /// tcp_syn_retries = 6, FreeBSD TCP_MAXRXTSHIFT = 12). Per connection: `Stack.setSYNRetransmissions`
    /// (TCP_SYNCNT).
    public var maximumSYNRetransmissions: Int = 6
    /// How long an active OPEN may take to reach ESTABLISHED before it fails with ETIMEDOUT, whatever
    /// the SYN retransmission count (FreeBSD's TCP_KEEPINIT, 75 s by default there; RFC 9293 §3.8.3
    /// lets R2 for a SYN be a time). nil: the count alone, as Linux. Per connection:
    /// `Stack.setConnectionTimeout`.
    public var connectionTimeout: TimeAmount? = nil
    /// Maximum segment lifetime; TIME-WAIT lasts twice this (RFC 9293 §3.4.2). Linux uses 2·MSL = 60 s.
    public var maximumSegmentLifetime: TimeAmount = .seconds(30)
    /// The congestion-control algorithm of new connections: RFC 9438 CUBIC by default (as Linux), or RFC 5681/6582 NewReno.
    public var congestionControl: CongestionControlAlgorithm = .cubic
    /// Initial congestion window in segments (RFC 6928 as Linux; RFC 5681 §3.1 would give 2–4).
    public var initialWindowSegments: Int = 10
    /// L of Appropriate Byte Counting (RFC 3465 §2), in segments: the most one ACK grows cwnd in slow
    /// start. 1 is RFC 5681 §3.1's standard ("cwnd += min (N, SMSS)"; §7 recommends ABC with
    /// L = 1·SMSS; the default), which also bounds what ACK division can win; nil (`server`) counts every
    /// segment delivered, as Linux's tcp_slow_start does, so that a receiver acknowledging each
    /// burst once (see `server`) does not hold slow start to one segment per round trip.
    public var slowStartLimitSegments: Int? = 1
    /// HyStart++ (RFC 9406) in the first slow start: growth slows to a quarter once the round trip
    /// rises by 4–16 ms (a queue is building), and congestion avoidance follows five rounds later,
    /// instead of doubling until a queue overflows. On in `server` and `packetTunnel`; off by default,
    /// where slow start is RFC 5681's.
    public var hyStart: Bool = false
    /// Persist timer bounds for zero-window probes (RFC 9293 §3.8.6.1; backoff per RFC 1122 §4.2.2.17).
    public var minimumPersistTimeout: TimeAmount = .milliseconds(200)
    /// The longest the persist timer backs off to.
    public var maximumPersistTimeout: TimeAmount = .seconds(60)
    /// What a zero-window probe carries (RFC 9293 §3.8.6.1): an octet of new data by default.
    public var zeroWindowProbe: ZeroWindowProbe = .newData
    /// Upper bound on the storage the out-of-order queue may pin per connection.
    public var reassemblyLimit: Int = 512 * 1024
    /// Half-open entries a listener keeps (its SYN queue): the larger of this and the listener's backlog.
    public var synQueueLimit: Int = 1024
    /// SYN cookies (RFC 4987 §3.6): by default only while a listener's SYN queue is full, as Linux.
    public var synCookies: SYNCookieMode = .whenSYNQueueFull
    /// What a final ACK meets when the accept queue is full (Linux's tcp_abort_on_overflow).
    public var acceptQueueOverflow: AcceptQueueOverflow = .dropAck
    /// RFC 5961 §7: challenge ACKs the whole stack sends per second, at most; nil for no limit.
    /// Each second's budget is drawn at random between half and one and a half times this, so the
    /// count cannot serve as a side channel (CVE-2016-5696, as Linux since 4.7).
    public var challengeAckLimit: Int? = 1000
    /// Keep-alives for new connections (SO_KEEPALIVE); RFC 1122 §4.2.3.6: "MUST default to off".
    public var keepalive: Keepalive? = nil
    /// RFC 5482 user timeout (TCP_USER_TIMEOUT): how long sent data may stay unacknowledged before
    /// the connection is aborted, instead of counting retransmissions (R2); nil for the count alone.
    public var userTimeout: TimeAmount? = nil
    /// Explicit Congestion Notification (RFC 3168). The default accepts ECN when the peer's SYN asks
    /// for it but does not ask on active opens — Linux's and FreeBSD's default (tcp_ecn = 2,
    /// net.inet.tcp.ecn.enable = 2): a peer that sends an ECN-setup SYN has shown it handles ECN, and
    /// answering costs nothing, while asking from our side meets the middleboxes of RFC 3168 §6.1.1.1
    /// that drop or mangle ECN-setup SYNs, so requesting stays a choice of the application's.
    public var explicitCongestionNotification: ExplicitCongestionNotification = .acceptWhenRequested
    /// The arrangement of the options of our SYNs and SYN-ACKs (RFC 9293 §3.2 leaves it free):
    /// Linux's by default, or 4.4BSD/FreeBSD's (`TCPOptions.Layout.bsd`).
    public var synOptionLayout: TCPOptions.Layout = .linux
    /// RFC 793's processing of an RST in a synchronized state instead of RFC 5961 §3.2's: any RST in
    /// the window resets the connection, with no challenge ACK (FreeBSD's net.inet.tcp.insecure_rst).
    /// Off by default: RFC 5961 §3.2 is a SHOULD that defends against blind resets.
    public var acceptsAnyResetInWindow: Bool = false
    /// RFC 793's processing of a SYN in a synchronized state instead of RFC 5961 §4's: a SYN in the
    /// window resets the connection and is answered with an RST (FreeBSD's net.inet.tcp.insecure_syn);
    /// one outside the window still draws an ACK. Off by default (RFC 5961 §4's challenge ACK).
    public var resetsOnSYNInWindow: Bool = false
    /// In TIME-WAIT, every acceptable segment but a duplicate ACK (SEG.SEQ = RCV.NXT, SEG.ACK = SND.NXT,
    /// no text, no FIN) draws an ACK, as FreeBSD's tcp_twcheck (tcp_timewait.c) answers. Off by
    /// default: RFC 9293 §3.10.7.4 has TIME-WAIT acknowledge only the remote FIN's retransmission and
    /// ignore the rest, and anything outside the window is acknowledged either way.
    public var acknowledgesSegmentsInTimeWait: Bool = false
    /// Whether a SYN with FIN set is taken as a SYN, its FIN ignored — FreeBSD's answer with
    /// net.inet.tcp.drop_synfin=0 (tcp_input.c: its syncache ignores the FIN) — or dropped, as Linux
    /// does and by default: RFC 9293 gives the combination no meaning (a SYN's FIN would close a
    /// connection before it exists), and scanners use it to fingerprint stacks.
    public var acceptsSYNWithFIN: Bool = false
    /// Whether a SYN-ACK with FIN in SYN-SENT is processed — ESTABLISHED, then the FIN (RFC 9293
    /// §3.10.7.3; Linux's tcp_rcv_synsent_state_process) — when `acceptsSYNWithFIN` is off. Off, it is
    /// dropped like any SYN with FIN, as FreeBSD's net.inet.tcp.drop_synfin=1 drops it in every state.
    public var acceptsSYNACKWithFIN: Bool = true
    /// Which segments for no connection draw RFC 9293 §3.10.7.1's RST: all of them (the RFC's rule,
    /// the default), all but SYNs, or none — FreeBSD's net.inet.tcp.blackhole 0, 1 and 2, which hide
    /// closed ports from scans (tcp_input.c, dropwithreset).
    public var closedPortResets: ClosedPortResets = .all
    /// Path MTU discovery from ICMP (RFC 1191, RFC 8201): the cache's ageing and bounds.
    public var pathMTU = PathMTUConfiguration()
    /// RFC 4821 black-hole detection and probing (Linux's `tcp_mtu_probing=1`: on once a black hole
    /// is suspected); nil turns it off.
    public var mtuProbing: MTUProbing? = MTUProbing()
    /// TCP Fast Open (RFC 7413): data in the SYN, for clients that hold a cookie from the server
    /// (FastOpen.swift). Client on, server off by default, as Linux's tcp_fastopen = 1.
    public var fastOpen = FastOpen()

    /// RFC 9293's and Linux's defaults (see each property).
    public init() {}

    /// Segments for no connection that are answered with an RST (`closedPortResets`).
    public enum ClosedPortResets: Sendable, Hashable {
        /// RFC 9293 §3.10.7.1: every segment but an RST.
        case all
        /// No RST for a SYN (FreeBSD's blackhole = 1).
        case exceptSYN
        /// No RST at all (FreeBSD's blackhole = 2).
        case none
    }

    /// The Window Scale shift a SYN or SYN-ACK of ours offers (RFC 7323 §2.3).
    var offeredWindowShift: UInt8 {
        if let windowScaleShift { return min(windowScaleShift, 14) }
        return TCPConnection.windowShift(forBuffer: max(receiveBufferSize, receiveBufferMaximum ?? 0))
    }
}

// MARK: - Presets

extension TCPConfiguration {
    /// A server's buffers, comparable with Linux's (tcp_rmem 4096 131072 6291456 for years, and
    /// 33554432 as the maximum of recent kernels; tcp_wmem's 4 MiB): each connection starts with
    /// 128 KiB to receive and 256 KiB to send and grows as far as its path and its reader need, to
    /// 8 MiB to receive — enough for 670 Mbit/s at 100 ms — and 16 MiB to send. Our send buffer
    /// counts payload (Linux counts truesize, about twice that), and must hold a whole window in
    /// flight plus what the application queued behind it: 4 MiB would cap one 100 ms flow at
    /// 335 Mbit/s, and 8 MiB held the kernel's curl to 8 MiB per round trip while a loaded host
    /// stretched that round trip to 250–500 ms (the kernel offered 20 MB of window; the send
    /// buffer, full, was all that limited the flight). A larger receive maximum would overshoot a
    /// path's queue in slow start by more (cwnd doubles until the receive window, HyStart++ or a
    /// loss stops it): 16 MiB into a 500 Mbit/s, 100 ms path with a one-BDP queue lost 13% of
    /// its segments and averaged less than 8 MiB did. The send maximum does not: the receiver's
    /// window bounds the flight.
    ///
    /// Slow start counts every segment an ACK delivers (`slowStartLimitSegments` nil), as Linux's
    /// tcp_slow_start does: a Linux receiver whose reader wakes once per burst acknowledges the
    /// whole burst with one ACK when the reader has drained it (__tcp_ack_snd_check waits for the
    /// window to reopen), and RFC 5681's one SMSS per ACK then grows cwnd by one segment per round
    /// trip — a 100 MB download over 100 ms sat at 80 KB a flight for two seconds. HyStart++
    /// (`hyStart`, RFC 9406) ends that slow start when the round trip shows a queue building.
    public static var server: TCPConfiguration {
        var tcp = TCPConfiguration()
        tcp.receiveBufferSize = 128 * 1024
        tcp.receiveBufferMaximum = 8 * 1024 * 1024
        // The out-of-order queue may hold twice the largest buffer (as Linux's rcvbuf is twice its
        // window): behind one hole a sender with a full window sends up to the whole 8 MiB, and a
        // 512 KiB bound then dropped in-window segments (a 0.1 % loss simulation retransmitted 370
        // segments for 9 lost). That bound once collapsed the bandwidth-delay sweep's 100 Mbit/s
        // cells (10 ms: 2,155 → 32,506 retransmissions): ssthresh came from a FlightSize that
        // counted the queue's bytes; the sender now takes min(FlightSize, cwnd) (`beginEpisode`).
        tcp.reassemblyLimit = 16 * 1024 * 1024
        tcp.sendBufferSize = 256 * 1024
        tcp.sendBufferMaximum = 16 * 1024 * 1024
        tcp.slowStartLimitSegments = nil
        tcp.hyStart = true
        return tcp
    }

    /// A packet tunnel's (a phone's VPN extension with ~50 MiB for everything): every connection
    /// starts small, 64 KiB each way, and only the flows that fill their window grow, to 4 MiB at
    /// most. Pair it with `StackConfiguration.packetTunnelMemoryBudget` as the hard ceiling for the
    /// whole stack: under its pressure, growth stops and the largest buffers shrink first. Slow
    /// start counts every segment delivered and runs under HyStart++, as `server`'s does.
    public static var packetTunnel: TCPConfiguration {
        var tcp = TCPConfiguration()
        tcp.receiveBufferSize = 64 * 1024
        tcp.receiveBufferMaximum = 4 * 1024 * 1024
        tcp.sendBufferSize = 64 * 1024
        tcp.sendBufferMaximum = 4 * 1024 * 1024
        tcp.slowStartLimitSegments = nil
        tcp.hyStart = true
        return tcp
    }
}

/// Keep-alive probing of an idle connection (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6).
public struct Keepalive: Sendable, Hashable {
    /// Idle time before the first probe; RFC 1122 §4.2.3.6: "MUST be configurable and MUST default
    /// to no less than two hours" (Linux TCP_KEEPIDLE, tcp_keepalive_time).
    public var idle: TimeAmount
    /// Time between unanswered probes (TCP_KEEPINTVL; Linux 75 s).
    public var interval: TimeAmount
    /// Unanswered probes before the connection is aborted (TCP_KEEPCNT; Linux 9).
    public var probes: Int

    /// Keep-alive with these timings: by default RFC 1122's two hours idle, then Linux's 75 s and 9 probes.
    public init(idle: TimeAmount = .seconds(7200), interval: TimeAmount = .seconds(75), probes: Int = 9) {
        self.idle = idle
        self.interval = interval
        self.probes = probes
    }
}

/// How the receiver keeps the peer from sending in small segments (RFC 9293 §3.8.6.2.2: "A TCP
/// implementation MUST include a SWS avoidance algorithm in the receiver (MUST-39)"; the RFC's is a
/// suggestion).
public enum ReceiverSWSAvoidance: String, Hashable, Sendable {
    /// RFC 9293 §3.8.6.2.2's suggested algorithm: keep the right edge RCV.NXT+RCV.WND fixed until it
    /// can move by min(Fr·RCV.BUFF, Eff.snd.MSS), Fr = 1/2 (Linux works the same way).
    case rightEdge
    /// 4.4BSD's (FreeBSD's tcp_output): every segment carries all the free space, except that a
    /// window smaller than both RCV.BUFF/4 and the MSS is not offered (the right edge stays where
    /// it was, as RFC 9293 §3.8.6 SHLD-14 asks). The right edge may move by a few octets, but the
    /// peer never sees a small usable window to fill, which is what the syndrome needs. Whether a
    /// pure window update is worth a segment is still judged by the right-edge rule.
    case smallWindows
}

/// The segment the persist timer sends into a zero window (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17).
public enum ZeroWindowProbe: String, Hashable, Sendable {
    /// "At least one octet of new data (if available)" (RFC 9293 §3.8.6.1), as 4.4BSD and FreeBSD:
    /// the receiver takes it if its window has opened, and answers with an ACK either way.
    case newData
    /// DEVIATION(RFC 9293 §3.8.6.1): a zero-length segment at SND.UNA − 1, as Linux
    /// (tcp_xmit_probe_skb) — the form of an RFC 1122 §4.2.3.6 keep-alive. It is outside the
    /// receiver's window, so RFC 9293 §3.10.7.4 makes the receiver answer with an ACK carrying its
    /// current window; no octet is sent before the window says it may be.
    case acknowledgmentRequest
}

/// RCV.WND in the segment acceptability test (RFC 9293 §3.10.7.4).
public enum ReceiveWindowForAcceptance: String, Hashable, Sendable {
    /// What we announced: the space beyond the right edge we told the peer about is not in the
    /// window (RFC 9293 §3.8.6.2.2 "space available but not yet advertised").
    case announced
    /// The larger of that and the buffer's free space, as FreeBSD (tcp_input's rcv_wnd): data
    /// the buffer can hold is accepted even where the window field could not say so — an unscaled
    /// window caps at 65535 — or the SWS algorithm has not yet offered it. The RST and SYN windows
    /// of RFC 5961 §3.2 and §4.2 widen with it.
    case bufferSpace
}

/// What a listener does with the ACK completing a handshake when its accept queue is full.
public enum AcceptQueueOverflow: String, Hashable, Sendable {
    /// Drop the ACK and keep the half-open entry; the SYN-ACK retransmission asks again later
    /// (Linux's default, tcp_abort_on_overflow = 0).
    case dropAck = "drop"
    /// Answer with an RST and forget the connection (tcp_abort_on_overflow = 1).
    case reset
}

/// Whether a connection may use ECN (RFC 3168 §6.1.1), as Linux's tcp_ecn sysctl.
public enum ExplicitCongestionNotification: String, Hashable, Sendable, CaseIterable {
    /// Never: SYNs and SYN-ACKs carry neither ECE nor CWR (tcp_ecn = 0).
    case off
    /// Answer an ECN-setup SYN with an ECN-setup SYN-ACK; active opens do not ask (tcp_ecn = 2).
    case acceptWhenRequested = "accept"
    /// Also send an ECN-setup SYN on active opens (tcp_ecn = 1).
    case request
}

/// ICMP's knobs (RFC 792, RFC 1122 §3.2.2, RFC 4443). Defaults are Linux's.
public struct ICMPConfiguration: Sendable, Hashable {
    /// Answer echo requests to our addresses (RFC 1122 §3.2.2.6: MUST). Off is Linux's
    /// `icmp_echo_ignore_all`.
    public var answersEcho: Bool = true
    /// The token bucket every ICMP error we send draws from (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8):
    /// tokens per second, Linux's `icmp_msgs_per_sec`; 0 sends none.
    public var errorsPerSecond: Int = 1000
    /// The bucket's depth: errors that may go out at once after a quiet spell (`icmp_msgs_burst`).
    public var errorBurst: Int = 50

    /// Linux's defaults: echo answered, 1,000 errors per second in bursts of 50.
    public init() {}
}

/// UDP's knobs (RFC 768, RFC 1122 §4.1).
public struct UDPConfiguration: Sendable, Hashable {
    /// Storage an endpoint's queue of unread datagrams may pin (the buffers they arrived in, as
    /// Linux's `SO_RCVBUF` counts `skb->truesize`); beyond it arriving datagrams are dropped and
    /// counted (`udpReceiveBufferErrors`). Linux's `rmem_default`.
    public var receiveBufferSize: Int = 212_992
    /// Most UDP endpoints the stack holds at once.
    public var maximumEndpoints: Int = 65_536

    /// Linux's defaults.
    public init() {}
}
