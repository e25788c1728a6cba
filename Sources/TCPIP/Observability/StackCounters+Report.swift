/// The stack's counters as `netstat -s` prints them: a section per protocol, one counter per line,
/// the number first and then what it counts.
///
///     Ip:
///         1043 total packets received
///     Tcp:
///         1 active connection openings
///         0 segments retransmitted
///     TcpExt:
///         718 zero-window probes sent
extension StackCounters {
    /// The report's lines. With `includeZero` false, counters still at zero are left out (and a
    /// section with nothing left is left out whole), which is what a person usually wants to see.
    public func report(includeZero: Bool = false, indent: Int = 4) -> [String] {
        let margin = String(repeating: " ", count: indent)
        var lines: [String] = []
        for section in Self.reportSections {
            let entries = section.entries.filter { includeZero || self[keyPath: $0.counter] != 0 }
            guard !entries.isEmpty else { continue }
            lines.append(section.title + ":")
            for entry in entries {
                if section.nameFirst {
                    lines.append("\(margin)\(entry.phrase): \(self[keyPath: entry.counter])")
                } else {
                    lines.append("\(margin)\(self[keyPath: entry.counter]) \(entry.phrase)")
                }
            }
        }
        return lines
    }

    private struct ReportSection {
        var title: String
        var entries: [(counter: KeyPath<StackCounters, UInt64>, phrase: String)]
        /// `InType8: 5`, as netstat prints the IcmpMsg section, instead of `5 phrase`.
        var nameFirst = false
    }

    private static var reportSections: [ReportSection] {
        [
            ReportSection(title: "Ip", entries: [
                (\.ipPacketsReceived, "total packets received"),
                (\.ipPacketsSent, "requests sent out"),
                (\.ipMalformed, "malformed packets dropped"),
                (\.ipBadChecksum, "with bad header checksum"),
                (\.ipFragmentsDropped, "fragments dropped"),
                (\.ipNotForUs, "not addressed to us"),
                (\.ipUnknownProtocol, "with unknown protocol"),
                (\.ipOutputTooBig, "outgoing packets dropped: larger than the MTU, not fragmentable"),
                (\.ipReassemblyTimeouts, "fragments dropped after timeout"),
                (\.ipReassemblyRequired, "reassemblies required"),
                (\.ipReassembled, "packets reassembled ok"),
                (\.ipReassemblyFailures, "packet reassemblies failed"),
                (\.ipFragmentOverlaps, "reassemblies abandoned: overlapping fragments (RFC 5722)"),
                (\.ipReassemblyEvictions, "reassemblies evicted: memory limit"),
                (\.ipFragmentDuplicates, "duplicate fragments dropped"),
                (\.ipAtomicFragments, "atomic fragments received (RFC 6946)"),
                (\.ipFragmentedDatagrams, "fragments received ok"),
                (\.ipFragmentationFailures, "fragments failed"),
                (\.ipFragmentsCreated, "fragments created"),
            ]),
            ReportSection(title: "Netfilter", entries: [
                (\.filterDropped, "packets dropped by rules"),
                (\.filterRejected, "packets rejected by rules"),
                (\.filterImpairLost, "packets lost by impair rules"),
                (\.filterImpairDelayed, "packets delayed by impair rules"),
                (\.filterImpairDuplicated, "packets duplicated by impair rules"),
                (\.filterImpairCorrupted, "packets corrupted by impair rules"),
                (\.filterHeldOverflows, "packets dropped: held-packet queue full"),
            ]),
            ReportSection(title: "Icmp", entries: [
                (\.icmpInMessages, "ICMP messages received"),
                (\.icmpInErrors, "input ICMP message failed"),
                (\.icmpInChecksumErrors, "ICMP messages with bad checksum"),
                (\.icmpInDestinationUnreachables, "destination unreachable received"),
                (\.icmpInTimeExceeded, "time exceeded received"),
                (\.icmpInParameterProblems, "parameter problems received"),
                (\.icmpInEchos, "echo requests received"),
                (\.icmpInEchoReplies, "echo replies received"),
                (\.icmpOutMessages, "ICMP messages sent"),
                (\.icmpOutDestinationUnreachables, "destination unreachable sent"),
                (\.icmpOutTimeExceeded, "time exceeded sent"),
                (\.icmpOutEchoReplies, "echo replies sent"),
                (\.icmpOutRateLimited, "ICMP errors not sent: rate limit (RFC 1812 §4.3.2.8)"),
                (\.icmpOutSuppressed, "ICMP errors not sent: forbidden (RFC 1122 §3.2.2, RFC 4443 §2.4(e))"),
            ]),
            ReportSection(title: "IcmpMsg", entries: [
                (\.icmpInEchoReplies, "InType0"),
                (\.icmpInDestinationUnreachables, "InType3"),
                (\.icmpInEchos, "InType8"),
                (\.icmpInTimeExceeded, "InType11"),
                (\.icmpInParameterProblems, "InType12"),
                (\.icmpOutEchoReplies, "OutType0"),
                (\.icmpOutDestinationUnreachables, "OutType3"),
                (\.icmpOutTimeExceeded, "OutType11"),
            ], nameFirst: true),
            ReportSection(title: "Icmp6", entries: [
                (\.icmp6InMessages, "ICMPv6 messages received"),
                (\.icmp6InErrors, "input ICMPv6 message failed"),
                (\.icmp6InChecksumErrors, "ICMPv6 messages with bad checksum"),
                (\.icmp6InDestinationUnreachables, "destination unreachable received"),
                (\.icmp6InPacketTooBigs, "packet too big received"),
                (\.icmp6InTimeExceeded, "time exceeded received"),
                (\.icmp6InParameterProblems, "parameter problems received"),
                (\.icmp6InEchos, "echo requests received"),
                (\.icmp6InEchoReplies, "echo replies received"),
                (\.icmp6OutMessages, "ICMPv6 messages sent"),
                (\.icmp6OutDestinationUnreachables, "destination unreachable sent"),
                (\.icmp6OutParameterProblems, "parameter problems sent"),
                (\.icmp6OutTimeExceeded, "time exceeded sent"),
                (\.icmp6OutEchoReplies, "echo replies sent"),
            ]),
            ReportSection(title: "Udp", entries: [
                (\.udpInDatagrams, "packets received"),
                (\.udpNoPorts, "packets to unknown port received"),
                (\.udpInErrors, "packet receive errors"),
                (\.udpOutDatagrams, "packets sent"),
                (\.udpReceiveBufferErrors, "receive buffer errors"),
                (\.udpMemoryErrors, "receive memory errors: memory budget"),
                (\.udpInChecksumErrors, "checksum errors"),
            ]),
            ReportSection(title: "Intercept", entries: [
                (\.interceptRequests, "connection requests intercepted"),
                (\.interceptSYNsAbsorbed, "retransmitted SYNs absorbed while pending"),
                (\.interceptAccepted, "requests accepted"),
                (\.interceptRefusedReset, "requests refused with RST"),
                (\.interceptRefusedUnreachable, "requests refused with ICMP unreachable"),
                (\.interceptRefusedSilence, "requests refused silently"),
                (\.interceptPendingFull, "SYNs refused: too many requests pending"),
                (\.interceptConnectionsFull, "SYNs refused: connection table full"),
                (\.interceptDeadlineExpired, "requests refused with RST: unanswered by the deadline"),
                (\.udpFlowsCreated, "UDP flows created"),
                (\.udpFlowsExpired, "UDP flows expired idle"),
                (\.udpFlowTableFull, "UDP datagrams dropped: flow table full"),
                (\.icmpEchoDelivered, "echo requests delivered to the application"),
                (\.icmpEchoDropped, "echo requests dropped"),
            ]),
            ReportSection(title: "Tcp", entries: [
                (\.activeOpens, "active connection openings"),
                (\.passiveOpens, "passive connection openings"),
                (\.failedConnectionAttempts, "failed connection attempts"),
                (\.establishedResets, "connection resets received in established states"),
                (\.segmentsReceived, "segments received"),
                (\.segmentsSent, "segments sent out"),
                (\.segmentsRetransmitted, "segments retransmitted"),
                (\.badSegments, "bad segments received"),
                (\.badChecksums, "segments with bad checksum"),
                (\.resetsReceived, "resets received"),
                (\.resetsSent, "resets sent"),
            ]),
            ReportSection(title: "TcpExt", entries: [
                (\.synsReceived, "SYNs received"),
                (\.listenOverflows, "times the listen queue of a socket overflowed"),
                (\.synQueueDrops, "SYNs to LISTEN sockets dropped (SYN queue full)"),
                (\.retransmissionTimeouts, "retransmission timeouts"),
                (\.fastRetransmits, "fast retransmits"),
                (\.connectionsTimedOut, "connections aborted due to timeout"),
                (\.zeroWindowProbesSent, "zero-window probes sent"),
                (\.zeroWindowAdvertisements, "zero windows advertised"),
                (\.sillyWindowOverrides, "small windows filled after the SWS override timeout"),
                (\.ecnConnections, "connections that negotiated ECN (RFC 3168)"),
                (\.congestionExperiencedReceived, "data segments received with CE marked"),
                (\.ecnEchoesReceived, "ACKs received with ECE"),
                (\.ecnWindowReductions, "congestion windows reduced for ECE"),
                (\.congestionWindowReducedSent, "segments sent with CWR"),
                (\.windowUpdatesSent, "window updates sent"),
                (\.delayedAcksSent, "delayed acks sent"),
                (\.resetsOnCloseWithUnreadData, "resets sent: closed with unread data (RFC 1122 §4.2.2.13)"),
                (\.keepaliveProbesSent, "keep-alive probes sent"),
                (\.keepaliveTimeouts, "connections aborted after unanswered keep-alives"),
                (\.duplicateAcksReceived, "duplicate acks received"),
                (\.outOfOrderSegments, "segments received out of order"),
                (\.duplicateSegments, "duplicate segments received"),
                (\.challengeAcksSent, "challenge ACKs sent (RFC 5961)"),
                (\.challengeAcksSuppressed, "challenge ACKs not sent: rate limit (RFC 5961 §7)"),
                (\.invalidAckRepliesSuppressed, "ACKs to invalid ACKs not sent: rate limit (RFC 5961 §7)"),
                (\.synCookiesSent, "SYN cookies sent"),
                (\.synCookiesValidated, "SYN cookies received and valid"),
                (\.synCookiesFailed, "invalid SYN cookies received"),
                (\.pawsRejected, "segments rejected by PAWS (RFC 7323)"),
                (\.sackBlocksReceived, "SACK blocks received (RFC 2018)"),
                (\.dsackBlocksReceived, "D-SACK blocks received (RFC 2883)"),
                (\.sackBlocksInvalid, "SACK blocks ignored: outside the data in flight"),
                (\.dsackBlocksSent, "D-SACK blocks sent (RFC 2883)"),
                (\.tailLossProbes, "tail loss probes sent (RFC 8985)"),
                (\.spuriousRetransmissionsUndone, "spurious retransmissions undone (RFC 3522, RFC 2883)"),
                (\.memoryBudgetRefusals, "connections refused: memory budget"),
                (\.memoryBudgetOutOfOrderPrunes, "out-of-order queues pruned: memory budget"),
                (\.droppedMemoryBudget, "segments whose data was dropped: memory budget"),
                (\.receiveBufferGrowths, "receive buffers grown (autotuning)"),
                (\.receiveBufferShrinks, "receive buffers shrunk: memory pressure"),
                (\.sendBufferGrowths, "send buffers grown (autotuning)"),
                (\.sendBufferShrinks, "send buffers shrunk: memory pressure"),
                (\.idleBufferReclaims, "idle connections that gave their grown buffers back"),
                (\.timeWaitOverflows, "connections closed without TIME-WAIT: record limit"),
                (\.timeWaitRecycledByTimestamp, "TIME-WAIT sockets recycled by time stamp (RFC 6191)"),
                (\.timeWaitRecycledBySequence, "TIME-WAIT sockets recycled by sequence number (RFC 1122 §4.2.2.13)"),
                (\.timeWaitSYNsRejected, "SYNs to TIME-WAIT sockets rejected: possible old duplicates"),
                (\.timeWaitReusedByConnect, "TIME-WAIT sockets reused by connect (tcp_tw_reuse)"),
                (\.icmpErrorsReceived, "ICMP errors about TCP segments received"),
                (\.icmpErrorsOutOfWindow, "ICMP errors ignored: quoted sequence outside the window (RFC 5927)"),
                (\.icmpErrorsNoConnection, "ICMP errors ignored: no such connection"),
                (\.pathMTUReductions, "path MTU reductions (RFC 1191, RFC 8201)"),
                (\.pathMTUIncreases, "path MTU estimates aged out: MSS raised again (RFC 1191 §6.3)"),
                (\.icmpHardErrorAborts, "connections aborted by a hard ICMP error (RFC 5461)"),
                (\.icmpSoftErrors, "soft ICMP errors noted (RFC 1122 §4.2.3.9)"),
                (\.mtuBlackHolesDetected, "PMTU black holes suspected (RFC 4821)"),
                (\.mtuProbesSent, "MTU probes sent"),
                (\.mtuProbesSucceeded, "MTU probes acknowledged"),
                (\.mtuProbesFailed, "MTU probes lost"),
                (\.droppedOutOfWindow, "segments dropped: outside the window"),
                (\.droppedUnacceptableAck, "segments dropped: unacceptable ACK"),
                (\.droppedNoAckFlag, "segments dropped: no ACK flag"),
                (\.droppedReassemblyLimit, "segments dropped: out-of-order queue full"),
                (\.droppedInClosedState, "segments dropped: connection closed"),
                (\.droppedResetOutOfWindow, "resets dropped: outside the window"),
            ]),
        ]
    }
}
