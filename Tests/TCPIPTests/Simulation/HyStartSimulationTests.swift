import NIOCore
import TCPIP
import TCPIPSimulation
import Testing

/// HyStart++ (RFC 9406) on the bandwidth-delay sweep's paths (a drop-tail queue of one
/// bandwidth-delay product, no loss), every byte verified. Slow start that counts every delivered
/// segment doubles cwnd each round trip and, without HyStart++, runs on until the queue overflows
/// by up to a window; HyStart++ sees the queue standing in a round's minimum RTT and slows down.
@Suite struct HyStartSimulationTests {
    /// The sweep's cell `rate` × `rtt`, with the server preset, HyStart++ on or off.
    static func sweepCell(rate: UInt64, rtt: TimeAmount, hyStart: Bool) -> BandwidthDelaySweep.Cell {
        var sweep = BandwidthDelaySweep()
        sweep.tcp.hyStart = hyStart
        let index = (0..<sweep.cellCount).first { sweep.cellParameters($0) == (rate, rtt) }!
        return sweep.run(cell: index)
    }

    /// 100 Mbit/s at 100 ms (a 1.25 MB window): without HyStart++ slow start overshoots to twice
    /// the path's capacity. While ssthresh counted the receiver's out-of-order bytes, the recovery
    /// from that overshoot never ended well (last quarter 0.41 of the link without HyStart++, 0.96
    /// with); with ssthresh from min(FlightSize, cwnd) both fill the link in the last quarter, and
    /// HyStart++ still retransmits less.
    @Test func longerPathLeavesSlowStartBeforeTheQueueOverflows() {
        let with = Self.sweepCell(rate: 100_000_000, rtt: .milliseconds(100), hyStart: true)
        let without = Self.sweepCell(rate: 100_000_000, rtt: .milliseconds(100), hyStart: false)
        #expect(with.verified && without.verified)
        #expect(with.lastQuarterFraction >= 0.9, "with HyStart++: last quarter \(with.lastQuarterFraction) of the link")
        #expect(without.lastQuarterFraction >= 0.9, "without: last quarter \(without.lastQuarterFraction)")
        #expect(with.retransmissions < without.retransmissions)
    }

    /// 100 Mbit/s at 10 ms under the server preset's 16 MiB out-of-order bound. ssthresh once came
    /// from FlightSize, SND.NXT − SND.UNA, which also counts what the receiver holds behind a hole:
    /// a lost retransmission found inside an episode met a FlightSize of 2 MiB on a path that holds
    /// 250 kB, and each recovery ended in a cwnd that overflowed the queue again (32,013
    /// retransmissions in `tcpip simulate`). A loss found by ACKs now takes min(FlightSize, cwnd).
    @Test func outOfOrderQueueDoesNotInflateTheWindowAfterRecovery() {
        #expect(BandwidthDelaySweep().tcp.reassemblyLimit == 16 << 20)
        let cell = Self.sweepCell(rate: 100_000_000, rtt: .milliseconds(10), hyStart: true)
        #expect(cell.verified)
        #expect(cell.retransmissions < 1_000, "\(cell.retransmissions) retransmissions")
        #expect(cell.fraction >= 0.9, "\(cell.fraction) of the link")
    }

    /// 10 Mbit/s at 10 ms and 50 ms: what HyStart++ changes on short paths. At 10 ms it retransmits
    /// less for the same goodput. At 50 ms the queue (43 segments) overflows in the very round in
    /// which it first stands — each round's minimum RTT is taken from its first ACKs, sent into an
    /// empty queue — so HyStart++ decides one round too late and the run is what it is without
    /// (0.937 of the link, 184 retransmissions; 0.637 and 2,255 while ssthresh counted the
    /// receiver's out-of-order bytes). Pinned so that a change here is seen.
    @Test func shortPaths() {
        let short = Self.sweepCell(rate: 10_000_000, rtt: .milliseconds(10), hyStart: true)
        let shortWithout = Self.sweepCell(rate: 10_000_000, rtt: .milliseconds(10), hyStart: false)
        #expect(short.verified && short.fraction >= 0.95)
        #expect(short.retransmissions < shortWithout.retransmissions)
        let fifty = Self.sweepCell(rate: 10_000_000, rtt: .milliseconds(50), hyStart: true)
        let fiftyWithout = Self.sweepCell(rate: 10_000_000, rtt: .milliseconds(50), hyStart: false)
        #expect(fifty.verified)
        #expect(fifty == fiftyWithout, "HyStart++ now acts on 10 Mbit/s × 50 ms: \(fifty.fraction) of the link")
    }
}
