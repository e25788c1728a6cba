import TCPIPWire

/// Chooses the local port of an active open: RFC 6056 §3.3.4, Algorithm 4 ("Double-Hash Port
/// Selection"), over `StackConfiguration.ephemeralPorts` (by default IANA's 49152–65535, RFC 6056 §3.2).
///
/// F(local address, remote address, remote port, secret) picks where each destination's search
/// starts, so an off-path attacker cannot guess our ports for a destination from those it sees us
/// use for another; `table[G(…)]` counts on from there, so successive connections to one destination
/// take successive ports and a port comes back to that destination only after the whole range has
/// been used — the longest a 4-tuple can stay out of use, which is what TIME-WAIT wants.
struct EphemeralPorts {
    let range: ClosedRange<UInt16>
    var count: Int { range.count }
    /// RFC 6056 §3.3.4 leaves the table's length open (its example has 10); Linux uses 65,536
    /// entries. A few hundred keep unrelated destinations from sharing a counter, in 512 bytes.
    static let tableLength = 256

    private let key0: UInt64
    private let key1: UInt64
    private var table: [UInt16]

    /// Draws the secret key and the table's starting values from `generator` (RFC 6056 §3.3.4:
    /// "table[i] = random() % 65536" at boot).
    init(range: ClosedRange<UInt16>, generator: inout SeededGenerator) {
        // Port 0 is no port (RFC 9293 §3.9.2): a range that includes it starts at 1.
        self.range = max(range.lowerBound, 1)...max(range.upperBound, 1)
        key0 = generator.next()
        key1 = generator.next()
        table = (0..<Self.tableLength).map { _ in UInt16(truncatingIfNeeded: generator.next()) }
    }

    /// One search for a port from `local` to `remote`: `next()` gives the candidates in the order
    /// RFC 6056 tries them, each port of the range once in `count` calls.
    struct Search {
        fileprivate let offset: UInt32
        fileprivate let index: Int
    }

    mutating func search(from local: IPAddress, to remote: Endpoint) -> Search {
        // F and G from one keyed hash: its low 32 bits are the offset, its high bits the index —
        // as independent as two hashes with two keys, for one SipHash instead of two.
        let hash = Self.hash(from: local, to: remote, key0: key0, key1: key1)
        return Search(offset: UInt32(truncatingIfNeeded: hash), index: Int(hash >> 32) % Self.tableLength)
    }

    /// SipHash-2-4 of (local address, remote address, remote port). Between IPv4 addresses that is
    /// 12 message bytes, (4, local, 4, remote, port), put into their two words directly.
    @inline(__always)
    static func hash(from local: IPAddress, to remote: Endpoint, key0: UInt64, key1: UInt64) -> UInt64 {
        if case .v4(let from) = local, case .v4(let to) = remote.address {
            let first = 4 | UInt64(from.rawValue) << 8 | 4 << 40 | UInt64(truncatingIfNeeded: to.rawValue) << 48
            let rest = UInt64(to.rawValue >> 16) | UInt64(remote.port) << 16
            return SipHash24.hash(key0: key0, key1: key1, first: first, rest: rest, length: 12)
        }
        var hasher = SipHash24(key0: key0, key1: key1)
        hasher.combine(local)
        hasher.combine(remote.address)
        hasher.combine(remote.port)
        return hasher.finalize()
    }

    /// "port = min_ephemeral + (offset + table[index]) % num_ephemeral; table[index]++"
    mutating func next(_ search: Search) -> UInt16 {
        let step = UInt32(table[search.index])
        table[search.index] &+= 1
        let position = (search.offset &+ step) % UInt32(count)
        return range.lowerBound + UInt16(position)
    }
}
