import NIOCore

/// RFC 9293 §3.10.6 STATUS — what `ss -ti` shows for one connection.
public struct ConnectionStatus: Hashable, Sendable {
    public var state: TCPState
    public var local: Endpoint
    public var remote: Endpoint
    /// Recv-Q: bytes received and not yet read by the application.
    public var receiveQueue: Int
    /// Send-Q: bytes written by the application and not yet acknowledged by the peer.
    public var sendQueue: Int
    public var sendUnacknowledged: UInt32
    public var sendNext: UInt32
    public var receiveNext: UInt32
    /// snd.wnd: the peer's window, in bytes (scaled).
    public var sendWindow: Int
    /// rcv.wnd: the window we last advertised, in bytes.
    public var receiveWindow: Int
    public var sendWindowScale: Int
    public var receiveWindowScale: Int
    public var maximumSegmentSize: Int
    public var receiveMSS: Int
    public var smoothedRTT: TimeAmount?
    public var rttVariance: TimeAmount
    public var retransmissionTimeout: TimeAmount
    public var congestionWindow: Int
    public var slowStartThreshold: Int
    public var congestionControl: String
    public var inRecovery: Bool
    /// SACKed octets above snd.una and the segments holding them (RFC 6675 scoreboard).
    public var sackedBytes: Int
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
    public var tailLossProbes: UInt64
    public var spuriousRetransmissionsUndone: UInt64
    public var dsacksReceived: UInt64
    public var retransmits: UInt64
    public var timeouts: UInt64
    public var zeroWindowProbes: UInt64
    public var zeroWindowAdvertisements: UInt64
    public var outOfOrderBytes: Int
    public var timestamps: Bool
    public var sack: Bool
    public var bytesAcked: UInt64
    public var bytesReceived: UInt64
    public var error: TCPError?
    /// The last soft ICMP error (RFC 1122 §4.2.3.9), as SO_ERROR shows it before a timeout turns it fatal.
    public var softError: TCPError? = nil
    /// The path MTU this connection uses, when ICMP or RFC 4821 probing made it smaller than the MSS allows.
    public var pathMTU: Int? = nil
    /// ECN (RFC 3168) negotiated; CE-marked segments received, ECE ACKs received, cwnd reductions
    /// they caused (at most one per window, §6.1.2), and segments sent with CWR.
    public var ecn: Bool = false
    public var congestionExperiencedReceived: UInt64 = 0
    public var ecnEchoesReceived: UInt64 = 0
    public var ecnWindowReductions: UInt64 = 0
    public var congestionWindowReducedSent: UInt64 = 0
    /// Buffer autotuning (`TCPConfiguration.receiveBufferMaximum`, `sendBufferMaximum`): the most the
    /// application read in one round trip (Linux's rcv_space), the receiver's RTT estimate (rcv_rtt),
    /// and each buffer's size now and its maximum (equal when it does not grow).
    public var receiveSpace: Int = 0
    public var receiveRTT: TimeAmount? = nil
    public var receiveBuffer: Int = 0
    public var receiveBufferMaximum: Int = 0
    public var sendBuffer: Int = 0
    public var sendBufferMaximum: Int = 0
    /// Either buffer may grow.
    public var autotuning: Bool = false
}
