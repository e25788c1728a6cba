import Testing
import TCPIPWire
@testable import TCPIP

@Suite struct EndpointTests {
    private let v4 = Endpoint(.v4(IPv4Address(198, 18, 0, 1)), 5001)
    private let v6 = Endpoint(.v6(IPv6Address(high: 0x2001_0db8_0000_0000, low: 1)), 5001)

    @Test func netstatNotation() {
        #expect(v4.description == "198.18.0.1:5001")
        #expect(v6.description == "[2001:db8::1]:5001")
    }

    @Test func tcpdumpNotation() {
        #expect(v4.tcpdumpDescription == "198.18.0.1.5001")
        #expect(v6.tcpdumpDescription == "2001:db8::1.5001")
    }

    @Test func fourTupleReversesAndPrints() {
        let remote = Endpoint(.v4(IPv4Address(198, 18, 0, 2)), 41234)
        let tuple = FourTuple(local: v4, remote: remote)
        #expect(tuple.reversed == FourTuple(local: remote, remote: v4))
        #expect(tuple.reversed.reversed == tuple)
        #expect(tuple.description == "198.18.0.1.5001 > 198.18.0.2.41234")
        #expect(Set([tuple, tuple.reversed, tuple]).count == 2)
    }
}
