@testable import TCPIP
import TCPIPWire
import Testing

/// Longest prefix match (RFC 1812 §5.2.4.3) over flattened ranges, checked against the definition.
@Suite struct RoutingTableTests {
    static func route(_ prefix: String, _ link: Int) -> RoutingTable.Route {
        RoutingTable.Route(IPPrefix(prefix)!, link: link)
    }

    @Test func longestPrefixWins() {
        let table = RoutingTable([
            Self.route("198.18.0.0/15", 0), Self.route("198.18.2.0/24", 1), Self.route("198.18.2.128/25", 2),
            Self.route("198.18.2.200/32", 3),
        ])
        #expect(table.link(for: IPAddress("198.18.0.1")!) == 0)
        #expect(table.link(for: IPAddress("198.18.2.1")!) == 1)
        #expect(table.link(for: IPAddress("198.18.2.129")!) == 2)
        #expect(table.link(for: IPAddress("198.18.2.200")!) == 3)
        #expect(table.link(for: IPAddress("198.18.2.201")!) == 2)
        #expect(table.link(for: IPAddress("198.18.3.0")!) == 0)
        #expect(table.link(for: IPAddress("198.19.255.255")!) == 0)
        #expect(table.link(for: IPAddress("198.20.0.0")!) == nil)
        #expect(table.link(for: IPAddress("2001:db8::1")!) == nil)
    }

    @Test func defaultRoutesCoverEverything() {
        let table = RoutingTable([Self.route("0.0.0.0/0", 7), Self.route("::/0", 8), Self.route("2001:db8::/32", 9)])
        #expect(table.link(for: IPAddress("0.0.0.0")!) == 7)
        #expect(table.link(for: IPAddress("255.255.255.255")!) == 7)
        #expect(table.link(for: IPAddress("2001:db8:ffff::1")!) == 9)
        #expect(table.link(for: IPAddress("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")!) == 8)
        #expect(table.link(for: IPAddress("::")!) == 8)
    }

    @Test func aRouteForTheSamePrefixReplacesAndRemoveForgets() {
        var table = RoutingTable([Self.route("198.18.0.0/24", 0)])
        table.add(Self.route("198.18.0.0/24", 1))
        #expect(table.link(for: IPAddress("198.18.0.9")!) == 1)
        #expect(table.routes.count == 1)
        table.remove(IPPrefix("198.18.0.0/24")!)
        #expect(table.link(for: IPAddress("198.18.0.9")!) == nil)
    }

    /// Random tables against a linear scan for the longest matching prefix, both families.
    @Test func agreesWithALinearScan() {
        var random = SeededGenerator(seed: 2020)
        for round in 0..<40 {
            var routes: [RoutingTable.Route] = []
            for index in 0..<(round + 1) * 5 {
                let v4 = random.next() & 1 == 0
                // Addresses from a small space, so that prefixes nest and collide.
                let bits = random.next()
                let address: IPAddress = v4
                    ? .v4(IPv4Address(rawValue: UInt32(truncatingIfNeeded: bits) & 0xC6_12_0F_FF | 0xC6_12_00_00))
                    : .v6(IPv6Address(high: 0x2001_0DB8_0000_0000 | (bits & 0xF), low: bits >> 8 & 0xFF))
                let length = Int(random.next() % UInt64(v4 ? 33 : 129))
                routes.append(RoutingTable.Route(IPPrefix(address, length: length)!, link: index))
            }
            let table = RoutingTable(routes)
            // The table keeps the last route per prefix, as `add` does.
            var effective: [IPPrefix: Int] = [:]
            for route in routes { effective[route.prefix] = route.link }
            for _ in 0..<200 {
                let bits = random.next()
                let address: IPAddress = bits & 1 == 0
                    ? .v4(IPv4Address(rawValue: UInt32(truncatingIfNeeded: bits >> 1) & 0xC6_12_0F_FF | 0xC6_12_00_00))
                    : .v6(IPv6Address(high: 0x2001_0DB8_0000_0000 | (bits >> 1 & 0xF), low: bits >> 9 & 0xFF))
                let best = effective.filter { $0.key.contains(address) }.max { $0.key.length < $1.key.length }
                #expect(table.link(for: address) == best?.value, "\(address) in round \(round)")
            }
        }
    }

    /// Ten thousand routes flatten to at most twice as many ranges, each lookup a binary search.
    @Test func tenThousandRoutes() {
        var routes: [RoutingTable.Route] = [Self.route("198.18.0.0/15", 0)]
        for index in 0..<10_000 {
            routes.append(RoutingTable.Route(
                IPPrefix(.v4(IPv4Address(rawValue: 0xC612_0000 + UInt32(index) << 3)), length: 29)!, link: 1 + index % 3))
        }
        let table = RoutingTable(routes)
        #expect(table.spanCount <= 2 * routes.count + 1)
        #expect(table.link(for: IPAddress("198.18.0.17")!) == 3)
        #expect(table.link(for: .v4(IPv4Address(rawValue: 0xC612_0000 + 9_999 << 3 + 5))) == 1 + 9_999 % 3)
        #expect(table.link(for: IPAddress("198.19.200.1")!) == 0)
    }
}
