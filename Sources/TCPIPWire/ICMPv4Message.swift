import NIOCore

/// An ICMP message of RFC 792: its type, code and the four octets after the checksum, as a value.
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |     Type      |     Code      |          Checksum             |
///     |   (identifier, sequence / unused, next-hop MTU / pointer)     |
///     |     Echo data / Internet Header + 64 bits of original data    |
///
/// The body (echo data or the quoted datagram) is not part of the value: `ICMPv4Packet` carries it.
public enum ICMPv4Message: Hashable, Sendable {
    /// Type 0.
    case echoReply(identifier: UInt16, sequenceNumber: UInt16)
    /// Type 3. `nextHopMTU` is RFC 1191 §4's field for code 4 (fragmentation needed), 0 when the router
    /// did not fill it in (and for every other code).
    case destinationUnreachable(ICMPv4UnreachableCode, nextHopMTU: UInt16)
    /// Type 8.
    case echoRequest(identifier: UInt16, sequenceNumber: UInt16)
    /// Type 11: code 0 TTL exceeded in transit, code 1 fragment reassembly time exceeded.
    case timeExceeded(code: UInt8)
    /// Type 12: `pointer` is the octet of the quoted header in error (code 0).
    case parameterProblem(code: UInt8, pointer: UInt8)
    /// Any other type (source quench, redirect, timestamp, …): type, code and the four octets after the
    /// checksum as they came.
    case other(type: UInt8, code: UInt8, restOfHeader: UInt32)

    /// Octets of the ICMP header: type, code, checksum and the four octets that depend on the type.
    public static let headerLength = 8

    /// The type field (RFC 792): 0 echo reply, 3 destination unreachable, 8 echo request, 11 time exceeded, ….
    public var type: UInt8 {
        switch self {
        case .echoReply: 0
        case .destinationUnreachable: 3
        case .echoRequest: 8
        case .timeExceeded: 11
        case .parameterProblem: 12
        case .other(let type, _, _): type
        }
    }

    /// The code field: what kind of unreachable, of time exceeded, …; 0 for the types that have none.
    public var code: UInt8 {
        switch self {
        case .echoReply, .echoRequest: 0
        case .destinationUnreachable(let code, _): code.rawValue
        case .timeExceeded(let code): code
        case .parameterProblem(let code, _): code
        case .other(_, let code, _): code
        }
    }

    /// The four octets after the checksum.
    public var restOfHeader: UInt32 {
        switch self {
        case .echoReply(let identifier, let sequence), .echoRequest(let identifier, let sequence):
            UInt32(identifier) << 16 | UInt32(sequence)
        case .destinationUnreachable(_, let mtu): UInt32(mtu)
        case .timeExceeded: 0
        case .parameterProblem(_, let pointer): UInt32(pointer) << 24
        case .other(_, _, let rest): rest
        }
    }

    /// Whether messages of `type` are errors, which quote a datagram and are never answered with an error
    /// (RFC 1122 §3.2.2): destination unreachable, source quench, redirect, time exceeded, parameter problem.
    /// Types RFC 792 does not define count as errors too, as Linux's `icmp_send` treats them: when in
    /// doubt, stay quiet.
    public static func isError(type: UInt8) -> Bool {
        switch type {
        case 0, 8, 9, 10, 13, 14, 15, 16, 17, 18: false
        default: true
        }
    }

    /// Whether the message reports an error about a datagram (and quotes it): an ICMP error is never answered
    /// with one (RFC 1122 §3.2.2).
    public var isError: Bool { ICMPv4Message.isError(type: type) }

    /// The message for a type, code and rest of header as they came off the wire.
    public init(type: UInt8, code: UInt8, restOfHeader rest: UInt32) {
        switch (type, code) {
        case (0, 0):
            self = .echoReply(identifier: UInt16(truncatingIfNeeded: rest >> 16), sequenceNumber: UInt16(truncatingIfNeeded: rest))
        case (8, 0):
            self = .echoRequest(identifier: UInt16(truncatingIfNeeded: rest >> 16), sequenceNumber: UInt16(truncatingIfNeeded: rest))
        case (3, _):
            // RFC 1191 §4: the next-hop MTU is the low 16 bits; it means something for code 4 only.
            let code = ICMPv4UnreachableCode(rawValue: code)
            self = .destinationUnreachable(code, nextHopMTU: code == .fragmentationNeeded ? UInt16(truncatingIfNeeded: rest) : 0)
        case (11, _):
            self = .timeExceeded(code: code)
        case (12, _):
            self = .parameterProblem(code: code, pointer: UInt8(truncatingIfNeeded: rest >> 24))
        default:
            self = .other(type: type, code: code, restOfHeader: rest)
        }
    }

    /// Writes the eight-octet header into the headroom in front of `buffer`'s readable bytes (the body)
    /// and moves the reader index back over it, with the checksum over header and body (RFC 792: no
    /// pseudo-header for ICMP over IPv4).
    ///
    /// - Precondition: `buffer.readerIndex >= 8`.
    public func prepend(to buffer: inout ByteBuffer) {
        precondition(buffer.readerIndex >= ICMPv4Message.headerLength, "no headroom for an ICMP header")
        let type = type, code = code, rest = restOfHeader
        buffer.prependWire(length: ICMPv4Message.headerLength) { header in
            header.store(type, at: 0)
            header.store(code, at: 1)
            header.store(UInt16(0), at: 2)
            header.store(rest, at: 4)
        }
        var sum = InternetChecksum()
        sum.add(buffer)
        buffer.setInteger(sum.checksum, at: buffer.readerIndex + 2, endianness: .big)
    }
}

/// The code of an ICMP destination unreachable message (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
public struct ICMPv4UnreachableCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8

    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// Code 0 (RFC 792): no route to the destination's network.
    public static let networkUnreachable = ICMPv4UnreachableCode(rawValue: 0)
    /// Code 1 (RFC 792): the network was reached, the host was not.
    public static let hostUnreachable = ICMPv4UnreachableCode(rawValue: 1)
    /// Code 2 (RFC 792): the host does not speak the datagram's protocol.
    public static let protocolUnreachable = ICMPv4UnreachableCode(rawValue: 2)
    /// Code 3 (RFC 792): nothing listens on the destination port (UDP's answer; TCP answers RST).
    public static let portUnreachable = ICMPv4UnreachableCode(rawValue: 3)
    /// RFC 1191 §4: the datagram needed fragmenting and had DF set; the next-hop MTU says how far.
    public static let fragmentationNeeded = ICMPv4UnreachableCode(rawValue: 4)
    /// Code 5 (RFC 792): a source route could not be followed.
    public static let sourceRouteFailed = ICMPv4UnreachableCode(rawValue: 5)
    /// Code 6 (RFC 1122 §3.2.2.1): the destination network is unknown.
    public static let destinationNetworkUnknown = ICMPv4UnreachableCode(rawValue: 6)
    /// Code 7 (RFC 1122 §3.2.2.1): the destination host is unknown.
    public static let destinationHostUnknown = ICMPv4UnreachableCode(rawValue: 7)
    /// Code 8 (RFC 1122 §3.2.2.1): the source host is isolated (obsolete).
    public static let sourceHostIsolated = ICMPv4UnreachableCode(rawValue: 8)
    /// Code 9 (RFC 1122 §3.2.2.1): communication with the destination network is prohibited.
    public static let networkAdministrativelyProhibited = ICMPv4UnreachableCode(rawValue: 9)
    /// Code 10 (RFC 1122 §3.2.2.1): communication with the destination host is prohibited.
    public static let hostAdministrativelyProhibited = ICMPv4UnreachableCode(rawValue: 10)
    /// Code 11 (RFC 1122 §3.2.2.1): the network is unreachable for this type of service.
    public static let networkUnreachableForTOS = ICMPv4UnreachableCode(rawValue: 11)
    /// Code 12 (RFC 1122 §3.2.2.1): the host is unreachable for this type of service.
    public static let hostUnreachableForTOS = ICMPv4UnreachableCode(rawValue: 12)
    /// RFC 1812 §5.2.7.1.
    public static let communicationAdministrativelyProhibited = ICMPv4UnreachableCode(rawValue: 13)
    /// Code 14 (RFC 1812 §5.2.7.1): the precedence is not permitted for this host.
    public static let hostPrecedenceViolation = ICMPv4UnreachableCode(rawValue: 14)
    /// Code 15 (RFC 1812 §5.2.7.1): the precedence is below the network's cutoff.
    public static let precedenceCutoffInEffect = ICMPv4UnreachableCode(rawValue: 15)
}

/// An ICMP message with its body, parsed and validated: the value a receiver acts on.
public struct ICMPv4Packet: Hashable, Sendable {
    /// The type, code and type-dependent header fields.
    public var message: ICMPv4Message
    /// As parsed.
    public var checksum: UInt16
    /// Everything after the eight-octet header: the echo data, the quoted datagram, or whatever another
    /// type carries.
    public var body: ByteBuffer
    /// For error messages (destination unreachable, time exceeded, parameter problem, source quench,
    /// redirect), the datagram they quote; nil for every other type.
    public var quoted: ICMPQuotedDatagram?

    /// A packet with these fields (each as the property of the same name).
    public init(message: ICMPv4Message, body: ByteBuffer, quoted: ICMPQuotedDatagram? = nil, checksum: UInt16 = 0) {
        self.message = message
        self.body = body
        self.quoted = quoted
        self.checksum = checksum
    }

    /// Parses an ICMP message: `message`'s readable bytes are the IP payload (`IPDatagram.payload`).
    ///
    /// RFC 1122 §3.2.2: a message with a bad checksum is discarded. Errors (types 3, 4, 5, 11, 12) must
    /// quote an IPv4 header and at least eight octets after it, else `.badQuotedDatagram`.
    public static func parse(_ message: consuming ByteBuffer, verifyChecksum: Bool = true) throws(WireError) -> ICMPv4Packet {
        guard message.readableBytes >= ICMPv4Message.headerLength else { throw .truncated }
        if verifyChecksum {
            var sum = InternetChecksum()
            sum.add(message)
            guard sum.checksum == 0 else { throw .badChecksum }
        }
        let fields = message.withWireReader { reader in
            (type: reader.wireUInt8(at: 0), code: reader.wireUInt8(at: 1), checksum: reader.wireUInt16(at: 2),
             rest: reader.wireUInt32(at: 4))
        }
        let value = ICMPv4Message(type: fields.type, code: fields.code, restOfHeader: fields.rest)
        message.moveReaderIndex(forwardBy: ICMPv4Message.headerLength)
        var quoted: ICMPQuotedDatagram?
        switch fields.type {
        case 3, 4, 5, 11, 12:
            quoted = try ICMPQuotedDatagram.parseIPv4(message)
        default:
            quoted = nil
        }
        return ICMPv4Packet(message: value, body: message, quoted: quoted, checksum: fields.checksum)
    }
}

extension ICMPv4Packet: CustomStringConvertible {
    /// tcpdump's notation, e.g. `ICMP echo request, id 7, seq 1, length 64`,
    /// `ICMP 198.18.0.2 udp port 9 unreachable, length 36`,
    /// `ICMP 198.18.0.2 unreachable - need to frag (mtu 1280), length 556`.
    public var description: String {
        let length = ICMPv4Message.headerLength + body.readableBytes
        let target = quoted.map { "\($0.destination)" } ?? "?"
        let text: String
        switch message {
        case .echoRequest(let identifier, let sequence):
            text = "echo request, id \(identifier), seq \(sequence)"
        case .echoReply(let identifier, let sequence):
            text = "echo reply, id \(identifier), seq \(sequence)"
        case .destinationUnreachable(let code, let mtu):
            switch code {
            case .networkUnreachable: text = "net \(target) unreachable"
            case .hostUnreachable: text = "host \(target) unreachable"
            case .protocolUnreachable:
                text = "\(target) protocol \(quoted?.upperLayerProtocol ?? 0) unreachable"
            case .portUnreachable: text = "\(quoted?.description ?? target) unreachable"
            case .fragmentationNeeded:
                text = mtu == 0 ? "\(target) unreachable - need to frag" : "\(target) unreachable - need to frag (mtu \(mtu))"
            case .communicationAdministrativelyProhibited: text = "\(target) unreachable - admin prohibited filter"
            default: text = "\(target) unreachable - code \(code.rawValue)"
            }
        case .timeExceeded(let code):
            text = code == 0 ? "time exceeded in-transit" : code == 1 ? "ip reassembly time exceeded" : "time exceeded, code \(code)"
        case .parameterProblem(let code, let pointer):
            text = code == 0 ? "parameter problem - octet \(pointer)" : "parameter problem - code \(code)"
        case .other(let type, let code, _):
            text = "type-#\(type), code \(code)"
        }
        return "ICMP \(text), length \(length)"
    }
}
