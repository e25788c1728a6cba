import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// The time–sequence graph classifies what it sees as tcptrace does: data segments, retransmissions
/// (wholly below the highest octet sent), ACKs with their scaled window, SACK blocks, zero windows.
@Suite struct TimeSequencePlotTests {
    let client = Endpoint(IPAddress("198.18.0.1")!, 40000)
    let server = Endpoint(IPAddress("198.18.0.2")!, 80)

    func segment(
        from source: Endpoint, to destination: Endpoint, seq: UInt32, ack: UInt32? = nil, flags: TCPFlags,
        window: UInt16 = 1000, length: Int = 0, options: TCPOptions = TCPOptions()
    ) -> CapturedSegment {
        var flags = flags
        if ack != nil { flags.insert(.ack) }
        let header = TCPHeader(
            sourcePort: source.port, destinationPort: destination.port, sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(ack ?? 0), flags: flags, window: window, options: options)
        return CapturedSegment(source: source, destination: destination, header: header, payloadLength: length)
    }

    @Test func classifiesSegmentsAcknowledgmentsAndZeroWindows() {
        var plot = TimeSequencePlot()
        let t = { (ms: Int64) in Instant.zero + .milliseconds(ms) }
        // ISNs near 2^32, so offsets must survive wrap-around.
        let iss: UInt32 = 0xFFFF_FF00
        let irs: UInt32 = 0xFFFF_FFF0
        plot.record(segment(from: client, to: server, seq: iss, flags: .syn, options: TCPOptions(windowScale: 2)), at: t(0))
        plot.record(segment(from: server, to: client, seq: irs, ack: iss &+ 1, flags: .syn, options: TCPOptions(windowScale: 3)), at: t(1))
        // The server sends data; the client acknowledges with a scaled window.
        plot.record(segment(from: server, to: client, seq: irs &+ 1, ack: iss &+ 1, flags: [], length: 1000), at: t(2))
        plot.record(segment(from: server, to: client, seq: irs &+ 1001, ack: iss &+ 1, flags: [], length: 1000), at: t(3))
        plot.record(segment(
            from: client, to: server, seq: iss &+ 1, ack: irs &+ 1, flags: [], window: 0,
            options: TCPOptions(sackBlocks: [SACKBlock(start: SequenceNumber(irs &+ 1001), end: SequenceNumber(irs &+ 2001))])),
            at: t(4))
        // The first segment again: a retransmission.
        plot.record(segment(from: server, to: client, seq: irs &+ 1, ack: iss &+ 1, flags: [], length: 1000), at: t(5))
        plot.record(segment(from: client, to: server, seq: iss &+ 1, ack: irs &+ 2001, flags: [], window: 100), at: t(9))
        // Another connection is not drawn.
        plot.record(segment(from: Endpoint(client.address, 40001), to: server, seq: 1, flags: .syn), at: t(10))

        #expect(plot.segmentCounts.sent == 4)            // the server's SYN and three data segments
        #expect(plot.segmentCounts.retransmitted == 1)
        let episodes = plot.zeroWindowEpisodes
        #expect(episodes.count == 1)
        #expect(episodes.first?.start == t(4) && episodes.first?.end == t(9))
        let svg = plot.svg()
        #expect(svg.contains("198.18.0.2:80 → 198.18.0.1:40000"))
        #expect(svg.contains("class=\"retransmitted\""))
        #expect(svg.contains("class=\"sack\""))
    }

    @Test func boundedMemory() {
        var plot = TimeSequencePlot(maximumEvents: 10)
        for i in 0..<100 {
            plot.record(
                segment(from: client, to: server, seq: UInt32(i * 100), flags: [], length: 100),
                at: .zero + .milliseconds(Int64(i)))
        }
        #expect(plot.segmentCounts.sent == 10)
        #expect(plot.droppedEvents == 90)
        #expect(plot.svg().contains("90 later events not drawn"))
    }

    @Test func emptyPlotSaysSo() {
        #expect(TimeSequencePlot().svg().contains("no TCP segments were recorded"))
    }
}
