import NIOCore
import TCPIP
import TCPIPWire

/// Memory per idle established connection: `count` connections opened between two stacks in one process
/// and left idle with empty queues, measured two ways — the stacks' own accounting (`Stack.memory`) and
/// the growth of the process's resident set — and the time it took to open them (threads = 1).
///
/// Every connection exists twice (a client end and a server end); figures are per end.
public enum MemoryBenchmark {
    /// What one run measured.
    public struct Result: Sendable {
        /// Connections opened (each has an end in both stacks).
        public var connections: Int
        /// Wall-clock seconds it took to open them.
        public var openSeconds: Double
        /// The client stack's own accounting with the connections idle.
        public var client: StackMemory
        /// The server stack's own accounting with the connections idle.
        public var server: StackMemory
        /// Resident set growth over the run, or nil where the resident set cannot be read.
        public var residentGrowth: Int?

        /// Stack-accounted bytes per connection end.
        public var accountedPerConnection: Double {
            Double(client.total + server.total) / Double(2 * max(connections, 1))
        }
        /// Resident bytes per connection end.
        public var residentPerConnection: Double? {
            residentGrowth.map { Double($0) / Double(2 * max(connections, 1)) }
        }
    }

    /// - Parameters:
    ///   - count: the connections to open and leave idle.
    ///   - tcp: the TCP configuration of both stacks.
    ///   - clock: the wall clock that times the opening.
    ///   - residentBytes: reads the process's resident set size (`ProcessMemory.residentBytes` of
    ///     `TCPIPLinks` on Linux); the default, which reads nothing, leaves `residentGrowth` nil. A
    ///     parameter, so that this module does no I/O of its own.
    public static func run(
        connections count: Int, tcp: TCPConfiguration = TCPConfiguration(), clock: WallClock = WallClock(),
        residentBytes: () -> Int? = { nil }
    ) throws(TCPError) -> Result {
        let residentBefore = residentBytes()
        let addresses = max(1, (count + 16383) / 16384)
        let pair = BenchmarkPair(mtu: 1500, clientAddressCount: addresses, tcp: tcp)
        let port: UInt16 = 5003
        let listener = try pair.server.listen(on: port, backlog: 1024)
        let remote = Endpoint(pair.serverAddress, port)
        var accepted: [ConnectionID] = []
        var opened: [ConnectionID] = []
        accepted.reserveCapacity(count)
        opened.reserveCapacity(count)
        let start = clock.now()
        var now = start
        let batch = 512
        while opened.count < count {
            for _ in 0..<min(batch, count - opened.count) {
                let local = pair.clientAddresses[opened.count / 16384]
                opened.append(try pair.client.connect(to: remote, from: local, now: now))
            }
            pair.settle(now: now)
            while let id = pair.server.accept(listener) { accepted.append(id) }
            now = clock.now()
        }
        while accepted.count < count {
            pair.settle(now: now)
            while let id = pair.server.accept(listener) { accepted.append(id) }
            now = clock.now()
            guard WallClock.seconds(from: start, to: now) < 600 else { throw .timedOut }
        }
        let openSeconds = WallClock.seconds(from: start, to: now)
        while pair.client.nextEvent() != nil {}
        while pair.server.nextEvent() != nil {}
        let residentAfter = residentBytes()
        let growth: Int? = if let residentBefore, let residentAfter { residentAfter - residentBefore } else { nil }
        let result = Result(
            connections: count, openSeconds: openSeconds, client: pair.client.memory, server: pair.server.memory,
            residentGrowth: growth)
        withExtendedLifetime((pair, opened, accepted)) {}
        return result
    }
}
