import ArgumentParser
import TCPIP
import TCPIPLinks

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
        subcommands: [BenchBulk.self, BenchConnectionRate.self, BenchMemory.self, BenchSYNFlood.self])
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
        guard ip == 4 || ip == 6 else { throw ValidationError("--ip must be 4 or 6") }
        guard mtu >= (ip == 6 ? 1280 : 576), mtu <= 65535 else { throw ValidationError("--mtu out of range") }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
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

struct BenchConnectionRate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connrate",
        abstract: "Connect, accept, server closes first, client reads the end and closes: cycles per second.")

    @Option(help: "How long to run, in seconds.")
    var seconds: Double = 5

    func run() throws {
        let result = try ConnectionRateBenchmark.run(seconds: seconds)
        print("metric=tcpip_mem_connrate value=\(benchFormatted(result.connectionsPerSecond, decimals: 0)) unit=conn/s "
            + "threads=1 count=\(result.connections) seconds=\(benchFormatted(result.seconds)) "
            + "segments=\(result.segmentsSent) server_time_wait=\(result.serverConnectionsLeft) "
            + "server_time_wait_overflows=\(result.serverTimeWaitOverflows)")
    }
}

struct BenchMemory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Bytes per idle established connection (stack accounting and resident memory), and the time to open them.")

    @Option(help: "Connections to open (each has a client and a server end; figures are per end).")
    var connections: Int = 100_000

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be >= 1") }
    }

    func run() throws {
        let result = try MemoryBenchmark.run(connections: connections)
        print("metric=tcpip_mem_bytes_per_connection value=\(benchFormatted(result.accountedPerConnection, decimals: 0)) "
            + "unit=bytes threads=1 source=stack connections=\(connections) slot=\(result.client.bytesPerSlot) "
            + "slots=\(result.client.connectionSlots + result.server.connectionSlots) "
            + "tables=\(result.client.lookupTables + result.server.lookupTables) "
            + "timers=\(result.client.timers + result.server.timers) "
            + "buffers=\(result.client.buffers + result.server.buffers)")
        if let resident = result.residentPerConnection {
            print("metric=tcpip_mem_rss_per_connection value=\(benchFormatted(resident, decimals: 0)) unit=bytes threads=1 "
                + "source=rss connections=\(connections) rss_growth=\(result.residentGrowth ?? 0) "
                + "peak_rss=\(MemoryBenchmark.peakResidentBytes() ?? 0)")
        }
        print("metric=tcpip_mem_open_rate value=\(benchFormatted(Double(connections) / max(result.openSeconds, 1e-9), decimals: 0)) "
            + "unit=conn/s threads=1 connections=\(connections) seconds=\(benchFormatted(result.openSeconds))")
    }
}
