import TCPIPWire

/// A routing table: prefixes to outgoing links, looked up by longest prefix match (RFC 1812
/// §5.2.4.3: "the router MUST choose the route with the longest matching prefix").
///
/// Routes of one family form a laminar family of address ranges (two prefixes are either disjoint
/// or one contains the other), so the table flattens them into disjoint ranges, each labelled with
/// the most specific route that covers it. A lookup is then one binary search — O(log n), no
/// allocation, the same for IPv4 and IPv6 — and the work of longest-match happens once, when a route
/// is added or removed, not per datagram.
///
/// ```
/// routes                         flattened
/// 198.18.0.0/15  -> a            198.18.0.0   – 198.18.1.255 -> a
/// 198.18.2.0/24  -> b            198.18.2.0   – 198.18.2.255 -> b
///                                198.18.3.0   – 198.19.255.255 -> a
/// ```
public struct RoutingTable: Sendable {
    /// One route: datagrams to `prefix` leave by `link` (an index the owner gives meaning to).
    public struct Route: Hashable, Sendable, CustomStringConvertible {
        /// The destinations the route covers.
        public var prefix: IPPrefix
        /// The index of the link they leave by.
        public var link: Int

        /// A route sending `prefix` out of link `link`.
        public init(_ prefix: IPPrefix, link: Int) {
            self.prefix = prefix
            self.link = link
        }

        public var description: String { "\(prefix) -> \(link)" }
    }

    /// A disjoint range of addresses and the link its most specific route names.
    struct Span: Sendable {
        var low: AddressKey
        var high: AddressKey
        var link: Int
    }

    /// The routes as added (one per prefix: a second route for a prefix replaces the first).
    public private(set) var routes: [Route] = []
    private var v4: [Span] = []
    private var v6: [Span] = []

    /// A table of `routes`; of several for one prefix, the last counts.
    public init(_ routes: [Route] = []) {
        var seen = Set<IPPrefix>()
        self.routes = routes.reversed().filter { seen.insert($0.prefix).inserted }.reversed()
        rebuild(v4: true)
        rebuild(v4: false)
    }

    /// Adds `route`, replacing any route for the same prefix.
    public mutating func add(_ route: Route) {
        routes.removeAll { $0.prefix == route.prefix }
        routes.append(route)
        rebuild(v4: route.prefix.address.isV4)
    }

    /// Removes the route for `prefix`, if any.
    public mutating func remove(_ prefix: IPPrefix) {
        routes.removeAll { $0.prefix == prefix }
        rebuild(v4: prefix.address.isV4)
    }

    /// The link of the longest prefix that contains `address`, or nil when no route does.
    @inline(__always)
    public func link(for address: IPAddress) -> Int? {
        switch address {
        case .v4(let v4): Self.search(self.v4, AddressKey(high: 0, low: UInt64(v4.rawValue)))
        case .v6(let v6): Self.search(self.v6, AddressKey(high: v6.high, low: v6.low))
        }
    }

    /// Disjoint ranges after flattening, for tests: what a lookup searches.
    var spanCount: Int { v4.count + v6.count }

    /// The last span starting at or before `key`, if it reaches `key`.
    @inline(__always)
    private static func search(_ spans: [Span], _ key: AddressKey) -> Int? {
        var lower = 0, upper = spans.count
        while lower < upper {
            let middle = (lower + upper) &>> 1
            if key < spans[middle].low { upper = middle } else { lower = middle + 1 }
        }
        guard lower > 0, key <= spans[lower - 1].high else { return nil }
        return spans[lower - 1].link
    }

    private mutating func rebuild(v4 family: Bool) {
        let spans = Self.flatten(routes.filter { $0.prefix.address.isV4 == family })
        if family { v4 = spans } else { v6 = spans }
    }

    /// Sweeps the prefixes in address order, shorter first where they start together, keeping the
    /// enclosing ones on a stack: the top of the stack is the most specific route at the cursor.
    static func flatten(_ routes: [Route]) -> [Span] {
        let sorted = routes.map { route -> (low: AddressKey, high: AddressKey, link: Int) in
            let (low, high) = AddressKey.bounds(route.prefix.address, length: route.prefix.length)
            return (low, high, route.link)
        }.sorted { $0.low != $1.low ? $0.low < $1.low : $1.high < $0.high }
        var spans: [Span] = []
        var open: [(high: AddressKey, link: Int)] = []
        // The first address not yet emitted; nil once the top of the address space is.
        var cursor: AddressKey? = AddressKey(high: 0, low: 0)

        func emit(upTo high: AddressKey, link: Int) {
            guard let start = cursor, start <= high else { return }
            if let last = spans.last, last.link == link, last.high.successor == start, last.high < start {
                spans[spans.count - 1].high = high
            } else {
                spans.append(Span(low: start, high: high, link: link))
            }
            cursor = high.successor > high ? high.successor : nil
        }

        for route in sorted {
            // Close the enclosing ranges that end before this one starts.
            while let top = open.last, top.high < route.low {
                emit(upTo: top.high, link: top.link)
                open.removeLast()
            }
            if let top = open.last, let start = cursor, start < route.low {
                emit(upTo: route.low.predecessor, link: top.link)
            }
            if cursor == nil || cursor! < route.low { cursor = route.low }
            open.append((route.high, route.link))
        }
        while let top = open.popLast() { emit(upTo: top.high, link: top.link) }
        return spans
    }
}

extension AddressKey {
    /// The previous address, saturating at zero.
    var predecessor: AddressKey {
        if low == 0 { return high == 0 ? self : AddressKey(high: high - 1, low: .max) }
        return AddressKey(high: high, low: low - 1)
    }
}
