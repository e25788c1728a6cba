import NIOCore

/// A time–sequence graph of the first TCP connection seen crossing a link, with the congestion state
/// of one stack's end of it sampled at each of its datagrams: what `--plot` draws on a TUN device and
/// in `tcpip simulate`.
///
/// Feed it every datagram the link carries, in either direction, with the time it crossed; datagrams
/// of other connections are ignored.
public struct ConnectionPlot: Sendable {
    /// The graph drawn so far.
    public var plot: TimeSequencePlot
    private var tuple: FourTuple?
    private var connection: ConnectionID?

    /// An empty plot titled `title`.
    public init(title: String) {
        plot = TimeSequencePlot(title: title)
    }

    /// Records `datagram` if it belongs to the plotted connection (the first TCP segment seen picks
    /// it), and samples that connection's window and congestion state in `stack` at `now`.
    ///
    /// - Parameters:
    ///   - datagram: one IP datagram, as it crossed the link.
    ///   - now: when it crossed.
    ///   - stack: the stack whose end of the connection the second panel shows.
    public mutating func record(_ datagram: ByteBuffer, at now: Instant, stack: Stack) {
        guard let segment = try? CapturedSegment.parse(datagram) else { return }
        if tuple == nil { tuple = FourTuple(local: segment.source, remote: segment.destination) }
        guard let tuple,
            (segment.source == tuple.local && segment.destination == tuple.remote)
                || (segment.source == tuple.remote && segment.destination == tuple.local)
        else { return }
        plot.record(segment, at: now)
        if connection == nil {
            connection = stack.allConnections.first { id in
                guard let status = stack.status(id) else { return false }
                return (status.local == tuple.local && status.remote == tuple.remote)
                    || (status.local == tuple.remote && status.remote == tuple.local)
            }
        }
        if let connection, let status = stack.status(connection) { plot.sample(status, at: now) }
    }
}
