import Foundation
import Testing

/// Issue 24: a kernel client that fetches from `tcpip serve --http` twice from the same source port.
/// Our server closes first and holds the 4-tuple in TIME-WAIT; the kernel's second SYN, half a second
/// later, carries a newer timestamp (RFC 6191) and must open a new connection at once — not meet an
/// ACK (RFC 1337) and retry until its connect times out.
@Suite(.serialized, .enabled(if: Interop.enabled, Interop.skipReason))
struct TimeWaitInteropTests {
    @Test(arguments: [KernelInteropTests.stack4, "2001:db8::2"])
    func secondFetchFromTheSameSourcePortSucceedsAtOnce(server: String) throws {
        try Interop.check()
        let label = server.contains(":") ? "tw6" : "tw4"
        let scratch = try Interop.scratchDirectory(label)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let blob = scratch.appendingPathComponent("blob")
        try makeRandomFile(blob, size: 200_000)
        let namespace = try Namespace(label)
        defer { namespace.delete() }
        let serveLog = scratch.appendingPathComponent("serve.log")
        _ = try namespace.startStack(
            KernelInteropTests.stackArguments("serve", ["--http", "80", "--root", scratch.path, "--status-interval", "0"]),
            log: serveLog)
        let script = scratch.appendingPathComponent("twice.py")
        try KernelPeers.sameSourcePortTwice.write(to: script, atomically: true, encoding: .utf8)
        let output = try namespace.check(["python3", script.path, server, "80", "/blob", try sha256(blob.path), "0.5"], timeout: 120)
        #expect(output.contains("fetch 1 ok") && output.contains("fetch 2 ok"), "\(output)")
        // "At once": no SYN retransmission (the kernel's first is after 1 s).
        let seconds = output.split(whereSeparator: \.isWhitespace)
            .filter { $0.hasPrefix("connect_seconds=") }
            .compactMap { Double($0.dropFirst("connect_seconds=".count)) }
        #expect(seconds.count == 2 && seconds.allSatisfy { $0 < 0.9 }, "\(output)")
    }
}
