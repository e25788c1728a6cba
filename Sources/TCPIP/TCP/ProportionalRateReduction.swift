/// RFC 6937 Proportional Rate Reduction: how much may be sent on each ACK during fast recovery, so that
/// cwnd comes down to ssthresh smoothly over one round trip instead of in a half window of silence.
///
/// Values are octets. The connection calls `acknowledgment(deliveredData:pipe:)` on every ACK during
/// recovery, and `sent(_:)` for every octet (re)transmitted meanwhile; `sendQuota` is what is left.
struct ProportionalRateReduction: Hashable, Sendable {
    /// ssthresh: the target cwnd at the end of recovery.
    let slowStartThreshold: Int
    /// RecoverFS: FlightSize (SND.NXT − SND.UNA) when recovery began.
    let recoverFS: Int
    let mss: Int
    /// prr_delivered: octets the receiver reported delivered since recovery began.
    private(set) var delivered = 0
    /// prr_out: octets sent since recovery began.
    private(set) var out = 0
    /// sndcnt of the last ACK, less what was sent since.
    private(set) var sendQuota = 0

    init(slowStartThreshold: Int, recoverFS: Int, mss: Int) {
        self.slowStartThreshold = slowStartThreshold
        self.recoverFS = max(1, recoverFS)
        self.mss = max(1, mss)
    }

    /// RFC 6937 §3 "On every ACK during recovery", with the slow-start reduction bound (PRR-SSRB).
    mutating func acknowledgment(deliveredData: Int, pipe: Int) {
        delivered += max(0, deliveredData)
        var sendCount: Int
        if pipe > slowStartThreshold {
            // Proportional Rate Reduction: sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            let (product, overflow) = delivered.multipliedReportingOverflow(by: slowStartThreshold)
            let target = overflow ? Int.max : (product + recoverFS - 1) / recoverFS
            sendCount = target - out
        } else if deliveredData <= 0 {
            // An ACK that reports nothing delivered clocks nothing out (as Linux's tcp_cwnd_reduction).
            // Read literally, SSRB's "+ MSS" lets every such ACK send a segment: two desynchronised
            // stacks — one rejecting the other's data by PAWS, answering each segment with a duplicate
            // ACK — would then trade segments for ACKs without end, at one instant (found by fuzzing).
            sendCount = 0
        } else {
            // PRR-SSRB: limit = MAX(prr_delivered - prr_out, DeliveredData) + MSS; sndcnt = MIN(ssthresh - pipe, limit).
            let limit = max(delivered - out, deliveredData) + mss
            sendCount = min(slowStartThreshold - pipe, limit)
        }
        sendQuota = max(0, sendCount)
    }

    /// RFC 6937 §3 "On any data transmission or retransmission: prr_out += (data sent)".
    mutating func sent(_ octets: Int) {
        out += octets
        sendQuota = max(0, sendQuota - octets)
    }
}
