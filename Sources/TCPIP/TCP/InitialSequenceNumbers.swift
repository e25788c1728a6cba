import TCPIPWire

/// Chooses initial sequence numbers as RFC 6528 §3 says: ISN = M + F(localip, localport, remoteip,
/// remoteport, secretkey).
///
/// M is a clock ticking every 4 microseconds (the RFC 9293 §3.4.1 ISN clock), so successive incarnations
/// of one 4-tuple get increasing ISNs and old duplicates fall outside the new window. F is SipHash-2-4
/// keyed by a secret drawn once, so an off-path attacker cannot predict another connection's ISN.
struct InitialSequenceNumberGenerator: Sendable {
    private let key0: UInt64
    private let key1: UInt64

    /// Draws the secret key from `generator` (RFC 6528 §3: a secret key, here fixed for the stack's life).
    init(generator: inout some RandomNumberGenerator) {
        key0 = generator.next()
        key1 = generator.next()
    }

    func initialSequenceNumber(for tuple: FourTuple, now: Instant) -> SequenceNumber {
        // RFC 6528 §3: M, "a 4 microsecond timer", truncated to 32 bits.
        let m = UInt32(truncatingIfNeeded: now.nanoseconds / 4_000)
        return SequenceNumber(m &+ UInt32(truncatingIfNeeded: f(tuple)))
    }

    /// RFC 6528 §3: F, a keyed hash of the connection-id.
    private func f(_ tuple: FourTuple) -> UInt64 {
        var hasher = SipHash24(key0: key0, key1: key1)
        hasher.combine(tuple.local.address)
        hasher.combine(tuple.local.port)
        hasher.combine(tuple.remote.address)
        hasher.combine(tuple.remote.port)
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
