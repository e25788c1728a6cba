import NIOCore
import NIOPosix
import TCPIP
@testable import TCPIPGateway
import TCPIPWire
import Testing

@Suite struct FakeDNSTests {
    /// A standard query (RFC 1035 §4.1) for `name`, type `type`, RD set, one OPT record as dig adds.
    static func query(_ name: String, type: UInt16, id: UInt16 = 0x1234) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(id)
        buffer.writeInteger(UInt16(0x0100))
        buffer.writeInteger(UInt16(1))
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt16(1))
        for label in name.split(separator: ".") {
            buffer.writeInteger(UInt8(label.utf8.count))
            buffer.writeString(String(label))
        }
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(type)
        buffer.writeInteger(UInt16(1))
        // OPT (RFC 6891): root name, type 41, UDP size 1232, no options.
        buffer.writeBytes([0x00, 0x00, 0x29, 0x04, 0xD0, 0, 0, 0, 0, 0, 0])
        return buffer
    }

    /// The addresses in an answer's A/AAAA records, checking the header on the way.
    static func answers(_ message: ByteBuffer, id: UInt16) -> [IPAddress]? {
        var buffer = message
        guard buffer.readInteger(as: UInt16.self) == id, let flags = buffer.readInteger(as: UInt16.self), flags & 0x8000 != 0,
            flags & 0xF == 0, buffer.readInteger(as: UInt16.self) == 1, let count = buffer.readInteger(as: UInt16.self)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        while let length = buffer.readInteger(as: UInt8.self), length > 0 { buffer.moveReaderIndex(forwardBy: Int(length)) }
        buffer.moveReaderIndex(forwardBy: 4)
        var addresses: [IPAddress] = []
        for _ in 0..<count {
            guard buffer.readInteger(as: UInt16.self) == 0xC00C, let type = buffer.readInteger(as: UInt16.self),
                buffer.readInteger(as: UInt16.self) == 1, buffer.readInteger(as: UInt32.self) != nil,
                let length = buffer.readInteger(as: UInt16.self)
            else { return nil }
            if type == 1, length == 4, let raw = buffer.readInteger(as: UInt32.self) {
                addresses.append(.v4(IPv4Address(rawValue: raw)))
            } else if type == 28, length == 16, let high = buffer.readInteger(as: UInt64.self), let low = buffer.readInteger(as: UInt64.self) {
                addresses.append(.v6(IPv6Address(high: high, low: low)))
            } else {
                return nil
            }
        }
        return buffer.readableBytes == 0 ? addresses : nil
    }

    @Test func parsesAStandardQuery() throws {
        let query = try #require(DNSMessage.parseQuery(Self.query("Target.TEST", type: DNSMessage.typeA)))
        #expect(query.id == 0x1234)
        #expect(query.name == "target.test")
        #expect(query.type == DNSMessage.typeA)
        #expect(query.qclass == DNSMessage.classIN)
        #expect(query.recursionDesired)
    }

    @Test func answersAWithAnAddressFromThePoolAndMapsItBack() throws {
        var pool = try #require(FakeDNSPool(cidr: "198.18.128.0/17"))
        let answer = try #require(pool.answer(Self.query("target.test", type: DNSMessage.typeA, id: 7)) as ByteBuffer?)
        let addresses = try #require(Self.answers(answer, id: 7))
        #expect(addresses == [.v4(IPv4Address(198, 18, 128, 1))])
        let mapped = pool.name(for: .v4(IPv4Address(198, 18, 128, 1)))
        #expect(mapped == "target.test")
        // The same name keeps its address; another gets the next.
        let again = try #require(pool.answer(Self.query("TARGET.test", type: 1, id: 8)) as ByteBuffer?)
        #expect(Self.answers(again, id: 8) == addresses)
        let other = pool.address(for: "other.test")
        #expect(other == .v4(IPv4Address(198, 18, 128, 2)))
        let unused = pool.name(for: .v4(IPv4Address(198, 18, 128, 3)))
        let outside = pool.name(for: .v4(IPv4Address(198, 19, 0, 1)))
        #expect(unused == nil)
        #expect(outside == nil)
    }

    @Test func aaaaFromAnIPv4PoolIsNoDataAndOtherTypesGoUpstream() throws {
        var pool = try #require(FakeDNSPool(cidr: "198.18.128.0/17"))
        let answer = try #require(pool.answer(Self.query("target.test", type: DNSMessage.typeAAAA, id: 9)) as ByteBuffer?)
        #expect(Self.answers(answer, id: 9) == [])
        let mx = pool.answer(Self.query("target.test", type: 15))
        #expect(mx == nil)
        #expect(pool.count == 0)
    }

    @Test func anIPv6PoolAnswersAAAA() throws {
        var pool = try #require(FakeDNSPool(cidr: "2001:db8:53::/112"))
        let answer = try #require(pool.answer(Self.query("target.test", type: DNSMessage.typeAAAA, id: 3)) as ByteBuffer?)
        let expected = try #require(IPAddress("2001:db8:53::1"))
        #expect(Self.answers(answer, id: 3) == [expected])
        let mapped = pool.name(for: expected)
        #expect(mapped == "target.test")
    }

    @Test func theLeastRecentlyUsedNameGivesUpItsAddressWhenThePoolIsFull() throws {
        var pool = try #require(FakeDNSPool(cidr: "198.18.128.0/17", limit: 3))
        let a = pool.address(for: "a.test")
        let b = pool.address(for: "b.test")
        let c = pool.address(for: "c.test")
        // A connection to a's address makes it recent; b is now the least recently used.
        let first = pool.name(for: a)
        #expect(first == "a.test")
        let d = pool.address(for: "d.test")
        #expect(d == b)
        let names = [pool.name(for: b), pool.name(for: a), pool.name(for: c)]
        #expect(names == ["d.test", "a.test", "c.test"])
        #expect(pool.count == 3)
        #expect(pool.recycled == 1)
        // b comes back: d (touched before a and c) is now the oldest.
        let back = pool.address(for: "b.test")
        #expect(back == b)
    }

    /// `--queues N`: the kernel may hash a query to one queue and the connection to its answer to
    /// another. Their gateways share one pool, so the second maps the address back to the name.
    @Test func aNameAnsweredOnOneQueueIsConnectedByNameOnAnother() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let loops = Array(group.makeIterator())
        let shared = SharedFakeDNS(try #require(FakeDNSPool(cidr: "198.18.128.0/17")))
        let configuration = GatewayConfiguration(upstream: DirectUpstream())
        let answer = try loops[0].submit {
            Gateway(configuration: configuration, loop: loops[0], fakeDNS: shared).answerDNS(Self.query("target.test", type: DNSMessage.typeA, id: 9))
        }.wait()
        let answered = try #require(answer)
        let address = try #require(Self.answers(answered, id: 9)?.first)
        let target = try loops[1].submit {
            Gateway(configuration: configuration, loop: loops[1], fakeDNS: shared).target(for: Endpoint(address, 443)).description
        }.wait()
        #expect(target == "target.test:443")
        // A gateway with a pool of its own (one queue) does not know the name.
        let alone = try loops[1].submit {
            var own = configuration
            own.fakeDNS = FakeDNSPool(cidr: "198.18.128.0/17")
            return Gateway(configuration: own, loop: loops[1]).target(for: Endpoint(address, 443)).description
        }.wait()
        #expect(alone == "\(address):443")
    }

    @Test func rejectsWhatIsNotAPlainQuery() {
        var response = Self.query("a.test", type: 1)
        response.setInteger(UInt16(0x8100), at: 2)  // QR set
        #expect(DNSMessage.parseQuery(response) == nil)
        var pointer = ByteBuffer(bytes: [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1])
        #expect(DNSMessage.parseQuery(pointer) == nil)
        pointer = ByteBuffer(bytes: [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 0x61])
        #expect(DNSMessage.parseQuery(pointer) == nil)
        #expect(FakeDNSPool(cidr: "198.18.0.1/32") == nil)
        #expect(FakeDNSPool(cidr: "not/a/cidr") == nil)
    }

    /// Hostile input: every truncation and every single-byte change of a query, and random bytes,
    /// parse to a query or to nil, never a trap; an answer is built only for what parsed.
    @Test func hostileInputIsDroppedNeverATrap() throws {
        var pool = try #require(FakeDNSPool(cidr: "198.18.128.0/30"))
        let query = Self.query("a-rather-long-label.example.test", type: 1)
        for length in 0...query.readableBytes {
            _ = pool.answer(try #require(query.getSlice(at: 0, length: length)))
        }
        for index in 0..<query.readableBytes {
            for value: UInt8 in [0x00, 0x3F, 0x40, 0xC0, 0xFF] {
                var mutated = query
                mutated.setInteger(value, at: index)
                _ = pool.answer(mutated)
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<80, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = pool.answer(ByteBuffer(bytes: bytes))
        }
        #expect(pool.count <= 2)
    }
}
