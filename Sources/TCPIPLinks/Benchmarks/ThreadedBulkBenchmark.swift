import Foundation
import NIOCore
import TCPIP
import TCPIPWire

/// `BulkBenchmark` with each stack on a thread of its own (threads = 2), as the peers' gVisor pipe test
/// runs its two netstacks on two Go processors (GOMAXPROCS=2).
///
/// The sending stack and its application run on one thread, the receiving stack and its application on
/// the other; datagrams cross between them in batches (`CrossThreadLink`). Each stack still has a single
/// owner at a time, as `Stack` requires: the handshake runs on the calling thread, then each stack is
/// handed to its thread, and back when the transfer is over. The figure is defined as `BulkBenchmark`'s.
public enum ThreadedBulkBenchmark {
    public static func run(
        mtu: Int, seconds: Double, ipVersion: Int = 4, tcp: TCPConfiguration = TCPConfiguration()
    ) throws(TCPError) -> BulkBenchmark.Result {
        let clock = WallClock()
        let pair = BenchmarkPair(mtu: mtu, ipVersion: ipVersion, tcp: tcp)
        let port: UInt16 = 5001
        var now = clock.now()
        let listener = try pair.server.listen(on: port)
        let sender = try pair.client.connect(to: Endpoint(pair.serverAddress, port), now: now)
        var accepted: ConnectionID?
        while accepted == nil {
            now = clock.now()
            pair.settle(now: now)
            accepted = pair.server.accept(listener)
            if accepted == nil, pair.client.state(sender) != .synSent, pair.client.state(sender) != .established {
                throw .connectionRefused
            }
        }
        guard let receiver = accepted else { throw .connectionDoesNotExist }

        let toServer = CrossThreadLink()
        let toClient = CrossThreadLink()
        let finished = CrossThreadFlag()
        let server = UncheckedBox(pair.server)
        let serverStopped = CrossThreadFlag()
        let serverThread = Thread {
            Self.receive(on: server.value, receiver, inbound: toServer, outbound: toClient, clock: clock, until: finished)
            serverStopped.set()
        }
        serverThread.start()
        let result = Self.send(
            on: pair.client, sender, inbound: toClient, outbound: toServer, clock: clock,
            keepWriting: { _, now, start in WallClock.seconds(from: start, to: now) < seconds })
        finished.set()
        // The server's stack comes back to this thread once its thread has let go of it.
        while !serverStopped.isSet { Thread.sleep(forTimeInterval: 0.001) }
        return try result.get()
    }

    /// The sending side: 128 KiB writes while `keepWriting`, then CLOSE, until the receiver's FIN arrives.
    private static func send(
        on stack: Stack, _ id: ConnectionID, inbound: CrossThreadLink, outbound: CrossThreadLink, clock: WallClock,
        keepWriting: (_ written: Int, _ now: Instant, _ start: Instant) -> Bool
    ) -> Result<BulkBenchmark.Result, TCPError> {
        let chunk = ByteBuffer(repeating: 0x5A, count: BulkBenchmark.writeSize)
        var pending = chunk
        var written = 0
        var writing = true
        var arrived: [ByteBuffer] = []
        var departing: [ByteBuffer] = []
        arrived.reserveCapacity(256)
        departing.reserveCapacity(256)
        let start = clock.now()
        var now = start
        do throws(TCPError) {
            while true {
                if writing {
                    while true {
                        let taken = try stack.send(id, pending, now: now)
                        pending.moveReaderIndex(forwardBy: taken)
                        written += taken
                        guard pending.readableBytes == 0 else { break }
                        if !keepWriting(written, now, start) {
                            writing = false
                            try stack.close(id, now: now)
                            break
                        }
                        pending = chunk
                    }
                }
                Self.exchange(stack, inbound: inbound, outbound: outbound, arrived: &arrived, departing: &departing, now: now)
                if !writing, BenchmarkPair.drain(stack, id, now: now).ended { break }
                now = clock.now()
            }
        } catch {
            return .failure(error)
        }
        let elapsed = WallClock.seconds(from: start, to: now)
        let counters = stack.counters
        return .success(BulkBenchmark.Result(
            bytes: written, seconds: elapsed, segmentsSent: counters.segmentsSent,
            retransmits: counters.segmentsRetransmitted))
    }

    /// The receiving side: read everything, CLOSE at the end of the stream, and keep the stack running
    /// (its FIN may need retransmitting) until the sender has seen that close.
    private static func receive(
        on stack: Stack, _ id: ConnectionID, inbound: CrossThreadLink, outbound: CrossThreadLink, clock: WallClock,
        until finished: CrossThreadFlag
    ) {
        var arrived: [ByteBuffer] = []
        var departing: [ByteBuffer] = []
        arrived.reserveCapacity(256)
        departing.reserveCapacity(256)
        var closed = false
        var rounds = 0
        while true {
            let now = clock.now()
            Self.exchange(stack, inbound: inbound, outbound: outbound, arrived: &arrived, departing: &departing, now: now)
            if !closed, BenchmarkPair.drain(stack, id, now: now).ended {
                closed = true
                try? stack.close(id, now: now)
                Self.exchange(stack, inbound: inbound, outbound: outbound, arrived: &arrived, departing: &departing, now: now)
            }
            rounds &+= 1
            // The flag takes a lock: look at it now and then, not on every round.
            if closed, rounds & 63 == 0, finished.isSet { return }
        }
    }

    /// Takes in what the other thread sent, runs due timers, and hands over what this stack sends.
    @inline(__always)
    private static func exchange(
        _ stack: Stack, inbound: CrossThreadLink, outbound: CrossThreadLink,
        arrived: inout [ByteBuffer], departing: inout [ByteBuffer], now: Instant
    ) {
        inbound.take(into: &arrived)
        for datagram in arrived { stack.receive(datagram, now: now) }
        arrived.removeAll(keepingCapacity: true)
        if let deadline = stack.nextDeadline, deadline <= now { stack.advanceTime(to: now) }
        while let datagram = stack.nextPacketToSend() { departing.append(datagram) }
        if !departing.isEmpty { outbound.put(&departing) }
    }
}

/// Datagrams from one thread to another, handed over a batch at a time under a lock. The arrays are
/// swapped, not copied, so in steady state a batch costs one lock and no allocation.
final class CrossThreadLink: @unchecked Sendable {
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var queued: [ByteBuffer] = []

    init() {
        queued.reserveCapacity(256)
    }

    /// Appends `batch` to the queue and leaves `batch` empty.
    func put(_ batch: inout [ByteBuffer]) {
        lock.lock()
        if queued.isEmpty {
            swap(&queued, &batch)
        } else {
            queued.append(contentsOf: batch)
            batch.removeAll(keepingCapacity: true)
        }
        lock.unlock()
    }

    /// Moves everything queued into `batch`, which must be empty.
    func take(into batch: inout [ByteBuffer]) {
        lock.lock()
        swap(&queued, &batch)
        lock.unlock()
    }
}

/// A flag one thread sets and another reads.
final class CrossThreadFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    func set() {
        lock.lock()
        value = true
        lock.unlock()
    }

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}

/// Moves a non-Sendable value to another thread that becomes its only user.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
