import NIOCore
import Testing
import TCPIPWire
@testable import TCPIP

@Suite struct InitialSequenceNumberTests {
    private let client = Endpoint(.v4(IPv4Address(198, 18, 0, 2)), 41234)
    private let server = Endpoint(.v4(IPv4Address(198, 18, 0, 1)), 5001)
    private let now = Instant(nanoseconds: 1_000_000_000)

    private func makeGenerator(seed: UInt64 = 1) -> InitialSequenceNumberGenerator {
        var random = SeededGenerator(seed: seed)
        return InitialSequenceNumberGenerator(generator: &random)
    }

    @Test func sameTupleAndTimeGiveTheSameISN() {
        let isns = makeGenerator()
        let tuple = FourTuple(local: server, remote: client)
        #expect(isns.initialSequenceNumber(for: tuple, now: now) == isns.initialSequenceNumber(for: tuple, now: now))
    }

    @Test func isnDiffersByTuple() {
        // RFC 6528 §3: F depends on every element of the connection-id.
        let isns = makeGenerator()
        var otherPort = client
        otherPort.port += 1
        let v6 = Endpoint(.v6(IPv6Address(high: 0x2001_0DB8_0000_0000, low: 2)), 41234)
        let tuples = [
            FourTuple(local: server, remote: client),
            FourTuple(local: client, remote: server),
            FourTuple(local: server, remote: otherPort),
            FourTuple(local: server, remote: v6),
        ]
        let values = Set(tuples.map { isns.initialSequenceNumber(for: $0, now: now) })
        #expect(values.count == tuples.count)
    }

    @Test func isnGrowsWithTheFourMicrosecondClock() {
        // RFC 6528 §3: M ticks every 4 microseconds; for one tuple ISNs advance with it.
        let isns = makeGenerator()
        let tuple = FourTuple(local: server, remote: client)
        let first = isns.initialSequenceNumber(for: tuple, now: now)
        #expect(isns.initialSequenceNumber(for: tuple, now: now + .nanoseconds(3_999)) == first)
        #expect(isns.initialSequenceNumber(for: tuple, now: now + .microseconds(4)) == first + UInt32(1))
        #expect(isns.initialSequenceNumber(for: tuple, now: now + .seconds(1)) == first + UInt32(250_000))
        // M is truncated to 32 bits: it wraps about every 4.77 hours, and so does the ISN.
        let wrapPeriod = TimeAmount.nanoseconds(4_000 * (Int64(1) << 32))
        #expect(isns.initialSequenceNumber(for: tuple, now: now + wrapPeriod) == first)
    }

    /// One keyed hash gives a connection both numbers: RFC 6528's F in its low half, the RFC 7323
    /// §5.4 timestamp offset in its high half. Each is what its own question gets, the offset moves
    /// with the 4-tuple but not with the clock, and it is not the ISN's half.
    @Test func oneHashGivesTheISNAndTheTimestampOffset() {
        let isns = makeGenerator()
        let tuple = FourTuple(local: server, remote: client)
        let numbers = isns.numbers(for: tuple, now: now)
        #expect(numbers.iss == isns.initialSequenceNumber(for: tuple, now: now))
        #expect(numbers.timestampOffset == isns.timestampOffset(for: tuple))
        #expect(isns.numbers(for: tuple, now: now + .seconds(7)).timestampOffset == numbers.timestampOffset)
        let m = UInt32(truncatingIfNeeded: now.nanoseconds / 4_000)
        #expect(numbers.iss.rawValue &- m != numbers.timestampOffset)
        var otherPort = client
        otherPort.port += 1
        let offsets = Set([client, otherPort].map { isns.timestampOffset(for: FourTuple(local: server, remote: $0)) })
        #expect(offsets.count == 2)
        #expect(makeGenerator(seed: 2).timestampOffset(for: tuple) != numbers.timestampOffset)
    }

    @Test func theSecretComesFromTheGenerator() {
        let tuple = FourTuple(local: server, remote: client)
        #expect(
            makeGenerator(seed: 1).initialSequenceNumber(for: tuple, now: now)
                == makeGenerator(seed: 1).initialSequenceNumber(for: tuple, now: now)
        )
        #expect(
            makeGenerator(seed: 1).initialSequenceNumber(for: tuple, now: now)
                != makeGenerator(seed: 2).initialSequenceNumber(for: tuple, now: now)
        )
    }
}
