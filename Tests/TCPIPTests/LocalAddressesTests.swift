import Testing
import TCPIPWire
@testable import TCPIP

@Suite struct LocalAddressesTests {
    @Test func answersLikeTheListItWasBuiltFrom() {
        // 256 IPv4 addresses as the connection-rate client has them, a few IPv6 ones, and the
        // all-zeros address, whose widened value must not be mistaken for a free slot.
        var addresses: [IPAddress] = (0..<256).map { .v4(IPv4Address(198, 19, UInt8($0 >> 4), UInt8($0 & 0xF))) }
        addresses.append(.v4(IPv4Address(rawValue: 0)))
        addresses += (1...3).map { .v6(IPv6Address(high: 0x2001_0db8_0000_0000, low: UInt64($0))) }
        let local = LocalAddresses(addresses)
        for address in addresses { #expect(local.contains(address)) }
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<10_000 {
            let v4: IPAddress = .v4(IPv4Address(rawValue: UInt32(truncatingIfNeeded: generator.next())))
            #expect(local.contains(v4) == addresses.contains(v4))
        }
        #expect(!local.contains(.v4(IPv4Address(198, 18, 0, 1))))
        #expect(!local.contains(.v6(IPv6Address(high: 0x2001_0db8_0000_0000, low: 4))))
    }

    @Test func manyIPv6AddressesAndNoIPv4() {
        let addresses: [IPAddress] = (1...20).map { .v6(IPv6Address(high: 0x2001_0db8_0000_0001, low: UInt64($0))) }
        let local = LocalAddresses(addresses)
        for address in addresses { #expect(local.contains(address)) }
        #expect(!local.contains(.v4(IPv4Address(198, 18, 0, 1))))
        #expect(!local.contains(.v6(IPv6Address(high: 0x2001_0db8_0000_0001, low: 21))))
    }

    @Test func duplicatesTakeOneSlot() {
        let address: IPAddress = .v4(IPv4Address(198, 18, 0, 1))
        let local = LocalAddresses([address, address, address])
        #expect(local.contains(address))
        #expect(!local.contains(.v4(IPv4Address(198, 18, 0, 2))))
    }
}
