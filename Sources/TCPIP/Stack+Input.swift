import NIOCore
import TCPIPWire

/// The input path: IP datagram in, demultiplexed to a connection, a half-open entry, a
/// listener, or — finding none — the CLOSED state of RFC 9293 §3.10.7.1.
extension Stack {
    /// One IP datagram from the link. Malformed input is dropped and counted; it never traps.
    ///
    /// `checksumVerified`: the link vouches for this datagram's checksums (it checked them, or it
    /// is a loopback that never let the bytes onto a wire — a TUN device's partial checksums from
    /// the kernel's own TCP), so they are not checked again. `StackConfiguration.checksumOffload`
    /// says the same for every datagram.
    ///
    /// `consuming`: the datagram's buffer becomes the segment's payload by moving its indices
    /// (`IPDatagram.parse`, `TCPHeader.parse`), never sliced.
    public func receive(_ datagram: consuming ByteBuffer, now: Instant, checksumVerified: Bool = false) {
        receive(datagram, inputLink: nil, now: now, checksumVerified: checksumVerified)
    }

    /// `receive(_:now:checksumVerified:)` from a named link, for a stack with several (a `Router`'s
    /// own): the hooks see it as `iifname` instead of `StackConfiguration.linkName`.
    public func receive(_ datagram: consuming ByteBuffer, inputLink: String?, now: Instant, checksumVerified: Bool = false) {
        io.counters.ipPacketsReceived &+= 1
        let verify = !configuration.checksumOffload && !checksumVerified
        let ip: IPDatagram
        do {
            ip = try IPDatagram.parse(datagram, verifyChecksum: verify, keepingFragments: true)
        } catch {
            switch error {
            case .fragment: io.counters.ipFragmentsDropped &+= 1
            case .badChecksum: io.counters.ipBadChecksum &+= 1
            default: io.counters.ipMalformed &+= 1
            }
            return
        }
        // Netfilter's hooks (Stack+Filter.swift), only while rules on them are installed.
        if filterHooks & Self.inputHookBits != 0 {
            filteredDatagramArrives(consume ip, verify: verify, now: now, inputLink: inputLink ?? configuration.linkName)
            return
        }
        ipDatagramArrives(consume ip, verify: verify, now: now)
    }

    /// A parsed datagram from the link, with no rules on the input hooks: ours or not, reassembled,
    /// then the protocol table.
    @inline(__always)
    private func ipDatagramArrives(_ ip: consuming IPDatagram, verify: Bool, now: Instant) {
        // In intercept mode every address is ours; the check after `||` runs only for datagrams a
        // normal stack drops.
        guard isLocal(ip.destination) || interceptsEverything else {
            io.counters.ipNotForUs &+= 1
            return
        }
        // Fragments (RFC 791 §3.2, RFC 8200 §4.5): reassembled first; the whole datagram, once it
        // is, goes on as if it had arrived in one piece (Stack+Fragments.swift). Two calls rather than
        // one `var` reassigned: the `var` cost three copies of the datagram's value per packet
        // (memcpy from here, 1.3% of `bench connrate` under callgrind).
        if ip.fragment != nil {
            if let whole = reassemble(consume ip, now: now) { datagramArrives(whole, verify: verify, now: now) }
            return
        }
        datagramArrives(ip, verify: verify, now: now)
    }

    /// A whole datagram for one of our addresses, to its upper-layer protocol (also past the input
    /// hooks, Stack+Filter.swift).
    @inline(__always)
    func datagramArrives(_ ip: consuming IPDatagram, verify: Bool, now: Instant) {
        // The protocol table (RFC 791 §3.1 "Protocol", RFC 8200 §4 "Next Header"). TCP, the hot
        // path, is the first case and goes on below in this function, so that its segment is parsed
        // from the datagram's own buffer; every other protocol returns from its case.
        switch ip.upperLayerProtocol {
        case IPProtocolNumber.tcp:
            break
        case IPProtocolNumber.udp:
            udpDatagramArrives(ip, verify: verify, now: now)
            return
        case IPProtocolNumber.icmp where ip.header.isV4:
            icmpv4Arrives(ip, verify: verify, now: now)
            return
        case IPProtocolNumber.icmpv6 where !ip.header.isV4:
            icmpv6Arrives(ip, verify: verify, now: now)
            return
        default:
            unknownProtocolArrives(ip, now: now)
            return
        }
        // The addresses and the ECN field first, so that the TCP parse is the datagram's last use
        // and takes its buffer over instead of sharing it.
        let (source, destination, ecn) = (ip.source, ip.destination, ip.ecn)
        let header: TCPHeader
        let payload: ByteBuffer
        do {
            (header, payload) = try TCPHeader.parse(
                (consume ip).takePayload(), source: source, destination: destination, verifyChecksum: verify,
                acceptsSYNWithFIN: true)
        } catch {
            if error == .badChecksum { io.counters.badChecksums &+= 1 } else { io.counters.badSegments &+= 1 }
            return
        }
        io.counters.segmentsReceived &+= 1
        // RFC 9293 §3.9.2 / RFC 1122 §4.2.3.10: a segment from port 0, or claiming to come from
        // one of our own addresses, is bogus.
        guard header.sourcePort != 0, header.destinationPort != 0, !isLocal(source) else {
            io.counters.badSegments &+= 1
            return
        }
        let tuple = FourTuple(
            local: Endpoint(destination, header.destinationPort),
            remote: Endpoint(source, header.sourcePort))
        // `consume`: the payload moves into the segment; a copy kept the parsed (header, payload)
        // pair alive to the end of this function (a retain and a release through the runtime's
        // generic tuple witnesses, 3% of bulk time at MTU 1500 under perf).
        if header.flags.isSuperset(of: [.syn, .fin]) && dropsSYNWithFIN(tuple: tuple) {
            io.counters.badSegments &+= 1
            return
        }
        let segment = IncomingSegment(header: header, payload: consume payload, ecn: ecn)
        if header.flags.contains(.syn) { io.counters.synsReceived &+= 1 }

        // The half-open table before the TIME-WAIT one: a 4-tuple is in at most one of the three (a
        // SYN for a tuple in TIME-WAIT goes to its record, never to a listener), and the half-open
        // table is small and warm in cache where the TIME-WAIT one (131,072 records at Linux's
        // limit) is not, so the handshake's last ACK no longer misses there first.
        if let handle = connectionHandle(for: tuple) {
            connectionSegmentArrives(handle, segment, now: now)
        } else if let handle = halfOpenTable[tuple] {
            halfOpenSegmentArrives(handle, segment, now: now)
        } else if !timeWait.isEmpty, let recordHandle = timeWaitTable[tuple] {
            timeWaitSegmentArrives(recordHandle, segment, now: now)
        } else if let listener = listener(for: tuple.local) {
            listenSegmentArrives(listener, tuple: tuple, segment, now: now)
        } else if interceptsEverything {
            interceptedSegmentArrives(tuple: tuple, segment, now: now)
        } else {
            closedSegmentArrives(tuple: tuple, segment, now: now)
        }
    }

    /// SYN with FIN: dropped (`acceptsSYNWithFIN`), as Linux's tcp_rcv_state_process drops it in
    /// LISTEN — except a SYN-ACK that also closes, in SYN-SENT, which RFC 9293 §3.10.7.3 processes
    /// (ESTABLISHED, then the FIN: CLOSE-WAIT) and Linux accepts (tcp_rcv_synsent_state_process).
    /// Out of line: no segment of a stream gets here.
    @inline(never)
    private func dropsSYNWithFIN(tuple: FourTuple) -> Bool {
        !configuration.tcp.acceptsSYNWithFIN
            && !(configuration.tcp.acceptsSYNACKWithFIN
                 && connectionHandle(for: tuple).flatMap({ handle in connections.withElement(handle) { $0.state } }) == .synSent)
    }

    /// A datagram for one of our addresses whose protocol we do not speak: RFC 1122 §3.2.2.1 ICMP
    /// protocol unreachable, RFC 8200 §4 ICMPv6 parameter problem code 1 (rate-limited, and only
    /// where an error may be sent at all).
    private func unknownProtocolArrives(_ ip: IPDatagram, now: Instant) {
        io.counters.ipUnknownProtocol &+= 1
        // RFC 8200 §4.7: "No Next Header" is not an unknown protocol; there is nothing to deliver.
        guard ip.upperLayerProtocol != IPProtocolNumber.noNextHeader || ip.header.isV4 else { return }
        sendICMPError(.protocolUnreachable, about: ip, now: now)
    }

    /// The connection `tuple` names, if any: `connectionTable[tuple]`.
    ///
    /// A stream brings segment after segment for one connection, so the last answer is remembered
    /// and tried first; any change to the table forgets it (`connectionTable`'s `didSet`), so it is
    /// never stale. The hashed lookup it saves (SipHash over the 4-tuple, seeded through
    /// thread-local storage) took bulk from 18.3 to 20.3 Gbit/s at MTU 1500.
    @inline(__always)
    func connectionHandle(for tuple: FourTuple) -> SlabHandle? {
        if let last = lastConnectionLookup, last.tuple == tuple { return last.handle }
        guard let handle = connectionTable[tuple] else { return nil }
        lastConnectionLookup = (tuple, handle)
        return handle
    }

    /// A segment for a connection: the TCB's processing (RFC 9293 §3.10.7.3–4), then the stack's bookkeeping.
    ///
    /// The segment is moved into the TCB's processing, never copied: each copy retains its payload,
    /// and copies of `IncomingSegment` (here, and for trimming in `otherwiseSegmentArrives`) were 9%
    /// of bulk time at MTU 1500 under perf. Hence `consuming`, and the hand-over as an argument of
    /// the closure (`withConnection(_:passing:_:)`): a closure can only borrow what it captures.
    ///
    /// A stack without a memory budget (the default) takes the short way: the budget's work is in a
    /// function of its own, so that the segment is not kept in memory across its calls here (a third
    /// copy of its 122 bytes a segment, `bench bulk` under cachegrind).
    func connectionSegmentArrives(_ handle: SlabHandle, _ segment: consuming IncomingSegment, now: Instant) {
        if configuration.memoryBudget != nil {
            budgetedConnectionSegmentArrives(handle, segment, now: now)
            return
        }
        handOver(segment, to: handle, now: now)
    }

    /// `connectionSegmentArrives` under a memory budget.
    @inline(never)
    private func budgetedConnectionSegmentArrives(_ handle: SlabHandle, _ segment: consuming IncomingSegment, now: Instant) {
        updateBufferCeiling()
        if segment.payload.readableBytes > 0, !makeRoom(for: segment.payload.pinnedStorageBytes) {
            // At the budget with no out-of-order data left to prune: the text goes, the
            // control stays (its ACK may be what frees our send buffer). The peer retransmits.
            io.counters.droppedMemoryBudget &+= 1
            segment.payload = ByteBuffer()
            segment.fin = false
            segment.header.flags.remove(.fin)
        }
        handOver(segment, to: handle, now: now)
        enforceBudget()
    }

    /// The segment into the TCB's processing, then the wakeup the connection now needs.
    @inline(__always)
    private func handOver(_ segment: consuming IncomingSegment, to handle: SlabHandle, now: Instant) {
        withConnection(handle, passing: segment) { connection, segment in
            connection.segmentArrives(segment, now: now, io: &io)
        }
        connectionActivity(handle, now: now)
    }

    /// The listener for a segment to `local`: one bound to its address, else one bound to every
    /// address. A stack has a few listeners, and scanning them costs less than two hashed lookups
    /// (a quarter of the demultiplexing time of a SYN flood under perf); with many, it hashes.
    @inline(__always)
    func listener(for local: Endpoint) -> SlabHandle? {
        guard listenerTable.count <= 8 else {
            return listenerTable[ListenerKey(address: local.address, port: local.port)]
                ?? listenerTable[ListenerKey(address: nil, port: local.port)]
        }
        var wildcard: SlabHandle?
        for (key, handle) in listenerTable where key.port == local.port {
            if key.address == local.address { return handle }
            if key.address == nil { wildcard = handle }
        }
        return wildcard
    }

    // MARK: RFC 9293 §3.10.7.1 — CLOSED

    func closedSegmentArrives(tuple: FourTuple, _ segment: IncomingSegment, now: Instant) {
        // "An incoming segment containing a RST is discarded."
        if segment.flags.contains(.rst) {
            io.counters.resetsReceived &+= 1
            return
        }
        switch configuration.tcp.closedPortResets {
        case .all: break
        case .exceptSYN where !segment.flags.contains(.syn): break
        case .exceptSYN, .none:
            // DEVIATION(RFC 9293 §3.10.7.1): configured to hide closed ports (FreeBSD's blackhole).
            io.decision("RFC 9293 §3.10.7.1", "segment for no connection: no RST (closedPortResets)", connection: tuple, now: now)
            return
        }
        if segment.flags.contains(.ack) {
            // <SEQ=SEG.ACK><CTL=RST>
            sendReset(tuple: tuple, sequence: segment.ack, acknowledging: nil)
        } else {
            // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
            sendReset(tuple: tuple, sequence: SequenceNumber(0), acknowledging: segment.seq + segment.length)
        }
        io.decision("RFC 9293 §3.10.7.1", "segment for no connection: RST", connection: tuple, now: now)
    }

    func sendReset(tuple: FourTuple, sequence: SequenceNumber, acknowledging: SequenceNumber?) {
        io.transmitReset(for: tuple, sequence: sequence, acknowledging: acknowledging)
    }

    // MARK: RFC 9293 §3.10.7.2 — LISTEN

    /// `previousSndNxt`: the SYN ended a TIME-WAIT (`timeWaitSegmentArrives`) whose connection had
    /// sent up to there.
    func listenSegmentArrives(
        _ handle: SlabHandle, tuple: FourTuple, _ segment: IncomingSegment, now: Instant,
        previousSndNxt: SequenceNumber? = nil
    ) {
        // First, check for an RST: ignore it.
        if segment.flags.contains(.rst) {
            io.counters.resetsReceived &+= 1
            return
        }
        // Second, check for an ACK: <SEQ=SEG.ACK><CTL=RST> — unless it returns a SYN cookie (RFC 4987 §3.6).
        if segment.flags.contains(.ack) {
            if !segment.syn, synCookieAckArrives(handle, tuple: tuple, segment, now: now) { return }
            sendReset(tuple: tuple, sequence: segment.ack, acknowledging: nil)
            return
        }
        // Third, check for a SYN.
        guard segment.syn else {
            // Fourth, other text or control: drop.
            io.counters.badSegments &+= 1
            return
        }
        // RFC 9293 §3.9.2.3 (MUST-63): "An incoming SYN with an invalid source address MUST be
        // ignored" — broadcast, multicast, unspecified (RFC 1122 §3.2.1.3).
        guard tuple.remote.address.canBeAPeer else {
            io.counters.badSegments &+= 1
            return
        }
        guard admitsNewConnection() else {
            refuseForMemory(tuple: tuple, segment, now: now)
            return
        }
        // A SYN that reopens a TIME-WAIT connection takes the record's place: never a cookie, whose
        // ISS could not be above the old SND.NXT (RFC 1122 §4.2.2.13), nor dropped for a full queue
        // (as Linux, `tcp_conn_request` with a TIME-WAIT ISN).
        let reopening = previousSndNxt != nil
        if configuration.tcp.synCookies == .always && !reopening {
            sendSYNCookie(tuple: tuple, segment, listener: handle, now: now)
            return
        }
        // Only the queue's fill is read: a copy of the listener would retain its accept queue.
        guard let synQueue = listeners.withElement(handle, { (count: $0.synQueueCount, limit: $0.synQueueLimit) })
        else { return }
        let queueFull = !reopening && (synQueue.count >= synQueue.limit
            || connections.count + timeWait.count + halfOpen.count >= configuration.maximumConnections)
        if queueFull && configuration.tcp.synCookies == .whenSYNQueueFull {
            sendSYNCookie(tuple: tuple, segment, listener: handle, now: now)
            return
        }
        guard !queueFull else {
            io.counters.synQueueDrops &+= 1
            io.counters.listenOverflows &+= 1
            io.decision("RFC 4987 §3", "SYN queue full (\(synQueue.count)); SYN dropped", connection: tuple, now: now)
            return
        }
        // RFC 7323 §5.4: the timestamp offset per 4-tuple (a keyed hash, as RFC 6528 §3), so a new
        // incarnation's TSvals follow the old one's (RFC 6191 at the peer), and a cookie
        // connection's agree with a queued one's.
        let (iss, timestampOffset) = initialNumbers(for: tuple, now: now, previousSndNxt: previousSndNxt)
        // RFC 7413 §4.2: a Fast Open SYN opens the connection at once, or asks for a cookie (Stack+FastOpen.swift).
        let fastOpen = fastOpenSYNArrives(listener: handle, tuple: tuple, segment, now: now)
        if case .open = fastOpen {
            openFastOpenConnection(listener: handle, tuple: tuple, segment, iss: iss, timestampOffset: timestampOffset, now: now)
            return
        }
        let receiveSpace = configuration.tcp.receiveBufferSize
        let entry = HalfOpenConnection(
            tuple: tuple, listener: handle, iss: iss, irs: segment.seq, peerOptions: segment.header.options,
            timestampOffset: timestampOffset,
            advertisedWindow: UInt16(clamping: receiveSpace),
            retransmitAt: now + configuration.tcp.initialRTO, synAckSentAt: now,
            // RFC 3168 §6.1.1: "If a host has received an ECN-setup SYN packet, then it MAY send an
            // ECN-setup SYN-ACK packet."
            explicitCongestion: configuration.tcp.explicitCongestionNotification != .off
                && ECNState.isSetupSYN(segment.flags),
            fastOpenCookie: fastOpen.cookieForm)
        let entryHandle = halfOpen.insert(entry)
        halfOpenTable[tuple] = entryHandle
        listeners.withElement(handle) { $0.synQueueCount += 1 }
        io.decision("RFC 9293 §3.10.7.2", "SYN in LISTEN: half-open entry, SYN-ACK with ISS \(iss)", connection: tuple, now: now)
        sendSYNACK(for: entry, now: now)
        scheduleHalfOpen(entryHandle, at: entry.retransmitAt)
        // Text in a SYN is not queued: the peer sends it again after the handshake (RFC 9293 §3.10.7.2 permits).
    }

    /// <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> with the options the peer offered and we support.
    func sendSYNACK(for entry: HalfOpenConnection, now: Instant) {
        let tcp = configuration.tcp
        var options = TCPOptions(maximumSegmentSize: UInt16(clamping: announcedMSS(for: entry.tuple.local.address, listener: entry.listener)))
        options.layout = tcp.synOptionLayout
        if tcp.windowScaling, entry.peerOptions.windowScale != nil {
            options.windowScale = tcp.offeredWindowShift
        }
        if tcp.selectiveAcknowledgments && entry.peerOptions.sackPermitted { options.sackPermitted = true }
        if tcp.timestamps, let peer = entry.peerOptions.timestamps {
            let clock = UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) &+ entry.timestampOffset
            options.timestamps = TCPTimestamps(value: clock, echoReply: peer.value)
        }
        if let form = entry.fastOpenCookie {
            // RFC 7413 §4.2.1: the cookie the client asked for (or a valid one for an invalid one).
            options.fastOpen = fastOpenState.key.cookie(client: entry.tuple.remote.address, server: entry.tuple.local.address, form: form)
        }
        let header = TCPHeader(
            sourcePort: entry.tuple.local.port, destinationPort: entry.tuple.remote.port,
            sequenceNumber: entry.iss, acknowledgmentNumber: entry.irs + 1,
            flags: entry.explicitCongestion ? [.syn, .ack, .ece] : [.syn, .ack],
            window: entry.advertisedWindow, options: options)
        io.transmit(header, from: entry.tuple.local.address, to: entry.tuple.remote.address)
    }

    // MARK: SYN-RECEIVED for a passive open (RFC 9293 §3.10.7.4 on a half-open entry)

    func halfOpenSegmentArrives(_ handle: SlabHandle, _ segment: consuming IncomingSegment, now: Instant) {
        guard let entry = halfOpen[handle] else { return }
        // The RST and SYN cases are functions of their own, so that the handshake's final ACK —
        // once a connection in `bench connrate` — runs through dense code (I1 misses).
        if segment.flags.contains(.rst) {
            halfOpenResetArrives(handle, entry, sequence: segment.seq, now: now)
            return
        }
        if segment.syn {
            halfOpenSYNArrives(handle, entry, sequence: segment.seq, flags: segment.flags, now: now)
            return
        }
        guard segment.flags.contains(.ack) else {
            io.counters.droppedNoAckFlag &+= 1
            return
        }
        guard segment.ack == entry.iss + 1 else {
            // "If the segment acknowledgment is not acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST>."
            io.counters.droppedUnacceptableAck &+= 1
            sendReset(tuple: entry.tuple, sequence: segment.ack, acknowledging: nil)
            return
        }
        // Two fields read in place: binding the listener, or reading through the slab's subscript,
        // copied it (a retain and release of its queue for every handshake).
        guard let (queued, backlog) = listeners.withElement(entry.listener, { ($0.acceptQueue.count, $0.backlog) }) else {
            removeHalfOpen(handle)
            closedSegmentArrives(tuple: entry.tuple, segment, now: now)
            return
        }
        guard queued < backlog else {
            // As Linux by default (tcp_abort_on_overflow = 0): drop the ACK and keep the half-open
            // entry; our SYN-ACK retransmission will make the peer ACK again later.
            io.counters.listenOverflows &+= 1
            if configuration.tcp.acceptQueueOverflow == .reset {
                removeHalfOpen(handle)
                sendReset(tuple: entry.tuple, sequence: segment.ack, acknowledging: nil)
                io.decision("RFC 9293 §3.10.7.4", "accept queue full (\(backlog)); connection reset",
                            connection: entry.tuple, now: now)
                return
            }
            io.decision("RFC 9293 §3.10.7.4", "accept queue full (\(backlog)); final ACK dropped",
                        connection: entry.tuple, now: now)
            return
        }
        removeHalfOpen(handle)
        let connectionHandle = promote(entry, now: now)
        // Moved into the TCB, not copied (as in `connectionSegmentArrives`).
        let state = withConnection(connectionHandle, passing: segment) { connection, segment in
            connection.segmentArrives(segment, now: now, io: &io)
            return connection.state
        }
        if state == .synReceived {
            // The segment failed a check before the ACK's (the sequence number, PAWS) and was
            // answered with an ACK: the handshake is not complete. Back to the half-open entry —
            // a TCB left in SYN-RECEIVED here would never reach the accept queue.
            removeConnection(connectionHandle)
            let entryHandle = halfOpen.insert(entry)
            halfOpenTable[entry.tuple] = entryHandle
            listeners.withElement(entry.listener) { $0.synQueueCount += 1 }
            scheduleHalfOpen(entryHandle, at: entry.retransmitAt)
            return
        }
        if let state, state != .closed {
            io.counters.passiveOpens &+= 1
            listeners.withElement(entry.listener) { listener in
                listener.acceptQueue.append(connectionHandle)
                if !listener.pendingEvent {
                    listener.pendingEvent = true
                    io.listenerEvents.append(entry.listener)
                }
            }
        } else {
            connections.withElement(connectionHandle) { $0.userClosed = true }
        }
        connectionActivity(connectionHandle, now: now)
    }

    /// An RST for a half-open entry (`halfOpenSegmentArrives`).
    @inline(never)
    private func halfOpenResetArrives(_ handle: SlabHandle, _ entry: HalfOpenConnection, sequence: SequenceNumber, now: Instant) {
        let rcvNxt = entry.irs + 1
        io.counters.resetsReceived &+= 1
        // RFC 5961 §3.2: exactly RCV.NXT resets; "return this connection to the LISTEN state".
        // (RFC 793's rule, when configured: anywhere in the window.) Elsewhere in the window it
        // draws a challenge ACK; outside, it is dropped (RFC 9293 §3.10.7.4, first check).
        let inWindow = sequence.isInWindow(start: rcvNxt, length: UInt32(entry.advertisedWindow))
        if sequence == rcvNxt || (inWindow && configuration.tcp.acceptsAnyResetInWindow) {
            removeHalfOpen(handle)
        } else if inWindow {
            if io.challengeAcks.allow(now: now) {
                io.counters.challengeAcksSent &+= 1
                io.decision("RFC 5961 §3.2", "challenge ACK: RST in the window but not RCV.NXT", connection: entry.tuple, now: now)
                var options = TCPOptions()
                if configuration.tcp.timestamps, let peer = entry.peerOptions.timestamps {
                    let clock = UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) &+ entry.timestampOffset
                    options.timestamps = TCPTimestamps(value: clock, echoReply: peer.value)
                }
                let header = TCPHeader(
                    sourcePort: entry.tuple.local.port, destinationPort: entry.tuple.remote.port,
                    sequenceNumber: entry.iss + 1, acknowledgmentNumber: rcvNxt, flags: .ack,
                    window: entry.advertisedWindow, options: options)
                io.transmit(header, from: entry.tuple.local.address, to: entry.tuple.remote.address)
            } else {
                io.counters.challengeAcksSuppressed &+= 1
            }
        } else {
            io.counters.droppedResetOutOfWindow &+= 1
        }
    }

    /// A SYN for a half-open entry (`halfOpenSegmentArrives`): the peer's SYN again, or a bad segment.
    @inline(never)
    private func halfOpenSYNArrives(
        _ handle: SlabHandle, _ entry: HalfOpenConnection, sequence: SequenceNumber, flags: TCPFlags, now: Instant
    ) {
        if sequence == entry.irs && !flags.contains(.ack) {
            // The peer did not hear our SYN-ACK: say it again.
            var entry = entry
            if entry.explicitCongestion && !ECNState.isSetupSYN(flags) {
                // RFC 3168 §6.1.1: "If a host has received at least one non-ECN-setup SYN ...
                // then it SHOULD NOT set ECT on data packets."
                entry.withdrawExplicitCongestion()
                halfOpen.withElement(handle) { $0.withdrawExplicitCongestion() }
            }
            halfOpen.withElement(handle) { $0.synAckRetransmitted() }
            sendSYNACK(for: entry, now: now)
        } else {
            io.counters.badSegments &+= 1
        }
    }

    /// Turns a half-open entry into a full TCB in SYN-RECEIVED, as if it had been one all along.
    func promote(_ entry: HalfOpenConnection, now: Instant) -> SlabHandle {
        let receiveMSS = announcedMSS(for: entry.tuple.local.address, listener: entry.listener)
        // Built in its slot and set up there (`Slab.insert(making:)`), not in this frame and copied.
        let handle = connections.insert {
            TCPConnection(
                tuple: entry.tuple, iss: entry.iss, state: .synReceived, receiveMSS: receiveMSS,
                timestampOffset: entry.timestampOffset, configuration: sharedTCPConfiguration)
        }
        let mtu = pathMTUCache.mtu(to: entry.tuple.remote.address, now: now)
        connections.withElement(handle) { connection in
            connection.handle = handle
            connection.listener = entry.listener
            if let mtu { connection.path.mtu = Int32(clamping: mtu) }
            connection.adoptPeerOptions(entry.peerOptions, now: now)
            if entry.explicitCongestion {
                // RFC 3168 §6.1.1: an ECN-setup SYN met our ECN-setup SYN-ACK.
                connection.ecn.setupSent = true
                connection.negotiateECN(peerAgreed: true, now: now, io: &io)
            }
            connection.irs = entry.irs
            connection.rcvNxt = entry.irs + 1
            connection.rcvAdvertisedEdge = connection.rcvNxt + UInt32(entry.advertisedWindow)
            connection.lastAckSent = connection.rcvNxt
            connection.sndNxt = entry.iss + 1
            connection.sndMax = entry.iss + 1
            if let timestamps = entry.peerOptions.timestamps, connection.timestampsEnabled {
                connection.tsRecent = timestamps.value
                connection.tsRecentTime = now
            } else if let sentAt = entry.timedSYNACK {
                // RFC 6298 §3: without timestamps the SYN-ACK is the segment being timed; its ACK gives
                // the connection's first RTT sample (§2 (2.2)) unless it was retransmitted (Karn).
                connection.rttTimedSequence = entry.iss + 1
                connection.rttTimedAt = sentAt
            }
            if let storage = recycledScoreboards.popLast() { connection.scoreboard.adoptStorage(storage) }
        }
        connectionTable[entry.tuple] = handle
        return handle
    }

    func removeHalfOpen(_ handle: SlabHandle) {
        guard let entry = halfOpen.remove(handle) else { return }
        timers.cancel(.halfOpen(handle))
        halfOpenTable[entry.tuple] = nil
        listeners.withElement(entry.listener) { $0.synQueueCount -= 1 }
    }

    func scheduleHalfOpen(_ handle: SlabHandle, at deadline: Instant) {
        halfOpen.withElement(handle) { $0.retransmitAt = deadline }
        timers.schedule(.halfOpen(handle), at: deadline)
    }

    /// SYN-ACK retransmission with backoff; after the SYN retry limit the entry is forgotten.
    func halfOpenTimerFired(_ handle: SlabHandle, entry timer: TimerHeap.Entry, now: Instant) {
        guard let entry = halfOpen[handle], entry.retransmitAt == timer.deadline else { return }
        guard Int(entry.retransmissions) < min(configuration.tcp.maximumSYNRetransmissions, Int(UInt16.max)) else {
            io.decision("RFC 9293 §3.8.3", "half-open connection expired after \(entry.retransmissions) SYN-ACK retransmissions",
                        connection: entry.tuple, now: now)
            removeHalfOpen(handle)
            return
        }
        io.counters.segmentsRetransmitted &+= 1
        sendSYNACK(for: entry, now: now)
        let backoff = configuration.tcp.initialRTO.nanoseconds << min(Int(entry.retransmissions) + 1, 16)
        let next = now + .nanoseconds(min(backoff, configuration.tcp.maximumRTO.nanoseconds))
        halfOpen.withElement(handle) {
            $0.retransmissions += 1
            $0.synAckRetransmitted()
            $0.retransmitAt = next
        }
        scheduleHalfOpen(handle, at: next)
    }
}
