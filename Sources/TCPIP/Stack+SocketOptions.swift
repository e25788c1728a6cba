import NIOCore

/// Per-connection socket options beyond TCP_NODELAY (`Stack.setNoDelay`), for runtimes and the
/// packetdrill runner that map `setsockopt` onto the stack.
extension Stack {
    /// SO_SNDBUF: how much SEND may queue on this connection from now on. Data already queued stays;
    /// SEND takes nothing more until the queue drains below the new size.
    public func setSendBufferSize(_ id: ConnectionID, _ size: Int, now: Instant) {
        withConnection(id.handle) { connection in
            connection.sendBuffer.capacity = max(0, size)
            connection.sendBufferLocked = true
        }
        connectionActivity(id.handle, now: now)
    }

    /// SO_KEEPALIVE with TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT: keep-alives on this connection,
    /// or none (RFC 1122 §4.2.3.6).
    public func setKeepalive(_ id: ConnectionID, _ keepalive: Keepalive?, now: Instant) {
        connections.withElement(id.handle) { connection in
            connection.keepalive = keepalive
            connection.keepaliveProbesSent = 0
            connection.lastHeardFrom = now
        }
        connectionActivity(id.handle, now: now)
    }

    /// TCP_USER_TIMEOUT (RFC 5482): how long sent data may stay unacknowledged; nil for R2's count.
    public func setUserTimeout(_ id: ConnectionID, _ timeout: TimeAmount?, now: Instant) {
        connections.withElement(id.handle) { $0.userTimeout = timeout }
        connectionActivity(id.handle, now: now)
    }

    /// TCP_KEEPINIT (FreeBSD): how long this connection's OPEN may take before it fails with
    /// ETIMEDOUT, counted from its first SYN; nil for the SYN retransmission count alone. Has no
    /// effect once the connection is established.
    public func setConnectionTimeout(_ id: ConnectionID, _ timeout: TimeAmount?, now: Instant) {
        connections.withElement(id.handle) { $0.connectionTimeout = timeout }
        connectionActivity(id.handle, now: now)
    }

    /// TCP_SYNCNT (Linux): SYN retransmissions before this connection's OPEN fails with ETIMEDOUT
    /// (RFC 9293 §3.8.3 R2); Linux accepts 1 to 127.
    public func setSYNRetransmissions(_ id: ConnectionID, _ count: Int, now: Instant) throws(TCPError) {
        guard (1...127).contains(count) else { throw .invalidArgument }
        guard connections.contains(id.handle) else { throw .connectionDoesNotExist }
        connections.withElement(id.handle) { $0.synRetransmissionLimit = count }
        connectionActivity(id.handle, now: now)
    }

    /// TCP_MAXSEG's range, as Linux: at least 88 octets (TCP_MIN_MSS), at most what the field holds.
    static let userMSSRange = 88...65535

    /// TCP_MAXSEG on a listener: the MSS its SYN-ACKs announce from now on, when smaller than the
    /// link's, and so the most its connections send (RFC 9293 §3.7.1: Eff.snd.MSS ≤ what we announce
    /// is not required, but a VPN clamping its tunnel wants both directions small).
    public func setMaximumSegmentSize(_ id: ListenerID, _ size: Int) throws(TCPError) {
        guard Self.userMSSRange.contains(size) else { throw .invalidArgument }
        guard listeners.contains(id.handle) else { throw .connectionDoesNotExist }
        listeners.withElement(id.handle) { $0.maximumSegmentSize = size }
    }

    /// TCP_MAXSEG as `getsockopt` reports it: the MSS in use once synchronized (Eff.snd.MSS less options).
    public func maximumSegmentSize(_ id: ConnectionID) -> Int? {
        connections.withElement(id.handle) { $0.sendMSS }
    }
}
