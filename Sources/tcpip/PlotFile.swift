import Foundation
import NIOCore
import TCPIP

/// Writes a time–sequence graph (`--plot FILE.svg`).
enum PlotFile {
    static func write(_ plot: TimeSequencePlot, to path: String) throws {
        try Data(plot.svg().utf8).write(to: URL(fileURLWithPath: path))
    }
}

/// A plot of the first TCP connection that crosses a device, with the congestion state of our side
/// of it sampled at each of its datagrams.
struct ConnectionPlot {
    var plot: TimeSequencePlot
    private var tuple: FourTuple?
    private var connection: ConnectionID?

    init(title: String) {
        plot = TimeSequencePlot(title: title)
    }

    mutating func record(_ datagram: ByteBuffer, at now: Instant, stack: Stack) {
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
