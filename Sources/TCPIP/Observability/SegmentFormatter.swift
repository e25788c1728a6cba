import NIOCore
import TCPIPWire

/// One TCP segment as a capture sees it: who sent it to whom, its header, how much it carried.
public struct CapturedSegment: Hashable, Sendable {
    /// Who sent it.
    public var source: Endpoint
    /// To whom.
    public var destination: Endpoint
    /// Its TCP header.
    public var header: TCPHeader
    /// Octets of data it carried.
    public var payloadLength: Int

    /// A segment with these fields.
    public init(source: Endpoint, destination: Endpoint, header: TCPHeader, payloadLength: Int) {
        self.source = source
        self.destination = destination
        self.header = header
        self.payloadLength = payloadLength
    }

    /// Parses a raw IPv4 or IPv6 datagram; nil if it carries something other than TCP.
    ///
    /// Checksums are not verified: a capture on a link with checksum offload holds zeros there, and a
    /// trace should show what crossed the wire rather than hide it. Anything else malformed throws.
    public static func parse(_ datagram: ByteBuffer) throws(WireError) -> CapturedSegment? {
        let ip = try IPDatagram.parse(datagram, verifyChecksum: false)
        guard ip.upperLayerProtocol == IPProtocolNumber.tcp else { return nil }
        let (header, payload) = try TCPHeader.parse(
            ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: false)
        return CapturedSegment(
            source: Endpoint(ip.source, header.sourcePort),
            destination: Endpoint(ip.destination, header.destinationPort),
            header: header, payloadLength: payload.readableBytes)
    }

    /// Sequence space the segment occupies: its payload plus one for SYN and one for FIN.
    public var sequenceLength: Int {
        payloadLength + (header.flags.contains(.syn) ? 1 : 0) + (header.flags.contains(.fin) ? 1 : 0)
    }
}

/// Prints segments in tcpdump's notation, numbered the way tcpdump numbers them.
///
///     0.010000 IP 198.18.0.2.5001 > 198.18.0.1.49233: Flags [.], ack 1025, win 0, length 0
///
/// tcpdump prints a connection's SYNs (and the first segment it sees of a connection) with absolute
/// numbers and remembers them; later segments are printed relative to them, so data starts at 1.
/// The formatter keeps that memory per 4-tuple, both directions in one entry, and also the window
/// scale each side announced in its SYN, so `advertisedWindow` can give windows in bytes.
public struct SegmentFormatter: Sendable {
    /// How the time is printed in front of each line.
    public enum TimeStyle: Sendable {
        /// Seconds and microseconds, as `tcpdump -tt`: `12.000250`.
        case seconds
        /// `HH:MM:SS.uuuuuu`, as tcpdump's default.
        case clock
        /// No time at all.
        case none
    }

    /// Which segments show their options.
    public enum OptionsStyle: Sendable {
        /// Every segment, as tcpdump does.
        case all
        /// SYNs only: the options that set the connection up, and lines short enough for 80 columns.
        case synOnly
    }

    /// What tcpdump remembers of one connection, from the side that was seen first ("forward").
    private struct Conversation: Sendable {
        /// Subtracted from sequence numbers going forward, and from acknowledgments coming back.
        var forwardBase: UInt32
        /// Subtracted from acknowledgments going forward, and from sequence numbers coming back.
        var reverseBase: UInt32
        /// The shift each side announced in its SYN; nil until seen (RFC 7323 §2.2).
        var forwardWindowScale: UInt8?
        var reverseWindowScale: UInt8?
    }

    /// How each line's time is written.
    public var timeStyle: TimeStyle
    /// How much of the options is written.
    public var optionsStyle: OptionsStyle
    private var conversations: [FourTuple: Conversation] = [:]

    /// A formatter writing times and options as asked; sequence numbers are relative from each conversation's
    /// first segment, as tcpdump's.
    public init(timeStyle: TimeStyle = .seconds, optionsStyle: OptionsStyle = .all) {
        self.timeStyle = timeStyle
        self.optionsStyle = optionsStyle
    }

    /// Formats a raw datagram seen at `time`; a datagram that does not parse is printed as such.
    public mutating func format(_ datagram: ByteBuffer, at time: Instant) -> String {
        do {
            if let segment = try CapturedSegment.parse(datagram) { return format(segment, at: time) }
            return timePrefix(time) + (try Self.describeNonTCP(datagram))
        } catch {
            return timePrefix(time) + "IP malformed datagram (\(error.counterName)), length \(datagram.readableBytes)"
        }
    }

    /// A datagram that is not TCP in tcpdump's notation (checksums not verified, as for TCP):
    ///
    ///     IP 198.18.0.1.40000 > 198.18.0.2.7: UDP, length 5
    ///     IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 7, seq 1, length 64
    ///     IP6 2001:db8::2 > 2001:db8::1: ICMP6, destination unreachable, unreachable port 2001:db8::1 udp port 9, length 56
    ///     IP 198.18.0.1 > 198.18.0.2: ip-proto-253 100
    static func describeNonTCP(_ datagram: ByteBuffer) throws(WireError) -> String {
        let ip = try IPDatagram.parse(datagram, verifyChecksum: false)
        let family = if case .v6 = ip.source { "IP6" } else { "IP" }
        switch (ip.upperLayerProtocol, ip.source, ip.destination) {
        case (IPProtocolNumber.udp, _, _):
            let (header, _) = try UDPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: false)
            return "\(family) \(Endpoint(ip.source, header.sourcePort).tcpdumpDescription) > "
                + "\(Endpoint(ip.destination, header.destinationPort).tcpdumpDescription): \(header)"
        case (IPProtocolNumber.icmp, .v4, .v4):
            let packet = try ICMPv4Packet.parse(ip.payload, verifyChecksum: false)
            return "\(family) \(ip.source) > \(ip.destination): \(packet)"
        case (IPProtocolNumber.icmpv6, .v6(let source), .v6(let destination)):
            let packet = try ICMPv6Packet.parse(ip.payload, source: source, destination: destination, verifyChecksum: false)
            return "\(family) \(ip.source) > \(ip.destination): \(packet)"
        default:
            return "\(family) \(ip.source) > \(ip.destination): ip-proto-\(ip.upperLayerProtocol) \(ip.payload.readableBytes)"
        }
    }

    /// Formats one segment seen at `time`, and remembers what tcpdump would remember of it.
    ///
    /// Every segment of a connection should pass through here, printed or not, so the numbering
    /// stays right.
    public mutating func format(_ segment: CapturedSegment, at time: Instant) -> String {
        let (sequenceBase, acknowledgmentBase) = observe(segment)
        var header = segment.header
        if optionsStyle == .synOnly && !header.flags.contains(.syn) {
            header.options = TCPOptions()
        }
        let family = if case .v6 = segment.source.address { "IP6" } else { "IP" }
        return timePrefix(time) + "\(family) \(segment.source.tcpdumpDescription) > "
            + "\(segment.destination.tcpdumpDescription): "
            + header.description(
                payloadLength: segment.payloadLength, sequenceBase: sequenceBase,
                acknowledgmentBase: acknowledgmentBase)
    }

    /// The window `segment` advertises, in bytes: the field shifted by the scale its sender announced,
    /// once both SYNs have been seen with the option (RFC 7323 §2.2–2.3); the bare field otherwise.
    /// A SYN's window is never scaled.
    public func advertisedWindow(_ segment: CapturedSegment) -> Int {
        let field = Int(segment.header.window)
        guard !segment.header.flags.contains(.syn) else { return field }
        let forward = FourTuple(local: segment.source, remote: segment.destination)
        let (conversation, reversed): (Conversation?, Bool) =
            if let entry = conversations[forward] { (entry, false) }
            else { (conversations[forward.reversed], true) }
        guard let conversation,
              let mine = reversed ? conversation.reverseWindowScale : conversation.forwardWindowScale,
              conversation.forwardWindowScale != nil, conversation.reverseWindowScale != nil
        else { return field }
        return field << Int(min(mine, TCPOptions.maximumWindowScale))
    }

    /// Updates the memory for `segment` and returns the bases to print it with (zero: absolute).
    private mutating func observe(_ segment: CapturedSegment) -> (sequence: UInt32, acknowledgment: UInt32) {
        let header = segment.header
        let sequence = header.sequenceNumber.rawValue
        let acknowledgment = header.acknowledgmentNumber.rawValue
        let isSYN = header.flags.contains(.syn)
        let forward = FourTuple(local: segment.source, remote: segment.destination)
        let key: FourTuple
        let reversed: Bool
        if conversations[forward] != nil {
            (key, reversed) = (forward, false)
        } else if conversations[forward.reversed] != nil {
            (key, reversed) = (forward.reversed, true)
        } else {
            // First sight of this connection: tcpdump prints it absolute and takes its numbers as bases.
            var conversation = Conversation(forwardBase: sequence, reverseBase: acknowledgment &- 1)
            if isSYN { conversation.forwardWindowScale = header.options.windowScale }
            conversations[forward] = conversation
            return (0, 0)
        }
        var conversation = conversations[key]!
        defer { conversations[key] = conversation }
        if isSYN {
            // A SYN (re)starts the numbering for its direction, as in tcpdump; printed absolute.
            if reversed {
                conversation.reverseBase = sequence
                conversation.reverseWindowScale = header.options.windowScale
                if header.flags.contains(.ack) { conversation.forwardBase = acknowledgment &- 1 }
            } else {
                conversation.forwardBase = sequence
                conversation.forwardWindowScale = header.options.windowScale
                if header.flags.contains(.ack) { conversation.reverseBase = acknowledgment &- 1 }
            }
            return (0, 0)
        }
        return reversed
            ? (conversation.reverseBase, conversation.forwardBase)
            : (conversation.forwardBase, conversation.reverseBase)
    }

    private func timePrefix(_ time: Instant) -> String {
        switch timeStyle {
        case .seconds: TextFormat.seconds(time) + " "
        case .clock: TextFormat.clock(time) + " "
        case .none: ""
        }
    }
}
