import NIOCore
import TCPIPWire

/// The connection point between ICMP input and TCP: an ICMP or ICMPv6 error to one of our addresses
/// that quotes a TCP segment we sent becomes an `TCPICMPError` for `icmpErrorArrived`.
///
/// Kept minimal on purpose: the IP layer's protocol table (echo, UDP, rate-limited errors of our
/// own) is another piece of work, which will call `tcpErrorReport(for:)` from its ICMP dispatch.
extension Stack {
    /// An ICMP (`IPProtocolNumber.icmp`) or ICMPv6 datagram addressed to us. Malformed ones are
    /// dropped and counted; anything that is not an error about TCP is left alone.
    func icmpArrives(_ ip: consuming IPDatagram, verifyChecksum: Bool, now: Instant) {
        let (source, destination, protocolNumber) = (ip.source, ip.destination, ip.upperLayerProtocol)
        let payload = (consume ip).takePayload()
        let report: TCPICMPError?
        do {
            switch (source, destination, protocolNumber) {
            case (.v4, .v4, IPProtocolNumber.icmp):
                report = Self.tcpErrorReport(for: try ICMPv4Packet.parse(payload, verifyChecksum: verifyChecksum), from: source)
            case (.v6(let source6), .v6(let destination6), IPProtocolNumber.icmpv6):
                report = Self.tcpErrorReport(
                    for: try ICMPv6Packet.parse(payload, source: source6, destination: destination6, verifyChecksum: verifyChecksum),
                    from: source)
            default:
                io.counters.ipUnknownProtocol &+= 1
                return
            }
        } catch {
            io.counters.ipMalformed &+= 1
            return
        }
        guard let report, isLocal(report.local.address) else { return }
        icmpErrorArrived(report, now: now)
    }

    /// What an ICMP error means to TCP (`TCPICMPError.ipv4Kind`), if it quotes the first octets of
    /// a TCP segment; nil for anything else (echo, UDP quotes, non-first fragments).
    public static func tcpErrorReport(for packet: ICMPv4Packet, from reporter: IPAddress) -> TCPICMPError? {
        let mtu: UInt16 = if case .destinationUnreachable(_, let nextHop) = packet.message { nextHop } else { 0 }
        guard let quoted = packet.quoted,
              let kind = TCPICMPError.ipv4Kind(type: packet.message.type, code: packet.message.code, nextHopMTU: mtu)
        else { return nil }
        return report(kind, quoting: quoted, from: reporter)
    }

    /// What an ICMPv6 error means to TCP (`TCPICMPError.ipv6Kind`), if it quotes a TCP segment.
    public static func tcpErrorReport(for packet: ICMPv6Packet, from reporter: IPAddress) -> TCPICMPError? {
        let mtu: UInt32 = if case .packetTooBig(let mtu) = packet.message { mtu } else { 0 }
        guard let quoted = packet.quoted,
              let kind = TCPICMPError.ipv6Kind(type: packet.message.type, code: packet.message.code, mtu: mtu)
        else { return nil }
        return report(kind, quoting: quoted, from: reporter)
    }

    private static func report(_ kind: TCPICMPError.Kind, quoting quoted: ICMPQuotedDatagram, from reporter: IPAddress)
        -> TCPICMPError?
    {
        guard quoted.upperLayerProtocol == IPProtocolNumber.tcp, !quoted.isNonFirstFragment,
              let sourcePort = quoted.sourcePort, let destinationPort = quoted.destinationPort,
              let sequence = quoted.tcpSequenceNumber
        else { return nil }
        let length: Int? = switch quoted.header {
        case .v4(let header): Int(header.totalLength)
        case .v6(let header): Int(header.payloadLength) + 40
        }
        return TCPICMPError(
            kind: kind, local: Endpoint(quoted.source, sourcePort), remote: Endpoint(quoted.destination, destinationPort),
            sequenceNumber: sequence, quotedLength: length, reporter: reporter)
    }
}
