import Foundation
import Testing

/// Our TCP against the Linux kernel's, over a TUN device in a network namespace each test creates
/// and deletes. The stack runs as the built `tcpip` binary inside the namespace; the kernel side
/// runs curl, python3 and ss there. Sizes can be scaled down with TCPIP_INTEROP_MB for a quick run.
@Suite(.serialized, .enabled(if: Interop.enabled, Interop.skipReason))
struct KernelInteropTests {
    static let bulkBytes = (Int(ProcessInfo.processInfo.environment["TCPIP_INTEROP_MB"] ?? "") ?? 100) * 1_000_000
    static let stack4 = "198.18.0.2"
    static let kernel4 = "198.18.0.1"

    static func stackArguments(_ command: String, _ more: [String]) -> [String] {
        [command, "--tun", "tun0", "--address", "198.18.0.2/24", "--address", "2001:db8::2/64"] + more
    }

    /// 1. The kernel's curl downloads a file from our HTTP server (NIOHTTP1 on our TCP), IPv4 and IPv6.
    @Test func kernelCurlDownloadsFromOurHTTPServer() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("curl")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let blob = scratch.appendingPathComponent("blob")
        try makeRandomFile(blob, size: Self.bulkBytes)
        let expected = try sha256(blob.path)
        let namespace = try Namespace("curl")
        defer { namespace.delete() }
        _ = try namespace.startStack(
            Self.stackArguments("serve", ["--http", "80", "--root", scratch.path, "--status-interval", "0"]),
            log: scratch.appendingPathComponent("serve.log"))
        try curlBlobOverBothFamilies(namespace, into: scratch, expecting: expected, maxTime: 240)
    }

    /// 1b. As 1, with the device opened without the virtio-net header: one read(2) per wire-sized
    /// datagram, every checksum checked by the stack (10 MB each way is enough for that path).
    @Test func kernelCurlDownloadsWithoutOffload() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("curl-plain")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let blob = scratch.appendingPathComponent("blob")
        try makeRandomFile(blob, size: min(Self.bulkBytes, 10_000_000))
        let expected = try sha256(blob.path)
        let namespace = try Namespace("curl-plain")
        defer { namespace.delete() }
        _ = try namespace.startStack(
            Self.stackArguments("serve", ["--http", "80", "--root", scratch.path, "--status-interval", "0", "--no-offload"]),
            log: scratch.appendingPathComponent("serve.log"))
        try curlBlobOverBothFamilies(namespace, into: scratch, expecting: expected, maxTime: 120)
    }

    /// 2. Our `tcpip fetch` downloads a file from a kernel-side `python3 -m http.server`.
    @Test func ourFetchDownloadsFromKernelHTTPServer() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("fetch")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let served = scratch.appendingPathComponent("www")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        let blob = served.appendingPathComponent("blob")
        try makeRandomFile(blob, size: Self.bulkBytes)
        let namespace = try Namespace("fetch")
        defer { namespace.delete() }
        _ = try namespace.spawn(
            ["python3", "-m", "http.server", "-b", Self.kernel4, "-d", served.path, "8000"],
            log: scratch.appendingPathComponent("http.log"))
        try waitForListener(namespace, port: 8000)
        let output = scratch.appendingPathComponent("got")
        let printed = try namespace.check(
            [Interop.tcpip] + Self.stackArguments("fetch", ["http://198.18.0.1:8000/blob", "-o", output.path]), timeout: 300)
        #expect(printed.contains("status=200"))
        #expect(try sha256(output.path) == sha256(blob.path), "the fetched file differs from the served one")
    }

    /// 3. The slow reader against the real kernel: our discard server reads 124 bytes a millisecond, the
    /// kernel's Send-Q fills, our window reaches zero, the kernel probes it — and every byte arrives.
    @Test func slowReaderClosesTheWindowOnTheKernel() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("slow")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let namespace = try Namespace("slow")
        defer { namespace.delete() }
        let capture = scratch.appendingPathComponent("slow.pcap")
        let serveLog = scratch.appendingPathComponent("serve.log")
        let server = try namespace.startStack(
            Self.stackArguments("serve", [
                "--discard", "9", "--read-size", "124", "--read-interval-ms", "1",
                "--status-interval", "1", "--pcap", capture.path,
            ]),
            log: serveLog)
        let script = scratch.appendingPathComponent("client.py")
        try KernelPeers.slowReaderClient.write(to: script, atomically: true, encoding: .utf8)
        let clientLog = scratch.appendingPathComponent("client.log")
        let client = try namespace.spawn(["python3", script.path, Self.stack4, "9", String(1 << 20)], log: clientLog)
        var largestSendQueue = 0
        let deadline = Date().addingTimeInterval(120)
        while client.isRunning && Date() < deadline {
            for line in try namespace.socketTable().split(separator: "\n") where line.contains("198.18.0.2:9 ") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if fields.count >= 3, let sendQueue = Int(fields[2]) { largestSendQueue = max(largestSendQueue, sendQueue) }
            }
            usleep(200_000)
        }
        Namespace.wait(client, timeout: 1)
        #expect(!client.isRunning && client.terminationStatus == 0, "the kernel-side sender did not finish")
        #expect(largestSendQueue > 0, "ss never showed the kernel's Send-Q above zero")

        let clientText = try String(contentsOf: clientLog, encoding: .utf8)
        let digest = clientText.split(separator: "\n").first { $0.hasPrefix("fnv1a64=") }?.dropFirst("fnv1a64=".count)
        try waitForText(serveLog, "discarded=")
        server.terminate()
        Namespace.wait(server, timeout: 10)
        let serverText = try String(contentsOf: serveLog, encoding: .utf8)
        #expect(digest != nil && serverText.contains("discarded=\(1 << 20) fnv1a64=\(digest!) "),
            "our server did not receive every byte: \(serverText.suffix(500))")

        let ourZeroWindows = try tsharkCount(capture, "ip.src==198.18.0.2 && tcp.srcport==9 && tcp.window_size_value==0 && tcp.flags.syn==0")
        let kernelProbes = try tsharkCount(capture, "ip.src==198.18.0.1 && tcp.dstport==9 && (tcp.analysis.zero_window_probe || tcp.analysis.keep_alive)")
        #expect(ourZeroWindows > 0, "the capture shows no zero window advertised by us")
        #expect(kernelProbes > 0, "the capture shows no zero-window probe from the kernel")
    }

    /// 4. Both directions on a bad path — loss 5%, reordering 10%, duplication 1%, corruption 0.1%,
    /// delay 10 ms: an echo (data each way at once) and a download from our HTTP server, verified.
    /// With `sch_netem` in the kernel the kernel side impairs its egress with `tc netem`; this kernel
    /// may lack it, and then the runtime impairs both directions at the device with the same model.
    @Test func transfersSurviveLossReorderingDuplicationAndCorruption() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("netem")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let blob = scratch.appendingPathComponent("blob")
        try makeRandomFile(blob, size: 3_000_000)
        let namespace = try Namespace("netem")
        defer { namespace.delete() }
        let model = "loss=5%,reorder=10%,duplicate=1%,corrupt=0.1%,delay=10ms"
        let netem = try namespace.run([
            "tc", "qdisc", "add", "dev", "tun0", "root", "netem",
            "delay", "10ms", "loss", "5%", "reorder", "10%", "duplicate", "1%", "corrupt", "0.1%",
        ])
        let impairment = netem.status == 0 ? [] : ["--impair", model]
        let serveLog = scratch.appendingPathComponent("serve.log")
        _ = try namespace.startStack(
            Self.stackArguments("serve", ["--echo", "7", "--http", "80", "--root", scratch.path, "--status-interval", "0"] + impairment),
            log: serveLog)
        let echo = scratch.appendingPathComponent("echo.py")
        try KernelPeers.echoClient.write(to: echo, atomically: true, encoding: .utf8)
        let echoed = try namespace.check(["python3", echo.path, Self.stack4, "7", "2000000"], timeout: 240)
        #expect(echoed.contains("echo verified 2000000"), "\(echoed)")
        let output = scratch.appendingPathComponent("got")
        try namespace.check(["curl", "-sS", "--fail", "--max-time", "200", "-o", output.path, "http://198.18.0.2/blob"], timeout: 240)
        #expect(try sha256(output.path) == sha256(blob.path), "the download differs from the file")
    }

    /// 5. A thousand short connections from the kernel, a refusal from a closed port, and ten seconds
    /// of streaming into our sink without a stall.
    @Test func shortConnectionsRefusalAndSteadyStream() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("many")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let namespace = try Namespace("many")
        defer { namespace.delete() }
        _ = try namespace.startStack(
            Self.stackArguments("serve", ["--echo", "7", "--discard", "9", "--status-interval", "0"]),
            log: scratch.appendingPathComponent("serve.log"))
        let many = scratch.appendingPathComponent("many.py")
        try KernelPeers.shortConnections.write(to: many, atomically: true, encoding: .utf8)
        let output = try namespace.check(["python3", many.path, Self.stack4, "7", "1000", "50", "1"], timeout: 300)
        #expect(output.contains("short connections ok=1000 of 1000"), "\(output)")
        #expect(output.contains("closed port: refused"), "\(output)")

        let stream = scratch.appendingPathComponent("stream.py")
        try KernelPeers.timedStream.write(to: stream, atomically: true, encoding: .utf8)
        let streamed = try namespace.check(["python3", stream.path, Self.stack4, "9", "10"], timeout: 120)
        let slowest = streamed.split(separator: " ").first { $0.hasPrefix("slowest_second=") }
            .flatMap { Int($0.dropFirst("slowest_second=".count)) }
        #expect((slowest ?? 0) > 0, "a second passed with nothing sent: \(streamed)")
    }

    /// Bad input from the outside: the TUN interface deleted under a running server, idle or with a
    /// kernel sender streaming into it, with and without the virtio-net header. The server stops
    /// with an error and a non-zero status within seconds — no crash, no spinning. (The interface
    /// signals an error condition while it is being deleted and a read then finds nothing: the
    /// runtime's reader must take that for the end, not wait again or trap.)
    @Test(arguments: [true, false]) func deviceThatDisappearsStopsTheServerCleanly(offload: Bool) throws {
        try Interop.check()
        for streaming in [false, true, false, true] {
            let scratch = try Interop.scratchDirectory("gone")
            defer { try? FileManager.default.removeItem(at: scratch) }
            let namespace = try Namespace("gone")
            defer { namespace.delete() }
            let log = scratch.appendingPathComponent("serve.log")
            let server = try namespace.startStack(
                Self.stackArguments("serve", ["--discard", "9", "--status-interval", "0"] + (offload ? [] : ["--no-offload"])),
                log: log)
            var sender: Process?
            if streaming {
                sender = try namespace.spawn(
                    ["python3", "-c", """
                        import socket
                        s = socket.create_connection(("\(Self.stack4)", 9))
                        block = bytes(65536)
                        while True: s.sendall(block)
                        """],
                    log: scratch.appendingPathComponent("sender.log"))
                Thread.sleep(forTimeInterval: 0.5)
            }
            try namespace.check(["ip", "link", "del", "tun0"])
            Namespace.wait(server, timeout: 10)
            sender?.terminate()
            #expect(!server.isRunning, "the server kept running without its device")
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            #expect(server.terminationReason == .exit && server.terminationStatus == 1, "expected a clean failure exit: \(text)")
            #expect(text.contains("TUN device is gone"), "\(text)")
        }
    }

    // MARK: Helpers

    /// 6. A long, fat path: `--impair delay=50ms` at the device (100 ms RTT, no loss, nothing else
    /// limiting). With fixed 256 KiB buffers one flow carried 20 Mbit/s each way here (one buffer per
    /// round trip); autotuned (the server preset `tcpip serve` uses), the kernel's curl downloads and
    /// a kernel sender uploads at several times that. Every byte is verified (SHA-256 of the download,
    /// FNV-1a of the upload as our discard server reports it). The assertion is a floor that a debug
    /// build on a busy two-core machine clears, TCPIP_INTEROP_FLOOR_MBIT (default 30, half again the
    /// fixed buffers' ceiling); the release figure is in docs/PERFORMANCE.md.
    @Test func longFatPathBothWays() throws {
        try Interop.check()
        let floor = Double(ProcessInfo.processInfo.environment["TCPIP_INTEROP_FLOOR_MBIT"] ?? "") ?? 30
        let scratch = try Interop.scratchDirectory("lfn")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let blob = scratch.appendingPathComponent("blob")
        try makeRandomFile(blob, size: Self.bulkBytes)
        let expected = try sha256(blob.path)
        let namespace = try Namespace("lfn")
        defer { namespace.delete() }
        // The kernel sender's buffer may grow past its default 4 MiB maximum (tcp_wmem is per
        // namespace): 4 MiB in flight would cap the upload at 335 Mbit/s at 100 ms, whatever our
        // window. Only this namespace's sysctl changes.
        _ = try namespace.run(["sysctl", "-w", "net.ipv4.tcp_wmem=4096 16384 16777216"])
        let serveLog = scratch.appendingPathComponent("serve.log")
        let server = try namespace.startStack(
            Self.stackArguments("serve", [
                "--http", "80", "--root", scratch.path, "--discard", "9", "--status-interval", "0",
                "--impair", "delay=50ms",
            ]),
            log: serveLog)

        let output = scratch.appendingPathComponent("got")
        let speed = try namespace.check(
            ["curl", "-sS", "--fail", "--max-time", "240", "-o", output.path, "-w", "%{speed_download}",
             "http://198.18.0.2/blob"], timeout: 300)
        #expect(try sha256(output.path) == expected, "the download differs from the file")
        let downloadMbit = (Double(speed.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) * 8 / 1e6
        print("long fat path: curl download \(downloadMbit) Mbit/s")
        #expect(downloadMbit >= floor, "download at \(downloadMbit) Mbit/s over 100 ms RTT")

        let script = scratch.appendingPathComponent("upload.py")
        try KernelPeers.timedUpload.write(to: script, atomically: true, encoding: .utf8)
        let printed = try namespace.check(["python3", script.path, Self.stack4, "9", String(Self.bulkBytes)], timeout: 400)
        let lines = printed.split(separator: "\n")
        let digest = lines.first { $0.hasPrefix("fnv1a64=") }?.dropFirst("fnv1a64=".count)
        let uploadMbit = lines.last { $0.contains("mbit=") }.flatMap { Double($0.split(separator: "=").last ?? "") } ?? 0
        print("long fat path: kernel upload \(uploadMbit) Mbit/s")
        #expect(uploadMbit >= floor, "upload at \(uploadMbit) Mbit/s over 100 ms RTT")
        try waitForText(serveLog, "discarded=")
        server.terminate()
        Namespace.wait(server, timeout: 10)
        let serverText = try String(contentsOf: serveLog, encoding: .utf8)
        #expect(digest != nil && serverText.contains("discarded=\(Self.bulkBytes) fnv1a64=\(digest!) "),
                "our server did not receive every byte: \(serverText.suffix(500))")
    }

    /// The kernel's curl fetches /blob from our server over IPv4 and IPv6; each copy must hash to `expected`.
    func curlBlobOverBothFamilies(_ namespace: Namespace, into scratch: URL, expecting expected: String, maxTime: Int) throws {
        for (url, name) in [("http://198.18.0.2/blob", "v4"), ("http://[2001:db8::2]/blob", "v6")] {
            let output = scratch.appendingPathComponent("got-\(name)")
            try namespace.check(
                ["curl", "-sS", "--fail", "--max-time", String(maxTime), "-o", output.path, url], timeout: Double(maxTime + 60))
            #expect(try sha256(output.path) == expected, "\(url): the download differs from the file")
            try? FileManager.default.removeItem(at: output)
        }
    }

    func waitForListener(_ namespace: Namespace, port: Int) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if try namespace.check(["ss", "-Hltn", "sport = :\(port)"]).contains(":\(port)") { return }
            usleep(100_000)
        }
        throw InteropError("nothing listens on port \(port)")
    }

    func waitForText(_ log: URL, _ text: String, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains(text) { return }
            usleep(100_000)
        }
        throw InteropError("\(log.lastPathComponent) never said \(text)")
    }

    func tsharkCount(_ capture: URL, _ filter: String) throws -> Int {
        guard Interop.which("tshark") != nil else { throw InteropError("tshark is not installed") }
        let result = try Namespace.capture(["/usr/bin/env", "tshark", "-n", "-r", capture.path, "-Y", filter], timeout: 120)
        guard result.status == 0 else { throw InteropError("tshark failed: \(result.output)") }
        return result.output.split(separator: "\n").count
    }
}
