import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Path MTU discovery against the Linux kernel as a router (RFC 1191, RFC 8201, RFC 4821):
///
///     namespace A: kernel curl ── veth, MTU 1280 ── namespace R: kernel router ── tun0, MTU 1500 ── tcpip serve --http
///
/// A announces the MSS of a 1500-octet path (`advmss`), so only path MTU discovery finds the 1280
/// link. The kernel router's fragmentation needed / packet too big reaches our stack, which lowers
/// the MSS and the 20 MB download completes and verifies over both families. With R's ICMP errors
/// routed into a blackhole (policy routing on the protocol of what R itself sends), RFC 4821 probing
/// completes it instead.
@Suite(.serialized, .enabled(if: Interop.enabled, Interop.skipReason))
struct PathMTUInteropTests {
    static let bytes = 20_000_000

    @Test(arguments: [false, true])
    func kernelRouterWithNarrowLink(blackHole: Bool) throws {
        try Interop.check()
        guard let curl = Interop.which("curl") else { throw InteropError("no curl installed") }
        let scratch = try Interop.scratchDirectory(blackHole ? "pmtu-blackhole" : "pmtu")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let blob = scratch.appendingPathComponent("blob")
        try makeRandomFile(blob, size: Self.bytes)
        let expected = try sha256(blob.path)

        let router = try Namespace(blackHole ? "pmtuR-bh" : "pmtuR")
        defer { router.delete() }
        let client = "tcpip-pmtuA\(blackHole ? "-bh" : "")-\(getpid())"
        let clientSide = "pa\(getpid() % 100_000)\(blackHole ? 1 : 0)"
        let routerSide = "pr\(getpid() % 100_000)\(blackHole ? 1 : 0)"
        _ = try? Namespace.ip(["netns", "del", client])
        try Namespace.ip(["netns", "add", client])
        defer { _ = try? Namespace.ip(["netns", "del", client]) }
        try Namespace.ip(["-n", client, "link", "set", "lo", "up"])
        try Namespace.ip(["link", "add", clientSide, "type", "veth", "peer", "name", routerSide])
        try Namespace.ip(["link", "set", clientSide, "netns", client])
        try Namespace.ip(["link", "set", routerSide, "netns", router.name])
        try Namespace.ip(["-n", client, "link", "set", clientSide, "mtu", "1280", "up"])
        try Namespace.ip(["-n", router.name, "link", "set", routerSide, "mtu", "1280", "up"])
        try Namespace.ip(["-n", client, "addr", "add", "198.18.1.1/24", "dev", clientSide])
        try Namespace.ip(["-n", client, "addr", "add", "2001:db8:1::1/64", "dev", clientSide, "nodad"])
        try Namespace.ip(["-n", router.name, "addr", "add", "198.18.1.2/24", "dev", routerSide])
        try Namespace.ip(["-n", router.name, "addr", "add", "2001:db8:1::2/64", "dev", routerSide, "nodad"])
        try Namespace.ip(["-n", client, "route", "add", "198.18.0.0/24", "via", "198.18.1.2", "advmss", "1460"])
        try Namespace.ip(["-n", client, "-6", "route", "add", "2001:db8::/64", "via", "2001:db8:1::2", "advmss", "1440"])
        try router.check(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
        if blackHole {
            try Namespace.ip(["-n", router.name, "rule", "add", "ipproto", "icmp", "to", "198.18.0.2", "table", "100", "priority", "100"])
            try Namespace.ip(["-n", router.name, "route", "add", "blackhole", "default", "table", "100"])
            try Namespace.ip(["-n", router.name, "-6", "rule", "add", "ipproto", "ipv6-icmp", "to", "2001:db8::2", "table", "100", "priority", "100"])
            try Namespace.ip(["-n", router.name, "-6", "route", "add", "blackhole", "default", "table", "100"])
        }
        let log = scratch.appendingPathComponent("serve.log")
        _ = try router.startStack(
            KernelInteropTests.stackArguments(
                "serve", ["--http", "8080", "--root", scratch.path, "--status-interval", "0", "--no-offload", "--trace"]),
            log: log)

        for host in ["198.18.0.2", "[2001:db8::2]"] {
            let output = scratch.appendingPathComponent("got")
            try? FileManager.default.removeItem(at: output)
            let result = try Namespace.capture(
                ["/usr/bin/env", "ip", "netns", "exec", client, curl, "-s", "-S", "--max-time", "120",
                 "-o", output.path, "http://\(host):8080/blob"],
                timeout: 150)
            #expect(result.status == 0, "curl \(host): \(result.output)")
            #expect(try sha256(output.path) == expected, "\(host): the download differs from the file")
        }
        let trace = try String(contentsOf: log, encoding: .utf8)
        if blackHole {
            #expect(trace.contains("RFC 4821 §7.5"), "no black hole detected")
            #expect(trace.contains("RFC 4821 §7.6.1"), "no probe acknowledged")
            #expect(!trace.contains("PMTU lowered"))
        } else {
            #expect(trace.contains("RFC 1191 §6.1: PMTU lowered to 1280"))
            #expect(trace.contains("RFC 8201 §4: PMTU lowered to 1280"))
        }
    }
}
