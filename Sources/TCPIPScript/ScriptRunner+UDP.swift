import NIOCore
import TCPIP
import TCPIPWire

/// A UDP packet line, packetdrill's form:
///
///     < udp (20)
///     > udp (20)
///
/// The ports are the socket's, as packetdrill takes them: inbound from the peer's port to ours,
/// outbound from ours to the peer's. `udp SPORT > DPORT (LEN)` names them instead (our extension,
/// for a datagram to a port no socket holds). The payload is LEN zero octets, as the runner's
/// writes are.
struct ScriptUDP: Equatable {
    var length: Int
    var sourcePort: UInt16?
    var destinationPort: UInt16?

    /// Parses the words of a non-TCP packet line; nil when it is no UDP line this runner plays.
    init?(_ text: String) {
        let words = ScriptUDP.words(text)
        guard words.first == "udp" else { return nil }
        var rest = words.dropFirst()
        if rest.first != "(" {
            guard rest.count >= 3, let source = UInt16(rest.removeFirst()), rest.removeFirst() == ">",
                  let destination = UInt16(rest.removeFirst()) else { return nil }
            sourcePort = source
            destinationPort = destination
        }
        // RFC 768: the length field is 16 bits and counts the 8-octet header.
        guard rest.count == 3, rest.removeFirst() == "(", let length = rest.first.flatMap({ Int($0) }),
              rest.last == ")", length >= 0, length <= UDPHeader.maximumPayloadLength else { return nil }
        self.length = length
    }

    /// The line's words, with `(`, `)` and `>` taken apart from the numbers they touch.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var word = ""
        for character in text {
            if character == " " || "()>".contains(character) {
                if !word.isEmpty { words.append(word) }
                word = ""
                if character != " " { words.append(String(character)) }
            } else {
                word.append(character)
            }
        }
        if !word.isEmpty { words.append(word) }
        return words
    }

    var text: String {
        let ports = sourcePort.map { "\($0) > \(destinationPort!) " } ?? ""
        return "udp \(ports)(\(length))"
    }
}

extension ScriptRunner {
    /// Plays a packet line that is not TCP: inbound ICMP errors, UDP datagrams both ways, and an
    /// outbound ICMP error. Returns when the event happened (the base for the next relative time).
    func playNonTCP(_ packet: ScriptPacket, timing: ScriptTiming) throws -> Instant {
        let text = packet.other!
        switch packet.direction {
        case .inbound:
            let time = try scheduledTime(timing)
            try advance(to: time)
            if let udp = ScriptUDP(text) {
                try injectUDP(udp)
            } else if let icmp = ScriptICMP(text) {
                if iss == nil, sockets.values.contains(where: { $0.udp != nil }) {
                    try injectICMPAboutUDP(icmp, line: text)
                } else {
                    try injectICMP(icmp, line: text)
                }
            } else {
                throw ScriptSkip(reason: "non-TCP packet `\(text)`")
            }
            return time
        case .outbound:
            if let udp = ScriptUDP(text) { return try expectUDP(udp, timing: timing) }
            if let icmp = ScriptICMP(text) { return try expectICMP(icmp, line: text, timing: timing) }
            throw ScriptSkip(reason: "non-TCP packet `\(text)`")
        }
    }

    // MARK: Inbound

    /// A datagram from the peer's address and port to ours, `length` zero octets, with its checksum
    /// (RFC 768: over the pseudo-header, header and data).
    private func injectUDP(_ udp: ScriptUDP) throws {
        var payload = ByteBufferAllocator().buffer(capacity: udp.length)
        payload.writeRepeatingByte(0, count: udp.length)
        let ports = (source: udp.sourcePort ?? remotePort, destination: udp.destinationPort ?? localPort)
        lastInboundUDPPorts = ports
        let datagram = PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: ports.source, destinationPort: ports.destination),
            payload: payload, source: remoteAddress, destination: localAddress)
        exchanged.append("\(format(now)) < \(udp.text)")
        capture.append((now, datagram))
        stack.receive(datagram, now: now)
        collect()
        try completePending()
    }

    /// An ICMP error quoting the last datagram our UDP socket sent: its IP header and the 8 octets of
    /// its UDP header (RFC 792), from our port to the peer's.
    private func injectICMPAboutUDP(_ icmp: ScriptICMP, line: String) throws {
        let sent = PacketBuffer.udpDatagram(
            header: UDPHeader(sourcePort: localPort, destinationPort: remotePort),
            payload: ByteBuffer(repeating: 0, count: icmp.quotedLength), source: localAddress, destination: remoteAddress)
        let datagram: ByteBuffer
        switch (localAddress, remoteAddress) {
        case (.v4(let local), .v4(let remote)):
            guard let (type, code) = icmp.typeAndCode(ipv6: false) else {
                throw ScriptSkip(reason: "ICMP line `\(line)` has no IPv4 form")
            }
            datagram = PacketBuffer.icmpv4Datagram(
                message: ICMPv4Message(type: type, code: code, restOfHeader: icmp.mtu & 0xFFFF),
                body: sent.getSlice(at: sent.readerIndex, length: IPv4Header.minimumLength + 8)!,
                source: remote, destination: local)
        case (.v6(let local), .v6(let remote)):
            guard let (type, code) = icmp.typeAndCode(ipv6: true) else {
                throw ScriptSkip(reason: "ICMP line `\(line)` has no IPv6 form")
            }
            datagram = PacketBuffer.icmpv6Datagram(
                message: ICMPv6Message(type: type, code: code, restOfHeader: icmp.mtu),
                body: sent.getSlice(at: sent.readerIndex, length: 40 + 8)!, source: remote, destination: local)
        default:
            throw ScriptSkip(reason: "mixed address families")
        }
        exchanged.append("\(format(now)) < \(line)")
        capture.append((now, datagram))
        stack.receive(datagram, now: now)
        collect()
        try completePending()
    }

    // MARK: Outbound

    /// Takes the stack's next datagram for a `>` line, when the line's timing allows.
    private func nextNonTCP(_ timing: ScriptTiming, line: String) throws -> (time: Instant, ip: IPDatagram, tolerance: TimeAmount) {
        let (earliest, latest): (Instant?, Instant?) = switch timing {
        case .at(let time): (instant(time), instant(time))
        case .range(let start, let end): (instant(start), instant(end))
        case .any, .blocking: (nil, nil)
        }
        let tolerance = tolerance(for: latest ?? now)
        // packetdrill waits up to the expected time plus 2 s for a packet.
        let giveUp = (latest ?? now + .seconds(3600)) + tolerance + .seconds(2)
        collect()
        while outbound.isEmpty {
            guard let deadline = stackStorage?.nextDeadline, deadline <= giveUp else {
                throw failure("timed out waiting for a packet", expected: line, actual: "nothing by \(format(giveUp))")
            }
            try advance(to: deadline)
        }
        let (time, datagram) = outbound.removeFirst()
        guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: true) else {
            throw failure("the stack sent a datagram that does not parse as IP", expected: line)
        }
        if let earliest, let latest, time < earliest - tolerance || time > latest + tolerance {
            let when = earliest == latest ? format(earliest) : "\(format(earliest))~\(format(latest))"
            throw failure("packet sent at \(format(time)), expected at \(when) (tolerance \(tolerance.nanoseconds / 1000) µs)",
                          expected: line)
        }
        return (time, ip, tolerance)
    }

    /// A `> udp (LEN)` line: the stack's next datagram must be UDP from our address and port to the
    /// peer's, with a checksum that verifies (RFC 1122 §4.1.3.4: always computed) and LEN zero octets.
    private func expectUDP(_ udp: ScriptUDP, timing: ScriptTiming) throws -> Instant {
        let (time, ip, _) = try nextNonTCP(timing, line: udp.text)
        guard ip.upperLayerProtocol == IPProtocolNumber.udp else {
            throw failure("bad outbound packet: IP protocol \(ip.upperLayerProtocol) instead of UDP", expected: udp.text)
        }
        let header: UDPHeader
        let payload: ByteBuffer
        do {
            (header, payload) = try UDPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: true)
        } catch {
            throw failure("bad outbound packet: UDP \(error)", expected: udp.text)
        }
        let actual = "udp \(header.sourcePort) > \(header.destinationPort) (\(payload.readableBytes))"
        exchanged.append("\(format(time)) > \(actual)")
        let ports = (udp.sourcePort ?? localPort, udp.destinationPort ?? remotePort)
        let problem: String? =
            if ip.source != localAddress || ip.destination != remoteAddress {
                "addresses \(ip.source) > \(ip.destination) instead of \(localAddress) > \(remoteAddress)"
            } else if header.sourcePort != ports.0 || header.destinationPort != ports.1 {
                "ports \(header.sourcePort) > \(header.destinationPort) instead of \(ports.0) > \(ports.1)"
            } else if payload.readableBytes != udp.length {
                "length \(payload.readableBytes) instead of \(udp.length)"
            } else if payload.readableBytesView.contains(where: { $0 != 0 }) {
                "payload octets the application did not write (scripts write zeros)"
            } else { nil }
        if let problem {
            throw failure("bad outbound packet: \(problem)", expected: udp.text, actual: actual)
        }
        return time
    }

    /// A `> icmp unreachable port_unreachable` line: the stack's next datagram must be that ICMP (or
    /// ICMPv6) error to the peer, quoting the peer's UDP datagram to our port.
    private func expectICMP(_ icmp: ScriptICMP, line: String, timing: ScriptTiming) throws -> Instant {
        let (time, ip, _) = try nextNonTCP(timing, line: line)
        let ipv6 = ip.header.isV4 == false
        guard let (type, code) = icmp.typeAndCode(ipv6: ipv6) else {
            throw ScriptSkip(reason: "ICMP line `\(line)` has no IPv\(ipv6 ? 6 : 4) form")
        }
        let parsed: (type: UInt8, code: UInt8, quoted: ICMPQuotedDatagram?)?
        switch (ip.source, ip.destination) {
        case (.v4, .v4) where ip.upperLayerProtocol == IPProtocolNumber.icmp:
            parsed = (try? ICMPv4Packet.parse(ip.payload)).map { ($0.message.type, $0.message.code, $0.quoted) }
        case (.v6(let source), .v6(let destination)) where ip.upperLayerProtocol == IPProtocolNumber.icmpv6:
            parsed = (try? ICMPv6Packet.parse(ip.payload, source: source, destination: destination))
                .map { ($0.message.type, $0.message.code, $0.quoted) }
        default:
            parsed = nil
        }
        guard let parsed else {
            throw failure("bad outbound packet: IP protocol \(ip.upperLayerProtocol), not a valid ICMP message", expected: line)
        }
        let quotedText = parsed.quoted.map { " quoting \($0.sourcePort.map(String.init) ?? "?") > \($0.destinationPort.map(String.init) ?? "?")" } ?? ""
        let actual = "icmp type \(parsed.type) code \(parsed.code)\(quotedText)"
        exchanged.append("\(format(time)) > \(actual)")
        let ports = lastInboundUDPPorts ?? (remotePort, localPort)
        let problem: String? =
            if ip.source != localAddress || ip.destination != remoteAddress {
                "addresses \(ip.source) > \(ip.destination) instead of \(localAddress) > \(remoteAddress)"
            } else if parsed.type != type || parsed.code != code {
                "type \(parsed.type) code \(parsed.code) instead of type \(type) code \(code)"
            } else if let quoted = parsed.quoted,
                      quoted.source != remoteAddress || quoted.destination != localAddress
                        || quoted.sourcePort != ports.source || quoted.destinationPort != ports.destination {
                "the quote is not of the peer's datagram \(ports.source) > \(ports.destination)"
            } else if parsed.quoted == nil {
                "no quoted datagram"
            } else { nil }
        if let problem {
            throw failure("bad outbound packet: \(problem)", expected: line, actual: actual)
        }
        return time
    }

    // MARK: System calls

    /// System calls on a UDP socket (`socket(..., SOCK_DGRAM, IPPROTO_UDP)`), mapped onto the stack's
    /// UDP endpoints (`Stack+UDP.swift`); nil for every call the TCP table plays.
    func attemptUDP(_ call: ScriptSystemCall, blocking: Bool) throws -> CallResult? {
        let arguments = call.arguments
        if call.name == "socket" {
            guard let type = arguments[safe: 1].flatMap(ScriptSymbols.evaluate), type & 0xF == ScriptSymbols.value("SOCK_DGRAM")! else {
                return nil
            }
            let fd = Int(call.result >= 0 ? call.result : Int64((sockets.keys.max() ?? 2) + 1))
            var socket = ScriptSocket()
            socket.nonBlocking = type & ScriptSymbols.value("SOCK_NONBLOCK")! != 0
            socket.datagram = true
            sockets[fd] = socket
            return .value(Int64(fd))
        }
        guard let fd = arguments.first.flatMap(ScriptSymbols.evaluate).map({ Int($0) }), sockets[fd]?.datagram == true else {
            return nil
        }
        do {
            switch call.name {
            case "bind":
                guard sockets[fd]!.udp == nil else { return .error("EINVAL") }
                // The script's address is `...`: our port (--bind_port), every address.
                sockets[fd]!.udp = try stack.bindUDP(port: header.bindPort)
                localPort = header.bindPort
                return .value(0)
            case "connect":
                let endpoint = try sockets[fd]!.udp ?? stack.bindUDP(port: 0)
                sockets[fd]!.udp = endpoint
                try stack.connect(endpoint, to: Endpoint(remoteAddress, header.connectPort))
                localPort = stack.udpStatus(endpoint)!.localPort
                remotePort = header.connectPort
                return .value(0)
            case "write", "send", "sendto":
                let count = try integer(arguments, 2, default: 0)
                if call.name == "send" || call.name == "sendto", try integer(arguments, 3, default: 0) != 0 {
                    throw ScriptSkip(reason: "send flags on a UDP socket")
                }
                let connected = sockets[fd]!.udp.flatMap { stack.udpStatus($0)?.remote } != nil
                // sendto's address is `...`: the peer's address and port; a connected socket's peer otherwise.
                let destination: Endpoint? = call.name == "sendto" && !connected ? Endpoint(remoteAddress, remotePort) : nil
                guard connected || destination != nil else { return .error("EDESTADDRREQ") }
                let endpoint = try sockets[fd]!.udp ?? stack.bindUDP(port: 0)
                if sockets[fd]!.udp == nil {
                    sockets[fd]!.udp = endpoint
                    localPort = stack.udpStatus(endpoint)!.localPort
                }
                try stack.send(endpoint, ByteBuffer(repeating: 0, count: Int(count)), to: destination, now: now)
                collect()
                return .value(count)
            case "read", "recv", "recvfrom":
                guard let endpoint = sockets[fd]!.udp else {
                    return sockets[fd]!.nonBlocking && !blocking ? .error("EAGAIN") : .wouldBlock
                }
                let count = Int(try integer(arguments, 2, default: 65536))
                let flags = call.name == "read" ? 0 : try integer(arguments, 3, default: 0)
                if flags & ~ScriptSymbols.value("MSG_DONTWAIT")! != 0 { throw ScriptSkip(reason: "receive flags on a UDP socket") }
                guard let datagram = try stack.receive(endpoint) else {
                    let nonBlocking = sockets[fd]!.nonBlocking || flags != 0
                    return nonBlocking && !blocking ? .error("EAGAIN") : .wouldBlock
                }
                // A datagram longer than the buffer is cut to it, the rest discarded (recv(2), MSG_TRUNC).
                return .value(Int64(min(count, datagram.payload.readableBytes)))
            case "close":
                if let endpoint = sockets.removeValue(forKey: fd)!.udp { stack.close(endpoint) }
                return .value(0)
            case "fcntl":
                // O_NONBLOCK is the socket table's, whatever the protocol.
                return nil
            default:
                throw ScriptSkip(reason: "system call \(call.name)() on a UDP socket")
            }
        } catch let error as UDPError {
            return .error(errno(error))
        }
    }

    func errno(_ error: UDPError) -> String {
        switch error {
        case .connectionRefused: "ECONNREFUSED"
        case .addressInUse: "EADDRINUSE"
        case .addressUnavailable: "EADDRNOTAVAIL"
        case .messageTooLong: "EMSGSIZE"
        case .destinationRequired: "EDESTADDRREQ"
        case .endpointDoesNotExist: "EBADF"
        case .resourcesExhausted: "ENOBUFS"
        case .invalidArgument: "EINVAL"
        }
    }
}
