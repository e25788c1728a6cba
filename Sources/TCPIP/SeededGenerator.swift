/// The stack's only source of randomness: xoshiro256** seeded through SplitMix64.
///
/// ISN secrets, SYN-cookie secrets, ephemeral ports and fault injection all draw from
/// generators of this type, so one seed reproduces a whole run bit for bit.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose whole 256-bit state comes from `source` (e.g. `SystemRandomNumberGenerator`):
    /// its stream reveals nothing about another generator's, as a seed shared through SplitMix64 would.
    public init(entropyFrom source: inout some RandomNumberGenerator) {
        state = (source.next(), source.next(), source.next(), source.next())
        // xoshiro's one forbidden state; 2^-256, but a constant source could hand it over.
        if state == (0, 0, 0, 0) { state.0 = 0x9E37_79B9_7F4A_7C15 }
    }

    /// A generator whose whole sequence follows from `seed` (SplitMix64 fills the state).
    public init(seed: UInt64) {
        var splitMix = seed
        func next() -> UInt64 {
            splitMix &+= 0x9E37_79B9_7F4A_7C15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, 45)
        return result
    }

    /// A new generator whose stream is independent of this one's, for handing to a component.
    public mutating func split() -> SeededGenerator {
        SeededGenerator(seed: next())
    }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }
}
