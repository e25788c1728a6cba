import TCPIPWire

/// The window we advertise: free receive-buffer space, scaled, never shrinking, and opened
/// only in steps large enough to be worth a segment.
extension TCPConnection {
    /// Free space in the receive buffer: what the peer may send beyond RCV.NXT.
    var receiveSpace: Int { max(0, receiveBufferCapacity - receiveBuffer.count) }

    /// RFC 9293 §3.8.6.2.2 (receiver SWS avoidance, MUST-39): the right edge advances only when
    /// it would move by at least min(RCV.BUFF / 2, MSS).
    var windowOpeningThreshold: Int { min(receiveBufferCapacity / 2, receiveMSS) }

    /// RCV.WND for the acceptability test of RFC 9293 §3.10.7.4: the window announced, or with
    /// `ReceiveWindowForAcceptance.bufferSpace` the free space when that is larger.
    var acceptanceWindow: UInt32 {
        let announced = rcvWnd
        switch configuration.pointee.receiveWindowForAcceptance {
        case .announced: return announced
        case .bufferSpace: return max(announced, UInt32(clamping: receiveSpace))
        }
    }

    /// The largest window the 16-bit field can carry with our shift (RFC 7323 §2.3).
    var maximumAdvertisableWindow: Int { 65535 << Int(rcvWindowShift) }

    /// How far the right edge could move now, past what was last advertised. Space the window
    /// field cannot announce doesn't count: without scaling, a buffer over 64 KiB would otherwise
    /// make every read send an update that repeats the same window.
    var potentialWindowIncrease: Int {
        let potentialEdge = rcvNxt + min(receiveSpace, maximumAdvertisableWindow)
        let increase = rcvAdvertisedEdge.distance(to: potentialEdge)
        return Int(max(0, increase))
    }

    /// Computes the window field for an outgoing segment and records the new right edge.
    ///
    /// - Returns: the 16-bit window field, already shifted (RFC 7323 §2.3). SYN segments carry
    ///   an unscaled window (RFC 7323 §2.2).
    mutating func advertiseWindow(isSYN: Bool, io: inout StackIO, now: Instant) -> UInt16 {
        let shift = isSYN ? 0 : Int(rcvWindowShift)
        let current = Int(rcvWnd)
        var window = current
        // RFC 9293 §3.8.6.2.2: RCV.WND becomes RCV.BUFF − RCV.USER once that exceeds it by
        // min(Fr·RCV.BUFF, Eff.snd.MSS). Measured on the free space itself: when the field caps the
        // window (a buffer beyond 64 KiB without scaling), a FIN or a small segment moves the right
        // edge by a few octets, and the ACK must not leave the window short by them for good.
        switch configuration.pointee.receiverSWSAvoidance {
        case .rightEdge:
            let belowFreeSpace = receiveSpace - current >= windowOpeningThreshold && current < maximumAdvertisableWindow
            if potentialWindowIncrease >= windowOpeningThreshold || belowFreeSpace
                || current == 0 && receiveSpace >= windowOpeningThreshold {
                window = receiveSpace
            }
        case .smallWindows:
            // 4.4BSD: all the free space, unless it is below both RCV.BUFF/4 and the MSS.
            if receiveSpace >= min(receiveBufferCapacity / 4, receiveMSS) {
                window = receiveSpace
            }
        }
        // RFC 9293 §3.8.6 (SHLD-14): don't shrink — keep the old right edge if the new one is left of it.
        window = max(window, current)
        var field = (window >> shift)
        if field << shift < current {
            // Rounding down by the scale would move the right edge left; round up instead (RFC 7323 §2.4).
            field += 1
        }
        field = min(field, 65535)
        let advertised = UInt32(field << shift)
        rcvAdvertisedEdge = SequenceNumber.latest(rcvAdvertisedEdge, rcvNxt + advertised)
        if advertised == 0 {
            if !zeroWindowAnnounced {
                io.counters.zeroWindowAdvertisements &+= 1
                zeroWindowAdvertisementsSent &+= 1
                io.decision(
                    "RFC 9293 §3.8.6", "receive buffer full (\(receiveBuffer.count) bytes unread); advertising a zero window",
                    connection: tuple, now: now)
            }
            zeroWindowAnnounced = true
        } else if advertised > 0 {
            if zeroWindowAnnounced {
                io.decision(
                    "RFC 9293 §3.8.6.2.2", "window reopens to \(advertised) bytes (freed ≥ min(RCV.BUFF/2, MSS) = \(windowOpeningThreshold))",
                    connection: tuple, now: now)
            }
            zeroWindowAnnounced = false
        }
        return UInt16(field)
    }
}
