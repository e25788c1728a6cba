import NIOCore
import TCPIPWire

/// UDP (RFC 768, RFC 1122 §4.1): endpoints bound to an address and port or to every address,
/// connected endpoints, and the datagrams between them and the link.
extension Stack {
    // MARK: Input

    /// A UDP datagram to one of our addresses.
    func udpDatagramArrives(_ ip: IPDatagram, verify: Bool, now: Instant) {
        let (source, destination) = (ip.source, ip.destination)
        let header: UDPHeader
        let payload: ByteBuffer
        do {
            (header, payload) = try UDPHeader.parse(ip.payload, source: source, destination: destination, verifyChecksum: verify)
        } catch {
            if error == .badChecksum || error == .missingChecksum { io.counters.udpInChecksumErrors &+= 1 }
            io.counters.udpInErrors &+= 1
            return
        }
        // RFC 1122 §4.1.3.6 leaves datagrams from our own addresses to the host; a port-0
        // destination names no endpoint (RFC 768 gives a source port the option only).
        guard header.destinationPort != 0, !isLocal(source) else {
            io.counters.udpInErrors &+= 1
            return
        }
        let remote = Endpoint(source, header.sourcePort)
        let handle: SlabHandle
        if let found = udpTable[UDPKey(address: destination, port: header.destinationPort, remote: remote)]
            ?? udpTable[UDPKey(address: destination, port: header.destinationPort, remote: nil)]
            ?? udpTable[UDPKey(address: nil, port: header.destinationPort, remote: nil)] {
            handle = found
        } else if interceptsEverything {
            // Intercept mode: a new 5-tuple is a flow (Stack+Interception.swift).
            guard let flow = udpFlowBegins(local: Endpoint(destination, header.destinationPort), remote: remote, now: now)
            else { return }
            handle = flow
        } else {
            // RFC 1122 §4.1.3.1: "If a datagram arrives addressed to a UDP port for which there is no
            // pending LISTEN call, UDP SHOULD send an ICMP Port Unreachable message."
            io.counters.udpNoPorts &+= 1
            sendICMPError(.portUnreachable, about: ip, now: now)
            return
        }
        let pinned = payload.pinnedStorageBytes
        if let budget = configuration.memoryBudget, memoryInUse + pinned > budget {
            // The stack's memory budget holds UDP's queues too: at it, the datagram is dropped (UDP
            // promises nothing) rather than memory grown or TCP's out-of-order data pruned for it.
            // Linux's udp_mem: the enqueue fails and counts UdpMemErrors and UdpInErrors.
            udpEndpoints.withElement(handle) { $0.drops &+= 1 }
            io.counters.udpMemoryErrors &+= 1
            io.counters.udpInErrors &+= 1
            io.decision("memory budget", "\(memoryInUse) of \(budget) bytes in use: UDP datagram to port \(header.destinationPort) dropped",
                        connection: nil, now: now)
            return
        }
        let limit = configuration.udp.receiveBufferSize
        let accepted = udpEndpoints.withElement(handle) { endpoint -> Bool in
            // The receive buffer counts the storage queued datagrams pin, as Linux counts truesize;
            // one datagram is always let in, so that a buffer smaller than a packet still works.
            guard endpoint.queue.isEmpty || endpoint.queuedPinnedBytes + pinned <= limit else {
                endpoint.drops &+= 1
                return false
            }
            endpoint.queue.append(UDPDatagram(
                source: remote, destination: Endpoint(destination, header.destinationPort), payload: payload))
            endpoint.queuedBytes += payload.readableBytes
            endpoint.queuedPinnedBytes += pinned
            // RFC 4787 §4.3 REQ-6: traffic from the client refreshes an intercepted flow.
            endpoint.lastActivity = now
            return true
        } ?? false
        guard accepted else {
            io.counters.udpReceiveBufferErrors &+= 1
            io.counters.udpInErrors &+= 1
            return
        }
        pinnedDatagrams += pinned
        io.counters.udpInDatagrams &+= 1
        markUDPReadable(handle)
    }

    /// An ICMP error about a datagram one of our endpoints sent. RFC 1122 §4.1.3.3: UDP MUST pass it
    /// to the application; as a socket does, a connected endpoint learns of port unreachable (its
    /// peer is not listening) as an error on its next receive. Unconnected endpoints are not told:
    /// the error cannot be tied to one of their many peers (Linux needs IP_RECVERR for that).
    func udpErrorArrives(_ error: ICMPErrorReport, quoted: ICMPQuotedDatagram, now: Instant) {
        guard error == .portUnreachable, let sourcePort = quoted.sourcePort,
              let destinationPort = quoted.destinationPort else { return }
        let key = UDPKey(address: quoted.source, port: sourcePort, remote: Endpoint(quoted.destination, destinationPort))
        guard let handle = udpTable[key] else { return }
        udpEndpoints.withElement(handle) { $0.pendingError = .connectionRefused }
        io.decision("RFC 1122 §4.1.3.3", "port unreachable from \(key.remote!): connection refused on next receive",
                    connection: nil, now: now)
        markUDPReadable(handle)
    }

    private func markUDPReadable(_ handle: SlabHandle) {
        let first = udpEndpoints.withElement(handle) { endpoint -> Bool in
            defer { endpoint.pendingEvent = true }
            return !endpoint.pendingEvent
        } ?? false
        if first { udpEvents.append(handle) }
    }

    // MARK: User calls

    /// Binds a UDP endpoint to `port` on `address` (nil: every address of the stack). Port 0 takes an
    /// ephemeral port from the allocator TCP's active opens use.
    public func bindUDP(port: UInt16 = 0, address: IPAddress? = nil) throws(UDPError) -> UDPEndpointID {
        if let address, !isLocal(address) { throw .addressUnavailable }
        guard udpEndpoints.count < configuration.udp.maximumEndpoints else { throw .resourcesExhausted }
        let chosen: UInt16
        if port == 0 {
            let from = address ?? configuration.addresses.first ?? .v4(IPv4Address(0, 0, 0, 0))
            guard let ephemeral = allocateEphemeralPort(from: from, isFree: { udpPortIsFree($0, address: address) }) else {
                throw .addressUnavailable
            }
            chosen = ephemeral
        } else {
            guard udpPortIsFree(port, address: address) else { throw .addressInUse }
            chosen = port
        }
        let endpoint = UDPEndpoint(localAddress: address, localPort: chosen)
        let handle = udpEndpoints.insert(endpoint)
        udpTable[endpoint.key] = handle
        udpPortOwners[chosen, default: []].append(address)
        return UDPEndpointID(handle: handle)
    }

    /// Connects an endpoint to `remote`: it receives only `remote`'s datagrams, sends to it without
    /// naming it, and hears of port unreachable. An endpoint bound to every address takes the stack's
    /// address of `remote`'s family as its own.
    public func connect(_ id: UDPEndpointID, to remote: Endpoint) throws(UDPError) {
        guard let endpoint = udpEndpoints[id.handle] else { throw .endpointDoesNotExist }
        guard remote.port != 0, remote.address.namesSingleHost else { throw .invalidArgument }
        let local: IPAddress
        if let bound = endpoint.localAddress {
            guard bound.sameFamily(as: remote.address) else { throw .addressUnavailable }
            local = bound
        } else {
            guard let chosen = localAddress(matching: remote.address) else { throw .addressUnavailable }
            local = chosen
        }
        var connected = endpoint
        connected.localAddress = local
        connected.remote = remote
        guard udpTable[connected.key] == nil || udpTable[connected.key] == id.handle else { throw .addressInUse }
        udpTable[endpoint.key] = nil
        udpTable[connected.key] = id.handle
        if var owners = udpPortOwners[endpoint.localPort], let index = owners.firstIndex(of: endpoint.localAddress) {
            owners[index] = local
            udpPortOwners[endpoint.localPort] = owners
        }
        udpEndpoints.withElement(id.handle) { endpoint in
            endpoint.localAddress = local
            endpoint.remote = remote
            endpoint.pendingError = nil
        }
    }

    /// Binds an endpoint to an ephemeral port and connects it to `remote`.
    public func connectUDP(to remote: Endpoint, from localAddress: IPAddress? = nil) throws(UDPError) -> UDPEndpointID {
        let id = try bindUDP(port: 0, address: localAddress)
        do {
            try connect(id, to: remote)
        } catch {
            close(id)
            throw error
        }
        return id
    }

    /// Sends one datagram to `remote`, or to the connected peer when nil, from `localAddress` (an
    /// endpoint bound to every address may choose; nil takes the bound one, or the stack's address of
    /// the right family).
    ///
    /// RFC 1122 §4.1.3.4: the checksum is always computed. A datagram larger than the link MTU is sent
    /// in fragments (`transmitIPDatagram`); one that cannot be is refused with `.messageTooLong`.
    public func send(
        _ id: UDPEndpointID, _ payload: ByteBuffer, to remote: Endpoint? = nil, from localAddress: IPAddress? = nil,
        now: Instant
    ) throws(UDPError) {
        noteFilterTime(now)
        guard let endpoint = udpEndpoints[id.handle] else { throw .endpointDoesNotExist }
        guard let destination = remote ?? endpoint.remote else { throw .destinationRequired }
        guard destination.port != 0, destination.address.namesSingleHost else { throw .invalidArgument }
        let source: IPAddress
        if let bound = endpoint.localAddress {
            guard localAddress == nil || localAddress == bound else { throw .invalidArgument }
            source = bound
        } else if let localAddress {
            guard isLocal(localAddress) else { throw .addressUnavailable }
            source = localAddress
        } else {
            guard let chosen = self.localAddress(matching: destination.address) else { throw .addressUnavailable }
            source = chosen
        }
        guard source.sameFamily(as: destination.address) else { throw .addressUnavailable }
        // The length field counts the header; over IPv4 the whole datagram's total length must fit too.
        let ipHeader = if case .v6 = source { 0 } else { IPv4Header.minimumLength }
        guard payload.readableBytes <= UDPHeader.maximumPayloadLength - ipHeader else { throw .messageTooLong }
        // RFC 6864 §4.1: an IPv4 datagram that may be fragmented (DF clear, as ours are) needs an
        // Identification that does not repeat soon between the same hosts; the fragmenter's (RFC 7739).
        let identification: UInt16 = if case .v4 = source {
            UInt16(truncatingIfNeeded: fragmentIdentifiers.next(source: source, destination: destination.address))
        } else { 0 }
        let datagram = PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: endpoint.localPort, destinationPort: destination.port),
            payload: payload, source: source, destination: destination.address, identification: identification)
        guard transmitIPDatagram(datagram) else { throw .messageTooLong }
        io.counters.udpOutDatagrams &+= 1
        if endpoint.flowTimeout != nil {
            // RFC 4787 §4.3 REQ-6 lets replies refresh a mapping too ("MAY"); a relay's answers mean
            // the flow is alive.
            udpEndpoints.withElement(id.handle) { $0.lastActivity = now }
        }
    }

    /// The oldest datagram received and not yet read, or nil; a pending error (port unreachable on a
    /// connected endpoint) is thrown once, before any datagram.
    public func receive(_ id: UDPEndpointID) throws(UDPError) -> UDPDatagram? {
        let result = udpEndpoints.withElement(id.handle) { endpoint -> Result<UDPDatagram?, UDPError> in
            if let error = endpoint.pendingError {
                endpoint.pendingError = nil
                return .failure(error)
            }
            guard let datagram = endpoint.queue.popFirst() else { return .success(nil) }
            endpoint.queuedBytes -= datagram.payload.readableBytes
            endpoint.queuedPinnedBytes -= datagram.payload.pinnedStorageBytes
            pinnedDatagrams -= datagram.payload.pinnedStorageBytes
            return .success(datagram)
        }
        guard let result else { throw .endpointDoesNotExist }
        return try result.get()
    }

    /// Closes an endpoint: its port is free again and its unread datagrams are gone.
    public func close(_ id: UDPEndpointID) {
        guard let endpoint = udpEndpoints.remove(id.handle) else { return }
        pinnedDatagrams -= endpoint.queuedPinnedBytes
        udpTable[endpoint.key] = nil
        if endpoint.flowTimeout != nil {
            // A flow owns no port: it was never in `udpPortOwners`.
            udpFlowClosed(id.handle)
            return
        }
        if var owners = udpPortOwners[endpoint.localPort], let index = owners.firstIndex(of: endpoint.localAddress) {
            owners.remove(at: index)
            udpPortOwners[endpoint.localPort] = owners.isEmpty ? nil : owners
        }
    }

    /// What `ss -u` would show of the endpoint, or nil for a stale handle.
    public func udpStatus(_ id: UDPEndpointID) -> UDPEndpointStatus? {
        udpEndpoints[id.handle].map { endpoint in
            UDPEndpointStatus(
                localAddress: endpoint.localAddress, localPort: endpoint.localPort, remote: endpoint.remote,
                queuedDatagrams: endpoint.queue.count, queuedBytes: endpoint.queuedBytes,
                queuedPinnedBytes: endpoint.queuedPinnedBytes, drops: endpoint.drops)
        }
    }

    /// Every UDP endpoint, in slot order (deterministic).
    public var allUDPEndpoints: [UDPEndpointID] {
        udpEndpoints.handles.map { UDPEndpointID(handle: $0) }
    }

    /// What UDP's receive queues pin, in the stack's memory accounting (`memoryInUse`).
    private var pinnedDatagrams: Int {
        get { pinned.datagrams }
        set { pinned.datagrams = newValue }
    }

    /// Whether `port` on `address` overlaps no bound endpoint: two endpoints on one port must have
    /// different specific addresses (a wildcard overlaps every address), as Linux without SO_REUSEADDR.
    private func udpPortIsFree(_ port: UInt16, address: IPAddress?) -> Bool {
        guard let owners = udpPortOwners[port] else { return true }
        guard let address else { return false }
        return !owners.contains { $0 == nil || $0 == address }
    }
}

extension Stack {
    /// The next port of the ephemeral range (49152–65535, RFC 6335 §6) that `isFree` accepts, going
    /// round from where the last one was taken — one allocator for TCP's active opens and UDP's binds.
    /// An ephemeral port for a UDP endpoint, from TCP's allocator (RFC 6056 Algorithm 4, keyed as
    /// for a connection from `local` to no one in particular), or nil when none is free.
    func allocateEphemeralPort(from local: IPAddress, isFree: (UInt16) -> Bool) -> UInt16? {
        let search = ephemeralPorts.search(from: local, to: Endpoint(local, 0))
        for _ in 0..<ephemeralPorts.count {
            let port = ephemeralPorts.next(search)
            if isFree(port) { return port }
        }
        return nil
    }
}

extension IPAddress {
    func sameFamily(as other: IPAddress) -> Bool {
        switch (self, other) {
        case (.v4, .v4), (.v6, .v6): true
        default: false
        }
    }
}
