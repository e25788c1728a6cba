import NIOCore
import TCPIPWire

/// Intercept mode (`StackConfiguration.interception`): the stack terminates flows to every address.
///
///     SYN to any address ──▶ connection request (no SYN-ACK; its retransmissions absorbed)
///                              ├─ accept ──▶ SYN-ACK with the SYN's options ──▶ SYN-RECEIVED ──▶ ESTABLISHED
///                              ├─ refuse ──▶ RST, ICMP unreachable, or nothing
///                              └─ deadline ──▶ RST
///     UDP to a new 5-tuple ──▶ flow: a connected endpoint at the original destination, until idle
///     ICMP echo to any address ──▶ answered, delivered to the application, or dropped
///
/// A request is a compact record, as a SYN-queue entry is (`connectionRequestEntryBytes`): what the
/// SYN said, no buffers. The input path reaches this file only where a normal stack would answer
/// "no connection" (RFC 9293 §3.10.7.1) or "port unreachable": the established path pays nothing.
extension Stack {
    // MARK: Connection requests

    /// What one pending request costs: its slot, its table entry and its deadline timer.
    public static var connectionRequestEntryBytes: Int {
        MemoryLayout<PendingConnectionRequest?>.stride + 2 * MemoryLayout<UInt32>.stride
            + MemoryLayout<FourTuple>.stride + MemoryLayout<SlabHandle>.stride
            + MemoryLayout<TimerHeap.Entry>.stride
    }

    /// Connection requests waiting for the application's answer.
    public var pendingRequestCount: Int { requests.count }

    /// UDP flows open (`StackEvent.udpFlow`), not yet expired or closed.
    public var udpFlowCount: Int { udpFlows }

    /// The request `id` names, or nil once it has been answered, refused or has expired.
    public func connectionRequest(_ id: ConnectionRequestID) -> ConnectionRequest? {
        requests[id.handle].map { $0.request(id) }
    }

    /// A segment for a 4-tuple with no connection, no half-open entry, no TIME-WAIT record and no
    /// listener, in intercept mode: a SYN becomes a connection request; a segment for a pending
    /// request is absorbed; anything else meets the CLOSED state (RFC 9293 §3.10.7.1).
    ///
    /// `previousSndNxt`: the SYN ended a TIME-WAIT whose connection had sent up to there; the
    /// accepted connection's ISS must be above it (RFC 1122 §4.2.2.13), as for a listener's.
    func interceptedSegmentArrives(
        tuple: FourTuple, _ segment: IncomingSegment, now: Instant, previousSndNxt: SequenceNumber? = nil
    ) {
        if let handle = requestTable[tuple] {
            requestSegmentArrives(handle, segment, now: now)
            return
        }
        guard segment.syn, !segment.flags.contains(.ack), !segment.flags.contains(.rst) else {
            closedSegmentArrives(tuple: tuple, segment, now: now)
            return
        }
        // RFC 9293 §3.9.2.3 (MUST-63): a SYN from a broadcast or multicast source is ignored; one to
        // such an address is no connection either.
        guard tuple.remote.address.canBeAPeer, tuple.local.address.namesSingleHost else {
            io.counters.badSegments &+= 1
            return
        }
        guard admitsNewConnection() else {
            refuseForMemory(tuple: tuple, segment, now: now)
            return
        }
        let interception = configuration.interception!
        // Requests reserve their connection: an accepted request never finds the table full.
        guard connections.count + requests.count < interception.maxConnections else {
            io.counters.interceptConnectionsFull &+= 1
            io.decision("RFC 9293 §3.10.7.1", "maxConnections reached (\(connections.count) + \(requests.count) pending): SYN refused with RST",
                        connection: tuple, now: now)
            resetRequest(tuple: tuple, irs: segment.seq)
            return
        }
        guard requests.count < interception.maxPendingRequests else {
            io.counters.interceptPendingFull &+= 1
            io.decision("RFC 4987 §3.2", "maxPendingRequests reached (\(requests.count)): SYN refused with RST", connection: tuple, now: now)
            resetRequest(tuple: tuple, irs: segment.seq)
            return
        }
        let deadline = now + TimeAmount(interception.requestDeadline)
        let record = PendingConnectionRequest(
            tuple: tuple, irs: segment.seq, peerOptions: segment.header.options,
            explicitCongestion: ECNState.isSetupSYN(segment.flags), window: segment.header.window,
            receivedAt: now, deadline: deadline, previousSndNxt: previousSndNxt)
        let handle = requests.insert(record)
        requestTable[tuple] = handle
        timers.schedule(.request(handle), at: deadline)
        interceptEvents.append(.connectionRequest(ConnectionRequestID(handle: handle)))
        io.counters.interceptRequests &+= 1
        io.decision("RFC 9293 §3.10.7.2", "SYN intercepted: connection request, no SYN-ACK until the application accepts",
                    connection: tuple, now: now)
    }

    /// A segment for a pending request. The client has heard nothing from us yet, so the only thing
    /// it can rightly send is its SYN again.
    private func requestSegmentArrives(_ handle: SlabHandle, _ segment: IncomingSegment, now: Instant) {
        guard let record = requests[handle] else { return }
        if segment.flags.contains(.rst) {
            // RFC 9293 §3.10.7.2: in LISTEN "an incoming RST should be ignored" — we have sent nothing
            // it could answer.
            io.counters.resetsReceived &+= 1
            return
        }
        if segment.syn, !segment.flags.contains(.ack), segment.seq == record.irs {
            io.counters.interceptSYNsAbsorbed &+= 1
            io.decision("RFC 9293 §3.10.7.2", "SYN retransmitted while its request is pending: absorbed, still no SYN-ACK",
                        connection: record.tuple, now: now)
            return
        }
        io.counters.badSegments &+= 1
    }

    /// Completes the handshake of a connection request: sends the SYN-ACK with the options the
    /// original SYN offered (MSS, window scale, SACK-permitted, timestamps, ECN) and makes a
    /// connection in SYN-RECEIVED, which reports `.established` when the client's ACK arrives, as
    /// a passive open does (RFC 9293 §3.10.7.2). Its local endpoint is the original destination.
    ///
    /// - Parameters:
    ///   - id: the request, from `StackEvent.connectionRequest`.
    ///   - configuration: TCP settings for this connection instead of the stack's (buffer sizes,
    ///     keep-alive…); nil for the stack's.
    ///   - now: the current time.
    /// - Returns: the connection.
    /// - Throws: `TCPError.connectionDoesNotExist` when the request was already answered or expired.
    public func accept(
        _ id: ConnectionRequestID, configuration: TCPConfiguration? = nil, now: Instant
    ) throws(TCPError) -> ConnectionID {
        guard let record = takeRequest(id.handle) else { throw .connectionDoesNotExist }
        let tcp = configuration
        let tuple = record.tuple
        let shared = tcp.map(SharedTCPConfiguration.init) ?? sharedTCPConfiguration
        // RFC 7323 §5.4: a timestamp offset per 4-tuple, as for every other open.
        let (iss, timestampOffset) = initialNumbers(for: tuple, now: now, previousSndNxt: record.previousSndNxt)
        let peerOptions = record.peerOptions
        var connection = TCPConnection(
            tuple: tuple, iss: iss, state: .synReceived,
            receiveMSS: announcedMSS(for: tuple.local.address),
            timestampOffset: timestampOffset, configuration: shared)
        if let mtu = pathMTUCache.mtu(to: tuple.remote.address, now: now) { connection.path.mtu = Int32(clamping: mtu) }
        connection.adoptPeerOptions(peerOptions, now: now)
        connection.irs = record.irs
        connection.rcvNxt = record.irs + 1
        connection.rcvAdvertisedEdge = connection.rcvNxt + UInt32(min(connection.receiveSpace, 65535))
        connection.lastAckSent = connection.rcvNxt
        // RFC 9293 §3.10.7.2: the SYN's window, unscaled (RFC 7323 §2.2: never scaled in a SYN).
        connection.sndWnd = UInt32(record.window)
        connection.sndWl1 = record.irs
        if let timestamps = peerOptions.timestamps, connection.timestampsEnabled {
            connection.tsRecent = timestamps.value
            connection.tsRecentTime = now
        }
        if record.explicitCongestion && (tcp ?? self.configuration.tcp).explicitCongestionNotification != .off {
            // RFC 3168 §6.1.1: "If a host has received an ECN-setup SYN packet, then it MAY send an
            // ECN-setup SYN-ACK packet."
            connection.ecn.setupSent = true
            connection.negotiateECN(peerAgreed: true, now: now, io: &io)
        }
        let handle = connections.insert(consume connection)
        connectionTable[tuple] = handle
        if tcp != nil { acceptedConfigurations[handle] = shared }
        io.counters.interceptAccepted &+= 1
        withConnection(handle) { connection in
            connection.handle = handle
            if let storage = recycledScoreboards.popLast() { connection.scoreboard.adoptStorage(storage) }
            connection.openedAt = now
            io.decision("RFC 9293 §3.10.7.2", "connection request accepted: SYN-ACK with ISS \(iss) and the SYN's options",
                        connection: tuple, now: now)
            // RFC 7323 §2.2, §3.2 and RFC 2018 §2: a SYN-ACK carries only options the SYN offered.
            connection.sendSYN(acknowledging: true, peerOffered: peerOptions, now: now, io: &io)
        }
        connectionActivity(handle, now: now)
        return ConnectionID(handle: handle)
    }

    /// Turns a connection request away: with an RST (the client's connect fails with "connection
    /// refused"), an ICMP destination unreachable quoting its SYN, or silence. A request already
    /// answered or expired is left alone.
    public func refuse(_ id: ConnectionRequestID, with refusal: Refusal, now: Instant) {
        guard let record = takeRequest(id.handle) else { return }
        io.decision(refusal.rule, "connection request refused: \(refusal)", connection: record.tuple, now: now)
        switch refusal {
        case .reset:
            io.counters.interceptRefusedReset &+= 1
            resetRequest(tuple: record.tuple, irs: record.irs)
        case .unreachable(let code):
            io.counters.interceptRefusedUnreachable &+= 1
            // The SYN as the client sent it, rebuilt from the record (a request keeps no buffer).
            let syn = PacketBuffer.tcpDatagram(
                header: record.synHeader, payload: nil, source: record.tuple.remote.address,
                destination: record.tuple.local.address)
            guard let offending = try? IPDatagram.parse(syn, verifyChecksum: false) else { return }
            sendICMPError(.unreachable(code: code), about: offending, now: now)
        case .silence:
            io.counters.interceptRefusedSilence &+= 1
        }
    }

    /// The request's deadline passed unanswered: refused with an RST.
    func requestDeadlinePassed(_ handle: SlabHandle, deadline: Instant, now: Instant) {
        guard let record = requests[handle], record.deadline == deadline, let record = takeRequest(handle) else { return }
        io.counters.interceptDeadlineExpired &+= 1
        io.decision("RFC 9293 §3.10.7.1", "connection request unanswered for \((record.deadline - record.receivedAt).nanoseconds / 1_000_000) ms (requestDeadline): refused with RST",
                    connection: record.tuple, now: now)
        resetRequest(tuple: record.tuple, irs: record.irs)
    }

    private func takeRequest(_ handle: SlabHandle) -> PendingConnectionRequest? {
        guard let record = requests.remove(handle) else { return nil }
        requestTable[record.tuple] = nil
        timers.cancel(.request(handle))
        return record
    }

    /// RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> in answer to a SYN.
    private func resetRequest(tuple: FourTuple, irs: SequenceNumber) {
        sendReset(tuple: tuple, sequence: SequenceNumber(0), acknowledging: irs + 1)
    }

    // MARK: UDP flows

    /// The first datagram of a 5-tuple no endpoint takes, in intercept mode: a connected endpoint at
    /// the original destination, for the application (`StackEvent.udpFlow`). Nil when the datagram
    /// cannot start one (dropped and counted).
    func udpFlowBegins(local: Endpoint, remote: Endpoint, now: Instant) -> SlabHandle? {
        guard let interception = configuration.interception else { return nil }
        // A reply must be able to reach the client: no port 0, no broadcast or multicast either end.
        guard remote.port != 0, remote.address.canBeAPeer, local.address.namesSingleHost else {
            io.counters.udpInErrors &+= 1
            return nil
        }
        guard udpFlows < interception.maxUDPFlows, udpEndpoints.count < configuration.udp.maximumEndpoints else {
            io.counters.udpFlowTableFull &+= 1
            io.counters.udpInErrors &+= 1
            io.decision("RFC 4787 §4.3", "maxUDPFlows reached (\(udpFlows)): datagram from \(remote) to \(local) dropped",
                        connection: nil, now: now)
            return nil
        }
        // RFC 4787 §4.3 REQ-5: at least two minutes idle; REQ-5a: shorter for a well-known port (DNS).
        let timeout = TimeAmount(local.port == 53 ? interception.dnsFlowTimeout : interception.udpFlowTimeout)
        var endpoint = UDPEndpoint(localAddress: local.address, localPort: local.port)
        endpoint.remote = remote
        endpoint.flowTimeout = timeout
        endpoint.lastActivity = now
        let handle = udpEndpoints.insert(endpoint)
        udpTable[endpoint.key] = handle
        udpFlows += 1
        timers.schedule(.udpFlow(handle), at: now + timeout)
        interceptEvents.append(.udpFlow(UDPEndpointID(handle: handle)))
        io.counters.udpFlowsCreated &+= 1
        io.decision("RFC 4787 §4.3", "UDP flow \(remote) > \(local): idle timeout \(timeout.nanoseconds / 1_000_000) ms",
                    connection: nil, now: now)
        return handle
    }

    /// A flow's idle timer: closed if nothing crossed it for its timeout, else looked at again when
    /// it would be (the timer is not moved per datagram; the last activity is only written down).
    func udpFlowTimerFired(_ handle: SlabHandle, now: Instant) {
        guard let (last, timeout) = udpEndpoints.withElement(handle, { ($0.lastActivity, $0.flowTimeout) }),
              let timeout else { return }
        let expiry = last + timeout
        guard expiry <= now else {
            timers.schedule(.udpFlow(handle), at: expiry)
            return
        }
        let id = UDPEndpointID(handle: handle)
        close(id)
        io.counters.udpFlowsExpired &+= 1
        interceptEvents.append(.udpFlowExpired(id))
        io.decision("RFC 4787 §4.3", "UDP flow idle for \(timeout.nanoseconds / 1_000_000) ms: closed", connection: nil, now: now)
    }

    /// Bookkeeping of a flow endpoint that is closed (by the application or by its timer).
    func udpFlowClosed(_ handle: SlabHandle) {
        udpFlows -= 1
        timers.cancel(.udpFlow(handle))
    }

    // MARK: ICMP echo

    /// An echo request to any address, in intercept mode with `InterceptedEcho.deliver` or `.drop`.
    func interceptedEchoArrives(_ request: EchoRequest, now: Instant) {
        guard configuration.interception?.icmpEcho == .deliver, request.destination.namesSingleHost,
              request.source.namesSingleHost, interceptEvents.count < Self.pendingEchoLimit else {
            io.counters.icmpEchoDropped &+= 1
            return
        }
        io.counters.icmpEchoDelivered &+= 1
        interceptEvents.append(.echoRequest(request))
    }

    /// Events held for the application at most, so that a ping flood the application does not drain
    /// costs bounded memory.
    static var pendingEchoLimit: Int { 1024 }

    /// Answers an echo request the stack delivered (`InterceptedEcho.deliver`): an echo reply with
    /// its data, from the address it was sent to (RFC 1122 §3.2.2.6, RFC 4443 §4.2).
    public func answer(_ request: EchoRequest, now: Instant) {
        switch (request.destination, request.source) {
        case (.v4(let source), .v4(let destination)):
            let reply = PacketBuffer.icmpv4Datagram(
                message: .echoReply(identifier: request.identifier, sequenceNumber: request.sequenceNumber),
                body: request.payload, source: source, destination: destination)
            if transmitIPDatagram(reply) {
                io.counters.icmpOutMessages &+= 1
                io.counters.icmpOutEchoReplies &+= 1
            }
        case (.v6(let source), .v6(let destination)):
            let reply = PacketBuffer.icmpv6Datagram(
                message: .echoReply(identifier: request.identifier, sequenceNumber: request.sequenceNumber),
                body: request.payload, source: source, destination: destination)
            if transmitIPDatagram(reply) {
                io.counters.icmp6OutMessages &+= 1
                io.counters.icmp6OutEchoReplies &+= 1
            }
        default:
            break
        }
    }

    // MARK: Events

    /// The next intercept-mode event whose subject still exists.
    func nextInterceptEvent() -> StackEvent? {
        while let event = interceptEvents.popFirst() {
            switch event {
            case .connectionRequest(let id) where !requests.contains(id.handle): continue
            case .udpFlow(let id) where !udpEndpoints.contains(id.handle): continue
            default: return event
            }
        }
        return nil
    }
}

extension Refusal {
    /// The rule a refusal follows, for the decision trace.
    var rule: StaticString {
        switch self {
        case .reset: "RFC 9293 §3.10.7.1"
        case .unreachable: "RFC 1122 §3.2.2.1"
        case .silence: "RFC 9293 §3.10.7.2"
        }
    }
}

/// A SYN held in intercept mode: what it said, and when it must be answered by. Small, as a
/// SYN-queue entry (`HalfOpenConnection`): a SYN flood to every address costs records, not TCBs.
struct PendingConnectionRequest {
    let tuple: FourTuple
    let irs: SequenceNumber
    let window: UInt16
    private let peer: SYNOptions
    let receivedAt: Instant
    let deadline: Instant
    /// What the TIME-WAIT incarnation this SYN replaces had sent up to, if it replaces one.
    let previousSndNxt: SequenceNumber?

    init(
        tuple: FourTuple, irs: SequenceNumber, peerOptions: TCPOptions, explicitCongestion: Bool, window: UInt16,
        receivedAt: Instant, deadline: Instant, previousSndNxt: SequenceNumber?
    ) {
        self.tuple = tuple
        self.irs = irs
        self.window = window
        self.peer = SYNOptions(peerOptions, explicitCongestion: explicitCongestion)
        self.receivedAt = receivedAt
        self.deadline = deadline
        self.previousSndNxt = previousSndNxt
    }

    var peerOptions: TCPOptions { peer.options }
    /// The SYN was ECN-setup (RFC 3168 §6.1.1).
    var explicitCongestion: Bool { peer.isExplicitCongestionAgreed }

    func request(_ id: ConnectionRequestID) -> ConnectionRequest {
        ConnectionRequest(id: id, source: tuple.remote, destination: tuple.local, receivedAt: receivedAt)
    }

    /// The SYN, as far as a quote in an ICMP error needs it.
    var synHeader: TCPHeader {
        TCPHeader(
            sourcePort: tuple.remote.port, destinationPort: tuple.local.port, sequenceNumber: irs,
            acknowledgmentNumber: SequenceNumber(0), flags: explicitCongestion ? [.syn, .ece, .cwr] : .syn,
            window: window, options: peerOptions)
    }
}
