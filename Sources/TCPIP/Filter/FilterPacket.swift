import NIOCore
import TCPIPWire

/// The fields of one datagram that rules and connection tracking look at, read once from the
/// parsed datagram: no copy of the payload, nothing allocated.
///
/// Transport fields are read from the transport header's first octets (ports, TCP sequence, flags
/// and window; ICMP type, code and echo identifier); a header too short for them leaves them zero
/// and `transportComplete` false, so rules on ports never match a truncated segment.
public struct FilterPacket: Sendable {
    /// The source address.
    public var source: IPAddress
    /// The destination address.
    public var destination: IPAddress
    /// The upper-layer protocol (`IPProtocolNumber`).
    public var protocolNumber: UInt8
    /// The whole datagram's length in octets, as `meta length` sees it.
    public var length: Int
    /// The TCP or UDP source port; 0 for other protocols.
    public var sourcePort: UInt16 = 0
    /// The TCP or UDP destination port; 0 for other protocols.
    public var destinationPort: UInt16 = 0
    /// The TCP control bits.
    public var tcpFlags: TCPFlags = []
    /// The TCP sequence number.
    public var sequenceNumber: UInt32 = 0
    /// The TCP acknowledgment number.
    public var acknowledgmentNumber: UInt32 = 0
    /// The TCP window field, unscaled.
    public var window: UInt16 = 0
    /// TCP payload octets (segment length without SYN and FIN).
    public var payloadLength: Int = 0
    /// The window scale a SYN offers (RFC 7323 §2.2), nil when it offers none.
    public var windowScale: UInt8?
    /// The ICMP or ICMPv6 type.
    public var icmpType: UInt8 = 0
    /// The ICMP or ICMPv6 code.
    public var icmpCode: UInt8 = 0
    /// The echo identifier of an ICMP(v6) echo request or reply.
    public var icmpIdentifier: UInt16 = 0
    /// For an ICMP error: the flow of the datagram it quotes (source and destination as the quoted
    /// datagram had them).
    public var quoted: FlowTuple?
    /// Whether the transport header was long enough for the fields above.
    public var transportComplete = false
    /// The name of the link it came in by, as `iifname` matches it; nil when it has none.
    public var inputLink: String?
    /// The name of the link it leaves by, as `oifname` matches it; nil when it has none.
    public var outputLink: String?
    /// Set by connection tracking, once per datagram (the first hook that tracks it).
    public var connectionState: ConnectionState?

    /// Whether it is an IPv4 datagram.
    public var isIPv4: Bool {
        if case .v4 = source { return true }
        return false
    }

    /// A packet with no transport fields: for tests, and protocols the filter does not parse.
    public init(source: IPAddress, destination: IPAddress, protocolNumber: UInt8, length: Int) {
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.length = length
    }

    /// Reads the fields of `datagram`; its payload is looked at, not consumed.
    public init(_ datagram: IPDatagram, inputLink: String? = nil, outputLink: String? = nil) {
        let length: Int
        switch datagram.header {
        case .v4(let header): length = Int(header.totalLength)
        case .v6(let header): length = 40 + Int(header.payloadLength)
        }
        self.init(
            source: datagram.source, destination: datagram.destination, protocolNumber: datagram.upperLayerProtocol,
            length: length)
        self.inputLink = inputLink
        self.outputLink = outputLink
        // A fragment after the first carries no transport header: its first octets are data.
        if let fragment = datagram.fragment, fragment.offset != 0 { return }
        readTransport(datagram.payload)
    }

    mutating func readTransport(_ payload: ByteBuffer) {
        let at = payload.readerIndex
        let count = payload.readableBytes
        switch protocolNumber {
        case IPProtocolNumber.tcp:
            guard count >= TCPHeader.minimumLength,
                  let ports = payload.getInteger(at: at, as: UInt32.self),
                  let sequence = payload.getInteger(at: at + 4, as: UInt32.self),
                  let acknowledgment = payload.getInteger(at: at + 8, as: UInt32.self),
                  let offsetAndFlags = payload.getInteger(at: at + 12, as: UInt16.self),
                  let window = payload.getInteger(at: at + 14, as: UInt16.self)
            else { return }
            let dataOffset = Int(offsetAndFlags >> 12) * 4
            guard dataOffset >= TCPHeader.minimumLength, dataOffset <= count else { return }
            sourcePort = UInt16(ports >> 16)
            destinationPort = UInt16(truncatingIfNeeded: ports)
            sequenceNumber = sequence
            acknowledgmentNumber = acknowledgment
            tcpFlags = TCPFlags(rawValue: UInt8(truncatingIfNeeded: offsetAndFlags))
            self.window = window
            payloadLength = count - dataOffset
            if tcpFlags.contains(.syn) { windowScale = Self.windowScaleOption(payload, at: at + 20, end: at + dataOffset) }
            transportComplete = true
        case IPProtocolNumber.udp:
            guard count >= 8, let ports = payload.getInteger(at: at, as: UInt32.self) else { return }
            sourcePort = UInt16(ports >> 16)
            destinationPort = UInt16(truncatingIfNeeded: ports)
            payloadLength = count - 8
            transportComplete = true
        case IPProtocolNumber.icmp, IPProtocolNumber.icmpv6:
            guard count >= 8, let type = payload.getInteger(at: at, as: UInt8.self),
                  let code = payload.getInteger(at: at + 1, as: UInt8.self),
                  let identifier = payload.getInteger(at: at + 4, as: UInt16.self)
            else { return }
            icmpType = type
            icmpCode = code
            transportComplete = true
            let isV4 = protocolNumber == IPProtocolNumber.icmp
            if ICMPKind.isEcho(type, v4: isV4) {
                icmpIdentifier = identifier
            } else if ICMPKind.isError(type, v4: isV4) {
                quoted = Self.quotedFlow(payload, at: at + 8)
            }
        default:
            return
        }
    }

    /// Walks TCP options for a window scale (kind 3, length 3).
    static func windowScaleOption(_ buffer: ByteBuffer, at start: Int, end: Int) -> UInt8? {
        var index = start
        while index < end, let kind = buffer.getInteger(at: index, as: UInt8.self) {
            switch kind {
            case 0: return nil
            case 1: index += 1
            default:
                guard index + 1 < end, let length = buffer.getInteger(at: index + 1, as: UInt8.self), length >= 2 else { return nil }
                if kind == 3, length == 3, index + 2 < end {
                    // RFC 7323 §2.3: a shift above 14 is used as 14.
                    return buffer.getInteger(at: index + 2, as: UInt8.self).map { min($0, 14) }
                }
                index += Int(length)
            }
        }
        return nil
    }

    /// The flow of the datagram an ICMP error quotes: its IP header and the first eight octets after it
    /// (RFC 792; RFC 4443 §2.4 (c) quotes as much as fits).
    static func quotedFlow(_ buffer: ByteBuffer, at start: Int) -> FlowTuple? {
        guard let first = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        let source: IPAddress, destination: IPAddress, protocolNumber: UInt8, transport: Int
        switch first >> 4 {
        case 4:
            let headerLength = Int(first & 0x0F) * 4
            guard headerLength >= 20, let proto = buffer.getInteger(at: start + 9, as: UInt8.self),
                  let s = buffer.getInteger(at: start + 12, as: UInt32.self),
                  let d = buffer.getInteger(at: start + 16, as: UInt32.self)
            else { return nil }
            source = .v4(IPv4Address(rawValue: s))
            destination = .v4(IPv4Address(rawValue: d))
            protocolNumber = proto
            transport = start + headerLength
        case 6:
            guard let next = buffer.getInteger(at: start + 6, as: UInt8.self),
                  let sh = buffer.getInteger(at: start + 8, as: UInt64.self), let sl = buffer.getInteger(at: start + 16, as: UInt64.self),
                  let dh = buffer.getInteger(at: start + 24, as: UInt64.self), let dl = buffer.getInteger(at: start + 32, as: UInt64.self)
            else { return nil }
            source = .v6(IPv6Address(high: sh, low: sl))
            destination = .v6(IPv6Address(high: dh, low: dl))
            protocolNumber = next
            transport = start + 40
        default:
            return nil
        }
        guard let word = buffer.getInteger(at: transport, as: UInt32.self) else { return nil }
        var tuple = FlowTuple(source: source, destination: destination, protocolNumber: protocolNumber, sourcePort: 0, destinationPort: 0)
        switch protocolNumber {
        case IPProtocolNumber.tcp, IPProtocolNumber.udp:
            tuple.sourcePort = UInt16(word >> 16)
            tuple.destinationPort = UInt16(truncatingIfNeeded: word)
        case IPProtocolNumber.icmp, IPProtocolNumber.icmpv6:
            guard let identifier = buffer.getInteger(at: transport + 4, as: UInt16.self) else { return nil }
            tuple.sourcePort = identifier
            tuple.destinationPort = identifier
        default:
            break
        }
        return tuple
    }

    /// The flow this packet belongs to, in the direction it travels (echo identifier as both ports).
    public var flow: FlowTuple {
        let isICMP = protocolNumber == IPProtocolNumber.icmp || protocolNumber == IPProtocolNumber.icmpv6
        return FlowTuple(
            source: source, destination: destination, protocolNumber: protocolNumber,
            sourcePort: isICMP ? icmpIdentifier : sourcePort, destinationPort: isICMP ? icmpIdentifier : destinationPort)
    }
}

/// A flow's addresses, protocol and ports, in one direction.
public struct FlowTuple: Hashable, Sendable {
    /// The source address.
    public var source: IPAddress
    /// The destination address.
    public var destination: IPAddress
    /// The upper-layer protocol (`IPProtocolNumber`).
    public var protocolNumber: UInt8
    /// The source port (the echo identifier for ICMP).
    public var sourcePort: UInt16
    /// The destination port (the echo identifier for ICMP).
    public var destinationPort: UInt16

    /// A tuple with these fields.
    public init(source: IPAddress, destination: IPAddress, protocolNumber: UInt8, sourcePort: UInt16, destinationPort: UInt16) {
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    /// The same flow in the other direction.
    public var reversed: FlowTuple {
        FlowTuple(source: destination, destination: source, protocolNumber: protocolNumber,
                  sourcePort: destinationPort, destinationPort: sourcePort)
    }
}

/// ICMP and ICMPv6 type numbers the filter knows by name (RFC 792, RFC 4443).
public enum ICMPKind {
    static func isEcho(_ type: UInt8, v4: Bool) -> Bool {
        v4 ? (type == 8 || type == 0) : (type == 128 || type == 129)
    }

    static func isEchoRequest(_ type: UInt8, v4: Bool) -> Bool { v4 ? type == 8 : type == 128 }

    /// Destination unreachable, source quench, redirect, time exceeded, parameter problem; ICMPv6's
    /// error messages are types 0...127 (RFC 4443 §2.1).
    static func isError(_ type: UInt8, v4: Bool) -> Bool {
        v4 ? [3, 4, 5, 11, 12].contains(type) : type < 128
    }

    static let v4Names: [(String, UInt8)] = [
        ("echo-reply", 0), ("destination-unreachable", 3), ("source-quench", 4), ("redirect", 5),
        ("echo-request", 8), ("router-advertisement", 9), ("router-solicitation", 10), ("time-exceeded", 11),
        ("parameter-problem", 12), ("timestamp-request", 13), ("timestamp-reply", 14),
    ]
    static let v6Names: [(String, UInt8)] = [
        ("destination-unreachable", 1), ("packet-too-big", 2), ("time-exceeded", 3), ("parameter-problem", 4),
        ("echo-request", 128), ("echo-reply", 129), ("mld-listener-query", 130), ("nd-router-solicit", 133),
        ("nd-router-advert", 134), ("nd-neighbor-solicit", 135), ("nd-neighbor-advert", 136), ("nd-redirect", 137),
    ]

    static func name(_ type: UInt8, v4: Bool) -> String {
        (v4 ? v4Names : v6Names).first { $0.1 == type }?.0 ?? String(type)
    }

    static func type(named name: String, v4: Bool) -> UInt8? {
        (v4 ? v4Names : v6Names).first { $0.0 == name }?.1
    }
}
