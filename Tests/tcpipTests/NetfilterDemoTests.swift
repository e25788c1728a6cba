import Testing

@testable import tcpip

/// `tcpip demo netfilter` as a newcomer sees it (a snapshot), and what it must show: the SYN's walk
/// through four hooks, the flood held to the meter's rate while every legitimate client gets in.
@Suite struct NetfilterDemoTests {
    @Test func outputMatchesTheSnapshot() throws {
        let (lines, outcome) = NetfilterDemo.lines(NetfilterDemo.Options())
        #expect(outcome.established == NetfilterDemo.Options().legitimateClients)
        try Snapshot.check(lines.joined(separator: "\n") + "\n", named: "netfilter")
    }

    @Test func sameOptionsPrintTheSameOutput() {
        #expect(NetfilterDemo.lines(NetfilterDemo.Options()).lines == NetfilterDemo.lines(NetfilterDemo.Options()).lines)
    }

    @Test func theSYNWalksFourHooksAndTheFloodIsLimited() {
        let (lines, outcome) = NetfilterDemo.lines(NetfilterDemo.Options())
        let walk = lines.filter { $0.hasSuffix("> 198.18.0.1.80 SYN") }.map { $0.split(separator: " ").first.map(String.init) }
        #expect(walk == ["output", "postrouting", "prerouting", "input"])
        // 8 sources at 5 SYNs a second (plus a burst of 5 each) over 3 s: at most 8 × (5 + 15) pass.
        #expect(outcome.floodSYNs == 6000)
        #expect(outcome.floodDropped >= 6000 - 8 * 20)
        #expect(outcome.established == 6)
    }

    @Test func linesFitEightyColumns() {
        let (lines, _) = NetfilterDemo.lines(NetfilterDemo.Options())
        #expect(lines.filter { $0.count > 80 } == [])
    }
}
