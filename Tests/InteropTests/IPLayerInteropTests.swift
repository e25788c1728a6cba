import Foundation
import Testing

/// Our ICMP, ICMPv6 and UDP against the Linux kernel's, over a TUN device in a namespace of their
/// own: the kernel's ping and a kernel-side Python UDP client talk to `tcpip serve`.
@Suite(.serialized, .enabled(if: Interop.enabled, Interop.skipReason))
struct IPLayerInteropTests {
    static func serve(_ namespace: Namespace, _ more: [String], scratch: URL) throws {
        _ = try namespace.startStack(
            KernelInteropTests.stackArguments("serve", more + ["--status-interval", "0"]),
            log: scratch.appendingPathComponent("serve.log"))
    }

    /// The kernel's `ping -c 5` and `ping -6 -c 5` get five replies each from `tcpip serve`.
    @Test func kernelPingGetsFiveRepliesOverBothFamilies() throws {
        try Interop.check()
        guard let ping = Interop.which("ping") else { throw InteropError("no ping (iputils-ping) installed") }
        let scratch = try Interop.scratchDirectory("ping")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let namespace = try Namespace("ping")
        defer { namespace.delete() }
        try Self.serve(namespace, ["--udp-discard", "9"], scratch: scratch)
        for arguments in [["-c", "5", "198.18.0.2"], ["-6", "-c", "5", "2001:db8::2"]] {
            let output = try namespace.check([ping, "-i", "0.2", "-W", "2"] + arguments, timeout: 30)
            #expect(output.contains("5 packets transmitted, 5 received"), "\(output)")
        }
    }

    /// A kernel-side Python UDP client gets every datagram echoed byte for byte over both families,
    /// up to the largest that fits the link unfragmented; a datagram to a closed port comes back as
    /// ICMP port unreachable, which the kernel turns into ECONNREFUSED on the connected socket.
    @Test func kernelUDPClientGetsDatagramsEchoedAndClosedPortsRefused() throws {
        try Interop.check()
        let scratch = try Interop.scratchDirectory("udp")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let namespace = try Namespace("udp")
        defer { namespace.delete() }
        try Self.serve(namespace, ["--udp-echo", "7"], scratch: scratch)
        let script = scratch.appendingPathComponent("udp_client.py")
        try Self.client.write(to: script, atomically: true, encoding: .utf8)
        let output = try namespace.check(["python3", script.path], timeout: 60)
        #expect(output.contains("echo v4 ok"), "\(output)")
        #expect(output.contains("echo v6 ok"), "\(output)")
        #expect(output.contains("refused v4 ok"), "\(output)")
        #expect(output.contains("refused v6 ok"), "\(output)")
    }

    static let client = """
        import os, socket, sys
        for family, host, label, largest in ((socket.AF_INET, "198.18.0.2", "v4", 1472),
                                             (socket.AF_INET6, "2001:db8::2", "v6", 1452)):
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.settimeout(5)
            s.connect((host, 7))
            for size in (0, 1, 7, 8, 100, 1000, largest):
                data = os.urandom(size)
                s.send(data)
                got = s.recv(65535)
                if got != data:
                    sys.exit(f"echo {label}: {size} bytes sent, {len(got)} different bytes back")
            print(f"echo {label} ok", flush=True)
            closed = socket.socket(family, socket.SOCK_DGRAM)
            closed.settimeout(5)
            closed.connect((host, 9))
            closed.send(b"anyone there?")
            try:
                closed.recv(100)
                sys.exit(f"refused {label}: a datagram came back from a closed port")
            except ConnectionRefusedError:
                print(f"refused {label} ok", flush=True)
        """
}
