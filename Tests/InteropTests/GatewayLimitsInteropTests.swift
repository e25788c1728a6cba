import Foundation
import Testing

/// The issue's limits through `tcpip gateway`, in the topology of `GatewayInteropTests` (its
/// `run`, servers and namespaces): a thousand concurrent flows, a 30,000-byte datagram, `--max-flows`,
/// a slow reader, a SYN flood under `--memory-limit`, and a scan of closed ports. Each prints what
/// it measured (`limits.py`), which the test checks.
extension GatewayInteropTests {
    static let socks5 = "--socks5 198.18.1.2:1080"
    static let direct = "--direct --mark 19"

    /// Runs `clients` in the topology and returns the output, failing the test when the scenario failed.
    static func limits(_ upstream: String, label: String, size: Int = 1 << 20, _ clients: String) throws -> String {
        let result = try run(upstream, label: label, mode: "custom", size: size, clients: clients, timeout: 300)
        #expect(result.status == 0, "\(result.output.suffix(3000))")
        return result.output
    }

    /// The figure after `key` on the line that starts with `prefix` (`"slowread"`, `"max"`: 1234).
    static func figure(_ output: String, line prefix: String, after key: String) -> Int? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        let words = line.split(separator: " ")
        guard let index = words.firstIndex(where: { $0 == key }), index + 1 < words.count else { return nil }
        return Int(words[index + 1])
    }

    /// 1,000 flows open at once through SOCKS5 (each waits until all are connected), each echoes
    /// 4 KiB of its own, every byte compared.
    @Test func aThousandConcurrentFlowsThroughSOCKS5() throws {
        try Interop.check()
        let output = try Self.limits(Self.socks5, label: "k1", "timeout 200 ip netns exec $C python3 $W/limits.py concurrent 1000")
        #expect(output.contains("concurrent opened 1000 verified 1000 of 1000"), "\(output.suffix(3000))")
    }

    /// A 30,000-byte datagram (21 fragments into the tunnel at MTU 1500, and the answer fragmented
    /// by the stack) echoed byte for byte through a direct socket.
    @Test func aThirtyThousandByteDatagramDirect() throws {
        try Interop.check()
        let output = try Self.limits(Self.direct, label: "ud", "timeout 60 ip netns exec $C python3 $W/limits.py udpbig 30000")
        #expect(output.contains("udpbig 30000 echoed"), "\(output.suffix(3000))")
    }

    /// The same datagram through SOCKS5 UDP ASSOCIATE (RFC 1928 §7: 10 bytes of header more, to
    /// dante over the veth pair, fragmented there too).
    @Test func aThirtyThousandByteDatagramThroughSOCKS5() throws {
        try Interop.check()
        let output = try Self.limits(Self.socks5, label: "us", "timeout 60 ip netns exec $C python3 $W/limits.py udpbig 30000")
        #expect(output.contains("udpbig 30000 echoed"), "\(output.suffix(3000))")
    }

    /// `--max-flows 100`: the 101st connect is refused at once (RST: ECONNREFUSED, not a timeout),
    /// and the hundred held open still echo.
    @Test func maxFlowsRefusesTheHundredAndFirst() throws {
        try Interop.check()
        let output = try Self.limits(
            "\(Self.direct) --max-flows 100", label: "mf", "timeout 60 ip netns exec $C python3 $W/limits.py maxflows 100")
        #expect(output.contains("extra refused in 0."), "\(output.suffix(3000))")
        #expect(output.contains("held 100 working 100"), "\(output.suffix(3000))")
    }

    /// Back-pressure: a client that reads 1 KiB/s from a server that sends as fast as it can, for
    /// 20 s (a 4 KiB receive buffer, so the kernel does not soak it up). The gateway stops reading
    /// upstream when the client's side is full: from a second into the flow (when the pipeline is
    /// full) to its end, RSS grows by less than 512 KiB (every byte read is checked against the
    /// firehose's pattern). The flow's own set-up, the first of the process, is `before` → `start`.
    @Test func aSlowReaderDoesNotGrowTheGateway() throws {
        try Interop.check()
        let output = try Self.limits(Self.direct, label: "sr", "timeout 60 ip netns exec $C python3 $W/limits.py slowread $GW 20")
        #expect(output.contains("slowread read 20480 bad 0"), "\(output.suffix(3000))")
        let growth = try #require(Self.figure(output, line: "slowread", after: "growth"), "\(output.suffix(3000))")
        #expect(growth < 512, "RSS grew by \(growth) KiB: \(output.suffix(3000))")
    }

    /// 100,000 SYNs from a raw socket to random addresses behind the tunnel (198.19.1.0 up, where
    /// nothing answers: the dials time out after 2 s) while a 10 MB download runs at 1 MB/s: the
    /// gateway's RSS stays under `--memory-limit` (64 MiB, code included), the download completes
    /// and verifies, and the stack counted the SYNs it turned away.
    @Test func aSYNFloodStaysUnderTheMemoryLimit() throws {
        try Interop.check()
        let limit = 64 << 20
        let output = try Self.limits(
            "\(Self.direct) --memory-limit \(limit) --connect-timeout 2 --metrics-port 9100", label: "fl", size: 10 << 20, Self.floodClients)
        let expected = output.split(separator: "\n").first { $0.hasPrefix("file ") }.map { String($0.dropFirst(5)) } ?? "?"
        #expect(output.contains("flood sent 100000 SYNs"), "\(output.suffix(3000))")
        #expect(output.contains("download status 0"), "\(output.suffix(3000))")
        #expect(output.contains("flooddownload \(expected)"), "\(output.suffix(3000))")
        let peak = try #require(Self.figure(output, line: "floodrss", after: "hwm"), "\(output.suffix(3000))")
        #expect(peak * 1024 < limit, "peak RSS \(peak) KiB: \(output.suffix(3000))")
        let requests = try #require(Self.figure(output, line: "tcpip_intercept_requests", after: "tcpip_intercept_requests"))
        #expect(requests > 1000, "\(output.suffix(3000))")
    }

    /// The flood's clients: the download first (1 MB/s), then the SYNs; VmRSS sampled meanwhile.
    static let floodClients = """
        ip -n $C link set tun0 txqueuelen 5000
        timeout 120 ip netns exec $C curl -sS --limit-rate 1M -o $W/got.bin http://198.19.0.1:8080/download.bin &
        CURL=$!
        sleep 1
        timeout 120 ip netns exec $C python3 $W/limits.py flood 100000 &
        FLOOD=$!
        PEAK=0
        while kill -0 $FLOOD 2>/dev/null || kill -0 $CURL 2>/dev/null; do
            R=$(awk '/VmRSS/ {print $2}' /proc/$GW/status); [ "$R" -gt "$PEAK" ] && PEAK=$R; sleep 0.2
        done
        wait $CURL; echo "download status $?"
        echo "flooddownload $(sha256sum $W/got.bin | cut -d' ' -f1)"
        echo "floodrss peak $PEAK KiB hwm $(awk '/VmHWM/ {print $2}' /proc/$GW/status) KiB"
        ip netns exec $C curl -sS http://127.0.0.1:9100/metrics | grep -E '^tcpip_(intercept_requests|intercept_pending_full|intercept_refused|gateway_upstream_dial_failures|gateway_refusals)'
        """

    /// `--queues 2` (IFF_MULTI_QUEUE): 200 concurrent flows, all echoed; the kernel hashed flows to
    /// both queues, whose gateways each counted some (each queue prints its own flow table).
    @Test func twoQueuesBothCarryFlows() throws {
        try Interop.check()
        let output = try Self.limits(
            "\(Self.direct) --queues 2", label: "mq",
            "timeout 120 ip netns exec $C python3 $W/limits.py concurrent 200; sleep 1.5; grep '^queue' $W/gateway.log | tail -4")
        #expect(output.contains("concurrent opened 200 verified 200 of 200"), "\(output.suffix(3000))")
        var opened = [0, 0]
        for line in output.split(separator: "\n") where line.hasPrefix("queue ") {
            let words = line.split(separator: " ")
            guard words.count > 2, let queue = Int(words[1]), (0...1).contains(queue),
                let field = words.first(where: { $0.hasPrefix("opened=") }), let count = Int(field.dropFirst(7))
            else { continue }
            opened[queue] = max(opened[queue], count)
        }
        #expect(opened[0] > 0 && opened[1] > 0, "flows per queue \(opened): \(output.suffix(3000))")
        #expect(opened[0] + opened[1] == 200, "flows per queue \(opened)")
    }

    /// 1,000 flows opened one after another, as the peers kit's `rss` test opens them (`gwbench
    /// open`): each connects, has one octet echoed end to end, and stays open; at the end every one
    /// still echoes. With offload (the default) the loop writes the SYN-ACKs itself and reads the
    /// kernel's ACK within those writes (`PacketSource.readWithoutWaiting`); a flow that never got
    /// its first octet, or one lost afterwards, fails the test within seconds rather than hanging.
    @Test(arguments: ["", " --no-offload"])
    func aThousandFlowsOpenedOneAfterAnotherThroughSOCKS5(_ mode: String) throws {
        try Interop.check()
        let output = try Self.limits(
            Self.socks5 + mode, label: mode.isEmpty ? "sq" : "sn", "timeout 200 ip netns exec $C python3 $W/limits.py sequential 1000")
        #expect(output.contains("sequential opened 1000 greeted 1000 held 1000 of 1000"), "\(output.suffix(3000))")
    }

    /// `nmap`-style: a connect to each of 100 ports nothing listens on, through SOCKS5; every one is
    /// refused (dial before SYN-ACK), none looks open.
    @Test func aHundredClosedPortsAllLookClosed() throws {
        try Interop.check()
        let output = try Self.limits(Self.socks5, label: "np", "timeout 120 ip netns exec $C python3 $W/limits.py closedports 100")
        #expect(output.contains("scan 100 closed 100 other 0"), "\(output.suffix(3000))")
    }
}

extension GatewayInteropTests {
    /// The clients of the limits tests, in the client namespace: `concurrent N`, `sequential N`,
    /// `udpbig SIZE`, `maxflows N`, `slowread PID SECONDS`, `flood COUNT`, `closedports N`.
    static let limitsScript = #"""
        import asyncio, os, random, resource, socket, struct, sys, time
        HOST = "198.19.0.1"
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (16384, 16384))
        except (ValueError, OSError):
            pass  # the scenario's `ulimit -n` (root raises both limits); a thousand flows need ~1,100

        def pattern(seed, n):
            return bytes((seed * 7 + i * 31 + (i >> 8)) & 0xFF for i in range(n))

        def sequential(n):
            # One flow after another: connect, one octet echoed, kept open; then each must still echo.
            flows, greeted, held = [], 0, 0
            start = time.monotonic()
            for i in range(n):
                try:
                    s = socket.create_connection((HOST, 9002), timeout=10)
                    s.sendall(b"g")
                    if s.recv(1) == b"g":
                        greeted += 1
                    flows.append(s)
                except OSError as error:
                    print("sequential flow %d: %s" % (i, error))
            for s in flows:
                try:
                    s.sendall(b"h")
                    if s.recv(1) == b"h":
                        held += 1
                except OSError:
                    pass
                s.close()
            print("sequential opened %d greeted %d held %d of %d in %.1f s" % (len(flows), greeted, held, n, time.monotonic() - start))

        async def concurrent(n, size=4096):
            # Every flow connects, waits until all n are open at once, then echoes size bytes of its own.
            opened, ok, gate = [0], [0], asyncio.Event()
            start = time.monotonic()
            async def flow(i):
                reader, writer = None, None
                for attempt in range(5):
                    try:
                        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, 9002), 30)
                        break
                    except (ConnectionError, asyncio.TimeoutError):
                        await asyncio.sleep(0.5)
                if writer is None:
                    return
                opened[0] += 1
                if opened[0] == n:
                    print("all %d open after %.1f s" % (n, time.monotonic() - start))
                    gate.set()
                await gate.wait()
                data = os.urandom(size)
                writer.write(data)
                await writer.drain()
                got = await asyncio.wait_for(reader.readexactly(size), 60)
                if got == data:
                    ok[0] += 1
                writer.close()
            await asyncio.wait_for(asyncio.gather(*(flow(i) for i in range(n)), return_exceptions=True), 120)
            print("concurrent opened %d verified %d of %d in %.1f s" % (opened[0], ok[0], n, time.monotonic() - start))

        def udpbig(size):
            data = os.urandom(size)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            u.settimeout(3)
            got = b""
            for attempt in range(5):
                u.sendto(data, (HOST, 9003))
                try:
                    got, _ = u.recvfrom(65535)
                    break
                except socket.timeout:
                    pass
            print("udpbig %d %s" % (size, "echoed" if got == data else "failed got %d bytes" % len(got)))

        def maxflows(limit):
            held = []
            for i in range(limit):
                s = socket.create_connection((HOST, 9002), timeout=10)
                held.append(s)
            extra = socket.socket(); extra.settimeout(10)
            start = time.monotonic()
            try:
                extra.connect((HOST, 9002)); outcome = "connected"
            except ConnectionRefusedError:
                outcome = "refused"
            except Exception as e:
                outcome = "failed %r" % e
            print("extra %s in %.2f s" % (outcome, time.monotonic() - start))
            ok = 0
            for i, s in enumerate(held):
                data = pattern(i, 1000)
                s.sendall(data)
                got = b""
                while len(got) < len(data):
                    chunk = s.recv(65536)
                    if not chunk: break
                    got += chunk
                ok += got == data
                s.close()
            print("held %d working %d" % (len(held), ok))

        def rss(pid):
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])

        def slowread(pid, seconds):
            before = rss(pid)
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(10)
            s.connect((HOST, 9004))
            unit = bytes(range(251))
            offset, bad, samples = 0, 0, []
            first = s.recv(1024)
            time.sleep(1)
            start = rss(pid)
            for second in range(seconds):
                got = first if second == 0 else b""
                while len(got) < 1024:
                    chunk = s.recv(1024 - len(got))
                    if not chunk: break
                    got += chunk
                for b in got:
                    bad += b != unit[offset % 251]; offset += 1
                samples.append(rss(pid))
                time.sleep(1)
            s.close()
            print("slowread read %d bad %d rss before %d KiB start %d KiB max %d KiB end %d KiB growth %d KiB" % (
                offset, bad, before, start, max(samples), samples[-1], max(samples) - start))

        def checksum(data):
            if len(data) % 2: data += b"\0"
            total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
            while total >> 16: total = (total & 0xFFFF) + (total >> 16)
            return ~total & 0xFFFF

        def flood(count):
            # SYNs from the client's tunnel address to random addresses behind the tunnel (198.19.1.0 up).
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
            source = socket.inet_aton("198.18.0.1")
            rng = random.Random(19)
            sent = failed = 0
            start = time.monotonic()
            for i in range(count):
                destination = bytes([198, 19, rng.randint(1, 255), rng.randint(1, 254)])
                sport, dport, seq = rng.randint(1024, 65535), rng.choice((80, 443, 8080)), rng.getrandbits(32)
                tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
                tcp = tcp[:16] + struct.pack("!H", checksum(source + destination + struct.pack("!BBH", 0, 6, 20) + tcp)) + tcp[18:]
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, source, destination)
                while True:
                    try:
                        raw.sendto(ip + tcp, (socket.inet_ntoa(destination), 0)); sent += 1; break
                    except (BlockingIOError, OSError):
                        failed += 1; time.sleep(0.0005)
                        if failed > 10 * count: break
            print("flood sent %d SYNs in %.1f s (%d retries)" % (sent, time.monotonic() - start, failed))

        def closedports(count):
            closed = other = 0
            start = time.monotonic()
            for port in range(20000, 20000 + count):
                s = socket.socket(); s.settimeout(10)
                try:
                    s.connect((HOST, port)); other += 1
                except ConnectionRefusedError:
                    closed += 1
                except Exception:
                    other += 1
                s.close()
            print("scan %d closed %d other %d in %.1f s" % (count, closed, other, time.monotonic() - start))

        command = sys.argv[1]
        if command == "concurrent": asyncio.run(concurrent(int(sys.argv[2])))
        elif command == "sequential": sequential(int(sys.argv[2]))
        elif command == "udpbig": udpbig(int(sys.argv[2]))
        elif command == "maxflows": maxflows(int(sys.argv[2]))
        elif command == "slowread": slowread(int(sys.argv[2]), int(sys.argv[3]))
        elif command == "flood": flood(int(sys.argv[2]))
        elif command == "closedports": closedports(int(sys.argv[2]))
        """#
}
