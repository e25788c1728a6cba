import NIOCore
import Testing
@testable import TCPIP

/// Its SYN is repeated so that the handshake gives no RTT sample (Karn, RFC 6298 §3): the first
/// sample is the one these tests take from data.
private let sackPeer = TCPTester.Peer(sackPermitted: true, repeatsSYN: true)

/// SACK-based loss recovery through a real stack: RFC 6675 with PRR (RFC 6937), RACK-TLP (RFC 8985),
/// D-SACK (RFC 2883) and the undo of spurious retransmissions (RFC 3522).
/// These tests check NewReno's arithmetic (RFC 5681); they pin it whatever the stack's default.
private func newReno(_ configuration: inout StackConfiguration) { configuration.tcp.congestionControl = .newReno }

@Suite struct SACKRecoveryTests {
    /// Fourteen segments to send: ten go, the first ACK gives an RTT sample (100 ms), two more go.
    /// Segments 2 (1461) and 4 (4381) are lost.
    private func twelveSegmentsWithTwoLost() throws -> TCPTester {
        var t = try TCPTester(.established, peer: sackPeer, configure: newReno)
        try t.app.send(14 * 1460)
        for segment in 0..<10 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > . \(start):\(start + 1460)(1460) ack 1")
        }
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        try t.expect("+0 > . 14601:16061(1460) ack 1")
        try t.expect("+0 > . 16061:17521(1460) ack 1")
        return t
    }

    /// RFC 6675 §5 with RACK's DupThresh rule (RFC 8985 §6.2 step 4: no reordering seen, three segments
    /// SACKed, so the window is zero): the first two SACKs send new data (limited transmit through pipe,
    /// RFC 3042), the third starts recovery and retransmits only the holes; PRR (RFC 6937) sends in
    /// proportion to what is delivered while pipe > ssthresh, then up to ssthresh (PRR-SSRB); the ACK past
    /// RecoveryPoint ends recovery with cwnd = ssthresh.
    @Test func sackRecoveryRetransmitsOnlyTheHolesAtPRRsPace() throws {
        var t = try twelveSegmentsWithTwoLost()
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381>")
        try t.expect("+0 > . 17521:18981(1460) ack 1")
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381 5841:7301>")
        try t.expect("+0 > P. 18981:20441(1460) ack 1")
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381 5841:8761>")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        try t.expectNothing()
        #expect(t.status?.inRecovery == true)
        // ssthresh = cwnd / 2 = 16060 / 2: FlightSize (20441 − 1461) also holds the two segments
        // limited transmit sent, which RFC 5681 §3.2 step 2 says MUST NOT be counted.
        #expect(t.status?.slowStartThreshold == 8030)
        #expect(t.status?.lostBytes == 2920)
        #expect(t.status?.sackedBytes == 4380)
        #expect(t.counters.fastRetransmits == 1)
        // pipe 11680 > ssthresh, prr_delivered 2920: CEIL(2920 · 8030 / 18980) − 1460 < 0; then 394.
        try t.inject("+.01 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381 5841:10221>")
        try t.expectNothing()
        try t.inject("+.01 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381 5841:11681>")
        try t.expectNothing()
        // pipe 8760, still above ssthresh: CEIL(5840 · 8030 / 18980) − 1460 = 1011: still nothing.
        try t.inject("+.01 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381 5841:13141>")
        try t.expectNothing()
        // pipe 7300 is below ssthresh: PRR-SSRB, sndcnt = min(8030 − 7300, …) = 730: nothing.
        try t.inject("+.01 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381 5841:14601>")
        try t.expectNothing()
        // pipe 5840: min(8030 − 5840, max(8760 − 1460, 1460) + 1460) = 2190: one segment, the second hole.
        try t.inject("+.01 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381 5841:16061>")
        try t.expect("+0 > . 4381:5841(1460) ack 1")
        try t.expectNothing()
        // The retransmissions arrive: the ACK beyond RecoveryPoint ends recovery, cwnd = ssthresh.
        try t.inject("+.07 < . 1:1(0) ack 4381 win 65535 <sack 5841:20441>")
        try t.inject("+.01 < . 1:1(0) ack 20441 win 65535")
        #expect(t.status?.inRecovery == false)
        #expect(t.status?.congestionWindow == 8030)
        #expect(t.status?.retransmits == 2)
        #expect(t.status?.lostBytes == 0)
    }

    /// RFC 6675 §5: one loss event per window. A hole RACK finds while recovery is on, below
    /// RecoveryPoint (here segment 12, 16061, seen lost only when 17521 is SACKed after recovery began
    /// on segment 2), is retransmitted in the same episode, with no second reduction — as Linux, whose
    /// tcp_enter_recovery runs only from Open or Disorder. The first loss after the full ACK, in data sent
    /// after RecoveryPoint, is a new event: a new episode and a new reduction.
    @Test func oneReductionPerWindowOfLosses() throws {
        var t = try twelveSegmentsWithTwoLost()
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381>")
        try t.expect("+0 > . 17521:18981(1460) ack 1")
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535 <sack 2921:5841>")
        try t.expect("+0 > P. 18981:20441(1460) ack 1")
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535 <sack 2921:7301>")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        #expect(t.status?.inRecovery == true)
        #expect(t.status?.slowStartThreshold == 8030)
        for end in stride(from: 8761, through: 16061, by: 1460) {
            try t.inject("+.001 < . 1:1(0) ack 1461 win 65535 <sack 2921:\(end)>")
        }
        // 17521 SACKed: 16061, sent before it, is lost (no reordering seen, reo_wnd 0 in recovery); the lost
        // bytes are it and 1461 (retransmitted, not yet acknowledged).
        try t.inject("+.001 < . 1:1(0) ack 1461 win 65535 <sack 2921:16061 17521:18981>")
        var sent = t.takeOutput()
        #expect(t.status?.lostBytes == 2920)
        try t.inject("+.001 < . 1:1(0) ack 1461 win 65535 <sack 2921:16061 17521:20441>")
        sent += t.takeOutput()
        #expect(sent.contains { $0.contains("16061:17521(1460)") })
        #expect(t.counters.fastRetransmits == 1)
        #expect(t.status?.slowStartThreshold == 8030)
        #expect(t.status?.retransmits == 2)
        // The full ACK ends the episode: cwnd = ssthresh.
        try t.inject("+.1 < . 1:1(0) ack 20441 win 65535")
        #expect(t.status?.inRecovery == false)
        #expect(t.status?.congestionWindow == 8030)
        // New data, its first segment lost: a new loss event, a new reduction. cwnd lets five
        // segments go (20441–27741); two SACKs send two more (limited transmit).
        try t.app.send(8 * 1460)
        #expect(t.takeOutput().filter { $0.contains("(1460)") }.count == 5)
        try t.inject("+.1 < . 1:1(0) ack 20441 win 65535 <sack 21901:23361>")
        #expect(t.takeOutput().contains { $0.contains("27741:29201(1460)") })
        try t.inject("+0 < . 1:1(0) ack 20441 win 65535 <sack 21901:24821>")
        #expect(t.takeOutput().contains { $0.contains("29201:30661(1460)") })
        try t.inject("+0 < . 1:1(0) ack 20441 win 65535 <sack 21901:26281>")
        #expect(t.takeOutput().contains { $0.contains("20441:21901(1460)") })
        #expect(t.counters.fastRetransmits == 2)
        #expect(t.status?.inRecovery == true)
        // From cwnd, not FlightSize (30661 − 20441): limited transmit's segments are not counted.
        #expect(t.status?.slowStartThreshold == 8030 / 2)
    }

    /// RFC 8985 §6.2 step 5 and its reordering timer: one SACKed segment is not enough to call the ones
    /// before it lost until RACK.rtt + reo_wnd (min_RTT / 4 = 25 ms) has passed since they were sent.
    @Test func rackWaitsOneReorderingWindowThenRetransmits() throws {
        var t = try twelveSegmentsWithTwoLost()
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381>")
        try t.expect("+0 > . 17521:18981(1460) ack 1")
        try t.expectNothing()
        // Segment 1461 was sent 100 ms before the SACKed one was delivered: lost 25 ms from now.
        try t.expect("+.025 > . 1461:2921(1460) ack 1")
        #expect(t.status?.inRecovery == true)
        #expect(t.status?.reorderingSeen == false)
    }

    /// RFC 8985 §6.2 step 3: the hole filled within the reordering window is reordering, not loss:
    /// nothing is retransmitted, and RACK.reordering_seen is set.
    @Test func reorderingWithinTheWindowIsNotLoss() throws {
        var t = try twelveSegmentsWithTwoLost()
        try t.inject("+0 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381>")
        try t.expect("+0 > . 17521:18981(1460) ack 1")
        try t.inject("+.01 < . 1:1(0) ack 4381 win 65535")
        try t.expect("+0 > P. 18981:20441(1460) ack 1")
        try t.expectNothing(for: .milliseconds(50))
        #expect(t.status?.reorderingSeen == true)
        #expect(t.status?.retransmits == 0)
        #expect(t.counters.fastRetransmits == 0)
    }

    /// RFC 8985 §7.2–7.3: with the tail of a flight unacknowledged, a loss probe goes 2·SRTT after the
    /// last send — the highest segment again when there is no new data — and the RTO is re-armed.
    @Test func tailLossProbeAfterTwoSmoothedRTTs() throws {
        var t = try TCPTester(.established, peer: sackPeer, configure: newReno)
        try t.app.send(1460)
        try t.expect("+0 > P. 1:1461(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        try t.app.send(2920)
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        try t.expect("+0 > P. 2921:4381(1460) ack 1")
        // SRTT = 100 ms: PTO = 200 ms, before the RTO (100 + 4 · 50 = 300 ms).
        try t.expect("+.2 > P. 2921:4381(1460) ack 1")
        #expect(t.status?.tailLossProbes == 1)
        #expect(t.counters.tailLossProbes == 1)
        // The probe's SACK shows the segment sent before it lost at once (RFC 8985 §7.4.1): it went out
        // RACK.rtt + reo_wnd ago and more.
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535 <sack 2921:4381>")
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 4381 win 65535")
        #expect(t.status?.inRecovery == false)
    }

    /// `TCPConfiguration.lossProbeSlack` (Linux's TCP_TIMEOUT_MIN, tcp_schedule_loss_probe): with more
    /// than one segment in flight the PTO is 2·SRTT plus the slack, so it goes 2 ms later than
    /// RFC 8985 §7.2's 2·SRTT; the default adds nothing (`tailLossProbeAfterTwoSmoothedRTTs`).
    @Test func tailLossProbeWaitsForTheSlack() throws {
        var t = try TCPTester(.established, peer: sackPeer) { configuration in
            newReno(&configuration)
            configuration.tcp.lossProbeSlack = .milliseconds(2)
        }
        try t.app.send(1460)
        try t.expect("+0 > P. 1:1461(1460) ack 1")
        try t.inject("+.1 < . 1:1(0) ack 1461 win 65535")
        try t.app.send(2920)
        try t.expect("+0 > . 1461:2921(1460) ack 1")
        try t.expect("+0 > P. 2921:4381(1460) ack 1")
        try t.expectNothing(for: .milliseconds(201))
        try t.expect("+.001 > P. 2921:4381(1460) ack 1")
        #expect(t.status?.tailLossProbes == 1)
    }

    /// RFC 2883 §4: a segment received twice is reported in a D-SACK block, first, then the usual
    /// SACK blocks (RFC 2883 §5's examples); reported once.
    @Test func duplicateSegmentsAreReportedInDSACKBlocks() throws {
        var t = try TCPTester(.established, peer: sackPeer, configure: newReno)
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.inject("+0 < . 2001:3001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1001 <nop,nop,sack 2001:3001>")
        // An old duplicate, entirely below RCV.NXT (RFC 2883 §5.1 example 1).
        try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1001 <nop,nop,sack 1:1001 2001:3001>")
        // A duplicate of data held out of order (§5.2): the D-SACK block, then the held block that
        // contains it — here the same one (§4 (4)).
        try t.inject("+0 < . 2001:3001(1000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 1001 <nop,nop,sack 2001:3001 2001:3001>")
        // The hole filled by a segment that also repeats held data.
        try t.inject("+0 < . 1001:3001(2000) ack 1 win 65535")
        try t.expect("+0 > . 1:1(0) ack 3001 <nop,nop,sack 2001:3001>")
        try t.expectNothing()
        #expect(t.counters.dsackBlocksSent == 3)
    }

    /// RFC 3522 §2 (Eifel): the ACK after a fast retransmit echoes the original's timestamp, so the
    /// original arrived (reordering) and the retransmission was spurious: the congestion state comes back
    /// (RFC 4015's response) and recovery ends.
    @Test func eifelUndoesASpuriousFastRetransmit() throws {
        var t = try TCPTester(.established, peer: TCPTester.Peer(timestampValue: 1000), configure: newReno)
        try t.app.send(14_600)
        for segment in 0..<10 {
            let start = 1 + 1448 * segment
            try t.expect("+0 > . \(start):\(start + 1448)(1448) ack 1")
        }
        let originalTSval = try #require(t.latestTSval)
        #expect(t.status?.congestionWindow == 14_480)
        for delay in [".1", "0", "0"] {
            try t.inject("+\(delay) < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 1001 ecr \(originalTSval)>")
        }
        try t.expect("+0 > . 1:1449(1448) ack 1")
        #expect(t.status?.inRecovery == true)
        // The ACK of the first segment echoes the *original*'s TSval: the retransmission was not needed.
        try t.inject("+0 < . 1:1(0) ack 14481 win 65535 <nop,nop,TS val 1002 ecr \(originalTSval)>")
        #expect(t.status?.inRecovery == false)
        #expect(t.status?.spuriousRetransmissionsUndone == 1)
        #expect(t.counters.spuriousRetransmissionsUndone == 1)
        #expect((t.status?.congestionWindow ?? 0) >= 14_480)
        #expect(t.status?.slowStartThreshold ?? 0 > 1 << 30)
        try t.expect("+0 > P. 14481:14601(120) ack 1")
    }
}

/// Undo by D-SACK (RFC 2883 §4.1), for a path that reorders without timestamps to tell.
@Suite struct DSACKUndoTests {
    /// Three SACKed segments start recovery and the first is retransmitted; then the original turns up
    /// (it was only late) and the receiver reports the retransmission in a D-SACK block. Every
    /// retransmission of the episode was a duplicate: recovery is undone, cwnd and ssthresh come back,
    /// and the path is known to reorder.
    @Test func everyRetransmissionDSACKedUndoesTheEpisode() throws {
        var t = try TCPTester(.established, peer: sackPeer, configure: newReno)
        try t.app.send(5 * 1460)
        for segment in 0..<5 {
            let start = 1 + 1460 * segment
            try t.expect("+0 > \(segment == 4 ? "P." : ".") \(start):\(start + 1460)(1460) ack 1")
        }
        let cwndBefore = try #require(t.status?.congestionWindow)
        try t.inject("+.1 < . 1:1(0) ack 1 win 65535 <sack 1461:2921>")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535 <sack 1461:4381>")
        try t.inject("+0 < . 1:1(0) ack 1 win 65535 <sack 1461:5841>")
        try t.expect("+0 > . 1:1461(1460) ack 1")
        #expect(t.status?.inRecovery == true)
        // The late original fills the hole; the retransmission then arrives as a duplicate.
        try t.inject("+.01 < . 1:1(0) ack 7301 win 65535")
        try t.inject("+.09 < . 1:1(0) ack 7301 win 65535 <sack 1:1461>")
        #expect(t.status?.spuriousRetransmissionsUndone == 1)
        #expect(t.status?.dsacksReceived == 1)
        #expect(t.status?.reorderingSeen == true)
        #expect((t.status?.congestionWindow ?? 0) >= cwndBefore)
        #expect((t.status?.slowStartThreshold ?? 0) > 1 << 30)
    }
}
