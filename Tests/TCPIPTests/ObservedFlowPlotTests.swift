import TCPIP
import TCPIPWire
import Testing

/// `route --plot`'s observer: of the flows it sees, it draws the one that carried the most payload
/// (or the one it was told), keeps a bounded number of flows, and draws the bytes in flight as seen
/// on the wire instead of a congestion state it cannot know.
@Suite struct ObservedFlowPlotTests {
    let t = { (ms: Int64) in Instant.zero + .milliseconds(ms) }

    func endpoint(_ host: String, _ port: UInt16) -> Endpoint { Endpoint(IPAddress(host)!, port) }

    func segment(_ source: Endpoint, _ destination: Endpoint, seq: UInt32, ack: UInt32? = nil, syn: Bool = false, length: Int = 0)
        -> CapturedSegment
    {
        var flags: TCPFlags = syn ? .syn : []
        if ack != nil { flags.insert(.ack) }
        let header = TCPHeader(
            sourcePort: source.port, destinationPort: destination.port, sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(ack ?? 0), flags: flags, window: 1000)
        return CapturedSegment(source: source, destination: destination, header: header, payloadLength: length)
    }

    /// A server sends `segments` of 1000 bytes to a client, each acknowledged after the next is sent
    /// (so 2000 bytes are in flight at the peak), starting at `start` ms.
    func transfer(_ observer: inout ObservedFlowPlot, client: Endpoint, server: Endpoint, segments: Int, start: Int64) {
        observer.record(segment(client, server, seq: 100, syn: true), at: t(start))
        observer.record(segment(server, client, seq: 500, ack: 101, syn: true), at: t(start + 1))
        observer.record(segment(client, server, seq: 101, ack: 501), at: t(start + 2))
        for i in 0..<segments {
            let ms = start + 10 + Int64(i) * 10
            observer.record(segment(server, client, seq: 501 + UInt32(i) * 1000, ack: 101, length: 1000), at: t(ms))
            if i > 0 { observer.record(segment(client, server, seq: 101, ack: 501 + UInt32(i) * 1000), at: t(ms + 5)) }
        }
        observer.record(segment(client, server, seq: 101, ack: 501 + UInt32(segments) * 1000), at: t(start + 20 + Int64(segments) * 10))
    }

    @Test func drawsTheFlowThatCarriedTheMostFromTheWireAlone() throws {
        var observer = ObservedFlowPlot(title: "observed")
        let client = endpoint("198.18.0.1", 40000)
        transfer(&observer, client: client, server: endpoint("198.18.2.1", 80), segments: 3, start: 0)
        transfer(&observer, client: endpoint("198.18.0.1", 40001), server: endpoint("198.18.2.1", 8080), segments: 20, start: 100)
        let plot = try #require(observer.plot)
        #expect(plot.segmentCounts.sent == 21)  // the SYN-ACK and twenty data segments
        let svg = plot.svg()
        #expect(svg.contains("198.18.2.1:8080 → 198.18.0.1:40001"))
        #expect(svg.contains("class=\"inflight\""))
        #expect(!svg.contains("class=\"cwnd\"") && !svg.contains("class=\"ssthresh\""))
        #expect(svg.contains("unknown to an observer"))

        // Told which flow: the small one, given in either order.
        var chosen = ObservedFlowPlot(title: "chosen", flow: (endpoint("198.18.2.1", 80), client))
        transfer(&chosen, client: client, server: endpoint("198.18.2.1", 80), segments: 3, start: 0)
        transfer(&chosen, client: endpoint("198.18.0.1", 40001), server: endpoint("198.18.2.1", 8080), segments: 20, start: 100)
        #expect(chosen.plot?.segmentCounts.sent == 4)
    }

    /// Past `maximumFlows`, a new flow displaces the one that carried the least: the big one stays.
    @Test func followsABoundedNumberOfFlows() throws {
        var observer = ObservedFlowPlot(title: "bounded", maximumFlows: 2)
        transfer(&observer, client: endpoint("198.18.0.1", 40000), server: endpoint("198.18.2.1", 80), segments: 30, start: 0)
        for port in UInt16(40001)...40010 {
            transfer(&observer, client: endpoint("198.18.0.1", port), server: endpoint("198.18.2.1", 80), segments: 1, start: 1000)
        }
        #expect(try #require(observer.plot).segmentCounts.sent == 31)
        // Nothing but TCP, or nothing at all: no plot yet.
        #expect(ObservedFlowPlot(title: "empty").plot == nil)
    }
}
