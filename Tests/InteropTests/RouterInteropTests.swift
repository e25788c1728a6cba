import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three namespaces of their own: kernel A (198.18.0.1, 2001:db8::1) ↔ TUN ↔ `tcpip route` ↔ TUN ↔
/// kernel B (198.18.2.1, 2001:db8:2::1). The router runs in namespace R on TUN devices ra and rb
/// created there, which are then moved into A and B (a TUN descriptor stays attached to its
/// interface across namespaces). Nothing else is in any of them; all three are deleted afterwards.
final class RoutedNamespaces: @unchecked Sendable {
    let router: String
    let a: String
    let b: String
    private var children: [Process] = []
    let scratch: URL
    /// `tcpip route` and what it prints (standard output and error).
    private(set) var route: Process?
    var routeLog: URL { scratch.appendingPathComponent("route.log") }

    /// `mtuB`: the MTU of the router's link toward B, so that A's larger datagrams draw ICMP.
    init(_ label: String, mtuB: Int = 1500, routerArguments: [String] = []) throws {
        let pid = getpid()
        router = "tcpip-\(label)-r-\(pid)"
        a = "tcpip-\(label)-a-\(pid)"
        b = "tcpip-\(label)-b-\(pid)"
        scratch = try Interop.scratchDirectory(label)
        do {
            for name in [router, a, b] {
                _ = try? Namespace.ip(["netns", "del", name])
                try Namespace.ip(["netns", "add", name])
                try Namespace.ip(["-n", name, "link", "set", "lo", "up"])
            }
            try Namespace.ip(["-n", router, "tuntap", "add", "dev", "ra", "mode", "tun"])
            try Namespace.ip(["-n", router, "tuntap", "add", "dev", "rb", "mode", "tun"])
            try Namespace.ip(["-n", router, "link", "set", "rb", "mtu", String(mtuB)])
            let log = routeLog
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["ip", "netns", "exec", router, Interop.tcpip, "route", "--tun", "ra", "--tun", "rb",
                                 "--route", "198.18.0.0/24=ra", "--route", "2001:db8::/64=ra",
                                 "--route", "198.18.2.0/24=rb", "--route", "2001:db8:2::/64=rb",
                                 "--address", "ra=198.18.0.254", "--address", "ra=2001:db8::fe",
                                 "--address", "rb=198.18.2.254", "--address", "rb=2001:db8:2::fe"] + routerArguments
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            children.append(process)
            route = process
            let deadline = Date().addingTimeInterval(30)
            while !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("READY") {
                guard process.isRunning, Date() < deadline else {
                    throw InteropError("tcpip route did not print READY: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
                }
                usleep(50_000)
            }
            for (device, namespace, v4, v6, far4, far6) in [
                ("ra", a, "198.18.0.1/24", "2001:db8::1/64", "198.18.2.0/24", "2001:db8:2::/64"),
                ("rb", b, "198.18.2.1/24", "2001:db8:2::1/64", "198.18.0.0/24", "2001:db8::/64"),
            ] {
                try Namespace.ip(["-n", router, "link", "set", device, "netns", namespace])
                try Namespace.ip(["-n", namespace, "addr", "add", v4, "dev", device])
                try Namespace.ip(["-n", namespace, "addr", "add", v6, "dev", device, "nodad"])
                try Namespace.ip(["-n", namespace, "link", "set", device, "up"])
                try Namespace.ip(["-n", namespace, "route", "add", far4, "dev", device])
                try Namespace.ip(["-n", namespace, "-6", "route", "add", far6, "dev", device])
            }
        } catch {
            delete()
            throw error
        }
    }

    deinit { delete() }

    func delete() {
        for child in children where child.isRunning { child.terminate() }
        for child in children {
            Namespace.wait(child, timeout: 5)
            if child.isRunning { kill(child.processIdentifier, SIGKILL) }
        }
        children.removeAll()
        for name in [router, a, b] {
            if let pids = try? Namespace.capture(["/usr/bin/env", "ip", "netns", "pids", name]).output {
                for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            }
            _ = try? Namespace.ip(["netns", "del", name])
        }
        try? FileManager.default.removeItem(at: scratch)
    }

    @discardableResult
    func run(in namespace: String, _ arguments: [String], timeout: Double = 120) throws -> (status: Int32, output: String) {
        try Namespace.capture(["/usr/bin/env", "ip", "netns", "exec", namespace] + arguments, timeout: timeout)
    }

    func spawn(in namespace: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        children.append(process)
    }
}

/// The router between two kernels: ping through it and of it, traceroute naming its hop, ICMP for a
/// datagram too big for its narrower link, and a 100 MB download checked by SHA-256.
@Suite(.serialized, .enabled(if: Interop.enabled, Interop.skipReason))
struct RouterInteropTests {
    @Test func pingThroughAndOfTheRouterOverBothFamilies() throws {
        try Interop.check()
        let network = try RoutedNamespaces("rping")
        defer { network.delete() }
        for target in ["198.18.2.1", "198.18.0.254", "198.18.2.254", "2001:db8:2::1", "2001:db8::fe"] {
            let output = try network.run(in: network.a, ["ping", "-c", "3", "-i", "0.2", "-W", "2", target], timeout: 30).output
            #expect(output.contains("3 packets transmitted, 3 received"), "\(target): \(output)")
        }
        // TTL 1: the router answers time exceeded from its address on A's side.
        let expired = try network.run(in: network.a, ["ping", "-c", "1", "-t", "1", "-W", "2", "198.18.2.1"], timeout: 30).output
        #expect(expired.contains("From 198.18.0.254") && expired.contains("Time to live exceeded"), "\(expired)")
    }

    @Test func tracerouteSeesTheHop() throws {
        try Interop.check()
        guard let traceroute = Interop.which("traceroute") else {
            throw InteropError("no traceroute installed (apt-get install traceroute; .ci/run installs it)")
        }
        let network = try RoutedNamespaces("rtrace")
        defer { network.delete() }
        for (target, hop) in [("198.18.2.1", "198.18.0.254"), ("2001:db8:2::1", "2001:db8::fe")] {
            let output = try network.run(in: network.a, [traceroute, "-n", "-q", "1", "-w", "2", "-m", "4", target], timeout: 60).output
            let lines = output.split(separator: "\n").dropFirst()
            #expect(lines.first?.contains(hop) == true, "\(output)")
            #expect(lines.dropFirst().first?.contains(target) == true, "\(output)")
        }
    }

    @Test func aTooBigDatagramGetsItsICMP() throws {
        try Interop.check()
        let network = try RoutedNamespaces("rbig", mtuB: 1280)
        defer { network.delete() }
        let v4 = try network.run(in: network.a, ["ping", "-c", "2", "-i", "0.3", "-W", "2", "-M", "do", "-s", "1400", "198.18.2.1"],
                                 timeout: 30).output
        #expect(v4.contains("mtu = 1280") || v4.contains("mtu=1280"), "\(v4)")
        let v6 = try network.run(in: network.a, ["ping", "-6", "-c", "2", "-i", "0.3", "-W", "2", "-s", "1400", "2001:db8:2::1"],
                                 timeout: 30).output
        #expect(v6.contains("Packet too big") || v6.contains("mtu=1280") || v6.contains("mtu = 1280"), "\(v6)")
        // Datagrams that fit still go through.
        let fits = try network.run(in: network.a, ["ping", "-c", "2", "-i", "0.3", "-W", "2", "-M", "do", "-s", "1200", "198.18.2.1"],
                                   timeout: 30).output
        #expect(fits.contains("2 received"), "\(fits)")
    }

    /// curl in A downloads from Python's http.server in B through the router (whose link toward B
    /// is narrower, so path MTU discovery runs through it too): the file arrives byte for byte.
    @Test(arguments: [1_000_000, 100_000_000])
    func downloadThroughTheRouterArrivesIntact(size: Int) throws {
        try Interop.check()
        let network = try RoutedNamespaces("rcurl", mtuB: 1400)
        defer { network.delete() }
        let served = network.scratch.appendingPathComponent("served")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        let blob = served.appendingPathComponent("blob")
        try makeRandomFile(blob, size: size)
        try network.spawn(in: network.b, ["python3", "-m", "http.server", "8080", "--bind", "198.18.2.1", "--directory", served.path])
        let received = network.scratch.appendingPathComponent("received")
        var result = (status: Int32(-1), output: "")
        for _ in 0..<50 {
            result = try network.run(in: network.a, ["curl", "-sS", "--max-time", "300", "-o", received.path,
                                                     "http://198.18.2.1:8080/blob"], timeout: 320)
            if result.status != 7 { break }  // 7: the server is not listening yet
            usleep(100_000)
        }
        #expect(result.status == 0, "\(result.output)")
        #expect(try sha256(received.path) == sha256(blob.path))
    }

    /// `route` as a service: `--metrics-port` serves its counters to Prometheus (after pings through
    /// it, forwarded datagrams and each link's packets), and SIGTERM stops it gracefully: exit status
    /// 0, its counters printed.
    @Test func prometheusScrapesTheRouterAndSIGTERMStopsIt() throws {
        try Interop.check()
        let network = try RoutedNamespaces(
            "rmetrics", routerArguments: ["--metrics-port", "9464", "--shutdown-timeout", "2", "--log-level", "debug"])
        defer { network.delete() }
        let ping = try network.run(in: network.a, ["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.2.1"], timeout: 30).output
        #expect(ping.contains("3 packets transmitted, 3 received"), "\(ping)")

        // The loop publishes every 250 ms, the endpoint exports every second. (The kernels' own IPv6
        // multicast — MLD, router solicitations — reaches the router too: counts are at least.)
        func value(_ sample: String, in body: String) -> Int {
            body.split(separator: "\n").first { $0.hasPrefix(sample + " ") }.flatMap { Int($0.split(separator: " ").last!) } ?? -1
        }
        var body = ""
        for _ in 0..<50 where value("tcpip_router_forwarded", in: body) < 6 {
            body = (try? network.run(in: network.router, ["curl", "-sS", "--max-time", "5", "http://127.0.0.1:9464/metrics"], timeout: 10).output) ?? ""
            usleep(200_000)
        }
        #expect(body.contains("# TYPE tcpip_router_forwarded counter"), "\(body.prefix(2000))")
        #expect(value("tcpip_router_forwarded", in: body) == 6, "\(body.prefix(2000))")
        #expect(value("tcpip_router_no_route", in: body) == 0, "\(body.prefix(2000))")
        for link in ["ra", "rb"] {
            #expect(value("tcpip_router_link_packets_received{link=\"\(link)\"}", in: body) >= 3, "\(body.prefix(2000))")
            #expect(value("tcpip_router_link_packets_sent{link=\"\(link)\"}", in: body) >= 3, "\(body.prefix(2000))")
            #expect(value("tcpip_router_link_bytes_sent{link=\"\(link)\"}", in: body) >= 3 * 84, "\(body.prefix(2000))")
        }

        let route = try #require(network.route)
        route.terminate()  // SIGTERM
        Namespace.wait(route, timeout: 10)
        #expect(!route.isRunning, "tcpip route did not stop within 10 s of SIGTERM")
        #expect(route.terminationReason == .exit && route.terminationStatus == 0, "tcpip route exited \(route.terminationStatus)")
        let log = try String(contentsOf: network.routeLog, encoding: .utf8)
        #expect(log.contains(" forwarded=6 "), "\(log.suffix(800))")
        #expect(log.contains("stopped"), "\(log.suffix(800))")
    }

    /// SIGTERM while an impairment still delays a datagram: the router reads no more, waits for it
    /// until --shutdown-timeout, then stops anyway and says what it dropped; the exit status is 0.
    @Test func sigtermGivesDelayedDatagramsTheShutdownTimeout() throws {
        try Interop.check()
        let network = try RoutedNamespaces(
            "rdrain", routerArguments: ["--impair", "rb.out:delay=5000ms", "--shutdown-timeout", "1"])
        defer { network.delete() }
        try network.spawn(in: network.a, ["ping", "-c", "1", "-W", "8", "198.18.2.1"])
        usleep(1_500_000)  // the echo request is held for 5 s on its way out to B
        let route = try #require(network.route)
        let start = Date()
        route.terminate()  // SIGTERM
        Namespace.wait(route, timeout: 10)
        #expect(!route.isRunning, "tcpip route did not stop within 10 s of SIGTERM")
        #expect(route.terminationReason == .exit && route.terminationStatus == 0, "tcpip route exited \(route.terminationStatus)")
        #expect(Date().timeIntervalSince(start) < 4, "it waited for the delay, not the shutdown timeout")
        let log = try String(contentsOf: network.routeLog, encoding: .utf8)
        #expect(log.contains("1 delayed datagram(s) dropped at the shutdown deadline"), "\(log.suffix(800))")
    }
}
