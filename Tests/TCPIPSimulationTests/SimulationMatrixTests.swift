import Foundation
import NIOCore
import TCPIP
import Testing
@testable import TCPIPSimulation

/// The committed `docs/simulate-matrix.txt` is what `tcpip simulate --matrix` prints. The runs are
/// deterministic, so any difference is a change in behaviour: small ones pass within a tolerance,
/// larger ones fail and are reviewed by re-recording the table
/// (`swift run -c release tcpip simulate --matrix > docs/simulate-matrix.txt`, or
/// `TCPIP_RECORD_SNAPSHOTS=1 swift test --filter SimulationMatrixTests`).
@Suite struct SimulationMatrixTests {
    static let table = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/simulate-matrix.txt")

    /// Every cell, in table order, two at a time (the cells are independent).
    static func runAll(_ matrix: SimulationMatrix) async -> [SimulationMatrix.Cell] {
        await withTaskGroup(of: (Int, SimulationMatrix.Cell).self) { group in
            for index in 0..<matrix.cellCount {
                group.addTask { (index, matrix.run(cell: index)) }
            }
            var cells = [SimulationMatrix.Cell?](repeating: nil, count: matrix.cellCount)
            for await (index, cell) in group { cells[index] = cell }
            return cells.compactMap { $0 }
        }
    }

    @Test func matrixMatchesTheCommittedTable() async throws {
        let matrix = SimulationMatrix()
        let cells = await Self.runAll(matrix)
        let rendered = ([matrix.header] + cells.map(SimulationMatrix.render)).joined(separator: "\n") + "\n"
        if ProcessInfo.processInfo.environment["TCPIP_RECORD_SNAPSHOTS"] == "1" {
            // The bandwidth-delay sweep below it is kept (record it with `tcpip simulate --matrix`).
            let old = (try? String(contentsOf: Self.table, encoding: .utf8)) ?? ""
            let sweep = old.range(of: "\nbandwidth-delay sweep:").map { String(old[$0.lowerBound...]) } ?? ""
            try (rendered + sweep).write(to: Self.table, atomically: true, encoding: .utf8)
            return
        }

        // Whatever the table says, no flow may stall and every byte must verify.
        for cell in cells {
            #expect(cell.verified, "cell \(SimulationMatrix.render(cell)) did not verify")
            #expect(cell.stalledFlows == 0, "a flow stalled: \(SimulationMatrix.render(cell))")
        }

        let text = try String(contentsOf: Self.table, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.first.map(String.init) == matrix.header.split(separator: "\n").first.map(String.init),
                "the matrix's parameters changed; re-record the table")
        let committed = lines.compactMap(SimulationMatrix.parse)
        #expect(committed.count == cells.count, "the committed table has \(committed.count) cells, the matrix \(cells.count)")
        for (now, then) in zip(cells, committed) {
            let name = "rtt \(now.roundTripMilliseconds) ms, loss \(now.lossPercent) %, \(now.flows) flow(s)"
            #expect(now.roundTripMilliseconds == then.roundTripMilliseconds && now.flows == then.flows)
            // Goodput within 10 % (or 0.2 Mbit/s for the slow cells), fairness within 0.05,
            // retransmissions within 25 % (+10).
            let goodputTolerance = max(0.1 * then.goodputMegabits, 0.2)
            #expect(abs(now.goodputMegabits - then.goodputMegabits) <= goodputTolerance,
                    "\(name): goodput \(now.goodputMegabits) Mbit/s, table says \(then.goodputMegabits)")
            #expect(abs(now.fairness - then.fairness) <= 0.05,
                    "\(name): fairness \(now.fairness), table says \(then.fairness)")
            let retransmitTolerance = Double(then.retransmissions) * 0.25 + 10
            #expect(abs(Double(now.retransmissions) - Double(then.retransmissions)) <= retransmitTolerance,
                    "\(name): \(now.retransmissions) retransmissions, table says \(then.retransmissions)")
        }
    }

    /// The bandwidth-delay sweep below the matrix in the same file. Its 500 Mbit/s cells move
    /// gigabytes: a debug build compares the 10 Mbit/s row and one 100 Mbit/s cell (set
    /// TCPIP_FULL_SWEEP=1 for all twelve); every cell run must verify, and the committed table
    /// must hold every cell.
    @Test func bandwidthDelaySweepMatchesTheCommittedTable() async throws {
        let sweep = BandwidthDelaySweep()
        if ProcessInfo.processInfo.environment["TCPIP_RECORD_SNAPSHOTS"] == "1" { return }
        let full = ProcessInfo.processInfo.environment["TCPIP_FULL_SWEEP"] == "1"
        let indices = (0..<sweep.cellCount).filter { index in
            let (rate, rtt) = sweep.cellParameters(index)
            return full || rate == 10_000_000 || (rate == 100_000_000 && rtt == .milliseconds(50))
        }
        let cells = await withTaskGroup(of: (Int, BandwidthDelaySweep.Cell).self) { group in
            for index in indices { group.addTask { (index, sweep.run(cell: index)) } }
            var cells: [Int: BandwidthDelaySweep.Cell] = [:]
            for await (index, cell) in group { cells[index] = cell }
            return cells
        }
        let text = try String(contentsOf: Self.table, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.contains(Substring(sweep.header.split(separator: "\n").first!)),
                "the sweep's parameters changed; re-record the table")
        let committed = lines.compactMap(BandwidthDelaySweep.parse)
        #expect(committed.count == sweep.cellCount, "the committed sweep has \(committed.count) cells, the sweep \(sweep.cellCount)")
        guard committed.count == sweep.cellCount else { return }
        for (index, now) in cells.sorted(by: { $0.key < $1.key }) {
            let then = committed[index]
            let name = "\(now.rateMegabits) Mbit/s, rtt \(now.roundTripMilliseconds) ms"
            #expect(now.verified, "\(name) did not verify")
            #expect(now.rateMegabits == then.rateMegabits && now.roundTripMilliseconds == then.roundTripMilliseconds)
            #expect(abs(now.fraction - then.fraction) <= 0.05, "\(name): \(now.fraction) of the link, table says \(then.fraction)")
            #expect(abs(now.lastQuarterFraction - then.lastQuarterFraction) <= 0.05,
                    "\(name): last quarter \(now.lastQuarterFraction) of the link, table says \(then.lastQuarterFraction)")
        }
        // What the sweep is for: with autotuned buffers a 100 ms path fills its link.
        if let cell = committed.first(where: { $0.rateMegabits == 500 && $0.roundTripMilliseconds == 100 }) {
            #expect(cell.lastQuarterFraction >= 0.9, "500 Mbit/s at 100 ms: \(cell.lastQuarterFraction) of the link")
        }
    }

    @Test func renderedCellsParseBack() {
        let cell = SimulationMatrix.Cell(
            roundTripMilliseconds: 50, lossPercent: 0.1, flows: 4, goodputMegabits: 9.546, retransmissions: 136,
            timeouts: 1, fairness: 0.998, stalledFlows: 0, mathisMegabits: 8.973, verified: true)
        #expect(SimulationMatrix.parse(Substring(SimulationMatrix.render(cell))) == cell)
        var lossless = cell
        lossless.lossPercent = 0
        lossless.mathisMegabits = nil
        #expect(SimulationMatrix.parse(Substring(SimulationMatrix.render(lossless))) == lossless)
    }

    @Test func jainIndexOfOneFlowIsOne() {
        var matrix = SimulationMatrix()
        matrix.roundTripTimes = [.milliseconds(10)]
        matrix.lossRates = [0]
        matrix.flowCounts = [1]
        matrix.duration = .seconds(2)
        let cell = matrix.run(cell: 0)
        #expect(cell.fairness == 1)
        #expect(cell.verified)
        // A 10 Mbit/s bottleneck carries at most 10 Mbit/s of headers and payload.
        #expect(cell.goodputMegabits > 5 && cell.goodputMegabits < 10)
    }
}
