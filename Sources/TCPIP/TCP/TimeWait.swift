import NIOCore
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

// MARK: A new incarnation of the 4-tuple

extension TimeWaitConnection {
    /// What a SYN arriving for this record shows about itself.
    enum SYNVerdict: Equatable {
        /// RFC 6191 §2: its TSval is greater than the last the old incarnation saw.
        case newerTimestamp
        /// RFC 6191 §2: its TSval equals the last seen and its sequence number is past the old
        /// incarnation's.
        case sameTimestampHigherSequence
        /// RFC 1122 §4.2.2.13 (and RFC 6191 §2 when either incarnation is without timestamps): its
        /// sequence number is past the old incarnation's.
        case higherSequence
        /// RFC 6191 §2: the old incarnation had no timestamps and the new one will.
        case timestampsNew
        /// RFC 6191 §2: its TSval is older than the last seen (or equal, with an old sequence number).
        case oldTimestamp
        /// RFC 1122 §4.2.2.13: no timestamps to go by, and its sequence number is not past RCV.NXT.
        case oldSequence

        /// Whether the SYN may start a new incarnation.
        var admits: Bool {
            switch self {
            case .newerTimestamp, .sameTimestampHigherSequence, .higherSequence, .timestampsNew: true
            case .oldTimestamp, .oldSequence: false
            }
        }
    }

    /// RFC 6191 §2, and RFC 1122 §4.2.2.13 without timestamps: whether a SYN (no ACK, no RST) with
    /// sequence number `sequence` and TSopt `timestamps` may reopen the connection from TIME-WAIT,
    /// i.e. cannot be an old duplicate of the incarnation this record keeps. `timestampsOn`: whether
    /// this stack would agree to timestamps on a new connection.
    ///
    /// "Greater than the last sequence number seen" is read as SEG.SEQ > RCV.NXT, as BSD
    /// (`tcp_twcheck`) and Linux (`tcp_timewait_state_process`) do: RCV.NXT is one past the peer's FIN.
    func verdict(onSYN sequence: SequenceNumber, timestamps: TCPTimestamps?, timestampsOn: Bool) -> SYNVerdict {
        let newTimestamps = timestampsOn ? timestamps : nil
        let higherSequence = sequence.isAfter(rcvNxt)
        if timestampsEnabled {
            guard let newTimestamps else { return higherSequence ? .higherSequence : .oldSequence }
            let difference = Int32(bitPattern: newTimestamps.value &- tsRecent)
            if difference > 0 { return .newerTimestamp }
            if difference == 0 && higherSequence { return .sameTimestampHigherSequence }
            return .oldTimestamp
        }
        if newTimestamps != nil { return .timestampsNew }
        return higherSequence ? .higherSequence : .oldSequence
    }

    /// Linux's `tcp_tw_reuse` for our own `connect`: the record's 4-tuple may be taken for a new
    /// connection when timestamps were on (the peer's PAWS, RFC 7323 §5, and RFC 6191 at the peer,
    /// then tell the incarnations apart) and at least `after` has passed since the last segment
    /// from the peer (`tsRecentTime`), so none of the old incarnation's is still due.
    func reusableForConnect(now: Instant, after: TimeAmount) -> Bool {
        timestampsEnabled && now - tsRecentTime >= after
    }
}
