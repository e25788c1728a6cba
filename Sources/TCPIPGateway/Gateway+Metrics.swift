import CoreMetrics
import NIOCore

extension Gateway {
    /// Exports the gateway's figures through swift-metrics every `interval`, as
    /// `StackRuntime.exportMetrics` does the stack's counters (the two together are what
    /// `tcpip gateway --metrics-port` serves):
    ///
    /// - `<prefix>_flows_open{transport}` (gauge) and `<prefix>_flows_opened{transport}`: flows
    ///   relayed now and since the start, `tcp` or `udp`;
    /// - `<prefix>_refusals{reason}`: flows refused by the gateway, `flow_limit` (`maxFlows`) or the
    ///   dial's failure (`refused`, `unreachable`, `timed_out`, `failed`);
    /// - `<prefix>_upstream_dial_failures`: dials upstream that failed, whatever the reason;
    /// - `<prefix>_bytes_from_clients`, `<prefix>_bytes_to_clients`: bytes relayed each way;
    /// - `<prefix>_clients_gone`, `<prefix>_udp_dropped`, `<prefix>_dns_answered`.
    ///
    /// `labels` go on every metric (`queue="1"` for one queue of several). On the gateway's loop;
    /// returns the task, which `cancel()` stops.
    ///
    /// - Parameters:
    ///   - interval: how often the figures are exported.
    ///   - prefix: the first part of every metric's name.
    ///   - labels: labels on every metric.
    ///   - factory: where the metrics go; nil: the process's `MetricsSystem.factory`.
    @discardableResult
    public func exportMetrics(
        every interval: TimeAmount, prefix: String = "tcpip_gateway", labels: [(String, String)] = [],
        factory: (any MetricsFactory)? = nil
    ) -> RepeatedTask {
        loop.preconditionInEventLoop()
        let exporter = NIOLoopBound(
            GatewayMetricsExporter(prefix: prefix, labels: labels, factory: factory ?? MetricsSystem.factory), eventLoop: loop)
        let this = NIOLoopBound(self, eventLoop: loop)
        return loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            exporter.value.export(this.value)
        }
    }
}

/// The gateway's metrics and the values last exported (counters move by what they counted since).
final class GatewayMetricsExporter {
    private struct Key: Hashable {
        let name: String
        let dimension: String?
    }

    private let prefix: String
    private let labels: [(String, String)]
    private let factory: any MetricsFactory
    private var counters: [Key: Counter] = [:]
    private var exported: [Key: UInt64] = [:]
    private let openTCP: Gauge
    private let openUDP: Gauge

    init(prefix: String, labels: [(String, String)], factory: any MetricsFactory) {
        self.prefix = prefix
        self.labels = labels
        self.factory = factory
        openTCP = Gauge(label: "\(prefix)_flows_open", dimensions: labels + [("transport", "tcp")], factory: factory)
        openUDP = Gauge(label: "\(prefix)_flows_open", dimensions: labels + [("transport", "udp")], factory: factory)
    }

    func export(_ gateway: Gateway) {
        let flows = gateway.flows
        count("flows_opened", ("transport", "tcp"), flows.openedTCP)
        count("flows_opened", ("transport", "udp"), flows.openedUDP)
        count("refusals", ("reason", "flow_limit"), UInt64(gateway.refusedAtLimit))
        for (kind, failures) in gateway.upstreamFailuresByKind { count("refusals", ("reason", kind), UInt64(failures)) }
        count("upstream_dial_failures", nil, UInt64(gateway.upstreamFailures))
        count("bytes_from_clients", nil, flows.bytesFromClients)
        count("bytes_to_clients", nil, flows.bytesToClients)
        count("clients_gone", nil, UInt64(gateway.clientsGone))
        count("udp_dropped", nil, UInt64(gateway.udpDropped))
        count("dns_answered", nil, UInt64(gateway.dnsAnswered))
        openTCP.record(flows.activeCount(.tcp))
        openUDP.record(flows.activeCount(.udp))
    }

    private func count(_ name: String, _ dimension: (String, String)?, _ value: UInt64) {
        let key = Key(name: name, dimension: dimension.map { "\($0.0)=\($0.1)" })
        let previous = exported[key]
        // Every counter shows from the first export (a zero tells "nothing refused", not "unknown").
        if let previous, value <= previous { return }
        exported[key] = value
        let counter = counters[key] ?? Counter(label: "\(prefix)_\(name)", dimensions: labels + (dimension.map { [$0] } ?? []), factory: factory)
        counters[key] = counter
        counter.increment(by: Int64(clamping: value - (previous ?? 0)))
    }
}
