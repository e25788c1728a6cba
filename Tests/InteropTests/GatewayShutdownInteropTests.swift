import Foundation
import Testing

/// A graceful stop of `tcpip gateway --queues 2`, in the topology of `GatewayInteropTests`.
extension GatewayInteropTests {
    /// SIGTERM while 16 flows echo through both queues: every queue drains at once under the one
    /// `--shutdown-timeout` (not queue 0 first, the others closed after it), so every flow finishes
    /// its transfer — every byte echoed and compared — and the process exits 0 within the timeout.
    @Test func sigtermDrainsEveryQueue() throws {
        try Interop.check()
        let output = try Self.limits(
            "\(Self.direct) --queues 2 --shutdown-timeout 8", label: "sq", size: 1024, Self.drainClients)
        #expect(output.contains("drain verified 16 of 16"), "\(output.suffix(3000))")
        #expect(output.contains("gateway exit 0 "), "\(output.suffix(3000))")
        let seconds = try #require(Self.figure(output, line: "gateway exit", after: "after"), "\(output.suffix(3000))")
        #expect(seconds <= 8, "the gateway took \(seconds) s to stop: \(output.suffix(3000))")
        #expect(output.contains("stopped; 16 connection(s) finished"), "\(output.suffix(3000))")
        // Both queues carried flows, and each drained its own (none was reset, none cut short).
        for queue in 0...1 {
            let line = output.split(separator: "\n").first { $0.contains("queue \(queue) stopped; ") }
            let finished = line.flatMap { $0.split(separator: "; ").last?.split(separator: " ").first }.flatMap { Int($0) }
            #expect((finished ?? 0) > 0, "queue \(queue) drained no flow: \(output.suffix(3000))")
            #expect(line?.hasSuffix(" 0 reset") == true, "\(output.suffix(3000))")
        }
    }

    /// The drain test's clients: 16 flows to the echo server send 1 KiB every 10 ms for 2 to 3.75 s (each
    /// its own pattern) and read the echo meanwhile, then half-close and read to the end; SIGTERM
    /// reaches the gateway a second after all are open. `$GW` is a child of the scenario's shell,
    /// so `wait` gives its exit status.
    static let drainClients = #"""
        cat > $W/drain.py <<'PY'
        import asyncio, sys, time
        HOST, N = "198.19.0.1", 16
        def pattern(seed, n):
            return bytes((seed * 7 + i * 31 + (i >> 8)) & 0xFF for i in range(n))
        async def main():
            opened, ok, gate = [0], [0], asyncio.Event()
            async def flow(i):
                reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, 9002), 30)
                opened[0] += 1
                if opened[0] == N:
                    print("drain open %d" % N, flush=True)
                    gate.set()
                await gate.wait()
                sent = bytearray()
                async def read():
                    got = bytearray()
                    while True:
                        chunk = await reader.read(65536)
                        if not chunk: return bytes(got)
                        got += chunk
                reading = asyncio.ensure_future(read())
                end = time.monotonic() + 2 + (i % 8) * 0.25  # flows end 2 to 3.75 s after the gate
                while time.monotonic() < end:
                    chunk = pattern(i + len(sent), 1024)
                    writer.write(chunk); sent += chunk
                    await writer.drain()
                    await asyncio.sleep(0.01)
                writer.write_eof()
                got = await asyncio.wait_for(reading, 30)
                ok[0] += got == bytes(sent)
                writer.close()
            results = await asyncio.gather(*(flow(i) for i in range(N)), return_exceptions=True)
            errors = [repr(r) for r in results if isinstance(r, BaseException)]
            print("drain verified %d of %d %s" % (ok[0], N, " ".join(errors)), flush=True)
        asyncio.run(main())
        PY
        timeout 60 ip netns exec $C python3 $W/drain.py > $W/drain.log 2>&1 &
        DRAIN=$!
        for i in $(seq 300); do grep -q "drain open" $W/drain.log && break; sleep 0.1; done
        sleep 1
        START=$(date +%s.%N)
        kill -TERM $GW
        wait $GW; STATUS=$?
        echo "gateway exit $STATUS after $(awk -v s=$START -v e=$(date +%s.%N) 'BEGIN { d = e - s; printf "%d", d == int(d) ? d : int(d) + 1 }') s"
        wait $DRAIN
        cat $W/drain.log
        grep -E "stopped|stopping" $W/gateway.log
        """#
}
