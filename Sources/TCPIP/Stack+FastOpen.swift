import NIOCore
import TCPIPWire

/// The stack's TCP Fast Open state: the server's cookie key (RFC 7413 §4.1.2).
struct FastOpenState {
    /// The key cookies are made with: the configured one, or drawn from the stack's generator.
    var key: FastOpenKey

    init(_ configuration: FastOpen, generator: inout some RandomNumberGenerator) {
        // Drawn whether or not a key is configured, so that configuring one changes no other draw.
        let drawn = FastOpenKey(key0: generator.next(), key1: generator.next())
        key = configuration.key ?? drawn
    }
}

/// What a SYN to a listener means for Fast Open (RFC 7413 §4.2.2, "Server: Receiving SYN").
enum FastOpenSYN {
    /// Not a Fast Open SYN, or Fast Open is off for the listener: the regular handshake.
    case none
    /// The regular handshake, and the SYN-ACK carries a valid cookie: the SYN asked for one
    /// (§4.2.1), or its cookie was not valid (§4.1.2: "a valid cookie is readily available").
    case sendCookie(TCPFastOpenCookie.Form)
    /// A valid cookie (or none needed): the connection opens at once and the data is delivered.
    case open

    var cookieForm: TCPFastOpenCookie.Form? {
        if case .sendCookie(let form) = self { return form }
        return nil
    }
}

// MARK: - Server

extension Stack {
    /// TCP_FASTOPEN on a listener: it takes data from SYNs with valid cookies, with at most
    /// `queueLimit` such connections in SYN-RECEIVED at once (RFC 7413 §4.2 "FastOpenEnabled",
    /// "PendingFastOpenRequests", §5.1); 0 turns it off again.
    public func setFastOpen(_ id: ListenerID, queueLimit: Int) throws(TCPError) {
        guard queueLimit >= 0 else { throw .invalidArgument }
        let found: Bool? = listeners.withElement(id.handle) { listener in
            listener.fastOpenQueueLimit = queueLimit > 0 ? queueLimit : nil
            return true
        }
        guard found != nil else { throw .connectionDoesNotExist }
    }

    /// The listener's limit of pending Fast Open connections, or nil when it takes no data from SYNs.
    public func fastOpenQueueLimit(_ id: ListenerID) -> Int? {
        listeners.withElement(id.handle) { $0.fastOpenQueueLimit } ?? nil
    }

    /// TCP_FASTOPEN_KEY and Linux's `tcp_fastopen_key`: the key of the cookies this stack gives
    /// and accepts from now on (RFC 7413 §4.1.2). Cookies made with the old key stop being valid.
    public func setFastOpenKey(_ key: FastOpenKey) {
        fastOpenState.key = key
    }

    /// The cookie this stack, as a server at `server`, gives a client at `client` (RFC 7413 §4.1.2).
    public func fastOpenCookie(client: IPAddress, server: IPAddress, form: TCPFastOpenCookie.Form = .standard) -> TCPFastOpenCookie {
        fastOpenState.key.cookie(client: client, server: server, form: form)
    }

    /// RFC 7413 §4.2.2, "Server: Receiving SYN and responding with SYN-ACK", steps 1–3.
    func fastOpenSYNArrives(listener handle: SlabHandle, tuple: FourTuple, _ segment: IncomingSegment, now: Instant) -> FastOpenSYN {
        let option = segment.header.options.fastOpen
        // Most SYNs: no cookie option and no data. Nothing to decide.
        guard option != nil || segment.payload.readableBytes > 0 else { return .none }
        let settings = configuration.tcp.fastOpen
        // Step 1: "If FastOpenEnabled is false, go to step 5" — and "MUST ignore all cookie options".
        guard settings.server,
              let (limit, queue) = listeners.withElement(handle, { ($0.fastOpenQueueLimit, ($0.acceptQueue.count, $0.backlog)) }),
              let limit
        else { return .none }
        if option?.isRequest == true { io.counters.fastOpenCookieRequests &+= 1 }
        // Step 2: PendingFastOpenRequests over the limit: the regular handshake, without a cookie
        // (§5.1; as Linux, whose tcp_fastopen_queue_check fails the whole of Fast Open).
        guard pendingFastOpenConnections(handle) < limit, queue.0 < queue.1 else {
            io.counters.fastOpenListenOverflows &+= 1
            io.decision("RFC 7413 §5.1", "Fast Open SYN: \(limit) Fast Open connections pending; regular handshake",
                        connection: tuple, now: now)
            return .none
        }
        if !settings.serverRequiresCookie {
            // DEVIATION(RFC 7413 §4.2.2): configured to take data without a cookie (Linux's
            // TFO_SERVER_COOKIE_NOT_REQD), for servers whose clients are known.
            return .open
        }
        guard let option else { return .none }
        let valid = fastOpenState.key.cookie(client: tuple.remote.address, server: tuple.local.address, form: option.form)
        if option.isRequest {
            io.decision("RFC 7413 §4.2.1", "Fast Open cookie request: SYN-ACK carries a cookie", connection: tuple, now: now)
            return .sendCookie(option.form)
        }
        // Step 3: IsCookieValid — regenerate the cookie and compare (§4.1.2).
        guard option.sameCookie(as: valid) else {
            io.counters.fastOpenPassiveFailures &+= 1
            io.decision("RFC 7413 §4.2.2", "Fast Open cookie invalid: data in the SYN ignored, SYN-ACK carries a valid cookie",
                        connection: tuple, now: now)
            return .sendCookie(option.form)
        }
        return .open
    }

    /// RFC 7413 §4.2.2 steps 4–6: a full TCB in SYN-RECEIVED at once, the SYN's data delivered to
    /// the application (the connection is in the accept queue from now on), and a SYN-ACK that
    /// acknowledges the SYN and the data.
    func openFastOpenConnection(
        listener handle: SlabHandle, tuple: FourTuple, _ segment: IncomingSegment, iss: SequenceNumber,
        timestampOffset: UInt32, now: Instant
    ) {
        let entry = HalfOpenConnection(
            tuple: tuple, listener: handle, iss: iss, irs: segment.seq, peerOptions: segment.header.options,
            timestampOffset: timestampOffset,
            advertisedWindow: UInt16(clamping: configuration.tcp.receiveBufferSize),
            retransmitAt: now + configuration.tcp.initialRTO, synAckSentAt: now,
            explicitCongestion: configuration.tcp.explicitCongestionNotification != .off && ECNState.isSetupSYN(segment.flags))
        let connectionHandle = promote(entry, now: now)
        io.counters.fastOpenPassive &+= 1
        io.counters.passiveOpens &+= 1
        io.decision("RFC 7413 §4.2.2", "Fast Open SYN with \(segment.payload.readableBytes) octets: SYN-RECEIVED, data delivered",
                    connection: tuple, now: now)
        withConnection(connectionHandle) { connection in
            connection.fastOpened = true
            // The SYN's window is never scaled (RFC 7323 §2.2).
            connection.sndWnd = UInt32(segment.header.window)
            connection.maxSndWnd = connection.sndWnd
            connection.sndWl1 = segment.seq
            connection.sndWl2 = iss
            // Step 4: "Buffer the data and notify the application." At most the receive buffer
            // (the window the SYN-ACK advertises); a FIN with the SYN is left for the peer to send
            // again, as text beyond what we acknowledge.
            let data = segment.payload.readableBytes
            if data > 0 {
                let taken = min(data, connection.receiveBufferCapacity)
                connection.deliverSYNData(segment.payload.getSlice(at: segment.payload.readerIndex, length: taken) ?? ByteBuffer(), io: &io)
            }
            // Step 5: the SYN-ACK acknowledges the SYN and the data (it carries RCV.NXT).
            connection.sendSYN(acknowledging: true, peerOffered: segment.header.options, now: now, io: &io)
        }
        listeners.withElement(handle) { listener in
            listener.fastOpenPending.append(connectionHandle)
            listener.acceptQueue.append(connectionHandle)
            if !listener.pendingEvent {
                listener.pendingEvent = true
                io.listenerEvents.append(handle)
            }
        }
        connectionActivity(connectionHandle, now: now)
    }

    /// PendingFastOpenRequests (RFC 7413 §4.2): the listener's Fast Open connections still in
    /// SYN-RECEIVED. Counted when a Fast Open SYN needs the number, so no other path pays for it.
    private func pendingFastOpenConnections(_ handle: SlabHandle) -> Int {
        guard let pending = listeners.withElement(handle, { $0.fastOpenPending }), !pending.isEmpty else { return 0 }
        let stillPending = pending.filter { connections.withElement($0) { $0.state == .synReceived } ?? false }
        listeners.withElement(handle) { $0.fastOpenPending = stillPending }
        return stillPending.count
    }
}

// MARK: - Client

extension Stack {
    /// OPEN, active, with TCP Fast Open (RFC 7413 §4.2.2; Linux's `sendto(MSG_FASTOPEN)`): with a
    /// cookie cached for `remote`'s address, the SYN carries it and the first octets of `data`;
    /// without one, the SYN asks for a cookie and carries no data (§4.2.1). The data the SYN does
    /// not carry is the application's to send once the connection is established — as with any
    /// SEND, nothing of it is queued here.
    ///
    /// Data in a SYN may reach the server application twice (§6.1: a duplicated SYN): use Fast
    /// Open only for requests that bear that.
    ///
    /// - Returns: the connection, and how many octets of `data` the SYN carries (0 without a cookie).
    public func connectWithFastOpen(
        to remote: Endpoint, data: ByteBuffer, from localAddress: IPAddress? = nil, maximumSegmentSize: Int? = nil,
        now: Instant
    ) throws(TCPError) -> (connection: ConnectionID, sentInSYN: Int) {
        try open(to: remote, from: localAddress, maximumSegmentSize: maximumSegmentSize, fastOpen: data, now: now)
    }

    /// Whether a Fast Open to `remote` would carry data: a cookie for it is cached (or the
    /// configuration sends data without one). Linux's TCP_FASTOPEN_CONNECT defers the SYN to the
    /// first write exactly when this holds.
    public func hasFastOpenCookie(for remote: IPAddress, from localAddress: IPAddress? = nil) -> Bool {
        guard configuration.tcp.fastOpen.client else { return false }
        if !configuration.tcp.fastOpen.clientRequiresCookie { return true }
        guard let local = localAddress ?? self.localAddress(matching: remote) else { return false }
        return io.fastOpenCookies[FastOpenCookieCache.Key(local: local, remote: remote)]?.cookie != nil
    }
}
