import NIOCore
import TCPIPWire

/// What a connection knows of its path's MTU: the MSS the handshake allowed, the path MTU that
/// ICMP taught (RFC 1191, RFC 8201), and the RFC 4821 search for black holes.
struct PathState {
    /// The MSS the handshake agreed on (RFC 9293 §3.7.1), which the path may hold
    /// `maximumSegmentSize` below; 0 before the peer's SYN arrived.
    var negotiatedMSS: Int32 = 0
    /// The path MTU an ICMP error taught this connection; 0 while nothing did.
    var mtu: Int32 = 0
    /// RFC 4821 search state, once a black hole was suspected.
    var search: MTUSearch?
}

/// RFC 4821 §7 (Linux's `icsk_mtup`): the MTU known to work, the smallest known not to (or the
/// link's), and the probe in flight.
struct MTUSearch {
    var low: Int32
    var high: Int32
    /// The probe in flight: its MTU (0: none) and the sequence space it covers.
    var probeMTU: Int32 = 0
    var probeStart = SequenceNumber(0)
    var probeEnd = SequenceNumber(0)
    /// When a finished search starts again (RFC 4821 §7.7).
    var restartAt: Instant?
}

extension TCPConnection {
    /// The largest segment (TCP header with no options, and payload) a datagram of `mtu` carries.
    func segmentSize(forMTU mtu: Int) -> Int { mtu - tuple.remote.address.ipHeaderLength - 20 }

    /// The datagram a segment of `mss` makes.
    func mtu(forSegmentSize mss: Int) -> Int { mss + tuple.remote.address.ipHeaderLength + 20 }

    /// The MSS the handshake allowed: the peer's option and ours, before the path lowered it.
    var handshakeMSS: Int { path.negotiatedMSS == 0 ? receiveMSS : Int(path.negotiatedMSS) }

    /// Sets `maximumSegmentSize` from what the handshake allowed and what the path allows: the path
    /// MTU ICMP reported (RFC 1191 §3: "the Path MTU ... the TCP MSS is derived from it") and the
    /// RFC 4821 search's known-good MTU.
    mutating func applyPathLimits() {
        var limit = handshakeMSS
        if path.mtu > 0 { limit = min(limit, segmentSize(forMTU: Int(path.mtu))) }
        if let search = path.search { limit = min(limit, segmentSize(forMTU: Int(search.low))) }
        // A segment must still carry a payload once the options are paid (timestamps, SACK blocks).
        maximumSegmentSize = max(64, limit)
    }

    /// The path MTU is now `mtu` (validated ICMP, RFC 5927 §4.1 first): lower the MSS at once and
    /// resend what is in flight and too big, without waiting for the RTO (RFC 1191 §6.4: "the TCP
    /// ... should retransmit"; RFC 8201 §5.4).
    ///
    /// - Returns: whether the MSS went down.
    @discardableResult
    mutating func pathMTUDecreased(to mtu: Int, rule: StaticString, now: Instant, io: inout StackIO) -> Bool {
        if path.mtu == 0 || mtu < Int(path.mtu) { path.mtu = Int32(clamping: mtu) }
        if var search = path.search {
            search.high = min(search.high, Int32(clamping: mtu))
            search.low = min(search.low, search.high)
            path.search = search
        }
        let before = maximumSegmentSize
        applyPathLimits()
        guard maximumSegmentSize < before else {
            io.decision(rule, "path MTU \(mtu): segments of MSS \(maximumSegmentSize) already fit", connection: tuple, now: now)
            return false
        }
        io.counters.pathMTUReductions &+= 1
        io.decision(rule, "PMTU lowered to \(mtu): MSS \(before) -> \(maximumSegmentSize)", connection: tuple, now: now)
        retransmitTooBig(now: now, io: &io)
        return true
    }

    /// The stack's estimate for this path aged out (RFC 1191 §6.3, RFC 8201 §5.3): the MSS goes back
    /// up to what the handshake allowed — the peer's MSS option and our link MTU — or to what an
    /// RFC 4821 search has found to work. A path still too small answers the next full-sized segment
    /// with another error, and discovery runs again.
    mutating func pathMTUExpired(now: Instant, io: inout StackIO) {
        let mtu = path.mtu
        path.mtu = 0
        let before = maximumSegmentSize
        applyPathLimits()
        let rule: StaticString = tuple.remote.address.isIPv6 ? "RFC 8201 §5.3" : "RFC 1191 §6.3"
        guard maximumSegmentSize > before else {
            io.decision(rule, "PMTU estimate \(mtu) aged out: MSS \(maximumSegmentSize) unchanged", connection: tuple, now: now)
            return
        }
        // RFC 1191 §6.3: "An upper layer MUST not retransmit datagrams in response to an increase in
        // the PMTU estimate": what is in flight stays as it was cut; new segments are cut larger.
        io.counters.pathMTUIncreases &+= 1
        io.decision(rule, "PMTU estimate \(mtu) aged out: MSS \(before) -> \(maximumSegmentSize)", connection: tuple, now: now)
    }

    /// Linux's `tcp_simple_retransmit`: every segment in flight longer than the new MSS is lost —
    /// the path dropped it, congestion did not — and goes again, cut to the new size, at once. cwnd
    /// and ssthresh are left as they were: no loss episode begins, so nothing is undone later either.
    mutating func retransmitTooBig(now: Instant, io: inout StackIO) {
        if state == .synSent && Int((iss + 1).octets(to: sndMax)) > 0 {
            // A Fast Open SYN with data was too big: the SYN goes again at once, without the data
            // (which waits for the handshake, RFC 7413 §4.2.2), announcing the path's MSS — Linux's
            // tcp_v4_mtu_reduced, whose tcp_simple_retransmit resends the bare SYN it queued apart
            // from the data (tcp_send_syn_data).
            retransmittedSegments &+= 1
            io.counters.segmentsRetransmitted &+= 1
            io.decision(tuple.remote.address.isIPv6 ? "RFC 8201 §5.4" : "RFC 1191 §6.4",
                        "SYN with data too big for the path: SYN sent again without it", connection: tuple, now: now)
            sendSYN(acknowledging: false, peerOffered: nil, now: now, io: &io)
            return
        }
        guard state.isSynchronized, flightSize > 0 else { return }
        let marked = scoreboard.markLost(longerThan: sendMSS)
        guard marked > 0 else { return }
        let rule: StaticString = tuple.remote.address.isIPv6 ? "RFC 8201 §5.4" : "RFC 1191 §6.4"
        io.decision(rule, "\(marked) octets in flight were cut for the old MSS: retransmitted now, cwnd unchanged",
                    connection: tuple, now: now)
        output(now: now, io: &io)
    }

    /// RFC 5927 §4.1: an ICMP error is believed only if the sequence number it quotes lies in
    /// SND.UNA ≤ SEG.SEQ < SND.NXT — data we sent and that is still unacknowledged. SND.NXT here is
    /// the highest sent (SND.MAX), which a retransmission timeout does not pull back.
    func acceptsICMPError(quoting sequence: SequenceNumber) -> Bool {
        sndUna.isAtOrBefore(sequence) && sequence.isBefore(sndMax)
    }

    /// A validated ICMP error that is not about the path MTU (RFC 1122 §4.2.3.9, RFC 5461 §4).
    /// Hard errors abort a connection still opening; on a synchronized one, and for soft errors,
    /// the error is only noted (SO_ERROR's soft error, `softError`), to be reported if the
    /// connection then times out.
    mutating func reachabilityErrorArrives(_ error: TCPError, hard: Bool, now: Instant, io: inout StackIO) {
        if hard && (state == .synSent || state == .synReceived) {
            // RFC 5461 §4: "TCP SHOULD abort the corresponding connection" only in the synchronizing states.
            io.counters.icmpHardErrorAborts &+= 1
            io.counters.failedConnectionAttempts &+= 1
            io.decision("RFC 5461 §4", "hard ICMP error (\(error)) in \(state): connection aborted", connection: tuple, now: now)
            enterClosed(error: error, io: &io, now: now)
            return
        }
        // RFC 1122 §4.2.3.9: "MUST NOT abort" for soft errors; RFC 5461 §4 treats hard errors in the
        // synchronized states as soft.
        io.counters.icmpSoftErrors &+= 1
        softError = error
        io.decision("RFC 1122 §4.2.3.9", "soft ICMP error (\(error)) noted; reported if the connection times out",
                    connection: tuple, now: now)
    }

    // MARK: RFC 4821 packetization-layer PMTUD (black holes)

    /// RFC 4821 §7.5 (Linux's `tcp_mtu_probing`): the retransmission timer expired again and again
    /// on segments too big to fit a smaller MSS: a black hole that sends no ICMP may be dropping
    /// them. The first time, fall back to the base MSS; every time after, halve it — not below the
    /// family's minimum path MTU. The search for a larger MTU starts from there.
    mutating func suspectBlackHole(now: Instant, io: inout StackIO) {
        let probing = configuration.pointee.mtuProbing
        guard let probing, consecutiveTimeouts >= probing.blackHoleTimeouts else { return }
        let floor = tuple.remote.address.minimumPathMTU(configuration.pointee.pathMTU)
        let currentMTU = mtu(forSegmentSize: maximumSegmentSize)
        guard currentMTU > floor, let head = scoreboard.first, head.length > segmentSize(forMTU: floor) - 40 else { return }
        var search = path.search ?? MTUSearch(
            low: Int32(clamping: mtu(forSegmentSize: probing.baseMSS)),
            high: Int32(clamping: mtu(forSegmentSize: handshakeMSS)))
        if path.search != nil || Int(search.low) >= currentMTU {
            // Linux: mss = mtu_to_mss(search_low) / 2.
            let halved = segmentSize(forMTU: min(Int(search.low), currentMTU)) / 2
            search.low = Int32(clamping: mtu(forSegmentSize: halved))
        }
        search.low = Int32(clamping: max(floor, min(Int(search.low), currentMTU - 1)))
        search.high = max(search.high, search.low)
        search.probeMTU = 0
        search.restartAt = nil
        path.search = search
        let before = maximumSegmentSize
        applyPathLimits()
        io.counters.mtuBlackHolesDetected &+= 1
        io.decision("RFC 4821 §7.5", "\(consecutiveTimeouts) timeouts on full-sized segments: black hole suspected, MSS \(before) -> \(maximumSegmentSize)",
                    connection: tuple, now: now)
    }

    /// RFC 4821 §7.3 (Linux's `tcp_mtu_probe`): the payload of a probe to send now as the next new
    /// segment, if one is due — halfway between what works and what does not, sent only when
    /// nothing is being recovered, enough data is waiting and the windows allow it.
    mutating func mtuProbePayload(unsent: Int, room: Int, windowRoom: Int, optionsLength: Int, now: Instant) -> Int? {
        guard var search = path.search, search.probeMTU == 0, !inFastRecovery, !inTimeoutRecovery,
              let probing = configuration.pointee.mtuProbing
        else { return nil }
        if Int(search.high) - Int(search.low) < probing.threshold {
            // RFC 4821 §7.7: the search is over; it starts again after the interval, in case the path grew.
            guard let restartAt = search.restartAt else {
                search.restartAt = now + probing.interval
                path.search = search
                return nil
            }
            guard restartAt <= now else { return nil }
            search.high = Int32(clamping: mtu(forSegmentSize: handshakeMSS))
            if path.mtu > 0 { search.high = min(search.high, path.mtu) }
            search.restartAt = nil
            path.search = search
            if Int(search.high) - Int(search.low) < probing.threshold { return nil }
        }
        let probeMTU = (Int(search.low) + Int(search.high) + 1) / 2
        let payload = segmentSize(forMTU: probeMTU) - optionsLength
        guard payload > 0, unsent >= payload, room >= payload, windowRoom >= payload else { return nil }
        search.probeMTU = Int32(clamping: probeMTU)
        path.search = search
        return payload
    }

    /// Notes the probe just sent as the segment `start ..< end`.
    mutating func mtuProbeSent(from start: SequenceNumber, to end: SequenceNumber, now: Instant, io: inout StackIO) {
        path.search?.probeStart = start
        path.search?.probeEnd = end
        io.counters.mtuProbesSent &+= 1
        io.decision("RFC 4821 §7.3", "MTU probe of \(path.search?.probeMTU ?? 0) octets", connection: tuple, now: now)
    }

    /// An ACK covered the probe: its size works (RFC 4821 §7.6.1), and the MSS grows to it.
    mutating func mtuProbeAcknowledged(now: Instant, io: inout StackIO) {
        guard var search = path.search, search.probeMTU != 0, search.probeEnd.isAtOrBefore(sndUna) else { return }
        search.low = search.probeMTU
        search.probeMTU = 0
        path.search = search
        let before = maximumSegmentSize
        applyPathLimits()
        io.counters.mtuProbesSucceeded &+= 1
        io.decision("RFC 4821 §7.6.1", "MTU probe of \(search.low) acknowledged: MSS \(before) -> \(maximumSegmentSize)",
                    connection: tuple, now: now)
    }

    /// Loss was detected, or the timer expired, while the probe was unacknowledged: that size does
    /// not get through (RFC 4821 §7.6.2).
    ///
    /// DEVIATION(RFC 4821 §7.6.2): the loss still counts as congestion here (Linux retransmits a lost
    /// probe without reducing cwnd) because the loss episode has begun by the time it is known.
    mutating func mtuProbeLost(now: Instant, io: inout StackIO) {
        guard var search = path.search, search.probeMTU != 0, sndUna.isBefore(search.probeEnd) else { return }
        search.high = search.probeMTU - 1
        search.probeMTU = 0
        path.search = search
        io.counters.mtuProbesFailed &+= 1
        io.decision("RFC 4821 §7.6.2", "MTU probe lost: searching below \(search.high + 1)", connection: tuple, now: now)
    }
}
