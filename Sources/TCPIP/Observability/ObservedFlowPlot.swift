import NIOCore

/// Time–sequence graphs of the TCP flows an observer in the path sees — a router forwarding them,
/// as tcptrace draws one from a capture — of which it draws the flow that carried the most payload
/// (or the one it was told to follow): what `tcpip route --plot` draws.
///
/// An observer has no connection of its own: the first panel comes from the segments and the
/// returning ACKs, SACK blocks and windows it sees, and the second shows the bytes in flight as it
/// sees them (the highest sequence number seen minus the highest acknowledgment seen). The sender's
/// cwnd and ssthresh are not on the wire, so they are left out (the legend says so).
///
/// Memory is bounded: at most `maximumFlows` flows are followed at once (a new one displaces the
/// one that has carried the least), each with at most `maximumEventsPerFlow` events.
public struct ObservedFlowPlot: Sendable {
    /// Two endpoints, in either order: both directions of one flow.
    struct Pair: Hashable, Sendable {
        var low: Endpoint
        var high: Endpoint

        init(_ a: Endpoint, _ b: Endpoint) {
            // Any fixed order does: the lower port first, then the address text.
            if (a.port, a.address.description) <= (b.port, b.address.description) {
                (low, high) = (a, b)
            } else {
                (low, high) = (b, a)
            }
        }
    }

    struct Flow: Sendable {
        var plot: TimeSequencePlot
        var payloadBytes: Int64 = 0
    }

    /// Flows followed at once.
    public let maximumFlows: Int
    /// Segments kept of each flow; the rest are counted (the plot says so).
    public let maximumEventsPerFlow: Int
    /// The title of the drawn plot.
    public var title: String
    private let only: Pair?
    private var flows: [Pair: Flow] = [:]

    /// An observer of every TCP flow it is shown, or of the one between `a` and `b` when given.
    ///
    /// - Parameters:
    ///   - title: the plot's title.
    ///   - flow: the two endpoints of the flow to draw, in either order; nil for the one that
    ///     carried the most payload.
    ///   - maximumFlows: flows followed at once.
    ///   - maximumEventsPerFlow: segments kept of each.
    public init(title: String, flow: (Endpoint, Endpoint)? = nil, maximumFlows: Int = 8, maximumEventsPerFlow: Int = 100_000) {
        self.title = title
        self.only = flow.map { Pair($0.0, $0.1) }
        self.maximumFlows = max(1, maximumFlows)
        self.maximumEventsPerFlow = maximumEventsPerFlow
    }

    /// Records `datagram` (one IP datagram seen at `now`, in either direction); anything but a TCP
    /// segment, or malformed, is ignored.
    ///
    /// - Parameters:
    ///   - datagram: the datagram as it crossed the observer.
    ///   - now: when it did.
    public mutating func record(_ datagram: ByteBuffer, at now: Instant) {
        guard let segment = try? CapturedSegment.parse(datagram) else { return }
        record(segment, at: now)
    }

    /// Records one captured segment seen at `now`, in either direction.
    ///
    /// - Parameters:
    ///   - segment: the segment, with the endpoints it went between.
    ///   - now: when it crossed the observer.
    public mutating func record(_ segment: CapturedSegment, at now: Instant) {
        let pair = Pair(segment.source, segment.destination)
        if let only, pair != only { return }
        if flows[pair] == nil {
            if flows.count >= maximumFlows, let least = flows.min(by: { $0.value.payloadBytes < $1.value.payloadBytes })?.key {
                flows[least] = nil
            }
            var plot = TimeSequencePlot(title: title, maximumEvents: maximumEventsPerFlow)
            plot.observed = true
            flows[pair] = Flow(plot: plot)
        }
        flows[pair]!.plot.record(segment, at: now)
        flows[pair]!.payloadBytes += Int64(segment.payloadLength)
    }

    /// The graph of the flow that carried the most payload (or the chosen one); nil before any
    /// TCP segment was seen.
    public var plot: TimeSequencePlot? {
        guard var plot = flows.values.max(by: { $0.payloadBytes < $1.payloadBytes })?.plot else { return nil }
        plot.title = title
        return plot
    }
}
