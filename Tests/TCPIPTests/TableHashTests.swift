import Testing
import TCPIPWire
@testable import TCPIP

/// `TableHash`, behind the 4-tuple and address tables: equal values hash equally under every seed,
/// and the values a client or an attacker varies (ports, addresses) spread over the buckets.
@Suite struct TableHashTests {
    private func tuple(remote: IPAddress, port: UInt16, local: IPAddress = .v4(IPv4Address(198, 18, 0, 1))) -> FourTuple {
        FourTuple(local: Endpoint(local, 80), remote: Endpoint(remote, port))
    }

    @Test func equalValuesHashEquallyUnderEverySeed() {
        let a = tuple(remote: .v6(IPv6Address(high: 0x2001_0db8 << 32, low: 7)), port: 40000)
        let b = tuple(remote: .v6(IPv6Address(high: 0x2001_0db8 << 32, low: 7)), port: 40000)
        for seed in [0, 1, -1, 0x5EED] {
            #expect(a._rawHashValue(seed: seed) == b._rawHashValue(seed: seed))
            #expect(a.local.address._rawHashValue(seed: seed) == b.local.address._rawHashValue(seed: seed))
        }
        #expect(a.hashValue == b.hashValue)
    }

    @Test func tablesFindWhatWasStored() {
        var table: [FourTuple: Int] = [:]
        var addresses = Set<IPAddress>()
        for index in 0..<5000 {
            let v4 = IPAddress.v4(IPv4Address(rawValue: 0xC612_0000 | UInt32(index % 300)))
            let v6 = IPAddress.v6(IPv6Address(high: 0x2001_0db8 << 32, low: UInt64(index % 300)))
            table[tuple(remote: v4, port: UInt16(index))] = index
            table[tuple(remote: v6, port: UInt16(index), local: .v6(IPv6Address(high: 0x2001_0db8 << 32, low: 1)))] = -index
            addresses.insert(v4)
            addresses.insert(v6)
        }
        #expect(table.count == 10000)
        #expect(addresses.count == 600)
        #expect(table[tuple(remote: .v4(IPv4Address(rawValue: 0xC612_0000 | 42)), port: 42)] == 42)
        #expect(addresses.contains(.v6(IPv6Address(high: 0x2001_0db8 << 32, low: 299))))
        #expect(!addresses.contains(.v6(IPv6Address(high: 0x2001_0db8 << 32, low: 300))))
    }

    /// 65,536 tuples that differ only in the remote port (one client, every ephemeral port) land in
    /// nearly as many of 65,536 buckets as random numbers would (about 63% occupancy).
    @Test func portsSpreadOverTheBuckets() {
        var buckets = Set<Int>()
        for port in 0...UInt16.max {
            let hash = tuple(remote: .v4(IPv4Address(198, 19, 0, 9)), port: port)._rawHashValue(seed: 12345)
            buckets.insert(hash & 0xFFFF)
        }
        #expect(buckets.count > 39_000)
    }
}
