import NIOCore
import TCPIPWire

/// When a listener answers a SYN with a cookie instead of a half-open entry (RFC 4987 §3.6).
public enum SYNCookieMode: String, Hashable, Sendable, CaseIterable {
    /// Never: a full SYN queue drops SYNs (what a flood of spoofed SYNs exploits).
    case off
    /// Only while the listener's SYN queue is full, as Linux's `tcp_syncookies = 1` (the default).
    case whenSYNQueueFull = "overflow"
    /// For every SYN: no half-open state at all (Linux's `tcp_syncookies = 2`).
    case always
}

/// SYN cookies (RFC 4987 §3.6): the state of a half-open connection put into the ISN of our SYN-ACK
/// (and, when the peer uses timestamps, into our TSval), so that a SYN costs no memory and the final
/// ACK, echoing both, brings it back.
///
/// The ISN, 32 bits:
///
/// ```
///  31  30 29  28 27                                                  0
/// +------+------+-----------------------------------------------------+
/// |count | MSS  |  SipHash-2-4(secret[count]; 4-tuple, peer ISN,        |
/// |mod 4 |index |               count, MSS index)  mod 2^28             |
/// +------+------+-----------------------------------------------------+
/// ```
///
/// `count` is a coarse clock (one tick per `counterPeriod`, 64 s as Linux's `tcp_cookie_time`); only
/// cookies of the current tick and the one before are accepted, so a cookie lives 64–128 s. Each
/// tick has its own secret, drawn from the seeded generator when the tick first needs one and
/// forgotten two ticks later: a leaked or brute-forced secret is worth at most two minutes.
///
/// The MAC is 28 bits where Linux keeps 24: a blind attacker guessing an ACK succeeds with
/// probability 2^-28 per try, and the MAC covers the MSS index, so a valid cookie cannot be turned
/// into one with a different MSS.
///
/// Our TSval, when the peer sent timestamps (as Linux's `cookie_init_timestamp`): its low 6 bits
/// carry what the ISN has no room for, and the peer echoes them in TSecr:
///
/// ```
///   5     4      3..0
/// +----+------+--------------------------------+
/// |ECN | SACK | peer's window shift, 15 = none |
/// +----+------+--------------------------------+
/// ```
///
/// Without timestamps there is nowhere to keep window scale and SACK-permitted, so the cookie
/// SYN-ACK does not offer them (as Linux clears the options in `tcp_conn_request`).
struct SYNCookies {
    /// One tick of the cookie clock (Linux: 60 s; a power of two of seconds here).
    static let counterPeriod: TimeAmount = .seconds(64)
    /// Ticks a cookie may be behind the current one and still validate (Linux's MAX_SYNCOOKIE_AGE - 1).
    static let maximumAge: UInt64 = 1
    /// The MSS values a cookie can name (Linux's `msstab` for IPv4 and IPv6): the peer's MSS is
    /// rounded down to the nearest.
    static let mssTableIPv4: [UInt16] = [536, 1300, 1440, 1460]
    static let mssTableIPv6: [UInt16] = [1220, 1420, 1440, 8940]
    /// Low bits of our TSval that carry the options.
    static let timestampOptionBits: UInt32 = 6

    private static let macBits: UInt32 = 28

    private struct Secret {
        var counter: UInt64 = .max
        var key0: UInt64 = 0
        var key1: UInt64 = 0
    }

    private var generator: SeededGenerator
    /// One secret per counter value modulo 4; a slot is re-keyed when a new tick needs it.
    private var secrets = [Secret](repeating: Secret(), count: 4)
    /// When a cookie was last sent, for `.whenSYNQueueFull`: ACKs are checked as cookies only while
    /// a cookie could still be valid (Linux's `tcp_synq_no_recent_overflow`).
    private(set) var lastSent: Instant?

    init(generator: SeededGenerator) {
        self.generator = generator
    }

    /// What a cookie brings back: the peer's SYN as far as it matters after the handshake.
    struct Decoded: Hashable {
        var iss: SequenceNumber
        var irs: SequenceNumber
        var options: TCPOptions
        /// The ECN bit of the timestamp: our SYN-ACK was ECN-setup (RFC 3168 §6.1.1).
        var ecn: Bool
    }

    /// Why a final ACK did not carry a valid cookie.
    enum Rejection: Error, Hashable {
        /// The MAC does not match: forged, or a wrong MSS index, tuple or peer ISN.
        case badMAC
        /// The counter is older than `maximumAge` ticks (or from the future).
        case staleCounter
    }

    static func counter(at now: Instant) -> UInt64 {
        UInt64(max(0, now.nanoseconds)) / UInt64(counterPeriod.nanoseconds)
    }

    /// Whether an ACK arriving at a listener should be checked as a cookie now.
    func mayHaveSentValidCookies(now: Instant) -> Bool {
        guard let lastSent else { return false }
        return Self.counter(at: now) &- Self.counter(at: lastSent) <= Self.maximumAge
    }

    // MARK: Making a cookie

    /// The ISN for a SYN-ACK answering `peerISN` on `tuple` with a cookie.
    mutating func initialSequenceNumber(
        for tuple: FourTuple, peerISN: SequenceNumber, peerMSS: UInt16?, now: Instant
    ) -> SequenceNumber {
        let counter = Self.counter(at: now)
        let index = Self.mssIndex(for: peerMSS, remote: tuple.remote.address)
        let secret = secretForSending(counter)
        let mac = Self.mac(secret, tuple: tuple, peerISN: peerISN, counter: counter, mssIndex: index)
        lastSent = now
        return SequenceNumber(UInt32(truncatingIfNeeded: counter & 3) << 30 | index << 28 | mac)
    }

    /// The largest table entry not above the peer's MSS (the smallest when it is below them all).
    static func mssIndex(for peerMSS: UInt16?, remote: IPAddress) -> UInt32 {
        let table = mssTable(for: remote)
        // RFC 9293 §3.7.1: no MSS option means the default, which the smallest entry is.
        guard let peerMSS else { return 0 }
        var index = 0
        for (candidate, value) in table.enumerated() where value <= peerMSS { index = candidate }
        return UInt32(index)
    }

    static func mssTable(for remote: IPAddress) -> [UInt16] {
        if case .v6 = remote { mssTableIPv6 } else { mssTableIPv4 }
    }

    /// Our TSval for a cookie SYN-ACK: the clock with its low bits replaced by the options, never
    /// ahead of the clock (RFC 7323 §5.4 wants it monotonic; 63 ms behind is harmless).
    static func timestampValue(clock: UInt32, peerWindowScale: UInt8?, sackPermitted: Bool, ecn: Bool) -> UInt32 {
        let mask: UInt32 = (1 << timestampOptionBits) - 1
        let shift = peerWindowScale.map { UInt32(min($0, 14)) } ?? 0xF
        let bits = shift | (sackPermitted ? 1 << 4 : 0) | (ecn ? 1 << 5 : 0)
        let value = (clock & ~mask) | bits
        return bits > clock & mask ? value &- (mask + 1) : value
    }

    // MARK: Checking a cookie

    /// Recovers the SYN from a final ACK (SEG.ACK = cookie + 1, SEG.SEQ = peer ISN + 1), or says
    /// why it cannot. `timestamps` is the ACK's TSopt, whose TSecr echoes our cookie TSval.
    func validate(
        tuple: FourTuple, sequence: SequenceNumber, acknowledgment: SequenceNumber,
        timestamps: TCPTimestamps?, now: Instant
    ) -> Result<Decoded, Rejection> {
        let cookie = (acknowledgment - 1).rawValue
        let peerISN = sequence - 1
        let current = Self.counter(at: now)
        // The most recent tick with the cookie's two low bits; older than maximumAge is stale.
        let age = (current &- UInt64(cookie >> 30)) & 3
        guard age <= Self.maximumAge, current >= age else { return .failure(.staleCounter) }
        let counter = current - age
        guard let secret = secretForChecking(counter) else { return .failure(.staleCounter) }
        let index = (cookie >> 28) & 3
        let mac = Self.mac(secret, tuple: tuple, peerISN: peerISN, counter: counter, mssIndex: index)
        guard mac == cookie & ((1 << Self.macBits) - 1) else { return .failure(.badMAC) }

        var options = TCPOptions(maximumSegmentSize: Self.mssTable(for: tuple.remote.address)[Int(index)])
        var ecn = false
        if let timestamps {
            // The echoed TSval: its low bits are the options of the SYN.
            let bits = timestamps.echoReply & ((1 << Self.timestampOptionBits) - 1)
            let shift = UInt8(bits & 0xF)
            if shift != 0xF { options.windowScale = min(shift, 14) }
            options.sackPermitted = bits & (1 << 4) != 0
            ecn = bits & (1 << 5) != 0
            options.timestamps = TCPTimestamps(value: timestamps.value, echoReply: 0)
        }
        return .success(Decoded(iss: SequenceNumber(cookie), irs: peerISN, options: options, ecn: ecn))
    }

    // MARK: Secrets

    private mutating func secretForSending(_ counter: UInt64) -> Secret {
        let slot = Int(counter & 3)
        if secrets[slot].counter != counter {
            secrets[slot] = Secret(counter: counter, key0: generator.next(), key1: generator.next())
        }
        return secrets[slot]
    }

    private func secretForChecking(_ counter: UInt64) -> Secret? {
        let secret = secrets[Int(counter & 3)]
        return secret.counter == counter ? secret : nil
    }

    private static func mac(
        _ secret: Secret, tuple: FourTuple, peerISN: SequenceNumber, counter: UInt64, mssIndex: UInt32
    ) -> UInt32 {
        var hasher = SipHash24(key0: secret.key0, key1: secret.key1)
        hasher.combine(tuple)
        hasher.combine(peerISN.rawValue)
        hasher.combine(counter)
        hasher.combine(UInt8(truncatingIfNeeded: mssIndex))
        return UInt32(truncatingIfNeeded: hasher.finalize()) & ((1 << macBits) - 1)
    }
}

extension SipHash24 {
    @inline(__always)
    mutating func combine(_ tuple: FourTuple) {
        combine(tuple.local.address)
        combine(tuple.local.port)
        combine(tuple.remote.address)
        combine(tuple.remote.port)
    }
}
