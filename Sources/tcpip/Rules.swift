import ArgumentParser
import Foundation
import TCPIP

/// `tcpip rules FILE`: reads a ruleset in nftables' syntax, checks it, and lists it back as
/// `nft list ruleset` does.
struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a ruleset (nftables' syntax, plus impair) and list it as `nft list ruleset` does.",
        discussion: """
            A mistake is reported as FILE:LINE:COLUMN: MESSAGE, and the command exits 1. Every command on a \
            TUN device, and `tcpip simulate`, installs a ruleset with --rules FILE.
            """)

    @Flag(help: "Only check: print nothing when the ruleset is good.")
    var check = false
    @Argument(help: "The ruleset file.")
    var file: String

    func run() throws {
        let ruleset = try RulesFile.load(file)
        if !check { print(FilterListing.ruleset(ruleset), terminator: "") }
    }
}

/// Reading `--rules FILE`.
enum RulesFile {
    /// Reads, parses and compiles `path`. A mistake is printed to standard error as
    /// `path:line:column: message` (or `path: message` when it is not at one place), and exits 1.
    static func load(_ path: String) throws -> FilterRuleset {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            return try fail("\(path): cannot read the file")
        }
        let ruleset: FilterRuleset
        do {
            ruleset = try FilterRuleset(parsing: text)
        } catch {
            return try fail("\(path):\(error.line):\(error.column): \(error.message)")
        }
        do {
            _ = try PacketFilter(ruleset)
        } catch {
            return try fail("\(path): \(describe(error))")
        }
        return ruleset
    }

    /// `load` for an optional path.
    static func load(_ path: String?) throws -> FilterRuleset? {
        guard let path else { return nil }
        return try load(path) as FilterRuleset
    }

    private static func describe(_ error: PacketFilter.CompileError) -> String {
        switch error {
        case .unknownSet(let name): "no set named @\(name)"
        case .setTypeMismatch(let name): "set @\(name) holds elements of another type"
        case .unknownChain(let name): "no chain named \(name) to jump to"
        case .jumpLoop(let name): "the jumps from chain \(name) loop"
        }
    }

    private static func fail(_ message: String) throws -> FilterRuleset {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        throw ExitCode.failure
    }
}
