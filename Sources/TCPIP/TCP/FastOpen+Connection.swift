import NIOCore
import TCPIPWire

/// A Fast Open client's connection (RFC 7413 §4.2.1, §4.2.2): its first SYN, and the SYN-ACK.
extension TCPConnection {
    /// The first SYN of a Fast Open: with the cached cookie, as much of `data` as the server's cached
    /// MSS allows (§4.2.2 "Client: Sending SYN", 1b); without one, a cookie request and no data
    /// (§4.2.1 step 1). Returns the octets the SYN carries, which the send buffer now holds.
    mutating func sendFastOpenSYN(_ data: ByteBuffer, now: Instant, io: inout StackIO) -> Int {
        let settings = configuration.pointee.fastOpen
        guard settings.client else {
            sendSYN(acknowledging: false, peerOffered: nil, now: now, io: &io)
            return 0
        }
        let cached = io.fastOpenCookies[FastOpenCookieCache.Key(local: tuple.local.address, remote: tuple.remote.address)]
        // Without the cookie requirement (TFO_CLIENT_NO_COOKIE) the SYN carries data and no cookie
        // at all, a cached one included (Linux's tcp_fastopen_cookie_check).
        let cookie = settings.clientRequiresCookie ? cached?.cookie : nil
        fastOpenRequested = true
        // The form of a request: the experimental one once a standard request got no cookie from
        // this server (`FastOpenCookieCache.Entry.tryExperimental`).
        let requestForm: TCPFastOpenCookie.Form = cached?.tryExperimental == 1 ? .experimental : .standard
        fastOpenExperimental = (cookie?.form ?? requestForm) == .experimental
        guard cookie != nil || !settings.clientRequiresCookie, data.readableBytes > 0 else {
            io.decision("RFC 7413 §4.2.1", "Fast Open: no cookie cached; SYN requests one", connection: tuple, now: now)
            sendSYN(acknowledging: false, peerOffered: nil, fastOpen: cookie ?? .request(requestForm), now: now, io: &io)
            return 0
        }
        // §4.1.3: "Without a cached server MSS, the amount of data in the SYN packet is limited to the
        // default MSS of 536 bytes for IPv4 … and 1220 bytes for IPv6"; as Linux (tcp_send_syn_data),
        // less the 40 octets options may take, and never more than our own MSS allows.
        let defaultMSS = if case .v6 = tuple.remote.address { 1220 } else { 536 }
        // DEVIATION(RFC 7413 §4.1.3) with `uncachedSYNDataLimit = .ownMSS`: Linux's bound, for its tests.
        let uncached = settings.uncachedSYNDataLimit == .ownMSS ? receiveMSS : defaultMSS
        let serverMSS = cached?.maximumSegmentSize ?? uncached
        let room = max(0, min(serverMSS, receiveMSS) - TCPOptions.maximumLength)
        let taken = sendBuffer.append(data.getSlice(at: data.readerIndex, length: min(room, data.readableBytes)) ?? ByteBuffer(),
                                      pool: &io.packedChunks)
        io.counters.fastOpenActive &+= 1
        io.decision("RFC 7413 §4.2.2", "Fast Open: SYN carries the cached cookie and \(taken) octets", connection: tuple, now: now)
        // Without a cookie the SYN asks for none: a cookie in the SYN-ACK is unsolicited.
        fastOpenUnsolicited = cookie == nil
        sendSYN(acknowledging: false, peerOffered: nil, fastOpen: cookie, dataLength: taken, now: now, io: &io)
        return taken
    }

    /// The SYN-ACK of a Fast Open: its cookie and MSS are cached (§4.1.3, §4.2.1 step 3); the data
    /// it acknowledges leaves the send buffer; data it does not is sent again at once, as new data
    /// after the handshake (§4.2.2, "Client: Receiving SYN-ACK"). Returns whether data of the SYN goes again.
    @discardableResult
    mutating func fastOpenSYNACKArrives(_ segment: IncomingSegment, now: Instant, io: inout StackIO) -> Bool {
        let offered = segment.header.options.fastOpen
        // A cookie our SYN did not ask for is ignored (Linux's tcp_rcv_fastopen_synack: "Ignore an
        // unsolicited cookie"; RFC 7413 §4.1.3 caches what a request brought).
        let cookie = offered?.isRequest == false && !fastOpenUnsolicited ? offered : nil
        let synData = Int((iss + 1).octets(to: sndMax))
        // A request (a SYN without data, never retransmitted) that got no cookie: a server that
        // knows only the other form of the option may have ignored it, so the next request to it
        // uses the experimental form; when that gets none either, the standard form for good —
        // Linux's fallback (tcp_rcv_fastopen_synack's try_exp, tcp_fastopen_cache_set/_get).
        let tryExperimental: UInt8 = cookie == nil && synData == 0 && retransmittedSegments == 0
            ? (fastOpenExperimental ? 2 : 1) : 0
        io.fastOpenCookies.update(
            FastOpenCookieCache.Key(local: tuple.local.address, remote: tuple.remote.address),
            cookie: cookie, maximumSegmentSize: segment.header.options.maximumSegmentSize.map(Int.init),
            tryExperimental: tryExperimental)
        guard synData > 0 else { return false }
        let acknowledged = min(synData, Int((iss + 1).octets(to: sndUna)))
        if acknowledged > 0 { sendBuffer.removeFirst(acknowledged, pool: &io.packedChunks) }
        // A timeout sent the SYN again without its data and took SND.NXT back to ISS+1; a SYN-ACK
        // that acknowledges the data of the first SYN moves it on (nothing below SND.UNA is sent again).
        if sndNxt.isBefore(sndUna) { sndNxt = sndUna }
        if acknowledged < synData {
            io.counters.fastOpenActiveFailures &+= 1
            io.decision("RFC 7413 §4.2.2", "SYN-ACK acknowledges \(acknowledged) of \(synData) octets of the SYN: the rest goes again",
                        connection: tuple, now: now)
            // A retransmission of what the SYN carried (as Linux's tcp_rcv_fastopen_synack counts it).
            sndNxt = sndUna
            return true
        }
        return false
    }
}
