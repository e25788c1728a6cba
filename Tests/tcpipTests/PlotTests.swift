import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TCPIP
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
}
