import NIOCore
import TCPIPWire

/// A passive OPEN (RFC 9293 §3.10.1): a port in LISTEN, its accept queue, and how many of its
/// half-open connections wait in the stack's SYN queue.
struct Listener {
    /// nil listens on every address of the stack.
    let address: IPAddress?
    let port: UInt16
    /// Established connections not yet accepted; at most `backlog`.
    var acceptQueue = CircularBuffer<SlabHandle>(initialCapacity: 8)
    let backlog: Int
    /// Half-open entries this listener has in the SYN queue.
    var synQueueCount = 0
    let synQueueLimit: Int
    var pendingEvent = false
}

/// A connection in SYN-RECEIVED reached through a passive OPEN, kept small until its handshake
/// completes: no buffers, no congestion state — a few dozen bytes of what the SYN said and what
/// we answered. This is what lets a SYN flood cost little (RFC 4987 §3.2 "SYN cache").
struct HalfOpenConnection {
    let tuple: FourTuple
    let listener: SlabHandle
    let iss: SequenceNumber
    let irs: SequenceNumber
    /// What the peer's SYN offered: MSS, window scale, SACK-permitted, its timestamp.
    let peerOptions: TCPOptions
    let timestampOffset: UInt32
    /// The window we advertised in our SYN-ACK.
    let advertisedWindow: UInt16
    var retransmissions = 0
    var retransmitAt: Instant
    var scheduledWakeup: Instant?
}
