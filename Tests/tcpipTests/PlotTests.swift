import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TCPIP
import TCPIPSimulation
import Testing
@testable import tcpip

/// `--plot`: the flow-control demo's time–sequence graph is a well-formed SVG document that shows
/// what the run did — every zero-window episode shaded, every segment drawn, no retransmission.
@Suite struct PlotTests {
    /// Counts elements by their `class` attribute.
    final class ElementCounter: NSObject, XMLParserDelegate {
        var classes: [String: Int] = [:]
        var root: String?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
            qualifiedName: String?, attributes: [String: String] = [:]
        ) {
            if root == nil { root = elementName }
            if let name = attributes["class"] { classes[name, default: 0] += 1 }
        }
    }

    @Test func flowControlDemoPlotIsWellFormedAndShowsTheZeroWindows() throws {
        var options = FlowControlDemo.Options()
        options.bytes = 30_000
        var drawn: TimeSequencePlot?
        let outcome = FlowControlDemo.run(options, plotted: { drawn = $0 }) { _ in }
        #expect(outcome.verified)
        let plot = try #require(drawn)

        let svg = plot.svg()
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = ElementCounter()
        parser.delegate = counter
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        #expect(counter.root == "svg")

        // Each zero-window closing the server counted is one shaded episode.
        #expect(outcome.zeroWindowAdvertisements > 0)
        #expect(plot.zeroWindowEpisodes.count == Int(outcome.zeroWindowAdvertisements))
        #expect(counter.classes["zero-window"] == plot.zeroWindowEpisodes.count)
        // Segments, the ACK line, the window edge and the congestion panel are all there.
        for drawnClass in ["sent", "ack", "window", "cwnd", "inflight"] {
            #expect(counter.classes[drawnClass] == 1, "no \(drawnClass) element")
        }
        // A lossless link: nothing retransmitted, so no red bars.
        #expect(plot.segmentCounts.retransmitted == 0)
        #expect(counter.classes["retransmitted"] == nil)
        #expect(plot.segmentCounts.sent > 30_000 / 1460)
        #expect(svg.contains("time (s)") && svg.contains("sequence offset"))
    }

    @Test func demoWritesThePlotFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpip-plot-\(getpid()).svg").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let command = try DemoFlowControl.parse(["--bytes", "5000", "--plot", path])
        try command.run()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("<?xml"))
        #expect(text.contains("</svg>"))
    }

    /// Parses `svg` and counts its elements by class; fails the test if it is not well-formed.
    func elements(of svg: String) -> ElementCounter {
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = ElementCounter()
        parser.delegate = counter
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        #expect(counter.root == "svg")
        return counter
    }

    /// `tcpip simulate --plot` over a lossy link: the file is a well-formed SVG whose graph marks the
    /// client's retransmissions of data (its one connection is the one drawn; the counter also counts
    /// retransmissions that carry no new sequence space to draw, such as a FIN's).
    @Test func simulatePlotShowsTheRetransmissionsOfALossyRun() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpip-simulate-plot-\(getpid()).svg").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let command = try Simulate.parse(["--bytes", "200000", "--loss", "0.03", "--seed", "3", "--plot", path])
        try command.run()
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        let counter = elements(of: svg)
        for drawnClass in ["sent", "ack", "window", "cwnd", "inflight", "retransmitted"] {
            #expect(counter.classes[drawnClass] == 1, "no \(drawnClass) element")
        }
        #expect(svg.contains("time (s)") && svg.contains("sequence offset"))

        // The same run, in process: the plot's retransmissions are the client's.
        var configuration = TransferSimulation.Configuration()
        configuration.bytes = 200_000
        configuration.faults = FaultInjector.Configuration(loss: 0.03)
        configuration.seed = 3
        configuration.plotTitle = "lossy"
        let result = TransferSimulation.run(configuration)
        #expect(result.verified)
        let plot = try #require(result.plot)
        #expect(plot.segmentCounts.retransmitted > 0)
        #expect(UInt64(plot.segmentCounts.retransmitted) <= result.clientCounters.segmentsRetransmitted)
        #expect(plot.segmentCounts.sent > 200_000 / 1460)
    }

    @Test func simulatePlotCannotBeCombinedWithTheMatrix() {
        #expect(throws: (any Error).self) { try Simulate.parse(["--matrix", "--plot", "x.svg"]) }
    }
}
