import Testing
@testable import tcpip
import TCPIP

/// `tcpip demo syn-flood` shows what the issue asks: with cookies off the legitimate clients fail,
/// with cookies they all get in while the SYN queue stays at its bound; and the run is reproducible.
@Suite struct SYNFloodDemoTests {
    static func options(_ cookies: SYNCookieMode) -> SYNFloodDemo.Options {
        var options = SYNFloodDemo.Options()
        options.cookies = cookies
        options.floodRate = 500
        options.floodSeconds = 3
        options.legitimateClients = 6
        return options
    }

    @Test func withoutCookiesEveryClientFails() {
        let (lines, outcome) = SYNFloodDemo.lines(Self.options(.off))
        #expect(outcome.established == 0 && outcome.failed == 6)
        #expect(outcome.synQueuePeak == 16)
        #expect(outcome.cookiesSent == 0)
        #expect(lines.last == "legit_established=0/6 syn_queue_peak=16 cookies_sent=0 cookies_validated=0 peak_memory_bytes=\(outcome.peakMemoryBytes)")
    }

    @Test func withCookiesEveryClientGetsIn() {
        let (lines, outcome) = SYNFloodDemo.lines(Self.options(.whenSYNQueueFull))
        #expect(outcome.established == 6 && outcome.failed == 0)
        #expect(outcome.synQueuePeak == 16)
        #expect(outcome.cookiesValidated == 6)
        #expect(outcome.cookiesRejected == 0)
        #expect(outcome.latencies.allSatisfy { $0 == .milliseconds(10) })
        #expect(lines.last?.hasPrefix("legit_established=6/6 syn_queue_peak=16 cookies_sent=") == true)
    }

    @Test func alwaysKeepsTheSynQueueEmpty() {
        let (_, outcome) = SYNFloodDemo.lines(Self.options(.always))
        #expect(outcome.established == 6)
        #expect(outcome.synQueuePeak == 0)
    }

    @Test func sameOptionsSameOutput() {
        #expect(SYNFloodDemo.lines(Self.options(.whenSYNQueueFull)).lines
            == SYNFloodDemo.lines(Self.options(.whenSYNQueueFull)).lines)
    }

    @Test func commandLineTakesTheIssuesOptions() throws {
        let command = try TCPIPCommand.parseAsRoot([
            "demo", "syn-flood", "--syn-cookies", "off", "--flood-rate", "100", "--flood-seconds", "2",
            "--legit", "3", "--backlog", "8", "--seed", "7",
        ])
        let flood = try #require(command as? DemoSYNFlood)
        #expect(flood.cookies == .off && flood.floodRate == 100 && flood.backlog == 8 && flood.seed == 7)
        #expect(throws: (any Error).self) { try TCPIPCommand.parseAsRoot(["demo", "syn-flood", "--syn-cookies", "sometimes"]) }
    }
}
