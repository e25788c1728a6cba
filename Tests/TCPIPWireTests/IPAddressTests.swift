import Testing
import TCPIPWire

@Suite struct IPAddressTests {
    @Test func ipv4RawValue() {
        #expect(IPv4Address(198, 18, 0, 1).rawValue == 0xC612_0001)
        #expect(IPv4Address("198.18.0.1") == IPv4Address(rawValue: 0xC612_0001))
        #expect(IPv4Address(198, 18, 0, 1).description == "198.18.0.1")
        #expect(IPv4Address("0.0.0.0")?.rawValue == 0)
        #expect(IPv4Address("255.255.255.255")?.rawValue == 0xFFFF_FFFF)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.00", "1..2.3", ".1.2.3",
        " 1.2.3.4", "1.2.3.4 ", "-1.2.3.4", "1.2.3.4.", "a.b.c.d", "1.2.3.4/24", "4294967296",
    ])
    func ipv4Rejects(_ text: String) {
        #expect(IPv4Address(text) == nil)
    }

    /// RFC 4291 §2.2 text forms in, RFC 5952 canonical text out.
    @Test(arguments: [
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),      // RFC 5952 §4.1 leading zeros
        ("2001:DB8::1", "2001:db8::1"),                                  // RFC 5952 §4.3 lowercase
        ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),                       // RFC 5952 §4.2.1 longest run
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),                // RFC 5952 §4.2.2 no single zero
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),                         // RFC 5952 §4.2.3 longest wins
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),                   // RFC 5952 §4.2.3 first on a tie
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("fe80::1:2", "fe80::1:2"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),                        // RFC 5952 §5 IPv4-mapped
        ("::FFFF:c000:0201", "::ffff:192.0.2.1"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("::13.1.68.3", "::d01:4403"),                                   // RFC 4291 §2.2, 3.
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ])
    func ipv6RoundTrip(_ input: String, _ canonical: String) throws {
        let address = try #require(IPv6Address(input))
        #expect(address.description == canonical)
        #expect(IPv6Address(canonical) == address)
    }

    @Test func ipv6Halves() throws {
        let address = try #require(IPv6Address("2001:db8:1:2:3:4:5:6"))
        #expect(address.high == 0x2001_0DB8_0001_0002)
        #expect(address.low == 0x0003_0004_0005_0006)
        #expect(IPv6Address(high: 0, low: 1).description == "::1")
    }

    @Test(arguments: [
        "", ":", ":::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", "12345::", ":1::", "1:", "1::2:",
        "g::", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4:5", "1:2:3:4:5:6:7:8::", "::1.2.3.256",
        "1.2.3.4::", " ::1", "::1 ", "::1%eth0",
    ])
    func ipv6Rejects(_ text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test func eitherFamily() {
        #expect(IPAddress("198.18.0.1") == .v4(IPv4Address(198, 18, 0, 1)))
        #expect(IPAddress("2001:db8::1") == .v6(IPv6Address(high: 0x2001_0DB8_0000_0000, low: 1)))
        #expect(IPAddress("nonsense") == nil)
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8::1")
    }
}
