import CoreMetrics
import NIOCore
import TCPIP

extension StackRuntime {
    /// Exports the stack's counters (`StackCounters`) through swift-metrics every `interval`, and
    /// once more when the runtime stops: each counter as a `Counter` named `<prefix>_<name>`
    /// (`tcpip_segments_sent`, …, the names of `StackCounters.all`), incremented by what it
    /// counted since the last export; the open connections as the gauge `<prefix>_connections`.
    ///
    /// The stack only counts (it stays free of swift-metrics); this reads the counters on the
    /// loop, off the packet path. `factory` defaults to the one bootstrapped in `MetricsSystem`.
    /// Any thread; returns the task, which `cancel()` stops.
    @discardableResult
    public func exportMetrics(
        every interval: TimeAmount, prefix: String = "tcpip", factory: (any MetricsFactory)? = nil
    ) -> RepeatedTask {
        let exporter = NIOLoopBoundBox.makeBoxSendingValue(
            CounterExporter(prefix: prefix, factory: factory ?? MetricsSystem.factory), eventLoop: eventLoop)
        let core = self.core
        closeFuture.whenComplete { _ in exporter.value.export(core.value) }
        return eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            exporter.value.export(core.value)
        }
    }
}

/// The metrics of one runtime and the counter values last exported. Only on the runtime's loop.
final class CounterExporter {
    private let prefix: String
    private let factory: any MetricsFactory
    private var counters: [String: Counter] = [:]
    private var exported: [String: UInt64] = [:]
    private let connections: Gauge

    init(prefix: String, factory: any MetricsFactory) {
        self.prefix = prefix
        self.factory = factory
        self.connections = Gauge(label: "\(prefix)_connections", factory: factory)
    }

    func export(_ core: RuntimeCore) {
        for (name, value) in core.stack.counters.all {
            let previous = exported[name] ?? 0
            guard value > previous else { continue }
            exported[name] = value
            let counter = counters[name] ?? Counter(label: "\(prefix)_\(name)", factory: factory)
            counters[name] = counter
            counter.increment(by: Int64(clamping: value - previous))
        }
        connections.record(core.channels.count)
    }
}
