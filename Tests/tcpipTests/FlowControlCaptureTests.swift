import Foundation
import TCPIPLinks
import Testing
@testable import tcpip

/// tshark, reading the demo's capture with checksum validation on, must find nothing wrong and must
/// see what the demo said happened: zero windows and zero-window probes.
@Suite struct FlowControlCaptureTests {
    static let requireTshark = ProcessInfo.processInfo.environment["TCPIP_REQUIRE_TSHARK"] == "1"

    @Test(
        .enabled(
            if: TsharkRunner.path != nil || requireTshark,
            "tshark is not installed (apt-get install tshark); TCPIP_REQUIRE_TSHARK=1 makes this a failure"),
        arguments: [4, 6])
    func tsharkAgreesWithTheDemo(ipVersion: Int) throws {
        guard TsharkRunner.path != nil else {
            Issue.record("TCPIP_REQUIRE_TSHARK=1 but tshark is not on PATH")
            return
        }
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("swift-tcpip-flow-control-v\(ipVersion)-\(ProcessInfo.processInfo.processIdentifier).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = FlowControlDemo.Options()
        options.bytes = 30_000
        options.ipVersion = ipVersion
        let sink = try PcapFileSink(path: path)
        let (_, outcome) = FlowControlDemo.lines(options, pcap: sink)
        try sink.close()
        #expect(outcome.verified)

        let validation = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]
        let all = try TsharkRunner.run(["-r", path] + validation).split(separator: "\n")
        #expect(all.count > 50)

        let problems = try TsharkRunner.run(["-r", path] + validation + [
            "-Y", "_ws.malformed or _ws.expert.severity >= \"error\" or tcp.checksum.status != 1 "
                + "or (ip and ip.checksum.status != 1) or tcp.analysis.retransmission or tcp.analysis.lost_segment "
                + "or tcp.analysis.out_of_order or tcp.analysis.duplicate_ack",
        ])
        #expect(problems.isEmpty, "tshark found problems:\n\(problems)")

        let zeroWindows = try TsharkRunner.run(["-r", path] + validation + ["-Y", "tcp.analysis.zero_window"])
            .split(separator: "\n")
        let probes = try TsharkRunner.run(["-r", path] + validation + ["-Y", "tcp.analysis.zero_window_probe"])
            .split(separator: "\n")
        #expect(zeroWindows.count > 0)
        #expect(probes.count > 0)
        // tshark marks every segment that says "win 0" (probe replies too); the stack counts each closing once.
        #expect(UInt64(zeroWindows.count) >= outcome.zeroWindowAdvertisements)
        #expect(UInt64(probes.count) == outcome.zeroWindowProbes)
    }
}

/// Finds and runs tshark, the command-line Wireshark.
enum TsharkRunner {
    static let path: String? = {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return directories.map { "\($0)/tshark" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    struct Failed: Error, CustomStringConvertible {
        var status: Int32
        var standardError: String
        var description: String { "tshark exited with \(status): \(standardError)" }
    }

    /// Runs tshark with `arguments` and returns its standard output.
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path!)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failed(status: process.terminationStatus, standardError: String(decoding: errorData, as: UTF8.self))
        }
        return String(decoding: outputData, as: UTF8.self)
    }
}
