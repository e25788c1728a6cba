import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether the kernel-interop tests can run here: root, /dev/net/tun, `ip`. Without those they skip,
/// unless TCPIP_REQUIRE_ROOT_TESTS=1 (CI), which turns the skip into a failure.
enum Interop {
    static let required = ProcessInfo.processInfo.environment["TCPIP_REQUIRE_ROOT_TESTS"] == "1"
    static let possible = getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun")
        && which("ip") != nil
    static let enabled = possible || required
    static let skipReason: Comment =
        "kernel interop needs root, /dev/net/tun and iproute2; TCPIP_REQUIRE_ROOT_TESTS=1 makes this a failure"

    /// Fails the test when it cannot run although CI requires it.
    static func check() throws {
        guard possible else {
            throw InteropError("TCPIP_REQUIRE_ROOT_TESTS=1 but not root, or no /dev/net/tun, or no `ip`")
        }
    }

    /// The `tcpip` binary built beside this test bundle.
    static var tcpip: String {
        if let path = ProcessInfo.processInfo.environment["TCPIP_BINARY"] { return path }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("tcpip").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return ".build/debug/tcpip"
    }

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// A fresh scratch directory, removed by the caller.
    static func scratchDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("tcpip-interop-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

struct InteropError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A network namespace of our own with `tun0`: the kernel side is 198.18.0.1/24 and 2001:db8::1/64,
/// our stack takes 198.18.0.2 and 2001:db8::2. It has no other interface and no default route, so
/// nothing can leave it. `delete()` kills what runs inside and removes it.
final class Namespace: @unchecked Sendable {
    let name: String
    private var children: [Process] = []

    init(_ label: String, mtu: Int = 1500) throws {
        name = "tcpip-\(label)-\(getpid())"
        _ = try? Self.ip(["netns", "del", name])
        try Self.ip(["netns", "add", name])
        do {
            try Self.ip(["-n", name, "link", "set", "lo", "up"])
            try Self.ip(["-n", name, "tuntap", "add", "dev", "tun0", "mode", "tun"])
            try Self.ip(["-n", name, "link", "set", "tun0", "mtu", String(mtu), "up"])
            try Self.ip(["-n", name, "addr", "add", "198.18.0.1/24", "dev", "tun0"])
            try Self.ip(["-n", name, "addr", "add", "2001:db8::1/64", "dev", "tun0", "nodad"])
        } catch {
            delete()
            throw error
        }
    }

    deinit {
        delete()
    }

    /// Kills every process inside (ours: the namespace is), then removes the namespace.
    func delete() {
        for child in children where child.isRunning {
            child.terminate()
        }
        for child in children {
            Self.wait(child, timeout: 5)
            if child.isRunning { kill(child.processIdentifier, SIGKILL) }
        }
        children.removeAll()
        if let pids = try? Self.capture(["/usr/bin/env", "ip", "netns", "pids", name]).output {
            for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        }
        _ = try? Self.ip(["netns", "del", name])
    }

    /// Runs `arguments` inside the namespace and waits (at most `timeout` seconds).
    @discardableResult
    func run(_ arguments: [String], timeout: Double = 120) throws -> (status: Int32, output: String) {
        try Self.capture(["/usr/bin/env", "ip", "netns", "exec", name] + arguments, timeout: timeout)
    }

    /// Runs `arguments` and fails unless it exits 0.
    @discardableResult
    func check(_ arguments: [String], timeout: Double = 120) throws -> String {
        let result = try run(arguments, timeout: timeout)
        guard result.status == 0 else {
            throw InteropError("\(arguments.joined(separator: " ")) exited \(result.status): \(result.output.suffix(2000))")
        }
        return result.output
    }

    /// Starts `arguments` inside the namespace in the background, its output going to `log`.
    func spawn(_ arguments: [String], log: URL) throws -> Process {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", name] + arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        children.append(process)
        return process
    }

    /// Starts `tcpip` with `arguments` and waits for it to print READY.
    func startStack(_ arguments: [String], log: URL) throws -> Process {
        let process = try spawn([Interop.tcpip] + arguments, log: log)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if text.contains("READY") { return process }
            guard process.isRunning else { throw InteropError("tcpip exited before READY: \(text)") }
            usleep(50_000)
        }
        throw InteropError("tcpip did not print READY within 30 s")
    }

    /// The kernel's sockets in the namespace, as `ss -tn` shows them.
    func socketTable() throws -> String {
        try check(["ss", "-tn"])
    }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        let result = try capture(["/usr/bin/env", "ip"] + arguments)
        guard result.status == 0 else {
            throw InteropError("ip \(arguments.joined(separator: " ")) failed: \(result.output)")
        }
        return result.output
    }

    static func capture(_ arguments: [String], timeout: Double = 120) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Read while it runs, so a full pipe cannot stall it.
        let box = ResultBox<Data>()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.value = pipe.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        wait(process, timeout: timeout)
        if process.isRunning {
            process.terminate()
            wait(process, timeout: 5)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            throw InteropError("\(arguments.joined(separator: " ")) did not finish within \(timeout) s")
        }
        done.wait()
        return (process.terminationStatus, String(decoding: box.value ?? Data(), as: UTF8.self))
    }

    static func wait(_ process: Process, timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
    }
}

final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

/// SHA-256 of a file, by `sha256sum` (coreutils).
func sha256(_ path: String) throws -> String {
    let result = try Namespace.capture(["/usr/bin/env", "sha256sum", path])
    guard result.status == 0, let digest = result.output.split(separator: " ").first else {
        throw InteropError("sha256sum \(path) failed: \(result.output)")
    }
    return String(digest)
}

/// A file of `size` random bytes.
func makeRandomFile(_ url: URL, size: Int) throws {
    let out = try Namespace.capture(["/bin/sh", "-c", "head -c \(size) /dev/urandom > '\(url.path)'"], timeout: 60)
    guard out.status == 0 else { throw InteropError("cannot make \(url.path): \(out.output)") }
}
