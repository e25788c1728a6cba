@testable import TCPIPGateway
import Testing

@Suite struct FlowTableTests {
    /// Nobody prints the table (`--status-interval 0`): finished flows must not pile up, one record
    /// per relayed flow for the life of the gateway. The most recent `finishedKept` stay.
    @Test func finishedFlowsAreForgottenWithoutReports() {
        let table = FlowTable()
        for port in 0..<512 {
            let flow = table.open(.tcp, client: "198.18.0.1:\(1024 + port)", destination: "198.19.0.1:5002", upstream: "direct")
            table.refuse(flow)
        }
        let live = table.open(.tcp, client: "198.18.0.1:9999", destination: "198.19.0.1:5002", upstream: "direct")
        // The sweep at the 512th open kept the 256 most recent finished flows.
        #expect(table.all.count == 257 + 1)
        #expect(table.finished == 255)
        #expect(table.active.map(\.id) == [live.id])
        #expect(table.all.first?.client == "198.18.0.1:1279")
    }
}
