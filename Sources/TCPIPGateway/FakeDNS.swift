import NIOCore
import TCPIPWire

/// The little of DNS (RFC 1035) fake DNS needs: read a standard query with one question, and answer
/// it with A or AAAA records. Everything else is not ours to answer (`parseQuery` returns nil) and
/// is relayed upstream untouched. Sans-IO; hostile input is rejected, never trusted for a length.
public enum DNSMessage {
    /// RFC 1035 §3.2.2: TYPE values we answer.
    public static let typeA: UInt16 = 1
    /// RFC 3596 §2.1: the AAAA record, an IPv6 address.
    public static let typeAAAA: UInt16 = 28
    /// RFC 1035 §3.2.4: CLASS IN.
    public static let classIN: UInt16 = 1

    /// A standard query (QR 0, OPCODE 0) with exactly one question.
    public struct Query: Hashable, Sendable {
        /// The header's ID, copied into the answer so the client matches it (RFC 1035 §4.1.1).
        public var id: UInt16
        /// The header's RD bit, echoed in the answer (RFC 1035 §4.1.1).
        public var recursionDesired: Bool
        /// The name, its labels joined by dots, lowercased (RFC 4343: names compare case-insensitively).
        public var name: String
        /// QTYPE: ``DNSMessage/typeA``, ``DNSMessage/typeAAAA`` or any other the query asks for.
        public var type: UInt16
        /// QCLASS: ``DNSMessage/classIN`` for anything the pool answers.
        public var qclass: UInt16
        /// The question's wire form (QNAME QTYPE QCLASS), repeated in the answer.
        var question: ByteBuffer
    }

    /// The query in `message`, or nil when it is anything but a standard query with one question
    /// and no answer or authority records, or is malformed (RFC 1035 §4.1).
    ///
    /// - Parameter message: a UDP payload sent to port 53.
    public static func parseQuery(_ message: ByteBuffer) -> Query? {
        var buffer = message
        guard let id = buffer.readInteger(as: UInt16.self), let flags = buffer.readInteger(as: UInt16.self),
            let questions = buffer.readInteger(as: UInt16.self), let answers = buffer.readInteger(as: UInt16.self),
            let authorities = buffer.readInteger(as: UInt16.self), buffer.readInteger(as: UInt16.self) != nil
        else { return nil }
        // RFC 1035 §4.1.1: QR (bit 15) 0 is a query; OPCODE (bits 11–14) 0 is a standard query.
        guard flags & 0x8000 == 0, (flags >> 11) & 0xF == 0, questions == 1, answers == 0, authorities == 0 else {
            return nil
        }
        let questionStart = buffer.readerIndex
        var labels: [String] = []
        var nameLength = 0
        while true {
            guard let length = buffer.readInteger(as: UInt8.self) else { return nil }
            if length == 0 { break }
            // §4.1.4: a pointer (top bits 11) has no place in a query's only question; 01 and 10 are reserved.
            guard length & 0xC0 == 0 else { return nil }
            nameLength += Int(length) + 1
            // §2.3.4: labels of 63 octets or less, names of 255 octets or less.
            guard nameLength <= 255, let bytes = buffer.readBytes(length: Int(length)) else { return nil }
            labels.append(String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self))
        }
        guard !labels.isEmpty, let type = buffer.readInteger(as: UInt16.self), let qclass = buffer.readInteger(as: UInt16.self),
            let question = message.getSlice(at: questionStart, length: buffer.readerIndex - questionStart)
        else { return nil }
        return Query(
            id: id, recursionDesired: flags & 0x0100 != 0, name: labels.joined(separator: "."), type: type,
            qclass: qclass, question: question)
    }

    /// A response to `query` with `addresses` as its answer records (each A or AAAA by its family),
    /// none for NODATA. TTL in seconds.
    ///
    /// - Parameters:
    ///   - query: the query answered.
    ///   - addresses: the answer records' addresses.
    ///   - ttl: seconds the client may cache them.
    public static func answer(_ query: Query, addresses: [IPAddress], ttl: UInt32) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(12 + query.question.readableBytes + addresses.count * 28)
        buffer.writeInteger(query.id)
        // QR 1, OPCODE 0, AA 1 (the mapping is ours), RD as asked, RA 1, RCODE 0.
        buffer.writeInteger(UInt16(0x8480) | (query.recursionDesired ? 0x0100 : 0))
        buffer.writeInteger(UInt16(1))
        buffer.writeInteger(UInt16(addresses.count))
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt16(0))
        var question = query.question
        buffer.writeBuffer(&question)
        for address in addresses {
            // §4.1.4: the name as a pointer to the question's, at offset 12.
            buffer.writeInteger(UInt16(0xC00C))
            switch address {
            case .v4(let v4):
                buffer.writeInteger(typeA)
                buffer.writeInteger(classIN)
                buffer.writeInteger(ttl)
                buffer.writeInteger(UInt16(4))
                buffer.writeInteger(v4.rawValue)
            case .v6(let v6):
                buffer.writeInteger(typeAAAA)
                buffer.writeInteger(classIN)
                buffer.writeInteger(ttl)
                buffer.writeInteger(UInt16(16))
                buffer.writeInteger(v6.high)
                buffer.writeInteger(v6.low)
            }
        }
        return buffer
    }
}

/// Fake DNS: names answered with addresses from a pool, mapped back when a flow goes to one of
/// them, so the upstream connects by name. The pool is bounded; when it is full the least recently
/// used name gives its address up (as clash's and sing-box's fake-IP, hev's MappedDNS).
public struct FakeDNSPool: Sendable {
    /// The pool's first usable address (the network's address + 1) and how many it holds.
    public let base: IPAddress
    /// How many addresses the pool holds: at most `limit`, at most what the prefix leaves.
    public let capacity: Int
    /// The prefix length of the pool's CIDR (`17` for `198.18.128.0/17`).
    public let prefixLength: Int
    /// Seconds a client may cache an answer: short, so a recycled address is not used for long.
    public var ttl: UInt32 = 1

    private var indexByName: [String: Int] = [:]
    private var names: [String?]
    // The LRU list through the slots: most recent at `head`, least at `tail`.
    private var previous: [Int]
    private var next: [Int]
    private var head = -1
    private var tail = -1
    /// Names that lost their address to a newer one.
    public private(set) var recycled = 0

    /// A pool over `cidr` (`198.18.128.0/17`, `2001:db8:53::/112`), at most `limit` addresses.
    /// nil when the text is not a CIDR or leaves no address.
    ///
    /// - Parameters:
    ///   - cidr: the pool's network, an address and a prefix length.
    ///   - limit: the most addresses the pool hands out, however large the network.
    public init?(cidr: String, limit: Int = 65_536) {
        let parts = cidr.split(separator: "/")
        guard parts.count == 2, let address = IPAddress(String(parts[0])), let length = Int(parts[1]), limit > 0 else {
            return nil
        }
        let bits: Int
        switch address {
        case .v4: bits = 32
        case .v6: bits = 128
        }
        guard (0...bits).contains(length) else { return nil }
        let hostBits = bits - length
        // The network's own address and (IPv4) its broadcast address are left out.
        let available = hostBits >= 62 ? Int.max : (1 << hostBits) - 2
        guard available > 0 else { return nil }
        self.prefixLength = length
        self.capacity = min(available, limit)
        switch address {
        case .v4(let v4):
            let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
            self.base = .v4(IPv4Address(rawValue: (v4.rawValue & mask) &+ 1))
        case .v6(let v6):
            let (high, low) = Self.mask(v6, length)
            self.base = .v6(Self.add(IPv6Address(high: high, low: low), 1))
        }
        names = Array(repeating: nil, count: capacity)
        previous = Array(repeating: -1, count: capacity)
        next = Array(repeating: -1, count: capacity)
    }

    /// How many names are mapped.
    public var count: Int { indexByName.count }

    /// The address for `name`: its own if it has one (now the most recently used), else a free one,
    /// else the least recently used name's.
    ///
    /// - Parameter name: a name from a query, lowercased.
    public mutating func address(for name: String) -> IPAddress {
        if let index = indexByName[name] {
            touch(index)
            return address(at: index)
        }
        let index: Int
        if indexByName.count < capacity {
            index = indexByName.count
        } else {
            index = tail
            unlink(index)
            if let old = names[index] { indexByName[old] = nil }
            recycled += 1
        }
        names[index] = name
        indexByName[name] = index
        pushFront(index)
        return address(at: index)
    }

    /// The name mapped to `address`, or nil when it is not one of the pool's or not in use.
    ///
    /// - Parameter address: a connection's or datagram's destination.
    public mutating func name(for address: IPAddress) -> String? {
        guard let index = index(of: address), let name = names[index] else { return nil }
        touch(index)
        return name
    }

    /// Whether `address` is in the pool's range.
    ///
    /// - Parameter address: any address.
    public func contains(_ address: IPAddress) -> Bool { index(of: address) != nil }

    /// The family of the pool's addresses.
    public var isIPv6: Bool { if case .v6 = base { true } else { false } }

    private func address(at index: Int) -> IPAddress {
        switch base {
        case .v4(let v4): .v4(IPv4Address(rawValue: v4.rawValue &+ UInt32(index)))
        case .v6(let v6): .v6(Self.add(v6, UInt64(index)))
        }
    }

    private func index(of address: IPAddress) -> Int? {
        switch (base, address) {
        case (.v4(let base), .v4(let address)):
            guard address.rawValue >= base.rawValue else { return nil }
            let offset = UInt64(address.rawValue - base.rawValue)
            return offset < UInt64(capacity) ? Int(offset) : nil
        case (.v6(let base), .v6(let address)):
            guard address.high == base.high || address.high == base.high &+ 1 else { return nil }
            let (difference, borrow) = address.low.subtractingReportingOverflow(base.low)
            let highDifference = address.high &- base.high &- (borrow ? 1 : 0)
            guard highDifference == 0, difference < UInt64(capacity) else { return nil }
            return Int(difference)
        default:
            return nil
        }
    }

    private static func mask(_ address: IPv6Address, _ length: Int) -> (UInt64, UInt64) {
        let highMask: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~UInt64(0) << UInt64(64 - length))
        let lowMask: UInt64 = length <= 64 ? 0 : (length >= 128 ? ~0 : ~UInt64(0) << UInt64(128 - length))
        return (address.high & highMask, address.low & lowMask)
    }

    private static func add(_ address: IPv6Address, _ value: UInt64) -> IPv6Address {
        let (low, carry) = address.low.addingReportingOverflow(value)
        return IPv6Address(high: address.high &+ (carry ? 1 : 0), low: low)
    }

    private mutating func touch(_ index: Int) {
        guard head != index else { return }
        unlink(index)
        pushFront(index)
    }

    private mutating func unlink(_ index: Int) {
        let before = previous[index]
        let after = next[index]
        if before >= 0 { next[before] = after } else if head == index { head = after }
        if after >= 0 { previous[after] = before } else if tail == index { tail = before }
        previous[index] = -1
        next[index] = -1
    }

    private mutating func pushFront(_ index: Int) {
        previous[index] = -1
        next[index] = head
        if head >= 0 { previous[head] = index }
        head = index
        if tail < 0 { tail = index }
    }

    /// The answer to a query fake DNS takes (A or AAAA, class IN), or nil to relay it upstream.
    /// A query of the other family than the pool's gets an empty answer (NODATA), so the client
    /// uses the family the pool has.
    ///
    /// - Parameter message: a UDP payload sent to port 53.
    public mutating func answer(_ message: ByteBuffer) -> ByteBuffer? {
        guard let query = DNSMessage.parseQuery(message), query.qclass == DNSMessage.classIN,
            query.type == DNSMessage.typeA || query.type == DNSMessage.typeAAAA
        else { return nil }
        let wantsIPv6 = query.type == DNSMessage.typeAAAA
        guard wantsIPv6 == isIPv6 else { return DNSMessage.answer(query, addresses: [], ttl: ttl) }
        return DNSMessage.answer(query, addresses: [address(for: query.name)], ttl: ttl)
    }
}
