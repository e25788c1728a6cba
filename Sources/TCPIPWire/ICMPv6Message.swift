import NIOCore

/// An ICMPv6 message of RFC 4443: its type, code and the four octets after the checksum, as a value.
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |     Type      |     Code      |          Checksum             |
///     |      (identifier, sequence / MTU / pointer / unused)          |
///     |     Echo data / as much of the invoking packet as fits        |
///
/// The body is not part of the value: `ICMPv6Packet` carries it.
public enum ICMPv6Message: Hashable, Sendable {
    /// Type 1 (RFC 4443 §3.1).
    case destinationUnreachable(ICMPv6UnreachableCode)
    /// Type 2 (RFC 4443 §3.2): the MTU of the next-hop link.
    case packetTooBig(mtu: UInt32)
    /// Type 3 (RFC 4443 §3.3): code 0 hop limit exceeded in transit, code 1 fragment reassembly time
    /// exceeded.
    case timeExceeded(code: UInt8)
    /// Type 4 (RFC 4443 §3.4): code 0 erroneous header field, 1 unrecognized next header, 2 unrecognized
    /// option; `pointer` is the octet offset of the error in the invoking packet.
    case parameterProblem(code: UInt8, pointer: UInt32)
    /// Type 128 (RFC 4443 §4.1).
    case echoRequest(identifier: UInt16, sequenceNumber: UInt16)
    /// Type 129 (RFC 4443 §4.2).
    case echoReply(identifier: UInt16, sequenceNumber: UInt16)
    /// Any other type (Neighbor Discovery, MLD, …): type, code and the four octets after the checksum.
    case other(type: UInt8, code: UInt8, restOfHeader: UInt32)

    /// Octets of the ICMPv6 header: type, code, checksum and the four octets that depend on the type.
    public static let headerLength = 8

    /// RFC 4443 §3.4 code 1: "unrecognized Next Header type encountered".
    public static let unrecognizedNextHeader: UInt8 = 1

    /// The type field (RFC 4443 §2.1): 1 destination unreachable, 2 packet too big, 3 time exceeded, 4
    /// parameter problem, 128/129 echo, ….
    public var type: UInt8 {
        switch self {
        case .destinationUnreachable: 1
        case .packetTooBig: 2
        case .timeExceeded: 3
        case .parameterProblem: 4
        case .echoRequest: 128
        case .echoReply: 129
        case .other(let type, _, _): type
        }
    }

    /// The code field: what kind of unreachable, of time exceeded, …; 0 for the types that have none.
    public var code: UInt8 {
        switch self {
        case .destinationUnreachable(let code): code.rawValue
        case .packetTooBig, .echoRequest, .echoReply: 0
        case .timeExceeded(let code): code
        case .parameterProblem(let code, _): code
        case .other(_, let code, _): code
        }
    }

    /// The four octets after the checksum.
    public var restOfHeader: UInt32 {
        switch self {
        case .destinationUnreachable, .timeExceeded: 0
        case .packetTooBig(let mtu): mtu
        case .parameterProblem(_, let pointer): pointer
        case .echoRequest(let identifier, let sequence), .echoReply(let identifier, let sequence):
            UInt32(identifier) << 16 | UInt32(sequence)
        case .other(_, _, let rest): rest
        }
    }

    /// RFC 4443 §2.1: types 0–127 are error messages, 128–255 informational.
    public static func isError(type: UInt8) -> Bool { type < 128 }

    /// Whether the message is an error message (types 0 to 127, RFC 4443 §2.1), which quotes a datagram and is
    /// never answered with one (§2.4(e)).
    public var isError: Bool { ICMPv6Message.isError(type: type) }

    /// The message for a type, code and rest of header as they came off the wire.
    public init(type: UInt8, code: UInt8, restOfHeader rest: UInt32) {
        switch (type, code) {
        case (1, _): self = .destinationUnreachable(ICMPv6UnreachableCode(rawValue: code))
        // RFC 4443 §3.2: the sender sets the code to 0 and the receiver ignores it.
        case (2, _): self = .packetTooBig(mtu: rest)
        case (3, _): self = .timeExceeded(code: code)
        case (4, _): self = .parameterProblem(code: code, pointer: rest)
        case (128, 0):
            self = .echoRequest(identifier: UInt16(truncatingIfNeeded: rest >> 16), sequenceNumber: UInt16(truncatingIfNeeded: rest))
        case (129, 0):
            self = .echoReply(identifier: UInt16(truncatingIfNeeded: rest >> 16), sequenceNumber: UInt16(truncatingIfNeeded: rest))
        default: self = .other(type: type, code: code, restOfHeader: rest)
        }
    }

    /// Writes the eight-octet header into the headroom in front of `buffer`'s readable bytes (the body)
    /// and moves the reader index back over it, with the checksum over the pseudo-header of RFC 8200 §8.1
    /// (RFC 4443 §2.3), header and body.
    ///
    /// - Precondition: `buffer.readerIndex >= 8`; both addresses IPv6.
    public func prepend(to buffer: inout ByteBuffer, source: IPv6Address, destination: IPv6Address) {
        precondition(buffer.readerIndex >= ICMPv6Message.headerLength, "no headroom for an ICMPv6 header")
        let type = type, code = code, rest = restOfHeader
        buffer.prependWire(length: ICMPv6Message.headerLength) { header in
            header.store(type, at: 0)
            header.store(code, at: 1)
            header.store(UInt16(0), at: 2)
            header.store(rest, at: 4)
        }
        var sum = InternetChecksum()
        sum.addPseudoHeader(
            source: .v6(source), destination: .v6(destination), protocolNumber: IPProtocolNumber.icmpv6,
            upperLayerLength: buffer.readableBytes)
        sum.add(buffer)
        buffer.setInteger(sum.checksum, at: buffer.readerIndex + 2, endianness: .big)
    }
}

/// The code of an ICMPv6 destination unreachable message (RFC 4443 §3.1).
public struct ICMPv6UnreachableCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8

    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// Code 0 (RFC 4443 §3.1): no route to the destination.
    public static let noRoute = ICMPv6UnreachableCode(rawValue: 0)
    /// Code 1 (RFC 4443 §3.1): communication with the destination is administratively prohibited.
    public static let administrativelyProhibited = ICMPv6UnreachableCode(rawValue: 1)
    /// Code 2 (RFC 4443 §3.1): the destination is beyond the scope of the source address.
    public static let beyondScope = ICMPv6UnreachableCode(rawValue: 2)
    /// Code 3 (RFC 4443 §3.1): the address is unreachable (no neighbour answered, for one).
    public static let addressUnreachable = ICMPv6UnreachableCode(rawValue: 3)
    /// Code 4 (RFC 4443 §3.1): nothing listens on the destination port.
    public static let portUnreachable = ICMPv6UnreachableCode(rawValue: 4)
    /// Code 5 (RFC 4443 §3.1): the source address failed an ingress/egress policy.
    public static let sourcePolicyFailed = ICMPv6UnreachableCode(rawValue: 5)
    /// Code 6 (RFC 4443 §3.1): the route to the destination is a reject route.
    public static let rejectRoute = ICMPv6UnreachableCode(rawValue: 6)
}

/// An ICMPv6 message with its body, parsed and validated: the value a receiver acts on.
public struct ICMPv6Packet: Hashable, Sendable {
    /// The type, code and type-dependent header fields.
    public var message: ICMPv6Message
    /// As parsed.
    public var checksum: UInt16
    /// Everything after the eight-octet header.
    public var body: ByteBuffer
    /// For error messages (types 0–127), the packet they quote; nil for informational messages.
    public var quoted: ICMPQuotedDatagram?

    /// A packet with these fields (each as the property of the same name).
    public init(message: ICMPv6Message, body: ByteBuffer, quoted: ICMPQuotedDatagram? = nil, checksum: UInt16 = 0) {
        self.message = message
        self.body = body
        self.quoted = quoted
        self.checksum = checksum
    }

    /// Parses an ICMPv6 message: `message`'s readable bytes are the IPv6 payload after the extension
    /// headers (`IPDatagram.payload`), from `source` to `destination`.
    ///
    /// RFC 4443 §2.3 / §2.4: the checksum covers the pseudo-header of RFC 8200 §8.1, and a message whose
    /// checksum does not verify is discarded. Errors must quote an IPv6 header and at least eight octets
    /// of the upper-layer header, else `.badQuotedDatagram`.
    public static func parse(
        _ message: consuming ByteBuffer, source: IPv6Address, destination: IPv6Address, verifyChecksum: Bool = true
    ) throws(WireError) -> ICMPv6Packet {
        let length = message.readableBytes
        guard length >= ICMPv6Message.headerLength else { throw .truncated }
        if verifyChecksum {
            var sum = InternetChecksum()
            sum.addPseudoHeader(
                source: .v6(source), destination: .v6(destination), protocolNumber: IPProtocolNumber.icmpv6,
                upperLayerLength: length)
            sum.add(message)
            guard sum.checksum == 0 else { throw .badChecksum }
        }
        let fields = message.withWireReader { reader in
            (type: reader.wireUInt8(at: 0), code: reader.wireUInt8(at: 1), checksum: reader.wireUInt16(at: 2),
             rest: reader.wireUInt32(at: 4))
        }
        let value = ICMPv6Message(type: fields.type, code: fields.code, restOfHeader: fields.rest)
        message.moveReaderIndex(forwardBy: ICMPv6Message.headerLength)
        let quoted = ICMPv6Message.isError(type: fields.type) ? try ICMPQuotedDatagram.parseIPv6(message) : nil
        return ICMPv6Packet(message: value, body: message, quoted: quoted, checksum: fields.checksum)
    }
}

extension ICMPv6Packet: CustomStringConvertible {
    /// tcpdump's notation, e.g. `ICMP6, echo request, id 7, seq 1, length 64`,
    /// `ICMP6, destination unreachable, unreachable port 2001:db8::2 udp port 9, length 56`,
    /// `ICMP6, packet too big, mtu 1280, length 1240`.
    public var description: String {
        let length = ICMPv6Message.headerLength + body.readableBytes
        let text: String
        switch message {
        case .destinationUnreachable(let code):
            let target = quoted.map { "\($0.destination)" } ?? "?"
            switch code {
            case .noRoute: text = "destination unreachable, unreachable route \(target)"
            case .administrativelyProhibited: text = "destination unreachable, unreachable prohibited \(target)"
            case .beyondScope: text = "destination unreachable, beyond scope \(target)"
            case .addressUnreachable: text = "destination unreachable, unreachable address \(target)"
            case .portUnreachable: text = "destination unreachable, unreachable port \(quoted?.description ?? target)"
            default: text = "destination unreachable, code \(code.rawValue) \(target)"
            }
        case .packetTooBig(let mtu):
            text = "packet too big, mtu \(mtu)"
        case .timeExceeded(let code):
            text = code == 0 ? "time exceeded in-transit" : code == 1 ? "time exceeded reassembly" : "time exceeded, code \(code)"
        case .parameterProblem(let code, let pointer):
            let reason = switch code {
            case 0: "erroneous - octet"
            case 1: "next header - octet"
            case 2: "option - octet"
            default: "code \(code) - octet"
            }
            text = "parameter problem, \(reason) \(pointer)"
        case .echoRequest(let identifier, let sequence):
            text = "echo request, id \(identifier), seq \(sequence)"
        case .echoReply(let identifier, let sequence):
            text = "echo reply, id \(identifier), seq \(sequence)"
        case .other(let type, let code, _):
            text = "type-#\(type), code \(code)"
        }
        return "ICMP6, \(text), length \(length)"
    }
}
