import TCPIPWire

/// The two per-connection numbers a keyed hash of the 4-tuple gives a new connection: its initial
/// sequence number as RFC 6528 §3 says, ISN = M + F(localip, localport, remoteip, remoteport,
/// secretkey), and its timestamp clock offset (RFC 7323 §5.4).
///
/// M is a clock ticking every 4 microseconds (the RFC 9293 §3.4.1 ISN clock), so successive incarnations
/// of one 4-tuple get increasing ISNs and old duplicates fall outside the new window. F is SipHash-2-4
/// keyed by a secret drawn once, so an off-path attacker cannot predict another connection's ISN.
///
/// One SipHash call a connection serves both numbers: F is the low 32 bits of its output, the
/// timestamp offset the high 32. SipHash is a PRF, so two disjoint parts of one output are as
/// independent as the outputs of two keys: the offset, which a peer can estimate from our TSvals,
/// tells it nothing about F, and neither tells anything about another 4-tuple's.
struct InitialSequenceNumberGenerator: Sendable {
    private let key0: UInt64
    private let key1: UInt64

    /// Draws the secret key from `generator` (RFC 6528 §3: a secret key, here fixed for the stack's life).
    init(generator: inout some RandomNumberGenerator) {
        key0 = generator.next()
        key1 = generator.next()
    }

    /// A new connection's ISN and timestamp offset, from one keyed hash of its 4-tuple.
    @inline(__always)
    func numbers(for tuple: FourTuple, now: Instant) -> (iss: SequenceNumber, timestampOffset: UInt32) {
        let hash = f(tuple)
        return (Self.initialSequenceNumber(hash, now: now), UInt32(truncatingIfNeeded: hash >> 32))
    }

    func initialSequenceNumber(for tuple: FourTuple, now: Instant) -> SequenceNumber {
        Self.initialSequenceNumber(f(tuple), now: now)
    }

    /// RFC 7323 §5.4: the offset of the connection's timestamp clock, per 4-tuple, so a new
    /// incarnation's TSvals follow the old one's (RFC 6191 at the peer), and a SYN cookie's SYN-ACK
    /// and the connection its ACK creates agree with nothing stored in between.
    func timestampOffset(for tuple: FourTuple) -> UInt32 {
        UInt32(truncatingIfNeeded: f(tuple) >> 32)
    }

    @inline(__always)
    private static func initialSequenceNumber(_ hash: UInt64, now: Instant) -> SequenceNumber {
        // RFC 6528 §3: M, "a 4 microsecond timer", truncated to 32 bits.
        let m = UInt32(truncatingIfNeeded: now.nanoseconds / 4_000)
        return SequenceNumber(m &+ UInt32(truncatingIfNeeded: hash))
    }

    /// RFC 6528 §3: F, a keyed hash of the connection-id.
    private func f(_ tuple: FourTuple) -> UInt64 {
        SipHash24.hash(tuple, key0: key0, key1: key1)
    }
}

extension SipHash24 {
    /// The hash of a 4-tuple, as `combine(_ tuple:)` and `finalize()` give it. An IPv4 tuple is
    /// 14 message bytes, (4, local address, local port, 4, remote address, remote port), put into
    /// their two words directly.
    @inline(__always)
    static func hash(_ tuple: FourTuple, key0: UInt64, key1: UInt64) -> UInt64 {
        if case .v4(let local) = tuple.local.address, case .v4(let remote) = tuple.remote.address {
            let first = 4 | UInt64(local.rawValue) << 8 | UInt64(tuple.local.port) << 40 | 4 << 56
            let rest = UInt64(remote.rawValue) | UInt64(tuple.remote.port) << 32
            return hash(key0: key0, key1: key1, first: first, rest: rest, length: 14)
        }
        var hasher = SipHash24(key0: key0, key1: key1)
        hasher.combine(tuple)
        return hasher.finalize()
    }
}

extension SipHash24 {
    /// Feeds an address, tagged with its family so that no IPv4 address hashes like an IPv6 one.
    @inline(__always)
    mutating func combine(_ address: IPAddress) {
        switch address {
        case .v4(let v4):
            combine(UInt8(4))
            combine(v4.rawValue)
        case .v6(let v6):
            combine(UInt8(6))
            combine(v6.high)
            combine(v6.low)
        }
    }
}
