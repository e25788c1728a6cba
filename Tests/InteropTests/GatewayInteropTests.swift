import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `tcpip gateway` between two namespaces of our own, as `../shared/peers/gateway.sh` lays them out:
/// the client namespace routes 198.19.0.0/16 and 2001:db8:19::/48 into tun0, where the gateway
/// intercepts every flow; the gateway relays it over a veth pair (198.18.1.1 — 198.18.1.2,
/// 2001:db8:1::1 — 2001:db8:1::2) through dante (SOCKS5) or a direct socket (SO_MARK and a policy
/// rule keep it out of the tunnel) to the server namespace, whose targets are 198.19.0.1 and
/// 2001:db8:19::1 on its loopback: HTTP (GET and PUT), a half-close server and dnsmasq.
@Suite(.serialized, .enabled(if: Interop.enabled, Interop.skipReason))
struct GatewayInteropTests {
    static let size = 100 * 1024 * 1024

    /// Runs the whole scenario in one shell script, which builds the namespaces (named with its
    /// pid), starts the servers and the gateway, runs the clients, and deletes everything on exit.
    /// (One process for the lot: the namespaces, their processes and their cleanup stay together.)
    /// `mode` picks the clients: `full` (transfers, refusal, half-close, DNS, ping), `fakedns`, or
    /// `custom`, which runs `clients` (bash, with `$C` the client namespace, `$W` the scratch
    /// directory, `$GW` the gateway's pid and `limits.py` there) instead.
    static func run(_ upstream: String, label: String, mode: String, size: Int = size, clients: String = "", timeout: Double = 400) throws
        -> (status: Int32, output: String)
    {
        let scratch = try Interop.scratchDirectory("gw-\(label)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try servers.write(to: scratch.appendingPathComponent("servers.py"), atomically: true, encoding: .utf8)
        try clientScript.write(to: scratch.appendingPathComponent("client.py"), atomically: true, encoding: .utf8)
        try limitsScript.write(to: scratch.appendingPathComponent("limits.py"), atomically: true, encoding: .utf8)
        try clients.write(to: scratch.appendingPathComponent("custom.sh"), atomically: true, encoding: .utf8)
        try scenario.write(to: scratch.appendingPathComponent("scenario.sh"), atomically: true, encoding: .utf8)
        guard let danted = Interop.which("danted") else { throw InteropError("no danted (dante-server) installed") }
        guard let dnsmasq = Interop.which("dnsmasq") else { throw InteropError("no dnsmasq installed") }
        guard let ping = Interop.which("ping") else { throw InteropError("no ping (iputils-ping) installed") }
        return try Namespace.capture(
            ["/usr/bin/env", "bash", scratch.appendingPathComponent("scenario.sh").path, scratch.path, Interop.tcpip, danted, dnsmasq,
             ping, label, upstream, String(size), mode],
            timeout: timeout)
    }

    static func exercise(_ upstream: String, label: String, fakeDNS: Bool = false) throws {
        let result = try run(upstream, label: label, mode: fakeDNS ? "fakedns" : "full")
        let output = result.output
        let expected = output.split(separator: "\n").first { $0.hasPrefix("file ") }.map { String($0.dropFirst(5)) } ?? "?"
        #expect(result.status == 0, "\(output.suffix(3000))")
        if fakeDNS {
            // curl resolved target.test through the tunnel (the pool's address), and the gateway
            // CONNECTed by name; dante resolved it with dnsmasq.
            #expect(output.contains("resolved 198.19.128."), "\(output.suffix(3000))")
            #expect(output.contains("byname \(expected)"), "\(output.suffix(3000))")
            // `--plot`: a complete SVG, written at the graceful stop.
            #expect(output.contains("plot "), "no time–sequence graph: \(output.suffix(3000))")
            return
        }
        for family in ["v4", "v6"] {
            #expect(output.contains("download \(family) \(expected)"), "\(output.suffix(3000))")
            #expect(output.contains("upload \(family) \(expected)"), "\(output.suffix(3000))")
            #expect(output.contains("refused \(family) ok"), "\(output.suffix(3000))")
            #expect(output.contains("halfclose \(family) \(expected)"), "\(output.suffix(3000))")
        }
        #expect(output.contains("dns ok"), "\(output.suffix(3000))")
        #expect(output.contains("3 packets transmitted, 3 received"), "\(output.suffix(3000))")
        #expect(output.contains("flows: active="), "no flow table: \(output.suffix(3000))")
    }

    @Test func throughSOCKS5() throws {
        try Interop.check()
        try Self.exercise("--socks5 198.18.1.2:1080", label: "s5")
    }

    /// `--fake-dns`: the client's resolver is behind the tunnel; `curl http://target.test:8080/`
    /// downloads through SOCKS5 by name.
    @Test func fakeDNSThroughSOCKS5() throws {
        try Interop.check()
        try Self.exercise("--socks5 198.18.1.2:1080 --fake-dns 198.19.128.0/17", label: "fd", fakeDNS: true)
    }

    @Test func direct() throws {
        try Interop.check()
        try Self.exercise("--direct --mark 19", label: "dir")
    }

    /// The scenario: arguments are the scratch directory, the tcpip binary, danted, dnsmasq, ping, a
    /// label, the gateway's upstream arguments and the transfer size.
    static let scenario = """
        set -u
        # Room for a thousand flows: each is a socket in the client, the gateway and the servers.
        ulimit -n 16384
        W=$1; TCPIP=$2; DANTED=$3; DNSMASQ=$4; PING=$5; C=tcpip-gwc-$6-$$; S=tcpip-gws-$6-$$; UPSTREAM=$7; SIZE=$8; MODE=$9
        cleanup() {
            for n in $C $S; do
                for p in $(ip netns pids $n 2>/dev/null); do kill -9 $p 2>/dev/null; done
                ip netns del $n 2>/dev/null
                rm -rf /etc/netns/$n
            done
        }
        trap cleanup EXIT
        fail() { echo "FAILED: $*"; echo "--- gateway log"; tail -40 $W/gateway.log; exit 1; }
        ip netns add $C && ip netns add $S || fail "netns"
        ip -n $C link set lo up; ip -n $S link set lo up
        # Client namespace: tun0 as gateway.sh has it; 198.19.0.0/16 and 2001:db8:19::/48 into the tunnel.
        # --queues N attaches N queues: the device must be multi-queue.
        case "$UPSTREAM" in *--queues*) ip -n $C tuntap add dev tun0 mode tun multi_queue;; *) ip -n $C tuntap add dev tun0 mode tun;; esac
        ip -n $C link set tun0 up
        ip -n $C addr add 198.18.0.1/24 dev tun0
        ip -n $C addr add 2001:db8::1/64 dev tun0 nodad
        ip -n $C route add 198.19.0.0/16 dev tun0
        ip -n $C -6 route add 2001:db8:19::/48 dev tun0
        # The veth pair to the server namespace; marked (direct) sockets route over it.
        ip -n $C link add veth-c type veth peer name veth-s netns $S
        ip -n $C addr add 198.18.1.1/24 dev veth-c
        ip -n $C addr add 2001:db8:1::1/64 dev veth-c nodad
        ip -n $C link set veth-c up
        ip -n $S addr add 198.18.1.2/24 dev veth-s
        ip -n $S addr add 2001:db8:1::2/64 dev veth-s nodad
        ip -n $S link set veth-s up
        ip -n $S addr add 198.19.0.1/32 dev lo
        ip -n $S addr add 2001:db8:19::1/128 dev lo
        ip -n $C rule add fwmark 19 lookup 19
        ip -n $C -6 rule add fwmark 19 lookup 19
        ip -n $C route add 198.19.0.0/16 via 198.18.1.2 table 19
        ip -n $C -6 route add 2001:db8:19::/48 via 2001:db8:1::2 table 19 || fail "routes"
        if [ "$MODE" = fakedns ]; then
            # `ip netns exec` mounts these over /etc/resolv.conf: the client asks through the tunnel,
            # the server namespace (dante) asks dnsmasq.
            mkdir -p /etc/netns/$C /etc/netns/$S
            echo "nameserver 198.19.0.53" > /etc/netns/$C/resolv.conf
            echo "nameserver 198.19.0.1" > /etc/netns/$S/resolv.conf
        fi
        mkdir -p $W/www
        head -c $SIZE /dev/urandom > $W/www/download.bin
        echo "file $(sha256sum $W/www/download.bin | cut -d' ' -f1)"
        cat > $W/danted.conf <<CONF
        logoutput: $W/danted.log
        internal: 198.18.1.2 port = 1080
        external: 198.19.0.1
        external: 2001:db8:19::1
        clientmethod: none
        socksmethod: none
        user.privileged: root
        user.unprivileged: nobody
        client pass { from: 0/0 to: 0/0 }
        socks pass { from: 0/0 to: 0/0 command: connect udpassociate udpreply }
        CONF
        ip netns exec $S $DANTED -f $W/danted.conf -p $W/danted.pid > $W/danted.out 2>&1 &
        ip netns exec $S $DNSMASQ --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address=198.19.0.1 \\
            --address=/target.test/198.19.0.1 --user=root --pid-file=$W/dnsmasq.pid > $W/dnsmasq.log 2>&1 &
        ip netns exec $S python3 $W/servers.py $W/www $W/www/download.bin > $W/servers.log 2>&1 &
        for i in $(seq 100); do
            l=$(ip netns exec $S ss -ltnu)
            case "$l" in *:1080*) case "$l" in *:8080*) case "$l" in *:9001*) case "$l" in *198.19.0.1:53*) break;; esac;; esac;; esac;; esac
            sleep 0.2
        done
        # The fake-DNS run also draws its first connection (--plot), written when SIGTERM stops it.
        PLOT=""; [ "$MODE" = fakedns ] && PLOT="--plot $W/gateway.svg"
        ip netns exec $C $TCPIP gateway --tun tun0 $UPSTREAM $PLOT --status-interval 1 > $W/gateway.log 2>&1 &
        GW=$!  # `ip netns exec` execs the command: this is the gateway's pid
        for i in $(seq 150); do grep -q READY $W/gateway.log && break; sleep 0.2; done
        grep -q READY $W/gateway.log || fail "no READY"
        if [ "$MODE" = custom ]; then
            . $W/custom.sh
            sleep 1.5
            tail -6 $W/gateway.log
            exit 0
        fi
        if [ "$MODE" = fakedns ]; then
            echo "resolved $(ip netns exec $C getent ahostsv4 target.test | head -1 | cut -d' ' -f1)"
            rm -f $W/got.bin
            timeout 120 ip netns exec $C curl -sS -4 -o $W/got.bin http://target.test:8080/download.bin || fail "download by name"
            echo "byname $(sha256sum $W/got.bin | cut -d' ' -f1)"
            tail -6 $W/gateway.log
            kill -TERM $GW
            for i in $(seq 100); do kill -0 $GW 2>/dev/null || break; sleep 0.2; done
            grep -q "</svg>" $W/gateway.svg 2>/dev/null && echo "plot $(grep -c -e '<polyline' -e '<line' -e '<rect' $W/gateway.svg) shapes"
            exit 0
        fi
        for target in v4:198.19.0.1 v6:[2001:db8:19::1]; do
            family=${target%%:*}; host=${target#*:}
            rm -f $W/got.bin
            timeout 120 ip netns exec $C curl -sS -g -o $W/got.bin http://$host:8080/download.bin || fail "download $host"
            echo "download $family $(sha256sum $W/got.bin | cut -d' ' -f1)"
            echo "upload $family $(timeout 120 ip netns exec $C curl -sS -g -T $W/www/download.bin http://$host:8080/upload)"
        done
        timeout 120 ip netns exec $C python3 $W/client.py
        timeout 20 ip netns exec $C $PING -c 3 -i 0.2 -W 2 198.19.0.1
        sleep 1.5
        tail -6 $W/gateway.log
        exit 0
        """

    /// In the server namespace: HTTP on 8080 (GET serves files, PUT answers the SHA-256 of the body)
    /// and the half-close server on 9001 (reads to end of stream, then sends the file and closes),
    /// on 198.19.0.1 and 2001:db8:19::1; on 198.19.0.1 only, TCP echo on 9002, UDP echo on 9003
    /// (datagrams up to 65,535 bytes), and on 9004 a firehose (bytes 0...250 over and over, as fast
    /// as the reader takes them).
    static let servers = """
        import hashlib, http.server, os, socket, socketserver, sys, threading
        root, payload = sys.argv[1], sys.argv[2]
        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k): super().__init__(*a, directory=root, **k)
            def log_message(self, *a): pass
            def do_PUT(self):
                length = int(self.headers.get("Content-Length", "0"))
                digest = hashlib.sha256()
                while length > 0:
                    chunk = self.rfile.read(min(length, 65536))
                    if not chunk: break
                    digest.update(chunk); length -= len(chunk)
                body = (digest.hexdigest() + "\\n").encode()
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
        class V4(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
        class V6(V4): address_family = socket.AF_INET6
        def half_close(family, host):
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, 9001)); listener.listen(16)
            while True:
                conn, _ = listener.accept()
                def serve(conn):
                    while conn.recv(65536): pass
                    with open(payload, "rb") as f: conn.sendall(f.read())
                    conn.close()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()
        class EchoHandler(socketserver.BaseRequestHandler):
            def handle(self):
                while True:
                    data = self.request.recv(65536)
                    if not data: break
                    self.request.sendall(data)
        class Echo(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True; allow_reuse_address = True; request_queue_size = 2048
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        udp.bind(("198.19.0.1", 9003))
        def udp_echo():
            while True:
                data, peer = udp.recvfrom(65535); udp.sendto(data, peer)
        hose = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hose.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hose.bind(("198.19.0.1", 9004)); hose.listen(16)
        def firehose():
            chunk = bytes(range(251)) * 261
            while True:
                conn, _ = hose.accept()
                def serve(conn):
                    try:
                        while True: conn.sendall(chunk)
                    except OSError: pass
                    conn.close()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()
        threading.Thread(target=Echo(("198.19.0.1", 9002), EchoHandler).serve_forever, daemon=True).start()
        threading.Thread(target=udp_echo, daemon=True).start()
        threading.Thread(target=firehose, daemon=True).start()
        for server in (V4(("198.19.0.1", 8080), Handler), V6(("2001:db8:19::1", 8080), Handler)):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        threading.Thread(target=half_close, args=(socket.AF_INET6, "2001:db8:19::1"), daemon=True).start()
        half_close(socket.AF_INET, "198.19.0.1")
        """

    /// In the client namespace: a connect to a closed port is refused; the half-close exchange; a DNS
    /// query (A target.test) through UDP.
    static let clientScript = """
        import hashlib, socket, struct
        for family, host, label in ((socket.AF_INET, "198.19.0.1", "v4"), (socket.AF_INET6, "2001:db8:19::1", "v6")):
            s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(15)
            try:
                s.connect((host, 9)); print("refused", label, "connected")
            except ConnectionRefusedError:
                print("refused", label, "ok")
            except Exception as e:
                print("refused", label, "failed", repr(e))
            s.close()
            s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(60)
            s.connect((host, 9001)); s.sendall(b"GET the file after my FIN\\n"); s.shutdown(socket.SHUT_WR)
            digest = hashlib.sha256()
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                digest.update(chunk)
            print("halfclose", label, digest.hexdigest()); s.close()
        query = struct.pack("!HHHHHH", 0x1919, 0x0100, 1, 0, 0, 0) + b"\\x06target\\x04test\\x00" + struct.pack("!HH", 1, 1)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
        for attempt in range(3):
            u.sendto(query, ("198.19.0.1", 53))
            try:
                answer, _ = u.recvfrom(2048); break
            except socket.timeout:
                answer = b""
        ok = answer[:2] == b"\\x19\\x19" and bytes([198, 19, 0, 1]) in answer[len(query):]
        print("dns ok" if ok else "dns failed %r" % answer)
        """
}
