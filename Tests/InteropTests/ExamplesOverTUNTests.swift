import Foundation
import Testing

/// The examples of Examples/ on a real TUN device, against the kernel's TCP, in a namespace of
/// their own: the README's echo server answers a kernel client byte for byte, and the HTTP
/// example serves the kernel's curl.
@Suite(.serialized, .enabled(if: Interop.enabled, Interop.skipReason))
struct ExamplesOverTUNTests {
    /// An example's binary, built beside this test bundle (as `tcpip` is).
    static func example(_ name: String) -> String {
        URL(fileURLWithPath: Interop.tcpip).deletingLastPathComponent().appendingPathComponent(name).path
    }

    static let echoClient = """
        import socket, sys, time
        data = bytes((i * 7 + 3) % 251 for i in range(int(sys.argv[3])))
        deadline = time.time() + 30
        while True:  # until the example has started listening
            try:
                s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
                break
            except OSError:
                if time.time() > deadline: raise
                time.sleep(0.2)
        s.settimeout(20)
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(65536)
            if not chunk: break
            got += chunk
        s.close()
        print("echo ok" if got == data else "echo mismatch: %d of %d bytes" % (len(got), len(data)))
        """

    @Test func echoServerExampleAnswersTheKernel() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("example-echo")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let namespace = try Namespace("example-echo")
        defer { namespace.delete() }
        let log = scratch.appendingPathComponent("echo.log")
        _ = try namespace.spawn([Self.example("EchoServerExample"), "tun0", "198.18.0.2"], log: log)
        // The example's output is block-buffered into the log: the client retries until it listens.
        let client = scratch.appendingPathComponent("echo.py")
        try Self.echoClient.write(to: client, atomically: true, encoding: .utf8)
        let output = try namespace.check(["python3", client.path, "198.18.0.2", "7", "200000"], timeout: 60)
        #expect(output.contains("echo ok"), "\(output)")
    }

    @Test func httpServerExampleServesCurl() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("example-http")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let namespace = try Namespace("example-http")
        defer { namespace.delete() }
        let log = scratch.appendingPathComponent("http.log")
        _ = try namespace.spawn([Self.example("HTTPServerExample"), "tun0", "198.18.0.2"], log: log)
        // The body goes to a file: curl reports each refused try before the example listens on
        // stderr, which `check` returns with stdout, so the output alone would fail a slow start.
        let saved = scratch.appendingPathComponent("body")
        let output = try namespace.check(
            ["curl", "-sS", "--connect-timeout", "2", "--retry", "15", "--retry-all-errors", "--retry-delay", "1",
             "--max-time", "20", "-o", saved.path, "http://198.18.0.2/"], timeout: 90)
        let body = try String(contentsOf: saved, encoding: .utf8)
        #expect(body == "hello from swift-tcpip\n", "\(body) (curl: \(output))")
    }
}
