/// The hash of the stack's lookup tables (4-tuples, addresses): two rounds of a 64×64→128-bit
/// multiply folded to 64 bits, keyed by the table's seed and a per-process secret.
///
/// Every datagram looks up its addresses and its 4-tuple, and a connection's life inserts and
/// removes its tuple in three tables. Through `Hasher` (SipHash-1-3) the hasher's seeding,
/// combining and finalizing were 7% of `tcpip bench connrate` under perf, and hashing the
/// addresses of a client with 256 of them another 3%. Linux hashes its established table with
/// jhash and a boot-time secret (`inet_ehashfn`) for the same reason: fast, and an attacker who
/// picks source addresses and ports cannot aim them at one bucket without the secret.
///
/// Types use it from `_rawHashValue(seed:)`, which `Dictionary` and `Set` call, and from
/// `hash(into:)`, so equal values hash equally everywhere.
public enum TableHash {
    /// Hashes two words under a table's `seed`.
    @inlinable
    public static func hash(_ first: UInt64, _ second: UInt64, seed: Int) -> Int {
        let key = secret
        let mixed = multiplyFold(first ^ key.0, second ^ key.1 ^ UInt64(UInt(bitPattern: seed)))
        return Int(truncatingIfNeeded: multiplyFold(mixed ^ key.2, key.3))
    }

    /// Folds an IPv6 address (or any two words) into one word.
    @inlinable
    public static func fold(_ high: UInt64, _ low: UInt64) -> UInt64 {
        multiplyFold(high ^ 0xA076_1D64_78BD_642F, low ^ 0xE703_7ED1_A0B4_28DB)
    }

    @inlinable
    static func multiplyFold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    /// Drawn once per process from `Hasher`: random per run, and fixed when
    /// `SWIFT_DETERMINISTIC_HASHING` is set, as every other hash is. Odd words, so that a multiply
    /// by one never loses bits.
    @usableFromInline
    static let secret: (UInt64, UInt64, UInt64, UInt64) = {
        func word(_ salt: Int) -> UInt64 {
            var hasher = Hasher()
            hasher.combine(salt)
            return UInt64(UInt(bitPattern: hasher.finalize())) | 1
        }
        return (word(1), word(2), word(3), word(4))
    }()
}
