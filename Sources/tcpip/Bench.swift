import ArgumentParser
import Foundation
import TCPIP
import TCPIPLinks
import TCPIPSimulation

/// `tcpip bench`: figures comparable with `../shared/peers` (same definitions), measured on the wall clock.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the stack on the wall clock: two stacks in one process over the in-memory link.",
        discussion: """
            The definitions are those of the peers' kit (../shared/peers/README.md), so the figures compare \
            with gVisor's pipe test and Linux loopback run in the same pass. The in-memory link declares \
            checksum offload, like Linux loopback. Each figure prints one line:
              metric=<name> value=<number> unit=<unit> threads=1 [key=value ...]
            """,
        subcommands: [BenchBulk.self, BenchConnectionRate.self, BenchMemory.self, BenchSYNFlood.self, BenchForward.self])
}

/// A figure with `decimals` decimals (three unless told), as the peers' scripts print them.
func benchFormatted(_ value: Double, decimals: Int = 3) -> String {
    TextFormat.fixed(value, digits: decimals)
}

struct BenchBulk: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bulk",
        abstract: "One stream: 128 KiB writes for --seconds, then shutdown; goodput into the receiving application.")

    @Option(help: "Link MTU (the peers use 1500 and 65000).")
    var mtu: Int = 1500
    @Option(help: "How long the sender writes, in seconds.")
    var seconds: Double = 5
    @Option(help: "IP version: 4 or 6.")
    var ip: Int = 4
    @Option(help: "Write exactly this many bytes instead of writing for --seconds (for profilers: a fixed amount of work).")
    var bytes: Int?

    func validate() throws {
        try OptionChecks.ipVersion(ip)
        try OptionChecks.mtu(mtu, ip: ip)
        try OptionChecks.seconds(seconds, 0.001...86_400, option: "seconds", because: "how long the sender writes, up to a day")
        if let bytes { try OptionChecks.positive(bytes, option: "bytes", what: "the bytes to write") }
    }

    func run() throws {
        let result = if let bytes {
            try BulkBenchmark.run(mtu: mtu, bytes: bytes, ipVersion: ip)
        } else {
            try BulkBenchmark.run(mtu: mtu, seconds: seconds, ipVersion: ip)
        }
        let name = ip == 6 ? "tcpip_mem_ipv6_mtu\(mtu)" : "tcpip_mem_mtu\(mtu)"
        print("metric=\(name) value=\(benchFormatted(result.gigabitsPerSecond)) unit=Gbit/s threads=1 "
            + "bytes=\(result.bytes) seconds=\(benchFormatted(result.seconds)) segments=\(result.segmentsSent) "
            + "retransmits=\(result.retransmits)")
    }
}

struct BenchForward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "A Router forwarding UDP datagrams of --size from one link to another in memory: packets/s and Gbit/s.")

    @Option(help: "Datagram size in octets, IP header included.")
    var size: Int = 1500
    @Option(help: "How long to forward, in seconds.")
    var seconds: Double = 3
    @Option(help: "IP version: 4 or 6.")
    var ip: Int = 4
    @Option(help: "Routes in the table (2 are used; the rest are elsewhere in the range).")
    var routes: Int = 2
    @Option(help: "Forward exactly this many datagrams instead of for --seconds (for malloc counting: a fixed amount of work).")
    var packets: Int?

    func validate() throws {
        try OptionChecks.ipVersion(ip)
        try OptionChecks.within(
            size, (ip == 6 ? 48 : 28)...65_535, option: "size",
            because: "an IP header and a UDP header at least, at most what an IP length field can describe")
        try OptionChecks.seconds(seconds, 0.001...86_400, option: "seconds", because: "how long to forward, up to a day")
        try OptionChecks.within(routes, 2...1_000_000, option: "routes", because: "the two the datagrams use, and the rest of the table")
        if let packets { try OptionChecks.positive(packets, option: "packets", what: "the datagrams to forward") }
    }

    func run() throws {
        let result = ForwardBenchmark.run(size: size, ipVersion: ip, seconds: seconds, packets: packets, routes: routes)
        print("metric=tcpip_forward_ipv\(ip)_size\(size) value=\(benchFormatted(result.packetsPerSecond / 1e6)) unit=Mpps threads=1 "
            + "gbit_per_s=\(benchFormatted(result.gigabitsPerSecond)) packets=\(result.packets) copies=\(result.copies) routes=\(routes) "
            + "seconds=\(benchFormatted(result.seconds))")
    }
}

struct BenchConnectionRate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connrate",
        abstract: "Connect, accept, server closes first, client reads the end and closes: cycles per second.",
        discussion: """
            With --threads 1 (the default) one thread drives both stacks through one cycle at a time: the \
            peers' definition. With --threads N, N pairs of stacks run the same cycle side by side, one \
            pair per thread, sharing nothing; the figure is all their cycles over the longest run, printed \
            as tcpip_mem_connrate_threadsN. gVisor's figure runs with GOMAXPROCS=2 and Linux's client and \
            server are two processes, so --threads 2 uses the cores they may use, in a different shape.
            """)

    @Option(help: "How long to run, in seconds.")
    var seconds: Double = 5
    @Option(help: "Pairs of stacks, one per thread, each running the cycle (1: the peers' definition).")
    var threads: Int = 1
    @Option(help: """
        Addresses the client connects from, 16,384 connections from each before the next (1: every \
        4-tuple comes back while the server still holds it in TIME-WAIT, and is reopened by RFC 6191).
        """)
    var clientAddresses: Int = 256

    func validate() throws {
        try OptionChecks.seconds(seconds, 0.001...86_400, option: "seconds", because: "how long to run, up to a day")
        try OptionChecks.within(threads, 1...64, option: "threads", because: "pairs of stacks, one per thread")
        try OptionChecks.within(
            clientAddresses, 1...256, option: "client-addresses", because: "the addresses the client connects from, in turn")
    }

    func run() throws {
        let results = try Self.runPairs(threads: threads, seconds: seconds, clientAddresses: clientAddresses)
        let connections = results.reduce(0) { $0 + $1.connections }
        let longest = results.map(\.seconds).max() ?? 0
        let name = threads == 1 ? "tcpip_mem_connrate" : "tcpip_mem_connrate_threads\(threads)"
        print("metric=\(name) value=\(benchFormatted(longest > 0 ? Double(connections) / longest : 0, decimals: 0)) "
            + "unit=conn/s threads=\(threads) count=\(connections) seconds=\(benchFormatted(longest)) "
            + "segments=\(results.reduce(0) { $0 + $1.segmentsSent }) "
            + "server_time_wait=\(results.reduce(0) { $0 + $1.serverConnectionsLeft }) "
            + "server_time_wait_overflows=\(results.reduce(0) { $0 + $1.serverTimeWaitOverflows }) "
            + "client_addresses=\(clientAddresses) "
            + "server_time_wait_recycled=\(results.reduce(0) { $0 + $1.serverTimeWaitRecycled }) "
            + "server_time_wait_rejected=\(results.reduce(0) { $0 + $1.serverTimeWaitRejected }) "
            + "retransmits=\(results.reduce(0) { $0 + $1.retransmissions })"
            + (threads == 1 ? "" : " per_thread=" + results.map { benchFormatted($0.connectionsPerSecond, decimals: 0) }.joined(separator: ",")))
    }

    /// Runs `threads` independent benchmarks at once, each on a thread of its own.
    static func runPairs(threads: Int, seconds: Double, clientAddresses: Int = 256) throws -> [ConnectionRateBenchmark.Result] {
        if threads == 1 { return [try ConnectionRateBenchmark.run(seconds: seconds, clientAddresses: clientAddresses)] }
        let outcomes = PairOutcomes(count: threads)
        DispatchQueue.concurrentPerform(iterations: threads) { index in
            outcomes.set(index, Result { () throws(TCPError) in
                try ConnectionRateBenchmark.run(seconds: seconds, clientAddresses: clientAddresses)
            })
        }
        return try outcomes.all().map { try $0.get() }
    }

    /// What each thread measured, written once per slot under a lock.
    private final class PairOutcomes: @unchecked Sendable {
        private let lock = NSLock()
        private var outcomes: [Result<ConnectionRateBenchmark.Result, TCPError>?]

        init(count: Int) { outcomes = Array(repeating: nil, count: count) }

        func set(_ index: Int, _ outcome: Result<ConnectionRateBenchmark.Result, TCPError>) {
            lock.withLock { outcomes[index] = outcome }
        }

        func all() -> [Result<ConnectionRateBenchmark.Result, TCPError>] {
            lock.withLock { outcomes.map { $0! } }
        }
    }
}

struct BenchMemory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Bytes per idle established connection (stack accounting and resident memory), and the time to open them.")

    @Option(help: "Connections to open (each has a client and a server end; figures are per end).")
    var connections: Int = 100_000

    func validate() throws {
        try OptionChecks.within(
            connections, 1...(16_384 * 65_536), option: "connections", because: "16,384 per client address, up to 65,536 addresses")
    }

    func run() throws {
        let result = try MemoryBenchmark.run(connections: connections, residentBytes: ProcessMemory.residentBytes)
        print("metric=tcpip_mem_bytes_per_connection value=\(benchFormatted(result.accountedPerConnection, decimals: 0)) "
            + "unit=bytes threads=1 source=stack connections=\(connections) slot=\(result.client.bytesPerSlot) "
            + "slots=\(result.client.connectionSlots + result.server.connectionSlots) "
            + "tables=\(result.client.lookupTables + result.server.lookupTables) "
            + "timers=\(result.client.timers + result.server.timers) "
            + "buffers=\(result.client.buffers + result.server.buffers)")
        if let resident = result.residentPerConnection {
            print("metric=tcpip_mem_rss_per_connection value=\(benchFormatted(resident, decimals: 0)) unit=bytes threads=1 "
                + "source=rss connections=\(connections) rss_growth=\(result.residentGrowth ?? 0) "
                + "peak_rss=\(ProcessMemory.peakResidentBytes() ?? 0)")
        }
        print("metric=tcpip_mem_open_rate value=\(benchFormatted(Double(connections) / max(result.openSeconds, 1e-9), decimals: 0)) "
            + "unit=conn/s threads=1 connections=\(connections) seconds=\(benchFormatted(result.openSeconds))")
    }
}
