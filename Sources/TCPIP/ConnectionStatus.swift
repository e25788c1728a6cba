import NIOCore

/// RFC 9293 §3.10.6 STATUS — what `ss -ti` shows for one connection.
public struct ConnectionStatus: Hashable, Sendable {
    /// The connection's state (RFC 9293 §3.3.2).
    public var state: TCPState
    /// Our end.
    public var local: Endpoint
    /// The peer's end.
    public var remote: Endpoint
    /// Recv-Q: bytes received and not yet read by the application.
    public var receiveQueue: Int
    /// Send-Q: bytes written by the application and not yet acknowledged by the peer.
    public var sendQueue: Int
    /// SND.UNA: the oldest sequence number not yet acknowledged.
    public var sendUnacknowledged: UInt32
    /// SND.NXT: the next sequence number to send.
    public var sendNext: UInt32
    /// RCV.NXT: the next sequence number expected from the peer.
    public var receiveNext: UInt32
    /// snd.wnd: the peer's window, in bytes (scaled).
    public var sendWindow: Int
    /// rcv.wnd: the window we last advertised, in bytes.
    public var receiveWindow: Int
    /// The shift the peer's windows are scaled by (RFC 7323 §2); 0 without window scaling.
    public var sendWindowScale: Int
    /// The shift our windows are scaled by; 0 without window scaling.
    public var receiveWindowScale: Int
    /// The MSS we send with: the most payload octets in one segment.
    public var maximumSegmentSize: Int
    /// The MSS we announced: the most payload the peer may send in one segment.
    public var receiveMSS: Int
    /// SRTT (RFC 6298 §2); nil before the first sample.
    public var smoothedRTT: TimeAmount?
    /// RTTVAR (RFC 6298 §2).
    public var rttVariance: TimeAmount
    /// RTO (RFC 6298 §2): how long the oldest unacknowledged segment waits before it is retransmitted.
    public var retransmissionTimeout: TimeAmount
    /// cwnd, in bytes (RFC 5681).
    public var congestionWindow: Int
    /// ssthresh, in bytes; `Int.max` until the first loss.
    public var slowStartThreshold: Int
    /// The congestion control algorithm's name: `reno` or `cubic`.
    public var congestionControl: String
    /// Whether the connection is in fast recovery (RFC 6675).
    public var inRecovery: Bool
    /// SACKed octets above snd.una and the segments holding them (RFC 6675 scoreboard).
    public var sackedBytes: Int
    /// The segments holding `sackedBytes`.
    public var sackedSegments: Int
    /// Octets judged lost (RFC 6675 IsLost, RACK, RTO) and not SACKed since.
    public var lostBytes: Int
    /// Of those, octets retransmitted and still in flight.
    public var retransmittedBytes: Int
    /// RFC 6675 pipe: what the sender thinks is in the network.
    public var pipe: Int
    /// RFC 8985 RACK.reordering_seen: the path delivered out of order (or an episode proved spurious).
    public var reorderingSeen: Bool
    /// RACK-TLP in use on this connection (SACK negotiated and enabled).
    public var rack: Bool
    /// Fast recoveries entered, tail loss probes sent, episodes undone as spurious, D-SACKs received.
    public var fastRecoveries: UInt64
    /// Tail loss probes sent (RFC 8985 §7).
    public var tailLossProbes: UInt64
    /// Loss episodes found spurious and undone.
    public var spuriousRetransmissionsUndone: UInt64
    /// D-SACK blocks received (RFC 2883).
    public var dsacksReceived: UInt64
    /// Segments retransmitted.
    public var retransmits: UInt64
    /// Retransmission timeouts.
    public var timeouts: UInt64
    /// Zero-window probes sent.
    public var zeroWindowProbes: UInt64
    /// Segments sent advertising a zero window.
    public var zeroWindowAdvertisements: UInt64
    /// Octets received above RCV.NXT, held for reassembly.
    public var outOfOrderBytes: Int
    /// Whether timestamps (RFC 7323) were negotiated.
    public var timestamps: Bool
    /// Whether SACK (RFC 2018) was negotiated.
    public var sack: Bool
    /// Bytes of ours the peer acknowledged.
    public var bytesAcked: UInt64
    /// Bytes received in order from the peer.
    public var bytesReceived: UInt64
    /// The error that ended the connection, if it ended on one.
    public var error: TCPError?
    /// The last soft ICMP error (RFC 1122 §4.2.3.9), as SO_ERROR shows it before a timeout turns it fatal.
    public var softError: TCPError? = nil
    /// The path MTU this connection uses, when ICMP or RFC 4821 probing made it smaller than the MSS allows.
    public var pathMTU: Int? = nil
    /// ECN (RFC 3168) negotiated; CE-marked segments received, ECE ACKs received, cwnd reductions
    /// they caused (at most one per window, §6.1.2), and segments sent with CWR.
    public var ecn: Bool = false
    /// Data segments received with CE marked.
    public var congestionExperiencedReceived: UInt64 = 0
    /// ACKs received with ECE.
    public var ecnEchoesReceived: UInt64 = 0
    /// Congestion window reductions for ECE.
    public var ecnWindowReductions: UInt64 = 0
    /// Segments sent with CWR.
    public var congestionWindowReducedSent: UInt64 = 0
    /// Buffer autotuning (`TCPConfiguration.receiveBufferMaximum`, `sendBufferMaximum`): the most the
    /// application read in one round trip (Linux's rcv_space), the receiver's RTT estimate (rcv_rtt),
    /// and each buffer's size now and its maximum (equal when it does not grow).
    public var receiveSpace: Int = 0
    /// The receiver's RTT estimate (Linux's rcv_rtt); nil before the first.
    public var receiveRTT: TimeAmount? = nil
    /// The receive buffer's size now.
    public var receiveBuffer: Int = 0
    /// The most the receive buffer may grow to.
    public var receiveBufferMaximum: Int = 0
    /// The send buffer's size now.
    public var sendBuffer: Int = 0
    /// The most the send buffer may grow to.
    public var sendBufferMaximum: Int = 0
    /// Either buffer may grow.
    public var autotuning: Bool = false
}
