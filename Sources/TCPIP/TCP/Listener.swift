import NIOCore
import TCPIPWire

/// A passive OPEN (RFC 9293 §3.10.1): a port in LISTEN, its accept queue, and how many of its
/// half-open connections wait in the stack's SYN queue.
struct Listener {
    /// nil listens on every address of the stack.
    let address: IPAddress?
    let port: UInt16
    /// Established connections not yet accepted; at most `backlog`.
    var acceptQueue = CircularBuffer<SlabHandle>(initialCapacity: 8)
    let backlog: Int
    /// Half-open entries this listener has in the SYN queue.
    var synQueueCount = 0
    let synQueueLimit: Int
    var pendingEvent = false
    /// The MSS the application set (TCP_MAXSEG): announced in SYN-ACKs, and the most we send.
    var maximumSegmentSize: Int?
    /// RFC 7413 §5.1: most Fast Open connections in SYN-RECEIVED at once (TCP_FASTOPEN's qlen);
    /// nil: this listener takes no data from SYNs.
    var fastOpenQueueLimit: Int?
    /// Its Fast Open connections that may still be in SYN-RECEIVED (pruned when counted).
    var fastOpenPending: [SlabHandle] = []
}

/// A connection in SYN-RECEIVED reached through a passive OPEN, kept small until its handshake
/// completes: no buffers, no congestion state — 96 bytes of what the SYN said and what we
/// answered. This is what lets a SYN flood cost little (RFC 4987 §3.2 "SYN cache").
struct HalfOpenConnection {
    let tuple: FourTuple
    let listener: SlabHandle
    /// Our SYN-ACK has gone out more than once (a timeout, or the peer's SYN again), or its send time
    /// is unknown (a SYN cookie): its ACK is no RTT sample (Karn, RFC 6298 §3).
    /// (Declared here, it fills the padding before `retransmitAt`.)
    private(set) var synAckRepeated: Bool
    /// When the next SYN-ACK retransmission is due; the timer entry with this deadline is the live one.
    var retransmitAt: Instant
    let iss: SequenceNumber
    let irs: SequenceNumber
    let timestampOffset: UInt32
    /// What the peer's SYN offered: MSS, window scale, SACK-permitted, its timestamp.
    private var peer: SYNOptions
    /// The window we advertised in our SYN-ACK.
    let advertisedWindow: UInt16
    var retransmissions: UInt16 = 0
    /// When the first SYN-ACK was sent: with `synAckRepeated` false, its ACK measures the RTT.
    let synAckSentAt: Instant

    /// - Parameter synAckSentAt: when the first SYN-ACK is sent; nil when no SYN-ACK of ours was
    ///   timed (a SYN cookie's connection).
    /// - Parameter explicitCongestion: the SYN was ECN-setup and we accept (RFC 3168 §6.1.1): our
    ///   SYN-ACKs say so, and the connection uses ECN.
    init(
        tuple: FourTuple, listener: SlabHandle, iss: SequenceNumber, irs: SequenceNumber, peerOptions: TCPOptions,
        timestampOffset: UInt32, advertisedWindow: UInt16, retransmitAt: Instant, synAckSentAt: Instant?,
        explicitCongestion: Bool = false, fastOpenCookie: TCPFastOpenCookie.Form? = nil
    ) {
        self.tuple = tuple
        self.listener = listener
        self.synAckRepeated = synAckSentAt == nil
        self.synAckSentAt = synAckSentAt ?? retransmitAt
        self.iss = iss
        self.irs = irs
        self.peer = SYNOptions(peerOptions, explicitCongestion: explicitCongestion, fastOpenCookie: fastOpenCookie)
        self.timestampOffset = timestampOffset
        self.advertisedWindow = advertisedWindow
        self.retransmitAt = retransmitAt
    }

    var peerOptions: TCPOptions { peer.options }

    /// RFC 6298 §3 (Karn): when the SYN-ACK that the handshake's ACK acknowledges was sent, if that
    /// ACK is an RTT sample — the SYN-ACK went out once; nil otherwise.
    var timedSYNACK: Instant? { synAckRepeated ? nil : synAckSentAt }

    /// The SYN-ACK is sent again: its ACK will be ambiguous (RFC 6298 §3).
    mutating func synAckRetransmitted() {
        synAckRepeated = true
    }
    /// RFC 3168 §6.1.1: the peer's SYN was ECN-setup and we answer with an ECN-setup SYN-ACK.
    var explicitCongestion: Bool { peer.isExplicitCongestionAgreed }
    /// RFC 7413 §4.2.1: the SYN asked for a Fast Open cookie (or brought an invalid one), and our
    /// SYN-ACK carries one, in the form of the SYN's option.
    var fastOpenCookie: TCPFastOpenCookie.Form? { peer.fastOpenCookie }

    /// RFC 3168 §6.1.1: the peer sent a non-ECN-setup SYN after all (its retransmission, §6.1.1.1),
    /// so ECN is off: our SYN-ACKs say so from now on, and the connection will not use it.
    mutating func withdrawExplicitCongestion() {
        peer = SYNOptions(peer.options, explicitCongestion: false, fastOpenCookie: peer.fastOpenCookie)
    }
}

/// The options of a SYN that matter once it has been answered, packed into 8 bytes where
/// `TCPOptions` takes 56 (it has room for SACK blocks, which a SYN never carries).
struct SYNOptions {
    private let timestampValue: UInt32
    private let maximumSegmentSize: UInt16
    private let windowScale: UInt8
    private let present: UInt8

    private static let hasMSS: UInt8 = 1 << 0
    private static let hasWindowScale: UInt8 = 1 << 1
    private static let sackPermitted: UInt8 = 1 << 2
    private static let hasTimestamps: UInt8 = 1 << 3
    private static let explicitCongestion: UInt8 = 1 << 4
    private static let fastOpenCookie: UInt8 = 1 << 5
    private static let fastOpenExperimental: UInt8 = 1 << 6

    init(_ options: TCPOptions, explicitCongestion: Bool, fastOpenCookie: TCPFastOpenCookie.Form? = nil) {
        timestampValue = options.timestamps?.value ?? 0
        maximumSegmentSize = options.maximumSegmentSize ?? 0
        windowScale = options.windowScale ?? 0
        present = (options.maximumSegmentSize != nil ? Self.hasMSS : 0)
            | (options.windowScale != nil ? Self.hasWindowScale : 0)
            | (options.sackPermitted ? Self.sackPermitted : 0)
            | (options.timestamps != nil ? Self.hasTimestamps : 0)
            | (explicitCongestion ? Self.explicitCongestion : 0)
            | (fastOpenCookie != nil ? Self.fastOpenCookie : 0)
            | (fastOpenCookie == .experimental ? Self.fastOpenExperimental : 0)
    }

    var fastOpenCookie: TCPFastOpenCookie.Form? {
        guard present & Self.fastOpenCookie != 0 else { return nil }
        return present & Self.fastOpenExperimental != 0 ? .experimental : .standard
    }

    var isExplicitCongestionAgreed: Bool { present & Self.explicitCongestion != 0 }

    var options: TCPOptions {
        TCPOptions(
            maximumSegmentSize: present & Self.hasMSS != 0 ? maximumSegmentSize : nil,
            windowScale: present & Self.hasWindowScale != 0 ? windowScale : nil,
            sackPermitted: present & Self.sackPermitted != 0,
            timestamps: present & Self.hasTimestamps != 0 ? TCPTimestamps(value: timestampValue, echoReply: 0) : nil)
    }
}
