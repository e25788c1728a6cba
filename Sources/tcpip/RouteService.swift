#if os(Linux)
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization
import TCPIP
import TCPIPNIO

/// `tcpip route` as a service: the forwarding loop runs on the command's thread
/// (`SignalledServices.run(_:logger:beside:)`); this service waits for it to end, and on graceful
/// shutdown (SIGINT, SIGTERM) asks it to stop: it reads no more datagrams, lets the ones an
/// impairment or an `impair` rule still holds leave until `shutdownTimeout`, and returns.
final class RouteService: Service, CustomStringConvertible {
    let control: RouteControl
    let shutdownTimeout: TimeAmount
    let logger: Logger
    var description: String { "tcpip route" }

    init(control: RouteControl, shutdownTimeout: TimeAmount, logger: Logger) {
        self.control = control
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
    }

    func run() async throws {
        let control = self.control
        let deadline = shutdownTimeout
        let logger = self.logger
        let outcome = await withGracefulShutdownHandler {
            await control.ended()
        } onGracefulShutdown: {
            logger.info("stopping: no new datagrams; the delayed ones get \(deadline.nanoseconds / 1_000_000) ms to leave")
            control.requestStop(deadline: StackRuntime.now() + deadline)
        }
        switch outcome {
        case .failure(let error): throw error
        case .success(let dropped) where dropped > 0:
            logger.warning("stopped; \(dropped) delayed datagram(s) dropped at the shutdown deadline")
        case .success:
            logger.info("stopped")
        }
    }
}

/// Between the forwarding loop and its service: the stop request (read by the loop each turn) and
/// how the loop ended (awaited by the service). Any thread.
final class RouteControl: Sendable {
    /// How the loop ended: the datagrams still held at the deadline, or the error that ended it.
    typealias Outcome = Result<Int, any Error>

    private let stopDeadline = Atomic<Int64>(.max)
    private let state = NIOLockedValueBox<(outcome: Outcome?, waiter: CheckedContinuation<Outcome, Never>?)>((nil, nil))

    /// The uptime deadline after a stop was asked for; nil while forwarding.
    var stopRequested: Instant? {
        let nanoseconds = stopDeadline.load(ordering: .relaxed)
        return nanoseconds == .max ? nil : Instant(nanoseconds: nanoseconds)
    }

    func requestStop(deadline: Instant) {
        stopDeadline.store(deadline.nanoseconds, ordering: .relaxed)
    }

    /// The loop is over.
    func finish(_ outcome: Outcome) {
        let waiter = state.withLockedValue { state in
            state.outcome = outcome
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: outcome)
    }

    func ended() async -> Outcome {
        await withCheckedContinuation { continuation in
            let done = state.withLockedValue { state -> Outcome? in
                if let outcome = state.outcome { return outcome }
                state.waiter = continuation
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }
}

/// What one link of the router carried: datagrams and bytes read from its device and written to it.
struct LinkCounters: Sendable {
    var packetsReceived: UInt64 = 0
    var bytesReceived: UInt64 = 0
    var packetsSent: UInt64 = 0
    var bytesSent: UInt64 = 0

    var all: [(name: String, value: UInt64)] {
        [("packets_received", packetsReceived), ("bytes_received", bytesReceived),
         ("packets_sent", packetsSent), ("bytes_sent", bytesSent)]
    }
}

extension ForwardingCounters {
    /// Every counter with a stable snake_case name, for the metrics (as `StackCounters.all`).
    var all: [(name: String, value: UInt64)] {
        [
            ("received", received), ("forwarded", forwarded), ("bytes_forwarded", bytesForwarded),
            ("delivered_locally", deliveredLocally), ("sent_locally", sentLocally), ("malformed", malformed),
            ("bad_checksum", badChecksum), ("no_route", noRoute), ("not_forwardable", notForwardable),
            ("time_exceeded", timeExceeded), ("too_big", tooBig), ("fragmented", fragmented), ("filtered", filtered),
            ("icmp_errors_sent", icmpErrorsSent), ("icmp_errors_suppressed", icmpErrorsSuppressed),
            ("icmp_errors_rate_limited", icmpErrorsRateLimited),
        ]
    }
}

/// The router's counters for `--metrics-port`: the loop publishes a snapshot now and then (it owns
/// the router), the endpoint's export turns the snapshot into Prometheus counters:
/// `tcpip_router_<counter>` (`ForwardingCounters`), `tcpip_router_impaired_dropped`,
/// `tcpip_router_link_<packets|bytes>_<received|sent>{link="…"}`, and per rule of the installed
/// ruleset `tcpip_router_rule_<packets|bytes>{table="…",chain="…",rule="N"}` (N counts from 0 in
/// its chain, as listed).
final class RouteMetrics: Sendable {
    struct Snapshot: Sendable {
        var forwarding = ForwardingCounters()
        var impairedDropped: UInt64 = 0
        var links: [(name: String, counters: LinkCounters)] = []
        var rules: FilterRuleset?
    }

    let registry = PrometheusCollectorRegistry()
    private let snapshot = NIOLockedValueBox(Snapshot())
    /// What each counter (by name and labels) had when last exported; only in `export`.
    private let exported = NIOLockedValueBox<[String: UInt64]>([:])

    /// From the forwarding loop.
    func publish(_ snapshot: Snapshot) {
        self.snapshot.withLockedValue { $0 = snapshot }
    }

    /// Brings the registry up to the latest snapshot.
    func export() {
        let snapshot = self.snapshot.withLockedValue { $0 }
        var values: [(name: String, labels: [(String, String)], value: UInt64, help: String)] = []
        for (name, value) in snapshot.forwarding.all {
            values.append(("tcpip_router_\(name)", [], value, "The router's datagrams: \(name.replacingUnderscores)"))
        }
        values.append(("tcpip_router_impaired_dropped", [], snapshot.impairedDropped, "Datagrams a link's --impair lost"))
        for (link, counters) in snapshot.links {
            for (name, value) in counters.all {
                values.append(("tcpip_router_link_\(name)", [("link", link)], value, "Per link: \(name.replacingUnderscores)"))
            }
        }
        for table in snapshot.rules?.tables ?? [] {
            for chain in table.chains {
                for (index, rule) in chain.rules.enumerated() {
                    let labels = [("table", table.name), ("chain", chain.name), ("rule", String(index))]
                    values.append(("tcpip_router_rule_packets", labels, rule.packets, "Datagrams that matched the rule"))
                    values.append(("tcpip_router_rule_bytes", labels, rule.bytes, "Bytes of the datagrams that matched the rule"))
                }
            }
        }
        exported.withLockedValue { exported in
            for (name, labels, value, help) in values {
                let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
                let previous = exported[key]
                // Every counter appears from the first scrape, at 0 when nothing happened yet.
                guard previous == nil || value > previous! else { continue }
                exported[key] = value
                let counter = registry.makeCounter(
                    descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
                if value > (previous ?? 0) { counter.increment(by: Int64(clamping: value - (previous ?? 0))) }
            }
        }
    }
}
extension String {
    fileprivate var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }
}
#endif
