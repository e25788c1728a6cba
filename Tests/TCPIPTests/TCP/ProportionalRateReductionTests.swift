import Testing
@testable import TCPIP

/// RFC 6937 §3 and the single-loss example of §3.1, in segments (mss = 1).
@Suite struct ProportionalRateReductionTests {
    /// §3.1: cwnd = FlightSize = 20, ssthresh = 10, one loss. Each ACK delivers one segment; while pipe
    /// stays above ssthresh PRR sends one segment for every two delivered ("N" on every other ACK),
    /// so the window comes down over one RTT instead of RFC 6675's half window of silence.
    @Test func singleLossSendsEveryOtherAck() {
        var prr = ProportionalRateReduction(slowStartThreshold: 10, recoverFS: 20, mss: 1)
        // The ACK that starts recovery delivers one segment; the fast retransmit goes out on it.
        prr.acknowledgment(deliveredData: 1, pipe: 19)
        #expect(prr.sendQuota == 1)
        prr.sent(1)
        var pattern = ""
        var pipe = 19
        for _ in 0..<16 {
            pipe -= 1
            prr.acknowledgment(deliveredData: 1, pipe: pipe)
            if prr.sendQuota >= 1 {
                prr.sent(1)
                pipe += 1
                pattern += "N"
            } else {
                pattern += "."
            }
        }
        // On the last ACK pipe has come down to ssthresh: PRR-SSRB's ssthresh − pipe = 0 bounds it.
        #expect(pattern == ".N.N.N.N.N.N.N..")
        // CEIL(prr_delivered · ssthresh / RecoverFS) for 16 delivered: 8 sent in all.
        #expect(prr.out == 8)
    }

    /// §3: once pipe is at or below ssthresh, the slow-start reduction bound lets the sender catch up
    /// by at most DeliveredData + MSS per ACK (PRR-SSRB), never beyond ssthresh.
    @Test func reductionBoundWhenPipeFallsBelowSsthresh() {
        // §3.1's second example: 15 of 20 segments lost, pipe 4 when the ACKs resume.
        var prr = ProportionalRateReduction(slowStartThreshold: 10, recoverFS: 20, mss: 1)
        prr.acknowledgment(deliveredData: 1, pipe: 4)
        // limit = max(1 − 0, 1) + 1 = 2; sndcnt = min(10 − 4, 2) = 2.
        #expect(prr.sendQuota == 2)
        prr.sent(2)
        prr.acknowledgment(deliveredData: 1, pipe: 5)
        #expect(prr.sendQuota == 2)
        prr.sent(2)
        prr.acknowledgment(deliveredData: 1, pipe: 9)
        // ssthresh − pipe = 1 bounds it.
        #expect(prr.sendQuota == 1)
    }
}
