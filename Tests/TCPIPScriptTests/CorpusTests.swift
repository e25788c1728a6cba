import Foundation
import TCPIPScript
import Testing

/// The packetdrill corpus of `../shared/conformance/packetdrill` (beside the repository in CI).
///
/// `Tests/Conformance/corpus-passing.txt` lists the scripts that pass today; each is run here and a
/// regression fails the suite. Scripts not on the list are accounted for in docs/CONFORMANCE.md.
/// Without the corpus, the suite is skipped with a message.
@Suite struct CorpusTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let corpus = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/conformance/packetdrill")
    static let corpusAvailable = FileManager.default.fileExists(atPath: corpus.appendingPathComponent("manifest.tsv").path)

    /// The committed list: one corpus-relative path a line; `#` comments.
    static let passing: [String] = {
        let list = packageRoot.appendingPathComponent("Tests/Conformance/corpus-passing.txt")
        guard let text = try? String(contentsOf: list, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }()

    static func run(_ relativePath: String) throws -> ScriptOutcome {
        let path = corpus.appendingPathComponent(relativePath).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return ScriptFileRun.run(path: path, text: text, profile: nil).outcome
    }

    @Test(
        "A corpus script that passed still passes",
        .enabled(if: corpusAvailable, "corpus not found at ../shared/conformance/packetdrill; skipping"),
        arguments: passing)
    func listedScriptPasses(_ relativePath: String) throws {
        let outcome = try Self.run(relativePath)
        switch outcome.verdict {
        case .passed: break
        case .failed(let failure): Issue.record("\(relativePath) regressed: \(failure)")
        case .skipped(let reason, let line): Issue.record("\(relativePath) is now skipped (line \(line)): \(reason)")
        }
    }

    @Test(.enabled(if: corpusAvailable, "corpus not found at ../shared/conformance/packetdrill; skipping"))
    func theListIsNotEmptyAndNamesManifestScripts() throws {
        let manifest = try String(contentsOf: Self.corpus.appendingPathComponent("manifest.tsv"), encoding: .utf8)
        let paths = Set(manifest.split(separator: "\n").dropFirst().compactMap { $0.split(separator: "\t").first.map(String.init) })
        #expect(!Self.passing.isEmpty)
        for path in Self.passing { #expect(paths.contains(path), "\(path) is not in the manifest") }
    }

    /// google/packetdrill's whole TCP set, beside the corpus (`../shared/conformance/packetdrill-all`).
    static let all = corpus.deletingLastPathComponent().appendingPathComponent("packetdrill-all")
    static let allAvailable = FileManager.default.fileExists(atPath: all.path)

    /// `Tests/Conformance/all-passing.txt`: the scripts of the whole set that pass today.
    static let allPassing: [String] = {
        let list = packageRoot.appendingPathComponent("Tests/Conformance/all-passing.txt")
        guard let text = try? String(contentsOf: list, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }()

    @Test(
        "A script of google's whole set that passed still passes",
        .enabled(if: allAvailable, "../shared/conformance/packetdrill-all not found; skipping"),
        arguments: allPassing)
    func listedScriptOfTheWholeSetPasses(_ relativePath: String) throws {
        let path = Self.all.appendingPathComponent(relativePath).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        switch ScriptFileRun.run(path: path, text: text, profile: nil).outcome.verdict {
        case .passed: break
        case .failed(let failure): Issue.record("packetdrill-all/\(relativePath) regressed: \(failure)")
        case .skipped(let reason, let line): Issue.record("packetdrill-all/\(relativePath) is now skipped (line \(line)): \(reason)")
        }
    }

    /// Every script google, the kernel and FreeBSD publish parses (the full google set too).
    @Test(.enabled(if: corpusAvailable, "corpus not found at ../shared/conformance/packetdrill; skipping"))
    func everyCorpusScriptParses() throws {
        var roots = [Self.corpus]
        let all = Self.corpus.deletingLastPathComponent().appendingPathComponent("packetdrill-all")
        if FileManager.default.fileExists(atPath: all.path) { roots.append(all) }
        var count = 0
        for root in roots {
            let files = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []
            for file in files where file.hasSuffix(".pkt") {
                let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
                do {
                    _ = try ScriptParser.parse(text)
                } catch {
                    Issue.record("\(root.lastPathComponent)/\(file):\(error)")
                }
                count += 1
            }
        }
        #expect(count >= 92)
    }
}
