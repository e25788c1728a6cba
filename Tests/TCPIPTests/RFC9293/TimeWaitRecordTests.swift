import NIOCore
import TCPIP
import Testing

/// TIME-WAIT kept as a compact record once the application has let go of the connection
/// (`Stack.release`, a socket's close()): RFC 9293 §3.10.7.4 must hold exactly as for a whole TCB.
@Suite struct TimeWaitRecordTests {
    /// TIME-WAIT by the active close (FIN-WAIT-2, then the peer's FIN), with the application gone
    /// (`release` before the FIN arrives) or still holding the connection.
    static func timeWait(released: Bool, peer: TCPTester.Peer = TCPTester.Peer()) throws -> TCPTester {
        var t = try TCPTester(.finWait2, peer: peer)
        if released { try t.app.release() }
        try t.inject("+0 < F. 1:1(0) ack 2 win \(peer.window) \(t.segmentOptions)")
        try t.expect("+0 > . 2:2(0) ack 2")
        return t
    }

    @Test func releasedConnectionBecomesARecord() throws {
        let t = try Self.timeWait(released: true)
        #expect(t.stack.connectionCount == 0)
        #expect(t.stack.timeWaitCount == 1)
        #expect(t.stack.memoryInUse == Stack.timeWaitEntryBytes)
        #expect(Stack.timeWaitEntryBytes * 4 < Stack.connectionEntryBytes)
        // The handle no longer names a connection: the application let go of it.
        #expect(t.stack.state(t.connection!) == nil)
    }

    @Test func connectionStillHeldStaysWhole() throws {
        let t = try Self.timeWait(released: false)
        #expect(t.stack.connectionCount == 1)
        #expect(t.stack.timeWaitCount == 0)
        #expect(t.state.rfcName == "TIME-WAIT")
    }

    /// Releasing a connection already in TIME-WAIT reduces it then.
    @Test func releaseInTimeWait() throws {
        var t = try Self.timeWait(released: false)
        try t.inject("+1 < F. 1:1(0) ack 2 win 65535")
        try t.expect("+0 > . 2:2(0) ack 2")
        try t.app.release()
        #expect(t.stack.timeWaitCount == 1)
        #expect(t.stack.connectionCount == 0)
    }

    /// Past `maximumTimeWaitRecords` (Linux's tcp_max_tw_buckets) a released connection that reaches
    /// TIME-WAIT still acknowledges the FIN, then closes at once and is counted; the tuple is then
    /// CLOSED, and a late segment meets an RST (§3.10.7.1).
    @Test func pastTheRecordLimitTheConnectionClosesAtOnce() throws {
        var t = try TCPTester(.finWait2) { $0.maximumTimeWaitRecords = 0 }
        try t.app.release()
        try t.inject("+0 < F. 1:1(0) ack 2 win 65535")
        try t.expect("+0 > . 2:2(0) ack 2")
        #expect(t.stack.timeWaitCount == 0)
        #expect(t.stack.connectionCount == 0)
        #expect(t.stack.counters.timeWaitOverflows == 1)
        #expect(t.stack.memoryInUse == 0)
        try t.inject("+1 < F. 1:1(0) ack 2 win 65535")
        try t.expect("+0 > R 2:2(0)")
    }

    /// §3.10.8: the record is forgotten after 2·MSL; a retransmitted FIN restarts the wait (eighth),
    /// exactly as for the TCB.
    @Test func retransmittedFinRestartsTheRecordsWait() throws {
        var t = try Self.timeWait(released: true)
        try t.inject("+30 < F. 1:1(0) ack 2 win 65535")
        try t.expect("+0 > . 2:2(0) ack 2")
        #expect(t.stack.timeWaitCount == 1)
        try t.expectNothing(for: .seconds(59))
        #expect(t.stack.timeWaitCount == 1)
        try t.expectNothing(for: .seconds(1))
        #expect(t.stack.timeWaitCount == 0)
        #expect(t.stack.connectionCount == 0)
        try t.inject("+0 < . 2:2(0) ack 2 win 65535")
        try t.expect("+0 > R 2:2(0)")
    }

    /// Every kind of segment that can reach TIME-WAIT gets the same answer from the record as from
    /// the whole TCB — with and without timestamps (PAWS, RFC 7323 §5), SACK and window scaling —
    /// except a SYN that starts a new incarnation, which only a record (a connection let go of) takes.
    @Test(arguments: [
        TCPTester.Peer(),
        TCPTester.Peer(windowScale: 7, sackPermitted: true, timestampValue: 5000),
    ])
    func recordAnswersAsTheTCBDoes(peer: TCPTester.Peer) throws {
        var whole = try Self.timeWait(released: false, peer: peer)
        var record = try Self.timeWait(released: true, peer: peer)
        #expect(record.stack.timeWaitCount == 1)
        let options = whole.segmentOptions
        let oldTimestamp = peer.timestampValue.map { "<nop,nop,TS val \($0 &- 1) ecr 0>" } ?? ""
        let probes = [
            "+1 < F. 1:1(0) ack 2 win 65535 \(options)",           // retransmitted FIN: ACK, restart
            "+1 < . 2:2(0) ack 2 win 65535 \(options)",            // duplicate ACK: nothing
            "+1 < P. 1:11(10) ack 2 win 65535 \(options)",         // old data: ACK
            "+1 < P. 2:12(10) ack 2 win 65535 \(options)",         // data after the FIN: ignored
            "+1 < P. 900000:900010(10) ack 2 win 65535 \(options)", // out of window: ACK
            "+1 < . 2:2(0) ack 1000 win 65535 \(options)",         // ACK of nothing sent: ACK
            "+1 < . 2:2(0) ack 2 win 65535 \(oldTimestamp)",       // PAWS (with timestamps): ACK
            "+1 < R 2:2(0) win 0",                                 // RST: ignored (RFC 1337)
            "+1 < R 5:5(0) win 0",                                 // RST in window: ignored (RFC 1337)
            "+1 < S 1:1(0) win 65535 <mss 1460>",                  // old SYN: ACK (a new one reopens: TimeWaitReopenTests)
            "+1 < F. 1:1(0) ack 2 win 65535 \(options)",
        ]
        for probe in probes {
            try whole.inject(probe)
            try record.inject(probe)
            let expected = whole.takeSegments()
            #expect(record.takeSegments() == expected, "answer to `\(probe)`")
            // The record also counts the SYN it refused to reopen on (RFC 6191 §2).
            var counters = record.stack.counters
            counters.timeWaitSYNsRejected = 0
            #expect(counters == whole.stack.counters, "counters after `\(probe)`")
        }
        // Both forget the connection at the same instant.
        try whole.expectNothing(for: .seconds(59))
        try record.expectNothing(for: .seconds(59))
        #expect(whole.state.rfcName == "TIME-WAIT")
        #expect(record.stack.timeWaitCount == 1)
        try whole.expectNothing(for: .seconds(1))
        try record.expectNothing(for: .seconds(1))
        #expect(whole.stack.connectionCount == 0 && record.stack.connectionCount == 0)
        #expect(record.stack.timeWaitCount == 0)
    }
}
