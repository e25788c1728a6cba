import Testing
import TCPIPWire

@Suite struct SequenceNumberTests {
    @Test func arithmeticWraps() {
        let nearTop = SequenceNumber(0xFFFF_FFF0)
        #expect(nearTop + UInt32(0x20) == SequenceNumber(0x10))
        #expect(nearTop + 0x20 == SequenceNumber(0x10))
        #expect(nearTop + -0x10 == SequenceNumber(0xFFFF_FFE0))
        #expect(SequenceNumber(0x10) - UInt32(0x20) == nearTop)
        var advancing = nearTop
        advancing += UInt32(0x10)
        #expect(advancing == SequenceNumber(0))
        #expect(nearTop.distance(to: SequenceNumber(0x10)) == 0x20)
        #expect(SequenceNumber(0x10).distance(to: nearTop) == -0x20)
        #expect(nearTop.octets(to: SequenceNumber(0x10)) == 0x20)
    }

    @Test func orderingAcrossTheWrap() {
        let before = SequenceNumber(0xFFFF_FFF0)
        let after = SequenceNumber(0x10)
        #expect(before.isBefore(after))
        #expect(before.isAtOrBefore(after))
        #expect(after.isAfter(before))
        #expect(after.isAtOrAfter(before))
        #expect(!after.isBefore(before))
        #expect(!before.isBefore(before))
        #expect(before.isAtOrBefore(before))
        #expect(before.isAtOrAfter(before))
        #expect(SequenceNumber.latest(before, after) == after)
        #expect(SequenceNumber.earliest(before, after) == before)
        #expect(SequenceNumber.latest(after, before) == after)
    }

    @Test func windowAcrossTheWrap() {
        let start = SequenceNumber(0xFFFF_FFF0)
        #expect(start.isInWindow(start: start, length: 0x20))
        #expect(SequenceNumber(0).isInWindow(start: start, length: 0x20))
        #expect(SequenceNumber(0xF).isInWindow(start: start, length: 0x20))
        #expect(!SequenceNumber(0x10).isInWindow(start: start, length: 0x20))
        #expect(!SequenceNumber(0xFFFF_FFEF).isInWindow(start: start, length: 0x20))
        // An empty window contains nothing, not even its start (RFC 9293 §3.10.7.4's table).
        #expect(!start.isInWindow(start: start, length: 0))
    }

    /// The acknowledgment test `snd.una < seg.ack =< snd.nxt` across the wrap.
    @Test func betweenAcrossTheWrap() {
        let una = SequenceNumber(0xFFFF_FFF0)
        let nxt = SequenceNumber(0x10)
        #expect(!una.isBetween(after: una, atOrBefore: nxt))
        #expect(SequenceNumber(0xFFFF_FFF1).isBetween(after: una, atOrBefore: nxt))
        #expect(SequenceNumber(0).isBetween(after: una, atOrBefore: nxt))
        #expect(nxt.isBetween(after: una, atOrBefore: nxt))
        #expect(!SequenceNumber(0x11).isBetween(after: una, atOrBefore: nxt))
        #expect(!SequenceNumber(0xFFFF_FFEF).isBetween(after: una, atOrBefore: nxt))
        // Nothing is in flight: no acknowledgment is acceptable.
        #expect(!una.isBetween(after: una, atOrBefore: una))
        #expect(!SequenceNumber(0xFFFF_FFF1).isBetween(after: una, atOrBefore: una))
    }

    @Test func description() {
        #expect(SequenceNumber(0xFFFF_FFFF).description == "4294967295")
    }
}
