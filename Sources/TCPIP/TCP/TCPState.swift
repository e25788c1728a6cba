/// The connection states of RFC 9293 §3.3.2.
///
/// ```
///                             +---------+ ---------\      active OPEN
///                             |  CLOSED |            \    -----------
///                             +---------+<---------\   \   create TCB
///                               |     ^              \   \  snd SYN
///                  passive OPEN |     |   CLOSE        \   \
///                  ------------ |     | ----------       \   \
///                   create TCB  |     | delete TCB         \   \
///                               V     |                      \   \
///           rcv RST (note 1)  +---------+            CLOSE    |    \
///        -------------------->|  LISTEN |          ---------- |     |
///       /                     +---------+          delete TCB |     |
///      /           rcv SYN      |     |     SEND              |     |
///     /           -----------   |     |    -------            |     V
/// +--------+      snd SYN,ACK  /       \   snd SYN          +--------+
/// |        |<-----------------           ------------------>|        |
/// |  SYN   |                    rcv SYN                     |  SYN   |
/// |  RCVD  |<-----------------------------------------------|  SENT  |
/// |        |                  snd SYN,ACK                   |        |
/// |        |------------------           -------------------|        |
/// +--------+   rcv ACK of SYN  \       /  rcv SYN,ACK       +--------+
///    |         --------------   |     |   -----------
///    |                x         |     |     snd ACK
///    |                          V     V
///    |  CLOSE                 +---------+
///    | -------                |  ESTAB  |
///    | snd FIN                +---------+
///    |                 CLOSE    |     |    rcv FIN
///    V                -------   |     |    -------
/// +---------+         snd FIN  /       \   snd ACK         +---------+
/// |  FIN    |<----------------          ------------------>|  CLOSE  |
/// | WAIT-1  |------------------                            |   WAIT  |
/// +---------+          rcv FIN  \                          +---------+
///   | rcv ACK of FIN   -------   |                          CLOSE  |
///   | --------------   snd ACK   |                         ------- |
///   V        x                   V                         snd FIN V
/// +---------+               +---------+                    +---------+
/// |FINWAIT-2|               | CLOSING |                    | LAST-ACK|
/// +---------+               +---------+                    +---------+
///   |              rcv ACK of FIN |                 rcv ACK of FIN |
///   |  rcv FIN     -------------- |    Timeout=2MSL -------------- |
///   |  -------            x       V    ------------        x       V
///    \ snd ACK              +---------+delete TCB          +---------+
///      -------------------->|TIME-WAIT|------------------->| CLOSED  |
///                           +---------+                    +---------+
/// ```
/// (The RFC's Figure 5, redrawn.) LISTEN belongs to listeners, not to connections: a
/// passive open waits in a listener's SYN queue as a small half-open entry until its
/// handshake completes, so a connection is never in `.listen` except as a status.
public enum TCPState: Hashable, Sendable {
    /// No connection (RFC 9293 §3.3.2: "no connection state at all").
    case closed
    /// Waiting for a connection request (listeners only).
    case listen
    /// Our SYN sent, waiting for the peer's.
    case synSent
    /// SYN received and SYN-ACK sent, waiting for its acknowledgment.
    case synReceived
    /// Open: data flows both ways.
    case established
    /// We closed; our FIN not yet acknowledged.
    case finWait1
    /// Our FIN acknowledged; waiting for the peer's.
    case finWait2
    /// The peer closed; waiting for the application to close.
    case closeWait
    /// Both closed at once; waiting for the acknowledgment of our FIN.
    case closing
    /// The peer closed, then we did; waiting for the acknowledgment of our FIN.
    case lastAck
    /// TIME-WAIT carries its own deadline: 2·MSL after the last FIN was acknowledged (RFC 9293 §3.10.7.4, eighth).
    case timeWait(until: Instant)

    /// RFC 9293 §3.3.2 spells the states in capitals with hyphens; `ss` and our tables print them that way.
    public var rfcName: String {
        switch self {
        case .closed: "CLOSED"
        case .listen: "LISTEN"
        case .synSent: "SYN-SENT"
        case .synReceived: "SYN-RECEIVED"
        case .established: "ESTABLISHED"
        case .finWait1: "FIN-WAIT-1"
        case .finWait2: "FIN-WAIT-2"
        case .closeWait: "CLOSE-WAIT"
        case .closing: "CLOSING"
        case .lastAck: "LAST-ACK"
        case .timeWait: "TIME-WAIT"
        }
    }

    /// RFC 9293 §3.5: the states after the handshake, in which both sequence spaces are known.
    public var isSynchronized: Bool {
        switch self {
        case .closed, .listen, .synSent, .synReceived: false
        case .established, .finWait1, .finWait2, .closeWait, .closing, .lastAck, .timeWait: true
        }
    }

    /// States in which arriving text is accepted into the receive buffer (RFC 9293 §3.10.7.4, seventh).
    var acceptsText: Bool {
        switch self {
        case .established, .finWait1, .finWait2, .synReceived: true
        case .closed, .listen, .synSent, .closeWait, .closing, .lastAck, .timeWait: false
        }
    }

    /// States in which the user may still SEND (RFC 9293 §3.10.2).
    var acceptsUserData: Bool {
        switch self {
        case .synSent, .synReceived, .established, .closeWait: true
        case .closed, .listen, .finWait1, .finWait2, .closing, .lastAck, .timeWait: false
        }
    }

    /// States in which we have sent, or queued, our FIN.
    var hasQueuedFIN: Bool {
        switch self {
        case .finWait1, .finWait2, .closing, .lastAck, .timeWait: true
        case .closed, .listen, .synSent, .synReceived, .established, .closeWait: false
        }
    }

    /// States in which the peer's FIN has been received.
    var hasReceivedFIN: Bool {
        switch self {
        case .closeWait, .closing, .lastAck, .timeWait: true
        case .closed, .listen, .synSent, .synReceived, .established, .finWait1, .finWait2: false
        }
    }
}

extension TCPState: CustomStringConvertible {
    public var description: String { rfcName }
}
