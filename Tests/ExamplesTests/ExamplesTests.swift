import Foundation
import Testing

/// Every example in Examples/ is built with the tests and run here, without arguments: over the
/// in-process pair, checking itself (no root, no device), and exiting 0 with a line starting `ok:`.
@Suite struct ExamplesTests {
    @Test(arguments: ["EchoServerExample", "InProcessPairExample", "ClientExample", "HTTPServerExample", "ReadmeExample"])
    func exampleRunsAndChecksItself(_ name: String) throws {
        let (status, output) = try run(Self.binary(name), timeout: 60)
        #expect(status == 0, "\(name) exited with \(status): \(output)")
        #expect(output.split(separator: "\n").contains { $0.hasPrefix("ok:") }, "\(name) printed: \(output)")
    }

    /// `Examples/Readme/main.swift` is the README's in-process TCP and UDP snippets, in order, as
    /// top-level code: a change to either that the other does not make fails here, so the README's
    /// code is always code that compiles at top level and runs (`exampleRunsAndChecksItself`).
    @Test func readmeSnippetsAreTheExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let example = try String(contentsOf: root.appendingPathComponent("Examples/Readme/main.swift"), encoding: .utf8)
        let blocks = readme.components(separatedBy: "```swift\n").dropFirst().map {
            $0.components(separatedBy: "```")[0]
        }
        let inProcess = try #require(blocks.first { $0.contains("makePair(") && $0.contains("import TCPIPStack") })
        let udp = try #require(blocks.first { $0.contains("TCPIPDatagramBootstrap(runtime: server)") })
        let code = example.split(separator: "\n", omittingEmptySubsequences: false)
            .drop { $0.hasPrefix("//") }.joined(separator: "\n")
        #expect(code.hasPrefix(inProcess + udp), "Examples/Readme/main.swift no longer starts with the README's snippets")
    }

    /// The example's binary, built beside this test bundle.
    static func binary(_ name: String) -> String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return ".build/debug/\(name)"
    }

    func run(_ path: String, timeout: TimeInterval) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            Issue.record("\(path) did not finish within \(timeout) s")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text)
    }
}
