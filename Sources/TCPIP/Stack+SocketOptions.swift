/// Per-connection socket options beyond TCP_NODELAY (`Stack.setNoDelay`), for runtimes and the
/// packetdrill runner that map `setsockopt` onto the stack.
extension Stack {
    /// SO_SNDBUF: how much SEND may queue on this connection from now on. Data already queued stays;
    /// SEND takes nothing more until the queue drains below the new size.
    public func setSendBufferSize(_ id: ConnectionID, _ size: Int, now: Instant) {
        withConnection(id.handle) { connection in
            connection.sendBuffer.capacity = max(0, size)
        }
        connectionActivity(id.handle, now: now)
    }
}
