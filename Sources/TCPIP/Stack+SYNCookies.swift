import NIOCore
import TCPIPWire

/// A listener's SYN cookies (RFC 4987 §3.6; `SYNCookies` has the encoding): a SYN answered with no
/// state kept, and the final ACK that brings the state back.
extension Stack {
    /// <SEQ=cookie><ACK=SEG.SEQ+1><CTL=SYN,ACK>, remembering nothing.
    func sendSYNCookie(tuple: FourTuple, _ segment: IncomingSegment, listener: SlabHandle, now: Instant) {
        let tcp = configuration.tcp
        let peer = segment.header.options
        let iss = synCookies.initialSequenceNumber(
            for: tuple, peerISN: segment.seq, peerMSS: peer.maximumSegmentSize, now: now)
        var options = TCPOptions(maximumSegmentSize: UInt16(clamping: announcedMSS(for: tuple.local.address, listener: listener)))
        options.layout = tcp.synOptionLayout
        var flags: TCPFlags = [.syn, .ack]
        // Window scale, SACK-permitted and ECN survive only in the timestamp; without one, offer none.
        if tcp.timestamps, let timestamps = peer.timestamps {
            let peerShift = tcp.windowScaling ? peer.windowScale : nil
            if peerShift != nil { options.windowScale = tcp.offeredWindowShift }
            let sack = tcp.selectiveAcknowledgments && peer.sackPermitted
            options.sackPermitted = sack
            // RFC 3168 §6.1.1: an ECN-setup SYN may get an ECN-setup SYN-ACK.
            let ecn = tcp.explicitCongestionNotification != .off && ECNState.isSetupSYN(segment.flags)
            if ecn { flags.insert(.ece) }
            // RFC 7323 §5.4: the 4-tuple's offset, which the connection the ACK creates recomputes.
            let offset = initialSequenceNumbers.timestampOffset(for: tuple)
            let clock = UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) &+ offset
            options.timestamps = TCPTimestamps(
                value: SYNCookies.timestampValue(clock: clock, peerWindowScale: peerShift, sackPermitted: sack, ecn: ecn),
                echoReply: timestamps.value)
        }
        let header = TCPHeader(
            sourcePort: tuple.local.port, destinationPort: tuple.remote.port,
            sequenceNumber: iss, acknowledgmentNumber: segment.seq + 1,
            flags: flags, window: UInt16(clamping: tcp.receiveBufferSize), options: options)
        io.counters.synCookiesSent &+= 1
        io.decision("RFC 4987 §3.6", "SYN answered with a SYN cookie (ISS \(iss)); no state kept",
                    connection: tuple, now: now)
        io.transmit(header, from: tuple.local.address, to: tuple.remote.address)
    }

    /// An ACK at a listener with no half-open entry: if it returns a valid cookie, the connection
    /// is created as if its half-open entry had been kept. Returns false when the ACK is no
    /// cookie's, for the caller to answer as LISTEN answers any ACK (RFC 9293 §3.10.7.2).
    func synCookieAckArrives(_ listenerHandle: SlabHandle, tuple: FourTuple, _ segment: IncomingSegment, now: Instant) -> Bool {
        switch configuration.tcp.synCookies {
        case .off:
            return false
        case .whenSYNQueueFull:
            // Only while a cookie we sent could still be valid: otherwise every stray ACK would be a
            // guess at the MAC (Linux's tcp_synq_no_recent_overflow).
            guard synCookies.mayHaveSentValidCookies(now: now) else { return false }
        case .always:
            break
        }
        let decoded: SYNCookies.Decoded
        switch synCookies.validate(
            tuple: tuple, sequence: segment.seq, acknowledgment: segment.ack,
            timestamps: segment.header.options.timestamps, now: now)
        {
        case .success(let value):
            decoded = value
        case .failure(let rejection):
            io.counters.synCookiesFailed &+= 1
            io.decision("RFC 4987 §3.6", "ACK is no valid SYN cookie (\(rejection))", connection: tuple, now: now)
            return false
        }
        io.counters.synCookiesValidated &+= 1
        guard let accept = listeners.withElement(listenerHandle, { (count: $0.acceptQueue.count, backlog: $0.backlog) })
        else { return false }
        guard admitsNewConnection() else {
            refuseForMemory(tuple: tuple, segment, now: now)
            return true
        }
        guard accept.count < accept.backlog else {
            io.counters.listenOverflows &+= 1
            if configuration.tcp.acceptQueueOverflow == .reset {
                sendReset(tuple: tuple, sequence: segment.ack, acknowledging: nil)
            }
            // Otherwise dropped: the peer's next segment (its data, at the same SEG.SEQ) brings the
            // cookie again.
            io.decision("RFC 4987 §3.6", "valid SYN cookie but accept queue full (\(accept.backlog))",
                        connection: tuple, now: now)
            return true
        }
        let entry = HalfOpenConnection(
            tuple: tuple, listener: listenerHandle, iss: decoded.iss, irs: decoded.irs,
            peerOptions: decoded.options, timestampOffset: initialSequenceNumbers.timestampOffset(for: tuple),
            advertisedWindow: UInt16(clamping: configuration.tcp.receiveBufferSize), retransmitAt: now,
            synAckSentAt: nil, explicitCongestion: decoded.ecn)
        io.decision("RFC 4987 §3.6", "valid SYN cookie: connection created, MSS \(decoded.options.maximumSegmentSize ?? 0)"
                        + (decoded.options.windowScale.map { ", wscale \($0)" } ?? "")
                        + (decoded.options.sackPermitted ? ", SACK" : ""),
                    connection: tuple, now: now)
        let connectionHandle = promote(entry, now: now)
        withConnection(connectionHandle) { connection in
            connection.segmentArrives(segment, now: now, io: &io)
        }
        switch connections.withElement(connectionHandle, { $0.state }) {
        case .synReceived?, .closed?, nil:
            // The ACK failed a later check (PAWS, the window): there is no half-open entry to go
            // back to, so the connection goes; the peer's next segment brings the cookie again.
            removeConnection(connectionHandle)
            return true
        default:
            break
        }
        io.counters.passiveOpens &+= 1
        listeners.withElement(listenerHandle) { listener in
            listener.acceptQueue.append(connectionHandle)
            if !listener.pendingEvent {
                listener.pendingEvent = true
                io.listenerEvents.append(listenerHandle)
            }
        }
        connectionActivity(connectionHandle, now: now)
        return true
    }
}
