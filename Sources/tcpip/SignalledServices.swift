#if os(Linux)
import ArgumentParser
import Dispatch
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// How every long-running command runs: its service in a `ServiceGroup` that shuts down gracefully
/// on SIGINT or SIGTERM, beside the command's own synchronous code (the commands set themselves up
/// by waiting on futures; `route` forwards on the calling thread).
///
/// `serve`, `sink` and `gateway` reach it through `RunningStack.runUntilSignalled`; `route` calls
/// it with its forwarding loop as `body`.
enum SignalledServices {
    /// Runs `service` until it returns or a signal's graceful shutdown ends it, while `body` runs on
    /// the calling thread; returns when both are over. Throws `ExitCode.failure` when the service
    /// failed (the exit status says so), after logging why.
    static func run(_ service: some Service, logger: Logger, beside body: () -> Void = {}) throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        let failure = NIOLockedValueBox<(any Error)?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await group.run()
            } catch {
                failure.withLockedValue { $0 = error }
            }
            done.signal()
        }
        body()
        done.wait()
        if let error = failure.withLockedValue({ $0 }) {
            logger.error("stopped on an error: \(error)")
            throw ExitCode.failure
        }
    }
}
#endif
