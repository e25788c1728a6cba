import NIOCore
import TCPIP
import TCPIPWire

/// Connections per second between two stacks in one process, on the wall clock, with the cycle of the
/// peers' `pipe-connrate` (`../shared/peers/README.md`): the client connects; the server accepts and closes
/// at once (its FIN goes first, so TIME-WAIT stays on the server); the client reads the end of the stream
/// and closes. A cycle counts when the client has closed. One thread drives both sides (threads = 1).
///
/// The server keeps every 4-tuple in TIME-WAIT for 2·MSL, as Linux does, up to its record limit
/// (`StackConfiguration.maximumTimeWaitRecords`, 131,072 like Linux's `tcp_max_tw_buckets` on a
/// machine of this size; beyond it, connections close at once and are counted). The client makes
/// 16,384 connections (its ephemeral ports) from each of `clientAddresses` addresses in turn; from a
/// single address every 4-tuple comes back while the server holds it in TIME-WAIT, and the server
/// reopens it on the new SYN (RFC 6191: the client's per-4-tuple timestamps have moved on).
public enum ConnectionRateBenchmark {
    /// What one run measured.
    public struct Result: Sendable {
        /// Connections opened, used and closed.
        public var connections: Int
        /// Wall-clock seconds they took.
        public var seconds: Double
        /// Connections the server still held at the end (TIME-WAIT).
        public var serverConnectionsLeft: Int
        /// Server connections closed without TIME-WAIT because `maximumTimeWaitRecords` were held
        /// (as Linux past `tcp_max_tw_buckets`, which the kernel's figure runs under too).
        public var serverTimeWaitOverflows: UInt64
        /// Server TIME-WAIT records reopened by a new SYN (RFC 6191, RFC 1122 §4.2.2.13).
        public var serverTimeWaitRecycled: UInt64
        /// SYNs the server answered from TIME-WAIT with an ACK (possible old duplicates): each costs
        /// the client a SYN retransmission timeout.
        public var serverTimeWaitRejected: UInt64
        /// Segments both sides retransmitted: 0 when every cycle went through without a timeout.
        public var retransmissions: UInt64
        /// Segments both sides sent, for the segments a cycle takes.
        public var segmentsSent: UInt64
        /// `connections` / `seconds`.
        public var connectionsPerSecond: Double { seconds > 0 ? Double(connections) / seconds : 0 }
    }

    /// Opens, uses and closes connections for `seconds` of wall-clock time and counts them.
    public static func run(
        seconds: Double, clientAddresses: Int = 256, tcp: TCPConfiguration = TCPConfiguration(),
        clock: WallClock = WallClock()
    ) throws(TCPError) -> Result {
        try run(clientAddresses: clientAddresses, tcp: tcp, clock: clock.now) { _, now, start in
            WallClock.seconds(from: start, to: now) < seconds
        }
    }

    /// Exactly `count` cycles, for tests and profilers. `virtualStep`: instead of the wall clock, a
    /// clock that moves on by this much each time it is read (a cycle reads it about twice), so that
    /// a run under valgrind, a hundred times slower, still sees time pass as a run at full speed
    /// does — the server's TIME-WAIT records fill its table and do not expire — and two binaries
    /// given the same count do exactly the same work. `seconds` is then the wall clock's.
    public static func run(
        count: Int, clientAddresses: Int = 4, tcp: TCPConfiguration = TCPConfiguration(), virtualStep: TimeAmount? = nil
    ) throws(TCPError) -> Result {
        guard let virtualStep else {
            return try run(clientAddresses: clientAddresses, tcp: tcp, clock: WallClock().now) { done, _, _ in done < count }
        }
        let wall = WallClock()
        let started = wall.now()
        var virtualNow = Instant(nanoseconds: 1_000_000_000)
        var result = try run(clientAddresses: clientAddresses, tcp: tcp, clock: {
            virtualNow = virtualNow + virtualStep
            return virtualNow
        }) { done, _, _ in done < count }
        result.seconds = WallClock.seconds(from: started, to: wall.now())
        return result
    }

    static func run(
        clientAddresses: Int, tcp: TCPConfiguration, clock: () -> Instant,
        keepGoing: (_ done: Int, _ now: Instant, _ start: Instant) -> Bool
    ) throws(TCPError) -> Result {
        let pair = BenchmarkPair(mtu: 1500, clientAddressCount: clientAddresses, tcp: tcp)
        let port: UInt16 = 5002
        let listener = try pair.server.listen(on: port, backlog: 1024)
        let remote = Endpoint(pair.serverAddress, port)
        let portsPerAddress = 16384
        let start = clock()
        var now = start
        var done = 0
        while keepGoing(done, now, start) {
            let local = pair.clientAddresses[(done / portsPerAddress) % pair.clientAddresses.count]
            let id = try pair.client.connect(to: remote, from: local, now: now)
            var clientClosed = false
            var failure: TCPError?
            while !clientClosed {
                pair.settle(now: now, client: {
                    // The client: read to the end of the stream, then close. A refused or reset
                    // connection makes `read` throw: the cycle failed, and is not counted.
                    guard !clientClosed, failure == nil else { return }
                    do throws(TCPError) {
                        if case .endOfStream = try pair.client.read(id, now: now) {
                            try pair.client.close(id, now: now)
                            clientClosed = true
                        }
                    } catch {
                        failure = error
                    }
                }, server: {
                    // The server: accept and close at once — the socket's close(), so `release`: the
                    // server is done with the connection, and its TIME-WAIT is kept as a compact record.
                    while let accepted = pair.server.accept(listener) {
                        pair.server.release(accepted, now: now)
                    }
                })
                if let failure { throw failure }
                if !clientClosed { now = clock() }
            }
            // `settle` ran until nothing more happened, so the close is complete on both sides.
            // Events are not used here; drop them so their queue does not grow.
            while pair.client.nextEvent() != nil {}
            while pair.server.nextEvent() != nil {}
            done += 1
            now = clock()
        }
        pair.settle(now: now)
        return Result(
            connections: done, seconds: WallClock.seconds(from: start, to: now),
            serverConnectionsLeft: pair.server.connectionCount + pair.server.timeWaitCount,
            serverTimeWaitOverflows: pair.server.counters.timeWaitOverflows,
            serverTimeWaitRecycled: pair.server.counters.timeWaitRecycledByTimestamp
                + pair.server.counters.timeWaitRecycledBySequence,
            serverTimeWaitRejected: pair.server.counters.timeWaitSYNsRejected,
            retransmissions: pair.client.counters.segmentsRetransmitted + pair.server.counters.segmentsRetransmitted,
            segmentsSent: pair.client.counters.segmentsSent + pair.server.counters.segmentsSent)
    }
}
