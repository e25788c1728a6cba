#if os(Linux)
import ArgumentParser
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import TCPIPNIO

/// A running stack as a service: it runs until its runtime stops. On graceful shutdown (SIGINT or
/// SIGTERM) the listeners close, open connections get until `shutdownTimeout` to finish, and the
/// ones still open then are reset (`StackRuntime.shutdownGracefully`).
struct RuntimeService: Service, CustomStringConvertible {
    let runtime: StackRuntime
    let shutdownTimeout: TimeAmount
    let logger: Logger
    var description: String { "tcpip" }

    func run() async throws {
        let runtime = self.runtime
        let logger = self.logger
        let deadline = shutdownTimeout
        let shutdown = NIOLockedValueBox<EventLoopFuture<StackRuntime.ShutdownOutcome>?>(nil)
        try await withGracefulShutdownHandler {
            try await runtime.closeFuture.get()
        } onGracefulShutdown: {
            logger.info("stopping: no new connections; open ones get \(deadline.nanoseconds / 1_000_000) ms to finish")
            shutdown.withLockedValue { $0 = runtime.shutdownGracefully(deadline: .now() + deadline) }
        }
        guard let outcome = try await shutdown.withLockedValue({ $0 })?.get() else { return }
        if outcome.reset > 0 {
            logger.warning("stopped; \(outcome.reset) connection(s) reset at the shutdown deadline, \(outcome.finished) finished")
        } else {
            logger.info("stopped; \(outcome.finished) connection(s) finished")
        }
    }
}

/// How a service command stops: `--shutdown-timeout`.
struct ShutdownOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Seconds that open connections get to finish after SIGINT or SIGTERM before they are reset.",
        discussion: "Listeners close at once; the exit status is 0 after a stop on a signal, 1 when the device failed."))
    var shutdownTimeout: Double = 10

    func validate() throws {
        try OptionChecks.seconds(
            shutdownTimeout, 0...3600, option: "shutdown-timeout", because: "what open connections get to finish, up to an hour")
    }

    var timeout: TimeAmount { .nanoseconds(Int64(shutdownTimeout * 1e9)) }
}

extension RunningStack {
    /// Runs the stack as a service until SIGINT or SIGTERM (returns after a graceful stop, exit
    /// status 0) or its device failing (exit status 1); then flushes the capture and draws the plot.
    func runUntilSignalled(shutdownTimeout: TimeAmount) throws {
        let service = RuntimeService(runtime: runtime, shutdownTimeout: shutdownTimeout, logger: logger)
        defer { finish() }
        try SignalledServices.run(service, logger: logger)
    }
}
#endif
