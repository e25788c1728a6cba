import Foundation
import Testing
@testable import tcpip

/// The flow-control demo as a newcomer sees it (a snapshot), and as the issue demands it behave:
/// the window closes and reopens, every byte arrives, nothing is retransmitted on a lossless link.
@Suite struct FlowControlDemoTests {
    /// Small enough to read in full: the handshake, three zero-window episodes in detail, a
    /// quiet stretch with a table, and the close.
    static var snapshotOptions: FlowControlDemo.Options {
        var options = FlowControlDemo.Options()
        options.bytes = 24_000
        return options
    }

    @Test func outputMatchesTheSnapshot() throws {
        let (lines, outcome) = FlowControlDemo.lines(Self.snapshotOptions)
        #expect(outcome.verified)
        try Snapshot.check(lines.joined(separator: "\n") + "\n", named: "flow-control-24000")
    }

    @Test func sameOptionsPrintTheSameOutput() {
        #expect(FlowControlDemo.lines(Self.snapshotOptions).lines == FlowControlDemo.lines(Self.snapshotOptions).lines)
    }

    @Test(arguments: [4, 6])
    func windowReachesZeroAndReopensAndEveryByteArrives(ipVersion: Int) {
        var options = FlowControlDemo.Options()
        options.bytes = 100_000
        options.ipVersion = ipVersion
        let (lines, outcome) = FlowControlDemo.lines(options)
        #expect(outcome.failures == [])
        #expect(outcome.verified)
        #expect(outcome.bytesVerified == 100_000)
        #expect(outcome.smallestWindow == 0)
        #expect(outcome.largestWindow == options.receiveBuffer)
        #expect(outcome.windowReopened)
        #expect(outcome.zeroWindowAdvertisements > 0)
        #expect(outcome.zeroWindowProbes > 0)
        #expect(outcome.windowUpdates >= outcome.zeroWindowAdvertisements)
        #expect(outcome.retransmissions == 0)
        #expect(lines.last == outcome.summaryLine)
        #expect(lines.last?.hasPrefix("verified=true bytes=100000 zero_window_advertisements=") == true)
        #expect(lines.contains { $0.contains("win 0, length 0") })
        if ipVersion == 6 {
            #expect(lines.contains { $0.contains(" IP6 2001:db8::2.5001 > 2001:db8::1.") })
        }
    }

    @Test func aFastReaderNeverClosesTheWindow() {
        var options = FlowControlDemo.Options()
        options.bytes = 50_000
        options.readSize = 65_536
        options.readInterval = .milliseconds(1)
        options.receiveBuffer = 65_536
        let (_, outcome) = FlowControlDemo.lines(options)
        #expect(outcome.verified)
        #expect(outcome.zeroWindowAdvertisements == 0)
        #expect(outcome.zeroWindowProbes == 0)
    }

    @Test func verboseShowsEverySegmentAndTheCounters() {
        var options = FlowControlDemo.Options()
        options.bytes = 5_000
        options.verbose = true
        let (lines, outcome) = FlowControlDemo.lines(options)
        #expect(outcome.verified)
        #expect(lines.contains("netstat -s, server:"))
        // Every data segment, not only those around window changes.
        let dataSegments = lines.filter { $0.contains("198.18.0.1.") && $0.contains("> 198.18.0.2.5001") && $0.contains(", seq ") }
        #expect(dataSegments.count >= 4)
    }

    /// Prose lines fit 80 columns; only tcpdump lines (as tcpdump prints them) and the
    /// machine-readable last line may be longer.
    @Test func proseFitsEightyColumns() {
        let (lines, _) = FlowControlDemo.lines(Self.snapshotOptions)
        let tooWide = lines.dropLast().filter { $0.count > 80 && !$0.contains(" IP ") && !$0.contains(" IP6 ") }
        #expect(tooWide == [])
    }
}

/// Compares text with a file under `Snapshots/`; `TCPIP_RECORD_SNAPSHOTS=1` writes the file instead.
enum Snapshot {
    struct Mismatch: Error, CustomStringConvertible {
        var description: String
    }

    static func check(_ actual: String, named name: String, filePath: String = #filePath) throws {
        let directory = URL(fileURLWithPath: filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")
        let file = directory.appendingPathComponent("\(name).txt")
        if ProcessInfo.processInfo.environment["TCPIP_RECORD_SNAPSHOTS"] == "1" {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try actual.write(to: file, atomically: true, encoding: .utf8)
            return
        }
        guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
            throw Mismatch(description: "no snapshot at \(file.path); record it with TCPIP_RECORD_SNAPSHOTS=1")
        }
        guard actual != expected else { return }
        let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let index = zip(actualLines, expectedLines).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(actualLines.count, expectedLines.count)
        let got = index < actualLines.count ? String(actualLines[index]) : "<end>"
        let wanted = index < expectedLines.count ? String(expectedLines[index]) : "<end>"
        throw Mismatch(description: """
            output differs from \(file.lastPathComponent) at line \(index + 1):
              expected: \(wanted)
              actual:   \(got)
            if the change is intended, re-record with TCPIP_RECORD_SNAPSHOTS=1 swift test --filter tcpipTests
            """)
    }
}
