import TCPIP
import TCPIPWire

/// ICMP errors about the tester's connection, as the IP layer hands them to TCP.
extension TCPTester {
    /// An ICMP error quoting our segment with relative sequence number `sequence` (from our ISS),
    /// delivered at the current time.
    func icmp(_ kind: ICMPErrorReport.Kind, quoting sequence: UInt32, quotedLength: Int? = nil) {
        stack.icmpErrorArrived(report(kind, quoting: sequence, quotedLength: quotedLength), now: now)
    }

    func report(_ kind: ICMPErrorReport.Kind, quoting sequence: UInt32, quotedLength: Int? = nil) -> ICMPErrorReport {
        ICMPErrorReport(
            kind: kind, local: Endpoint(localAddress, localPort), remote: Endpoint(remoteAddress, Self.remotePort),
            sequenceNumber: (iss ?? SequenceNumber(0)) + sequence, quotedLength: quotedLength,
            reporter: peer.ipv6 ? IPAddress("2001:db8::ff")! : .v4(IPv4Address(198, 18, 0, 254)))
    }
}
