import TCPIPWire

/// Identification values for the datagrams we fragment, chosen as RFC 7739 §5.3 suggests:
///
///     Identification = F(Src IP, Dst IP, secret1) + counter[G(Src IP, Dst Pref, secret2)]
///
/// F, a keyed hash, makes the values unpredictable to anyone off the path (no idle scans, no
/// forged fragments aimed at a reassembly, RFC 7739 §4); the counter, bumped on each use, keeps
/// successive values to one destination distinct for as long as it can. The hash is SipHash-2-4 with
/// secrets drawn from the stack's generator, so a seed reproduces a run. IPv4 sends the low 16 bits.
struct FragmentIdentifiers {
    /// RFC 7739 §5.3 suggests 8K counters or more; 4,096 at 4 octets each are 16 KiB, allocated on
    /// first use (most stacks never fragment).
    static let counterCount = 4096

    private let secret1: (UInt64, UInt64)
    private let secret2: (UInt64, UInt64)
    private var generator: SeededGenerator
    private var counters: [UInt32] = []

    init(generator: consuming SeededGenerator) {
        secret1 = (generator.next(), generator.next())
        secret2 = (generator.next(), generator.next())
        self.generator = generator
    }

    /// The Identification of the next datagram from `source` to `destination`.
    mutating func next(source: IPAddress, destination: IPAddress) -> UInt32 {
        if counters.isEmpty {
            // RFC 7739 §5.3: "Each counter should be initialized to a pseudo-random value".
            counters = (0..<Self.counterCount).map { _ in UInt32(truncatingIfNeeded: generator.next()) }
        }
        var f = SipHash24(key0: secret1.0, key1: secret1.1)
        f.combine(source)
        f.combine(destination)
        var g = SipHash24(key0: secret2.0, key1: secret2.1)
        g.combine(source)
        // RFC 7739 §5.3: the destination's prefix (its first eight octets for IPv6), so that an
        // attacker with many addresses in one subnet does not get many counters to probe.
        switch destination {
        case .v4(let address): g.combine(address.rawValue)
        case .v6(let address): g.combine(address.high)
        }
        let slot = Int(g.finalize() % UInt64(Self.counterCount))
        counters[slot] &+= 1
        return UInt32(truncatingIfNeeded: f.finalize()) &+ counters[slot]
    }
}
