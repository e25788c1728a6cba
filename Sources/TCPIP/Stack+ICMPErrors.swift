import NIOCore
import TCPIPWire

/// ICMP errors into TCP (RFC 5927, RFC 1122 §4.2.3.9, RFC 5461) and path MTU discovery (RFC 1191,
/// RFC 8201): what the stack does with an error once the IP layer has parsed it.
extension Stack {
    /// An ICMP or ICMPv6 error that quotes a TCP segment (`TCPICMPError`).
    ///
    /// RFC 5927 §4.1: nothing changes unless the quoted 4-tuple names a connection and the quoted
    /// sequence number is one we sent and is unacknowledged; a blind attacker guessing at either is
    /// counted (`icmpErrorsOutOfWindow`, `icmpErrorsNoConnection`) and ignored. A valid error then:
    /// lowers the path MTU and the connection's MSS at once, resending what no longer fits
    /// (fragmentation needed, packet too big); aborts a connection still opening (hard errors,
    /// RFC 5461 §4); or is noted as the connection's soft error (RFC 1122 §4.2.3.9).
    public func icmpErrorArrived(_ report: TCPICMPError, now: Instant) {
        io.counters.icmpErrorsReceived &+= 1
        let tuple = FourTuple(local: report.local, remote: report.remote)
        if let handle = connectionHandle(for: tuple) {
            let accepted = withConnection(handle) { connection -> Bool in
                guard connection.acceptsICMPError(quoting: report.sequenceNumber) else {
                    io.counters.icmpErrorsOutOfWindow &+= 1
                    io.decision(
                        "RFC 5927 §4.1", "ICMP error quoting seq \(report.sequenceNumber) outside SND.UNA..SND.NXT: ignored",
                        connection: tuple, now: now)
                    return false
                }
                return true
            }
            guard accepted == true else { return }
            switch report.kind {
            case .fragmentationNeeded, .packetTooBig:
                guard let mtu = pathMTU(from: report, current: currentPathMTU(of: handle)) else { return }
                let rule: StaticString = report.remote.address.isIPv6 ? "RFC 8201 §4" : "RFC 1191 §6.1"
                _ = pathMTUCache.lower(report.remote.address, to: mtu, now: now)
                withConnection(handle) { _ = $0.pathMTUDecreased(to: mtu, rule: rule, now: now, io: &io) }
            case .hard(let error):
                withConnection(handle) { $0.reachabilityErrorArrives(error, hard: true, now: now, io: &io) }
            case .soft(let error):
                withConnection(handle) { $0.reachabilityErrorArrives(error, hard: false, now: now, io: &io) }
            }
            connectionActivity(handle, now: now)
        } else if let handle = halfOpenTable[tuple] {
            halfOpenICMPError(handle, report, now: now)
        } else {
            io.counters.icmpErrorsNoConnection &+= 1
            io.decision("RFC 5927 §4.1", "ICMP error for no connection: ignored", connection: tuple, now: now)
        }
    }

    /// The path MTU to `destination` the stack has learnt, if smaller than the link's and not aged out
    /// (RFC 1191 §6.3).
    public func pathMTU(to destination: IPAddress, now: Instant) -> Int? {
        pathMTUCache.mtu(to: destination, now: now)
    }

    /// Destinations with a path MTU remembered (aged-out entries included until next asked about).
    public var pathMTUCacheCount: Int { pathMTUCache.count }

    /// RFC 1191 §6.3: estimates not lowered for `PathMTUConfiguration.ageing` are forgotten, "and
    /// the packetization layers should be notified of the change": every connection to such a
    /// destination that a lowered path MTU holds below its handshake's MSS gets that MSS back
    /// (RFC 8201 §5.3 likewise for IPv6), and full-sized segments find out again whether the path
    /// still needs less. O(connections), once per expiry.
    func expirePathMTUs(now: Instant) {
        let destinations = pathMTUCache.expire(now: now)
        guard !destinations.isEmpty else { return }
        var cursor = connections.handle(after: nil)
        while let handle = cursor {
            cursor = connections.handle(after: handle)
            _ = withConnection(handle) { connection in
                guard connection.path.mtu > 0, destinations.contains(connection.tuple.remote.address) else { return }
                connection.pathMTUExpired(now: now, io: &io)
            }
        }
    }

    /// An error about our SYN-ACK of a half-open entry: the quoted sequence number must be its ISS
    /// (RFC 5927 §4.1). A hard error drops the entry (Linux's `tcp_req_err`); a smaller MTU is
    /// remembered for the connection it may become; soft errors change nothing.
    private func halfOpenICMPError(_ handle: SlabHandle, _ report: TCPICMPError, now: Instant) {
        guard let entry = halfOpen.withElement(handle, { $0 }) else { return }
        let tuple = entry.tuple
        guard report.sequenceNumber == entry.iss else {
            io.counters.icmpErrorsOutOfWindow &+= 1
            io.decision("RFC 5927 §4.1", "ICMP error quoting seq \(report.sequenceNumber), not our SYN-ACK's: ignored",
                        connection: tuple, now: now)
            return
        }
        switch report.kind {
        case .fragmentationNeeded, .packetTooBig:
            let linkMTU = announcedMSS(for: tuple.local.address) + tuple.remote.address.ipHeaderLength + 20
            guard let mtu = pathMTU(from: report, current: linkMTU) else { return }
            _ = pathMTUCache.lower(report.remote.address, to: mtu, now: now)
            io.decision(report.remote.address.isIPv6 ? "RFC 8201 §4" : "RFC 1191 §6.1",
                        "PMTU lowered to \(mtu)", connection: tuple, now: now)
        case .hard(let error):
            io.counters.icmpHardErrorAborts &+= 1
            io.decision("RFC 5461 §4", "hard ICMP error (\(error)) in SYN-RECEIVED: half-open entry dropped",
                        connection: tuple, now: now)
            removeHalfOpen(handle)
        case .soft:
            io.counters.icmpSoftErrors &+= 1
        }
    }

    /// The path MTU a connection's segments are cut for now.
    private func currentPathMTU(of handle: SlabHandle) -> Int {
        withConnection(handle) { $0.mtu(forSegmentSize: $0.maximumSegmentSize) } ?? configuration.mtu
    }

    /// The new path MTU a too-big error asks for, or nil if it asks for nothing smaller than `current`.
    ///
    /// - RFC 1191 §5: a router that reports no next-hop MTU (0, the RFC 792 form) gets "the next lower
    ///   plateau" below the quoted datagram's length (§7 table 7-1); so does one that reports an MTU
    ///   not below that length, which cannot be the reason the datagram was too big.
    /// - RFC 1191 §3 / RFC 8201 §4: never below the family's minimum (`PathMTUConfiguration`).
    /// - RFC 1191 §6.1: "MUST NOT increase its estimate" from such a message.
    func pathMTU(from report: TCPICMPError, current: Int) -> Int? {
        let family = report.remote.address
        var mtu: Int
        switch report.kind {
        case .fragmentationNeeded(let nextHop):
            mtu = nextHop
            if mtu < 68 {
                mtu = PathMTUCache.plateau(below: min(report.quotedLength ?? current, current))
            } else if let quoted = report.quotedLength, mtu >= quoted {
                mtu = PathMTUCache.plateau(below: quoted)
            }
        case .packetTooBig(let reported):
            mtu = reported
        case .hard, .soft:
            return nil
        }
        mtu = max(mtu, family.minimumPathMTU(configuration.tcp.pathMTU))
        guard mtu < current else { return nil }
        return mtu
    }
}

extension IPAddress {
    var isIPv6: Bool {
        if case .v6 = self { true } else { false }
    }
}

extension Stack {
    /// The IP layer's ICMP dispatch (`icmpErrorArrives`, Stack+ICMP.swift) hands over an error whose
    /// quote is of a TCP segment from one of our addresses: it becomes a `TCPICMPError`.
    ///
    /// RFC 1122 §4.2.3.9 and RFC 5461 §4: port and protocol unreachable are hard; the other
    /// unreachables, time exceeded and parameter problem are soft; RFC 1191 / RFC 8201 for too big.
    func tcpErrorArrives(_ error: ICMPErrorReport, quoted: ICMPQuotedDatagram, now: Instant) {
        guard !quoted.isNonFirstFragment, let sourcePort = quoted.sourcePort, let destinationPort = quoted.destinationPort,
              let sequence = quoted.tcpSequenceNumber
        else { return }
        let kind: TCPICMPError.Kind = switch error {
        case .portUnreachable: .hard(.connectionRefused)
        case .protocolUnreachable: .hard(.protocolUnreachable)
        case .packetTooBig(let mtu): quoted.source.isIPv6 ? .packetTooBig(mtu: mtu) : .fragmentationNeeded(nextHopMTU: mtu)
        case .unreachable, .timeExceeded, .parameterProblem: .soft(.hostUnreachable)
        }
        let length = switch quoted.header {
        case .v4(let header): Int(header.totalLength)
        case .v6(let header): Int(header.payloadLength) + 40
        }
        icmpErrorArrived(
            TCPICMPError(
                kind: kind, local: Endpoint(quoted.source, sourcePort), remote: Endpoint(quoted.destination, destinationPort),
                sequenceNumber: sequence, quotedLength: length),
            now: now)
    }
}
