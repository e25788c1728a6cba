import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--rules FILE` against the kernel's curl, over a TUN device in a namespace of our own:
///
///     namespace: kernel curl (198.18.0.1) ── tun0 ── tcpip serve --rules FILE (198.18.0.2)
///
/// A rule rejecting port 81 with an RST: curl is refused at once. A drop rule on port 82: curl times
/// out. A `limit rate` rule on SYNs to 8080: the first two connections get in, the third's SYNs are
/// dropped. The listing with counters printed at shutdown says what each rule matched.
@Suite(.serialized, .enabled(if: Interop.enabled, Interop.skipReason))
struct FilterInteropTests {
    static let rules = """
        table inet filter {
            chain input {
                type filter hook input priority 0; policy accept;
                tcp dport 81 reject with tcp reset
                tcp dport 82 drop
                tcp dport 8080 tcp flags syn limit rate over 1/minute burst 2 packets drop
            }
        }
        """

    @Test func kernelCurlMeetsRejectDropAndLimit() throws {
        try Interop.check()
        guard let curl = Interop.which("curl") else { throw InteropError("no curl installed") }
        let scratch = try Interop.scratchDirectory("rules")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let rulesFile = scratch.appendingPathComponent("rules.nft")
        try Self.rules.write(to: rulesFile, atomically: true, encoding: .utf8)
        try "hello\n".write(to: scratch.appendingPathComponent("hello"), atomically: true, encoding: .utf8)
        let namespace = try Namespace("rules")
        defer { namespace.delete() }
        let log = scratch.appendingPathComponent("serve.log")
        let server = try namespace.startStack(
            KernelInteropTests.stackArguments(
                "serve", ["--http", "8080", "--root", scratch.path, "--status-interval", "0", "--rules", rulesFile.path]),
            log: log)

        func fetch(_ port: Int) throws -> Int32 {
            try namespace.run(
                [curl, "-s", "-o", "/dev/null", "--connect-timeout", "3", "http://198.18.0.2:\(port)/hello"], timeout: 30).status
        }
        // curl's exit codes: 7 could not connect (refused), 28 timed out.
        #expect(try fetch(81) == 7)
        #expect(try fetch(82) == 28)
        #expect(try fetch(8080) == 0)
        #expect(try fetch(8080) == 0)
        #expect(try fetch(8080) == 28)

        server.terminate()
        Namespace.wait(server, timeout: 10)
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(output.contains("tcp dport 81 counter packets 1 bytes"), "\(output.suffix(2000))")
        #expect(output.contains("tcp dport 82 counter packets"))
        // The third curl's SYN and its retransmissions.
        #expect(output.contains("limit rate over 1/minute burst 2 packets counter packets"))
        #expect(!output.contains("limit rate over 1/minute burst 2 packets counter packets 0 "))
    }
}
