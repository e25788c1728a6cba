import ArgumentParser
import Foundation
import NIOCore
import TCPIP
import TCPIPLinks
import TCPIPScript

/// `tcpip script FILE…`: runs packetdrill scripts against the stack, which plays the host and the
/// runner the remote peer, on virtual time.
struct RunScripts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "script",
        abstract: "Run packetdrill scripts against the stack.",
        discussion: """
            Each script runs on virtual time against a fresh stack configured with the platform constants \
            the script was written for (--profile; auto picks FreeBSD for the freebsd-net suite, Linux \
            otherwise). Prints PASS, FAIL (with the first mismatch) or SKIP per script, and ends with \
            `N passed, M failed, K skipped`. Directories are searched for .pkt files.
            """)

    @Argument(help: "Script files or directories of .pkt files.")
    var files: [String]
    @Option(help: "Platform constants: linux, freebsd or auto.")
    var profile: String = "auto"
    @Option(help: "Write a capture: a file for one script, else a directory with one .pcap per script.")
    var pcap: String?
    @Flag(help: "Print every segment exchanged and the stack's decisions.")
    var trace = false
    @Option(help: "Seed of the stack's random choices (ISNs, ports).")
    var seed: UInt64 = 1

    func validate() throws {
        guard profile == "auto" || ScriptProfile.Name(rawValue: profile) != nil else {
            throw ValidationError("--profile \(profile): linux, freebsd or auto (the platform whose constants the scripts assume)")
        }
    }

    func run() throws {
        let paths = try Self.expand(files)
        let chosen = ScriptProfile.Name(rawValue: profile).map(ScriptProfile.named)
        var passed = 0, failed = 0, skipped = 0
        for path in paths {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                print("FAIL \(path): cannot read the file")
                failed += 1
                continue
            }
            let (runner, outcome) = ScriptFileRun.run(path: path, text: text, profile: chosen, seed: seed, tracing: trace)
            switch outcome.verdict {
            case .passed:
                passed += 1
                print("PASS \(path)")
            case .failed(let failure):
                failed += 1
                print("FAIL \(path):\(failure)")
            case .skipped(let reason, let line):
                skipped += 1
                print("SKIP \(path):\(line): \(reason)")
            }
            if trace {
                for line in outcome.exchanged { print("  \(line)") }
                for line in outcome.decisions { print("  · \(line)") }
            }
            if let pcap, let runner {
                try writeCapture(runner.capture, to: paths.count == 1 ? pcap : Self.capturePath(directory: pcap, script: path))
            }
        }
        print("\(passed) passed, \(failed) failed, \(skipped) skipped")
        if failed > 0 { throw ExitCode(1) }
    }

    private func writeCapture(_ capture: [(time: Instant, datagram: ByteBuffer)], to path: String) throws {
        let sink: PcapFileSink
        do {
            sink = try PcapFileSink(path: path)
        } catch {
            throw ValidationError("cannot open \(path): \(error)")
        }
        let recorder = PcapRecorder(sink: sink)
        for (time, datagram) in capture { recorder.record(datagram, at: time) }
        recorder.flush()
        try? sink.close()
    }

    static func capturePath(directory: String, script: String) -> String {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let name = script.split(separator: "/").suffix(2).joined(separator: "-").replacingOccurrences(of: ".pkt", with: "")
        return "\(directory)/\(name).pcap"
    }

    /// Files as given; directories become their .pkt files, sorted.
    static func expand(_ arguments: [String]) throws -> [String] {
        var paths: [String] = []
        for argument in arguments {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                throw ValidationError("no such file: \(argument)")
            }
            if isDirectory.boolValue {
                let found = FileManager.default.enumerator(atPath: argument)?.compactMap { $0 as? String } ?? []
                paths += found.filter { $0.hasSuffix(".pkt") }.sorted().map { "\(argument)/\($0)" }
            } else {
                paths.append(argument)
            }
        }
        return paths
    }
}
