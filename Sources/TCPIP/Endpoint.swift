import TCPIPWire

/// One end of a TCP connection: an IP address and a port (RFC 9293 §3.1's "socket").
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    @inlinable
    public init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// As netstat and ss print it: `198.18.0.1:5001`, `[2001:db8::1]:5001`.
    ///
    /// IPv6 addresses are bracketed (RFC 5952 §6) because the address itself contains colons.
    public var description: String {
        switch address {
        case .v4(let v4): "\(v4):\(port)"
        case .v6(let v6): "[\(v6)]:\(port)"
        }
    }

    /// As tcpdump prints it: `198.18.0.1.5001`, `2001:db8::1.5001`.
    public var tcpdumpDescription: String {
        "\(address).\(port)"
    }
}

/// The four numbers that name a connection: local and remote endpoints (RFC 9293 §3.4's "socket pair").
public struct FourTuple: Hashable, Sendable, CustomStringConvertible {
    public var local: Endpoint
    public var remote: Endpoint

    @inlinable
    public init(local: Endpoint, remote: Endpoint) {
        self.local = local
        self.remote = remote
    }

    /// The same connection as the peer names it.
    @inlinable
    public var reversed: FourTuple {
        FourTuple(local: remote, remote: local)
    }

    /// `local > remote` in tcpdump's notation, as in a segment we send.
    public var description: String {
        "\(local.tcpdumpDescription) > \(remote.tcpdumpDescription)"
    }

    /// Every packet looks its 4-tuple up at least once, and a connection's life inserts and removes
    /// it in three tables (half-open, connections, TIME-WAIT). The tuple is folded into three words
    /// and hashed by `_rawHashValue(seed:)`, which `Dictionary` and `Set` call.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(_rawHashValue(seed: 0))
    }

    /// The hash tables' hash: two rounds of a 64×64→128-bit multiply folded to 64 bits, keyed by
    /// the table's seed and a per-process secret drawn from `Hasher` — as Linux hashes its
    /// established table with jhash and a boot-time secret (`inet_ehashfn`). An attacker who picks
    /// source addresses and ports cannot aim them at one bucket without the secret. It replaces
    /// SipHash-1-3 through `Hasher`: the hasher's seeding, combining and finalizing were 7% of the
    /// connection-rate benchmark under perf. Equal tuples hash equally (`hash(into:)` uses it too).
    public func _rawHashValue(seed: Int) -> Int {
        let addresses: UInt64
        switch (local.address, remote.address) {
        case (.v4(let localAddress), .v4(let remoteAddress)):
            addresses = UInt64(localAddress.rawValue) << 32 | UInt64(remoteAddress.rawValue)
        default:
            addresses = Self.fold(local.address) &* 0x9E37_79B9_7F4A_7C15 ^ Self.fold(remote.address)
        }
        let ports = UInt64(local.port) << 16 | UInt64(remote.port)
        let key = TupleHashKey.secret
        let first = Self.multiplyFold(addresses ^ key.0, ports ^ key.1 ^ UInt64(UInt(bitPattern: seed)))
        return Int(truncatingIfNeeded: Self.multiplyFold(first ^ key.2, key.3))
    }

    @inline(__always)
    private static func multiplyFold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    @inline(__always)
    private static func fold(_ address: IPAddress) -> UInt64 {
        switch address {
        case .v4(let v4): UInt64(v4.rawValue)
        case .v6(let v6): multiplyFold(v6.high ^ 0xA076_1D64_78BD_642F, v6.low ^ 0xE703_7ED1_A0B4_28DB)
        }
    }
}

/// The secret of `FourTuple`'s hash: drawn once per process from `Hasher`, so it is random per run,
/// and fixed when `SWIFT_DETERMINISTIC_HASHING` is set, as every other hash is. Odd words, so a
/// multiply by one never loses bits.
private enum TupleHashKey {
    static let secret: (UInt64, UInt64, UInt64, UInt64) = {
        func word(_ salt: Int) -> UInt64 {
            var hasher = Hasher()
            hasher.combine(salt)
            return UInt64(UInt(bitPattern: hasher.finalize())) | 1
        }
        return (word(1), word(2), word(3), word(4))
    }()
}
