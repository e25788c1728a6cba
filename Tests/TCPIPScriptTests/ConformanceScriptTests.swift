import Foundation
import TCPIPScript
import Testing

/// Our own scripts in `Tests/Conformance/scripts/`: one behaviour each, citing the RFC requirement
/// it checks, for what the corpus lacks. They need nothing outside the repository.
@Suite struct ConformanceScriptTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Conformance/scripts")

    static let scripts: [String] = {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".pkt") }.sorted()
    }()

    @Test func thereAreScripts() {
        #expect(Self.scripts.count >= 5)
    }

    @Test(arguments: scripts)
    func scriptPasses(_ name: String) throws {
        let path = Self.directory.appendingPathComponent(name).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("RFC"), "\(name) must cite the RFC requirement it checks")
        // The profile the script was written for: FreeBSD for those that set `sysctl -w net.inet…`.
        let outcome = ScriptFileRun.run(path: path, text: text, profile: nil).outcome
        switch outcome.verdict {
        case .passed: break
        case .failed(let failure): Issue.record("\(name): \(failure)")
        case .skipped(let reason, let line): Issue.record("\(name) skipped at line \(line): \(reason)")
        }
    }
}
