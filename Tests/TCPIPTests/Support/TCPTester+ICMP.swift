import NIOCore
import TCPIP
import TCPIPWire

/// ICMP errors about the tester's connection, as the IP layer hands them to TCP.
extension TCPTester {
    /// An ICMP error quoting our segment with relative sequence number `sequence` (from our ISS),
    /// delivered at the current time.
    func icmp(_ kind: TCPICMPError.Kind, quoting sequence: UInt32, quotedLength: Int? = nil) {
        stack.icmpErrorArrived(report(kind, quoting: sequence, quotedLength: quotedLength), now: now)
    }

    func report(_ kind: TCPICMPError.Kind, quoting sequence: UInt32, quotedLength: Int? = nil) -> TCPICMPError {
        TCPICMPError(
            kind: kind, local: Endpoint(localAddress, localPort), remote: Endpoint(remoteAddress, Self.remotePort),
            sequenceNumber: (iss ?? SequenceNumber(0)) + sequence, quotedLength: quotedLength,
            reporter: peer.ipv6 ? IPAddress("2001:db8::ff")! : .v4(IPv4Address(198, 18, 0, 254)))
    }
}

extension TCPTester {
    /// What a router quotes of our segment with relative sequence number `sequence`: its IPv4 header
    /// and the first 8 octets of TCP (RFC 792), rebuilt as the stack sent it.
    func lastDatagramQuote(sequence: UInt32) -> ByteBuffer? {
        guard case .v4(let source) = localAddress, case .v4(let destination) = remoteAddress, let iss else { return nil }
        let header = IPv4Header(
            source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp, payloadLength: 8)
        var quote = ByteBufferAllocator().buffer(capacity: 28)
        quote.writeBytes([UInt8](repeating: 0, count: 20))
        quote.moveReaderIndex(forwardBy: 20)
        quote.writeInteger(localPort)
        quote.writeInteger(Self.remotePort)
        quote.writeInteger((iss + sequence).rawValue)
        header.prepend(to: &quote)
        // The original's total length (a full-sized segment), as a router quotes it.
        quote.setInteger(UInt16(1500), at: quote.readerIndex + 2)
        return quote
    }
}
