import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// Connection tracking on real exchanges: each datagram built with the wire types, parsed, tracked.
@Suite struct ConnectionTrackerTests {
    typealias P = FilterPackets
    static let clientAddress = IPAddress.v4(P.client4), serverAddress = IPAddress.v4(P.server4)
    /// Sequence numbers near 2^32, so that the window checks wrap.
    static let clientISN: UInt32 = 0xFFFF_FF00, serverISN: UInt32 = 0xFFFF_FFF0

    var tracker = ConnectionTracker()
    var now = Instant.zero
    let tuple = FlowTuple(source: clientAddress, destination: serverAddress, protocolNumber: IPProtocolNumber.tcp, sourcePort: 40000, destinationPort: 80)

    /// The client's segment: `seq`/`ack` relative to the ISNs.
    mutating func client(_ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0, length: Int = 0, window: UInt16 = 65535, scale: UInt8? = nil)
        -> ConnectionState?
    {
        let packet = P.tcp(from: Self.clientAddress, to: Self.serverAddress, 40000, 80, flags: flags, seq: Self.clientISN &+ seq,
                           ack: flags.contains(.ack) ? Self.serverISN &+ ack : 0, window: window, windowScale: scale, length: length)
        return tracker.track(packet, now: now)
    }

    mutating func server(_ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0, length: Int = 0, window: UInt16 = 65535, scale: UInt8? = nil)
        -> ConnectionState?
    {
        let packet = P.tcp(from: Self.serverAddress, to: Self.clientAddress, 80, 40000, flags: flags, seq: Self.serverISN &+ seq,
                           ack: flags.contains(.ack) ? Self.clientISN &+ ack : 0, window: window, windowScale: scale, length: length)
        return tracker.track(packet, now: now)
    }

    var state: TrackedTCPState? { tracker.tcpState(of: tuple) }

    mutating func handshake() {
        #expect(client(.syn, seq: 0, scale: 7) == .new)
        #expect(state == .synSent)
        #expect(server([.syn, .ack], seq: 0, ack: 1, scale: 7) == .established)
        #expect(state == .synReceived)
        #expect(client(.ack, seq: 1, ack: 1, window: 512) == .established)
        #expect(state == .established)
    }

    @Test mutating func handshakeDataAndClose() {
        handshake()
        #expect(client([.ack, .psh], seq: 1, ack: 1, length: 1000, window: 512) == .established)
        #expect(server(.ack, seq: 1, ack: 1001, window: 512) == .established)
        #expect(server([.ack, .psh], seq: 1, ack: 1001, length: 3000, window: 512) == .established)
        #expect(client(.ack, seq: 1001, ack: 3001, window: 512) == .established)
        // The client closes first: FIN_WAIT; its FIN acknowledged: CLOSE_WAIT; the server's FIN: LAST_ACK;
        // the last acknowledgment: TIME_WAIT.
        #expect(client([.fin, .ack], seq: 1001, ack: 3001, window: 512) == .established)
        #expect(state == .finWait)
        #expect(server(.ack, seq: 3001, ack: 1002, window: 512) == .established)
        #expect(state == .closeWait)
        #expect(server([.fin, .ack], seq: 3001, ack: 1002, window: 512) == .established)
        #expect(state == .lastAck)
        #expect(client(.ack, seq: 1002, ack: 3002, window: 512) == .established)
        #expect(state == .timeWait)
        // A new SYN on the same tuple after TIME_WAIT opens again.
        #expect(client(.syn, seq: 50_000) == .established || state == .synSent)
        #expect(state == .synSent)
    }

    @Test mutating func resetCloses() {
        handshake()
        #expect(server([.rst, .ack], seq: 1, ack: 1) == .established)
        #expect(state == .close)
        now = now + .seconds(11)
        // Closed and expired: a stray ACK is no longer part of anything.
        #expect(client(.ack, seq: 1, ack: 1) == .invalid)
    }

    @Test mutating func outOfWindowSegmentsAreInvalid() {
        handshake()
        // The server's window is 65535 << 7; a segment far beyond what it allowed is invalid.
        #expect(client(.ack, seq: 1 &+ 65535 &* 128 &+ 100_000, ack: 1) == .invalid)
        // An acknowledgment of data the server never sent.
        #expect(client(.ack, seq: 1, ack: 10_000) == .invalid)
        // Data far behind what was already sent (more than a window back).
        #expect(server(.ack, seq: 0 &- 20_000_000, ack: 1) == .invalid)
        #expect(state == .established)
        #expect(tracker.counters.invalid == 3)
        // An in-window segment is still fine.
        #expect(client(.ack, seq: 1, ack: 1, length: 100, window: 512) == .established)
    }

    @Test mutating func synAckMustAcknowledgeTheSYN() {
        #expect(client(.syn, seq: 0) == .new)
        #expect(server([.syn, .ack], seq: 0, ack: 7) == .invalid)
        #expect(state == .synSent)
        #expect(client(.syn, seq: 0) == .new)  // a retransmitted SYN is still new
    }

    @Test mutating func midStreamSegmentsOfUnknownFlowsAreInvalid() {
        #expect(client(.ack, seq: 1, ack: 1) == .invalid)
        #expect(client([.syn, .ack], seq: 0, ack: 1) == .invalid)
        #expect(tracker.count == 0)
    }

    @Test mutating func icmpErrorsAreRelatedToTheFlowTheyQuote() {
        handshake()
        // A router between them reports the client's segment: it quotes client → server.
        let quote = P.quote(from: Self.clientAddress, to: Self.serverAddress, 40000, 80, seq: Self.clientISN &+ 1)
        let error = P.icmp(from: .v4(IPv4Address(198, 18, 2, 1)), to: Self.clientAddress, type: 3, code: 4, body: quote)
        #expect(error.quoted?.destinationPort == 80)
        #expect(tracker.track(error, now: now) == .related)
        let unrelated = P.icmp(from: .v4(IPv4Address(198, 18, 2, 1)), to: Self.clientAddress, type: 11,
                               body: P.quote(from: Self.clientAddress, to: Self.serverAddress, 40001, 80, seq: 0))
        #expect(tracker.track(unrelated, now: now) == .invalid)
    }

    @Test mutating func udpAndEchoFlows() {
        #expect(tracker.track(P.udp(5353, 53), now: now) == .new)
        #expect(tracker.track(P.udp(5353, 53), now: now) == .new)
        #expect(tracker.track(P.udp(from: Self.serverAddress, to: Self.clientAddress, 53, 5353), now: now) == .established)
        #expect(tracker.track(P.udp(5353, 53), now: now) == .established)
        // Echo: the identifier is the flow; a reply with another identifier is not a reply.
        #expect(tracker.track(P.icmp(type: 8, identifier: 99), now: now) == .new)
        #expect(tracker.track(P.icmp(from: Self.serverAddress, to: Self.clientAddress, type: 0, identifier: 99), now: now) == .established)
        #expect(tracker.track(P.icmp(from: Self.serverAddress, to: Self.clientAddress, type: 0, identifier: 98), now: now) == .invalid)
        // UDP flows expire: 30 s unreplied, 120 s once replied.
        now = now + .seconds(31)
        #expect(tracker.track(P.udp(5354, 53), now: now) == .new)
        #expect(tracker.track(P.udp(5353, 53), now: now) == .established)
        now = now + .seconds(121)
        #expect(tracker.track(P.udp(5353, 53), now: now) == .new)
        #expect(tracker.counters.expired >= 1)
    }

    @Test mutating func aFullTableRefusesNewFlows() {
        tracker = ConnectionTracker(capacity: 2)
        #expect(tracker.track(P.udp(1, 53), now: now) == .new)
        #expect(tracker.track(P.udp(2, 53), now: now) == .new)
        #expect(tracker.track(P.udp(3, 53), now: now) == nil)
        #expect(tracker.counters.tableFull == 1)
        // Existing flows go on; once one expires there is room.
        #expect(tracker.track(P.udp(1, 53), now: now) == .new)
        now = now + .seconds(31)
        #expect(tracker.track(P.udp(3, 53), now: now) == .new)
    }

    @Test func aFullTableDropsThroughTheFilter() throws {
        var filter = try PacketFilter(
            FilterRuleset(parsing: "table ip t { chain c { type filter hook input priority 0; ct state new accept } }"),
            tracker: ConnectionTracker(capacity: 1))
        var first = P.udp(1, 53), second = P.udp(2, 53)
        #expect(filter.evaluate(&first, hook: .input, now: .zero) == .accept)
        #expect(filter.evaluate(&second, hook: .input, now: .zero) == .drop)
        #expect(filter.droppedTableFull == 1)
    }
}
