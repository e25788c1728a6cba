import NIOCore
import TCPIP

/// `tcpip simulate --matrix`: congestion control and loss recovery across a grid of paths.
///
/// Every cell runs on virtual time with a fixed seed: one flow, then four competing flows, through
/// a drop-tail bottleneck of fixed rate and queue, for each round-trip time and random loss rate.
/// Same code, same table: the committed table is compared with a fresh run by a test, so a change
/// in behaviour is reviewed as a diff of numbers.
public struct SimulationMatrix: Sendable {
    /// Round-trip times, one row group each.
    public var roundTripTimes: [TimeAmount] = [.milliseconds(10), .milliseconds(50), .milliseconds(200)]
    /// Probability that a datagram is lost, each way.
    public var lossRates: [Double] = [0, 0.001, 0.01, 0.05]
    /// Competing flows per cell.
    public var flowCounts: [Int] = [1, 4]
    /// The bottleneck's rate.
    public var bottleneckBitsPerSecond: UInt64 = 10_000_000
    /// The bottleneck's drop-tail queue: one bandwidth-delay product at 50 ms.
    public var queueBytes: Int = 62_500
    /// Virtual time each cell runs.
    public var duration: TimeAmount = .seconds(20)
    /// The links' MTU.
    public var mtu: Int = 1500
    /// The flows' TCP configuration: buffers large enough for the longest path.
    public var tcp: TCPConfiguration = {
        var tcp = TCPConfiguration()
        // Windows large enough for the longest path (10 Mbit/s · 200 ms = 250 kB, plus the queue):
        // the table measures congestion control, not buffer sizing.
        tcp.receiveBufferSize = 1 << 20
        tcp.sendBufferSize = 1 << 20
        tcp.reassemblyLimit = 2 << 20
        // RFC 5681 §3.1's one SMSS per ACK, as the table was recorded with.
        tcp.slowStartLimitSegments = 1
        return tcp
    }()

    /// The committed table's grid.
    public init() {}

    /// One row of the table.
    public struct Cell: Sendable, Equatable {
        /// The path's round-trip time.
        public var roundTripMilliseconds: Int
        /// The random loss each way, in percent.
        public var lossPercent: Double
        /// Competing flows.
        public var flows: Int
        /// Goodput of all flows together, Mbit/s: bytes delivered in order to the receiving application.
        public var goodputMegabits: Double
        /// Segments retransmitted, all flows.
        public var retransmissions: UInt64
        /// Retransmission timeouts, all flows.
        public var timeouts: UInt64
        /// Jain's fairness index over the flows' goodputs: 1 is perfectly fair, 1/n is one flow taking all.
        public var fairness: Double
        /// Flows that delivered nothing in the last quarter of the run.
        public var stalledFlows: Int
        /// The Mathis et al. bound for one flow, MSS/RTT · √(3/2)/√p, Mbit/s; nil without loss.
        public var mathisMegabits: Double?
        /// Whether every byte delivered matched what was sent.
        public var verified: Bool
    }

    /// Cells in the table.
    public var cellCount: Int { roundTripTimes.count * lossRates.count * flowCounts.count }

    /// The configuration of cell `index`, in table order (RTT, then loss, then flows).
    public func cellParameters(_ index: Int) -> (rtt: TimeAmount, loss: Double, flows: Int, seed: UInt64) {
        let flowsIndex = index % flowCounts.count
        let lossIndex = (index / flowCounts.count) % lossRates.count
        let rttIndex = index / (flowCounts.count * lossRates.count)
        return (roundTripTimes[rttIndex], lossRates[lossIndex], flowCounts[flowsIndex], UInt64(index + 1) &* 7919)
    }

    /// Runs cell `index`. Cells are independent: callers may run them in parallel.
    public func run(cell index: Int) -> Cell {
        let (rtt, loss, flows, seed) = cellParameters(index)
        var configuration = TransferSimulation.Configuration()
        configuration.connections = flows
        configuration.duration = duration
        configuration.delay = .nanoseconds(rtt.nanoseconds / 2)
        configuration.bandwidthBitsPerSecond = bottleneckBitsPerSecond
        configuration.queueLimitBytes = queueBytes
        configuration.mtu = mtu
        configuration.faults = FaultInjector.Configuration(loss: loss)
        configuration.seed = seed
        configuration.tcp = tcp
        let result = TransferSimulation.run(configuration)

        let seconds = Double(duration.nanoseconds) / 1e9
        let goodputs = result.delivered.map { Double($0.total) * 8 / seconds / 1e6 }
        let total = goodputs.reduce(0, +)
        let squares = goodputs.reduce(0) { $0 + $1 * $1 }
        let fairness = squares > 0 ? total * total / (Double(goodputs.count) * squares) : 0
        let stalled = result.delivered.filter { $0.total == $0.atThreeQuarters }.count
        let mss = Double(mtu - 40 - 12)  // IPv4 and TCP headers with the timestamp option
        let mathis = loss > 0
            ? mss * 8 / (Double(rtt.nanoseconds) / 1e9) * 1.224744871391589 / loss.squareRoot() / 1e6 : nil
        return Cell(
            roundTripMilliseconds: Int(rtt.nanoseconds / 1_000_000), lossPercent: loss * 100, flows: flows,
            goodputMegabits: total, retransmissions: result.retransmits,
            timeouts: result.clientCounters.retransmissionTimeouts + result.serverCounters.retransmissionTimeouts,
            fairness: fairness, stalledFlows: stalled, mathisMegabits: mathis, verified: result.verified)
    }

    /// The header of the table; `render` adds one line per cell.
    public var header: String {
        "matrix: \(cellCount) cells, \(bottleneckBitsPerSecond / 1_000_000) Mbit/s drop-tail bottleneck with a "
            + "\(queueBytes)-byte queue, \(duration.nanoseconds / 1_000_000_000) virtual s per cell, "
            + "random loss each way, \(tcp.congestionControl.rawValue), MTU \(mtu), fixed seeds\n"
            + "rtt_ms  loss_%  flows  goodput_mbit  mathis_mbit  retrans  timeouts  fairness  stalled  verified"
    }

    /// One row of the table, as `parse(_:)` reads it back.
    public static func render(_ cell: Cell) -> String {
        // A column is at least one space wider than its text, so the line always splits back.
        func column(_ text: String, _ width: Int) -> String { TextFormat.left(text, width - 1) + " " }
        func fixed(_ value: Double, _ digits: Int) -> String { TextFormat.fixed(value, digits: digits) }
        return column("\(cell.roundTripMilliseconds)", 8) + column(fixed(cell.lossPercent, 1), 8)
            + column("\(cell.flows)", 7) + column(fixed(cell.goodputMegabits, 3), 14)
            + column(cell.mathisMegabits.map { fixed($0, 3) } ?? "-", 13)
            + column("\(cell.retransmissions)", 9) + column("\(cell.timeouts)", 10)
            + column(fixed(cell.fairness, 3), 10) + column("\(cell.stalledFlows)", 9) + "\(cell.verified)"
    }

    /// Parses a line `render` wrote; nil for the header or anything else.
    public static func parse(_ line: Substring) -> Cell? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 10, let rtt = Int(fields[0]), let loss = Double(fields[1]), let flows = Int(fields[2]),
            let goodput = Double(fields[3]), let retransmissions = UInt64(fields[5]), let timeouts = UInt64(fields[6]),
            let fairness = Double(fields[7]), let stalled = Int(fields[8])
        else { return nil }
        return Cell(
            roundTripMilliseconds: rtt, lossPercent: loss, flows: flows, goodputMegabits: goodput,
            retransmissions: retransmissions, timeouts: timeouts, fairness: fairness, stalledFlows: stalled,
            mathisMegabits: Double(fields[4]), verified: fields[9] == "true")
    }
}

/// `tcpip simulate --matrix`'s second table: long, fat paths. One flow, no loss, through a drop-tail
/// bottleneck with a queue of one bandwidth-delay product, for each rate and round-trip time, with
/// the buffers autotuned as `TCPConfiguration.server` sizes them: goodput as a fraction of the link,
/// over the whole run (slow start and buffer growth included) and over its last quarter (steady
/// state), and how far the receive buffer grew. Fixed 256 KiB buffers would carry at most
/// 256 KiB per round trip: 21 Mbit/s at 100 ms.
public struct BandwidthDelaySweep: Sendable {
    /// Bottleneck rates, in bit/s.
    public var rates: [UInt64] = [10_000_000, 100_000_000, 500_000_000]
    /// Round-trip times, per rate.
    public var roundTripTimes: [TimeAmount] = [.milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(200)]
    /// Virtual time each cell runs.
    public var duration: TimeAmount = .seconds(5)
    /// The links' MTU.
    public var mtu: Int = 1500
    /// The flow's TCP configuration (autotuned buffers).
    public var tcp: TCPConfiguration = .server

    /// The committed table's grid.
    public init() {}

    /// One row of the sweep.
    public struct Cell: Sendable, Equatable {
        /// The bottleneck's rate, in Mbit/s.
        public var rateMegabits: Int
        /// The path's round-trip time.
        public var roundTripMilliseconds: Int
        /// Goodput over the whole run, in Mbit/s.
        public var goodputMegabits: Double
        /// Goodput over the link rate, whole run and last quarter.
        public var fraction: Double
        /// Goodput in the last quarter of the run, over the link rate.
        public var lastQuarterFraction: Double
        /// The receiver's buffer at the end (it started at `tcp.receiveBufferSize`).
        public var receiveBuffer: Int
        /// Segments retransmitted.
        public var retransmissions: UInt64
        /// Whether every byte delivered matched what was sent.
        public var verified: Bool
    }

    /// Cells in the sweep.
    public var cellCount: Int { rates.count * roundTripTimes.count }

    /// Cell `index`, in table order (rate, then RTT).
    public func cellParameters(_ index: Int) -> (rate: UInt64, rtt: TimeAmount) {
        (rates[index / roundTripTimes.count], roundTripTimes[index % roundTripTimes.count])
    }

    /// One bandwidth-delay product, but at least 32 full-sized datagrams.
    public static func queueBytes(rate: UInt64, rtt: TimeAmount, mtu: Int) -> Int {
        max(Int(rate / 8 * UInt64(rtt.nanoseconds) / 1_000_000_000), 32 * mtu)
    }

    /// Runs cell `index` of the sweep (`cellParameters(_:)`).
    public func run(cell index: Int) -> Cell {
        let (rate, rtt) = cellParameters(index)
        var configuration = TransferSimulation.Configuration()
        configuration.duration = duration
        configuration.delay = .nanoseconds(rtt.nanoseconds / 2)
        configuration.bandwidthBitsPerSecond = rate
        configuration.queueLimitBytes = Self.queueBytes(rate: rate, rtt: rtt, mtu: mtu)
        configuration.mtu = mtu
        configuration.seed = UInt64(index + 1) &* 7919
        configuration.tcp = tcp
        let result = TransferSimulation.run(configuration)
        let seconds = Double(duration.nanoseconds) / 1e9
        let (total, atThreeQuarters) = result.delivered.first ?? (0, 0)
        let goodput = Double(total) * 8 / seconds
        let lastQuarter = Double(total - atThreeQuarters) * 8 / (seconds / 4)
        return Cell(
            rateMegabits: Int(rate / 1_000_000), roundTripMilliseconds: Int(rtt.nanoseconds / 1_000_000),
            goodputMegabits: goodput / 1e6, fraction: goodput / Double(rate), lastQuarterFraction: lastQuarter / Double(rate),
            receiveBuffer: result.serverStatuses.first?.receiveBuffer ?? 0, retransmissions: result.retransmits,
            verified: result.verified)
    }

    /// The sweep's heading: what was run, then the column names.
    public var header: String {
        "bandwidth-delay sweep: \(cellCount) cells, 1 flow, no loss, drop-tail queue of one BDP, "
            + "\(duration.nanoseconds / 1_000_000_000) virtual s per cell, buffers autotuned from "
            + "\(tcp.receiveBufferSize) up to \(tcp.receiveBufferMaximum ?? tcp.receiveBufferSize) (receive) and "
            + "\(tcp.sendBufferMaximum ?? tcp.sendBufferSize) (send), \(tcp.congestionControl.rawValue), MTU \(mtu)\n"
            + "link_mbit  rtt_ms  goodput_mbit  of_link  last_quarter  rcvbuf  retrans  verified"
    }

    /// One row of the sweep's table.
    public static func render(_ cell: Cell) -> String {
        func column(_ text: String, _ width: Int) -> String { TextFormat.left(text, width - 1) + " " }
        func fixed(_ value: Double, _ digits: Int) -> String { TextFormat.fixed(value, digits: digits) }
        return column("\(cell.rateMegabits)", 11) + column("\(cell.roundTripMilliseconds)", 8)
            + column(fixed(cell.goodputMegabits, 3), 14) + column(fixed(cell.fraction, 3), 9)
            + column(fixed(cell.lastQuarterFraction, 3), 14) + column("\(cell.receiveBuffer)", 8)
            + column("\(cell.retransmissions)", 9) + "\(cell.verified)"
    }

    /// Parses a line `render` wrote (eight fields: `SimulationMatrix.parse` takes ten); nil otherwise.
    public static func parse(_ line: Substring) -> Cell? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 8, let rate = Int(fields[0]), let rtt = Int(fields[1]), let goodput = Double(fields[2]),
            let fraction = Double(fields[3]), let lastQuarter = Double(fields[4]), let buffer = Int(fields[5]),
            let retransmissions = UInt64(fields[6])
        else { return nil }
        return Cell(
            rateMegabits: rate, roundTripMilliseconds: rtt, goodputMegabits: goodput, fraction: fraction,
            lastQuarterFraction: lastQuarter, receiveBuffer: buffer, retransmissions: retransmissions,
            verified: fields[7] == "true")
    }
}
