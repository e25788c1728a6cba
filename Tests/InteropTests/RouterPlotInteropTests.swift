import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension RouterInteropTests {
    /// Counts an SVG document's elements by their `class` attribute.
    final class SVGClasses: NSObject, XMLParserDelegate {
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

    /// `route --plot`: curl in A downloads a small file and then a 2 MB one from B through the
    /// router (both byte for byte); at SIGTERM the router writes a well-formed SVG of the flow it
    /// forwarded the most payload of — the big download, drawn from the server's side — with the
    /// segments, the ACK line, the window edge and the bytes in flight as seen, and no cwnd (an
    /// observer does not know it; the legend says so).
    @Test func plotDrawsTheFlowForwardedMost() throws {
        try Interop.check()
        let plot = FileManager.default.temporaryDirectory.appendingPathComponent("tcpip-route-plot-\(getpid()).svg")
        defer { try? FileManager.default.removeItem(at: plot) }
        try? FileManager.default.removeItem(at: plot)
        let network = try RoutedNamespaces("rplot", mtuB: 1400, routerArguments: ["--plot", plot.path, "--shutdown-timeout", "1"])
        defer { network.delete() }
        let served = network.scratch.appendingPathComponent("served")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        try makeRandomFile(served.appendingPathComponent("small"), size: 20_000)
        try makeRandomFile(served.appendingPathComponent("big"), size: 2_000_000)
        try network.spawn(in: network.b, ["python3", "-m", "http.server", "8080", "--bind", "198.18.2.1", "--directory", served.path])
        for name in ["small", "big"] {
            let received = network.scratch.appendingPathComponent("received-\(name)")
            var result = (status: Int32(-1), output: "")
            for _ in 0..<50 {
                result = try network.run(in: network.a, ["curl", "-sS", "--max-time", "120", "-o", received.path,
                                                         "http://198.18.2.1:8080/\(name)"], timeout: 130)
                if result.status != 7 { break }  // 7: the server is not listening yet
                usleep(100_000)
            }
            #expect(result.status == 0, "\(result.output)")
            #expect(try sha256(received.path) == sha256(served.appendingPathComponent(name).path))
        }

        let route = try #require(network.route)
        route.terminate()  // SIGTERM: the plot is written as the router stops
        Namespace.wait(route, timeout: 10)
        #expect(route.terminationReason == .exit && route.terminationStatus == 0, "tcpip route exited \(route.terminationStatus)")
        let log = try String(contentsOf: network.routeLog, encoding: .utf8)
        #expect(log.contains("plot written to"), "\(log.suffix(800))")

        let svg = try String(contentsOf: plot, encoding: .utf8)
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = SVGClasses()
        parser.delegate = counter
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        #expect(counter.root == "svg")
        for drawn in ["sent", "ack", "window", "inflight"] {
            #expect(counter.classes[drawn] == 1, "no \(drawn) element: \(svg.prefix(2000))")
        }
        #expect(counter.classes["cwnd"] == nil && counter.classes["ssthresh"] == nil)
        #expect(svg.contains("unknown to an observer"))
        // The sender is the server; its flow is the big download (2 MB and more of sequence space on the axis).
        #expect(svg.contains("198.18.2.1:8080 → 198.18.0.1:"), "\(svg.prefix(2000))")
        #expect(svg.contains("MiB"), "the sequence axis does not reach megabytes: \(svg.prefix(4000))")
    }
}
