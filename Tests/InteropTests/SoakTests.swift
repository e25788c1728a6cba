import Foundation
import Testing

/// A minute of `scripts/soak.sh` (the longer run is the script itself, on demand): many concurrent
/// kernel clients mixing echo transfers, HTTP downloads our server closes first (their 4-tuples
/// come back while we hold them in TIME-WAIT), abortive closes, half-closes and connects to a closed
/// port, over a device impaired with loss, reordering, duplication and corruption. The script makes
/// and deletes its own namespace; it fails on any unverified transfer, any connect timeout or other
/// unexpected error, a growing server RSS, or anything but TIME-WAIT left in the server afterwards.
@Suite(.serialized, .enabled(if: Interop.enabled, Interop.skipReason))
struct SoakTests {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/soak.sh")

    @Test func oneMinuteSoak() throws {
        try Interop.check()
        let seconds = ProcessInfo.processInfo.environment["TCPIP_SOAK_SECONDS"] ?? "45"
        let result = try Namespace.capture(
            ["/usr/bin/env", "TCPIP=\(Interop.tcpip)", "bash", Self.script.path, seconds, "40"], timeout: 240)
        let summary = result.output.split(separator: "\n").filter {
            $0.hasPrefix("soak") || $0.hasPrefix("server") || $0.hasPrefix("SOAK") || $0.hasPrefix("FAILURE")
        }.joined(separator: "\n")
        #expect(result.status == 0 && result.output.contains("SOAK PASS"), "\(summary)\n\(result.output.suffix(3000))")
        #expect(result.output.contains("connect_timeouts=0 failures=0"), "\(summary)")
        print(summary)
    }
}
