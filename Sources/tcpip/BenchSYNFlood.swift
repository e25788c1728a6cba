import ArgumentParser
import TCPIP

/// `tcpip bench synflood`: SYNs per second one listener with SYN cookies answers on one thread
/// (SYN in, SYN-ACK out, in memory), then cookie validations per second (the ACKs completing them).
struct BenchSYNFlood: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synflood",
        abstract: "SYN in, SYN-ACK out with SYN cookies: SYNs per second on one thread; then cookie validations per second.")

    @Option(help: "How long each phase (SYNs, then ACKs) runs, in seconds.")
    var seconds: Double = 5

    func validate() throws {
        try OptionChecks.seconds(seconds, 0.001...86_400, option: "seconds", because: "how long each phase runs, up to a day")
    }

    func run() throws {
        let result = SYNCookieBenchmark.run(seconds: seconds)
        print("metric=tcpip_synflood value=\(benchFormatted(result.synsPerSecond, decimals: 0)) unit=syn/s threads=1 "
            + "syns=\(result.syns) seconds=\(benchFormatted(result.synSeconds)) cookies=always "
            + "half_open=\(result.halfOpen) half_open_entry_bytes=\(Stack.halfOpenEntryBytes)")
        print("metric=tcpip_syncookie_validation value=\(benchFormatted(result.validationsPerSecond, decimals: 0)) "
            + "unit=ack/s threads=1 acks=\(result.validations) seconds=\(benchFormatted(result.validationSeconds)) "
            + "validated=\(result.validated)")
    }
}
