import Foundation
import TCPIP

/// Writes a time–sequence graph (`--plot FILE.svg`).
enum PlotFile {
    static func write(_ plot: TimeSequencePlot, to path: String) throws {
        try Data(plot.svg().utf8).write(to: URL(fileURLWithPath: path))
    }
}
