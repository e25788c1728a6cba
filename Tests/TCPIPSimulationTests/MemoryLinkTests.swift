import NIOCore
import TCPIP
import TCPIPSimulation
import Testing
import TestSupport

@Suite struct MemoryLinkTests {
    @Test func deliversAfterThePropagationDelay() {
        let (a, b) = MemoryLink.pair(.init(delay: .milliseconds(10)))
        a.send(TestDatagram.numbered(1), now: .milliseconds(5))

        #expect(b.nextArrival == .milliseconds(15))
        #expect(b.receive(now: .milliseconds(14)) == nil)
        #expect(a.receive(now: .milliseconds(100)) == nil, "nothing travels back to the sender")
        let packet = b.receive(now: .milliseconds(15))
        #expect(packet.flatMap(TestDatagram.number) == 1)
        #expect(b.nextArrival == nil)
        #expect(b.receive(now: .milliseconds(100)) == nil)
    }

    @Test func zeroDelayAndInfiniteBandwidthDeliverAtOnce() {
        let (a, b) = MemoryLink.pair()
        b.send(TestDatagram.numbered(7), now: .milliseconds(3))
        #expect(a.nextArrival == .milliseconds(3))
        #expect(a.receive(now: .milliseconds(3)).flatMap(TestDatagram.number) == 7)
        #expect(a.capabilities.checksumOffload)
        #expect(a.mtu == 1500)
    }

    @Test func serializesBackToBackPacketsAtTheBandwidth() {
        // 1500 bytes at 12 Mbit/s take exactly 1 ms on the wire.
        let (a, b) = MemoryLink.pair(.init(delay: .milliseconds(5), bandwidthBitsPerSecond: 12_000_000))
        for number in 1...3 {
            a.send(TestDatagram.numbered(UInt64(number), size: 1500), now: .zero)
        }
        var arrivals: [Instant] = []
        while let next = b.nextArrival {
            arrivals.append(next)
            #expect(b.receive(now: next) != nil)
        }
        #expect(arrivals == [.milliseconds(6), .milliseconds(7), .milliseconds(8)])
    }

    @Test func anIdleWireStartsSerializingWhenThePacketIsSent() {
        let (a, b) = MemoryLink.pair(.init(bandwidthBitsPerSecond: 12_000_000))
        a.send(TestDatagram.numbered(1, size: 1500), now: .zero)
        a.send(TestDatagram.numbered(2, size: 750), now: .milliseconds(10))
        #expect(b.receive(now: .milliseconds(1)).flatMap(TestDatagram.number) == 1)
        #expect(b.nextArrival == .microseconds(10_500))
    }

    @Test func serializationTimeRoundsUpToTheNanosecond() {
        // 8 bytes at 3 bit/s: 64/3 s = 21.333…s, delivered at the first whole nanosecond after.
        let (a, b) = MemoryLink.pair(.init(bandwidthBitsPerSecond: 3))
        a.send(TestDatagram.numbered(1, size: 8), now: .zero)
        #expect(b.nextArrival == Instant(nanoseconds: 21_333_333_334))
    }

    @Test func dropsTheTailWhenTheQueueIsFull() {
        let (a, b) = MemoryLink.pair(.init(bandwidthBitsPerSecond: 12_000_000, queueLimitBytes: 3000))
        a.send(TestDatagram.numbered(1, size: 1500), now: .zero)
        a.send(TestDatagram.numbered(2, size: 1500), now: .zero)
        #expect(a.queuedBytes(now: .zero) == 3000)
        a.send(TestDatagram.numbered(3, size: 1500), now: .zero)
        #expect(a.statistics.droppedQueueFull == 1)

        // After 1 ms the first has left the queue, so there is room again.
        #expect(a.queuedBytes(now: .milliseconds(1)) == 1500)
        a.send(TestDatagram.numbered(4, size: 1500), now: .milliseconds(1))
        #expect(a.statistics.droppedQueueFull == 1)

        var delivered: [UInt64] = []
        while let next = b.nextArrival, let packet = b.receive(now: next) {
            delivered.append(TestDatagram.number(of: packet)!)
        }
        #expect(delivered == [1, 2, 4])
        #expect(b.nextArrival == nil)
        #expect(a.statistics.packetsSent == 4)
        #expect(a.statistics.bytesSent == 6000)
        #expect(b.statistics.packetsDelivered == 3)
        #expect(b.statistics.bytesDelivered == 4500)
    }

    @Test func dropsDatagramsLargerThanTheMTU() {
        let (a, b) = MemoryLink.pair(.init(mtu: 1280))
        a.send(TestDatagram.numbered(1, size: 1281), now: .zero)
        a.send(TestDatagram.numbered(2, size: 1280), now: .zero)
        #expect(b.receive(now: .zero).flatMap(TestDatagram.number) == 2)
        #expect(b.receive(now: .zero) == nil)
        #expect(a.statistics.droppedTooBig == 1)
        #expect(a.statistics.packetsSent == 2)
        #expect(b.statistics.packetsDelivered == 1)
    }

    @Test func deliversInOrderInEachDirectionIndependently() {
        let (a, b) = MemoryLink.pair(.init(delay: .milliseconds(2), bandwidthBitsPerSecond: 100_000_000))
        var generator = SeededGenerator(seed: 42)
        var now = Instant.zero
        for number in 0..<1000 {
            let size = Int.random(in: 20...1500, using: &generator)
            a.send(TestDatagram.numbered(UInt64(number), size: size), now: now)
            b.send(TestDatagram.numbered(UInt64(10_000 + number), size: 1500 - size + 20), now: now)
            now += .microseconds(Int64.random(in: 0...200, using: &generator))
        }
        var atB: [UInt64] = []
        var atA: [UInt64] = []
        var clock = Instant.zero
        while let next = [a.nextArrival, b.nextArrival].compactMap({ $0 }).min() {
            #expect(next >= clock, "arrivals never go back in time")
            clock = next
            while let packet = b.receive(now: clock) { atB.append(TestDatagram.number(of: packet)!) }
            while let packet = a.receive(now: clock) { atA.append(TestDatagram.number(of: packet)!) }
        }
        #expect(atB == Array(0..<1000))
        #expect(atA == Array(10_000..<11_000))
    }

    @Test func aClockThatStepsBackDoesNotReorder() {
        let (a, b) = MemoryLink.pair(.init(delay: .milliseconds(1)))
        a.send(TestDatagram.numbered(1), now: .milliseconds(10))
        a.send(TestDatagram.numbered(2), now: .milliseconds(5))
        #expect(b.receive(now: .milliseconds(11)).flatMap(TestDatagram.number) == 1)
        #expect(b.receive(now: .milliseconds(11)).flatMap(TestDatagram.number) == 2)
    }

    @Test func theSenderMayReuseItsBufferAfterSending() {
        let (a, b) = MemoryLink.pair()
        var packet = TestDatagram.numbered(1)
        a.send(packet, now: .zero)
        packet.setInteger(UInt64(99), at: 0)
        #expect(b.receive(now: .zero).flatMap(TestDatagram.number) == 1)
    }
}
