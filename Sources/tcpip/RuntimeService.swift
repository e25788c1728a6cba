#if os(Linux)
import ArgumentParser
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import TCPIPNIO

/// A running stack as a service — or several, one per queue of a multi-queue device (`gateway
/// --queues N`): it runs until every runtime stops (one failing stops the others). On graceful
/// shutdown (SIGINT or SIGTERM) every runtime drains at once under the one deadline: listeners
/// close (in intercept mode connection requests are refused), open connections get until
/// `shutdownTimeout` to finish, and the ones still open then are reset
/// (`StackRuntime.shutdownGracefully`).
struct RuntimeService: Service, CustomStringConvertible {
    let runtimes: [StackRuntime]
    let shutdownTimeout: TimeAmount
    let logger: Logger
    var description: String { "tcpip" }

    init(runtimes: [StackRuntime], shutdownTimeout: TimeAmount, logger: Logger) {
        precondition(!runtimes.isEmpty, "a service of no runtime")
        self.runtimes = runtimes
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
    }

    func run() async throws {
        let runtimes = self.runtimes
        let logger = self.logger
        let timeout = shutdownTimeout
        let shutdown = NIOLockedValueBox<[EventLoopFuture<StackRuntime.ShutdownOutcome>]>([])
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for runtime in runtimes { group.addTask { try await runtime.closeFuture.get() } }
                do {
                    try await group.waitForAll()
                } catch {
                    // A queue's device failed: the others stop too, and the exit status says so.
                    for runtime in runtimes { runtime.stop(promise: nil) }
                    throw error
                }
            }
        } onGracefulShutdown: {
            logger.info("stopping: no new connections; open ones get \(timeout.nanoseconds / 1_000_000) ms to finish")
            // One deadline for all queues, each draining on its own loop in parallel.
            let deadline = NIODeadline.now() + timeout
            shutdown.withLockedValue { $0 = runtimes.map { $0.shutdownGracefully(deadline: deadline) } }
        }
        let drains = shutdown.withLockedValue { $0 }
        guard !drains.isEmpty else { return }
        var finished = 0
        var reset = 0
        for (queue, drain) in drains.enumerated() {
            let outcome = try await drain.get()
            if drains.count > 1 {
                logger.info("queue \(queue) stopped; \(outcome.finished) connection(s) finished, \(outcome.reset) reset")
            }
            finished += outcome.finished
            reset += outcome.reset
        }
        if reset > 0 {
            logger.warning("stopped; \(reset) connection(s) reset at the shutdown deadline, \(finished) finished")
        } else {
            logger.info("stopped; \(finished) connection(s) finished")
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
    /// Runs the stack (and the other queues' stacks) as a service until SIGINT or SIGTERM (returns
    /// after a graceful stop, exit status 0) or a device failing (exit status 1); then flushes the
    /// capture and draws the plot.
    func runUntilSignalled(shutdownTimeout: TimeAmount) throws {
        let service = RuntimeService(runtimes: [runtime] + queues, shutdownTimeout: shutdownTimeout, logger: logger)
        defer { finish() }
        try SignalledServices.run(service, logger: logger)
    }
}
#endif
