import Foundation
import Testing

/// Every example in Examples/ is built with the tests and run here, without arguments: over the
/// in-process pair, checking itself (no root, no device), and exiting 0 with a line starting `ok:`.
@Suite struct ExamplesTests {
    @Test(arguments: ["EchoServerExample", "InProcessPairExample", "ClientExample", "HTTPServerExample"])
    func exampleRunsAndChecksItself(_ name: String) throws {
        let (status, output) = try run(Self.binary(name), timeout: 60)
        #expect(status == 0, "\(name) exited with \(status): \(output)")
        #expect(output.split(separator: "\n").contains { $0.hasPrefix("ok:") }, "\(name) printed: \(output)")
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
