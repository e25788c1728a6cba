@testable import TCPIP
import TCPIPWire
import Testing

/// The output loop sizes each segment's payload with `segmentOptionsLength(now:)`, which builds no
/// options when there are no SACK blocks to report; `sendSegment` then writes
/// `segmentOptions(now:)`. The two must agree, or a segment would overrun the MSS (or fall short of it).
@Suite struct SegmentOptionsLengthTests {
    static let peers = [
        TCPTester.Peer(),
        TCPTester.Peer(timestampValue: 1000),
        TCPTester.Peer(sackPermitted: true),
        TCPTester.Peer(sackPermitted: true, timestampValue: 1000),
    ]

    /// (the shortcut's length, the options' length) for the tester's connection.
    static func lengths(_ t: TCPTester) throws -> (shortcut: Int, built: Int) {
        try #require(t.stack.connections.withElement(t.connection!.handle) { connection in
            (connection.segmentOptionsLength(now: t.now), connection.segmentOptions(now: t.now).encodedLength)
        })
    }

    @Test(arguments: peers)
    func agreesWithTheOptionsSent(peer: TCPTester.Peer) throws {
        var t = try TCPTester(.established, peer: peer)
        var (shortcut, built) = try Self.lengths(t)
        #expect(shortcut == built)
        #expect(built == (peer.timestampValue != nil ? 12 : 0))

        // Out-of-order data: with SACK, a block to report; the duplicate ACK it draws carries
        // the options measured.
        try t.inject("+.01 < . 1001:2001(1000) ack 1 win 65535")
        let duplicateAck = try #require(t.takeSegments().last)
        (shortcut, built) = try Self.lengths(t)
        #expect(shortcut == built)
        #expect(duplicateAck.options.encodedLength == shortcut)
        if peer.sackPermitted { #expect(built > (peer.timestampValue != nil ? 12 : 0)) }

        // A D-SACK block waiting for the next ACK (RFC 2883), with and without the out-of-order block.
        t.stack.connections.withElement(t.connection!.handle) { connection in
            connection.pendingDuplicateSACK = SACKBlock(start: connection.rcvNxt - 100, end: connection.rcvNxt)
        }
        (shortcut, built) = try Self.lengths(t)
        #expect(shortcut == built)
        try t.inject("+.01 < . 1:1001(1000) ack 1 win 65535")
        _ = t.takeSegments()
        t.stack.connections.withElement(t.connection!.handle) { connection in
            connection.pendingDuplicateSACK = SACKBlock(start: connection.rcvNxt - 100, end: connection.rcvNxt)
        }
        (shortcut, built) = try Self.lengths(t)
        #expect(shortcut == built)
    }
}
