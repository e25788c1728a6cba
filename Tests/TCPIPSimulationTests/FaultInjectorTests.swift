import NIOCore
import TCPIP
import TCPIPSimulation
import TCPIPWire
import Testing
import TestSupport

@Suite struct FaultInjectorTests {
    /// Sends `count` numbered datagrams one millisecond apart through a fault injector and returns
    /// what came out, in order, after every held-back datagram has been released.
    private static func run(
        _ configuration: FaultInjector.Configuration,
        seed: UInt64,
        count: Int,
        size: Int = 64
    ) -> (delivered: [ByteBuffer], statistics: FaultStatistics) {
        let (a, b) = MemoryLink.pair()
        let faulty = FaultInjector(wrapping: b, configuration: configuration, seed: seed)
        var delivered: [ByteBuffer] = []
        delivered.reserveCapacity(count * 2)
        var now = Instant.zero
        for number in 0..<count {
            a.send(TestDatagram.numbered(UInt64(number), size: size), now: now)
            while let packet = faulty.receive(now: now) { delivered.append(packet) }
            now += .milliseconds(1)
        }
        while let next = faulty.nextArrival {
            now = max(now, next)
            while let packet = faulty.receive(now: now) { delivered.append(packet) }
        }
        return (delivered, faulty.statistics)
    }

    /// Whether `observed` is within five standard deviations of a binomial(`trials`, `probability`).
    private static func plausible(_ observed: UInt64, trials: UInt64, probability: Double) -> Bool {
        let mean = Double(trials) * probability
        let deviation = (Double(trials) * probability * (1 - probability)).squareRoot()
        return abs(Double(observed) - mean) <= 5 * deviation
    }

    @Test func ratesMatchTheConfigurationOver100kDatagrams() {
        let configuration = FaultInjector.Configuration(loss: 0.1, duplicate: 0.05, reorder: 0.03, corrupt: 0.02)
        let (delivered, statistics) = Self.run(configuration, seed: 2024, count: 100_000)

        #expect(statistics.received == 100_000)
        let kept = statistics.received - statistics.dropped
        #expect(Self.plausible(statistics.dropped, trials: statistics.received, probability: 0.1))
        #expect(Self.plausible(statistics.duplicated, trials: kept, probability: 0.05))
        #expect(Self.plausible(statistics.reordered, trials: kept, probability: 0.03))
        #expect(Self.plausible(statistics.corrupted, trials: kept, probability: 0.02))
        #expect(UInt64(delivered.count) == kept + statistics.duplicated)
    }

    @Test func aSeedReproducesTheRunExactly() {
        let configuration = FaultInjector.Configuration(loss: 0.05, duplicate: 0.05, reorder: 0.1, corrupt: 0.05)
        let first = Self.run(configuration, seed: 7, count: 10_000)
        let second = Self.run(configuration, seed: 7, count: 10_000)
        let other = Self.run(configuration, seed: 8, count: 10_000)

        #expect(first.statistics == second.statistics)
        #expect(first.delivered == second.delivered)
        #expect(first.delivered != other.delivered)
    }

    @Test func corruptionFlipsExactlyOneBitAndLeavesTheSendersCopyAlone() {
        let (a, b) = MemoryLink.pair()
        let faulty = FaultInjector(wrapping: b, configuration: .init(corrupt: 1), seed: 3)
        var generator = SeededGenerator(seed: 99)
        for number in 0..<1000 {
            let sent = TestDatagram.numbered(UInt64(number), size: Int.random(in: 8...1500, using: &generator))
            let original = Array(sent.readableBytesView)
            a.send(sent, now: .zero)
            guard let received = faulty.receive(now: .zero) else {
                Issue.record("datagram \(number) was not delivered")
                return
            }
            let flippedBits = zip(received.readableBytesView, original).map { ($0 ^ $1).nonzeroBitCount }.reduce(0, +)
            #expect(received.readableBytes == original.count)
            #expect(flippedBits == 1)
            #expect(Array(sent.readableBytesView) == original, "the sender's buffer must not change")
        }
        #expect(faulty.statistics.corrupted == 1000)
    }

    @Test func corruptionIsSpreadOverEveryBitPosition() {
        let (a, b) = MemoryLink.pair()
        let faulty = FaultInjector(wrapping: b, configuration: .init(corrupt: 1), seed: 5)
        var hits = [Int](repeating: 0, count: 16 * 8)
        var zeros = ByteBufferAllocator().buffer(capacity: 16)
        zeros.writeRepeatingByte(0, count: 16)
        for _ in 0..<10_000 {
            a.send(zeros, now: .zero)
            let received = faulty.receive(now: .zero)!
            for (index, byte) in received.readableBytesView.enumerated() where byte != 0 {
                hits[index * 8 + byte.trailingZeroBitCount] += 1
            }
        }
        #expect(hits.allSatisfy { $0 > 0 })
        #expect(hits.reduce(0, +) == 10_000)
    }

    @Test func reorderedDatagramsAreOvertakenByLaterOnes() {
        let configuration = FaultInjector.Configuration(reorder: 0.2, reorderDelay: .milliseconds(5))
        let (delivered, statistics) = Self.run(configuration, seed: 11, count: 1000)
        let numbers = delivered.map { TestDatagram.number(of: $0)! }

        #expect(numbers.sorted() == Array(0..<1000), "nothing lost or duplicated")
        #expect(numbers != Array(0..<1000))
        let overtaken = numbers.indices.dropLast().filter { numbers[$0] > numbers[$0 + 1] }.count
        #expect(overtaken > 0)
        #expect(UInt64(overtaken) <= statistics.reordered)
    }

    @Test func aHeldDatagramIsAnnouncedByNextArrival() {
        let (a, b) = MemoryLink.pair()
        let faulty = FaultInjector(wrapping: b, configuration: .init(reorder: 1, reorderDelay: .milliseconds(10)), seed: 1)
        a.send(TestDatagram.numbered(1), now: .milliseconds(100))
        #expect(faulty.nextArrival == .milliseconds(100))
        #expect(faulty.receive(now: .milliseconds(100)) == nil)

        let release = faulty.nextArrival
        #expect(release.map { $0 >= .milliseconds(105) && $0 <= .milliseconds(115) } == true)
        #expect(faulty.receive(now: release! + .nanoseconds(-1)) == nil)
        #expect(faulty.receive(now: release!).flatMap(TestDatagram.number) == 1)
        #expect(faulty.nextArrival == nil)
    }

    @Test func heldDatagramsAreReleasedInTimeOrderWhenPolledLate() {
        let (a, b) = MemoryLink.pair(.init(delay: .milliseconds(1)))
        let faulty = FaultInjector(wrapping: b, configuration: .init(reorder: 1, reorderDelay: .zero), seed: 1)
        a.send(TestDatagram.numbered(1), now: .milliseconds(0))
        a.send(TestDatagram.numbered(2), now: .milliseconds(3))
        // Both arrived and were released before the poll at 10 ms; they come out in the order of their releases.
        #expect(faulty.receive(now: .milliseconds(10)).flatMap(TestDatagram.number) == 1)
        #expect(faulty.receive(now: .milliseconds(10)).flatMap(TestDatagram.number) == 2)
        #expect(faulty.receive(now: .milliseconds(10)) == nil)
        #expect(faulty.statistics.reordered == 2)
    }

    /// An ECN router (RFC 3168 §5): what it would drop it marks CE instead, if the datagram is
    /// ECN-capable; Not-ECT datagrams are still dropped. The IPv4 header checksum stays valid.
    @Test(arguments: [4, 6])
    func markInsteadOfDropMarksOnlyECNCapableDatagrams(ip: Int) throws {
        let (source, destination): (IPAddress, IPAddress) = ip == 4
            ? (.v4(IPv4Address(198, 18, 0, 1)), .v4(IPv4Address(198, 18, 0, 2)))
            : (IPAddress("2001:db8::1")!, IPAddress("2001:db8::2")!)
        let header = TCPHeader(
            sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(1), acknowledgmentNumber: SequenceNumber(1),
            flags: .ack, window: 100)
        let (a, b) = MemoryLink.pair()
        let router = FaultInjector(wrapping: b, configuration: .init(loss: 1, markInsteadOfDrop: true), seed: 1)
        var delivered: [ECNCodepoint] = []
        for codepoint in [ECNCodepoint.ect0, .notECT, .ect1, .congestionExperienced] {
            a.send(PacketBuffer.tcpDatagram(
                header: header, payload: ByteBuffer(bytes: [7, 7, 7]), source: source, destination: destination, ecn: codepoint),
                   now: .zero)
            while let packet = router.receive(now: .zero) {
                let parsed = try IPDatagram.parse(packet, verifyChecksum: true)
                #expect(Array(parsed.payload.readableBytesView.suffix(3)) == [7, 7, 7])
                delivered.append(parsed.ecn)
            }
        }
        #expect(delivered == [.congestionExperienced, .congestionExperienced])
        #expect(router.statistics.marked == 2)
        #expect(router.statistics.dropped == 2)
    }

    @Test func duplicationDeliversTwice() {
        let (delivered, statistics) = Self.run(.init(duplicate: 1), seed: 1, count: 100)
        #expect(delivered.map { TestDatagram.number(of: $0)! } == (0..<100).flatMap { [UInt64($0), UInt64($0)] })
        #expect(statistics.duplicated == 100)
    }

    @Test func totalLossDeliversNothing() {
        let (delivered, statistics) = Self.run(.init(loss: 1), seed: 1, count: 100)
        #expect(delivered.isEmpty)
        #expect(statistics.dropped == 100)
    }

    @Test func noFaultsPassesEverythingThroughInOrder() {
        let (delivered, statistics) = Self.run(.init(), seed: 1, count: 100)
        #expect(delivered.map { TestDatagram.number(of: $0)! } == Array(0..<100))
        #expect(statistics == FaultStatistics(received: 100))
    }

    @Test func aLinkThatMayCorruptDoesNotOfferChecksumOffload() {
        let (_, b) = MemoryLink.pair()
        #expect(b.capabilities.checksumOffload)
        #expect(FaultInjector(wrapping: b, configuration: .init(loss: 0.5), seed: 1).capabilities.checksumOffload)
        #expect(!FaultInjector(wrapping: b, configuration: .init(corrupt: 0.01), seed: 1).capabilities.checksumOffload)
    }

    @Test func sendingPassesThrough() {
        let (a, b) = MemoryLink.pair()
        let faulty = FaultInjector(wrapping: a, configuration: .init(loss: 1), seed: 1)
        faulty.send(TestDatagram.numbered(5), now: .zero)
        #expect(b.receive(now: .zero).flatMap(TestDatagram.number) == 5)
        #expect(faulty.mtu == a.mtu)
    }
}

extension FaultStatistics {
    init(received: UInt64) {
        self.init()
        self.received = received
    }
}
