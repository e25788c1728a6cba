import TCPIPWire

/// A connection in TIME-WAIT that its application has let go of (`Stack.release`), reduced to what
/// RFC 9293 §3.10.7.4 still needs in that state: the sequence variables, the negotiated options and
/// the 2·MSL deadline. About a tenth of a TCB (Linux keeps such connections as `tcp_timewait_sock`
/// for the same reason).
///
/// TIME-WAIT holds a connection for 2·MSL after it closed, which makes it the most numerous state on a
/// busy server: one per connection closed in the last minute. Kept as whole TCBs, a server closing
/// 50,000 connections a second holds three million of them, each 1.3 KB that no segment will touch.
///
/// No behaviour is lost. Every segment for the 4-tuple — a retransmitted FIN, an old duplicate, an
/// RST, a SYN — rebuilds the TCB (`rebuilt`) and goes through the one implementation of §3.10.7.4 that
/// every other state uses; if the connection is still in TIME-WAIT afterwards, it is reduced again.
struct TimeWaitConnection {
    let tuple: FourTuple
    /// 2·MSL after the last FIN was acknowledged (RFC 9293 §3.10.7.4, eighth); a retransmitted FIN
    /// restarts it.
    let until: Instant

    let iss: SequenceNumber
    /// SND.UNA = SND.NXT = SND.MAX: our FIN is acknowledged, nothing is outstanding.
    let sndNxt: SequenceNumber
    let sndWnd: UInt32
    let sndWl1: SequenceNumber
    let sndWl2: SequenceNumber
    let maxSndWnd: UInt32
    let irs: SequenceNumber
    let rcvNxt: SequenceNumber
    let rcvAdvertisedEdge: SequenceNumber
    let lastAckSent: SequenceNumber
    let maximumSegmentSize: Int32
    let receiveMSS: Int32
    let timestampOffset: UInt32
    let tsRecent: UInt32
    let tsRecentTime: Instant
    let sndWindowShift: UInt8
    let rcvWindowShift: UInt8
    let timestampsEnabled: Bool
    let sackEnabled: Bool
    /// RFC 3168: whether ECN is in use and whether our ACKs still echo CE (§6.1.3).
    let explicitCongestion: Bool
    let echoingCongestion: Bool
    let zeroWindowAnnounced: Bool

    /// The reduced form of `connection`, or nil when it holds anything a TIME-WAIT record does not keep
    /// (unread or unacknowledged data, timers other than 2·MSL): such a connection stays whole.
    init?(_ connection: borrowing TCPConnection) {
        guard case .timeWait(let until) = connection.state,
              connection.released, connection.userClosed,
              connection.receiveBuffer.isEmpty, connection.reassembly.isEmpty, connection.sendBuffer.count == 0,
              connection.sndUna == connection.sndNxt, connection.sndNxt == connection.sndMax,
              connection.pendingDuplicateSACK == nil, connection.delayedAckDeadline == nil,
              let maximumSegmentSize = Int32(exactly: connection.maximumSegmentSize),
              let receiveMSS = Int32(exactly: connection.receiveMSS)
        else { return nil }
        tuple = connection.tuple
        self.until = until
        iss = connection.iss
        sndNxt = connection.sndNxt
        sndWnd = connection.sndWnd
        sndWl1 = connection.sndWl1
        sndWl2 = connection.sndWl2
        maxSndWnd = connection.maxSndWnd
        irs = connection.irs
        rcvNxt = connection.rcvNxt
        rcvAdvertisedEdge = connection.rcvAdvertisedEdge
        lastAckSent = connection.lastAckSent
        self.maximumSegmentSize = maximumSegmentSize
        self.receiveMSS = receiveMSS
        timestampOffset = connection.timestampOffset
        tsRecent = connection.tsRecent
        tsRecentTime = connection.tsRecentTime
        sndWindowShift = connection.sndWindowShift
        rcvWindowShift = connection.rcvWindowShift
        timestampsEnabled = connection.timestampsEnabled
        sackEnabled = connection.sackEnabled
        explicitCongestion = connection.ecn.enabled
        echoingCongestion = connection.ecn.echoing
        zeroWindowAnnounced = connection.zeroWindowAnnounced
    }

    /// The TCB again, in TIME-WAIT, released by its application, as it was when it was reduced.
    /// Every connection of a stack is built from the stack's `TCPConfiguration`, so that is passed
    /// back in.
    func rebuilt(configuration: SharedTCPConfiguration) -> TCPConnection {
        var connection = TCPConnection(
            tuple: tuple, iss: iss, state: .timeWait(until: until), receiveMSS: Int(receiveMSS),
            timestampOffset: timestampOffset, configuration: configuration)
        connection.sndUna = sndNxt
        connection.sndNxt = sndNxt
        connection.sndMax = sndNxt
        connection.recover = sndNxt
        // Our FIN was the last octet sent, and it is acknowledged.
        connection.finSequence = sndNxt - 1
        connection.sndWnd = sndWnd
        connection.sndWl1 = sndWl1
        connection.sndWl2 = sndWl2
        connection.maxSndWnd = maxSndWnd
        connection.irs = irs
        connection.rcvNxt = rcvNxt
        connection.rcvAdvertisedEdge = rcvAdvertisedEdge
        connection.lastAckSent = lastAckSent
        connection.maximumSegmentSize = Int(maximumSegmentSize)
        connection.tsRecent = tsRecent
        connection.tsRecentTime = tsRecentTime
        connection.sndWindowShift = sndWindowShift
        connection.rcvWindowShift = rcvWindowShift
        connection.timestampsEnabled = timestampsEnabled
        connection.sackEnabled = sackEnabled
        connection.ecn.enabled = explicitCongestion
        connection.ecn.echoing = echoingCongestion
        connection.zeroWindowAnnounced = zeroWindowAnnounced
        connection.userClosed = true
        connection.released = true
        return connection
    }
}
