import TCPIPWire

/// What receive autotuning measures on one connection: Linux's `rcvq_space` (how much the application
/// read in the last round trip) and `rcv_rtt_est` (the receiver's own idea of the round trip, for a
/// connection that only receives and so never times its own segments).
///
/// Times are microseconds of the stack's clock, truncated to 32 bits: they are only ever subtracted,
/// and a difference is wrong only after 71 idle minutes, when it merely starts a measurement late.
/// 24 bytes, paid for by two fields the TCB now reads from its configuration (`reassemblyLimit`,
/// `delayedAckTimeout`), so that an idle connection costs no more than before.
struct ReceiveAutotuning {
    /// rcvq_space.space: the most the application has read in one round trip; 0 until the first
    /// measurement, which counts as ten segments (Linux: TCP_INIT_CWND · advmss).
    var space: UInt32 = 0
    /// Bytes read by the application (truncated) when the current measurement began.
    var consumedMark: UInt32 = 0
    /// When the current measurement began; 0 before the first read.
    var measuredAt: UInt32 = 0
    /// The receiver's RTT estimate in microseconds, 0 before a sample.
    var rtt: UInt32 = 0
    /// Without timestamps: the right edge whose arrival ends the sample under way, and when it began
    /// (0: none under way). With timestamps, `rttMark` is the TSecr of the last sample instead, so one
    /// echo is sampled once (Linux's rcv_rtt_last_tsecr): the two ways never mix on one connection.
    var rttMark: UInt32 = 0
    var rttStartedAt: UInt32 = 0

    static func clock(_ now: Instant) -> UInt32 {
        UInt32(truncatingIfNeeded: now.nanoseconds / 1000)
    }
}

extension TCPConnection {
    /// Whether this connection's receive buffer may grow (`TCPConfiguration.receiveBufferMaximum`).
    @inline(__always)
    var receiveAutotuning: Bool {
        (configuration.pointee.receiveBufferMaximum ?? 0) > configuration.pointee.receiveBufferSize
    }

    /// The receiver's RTT sample from an in-order data segment (Linux's tcp_rcv_rtt_measure_ts and
    /// tcp_rcv_rtt_measure): a few comparisons, no allocation. With timestamps, a full-sized segment
    /// echoes the TSval of the ACK that let it go, so now − TSecr is a round trip (RFC 7323 §4.1);
    /// these are smoothed (gain 1/8). Without, the time a window's worth of data takes to arrive
    /// after we advertised it bounds the round trip from above, and the smallest such is kept.
    mutating func sampleReceiveRTT(_ segment: IncomingSegment, now: Instant) {
        let nowMicros = ReceiveAutotuning.clock(now)
        if timestampsEnabled {
            guard let echo = segment.header.options.timestamps?.echoReply, echo != 0, echo != receiveTuning.rttMark,
                  segment.payload.readableBytes >= sendMSS
            else { return }
            receiveTuning.rttMark = echo
            let milliseconds = Int32(bitPattern: timestampClock(now) &- echo)
            guard milliseconds >= 0, milliseconds < 60_000 else { return }
            let sample = UInt32(max(1, milliseconds)) * 1000
            let old = receiveTuning.rtt
            receiveTuning.rtt = old == 0 ? sample : old - old / 8 + sample / 8
            return
        }
        if receiveTuning.rttStartedAt != 0 {
            guard rttSequenceReached else { return }
            let sample = max(1, nowMicros &- receiveTuning.rttStartedAt)
            if receiveTuning.rtt == 0 || sample < receiveTuning.rtt { receiveTuning.rtt = sample }
        }
        receiveTuning.rttMark = (rcvNxt + Int(rcvWnd)).rawValue
        receiveTuning.rttStartedAt = max(1, nowMicros)
    }

    private var rttSequenceReached: Bool { SequenceNumber(receiveTuning.rttMark).isAtOrBefore(rcvNxt) }

    /// The round trip receive autotuning measures over: the receiver's estimate, else SRTT.
    var receiveRTTMicroseconds: UInt32 {
        if receiveTuning.rtt > 0 { return receiveTuning.rtt }
        guard let srtt = rtt.smoothedRTT else { return 0 }
        return UInt32(clamping: max(1, srtt.nanoseconds / 1000))
    }

    /// Dynamic right-sizing after the application read (Linux's tcp_rcv_space_adjust): once per round
    /// trip, compare what the application read in it with the most read in one before. When it read
    /// more, the sender is speeding up (slow start doubles each round trip), so the buffer grows to
    /// twice that, plus room for the growth seen, plus 16 segments — and the advertised window with
    /// it, which the sender needs to keep growing. An application that reads slowly reads little per
    /// round trip, and its buffer stays as it is. Under memory pressure nothing grows, and a buffer
    /// above the fair share shrinks to it (the largest first: only those above it shrink).
    mutating func adjustReceiveSpace(now: Instant, io: inout StackIO) {
        let rttMicros = receiveRTTMicroseconds
        guard rttMicros > 0 else { return }
        let nowMicros = ReceiveAutotuning.clock(now)
        let consumed = UInt32(truncatingIfNeeded: bytesReceived) &- UInt32(truncatingIfNeeded: receiveBuffer.count)
        if receiveTuning.measuredAt == 0 {
            receiveTuning.consumedMark = consumed
            receiveTuning.measuredAt = max(1, nowMicros)
            return
        }
        let elapsed = nowMicros &- receiveTuning.measuredAt
        guard elapsed >= rttMicros else { return }
        // What was read per round trip: an application that reads less often than once a round trip
        // is measured over its own interval, and scaled down to one round trip (Linux measures at
        // whatever read comes first after a round trip, and so credits a reader that wakes every
        // other round trip with two round trips' worth).
        let readSinceMark = Int(consumed &- receiveTuning.consumedMark)
        let copied = elapsed <= rttMicros + rttMicros / 8
            ? readSinceMark : Int(Int64(readSinceMark) * Int64(rttMicros) / Int64(elapsed))
        let space = receiveTuning.space == 0 ? 10 * receiveMSS : Int(receiveTuning.space)
        receiveTuning.consumedMark = consumed
        receiveTuning.measuredAt = max(1, nowMicros)
        if let ceiling = io.bufferCeiling {
            shrinkReceiveBuffer(toCeiling: ceiling, now: now, io: &io)
            // The most read in one round trip is not forgotten (Linux's rcvq_space.space only
            // grows): only capped by the smaller buffer. Set to a round trip of little reading
            // instead, it made the next measurement after the pressure look like a thousandfold
            // speed-up, and the growth term jumped the buffer to its maximum.
            receiveTuning.space = UInt32(clamping: min(max(copied, space), receiveBufferCapacity))
            return
        }
        guard copied > space else { return }
        receiveTuning.space = UInt32(clamping: copied)
        let maximum = configuration.pointee.receiveBufferMaximum ?? receiveBufferCapacity
        guard receiveBufferCapacity < maximum else { return }
        // Linux: rcvwin = 2·copied + 16·advmss, and grows again by the ratio the rate grew by.
        let copiedClamped = min(copied, 1 << 30)
        var window = 2 * copiedClamped + 16 * receiveMSS
        window += 2 * (window / space) * (copiedClamped - space) + 2 * (window % space) * (copiedClamped - space) / space
        let target = min(window, maximum)
        guard target > receiveBufferCapacity else { return }
        io.counters.receiveBufferGrowths &+= 1
        io.decision(
            "DRS (tcp_rcv_space_adjust)",
            "application read \(copied) bytes in one RTT (\(rttMicros / 1000) ms): receive buffer \(receiveBufferCapacity) → \(target) (max \(maximum))",
            connection: tuple, now: now)
        receiveBufferCapacity = target
    }

    /// Under memory pressure: a receive buffer above `ceiling` (and above its starting size) shrinks
    /// to it. The window already advertised is honoured (RFC 9293 §3.8.6: the right edge never moves
    /// left); the smaller buffer only shows as the application reads.
    mutating func shrinkReceiveBuffer(toCeiling ceiling: Int, now: Instant, io: inout StackIO) {
        let target = max(ceiling, configuration.pointee.receiveBufferSize)
        guard receiveBufferCapacity > target else { return }
        io.counters.receiveBufferShrinks &+= 1
        io.decision(
            "memory pressure (tcp_mem)",
            "receive buffer \(receiveBufferCapacity) above the fair share: shrinks to \(target)",
            connection: tuple, now: now)
        receiveBufferCapacity = target
    }

    /// When a connection whose buffers grew gives them back (`TCPConfiguration.idleBufferReclaim`):
    /// once nothing is queued either way and nothing has been sent or heard for that long, and at
    /// least an RTO (the idle period after which Linux's tcp_cwnd_restart, like RFC 5681 §4.1,
    /// no longer trusts what it learnt of the path). nil while the buffers are at their starting
    /// sizes, or anything is queued: a connection with fixed buffers never gets this wakeup.
    ///
    /// Asked each time the connection's next deadline is (several times a segment): inlined up to the
    /// test that fails for nearly every connection, whose buffers are at their starting sizes.
    @inline(__always)
    var bufferReclaimDeadline: Instant? {
        guard buffersGrown else { return nil }
        return grownBufferReclaimDeadline
    }

    @inline(never)
    private var grownBufferReclaimDeadline: Instant? {
        guard let idle = configuration.pointee.idleBufferReclaim,
              state == .established || state == .closeWait,
              sendBuffer.isEmpty, receiveBuffer.isEmpty, reassembly.isEmpty
        else { return nil }
        let last = lastHeardFrom > lastSendTime ? lastHeardFrom : lastSendTime
        return last + max(idle, rtt.retransmissionTimeout)
    }

    /// Whether either buffer is above its starting size.
    @inline(__always)
    private var buffersGrown: Bool {
        receiveBufferCapacity > configuration.pointee.receiveBufferSize
            || (!sendBufferLocked && sendBuffer.capacity > configuration.pointee.sendBufferSize)
    }

    /// An idle connection gives memory back (inspired by Linux's sk_mem_reclaim, which returns a
    /// socket's unused forward allocation to tcp_mem when its queues empty, and tcp_cwnd_restart's
    /// idle test): both buffers return to their starting sizes, what receive autotuning measured
    /// is forgotten (the next burst is measured afresh, as Linux's tcp_enter_quickack mode starts
    /// a connection that wakes up), and the rings the queues grew are freed. The window already
    /// advertised is honoured (RFC 9293 §3.8.6: the right edge never moves left).
    mutating func reclaimIdleBuffers(now: Instant, io: inout StackIO) {
        let tcp = configuration.pointee
        let receiveWas = receiveBufferCapacity
        let sendWas = sendBuffer.capacity
        receiveBufferCapacity = min(receiveBufferCapacity, tcp.receiveBufferSize)
        if !sendBufferLocked { sendBuffer.capacity = min(sendBuffer.capacity, tcp.sendBufferSize) }
        let rtt = receiveTuning.rtt
        receiveTuning = ReceiveAutotuning()
        receiveTuning.rtt = rtt
        sendBuffer.releaseStorage()
        receiveBuffer.releaseStorage()
        io.counters.idleBufferReclaims &+= 1
        io.decision(
            "idle (sk_mem_reclaim, tcp_cwnd_restart)",
            "nothing queued or heard for \(tcp.idleBufferReclaim?.milliseconds ?? 0) ms: receive buffer \(receiveWas) → \(receiveBufferCapacity), send buffer \(sendWas) → \(sendBuffer.capacity), queue rings freed",
            connection: tuple, now: now)
    }

    /// Send autotuning after new data was acknowledged (Linux's tcp_sndbuf_expand): room for two
    /// congestion windows — one in flight, one queued behind it so the next ACKs find data to send —
    /// up to `sendBufferMaximum`. Under memory pressure the buffer does not grow, and one above the
    /// fair share shrinks to it (queued bytes stay; SEND takes nothing until they drain below it).
    mutating func adjustSendBuffer(now: Instant, io: inout StackIO) {
        guard !sendBufferLocked, let maximum = configuration.pointee.sendBufferMaximum else { return }
        if let ceiling = io.bufferCeiling {
            let target = max(ceiling, configuration.pointee.sendBufferSize)
            guard sendBuffer.capacity > target else { return }
            io.counters.sendBufferShrinks &+= 1
            io.decision(
                "memory pressure (tcp_mem)",
                "send buffer \(sendBuffer.capacity) above the fair share: shrinks to \(target)",
                connection: tuple, now: now)
            sendBuffer.capacity = target
            return
        }
        guard sendBuffer.capacity < maximum else { return }
        let window = congestion.congestionWindow
        guard 2 * window > sendBuffer.capacity else { return }
        // Grow in steps of at least an eighth, so a window that creeps up does not trace every ACK.
        let target = min(maximum, max(2 * window, sendBuffer.capacity + sendBuffer.capacity / 8))
        io.counters.sendBufferGrowths &+= 1
        io.decision(
            "tcp_sndbuf_expand",
            "cwnd \(window): send buffer \(sendBuffer.capacity) → \(target) (max \(maximum))",
            connection: tuple, now: now)
        sendBuffer.capacity = target
    }
}
