import ArgumentParser
import Testing
@testable import tcpip

/// An option out of range fails with one line that says the range and why.
@Suite struct OptionErrorTests {
    func message<Command: ParsableCommand>(_ type: Command.Type, _ arguments: [String]) -> String? {
        do {
            _ = try type.parse(arguments)
            return nil
        } catch {
            return type.message(for: error)
        }
    }

    @Test func mtuTooSmallForIPv6CitesRFC8200() {
        let text = message(DemoFlowControl.self, ["--mtu", "576", "--ip", "6"])
        #expect(text == "--mtu 576 --ip 6: IPv6 needs an MTU of at least 1280 (RFC 8200 §5)")
    }

    @Test func mtuTooSmallForIPv4SaysWhy() {
        let text = message(DemoFlowControl.self, ["--mtu", "500"])
        #expect(text?.contains("at least 576") == true)
        #expect(text?.contains("RFC 791") == true)
    }

    @Test func mtuTooLargeSaysWhy() {
        #expect(message(DemoFlowControl.self, ["--mtu", "70000"])?.contains("at most 65535") == true)
    }

    @Test func ipVersion() {
        #expect(message(DemoFlowControl.self, ["--ip", "5"]) == "--ip 5: the IP version is 4 or 6")
    }

    @Test func rangesSayTheirBounds() {
        let text = message(DemoSYNFlood.self, ["--backlog", "0"])
        #expect(text?.hasPrefix("--backlog 0: must be 1...65535") == true)
    }

    @Test func everyMessageIsOneLine() {
        for arguments in [["--mtu", "1"], ["--read-size", "0"], ["--bytes", "-1"], ["--ip", "7"]] {
            let text = message(DemoFlowControl.self, arguments)
            #expect(text != nil && !(text!.contains("\n")), "\(arguments): \(text ?? "accepted")")
        }
    }

    @Test func simulateSaysTheRangeOfAProbability() {
        #expect(message(Simulate.self, ["--loss", "2"]) == "--loss 2.0: a probability, from 0 (never) to 1 (always); 0.05 is 5%")
    }

    @Test func simulatePathMTUForIPv6CitesRFC8200() {
        let text = message(Simulate.self, ["--ip", "6", "--path-mtu", "1000"])
        #expect(text == "--path-mtu 1000 --ip 6: IPv6 needs a path MTU of at least 1280 (RFC 8200 §5)")
        #expect(message(Simulate.self, ["--path-mtu", "1600"])?.contains("at most --mtu 1500") == true)
    }

    @Test func simulateQueueHoldsADatagram() {
        #expect(message(Simulate.self, ["--queue-bytes", "100"])?.hasPrefix("--queue-bytes 100: must be 1500...") == true)
    }

    @Test func benchSaysTheRangeOfSeconds() {
        #expect(message(BenchBulk.self, ["--seconds", "0"])?.contains("must be 0.001...86400 seconds") == true)
        #expect(message(BenchConnectionRate.self, ["--threads", "65"])?.hasPrefix("--threads 65: must be 1...64") == true)
    }

    @Test func benchForwardSaysTheRanges() {
        #expect(message(BenchForward.self, ["--size", "20"])?.hasPrefix("--size 20: must be 28...65535") == true)
        #expect(message(BenchForward.self, ["--ip", "5"]) == "--ip 5: the IP version is 4 or 6")
        #expect(message(BenchForward.self, ["--routes", "1"])?.hasPrefix("--routes 1: must be 2...") == true)
    }

    #if os(Linux)
    @Test func routeSaysTheRanges() {
        let routing = ["--tun", "a", "--tun", "b", "--route", "198.18.2.0/24=b"]
        #expect(message(Route.self, routing + ["--batch", "0"])?.hasPrefix("--batch 0: must be 1...65536") == true)
        #expect(message(Route.self, routing + ["--shutdown-timeout", "4000"])?.hasPrefix("--shutdown-timeout 4000") == true)
        #expect(message(Route.self, routing + ["--metrics-port", "70000"])
            == "--metrics-port 70000: a TCP port is 0...65535 (0 picks any free one)")
        #expect(message(Route.self, routing + ["--log-level", "loud"])?.contains("log-level") == true)
        #expect(message(Route.self, routing + ["--impair", "a:delay=5"])?.hasPrefix("--impair a:delay=5: after LINK[.in|.out]:, expected") == true)
    }

    @Test func impairSaysWhatItTakes() {
        let device = ["--tun", "t", "--address", "198.18.0.1"]
        #expect(message(Sink.self, device + ["--impair", "delay=5"])?.hasPrefix("--impair delay=5: expected netem's words") == true)
        // An hour at most: beyond, the nanoseconds would not fit.
        #expect(message(Sink.self, device + ["--impair", "delay=99999999999999ms"])?.contains("0ms to 3600000ms") == true)
        #expect(message(Send.self, device + ["--to", "198.18.0.2:9", "--seconds", "1e300"])?.hasPrefix("--seconds 1e+300: must be") == true)
        #expect(message(Sink.self, ["--tun", "t", "--address", "198.18.0"]) == "--address 198.18.0: not an IP address (198.18.0.2/24, 2001:db8::2/64)")
    }
    #endif

    @Test func scriptSaysWhichProfilesExist() {
        #expect(message(RunScripts.self, ["a.pkt", "--profile", "bsd"])?.contains("linux, freebsd or auto") == true)
    }

    @Test func sendSaysWhatADestinationLooksLike() {
        let text = message(Send.self, ["--tun", "tun0", "--address", "198.18.0.2", "--to", "nowhere", "--bytes", "1"])
        #expect(text == "--to nowhere: where to send, as 198.18.0.1:5001 or [2001:db8::1]:5001")
    }

    @Test func everySimulateMessageIsOneLine() {
        for arguments in [["--mtu", "1"], ["--connections", "0"], ["--delay-ms", "-1"], ["--time-limit", "0"], ["--icmp-blackhole"]] {
            let text = message(Simulate.self, arguments)
            #expect(text != nil && !(text!.contains("\n")), "\(arguments): \(text ?? "accepted")")
        }
    }
}
