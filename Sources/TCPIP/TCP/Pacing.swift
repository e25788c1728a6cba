import NIOCore

/// How fast a paced connection may send (`TCPConfiguration.pacing`): Linux's internal pacing rate
/// (tcp_update_pacing_rate), max(cwnd, FlightSize) per smoothed RTT, at 200 % in slow start and
/// 120 % after, and the burst that may go at once, Linux's TSO autosize: 1 ms of data at that rate
/// (sk_pacing_shift 10), at least two segments.
struct PacingRate {
    /// Nanoseconds one octet takes at the pacing rate.
    var nanosecondsPerOctet: Double
    /// How far the data sent may run ahead of the rate before the next segment waits.
    var burst: TimeAmount
}

/// Pacing: a window's segments spread over the round trip instead of leaving in one burst.
///
/// RFC 5681 §3: a sender "MUST NOT be more aggressive" than cwnd allows and may be "more
/// conservative"; pacing only delays what cwnd and the peer's window already allow. RFC 6582 §6
/// names "rate-based pacing" among the ways to avoid bursts and leaves the mechanism open; this
/// one is Linux's (net/ipv4/tcp_output.c), which every Linux sender uses with or without the fq
/// qdisc since 4.20.
///
/// Why it matters beyond the bottleneck queue: a Linux receiver's buffer autotuning
/// (tcp_rcv_space_adjust, run as the application copies each skb) counts the bytes read in the
/// last receive RTT *minus those still queued*. A whole window arriving in one burst is all queued
/// when the reader wakes, so its first copy finds little read and nearly everything queued, the
/// measurement restarts there, and the receive buffer never grows: the window offered stays at
/// 79 KB (rcvbuf 128 KiB) until the first loss (issue 20, 200 ms / 0.1 %). Paced, the window
/// arrives over half a round trip and is read as it comes.
extension TCPConnection {
    /// The rate for this call of `output`, or nil when it is not paced: pacing off, no RTT
    /// sample yet (Linux sends unpaced then too), or a segment that must go now (a loss probe, the
    /// SWS override). `mutating` though it changes nothing: called from `output` (a mutating
    /// method), a non-mutating method made the optimizer copy the whole TCB for `self` on every
    /// call, pacing on or off (issue 18; `scripts/tcb-copies.sh` looks for such copies).
    mutating func pacingRate(paced: Bool) -> PacingRate? {
        guard paced, configuration.pointee.pacing, let srtt = rtt.smoothedRTT, srtt.nanoseconds > 0 else { return nil }
        let cwnd = congestion.congestionWindow
        // tcp_update_pacing_rate: sk_pacing_ss_ratio (200) while cwnd < ssthresh / 2, else
        // sk_pacing_ca_ratio (120), of max(cwnd, packets_out) per srtt.
        let ratio = cwnd < congestion.slowStartThreshold / 2 ? 2.0 : 1.2
        let window = Double(max(cwnd, flightSize, maximumSegmentSize))
        let nanosecondsPerOctet = Double(srtt.nanoseconds) / (window * ratio)
        let twoSegments = Int64(2 * Double(maximumSegmentSize) * nanosecondsPerOctet)
        return PacingRate(nanosecondsPerOctet: nanosecondsPerOctet, burst: .nanoseconds(max(1_000_000, twoSegments)))
    }

    /// Whether the next segment waits for the pacing rate; if it does, the pacing timer is armed
    /// for when the rate has caught up with what was sent (`pacingReleaseTime`), and a burst goes then. The first segment with nothing in flight
    /// never waits (no ACK would come to clock it, and no timer is needed for it).
    mutating func pacingHolds(_ pacing: PacingRate, now: Instant) -> Bool {
        guard flightSize > 0, pacingReleaseTime > now + pacing.burst else { return false }
        pacingTimerArmed = true
        return true
    }

    /// Accounts `length` octets just sent at the pacing rate. Time the connection did not use is
    /// not saved up beyond half a burst: a timer that fired late (a busy machine, the driver's
    /// loop) is made up for by up to half a burst, as Linux's tcp_update_skb_after_send does
    /// ("take into account OS jitter": up to half of the skb's time, an skb being a burst); after
    /// a pause the rate starts again from about now (tcp_wstamp_ns).
    mutating func paced(_ length: Int, at pacing: PacingRate, now: Instant) {
        var start = pacingReleaseTime
        if start < now {
            let late = (now - start).nanoseconds
            start = now + .nanoseconds(-Swift.min(late, pacing.burst.nanoseconds / 2))
        }
        pacingReleaseTime = start + .nanoseconds(Int64(Double(length) * pacing.nanosecondsPerOctet))
    }
}
