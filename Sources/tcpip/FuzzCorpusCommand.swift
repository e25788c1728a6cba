import ArgumentParser
import Foundation
import TCPIPFuzzing

/// `tcpip fuzz-corpus DIR` (hidden): writes the fuzz targets' seed corpus, one folder per target.
/// `Fuzz/Corpus/` holds its output; run it again when the fixture or the event format changes.
struct FuzzCorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz-corpus",
        abstract: "Write the seed corpus of the fuzz targets in Fuzz/ (segments from our own simulations).",
        shouldDisplay: false)

    @Argument(help: "The corpus directory; a folder per target is created in it.")
    var directory: String

    func run() throws {
        let manager = FileManager.default
        var counts: [String: Int] = [:]
        for seed in FuzzCorpus.generate() {
            let folder = "\(directory)/\(seed.target)"
            try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(seed.bytes).write(to: URL(fileURLWithPath: "\(folder)/\(seed.name)"))
            counts[seed.target, default: 0] += 1
        }
        for target in FuzzCorpus.targets { print("\(target): \(counts[target] ?? 0) seeds") }
    }
}
