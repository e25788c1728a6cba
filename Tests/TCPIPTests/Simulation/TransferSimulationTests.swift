import NIOCore
import TCPIP
import TCPIPLinks
import Testing

@Suite struct TransferSimulationTests {
    @Test func cleanTransferIPv4() {
        var configuration = TransferSimulation.Configuration()
        configuration.bytes = 200_000
        let result = TransferSimulation.run(configuration)
        #expect(result.failures == [])
        #expect(result.verified)
        #expect(result.retransmits == 0)
    }
}
