#if os(Linux)
import ArgumentParser
import NIOCore
import TCPIPNIO

/// `tcpip sink`: the TUN sink of the peers kit — listen, discard, close at the end of the stream.
struct Sink: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Discard everything sent to a port on a TUN device (the peers kit's sink protocol).",
        discussion: """
            Listens on --port, prints READY, reads and drops every byte, and closes each connection \
            when its peer has finished sending. Runs until interrupted.
            """)

    @OptionGroup var device: TUNOptions
    @Option(help: "Port to listen on.")
    var port: UInt16 = 5001
    @OptionGroup var shutdown: ShutdownOptions
    @OptionGroup var metrics: MetricsOptions

    func run() throws {
        let running = try device.start()
        _ = try metrics.start(for: running.runtime, logger: running.logger)
        _ = try DiscardHandler.bind(runtime: running.runtime, port: port, readSize: nil, interval: nil).wait()
        announce("READY")
        try running.runUntilSignalled(shutdownTimeout: shutdown.timeout)
    }
}
#endif
