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
}
