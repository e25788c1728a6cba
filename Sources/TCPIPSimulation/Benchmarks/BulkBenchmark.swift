import NIOCore
import TCPIP
import TCPIPWire

/// One TCP stream between two stacks in one process, on the wall clock, defined as the peers'
/// `netstackbench pipe-bulk` (`../shared/peers/README.md`): the sender writes 128 KiB chunks for
/// `seconds`, then shuts down its side and waits until the receiver has read to the end and closed.
/// Goodput = bytes × 8 / (time from the first write until the receiver's close reaches the sender).
///
/// Both stacks, both applications and the link run on the calling thread (threads = 1).
public enum BulkBenchmark {
    /// What one run measured.
    public struct Result: Sendable {
        /// Bytes the receiver read, every one checked.
        public var bytes: Int
        /// Wall-clock seconds from the first write until the receiver's close reached the sender.
        public var seconds: Double
        /// Segments both stacks sent.
        public var segmentsSent: UInt64
        /// Segments both stacks retransmitted.
        public var retransmits: UInt64
        /// Goodput: `bytes` × 8 / `seconds`, in Gbit/s.
        public var gigabitsPerSecond: Double { seconds > 0 ? Double(bytes) * 8 / seconds / 1e9 : 0 }
    }

    /// Bytes the sender writes at a time (the peers' 128 KiB).
    public static let writeSize = 128 * 1024

    /// Runs the transfer for `seconds` of wall-clock time and measures it.
    public static func run(
        mtu: Int, seconds: Double, ipVersion: Int = 4, tcp: TCPConfiguration = TCPConfiguration(),
        clock: WallClock = WallClock()
    ) throws(TCPError) -> Result {
        try run(mtu: mtu, ipVersion: ipVersion, tcp: tcp, clock: clock) { _, now, start in
            WallClock.seconds(from: start, to: now) < seconds
        }
    }

    /// The same transfer for exactly `bytes` (rounded up to whole writes), for tests and allocation counts.
    public static func run(
        mtu: Int, bytes: Int, ipVersion: Int = 4, tcp: TCPConfiguration = TCPConfiguration(),
        clock: WallClock = WallClock()
    ) throws(TCPError) -> Result {
        try run(mtu: mtu, ipVersion: ipVersion, tcp: tcp, clock: clock) { written, _, _ in written < bytes }
    }

    static func run(
        mtu: Int, ipVersion: Int, tcp: TCPConfiguration, clock: WallClock,
        keepWriting: (_ written: Int, _ now: Instant, _ start: Instant) -> Bool
    ) throws(TCPError) -> Result {
        let pair = BenchmarkPair(mtu: mtu, ipVersion: ipVersion, tcp: tcp)
        let port: UInt16 = 5001
        var now = clock.now()
        let listener = try pair.server.listen(on: port)
        let sender = try pair.client.connect(to: Endpoint(pair.serverAddress, port), now: now)
        var receiver: ConnectionID?
        while receiver == nil {
            now = clock.now()
            pair.settle(now: now)
            receiver = pair.server.accept(listener)
            if receiver == nil, pair.client.state(sender) != .synSent, pair.client.state(sender) != .established {
                throw .connectionRefused
            }
        }
        guard let receiver else { throw .connectionDoesNotExist }

        let chunk = ByteBuffer(repeating: 0x5A, count: writeSize)
        var pending = chunk
        var written = 0
        var writing = true
        var receiverClosed = false
        var senderSawEnd = false
        let start = clock.now()
        now = start
        while !senderSawEnd {
            if writing {
                // A blocking 128 KiB write: it completes when the send buffer has taken all of it.
                while true {
                    let taken = try pair.client.send(sender, pending, now: now)
                    pending.moveReaderIndex(forwardBy: taken)
                    written += taken
                    guard pending.readableBytes == 0 else { break }
                    if !keepWriting(written, now, start) {
                        writing = false
                        try pair.client.close(sender, now: now)
                        break
                    }
                    pending = chunk
                }
            }
            pair.settle(now: now)
            if !receiverClosed, BenchmarkPair.drain(pair.server, receiver, now: now).ended {
                receiverClosed = true
                try? pair.server.close(receiver, now: now)
            }
            pair.settle(now: now)
            if !writing, BenchmarkPair.drain(pair.client, sender, now: now).ended {
                senderSawEnd = true
            }
            now = clock.now()
        }
        let elapsed = WallClock.seconds(from: start, to: now)
        try? pair.client.close(sender, now: now)
        let counters = pair.client.counters
        return Result(
            bytes: written, seconds: elapsed, segmentsSent: counters.segmentsSent,
            retransmits: counters.segmentsRetransmitted)
    }
}
