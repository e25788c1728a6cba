import NIOCore
import TCPIPWire

/// RFC 9293 §3.10.7.4, seventh (process the segment text) and eighth (check the FIN bit),
/// with the out-of-order queue and the acknowledgment policy of §3.8.6.3.
extension TCPConnection {
    mutating func processText(_ segment: IncomingSegment, now: Instant, io: inout StackIO) {
        updateTimestampRecent(segment, now: now)
        let hasText = segment.payload.readableBytes > 0
        guard hasText || segment.fin else { return }

        if state.hasReceivedFIN {
            // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: "This should not occur since a FIN has been
            // received from the remote side. Ignore the segment text." A retransmitted FIN is
            // acknowledged again; in TIME-WAIT it restarts the 2·MSL timeout.
            if segment.fin, case .timeWait = state {
                enterTimeWait(now: now, io: &io)
            }
            sendAck(now: now, io: &io)
            return
        }

        if released && hasText {
            // RFC 1122 §4.2.2.13: "if new data is received after CLOSE is called, its TCP SHOULD
            // send a RST to show that data was lost" — the application released the connection
            // and will never read it. The connection goes first; the text is then answered as by a
            // connection that does not exist (RFC 9293 §3.10.7.1): <SEQ=SEG.ACK><CTL=RST>. SEG.ACK
            // is the peer's RCV.NXT, the one sequence number its RFC 5961 §3.2 check accepts an RST
            // at; SND.NXT may lie beyond it (our FIN or data the peer has not received).
            io.counters.resetsOnCloseWithUnreadData &+= 1
            io.decision("RFC 1122 §4.2.2.13", "text arrived after the application closed: RST", connection: tuple, now: now)
            let reply = segment.ack
            enterClosed(error: .aborted, io: &io, now: now)
            sendReset(sequence: reply, now: now, io: &io)
            return
        }

        if sackEnabled, pendingDuplicateSACK == nil, hasText, !reassembly.isEmpty {
            // RFC 2883 §4 (1): octets we already hold out of order arrived again.
            pendingDuplicateSACK = reassembly.firstHeldRange(
                overlapping: segment.seq, to: segment.seq + segment.payload.readableBytes, rcvNxt: rcvNxt)
        }
        if segment.seq == rcvNxt {
            // In order: deliver, then pull whatever the out-of-order queue now continues.
            let filledHole = !reassembly.isEmpty
            var finArrived = segment.fin
            if hasText { deliver(segment.payload, io: &io) }
            if filledHole {
                while let (payload, fin) = reassembly.popInOrder(rcvNxt: rcvNxt) {
                    if payload.readableBytes > 0 { deliver(payload, io: &io) }
                    if fin { finArrived = true }
                }
                if reassembly.finSequence == rcvNxt {
                    finArrived = true
                }
            }
            if hasText && receiveAutotuning { sampleReceiveRTT(segment, now: now) }
            if finArrived {
                finArrives(delayable: !filledHole, now: now, io: &io)
                return
            }
            // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: acknowledge at once when filling a hole; otherwise
            // at least every second segment — or every second full-sized segment's worth of octets,
            // so one large (coalesced) segment counts as the segments it carries — and within the
            // delayed-ACK timeout. The first segments of a connection are acknowledged at once
            // (quick-ACK, as Linux): the peer's slow start is clocked by our ACKs, and RFC 9293
            // §3.8.6.3 allows an ACK at any time.
            segmentsSinceAck += 1
            let length = segment.payload.readableBytes
            if bytesReceived == UInt64(length) && length > 0 {
                // The first data of the connection: up to 16 quick ACKs, fewer if the window holds
                // fewer than two segments per ACK (Linux: min(rcv_wnd / (2·rcv_mss), 16)).
                quickAcksLeft = min(configuration.pointee.quickAcks, receiveBufferCapacity / (2 * max(sendMSS, 1)))
            }
            bytesSinceAck += length
            // A full-sized segment from this peer: min(its MSS, ours) less the options we both send.
            let fullSized = max(sendMSS, 1)
            let quick = quickAcksLeft > 0 && length > 0 && !interactive
            if quick { quickAcksLeft -= 1 }
            if filledHole || delayedAckTimeout == nil || quick || pendingDuplicateSACK != nil {
                sendAck(now: now, io: &io)
            } else if segmentsSinceAck >= 2 || bytesSinceAck >= 2 * fullSized {
                sendAckAtEndOfBatch(now: now, io: &io)
            } else if delayedAckDeadline == nil, let timeout = delayedAckTimeout {
                delayedAckDeadline = now + timeout
            }
        } else {
            // Out of order (it lies inside the window, past RCV.NXT): hold it and send an immediate
            // duplicate ACK so the sender's fast retransmit can work (RFC 5681 §4.2).
            io.counters.outOfOrderSegments &+= 1
            let outcome = reassembly.insert(
                segment.payload, at: segment.seq, fin: segment.fin, rcvNxt: rcvNxt, pinnedLimit: reassemblyLimit)
            if outcome == .overLimit {
                io.counters.droppedReassemblyLimit &+= 1
                io.decision("RFC 9293 §3.10.7.4", "out-of-order queue at its memory bound; segment dropped",
                            connection: tuple, now: now)
            }
            sendAck(now: now, io: &io)
        }
    }

    /// RFC 7413 §4.2.2 step 4: a Fast Open SYN's data, in order at RCV.NXT and within the window
    /// (it is at most one segment into the window the SYN-ACK will advertise); acknowledged by the SYN-ACK.
    ///
    /// Not counted in `bytesReceived`, which the acknowledgment policy reads as "data has arrived
    /// since the handshake": as Linux's child socket, whose delayed-ACK state starts with the first
    /// data after the SYN (quick-ACKs then; a FIN before any is acknowledged at once).
    mutating func deliverSYNData(_ payload: ByteBuffer, io: inout StackIO) {
        receiveBuffer.append(payload)
        rcvNxt = rcvNxt + payload.readableBytes
        post(.readable, io: &io)
    }

    /// Appends in-order bytes to the receive buffer and advances RCV.NXT.
    private mutating func deliver(_ payload: ByteBuffer, io: inout StackIO) {
        receiveBuffer.append(payload)
        rcvNxt = rcvNxt + payload.readableBytes
        bytesReceived &+= UInt64(payload.readableBytes)
        post(.readable, io: &io)
        if receiveBuffer.pinnedBytes > 4 * max(receiveBuffer.count, 4096) {
            // Many small slices of large buffers: copy them into one so they stop pinning storage.
            _ = receiveBuffer.compact()
        }
    }

    /// RFC 9293 §3.10.7.4, eighth: the FIN is now in order.
    private mutating func finArrives(delayable: Bool = false, now: Instant, io: inout StackIO) {
        rcvNxt = rcvNxt + 1
        reassembly.removeAll()
        // RFC 2883 §5: a D-SACK lets the data sender find that a retransmission was spurious and undo
        // its congestion response. The sender of a FIN we now hold has nothing more to send, so a
        // D-SACK for a duplicate that came with it serves no one; nor can SACK blocks follow a FIN
        // (RFC 2018 §4 reports data held above RCV.NXT, and there is none). As Linux (tcp_fin).
        pendingDuplicateSACK = nil
        let wasEstablished = state == .established
        post(.readable, io: &io)
        switch state {
        case .synReceived, .established:
            state = .closeWait
            io.decision("RFC 9293 §3.10.7.4", "FIN received: CLOSE-WAIT", connection: tuple, now: now)
        case .finWait1:
            if let finSequence, finSequence.isBefore(sndUna) {
                enterTimeWait(now: now, io: &io)
            } else {
                state = .closing
                io.decision("RFC 9293 §3.10.7.4", "FIN received before our FIN was acknowledged: CLOSING (simultaneous close)",
                            connection: tuple, now: now)
                if configuration.pointee.repeatsFINInSimultaneousClose, let finSequence {
                    // The peer's FIN did not acknowledge ours: it crossed it or ours was lost. The ACK
                    // we owe carries our FIN again — a retransmission RFC 9293 §3.8.1 permits at any
                    // time, costing no extra segment, that repairs a lost FIN without waiting for the
                    // RTO (as FreeBSD, which repeats an unacknowledged FIN on what it sends).
                    io.counters.segmentsRetransmitted &+= 1
                    retransmittedSegments &+= 1
                    // Karn (RFC 6298 §3): the FIN's ACK could now answer either copy.
                    if let timed = rttTimedSequence, timed.isAfter(finSequence) { rttTimedSequence = nil }
                    sendSegment(flags: [.fin, .ack], sequence: finSequence, now: now, io: &io)
                    return
                }
            }
        case .finWait2:
            enterTimeWait(now: now, io: &io)
        case .closeWait, .closing, .lastAck, .timeWait, .closed, .listen, .synSent:
            break
        }
        // "send an acknowledgment for the FIN" — at once, unless the configuration delays it so the
        // application's answer (its own FIN) can carry it: RFC 1122 §4.2.3.2 allows an ACK to wait up
        // to the delayed-ACK timeout. Only after data, in ESTABLISHED, and when the FIN came in order
        // by itself (a FIN that fills a hole is acknowledged at once, RFC 5681 §4.2).
        // As Linux's __tcp_ack_snd_check, the ACK goes at once when more than a full-sized segment of
        // sequence space (the FIN counted) arrived since the last ACK (RFC 9293 §3.8.6.3's "at least
        // every second full-sized segment" does not wait for a FIN to be answered).
        let unacknowledged = Int(lastAckSent.octets(to: rcvNxt))
        if delayable, wasEstablished, configuration.pointee.delaysFINAcknowledgment, bytesReceived > 0,
           unacknowledged <= max(sendMSS, 1), let timeout = delayedAckTimeout {
            io.decision("RFC 1122 §4.2.3.2", "FIN after data in ESTABLISHED: ACK delayed so the reply's FIN can carry it",
                        connection: tuple, now: now)
            if delayedAckDeadline == nil { delayedAckDeadline = now + timeout }
            return
        }
        if state == .closeWait {
            // Owed at once, sent when the batch ends: an application that answers the end of the
            // stream by closing, before then, sends a FIN that carries it — three segments to close
            // instead of four. Only into CLOSE-WAIT: a connection entering TIME-WAIT may be reduced
            // to a record before the batch ends, and must acknowledge now.
            sendAckAtEndOfBatch(now: now, io: &io)
            return
        }
        sendAck(now: now, io: &io)
    }

    /// RFC 7323 §4.3 (2): if SEG.TSval >= TS.Recent and SEG.SEQ =< Last.ACK.sent, TS.Recent <- SEG.TSval.
    private mutating func updateTimestampRecent(_ segment: IncomingSegment, now: Instant) {
        guard timestampsEnabled, let timestamps = segment.header.options.timestamps else { return }
        if Int32(bitPattern: timestamps.value &- tsRecent) >= 0 && segment.seq.isAtOrBefore(lastAckSent) {
            tsRecent = timestamps.value
            tsRecentTime = now
        }
    }
}
