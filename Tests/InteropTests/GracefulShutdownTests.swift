import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension KernelInteropTests {
    /// A kernel-side sender: `seconds` of 1 KiB every 10 ms, then FIN and wait for ours. Prints
    /// `sent=<bytes> finished`, or `sent=<bytes> error=<name>` when the connection was reset.
    static let timedSender = """
        import socket, sys, time
        host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        s = socket.create_connection((host, port))
        print("connected", flush=True)
        sent, chunk, end = 0, b"x" * 1024, time.time() + seconds
        try:
            while time.time() < end:
                s.sendall(chunk)
                sent += len(chunk)
                time.sleep(0.01)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)
            print(f"sent={sent} finished", flush=True)
        except OSError as error:
            print(f"sent={sent} error={type(error).__name__}", flush=True)
        """

    /// 6. SIGTERM during two transfers: the listener closes, the connection that ends within
    /// --shutdown-timeout finishes (every byte counted), the one that does not is reset; the
    /// process exits 0 and its pcap is complete (tshark reads it to the end, RST included).
    @Test func sigtermStopsGracefully() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("sigterm")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let namespace = try Namespace("sigterm")
        defer { namespace.delete() }
        let capture = scratch.appendingPathComponent("sigterm.pcap")
        let serveLog = scratch.appendingPathComponent("serve.log")
        let server = try namespace.startStack(
            Self.stackArguments("serve", [
                "--discard", "9", "--status-interval", "0", "--pcap", capture.path, "--shutdown-timeout", "6",
            ]),
            log: serveLog)
        let script = scratch.appendingPathComponent("sender.py")
        try Self.timedSender.write(to: script, atomically: true, encoding: .utf8)
        let finishingLog = scratch.appendingPathComponent("finishing.log")
        let endlessLog = scratch.appendingPathComponent("endless.log")
        let finishing = try namespace.spawn(["python3", script.path, Self.stack4, "9", "2"], log: finishingLog)
        let endless = try namespace.spawn(["python3", script.path, Self.stack4, "9", "60"], log: endlessLog)
        // Both connected before SIGTERM: a fixed wait was too short for Python's start under the
        // full suite's load, and the "finishing" sender then found the listener closed.
        try waitForText(finishingLog, "connected")
        try waitForText(endlessLog, "connected")
        usleep(200_000)
        server.terminate()  // SIGTERM
        Namespace.wait(server, timeout: 20)
        #expect(!server.isRunning, "tcpip did not stop within 20 s of SIGTERM")
        #expect(server.terminationReason == .exit && server.terminationStatus == 0,
            "tcpip exited \(server.terminationStatus) after SIGTERM")
        Namespace.wait(finishing, timeout: 10)
        Namespace.wait(endless, timeout: 10)

        let serverText = try String(contentsOf: serveLog, encoding: .utf8)
        let finishingText = try String(contentsOf: finishingLog, encoding: .utf8)
        let endlessText = try String(contentsOf: endlessLog, encoding: .utf8)
        let sent = finishingText.split(separator: "\n").first { $0.hasSuffix(" finished") }?
            .split(separator: " ").first?.dropFirst("sent=".count)
        #expect(sent != nil, "the finishing sender did not finish: \(finishingText)")
        #expect(sent.map { serverText.contains("discarded=\($0) ") } == true,
            "our server did not count every byte of the finished transfer: \(serverText.suffix(800))")
        #expect(endlessText.contains("error="), "the endless sender was not reset: \(endlessText)")
        #expect(serverText.contains("1 connection(s) reset at the shutdown deadline, 1 finished"), "\(serverText.suffix(800))")

        // Complete: tshark reads the whole file (a truncated capture makes it fail) and finds our RST.
        #expect(try tsharkCount(capture, "ip.src==198.18.0.2 && tcp.flags.reset==1") >= 1)
        #expect(try tsharkCount(capture, "ip.src==198.18.0.1 && tcp.flags.fin==1") >= 1)
    }
}
