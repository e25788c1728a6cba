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
    /// the path's capacity and its last quarter runs at 0.41 of the link; with it, 0.96, and the
    /// whole run gains by half.
    @Test func longerPathLeavesSlowStartBeforeTheQueueOverflows() {
        let with = Self.sweepCell(rate: 100_000_000, rtt: .milliseconds(100), hyStart: true)
        let without = Self.sweepCell(rate: 100_000_000, rtt: .milliseconds(100), hyStart: false)
        #expect(with.verified && without.verified)
        #expect(with.lastQuarterFraction >= 0.9, "with HyStart++: last quarter \(with.lastQuarterFraction) of the link")
        #expect(without.lastQuarterFraction < 0.6, "without: last quarter \(without.lastQuarterFraction)")
        #expect(with.fraction >= without.fraction + 0.2, "whole run: \(with.fraction) with, \(without.fraction) without")
        #expect(with.retransmissions < without.retransmissions)
    }

    /// 10 Mbit/s at 10 ms and 50 ms: what HyStart++ changes on short paths. At 10 ms it retransmits
    /// less for the same goodput. At 50 ms the queue (43 segments) overflows in the very round in
    /// which it first stands — each round's minimum RTT is taken from its first ACKs, sent into an
    /// empty queue — so HyStart++ decides one round too late and the run is what it was without
    /// (0.637 of the link; the 2,255 retransmissions after the overshoot are loss recovery's).
    /// Pinned so that a change here is seen.
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
