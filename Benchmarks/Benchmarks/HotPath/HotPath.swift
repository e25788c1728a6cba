import Benchmark
import NIOCore
import TCPIP
import TCPIPSimulation
import TCPIPWire

// The hot paths of the stack, each with its malloc count. `swift package benchmark thresholds check`
// compares `mallocCountTotal` with the recorded figures in ../../Thresholds (per 1,000 iterations for the
// kilo-scaled benchmarks) and fails beyond the absolute tolerance given here: one more malloc per datagram
// emitted or per segment pumped, or one per ~470 segments over the 64 MiB transfer, is a regression. The
// transfer allocates nothing per segment: its ~600 mallocs set up the stacks and the connection, and a
// 256 MiB transfer makes exactly as many (`LD_PRELOAD` counting, `tcpip bench bulk --bytes`).

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .mallocCountTotal],
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 64])]
    )

    let source = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    let destination = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    var options = TCPOptions()
    options.timestamps = TCPTimestamps(value: 1, echoReply: 2)
    let header = TCPHeader(
        sourcePort: 49152, destinationPort: 5001, sequenceNumber: SequenceNumber(0xFFFF_F000),
        acknowledgmentNumber: SequenceNumber(1), flags: [.ack, .psh], window: 65535, options: options)
    let payload = ByteBuffer(repeating: 0x5A, count: 1448)
    let datagram = PacketBuffer.tcpDatagram(
        header: header, payload: payload, source: source, destination: destination, computeChecksum: true)

    // Parse an IPv4 + TCP header (with timestamps) and slice out the payload; checksums verified.
    Benchmark("Wire.parse.IPv4TCP.checksumVerified") { benchmark in
        for _ in benchmark.scaledIterations {
            let ip = try IPDatagram.parse(datagram, verifyChecksum: true)
            blackHole(try TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: true))
        }
    }

    Benchmark("Wire.parse.IPv4TCP.checksumOffload") { benchmark in
        for _ in benchmark.scaledIterations {
            let ip = try IPDatagram.parse(datagram, verifyChecksum: false)
            blackHole(try TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: false))
        }
    }

    // Build one datagram: one buffer, the payload copied once, TCP and IP headers prepended in place.
    // One allocation (the packet buffer) per datagram.
    Benchmark(
        "Wire.emit.IPv4TCP.payload1448",
        configuration: .init(thresholds: [.mallocCountTotal: .init(absolute: [.p90: 1_000])])
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(PacketBuffer.tcpDatagram(
                header: header, payload: payload, source: source, destination: destination, computeChecksum: false))
        }
    }

    // One MSS of data through an established connection: SEND, the data segment arriving in order at the
    // receiver, the receiver's application reading it, and every second iteration the ACK being processed
    // by the sender. Both stacks on one thread over the in-memory link (checksum offload).
    Benchmark(
        "TCP.inOrderSegmentAndACK.oneMSS",
        configuration: .init(thresholds: [.mallocCountTotal: .init(absolute: [.p90: 1_000])])
    ) { benchmark in
        let pump = try SegmentPump()
        let chunk = ByteBuffer(repeating: 0x5A, count: pump.segmentSize)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            pump.sendOneSegment(chunk)
        }
        benchmark.stopMeasurement()
    }

    // 64 MiB over one connection at MTU 1500 with 128 KiB writes: the whole path, handshake to close.
    Benchmark(
        "TCP.bulk.64MiB.mtu1500",
        configuration: .init(
            metrics: [.wallClock, .cpuTotal, .mallocCountTotal], scalingFactor: .one, maxDuration: .seconds(10),
            maxIterations: 5,
            thresholds: [.mallocCountTotal: .init(absolute: [.p90: 100])])
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try BulkBenchmark.run(mtu: 1500, bytes: 64 << 20))
        }
    }
}

/// An established connection between two stacks, driven one segment at a time.
final class SegmentPump {
    let pair = BenchmarkPair(mtu: 1500)
    let sender: ConnectionID
    let receiver: ConnectionID
    let clock = WallClock()
    var segmentSize: Int { 1448 - 12 }

    init() throws {
        let now = clock.now()
        let listener = try pair.server.listen(on: 5001)
        sender = try pair.client.connect(to: Endpoint(pair.serverAddress, 5001), now: now)
        pair.client.setNoDelay(sender, true, now: now)
        pair.settle(now: now)
        guard let accepted = pair.server.accept(listener) else { throw TCPError.connectionRefused }
        receiver = accepted
    }

    func sendOneSegment(_ chunk: ByteBuffer) {
        let now = clock.now()
        _ = try? pair.client.send(sender, chunk, now: now)
        pair.settle(now: now)
        BenchmarkPair.drain(pair.server, receiver, now: now)
        pair.settle(now: now)
    }
}
