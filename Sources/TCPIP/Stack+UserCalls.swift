import NIOCore
import TCPIPWire

/// The user calls of RFC 9293 §3.10 as the application makes them, by handle.
extension Stack {
    /// §3.10.1 OPEN, passive: listen on `port` (on `address`, or every address of the stack).
    public func listen(on port: UInt16, address: IPAddress? = nil, backlog: Int = 128) throws(TCPError) -> ListenerID {
        guard port != 0, backlog > 0 else { throw .invalidArgument }
        let key = ListenerKey(address: address, port: port)
        guard listenerTable[key] == nil else { throw .addressInUse }
        var listener = Listener(
            address: address, port: port, backlog: backlog,
            synQueueLimit: max(backlog, configuration.tcp.synQueueLimit))
        if configuration.tcp.fastOpen.server && configuration.tcp.fastOpen.serverOnEveryListener {
            listener.fastOpenQueueLimit = backlog
        }
        let handle = listeners.insert(listener)
        listenerTable[key] = handle
        return ListenerID(handle: handle)
    }

    /// Stops listening. Connections already accepted are untouched; those still queued are aborted.
    public func closeListener(_ id: ListenerID, now: Instant) {
        guard let listener = listeners.remove(id.handle) else { return }
        listenerTable[ListenerKey(address: listener.address, port: listener.port)] = nil
        // Its half-open connections go with it, as Linux drops its request sockets: no more SYN-ACKs
        // for a port that no longer listens, and a late final ACK finds a closed port (§3.10.7.1).
        for entryHandle in halfOpen.handles where halfOpen[entryHandle]?.listener == id.handle {
            if let entry = halfOpen.remove(entryHandle) { halfOpenTable[entry.tuple] = nil }
            timers.cancel(.halfOpen(entryHandle))
        }
        for handle in listener.acceptQueue {
            abort(ConnectionID(handle: handle), now: now)
        }
    }

    /// Takes one established connection off a listener's accept queue.
    public func accept(_ id: ListenerID) -> ConnectionID? {
        listeners.withElement(id.handle) { listener in
            listener.acceptQueue.popFirst().map { ConnectionID(handle: $0) }
        } ?? nil
    }

    /// §3.10.1 OPEN, active: sends a SYN to `remote` from an ephemeral port.
    ///
    /// - Parameters:
    ///   - remote: the peer's address and port.
    ///   - localAddress: which of our addresses to send from; nil for the first of the remote's family.
    ///   - maximumSegmentSize: the MSS to announce instead of the link's, when smaller
    ///     (TCP_MAXSEG; a VPN clamping segments to its tunnel's MTU). It bounds what we send too.
    ///   - now: the current time.
    public func connect(
        to remote: Endpoint, from localAddress: IPAddress? = nil, maximumSegmentSize: Int? = nil, now: Instant
    ) throws(TCPError) -> ConnectionID {
        noteFilterTime(now)
        return try open(to: remote, from: localAddress, maximumSegmentSize: maximumSegmentSize, fastOpen: nil, now: now).connection
    }

    /// OPEN, active, with RFC 7413's Fast Open when `fastOpen` is not nil (`connectWithFastOpen`):
    /// returns the connection and how many octets of `fastOpen` the SYN carries.
    func open(
        to remote: Endpoint, from localAddress: IPAddress?, maximumSegmentSize: Int?, fastOpen: ByteBuffer?, now: Instant
    ) throws(TCPError) -> (connection: ConnectionID, sentInSYN: Int) {
        guard remote.port != 0 else { throw .invalidArgument }
        // RFC 9293 §3.9.1.1 (MUST-46): an OPEN to a broadcast or multicast address is an error.
        guard remote.address.canBeAPeer else { throw .invalidArgument }
        if let maximumSegmentSize, !Self.userMSSRange.contains(maximumSegmentSize) { throw .invalidArgument }
        guard let local = localAddress ?? self.localAddress(matching: remote.address), isLocal(local) else {
            throw .addressUnavailable
        }
        guard connections.count + timeWait.count < configuration.maximumConnections else { throw .resourcesExhausted }
        guard admitsNewConnection() else {
            io.counters.memoryBudgetRefusals &+= 1
            throw .resourcesExhausted
        }
        let (tuple, previousSndNxt) = try ephemeralTuple(from: local, to: remote, now: now)
        // RFC 7323 §5.4: a timestamp offset per 4-tuple (as for passive opens), so a new
        // incarnation's TSvals follow the old one's and the peer's PAWS and RFC 6191 can tell them apart.
        let (iss, timestampOffset) = initialNumbers(for: tuple, now: now, previousSndNxt: previousSndNxt)
        let receiveMSS = announcedMSS(for: local, clampedTo: maximumSegmentSize)
        let handle = connections.insert {
            TCPConnection(
                tuple: tuple, iss: iss, state: .synSent, receiveMSS: receiveMSS,
                timestampOffset: timestampOffset, configuration: sharedTCPConfiguration)
        }
        connectionTable[tuple] = handle
        io.counters.activeOpens &+= 1
        var sentInSYN = 0
        withConnection(handle) { connection in
            connection.handle = handle
            if let storage = recycledScoreboards.popLast() { connection.scoreboard.adoptStorage(storage) }
            connection.openedAt = now
            if let mtu = pathMTUCache.mtu(to: remote.address, now: now) { connection.path.mtu = Int32(clamping: mtu) }
            io.decision("RFC 9293 §3.10.1", "active OPEN: SYN-SENT, ISS \(iss)", connection: tuple, now: now)
            if let fastOpen {
                // RFC 7413 §4.2.2 (Stack+FastOpen.swift).
                sentInSYN = connection.sendFastOpenSYN(fastOpen, now: now, io: &io)
            } else {
                connection.sendSYN(acknowledging: false, peerOffered: nil, now: now, io: &io)
            }
        }
        connectionActivity(handle, now: now)
        return (ConnectionID(handle: handle), sentInSYN)
    }

    /// The 4-tuple of an active open from `local` to `remote`: the first free one in the order of
    /// RFC 6056's Algorithm 4; only when none is free, one held in TIME-WAIT that Linux's
    /// `tcp_tw_reuse` conditions let us take over (`StackConfiguration.timeWaitReuse`), whose record
    /// is then forgotten; with it, the SND.NXT that record kept (for the new ISS). Only that is
    /// returned, not the record: a record in the result made every open's frame larger by its size.
    private func ephemeralTuple(
        from local: IPAddress, to remote: Endpoint, now: Instant
    ) throws(TCPError) -> (FourTuple, previousSndNxt: SequenceNumber?) {
        let search = ephemeralPorts.search(from: local, to: remote)
        var reusable: SlabHandle?
        for _ in 0..<ephemeralPorts.count {
            let candidate = FourTuple(local: Endpoint(local, ephemeralPorts.next(search)), remote: remote)
            guard connectionTable[candidate] == nil, halfOpenTable[candidate] == nil else { continue }
            if timeWait.isEmpty || timeWaitTable[candidate] == nil { return (candidate, nil) }
            if reusable == nil { reusable = reusableTimeWait(candidate, now: now) }
        }
        return try reuseTimeWait(reusable, now: now)
    }

    /// No 4-tuple was free: the TIME-WAIT record `ephemeralTuple` found reusable, if any, taken over.
    /// Out of line, so that the search's loop stays dense (this is reached only when every port is in use).
    @inline(never)
    private func reuseTimeWait(_ reusable: SlabHandle?, now: Instant) throws(TCPError) -> (FourTuple, previousSndNxt: SequenceNumber?) {
        guard let reusable, let record = removeTimeWait(reusable) else { throw .addressUnavailable }
        io.counters.timeWaitReusedByConnect &+= 1
        io.decision("RFC 6191 §2", "TIME-WAIT reused by connect (tcp_tw_reuse): timestamps on, last segment \(now - record.tsRecentTime) ago",
                    connection: record.tuple, now: now)
        return (record.tuple, record.sndNxt)
    }

    /// §3.10.2 SEND. Returns how many bytes the send buffer took (0 when it is full).
    public func send(_ id: ConnectionID, _ bytes: ByteBuffer, now: Instant) throws(TCPError) -> Int {
        try send(id, bytes, endOfRecord: false, now: now)
    }

    /// SEND, with the end of what is taken marked as the end of a record when `endOfRecord`
    /// (Linux's MSG_EOR): no segment carries octets of two records, so a record's last segment may
    /// be short while more data waits — and that short segment goes at once, as Linux pushes every
    /// skb but the last past Nagle. RFC 9293 §3.7 leaves segment boundaries to the sender.
    public func send(_ id: ConnectionID, _ bytes: ByteBuffer, endOfRecord: Bool, now: Instant) throws(TCPError) -> Int {
        noteFilterTime(now)
        var bytes = bytes
        if configuration.memoryBudget != nil, bytes.readableBytes > 0,
           !makeRoom(for: min(bytes.readableBytes, connections.withElement(id.handle) { $0.sendBuffer.freeSpace } ?? 0)) {
            // At the memory budget SEND takes nothing, as a full send buffer would.
            bytes = ByteBuffer()
        }
        let result = withConnection(id.handle) { connection -> Result<Int, TCPError> in
            do throws(TCPError) {
                return .success(try connection.send(bytes, endOfRecord: endOfRecord, now: now, io: &io))
            } catch {
                return .failure(error)
            }
        }
        guard let result else { throw .connectionDoesNotExist }
        connectionActivity(id.handle, now: now)
        return try result.get()
    }

    /// §3.10.3 RECEIVE: up to `maxLength` bytes, or why there are none.
    public func read(_ id: ConnectionID, upTo maxLength: Int = .max, now: Instant) throws(TCPError) -> ReceiveResult {
        noteFilterTime(now)
        if configuration.memoryBudget != nil { updateBufferCeiling() }
        let result = withConnection(id.handle) { connection -> Result<ReceiveResult, TCPError> in
            do throws(TCPError) {
                return .success(try connection.read(upTo: maxLength, now: now, io: &io))
            } catch {
                return .failure(error)
            }
        }
        guard let result else { throw .connectionDoesNotExist }
        // Only a read that took bytes can have changed what the timers or the slot depend on (it
        // may have sent a window update); one that found none, or the end, changed nothing.
        if case .success(.data) = result { connectionActivity(id.handle, now: now) }
        return try result.get()
    }

    /// §3.10.3 RECEIVE without copying: up to `maxLength` bytes, but never more than one arriving
    /// segment brought — a slice of the datagram they came in, so no allocation and no copy. Calls
    /// in a row return, chunk by chunk, the bytes one `read` would have joined into one buffer.
    public func readChunk(_ id: ConnectionID, upTo maxLength: Int = .max, now: Instant) throws(TCPError) -> ReceiveResult {
        noteFilterTime(now)
        if configuration.memoryBudget != nil { updateBufferCeiling() }
        let result = withConnection(id.handle) { connection -> Result<ReceiveResult, TCPError> in
            do throws(TCPError) {
                return .success(try connection.read(upTo: maxLength, chunk: true, now: now, io: &io))
            } catch {
                return .failure(error)
            }
        }
        guard let result else { throw .connectionDoesNotExist }
        // Only a read that took bytes can have changed what the timers or the slot depend on (it
        // may have sent a window update); one that found none, or the end, changed nothing.
        if case .success(.data) = result { connectionActivity(id.handle, now: now) }
        return try result.get()
    }

    /// MSG_PEEK: what `read` would return, left in place.
    public func peek(_ id: ConnectionID, upTo maxLength: Int = .max) -> ByteBuffer? {
        connections.withElement(id.handle) { $0.peek(upTo: maxLength) } ?? nil
    }

    /// §3.10.4 CLOSE: no more data from us; reading goes on until the peer's FIN. The handle stays
    /// valid until the connection has fully closed.
    public func close(_ id: ConnectionID, now: Instant) throws(TCPError) {
        noteFilterTime(now)
        let result = withConnection(id.handle) { connection -> TCPError? in
            connection.userClosed = true
            do throws(TCPError) {
                try connection.close(now: now, io: &io)
                return nil
            } catch {
                return error
            }
        }
        guard let result else { throw .connectionDoesNotExist }
        connectionActivity(id.handle, now: now)
        if let result { throw result }
    }

    /// The application is done with the connection in both directions, as a socket's `close()`:
    /// it will read no more. RFC 1122 §4.2.2.13: a CLOSE "while received data is still pending"
    /// SHOULD send an RST to show that data was lost (RFC 2525 §2.17) — so unread data means
    /// ABORT; otherwise this is CLOSE, and text that arrives later is answered with an RST.
    public func release(_ id: ConnectionID, now: Instant) {
        let found = connections.withElement(id.handle) { connection -> (unread: Int, tuple: FourTuple) in
            connection.released = true
            return (connection.receiveBuffer.count, connection.tuple)
        }
        guard let found else { return }
        if found.unread > 0 {
            io.counters.resetsOnCloseWithUnreadData &+= 1
            io.decision("RFC 1122 §4.2.2.13", "closed with \(found.unread) bytes unread: RST shows the data was lost",
                        connection: found.tuple, now: now)
            abort(id, now: now)
        } else {
            try? close(id, now: now)
        }
    }

    /// §3.10.5 ABORT: RST, and the connection is gone.
    public func abort(_ id: ConnectionID, now: Instant) {
        noteFilterTime(now)
        withConnection(id.handle) { connection in
            connection.userClosed = true
            connection.abort(now: now, io: &io)
        }
        connectionActivity(id.handle, now: now)
    }

    /// §3.10.6 STATUS, or nil for a handle that no longer names a connection.
    public func status(_ id: ConnectionID) -> ConnectionStatus? {
        connections.withElement(id.handle) { $0.status(now: .zero) }
    }

    /// The state alone, cheaper than `status`.
    ///
    /// Read in place: through the slab's subscript, the TCB was copied out and destroyed again
    /// (1,300 instructions a call, 3% of the connection-rate benchmark, which asks once a cycle).
    public func state(_ id: ConnectionID) -> TCPState? {
        connections.withElement(id.handle) { $0.state }
    }

    /// TCP_NODELAY: turn Nagle's algorithm off (or on again).
    public func setNoDelay(_ id: ConnectionID, _ noDelay: Bool, now: Instant) {
        withConnection(id.handle) { connection in
            connection.nagle = !noDelay
            connection.output(now: now, io: &io)
        }
        connectionActivity(id.handle, now: now)
    }

    /// Every live connection, in slot order (deterministic).
    public var allConnections: [ConnectionID] {
        connections.handles.map { ConnectionID(handle: $0) }
    }
}
