import NIOCore
import TCPIPWire

/// ICMP (RFC 792, RFC 1122 §3.2.2) and ICMPv6 (RFC 4443): echo replies for our addresses, errors
/// that arrive handed to the protocol they concern, and the errors we send — never in answer to an
/// error, and never more than the token bucket allows.
extension Stack {
    // MARK: Input

    /// An ICMP message to one of our addresses.
    func icmpv4Arrives(_ ip: IPDatagram, verify: Bool, now: Instant) {
        io.counters.icmpInMessages &+= 1
        let packet: ICMPv4Packet
        do {
            packet = try ICMPv4Packet.parse(ip.payload, verifyChecksum: verify)
        } catch {
            // RFC 1122 §3.2.2: a message with a bad checksum, or too short to act on, is discarded.
            if error == .badChecksum { io.counters.icmpInChecksumErrors &+= 1 }
            io.counters.icmpInErrors &+= 1
            return
        }
        switch packet.message {
        case .echoRequest(let identifier, let sequence):
            io.counters.icmpInEchos &+= 1
            if interceptsEverything, configuration.interception?.icmpEcho != .answer {
                interceptedEchoArrives(EchoRequest(
                    source: ip.source, destination: ip.destination, identifier: identifier,
                    sequenceNumber: sequence, payload: packet.body), now: now)
                return
            }
            guard configuration.icmp.answersEcho, ip.source.namesSingleHost, ip.destination.namesSingleHost,
                  case .v4(let source) = ip.destination, case .v4(let destination) = ip.source else { return }
            // RFC 1122 §3.2.2.6: "The data received in the ICMP Echo Request MUST be entirely included
            // in the resulting Echo Reply", from the address the request was sent to (RFC 1122 §3.2.2.6
            // on specific-destination requests).
            let reply = PacketBuffer.icmpv4Datagram(
                message: .echoReply(identifier: identifier, sequenceNumber: sequence), body: packet.body,
                source: source, destination: destination)
            if transmitIPDatagram(reply) {
                io.counters.icmpOutMessages &+= 1
                io.counters.icmpOutEchoReplies &+= 1
            }
        case .echoReply:
            io.counters.icmpInEchoReplies &+= 1
        case .destinationUnreachable(let code, let mtu):
            io.counters.icmpInDestinationUnreachables &+= 1
            guard let quoted = packet.quoted else { return }
            let error: ICMPErrorReport = switch code {
            case .portUnreachable: .portUnreachable
            case .protocolUnreachable: .protocolUnreachable
            case .fragmentationNeeded: .packetTooBig(mtu: Int(mtu))
            default: .unreachable
            }
            icmpErrorArrives(error, quoted: quoted, now: now)
        case .timeExceeded:
            io.counters.icmpInTimeExceeded &+= 1
            if let quoted = packet.quoted { icmpErrorArrives(.timeExceeded, quoted: quoted, now: now) }
        case .parameterProblem:
            io.counters.icmpInParameterProblems &+= 1
            if let quoted = packet.quoted { icmpErrorArrives(.parameterProblem, quoted: quoted, now: now) }
        case .other:
            // Source quench (deprecated, RFC 6633), redirects (we route nothing), timestamps: ignored.
            break
        }
    }

    /// An ICMPv6 message to one of our addresses.
    func icmpv6Arrives(_ ip: IPDatagram, verify: Bool, now: Instant) {
        io.counters.icmp6InMessages &+= 1
        guard case .v6(let to) = ip.destination, case .v6(let from) = ip.source else { return }
        let packet: ICMPv6Packet
        do {
            packet = try ICMPv6Packet.parse(ip.payload, source: from, destination: to, verifyChecksum: verify)
        } catch {
            // RFC 4443 §2.4: a message whose checksum does not verify, or that is too short, is discarded.
            if error == .badChecksum { io.counters.icmp6InChecksumErrors &+= 1 }
            io.counters.icmp6InErrors &+= 1
            return
        }
        switch packet.message {
        case .echoRequest(let identifier, let sequence):
            io.counters.icmp6InEchos &+= 1
            if interceptsEverything, configuration.interception?.icmpEcho != .answer {
                interceptedEchoArrives(EchoRequest(
                    source: ip.source, destination: ip.destination, identifier: identifier,
                    sequenceNumber: sequence, payload: packet.body), now: now)
                return
            }
            guard configuration.icmp.answersEcho, ip.source.namesSingleHost, ip.destination.namesSingleHost else { return }
            // RFC 4443 §4.2: the reply's data is "the data from the invoking Echo Request message", its
            // source the unicast address the request was sent to (§2.2 (a)).
            let reply = PacketBuffer.icmpv6Datagram(
                message: .echoReply(identifier: identifier, sequenceNumber: sequence), body: packet.body,
                source: to, destination: from)
            if transmitIPDatagram(reply) {
                io.counters.icmp6OutMessages &+= 1
                io.counters.icmp6OutEchoReplies &+= 1
            }
        case .echoReply:
            io.counters.icmp6InEchoReplies &+= 1
        case .destinationUnreachable(let code):
            io.counters.icmp6InDestinationUnreachables &+= 1
            guard let quoted = packet.quoted else { return }
            icmpErrorArrives(code == .portUnreachable ? .portUnreachable : .unreachable, quoted: quoted, now: now)
        case .packetTooBig(let mtu):
            io.counters.icmp6InPacketTooBigs &+= 1
            if let quoted = packet.quoted {
                icmpErrorArrives(.packetTooBig(mtu: Int(clamping: mtu)), quoted: quoted, now: now)
            }
        case .timeExceeded:
            io.counters.icmp6InTimeExceeded &+= 1
            if let quoted = packet.quoted { icmpErrorArrives(.timeExceeded, quoted: quoted, now: now) }
        case .parameterProblem(let code, _):
            io.counters.icmp6InParameterProblems &+= 1
            if let quoted = packet.quoted {
                icmpErrorArrives(code == ICMPv6Message.unrecognizedNextHeader ? .protocolUnreachable : .parameterProblem,
                                 quoted: quoted, now: now)
            }
        case .other:
            // Neighbor Discovery and MLD have no use on a point-to-point tunnel; RFC 4443 §2.4(b):
            // unknown informational messages are discarded.
            break
        }
    }

    /// An ICMP or ICMPv6 error about a datagram we sent, handed to the protocol the quote names
    /// (RFC 1122 §3.2.2: "the ICMP error message … MUST be passed to the transport layer").
    func icmpErrorArrives(_ error: ICMPErrorReport, quoted: ICMPQuotedDatagram, now: Instant) {
        // Only a quote of a datagram from one of our addresses can be about us (in intercept mode,
        // every address is; the connection or flow lookup decides).
        guard isLocal(quoted.source) || interceptsEverything else { return }
        switch quoted.upperLayerProtocol {
        case IPProtocolNumber.udp:
            udpErrorArrives(error, quoted: quoted, now: now)
        case IPProtocolNumber.tcp:
            // ICMP errors into TCP (RFC 5927, RFC 1191, RFC 8201): Stack+ICMPErrors.swift.
            tcpErrorArrives(error, quoted: quoted, now: now)
        default:
            break
        }
    }

    // MARK: Output

    /// Sends `error` about `offending`, a datagram that arrived for one of our addresses, unless a rule
    /// forbids it or the token bucket is empty.
    func sendICMPError(_ error: ICMPErrorToSend, about offending: IPDatagram, now: Instant) {
        // RFC 1122 §3.2.2 and RFC 4443 §2.4(e): never about an ICMP error, a datagram to a broadcast or
        // multicast address, a non-first fragment, or a datagram whose source names no single host.
        if case .v4(let header) = offending.header, header.fragmentOffset != 0 {
            io.counters.icmpOutSuppressed &+= 1
            return
        }
        guard mayAnswerWithError(source: offending.source, destination: offending.destination,
                                 upperLayerProtocol: offending.upperLayerProtocol, payload: offending.payload) else {
            io.counters.icmpOutSuppressed &+= 1
            return
        }
        sendICMPError(error, quoting: originalBytes(of: offending), from: offending.destination, to: offending.source, now: now)
    }

    /// Sends `error` from `source` (ours) to `destination`, quoting `quote` (the offending datagram,
    /// IP header first) as far as it fits, unless the token bucket is empty. The caller has checked
    /// that RFC 1122 §3.2.2 / RFC 4443 §2.4(e) allow an error at all.
    func sendICMPError(
        _ error: ICMPErrorToSend, quoting quote: ByteBuffer, from source: IPAddress, to destination: IPAddress, now: Instant
    ) {
        // RFC 4443 §2.4(f), RFC 1812 §4.3.2.8: the token bucket.
        guard icmpErrorLimiter.allow(now: now) else {
            io.counters.icmpOutRateLimited &+= 1
            return
        }
        var quote = quote
        switch (source, destination) {
        case (.v4(let source), .v4(let destination)):
            // RFC 1812 §4.3.2.3: as much of the datagram as fits in 576 octets with our headers.
            let room = Self.minimumIPv4ErrorDatagram - IPv4Header.minimumLength - ICMPv4Message.headerLength
            quote.moveWriterIndex(to: quote.readerIndex + min(quote.readableBytes, room))
            let message: ICMPv4Message = switch error {
            case .portUnreachable: .destinationUnreachable(.portUnreachable, nextHopMTU: 0)
            case .protocolUnreachable: .destinationUnreachable(.protocolUnreachable, nextHopMTU: 0)
            case .unreachable(let code): .destinationUnreachable(ICMPv4UnreachableCode(rawValue: code), nextHopMTU: 0)
            case .rejected(let code): .destinationUnreachable(ICMPv4UnreachableCode(rawValue: code), nextHopMTU: 0)
            case .reassemblyTimeExceeded: .timeExceeded(code: ICMPErrorToSend.fragmentReassemblyTimeExceeded)
            }
            let datagram = PacketBuffer.icmpv4Datagram(message: message, body: quote, source: source, destination: destination)
            if transmitIPDatagram(datagram) {
                io.counters.icmpOutMessages &+= 1
                if case .reassemblyTimeExceeded = error {
                    io.counters.icmpOutTimeExceeded &+= 1
                } else {
                    io.counters.icmpOutDestinationUnreachables &+= 1
                }
            }
        case (.v6(let source), .v6(let destination)):
            // RFC 4443 §2.4(c): "as much of invoking packet as possible without the ICMPv6 packet
            // exceeding the minimum IPv6 MTU".
            let room = Self.minimumIPv6MTU - IPv6Header.length - ICMPv6Message.headerLength
            quote.moveWriterIndex(to: quote.readerIndex + min(quote.readableBytes, room))
            let message: ICMPv6Message
            switch error {
            case .portUnreachable:
                message = .destinationUnreachable(.portUnreachable)
                io.counters.icmp6OutDestinationUnreachables &+= 1
            case .protocolUnreachable, .unreachable(code: ICMPv4UnreachableCode.protocolUnreachable.rawValue):
                // RFC 8200 §4: an unrecognized Next Header gets parameter problem code 1, pointing at it.
                message = .parameterProblem(code: ICMPv6Message.unrecognizedNextHeader,
                                            pointer: UInt32(nextHeaderFieldOffset(in: quote)))
                io.counters.icmp6OutParameterProblems &+= 1
            case .unreachable(let code):
                guard let translated = ICMPv6UnreachableCode(translating: code) else {
                    io.counters.icmpOutSuppressed &+= 1
                    return
                }
                message = .destinationUnreachable(translated)
                io.counters.icmp6OutDestinationUnreachables &+= 1
            case .rejected(let code):
                message = .destinationUnreachable(ICMPv6UnreachableCode(rawValue: code))
                io.counters.icmp6OutDestinationUnreachables &+= 1
            case .reassemblyTimeExceeded:
                message = .timeExceeded(code: ICMPErrorToSend.fragmentReassemblyTimeExceeded)
                io.counters.icmp6OutTimeExceeded &+= 1
            }
            let datagram = PacketBuffer.icmpv6Datagram(message: message, body: quote, source: source, destination: destination)
            if transmitIPDatagram(datagram) { io.counters.icmp6OutMessages &+= 1 }
        default:
            break
        }
        io.decision(error.rule, "\(error) to \(destination)", connection: nil, now: now)
    }

    /// RFC 1812 §4.3.2.3: an ICMP error datagram is at most 576 octets.
    static var minimumIPv4ErrorDatagram: Int { 576 }
    /// RFC 8200 §5: every IPv6 link carries 1280 octets.
    static var minimumIPv6MTU: Int { 1280 }

    /// Whether RFC 1122 §3.2.2 / RFC 4443 §2.4(e) allow an error about a datagram (the first or only
    /// fragment of one) from `source` to `destination` carrying `payload` of `upperLayerProtocol`.
    func mayAnswerWithError(source: IPAddress, destination: IPAddress, upperLayerProtocol: UInt8, payload: ByteBuffer) -> Bool {
        guard source.namesSingleHost, destination.namesSingleHost else { return false }
        switch upperLayerProtocol {
        case IPProtocolNumber.icmp:
            // An unreadable type counts as an error: when in doubt, stay quiet.
            guard payload.readableBytes > 0 else { return false }
            return !ICMPv4Message.isError(type: payload.getInteger(at: payload.readerIndex) ?? 3)
        case IPProtocolNumber.icmpv6:
            guard payload.readableBytes > 0 else { return false }
            let type: UInt8 = payload.getInteger(at: payload.readerIndex) ?? 1
            // RFC 4443 §2.4(e.2): nor about a Redirect (type 137).
            return !ICMPv6Message.isError(type: type) && type != 137
        default:
            return true
        }
    }

    /// The offending datagram as it arrived, IP header first: `payload` shares its buffer with the
    /// datagram, which ends where the payload ends. When the bytes in front are not its header (a
    /// datagram rebuilt by reassembly), a header is written in front of a copy of the payload.
    func originalBytes(of ip: IPDatagram) -> ByteBuffer {
        var bytes = ip.payload
        let ipLength = switch ip.header {
        case .v4(let header): Int(header.totalLength)
        case .v6(let header): IPv6Header.length + Int(header.payloadLength)
        }
        let start = bytes.writerIndex - ipLength
        let expectedVersion: UInt8 = if case .v4 = ip.header { 4 } else { 6 }
        if start >= 0, start <= bytes.readerIndex {
            // Moved first: SwiftNIO reads nothing before the reader index.
            bytes.moveReaderIndex(to: start)
            if bytes.readableBytesView.first.map({ $0 >> 4 }) == expectedVersion { return bytes }
        }
        var rebuilt = PacketBuffer.make(payloadCapacity: ip.payload.readableBytes)
        rebuilt.writeImmutableBuffer(ip.payload)
        PacketBuffer.prependIPHeader(
            to: &rebuilt, source: ip.source, destination: ip.destination, protocolNumber: ip.upperLayerProtocol)
        return rebuilt
    }

    /// The offset in an IPv6 datagram of the Next Header field that names its upper-layer protocol:
    /// 6 in the fixed header, or the first octet of the last extension header (RFC 8200 §4).
    private func nextHeaderFieldOffset(in datagram: ByteBuffer) -> Int {
        var pointer = 6
        var offset = IPv6Header.length
        var next: UInt8 = datagram.getInteger(at: datagram.readerIndex + 6) ?? 0
        for _ in 0..<IPDatagram.maximumExtensionHeaders {
            guard next == IPProtocolNumber.hopByHop || next == IPProtocolNumber.routing
                    || next == IPProtocolNumber.destinationOptions,
                  let following: UInt8 = datagram.getInteger(at: datagram.readerIndex + offset),
                  let units: UInt8 = datagram.getInteger(at: datagram.readerIndex + offset + 1) else { break }
            pointer = offset
            next = following
            offset += (Int(units) + 1) * 8
        }
        return pointer
    }
}

/// What an ICMP or ICMPv6 error that arrived says, independent of the family.
enum ICMPErrorReport: Hashable {
    /// ICMP code 3, ICMPv6 code 4.
    case portUnreachable
    /// ICMP code 2, ICMPv6 parameter problem code 1.
    case protocolUnreachable
    /// ICMP fragmentation needed (RFC 1191, `mtu` 0 when the router gave none), ICMPv6 packet too big.
    case packetTooBig(mtu: Int)
    /// Any other destination unreachable.
    case unreachable
    case timeExceeded
    case parameterProblem
}

/// An error we send about a datagram that arrived.
enum ICMPErrorToSend: Hashable, CustomStringConvertible {
    /// RFC 1122 §4.1.3.1: a datagram to a port nobody is bound to.
    case portUnreachable
    /// RFC 1122 §3.2.2.1 / RFC 8200 §4: an upper-layer protocol we do not speak.
    case protocolUnreachable
    /// Destination unreachable with this ICMP code (intercept mode's `Refusal.unreachable`); over
    /// IPv6 translated as RFC 7915 §4.2 does.
    case unreachable(code: UInt8)
    /// A `reject` rule's answer: destination unreachable (ICMP type 3, ICMPv6 type 1) with its code.
    case rejected(code: UInt8)
    /// RFC 1122 §3.3.2 / RFC 8200 §4.5: a datagram whose first fragment arrived did not arrive whole
    /// in time. ICMP type 11 / ICMPv6 type 3, code 1.
    case reassemblyTimeExceeded

    /// RFC 792 and RFC 4443 §3.3: "fragment reassembly time exceeded".
    static let fragmentReassemblyTimeExceeded: UInt8 = 1

    var rule: StaticString {
        switch self {
        case .portUnreachable: "RFC 1122 §4.1.3.1"
        case .protocolUnreachable: "RFC 1122 §3.2.2.1"
        case .unreachable: "RFC 792"
        case .rejected: "RFC 1812 §5.2.7.1"
        case .reassemblyTimeExceeded: "RFC 792"
        }
    }

    var description: String {
        switch self {
        case .portUnreachable: "port unreachable"
        case .protocolUnreachable: "protocol unreachable"
        case .unreachable(let code): "destination unreachable (code \(code))"
        case .rejected(let code): "unreachable code \(code) (rule)"
        case .reassemblyTimeExceeded: "time exceeded (fragment reassembly)"
        }
    }
}

extension ICMPv6UnreachableCode {
    /// The ICMPv6 destination-unreachable code for an ICMPv4 one, as RFC 7915 §4.2 translates them:
    /// net, host, source route and the "unknown"/"isolated"/TOS codes become 0 (no route), the
    /// administrative ones 1, port unreachable 4. Nil for those it translates to no destination
    /// unreachable (2, protocol, is a parameter problem; 4 is packet too big; 14 is dropped).
    init?(translating code: UInt8) {
        switch code {
        case 0, 1, 5, 6, 7, 8, 11, 12: self = .noRoute
        case 9, 10, 13, 15: self = .administrativelyProhibited
        case 3: self = .portUnreachable
        default: return nil
        }
    }
}
