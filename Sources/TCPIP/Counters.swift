/// What `netstat -s` shows: the stack's running totals. Every dropped packet lands in one counter.
public struct StackCounters: Hashable, Sendable {
    // IP
    /// IP datagrams received from the link, before any check.
    public var ipPacketsReceived: UInt64 = 0
    /// IP datagrams sent to the link (each fragment counts).
    public var ipPacketsSent: UInt64 = 0
    /// Datagrams dropped as malformed: truncated, a bad version, header length or total length.
    public var ipMalformed: UInt64 = 0
    /// IPv4 datagrams dropped for a bad header checksum.
    public var ipBadChecksum: UInt64 = 0
    /// Fragments dropped without reassembly (reassembly off, or one that could not be held).
    public var ipFragmentsDropped: UInt64 = 0
    /// Datagrams dropped because no address of the stack is their destination.
    public var ipNotForUs: UInt64 = 0
    /// Datagrams for a protocol the stack does not speak (answered with protocol unreachable where allowed).
    public var ipUnknownProtocol: UInt64 = 0
    /// Datagrams UDP or ICMP built that were larger than the MTU and could not be fragmented.
    public var ipOutputTooBig: UInt64 = 0
    /// Fragment reassembly, as netstat's Ip section: fragments received (ReasmReqds), datagrams
    /// reassembled (ReasmOKs), reassemblies abandoned for any reason (ReasmFails), of which those that
    /// timed out (ReasmTimeout), met an overlap (ReasmOverlaps), or were evicted for memory.
    public var ipReassemblyRequired: UInt64 = 0
    /// Datagrams reassembled (ReasmOKs).
    public var ipReassembled: UInt64 = 0
    /// Reassemblies abandoned, for any reason (ReasmFails).
    public var ipReassemblyFailures: UInt64 = 0
    /// Reassemblies abandoned because their time ran out (ReasmTimeout).
    public var ipReassemblyTimeouts: UInt64 = 0
    /// Reassemblies abandoned because fragments overlapped (ReasmOverlaps; RFC 5722).
    public var ipFragmentOverlaps: UInt64 = 0
    /// Reassemblies abandoned to make room within the reassembly memory limit.
    public var ipReassemblyEvictions: UInt64 = 0
    /// Exact duplicates of fragments already held, dropped alone (RFC 8200 §4.5).
    public var ipFragmentDuplicates: UInt64 = 0
    /// IPv6 atomic fragments, processed as whole datagrams (RFC 6946).
    public var ipAtomicFragments: UInt64 = 0
    /// Fragmentation on output: datagrams fragmented (FragOKs), fragments made (FragCreates),
    /// datagrams that could not be (FragFails).
    public var ipFragmentedDatagrams: UInt64 = 0
    /// Fragments made on output (FragCreates).
    public var ipFragmentsCreated: UInt64 = 0
    /// Datagrams that needed fragmenting and could not be (FragFails).
    public var ipFragmentationFailures: UInt64 = 0

    // Netfilter (Stack+Filter.swift): what the installed rules did, at every hook.
    /// Datagrams a rule or a chain's policy dropped (the connection table full included).
    public var filterDropped: UInt64 = 0
    /// Datagrams a `reject` rule dropped and answered (RST or ICMP unreachable).
    public var filterRejected: UInt64 = 0
    /// Datagrams an `impair` rule lost (its loss, or its rate queue's tail drop).
    public var filterImpairLost: UInt64 = 0
    /// Datagrams an `impair` rule held back (delay, jitter, rate), duplicated or corrupted.
    public var filterImpairDelayed: UInt64 = 0
    /// Datagrams an `impair` rule duplicated.
    public var filterImpairDuplicated: UInt64 = 0
    /// Datagrams an `impair` rule corrupted.
    public var filterImpairCorrupted: UInt64 = 0
    /// Datagrams dropped because the queue of held datagrams was full (`Stack.filterHeldLimit`).
    public var filterHeldOverflows: UInt64 = 0

    // ICMP (RFC 792) and ICMPv6 (RFC 4443), as Linux's Icmp and Icmp6 sections count them. The
    // In/Out per-type counts are the IcmpMsg section.
    /// ICMP messages received, malformed ones included (InMsgs).
    public var icmpInMessages: UInt64 = 0
    /// Messages dropped as malformed: bad checksum, truncated, or an error that quotes too little.
    public var icmpInErrors: UInt64 = 0
    /// ICMP messages dropped for a bad checksum (InCsumErrors).
    public var icmpInChecksumErrors: UInt64 = 0
    /// Destination unreachable messages received.
    public var icmpInDestinationUnreachables: UInt64 = 0
    /// Time exceeded messages received.
    public var icmpInTimeExceeded: UInt64 = 0
    /// Parameter problem messages received.
    public var icmpInParameterProblems: UInt64 = 0
    /// Echo requests received.
    public var icmpInEchos: UInt64 = 0
    /// Echo replies received.
    public var icmpInEchoReplies: UInt64 = 0
    /// ICMP messages sent (OutMsgs).
    public var icmpOutMessages: UInt64 = 0
    /// Destination unreachable messages sent (port or protocol unreachable, fragmentation needed, a rule's reject).
    public var icmpOutDestinationUnreachables: UInt64 = 0
    /// Time exceeded sent: fragment reassembly timed out after the first fragment (RFC 1122 §3.3.2).
    public var icmpOutTimeExceeded: UInt64 = 0
    /// Echo replies sent.
    public var icmpOutEchoReplies: UInt64 = 0
    /// Errors not sent because the token bucket was empty (RFC 4443 §2.4(f); Linux's IcmpOutRateLimitGlobal).
    public var icmpOutRateLimited: UInt64 = 0
    /// Errors not sent because RFC 1122 §3.2.2 / RFC 4443 §2.4(e) forbid one: in answer to an ICMP
    /// error, a non-first fragment, or a datagram from or to no single host.
    public var icmpOutSuppressed: UInt64 = 0
    /// ICMPv6 messages received, malformed ones included.
    public var icmp6InMessages: UInt64 = 0
    /// ICMPv6 messages dropped as malformed: bad checksum, truncated, or an error that quotes too little.
    public var icmp6InErrors: UInt64 = 0
    /// ICMPv6 messages dropped for a bad checksum.
    public var icmp6InChecksumErrors: UInt64 = 0
    /// Destination unreachable messages received.
    public var icmp6InDestinationUnreachables: UInt64 = 0
    /// Packet too big messages received (RFC 8201).
    public var icmp6InPacketTooBigs: UInt64 = 0
    /// Time exceeded messages received.
    public var icmp6InTimeExceeded: UInt64 = 0
    /// Parameter problem messages received.
    public var icmp6InParameterProblems: UInt64 = 0
    /// Echo requests received.
    public var icmp6InEchos: UInt64 = 0
    /// Echo replies received.
    public var icmp6InEchoReplies: UInt64 = 0
    /// ICMPv6 messages sent.
    public var icmp6OutMessages: UInt64 = 0
    /// Destination unreachable messages sent.
    public var icmp6OutDestinationUnreachables: UInt64 = 0
    /// Parameter problem messages sent (an unknown next header, RFC 8200 §4).
    public var icmp6OutParameterProblems: UInt64 = 0
    /// Time exceeded sent: fragment reassembly timed out after the first fragment (RFC 8200 §4.5).
    public var icmp6OutTimeExceeded: UInt64 = 0
    /// Echo replies sent.
    public var icmp6OutEchoReplies: UInt64 = 0

    // UDP (RFC 768), as Linux's Udp section.
    /// UDP datagrams delivered to an endpoint (InDatagrams).
    public var udpInDatagrams: UInt64 = 0
    /// Datagrams to a port nobody is bound to (answered with port unreachable, rate-limited).
    public var udpNoPorts: UInt64 = 0
    /// Datagrams dropped: malformed, bad checksum, or no room in the receive queue.
    public var udpInErrors: UInt64 = 0
    /// UDP datagrams dropped for a bad checksum (InCsumErrors).
    public var udpInChecksumErrors: UInt64 = 0
    /// Datagrams dropped because the endpoint's receive queue was full (`UDPConfiguration.receiveBufferSize`).
    public var udpReceiveBufferErrors: UInt64 = 0
    /// Datagrams dropped because the stack was at its memory budget (`StackConfiguration.memoryBudget`;
    /// Linux's UdpMemErrors, for `udp_mem`).
    public var udpMemoryErrors: UInt64 = 0
    /// UDP datagrams sent (OutDatagrams).
    public var udpOutDatagrams: UInt64 = 0

    // Intercept mode (`StackConfiguration.interception`): connection requests made, SYNs absorbed while
    // pending, requests accepted, refused each way, refused because the pending table or the
    // connection table was full, or because their deadline passed; UDP flows made, expired, and
    // datagrams dropped because the flow table was full; echo requests delivered or dropped.
    /// Connection requests made of the application: new SYNs to any address, held until it answers.
    public var interceptRequests: UInt64 = 0
    /// Retransmitted SYNs of a request still pending, absorbed without a new request.
    public var interceptSYNsAbsorbed: UInt64 = 0
    /// Requests the application accepted (answered SYN-ACK).
    public var interceptAccepted: UInt64 = 0
    /// Requests refused with RST.
    public var interceptRefusedReset: UInt64 = 0
    /// Requests refused with ICMP unreachable.
    public var interceptRefusedUnreachable: UInt64 = 0
    /// Requests refused with silence: the SYN dropped.
    public var interceptRefusedSilence: UInt64 = 0
    /// SYNs refused because the table of pending requests was full.
    public var interceptPendingFull: UInt64 = 0
    /// SYNs refused because `InterceptionConfiguration.maxConnections` connections were open.
    public var interceptConnectionsFull: UInt64 = 0
    /// Requests refused because the application did not answer before their deadline.
    public var interceptDeadlineExpired: UInt64 = 0
    /// UDP flows made for datagrams to any address.
    public var udpFlowsCreated: UInt64 = 0
    /// UDP flows closed after `InterceptionConfiguration.udpFlowTimeout` idle.
    public var udpFlowsExpired: UInt64 = 0
    /// Datagrams dropped because the UDP flow table was full.
    public var udpFlowTableFull: UInt64 = 0
    /// Echo requests to any address handed to the application.
    public var icmpEchoDelivered: UInt64 = 0
    /// Echo requests to any address dropped (`InterceptionConfiguration.icmpEcho`).
    public var icmpEchoDropped: UInt64 = 0

    // TCP, RFC 9293 and friends
    /// TCP segments received, bad ones included (InSegs).
    public var segmentsReceived: UInt64 = 0
    /// TCP segments sent, retransmissions included (OutSegs).
    public var segmentsSent: UInt64 = 0
    /// TCP segments retransmitted (RetransSegs).
    public var segmentsRetransmitted: UInt64 = 0
    /// Segments dropped as malformed: truncated, a bad data offset, SYN with FIN (InErrs).
    public var badSegments: UInt64 = 0
    /// Segments dropped for a bad checksum (InCsumErrors).
    public var badChecksums: UInt64 = 0
    /// RSTs received and accepted.
    public var resetsReceived: UInt64 = 0
    /// RSTs sent (OutRsts).
    public var resetsSent: UInt64 = 0
    /// Connections opened by us: CLOSED to SYN-SENT (ActiveOpens).
    public var activeOpens: UInt64 = 0
    /// Connections opened by a peer: LISTEN to SYN-RECEIVED (PassiveOpens).
    public var passiveOpens: UInt64 = 0
    /// TCP Fast Open (RFC 7413), as Linux's TCPFastOpen* counters: connections opened by a SYN
    /// with a valid cookie (TCPFastOpenPassive), SYNs whose cookie was invalid (…PassiveFail),
    /// cookie requests answered (…CookieReqd), SYNs falling back because too many Fast Open
    /// connections were pending (§5.1; …ListenOverflow); as a client, SYNs sent with data
    /// (…Active), and SYN-ACKs that did not acknowledge it (…ActiveFail).
    public var fastOpenPassive: UInt64 = 0
    /// SYNs whose Fast Open cookie was invalid: their data waits for the handshake (TCPFastOpenPassiveFail).
    public var fastOpenPassiveFailures: UInt64 = 0
    /// Fast Open cookie requests answered with a cookie (TCPFastOpenCookieReqd).
    public var fastOpenCookieRequests: UInt64 = 0
    /// SYNs that fell back to a plain handshake because too many Fast Open connections were pending (RFC 7413 §5.1).
    public var fastOpenListenOverflows: UInt64 = 0
    /// SYNs we sent with data and a cookie (TCPFastOpenActive).
    public var fastOpenActive: UInt64 = 0
    /// Our Fast Open SYNs whose SYN-ACK did not acknowledge the data (TCPFastOpenActiveFail): it is sent again.
    public var fastOpenActiveFailures: UInt64 = 0
    /// Connections that failed before being established: SYN-SENT or SYN-RECEIVED to CLOSED (AttemptFails).
    public var failedConnectionAttempts: UInt64 = 0
    /// Connections reset from ESTABLISHED or CLOSE-WAIT (EstabResets).
    public var establishedResets: UInt64 = 0
    /// SYNs received on a listening port.
    public var synsReceived: UInt64 = 0
    /// SYNs dropped because a listener's backlog was full (ListenOverflows).
    public var listenOverflows: UInt64 = 0
    /// SYNs dropped because the queue of half-open connections was full and SYN cookies were off.
    public var synQueueDrops: UInt64 = 0
    /// Retransmission timer expiries (RFC 6298).
    public var retransmissionTimeouts: UInt64 = 0
    /// Fast retransmits: a loss found from duplicate ACKs or SACK, without a timeout (RFC 5681 §3.2, RFC 6675).
    public var fastRetransmits: UInt64 = 0
    /// Connections aborted because retransmissions went unanswered (RFC 9293 §3.8.3's R2).
    public var connectionsTimedOut: UInt64 = 0
    /// Zero-window probes sent (RFC 9293 §3.8.6.1).
    public var zeroWindowProbesSent: UInt64 = 0
    /// Segments sent advertising a zero window.
    public var zeroWindowAdvertisements: UInt64 = 0
    /// Segments sent into a small window because the RFC 9293 §3.8.6.2.1 override timeout expired.
    public var sillyWindowOverrides: UInt64 = 0
    /// ECN (RFC 3168): connections that negotiated it, data segments received with CE marked (§6.1.3),
    /// ACKs received with ECE (§6.1.2), of which those that reduced cwnd, and segments sent with CWR.
    public var ecnConnections: UInt64 = 0
    /// Data segments received with CE marked (RFC 3168 §6.1.3).
    public var congestionExperiencedReceived: UInt64 = 0
    /// ACKs received with ECE (RFC 3168 §6.1.2).
    public var ecnEchoesReceived: UInt64 = 0
    /// Congestion window reductions for ECE, at most one per window.
    public var ecnWindowReductions: UInt64 = 0
    /// Segments sent with CWR.
    public var congestionWindowReducedSent: UInt64 = 0
    /// Segments sent only to open the window (RFC 9293 §3.8.6.2.2).
    public var windowUpdatesSent: UInt64 = 0
    /// ACKs sent when the delayed-ACK timer expired (RFC 9293 §3.8.6.3).
    public var delayedAcksSent: UInt64 = 0
    /// RSTs sent because the application closed with unread data, or data arrived after it had (RFC 1122 §4.2.2.13).
    public var resetsOnCloseWithUnreadData: UInt64 = 0
    /// Keep-alive probes sent (RFC 9293 §3.8.4).
    public var keepaliveProbesSent: UInt64 = 0
    /// Connections aborted because keep-alive probes went unanswered.
    public var keepaliveTimeouts: UInt64 = 0
    /// Duplicate ACKs received (RFC 5681 §2).
    public var duplicateAcksReceived: UInt64 = 0
    /// Segments received above RCV.NXT and queued for reassembly.
    public var outOfOrderSegments: UInt64 = 0
    /// Segments received whose data had all been received before.
    public var duplicateSegments: UInt64 = 0
    /// Challenge ACKs sent in answer to a RST or SYN within the window (RFC 5961 §3, §4).
    public var challengeAcksSent: UInt64 = 0
    /// Challenge ACKs not sent because of the RFC 5961 §7 rate limit.
    public var challengeAcksSuppressed: UInt64 = 0
    /// ACKs not sent in reply to bare ACKs that failed the sequence or ACK check (RFC 5961 §7 limit),
    /// which keeps two desynchronised ends from answering each other without end.
    public var invalidAckRepliesSuppressed: UInt64 = 0
    /// SYN cookies (RFC 4987 §3.6): SYN-ACKs sent with a cookie, final ACKs whose cookie was valid,
    /// and ACKs checked as cookies that were not.
    public var synCookiesSent: UInt64 = 0
    /// Final ACKs whose cookie was valid: connections made from a cookie.
    public var synCookiesValidated: UInt64 = 0
    /// ACKs checked as cookies that were not valid.
    public var synCookiesFailed: UInt64 = 0
    /// Segments dropped by PAWS: an older timestamp than the last one accepted (RFC 7323 §5).
    public var pawsRejected: UInt64 = 0
    /// SACK (RFC 2018, RFC 2883): blocks received, of which D-SACKs, blocks ignored as outside what
    /// is outstanding, and D-SACK blocks we sent.
    public var sackBlocksReceived: UInt64 = 0
    /// D-SACK blocks received: duplicates reported (RFC 2883).
    public var dsackBlocksReceived: UInt64 = 0
    /// SACK blocks ignored as outside what is outstanding.
    public var sackBlocksInvalid: UInt64 = 0
    /// D-SACK blocks we sent (RFC 2883).
    public var dsackBlocksSent: UInt64 = 0
    /// RFC 8985 §7 loss probes sent.
    public var tailLossProbes: UInt64 = 0
    /// Loss episodes found spurious and undone (RFC 3522 timestamps, RFC 2883 D-SACK).
    public var spuriousRetransmissionsUndone: UInt64 = 0
    /// The memory budget (`StackConfiguration.memoryBudget`): new connections refused, out-of-order
    /// queues pruned, and segments whose data was dropped for want of room (their ACK still processed).
    public var memoryBudgetRefusals: UInt64 = 0
    /// Out-of-order queues emptied to stay within the memory budget.
    public var memoryBudgetOutOfOrderPrunes: UInt64 = 0
    /// Segments whose data was dropped for want of room in the memory budget (their ACK still processed).
    public var droppedMemoryBudget: UInt64 = 0
    /// Buffer autotuning: receive buffers grown (dynamic right-sizing) and send buffers grown (with
    /// cwnd), and either shrunk under memory pressure.
    public var receiveBufferGrowths: UInt64 = 0
    /// Receive buffers shrunk under memory pressure.
    public var receiveBufferShrinks: UInt64 = 0
    /// Send buffers grown with the congestion window.
    public var sendBufferGrowths: UInt64 = 0
    /// Send buffers shrunk under memory pressure.
    public var sendBufferShrinks: UInt64 = 0
    /// Connections that sat idle with grown buffers and gave them back (`TCPConfiguration.idleBufferReclaim`).
    public var idleBufferReclaims: UInt64 = 0
    /// Released connections that reached TIME-WAIT with `StackConfiguration.maximumTimeWaitRecords`
    /// records held already, and were closed without waiting 2·MSL (Linux's TCPTimeWaitOverflow).
    public var timeWaitOverflows: UInt64 = 0
    /// SYNs that reopened a 4-tuple in TIME-WAIT: by timestamp (RFC 6191 §2), by sequence number
    /// (RFC 1122 §4.2.2.13), refused as possible old duplicates; and TIME-WAIT 4-tuples our own
    /// `connect` took over (Linux's TCPTimeWaitReuse-like `tcp_tw_reuse`).
    public var timeWaitRecycledByTimestamp: UInt64 = 0
    /// SYNs that reopened a 4-tuple in TIME-WAIT by sequence number (RFC 1122 §4.2.2.13).
    public var timeWaitRecycledBySequence: UInt64 = 0
    /// SYNs to a 4-tuple in TIME-WAIT refused as possible old duplicates (answered with an ACK).
    public var timeWaitSYNsRejected: UInt64 = 0
    /// TIME-WAIT 4-tuples our own `connect` took over (as Linux's `tcp_tw_reuse`).
    public var timeWaitReusedByConnect: UInt64 = 0
    /// ICMP errors about TCP segments (RFC 5927): handed to TCP, ignored because the quoted sequence
    /// number was outside SND.UNA..SND.NXT (Linux's OutOfWindowIcmps) or no connection matched, and
    /// what the valid ones did: path MTU reductions (RFC 1191 / RFC 8201), connections aborted by a
    /// hard error (RFC 5461), soft errors noted (RFC 1122 §4.2.3.9).
    public var icmpErrorsReceived: UInt64 = 0
    /// ICMP errors ignored because the quoted sequence number was outside SND.UNA..SND.NXT (RFC 5927 §4.1; Linux's OutOfWindowIcmps).
    public var icmpErrorsOutOfWindow: UInt64 = 0
    /// ICMP errors ignored because no connection matched the quote.
    public var icmpErrorsNoConnection: UInt64 = 0
    /// Path MTU reductions from valid ICMP errors (RFC 1191, RFC 8201).
    public var pathMTUReductions: UInt64 = 0
    /// Connections whose MSS went back up when the path MTU estimate that had lowered it aged out
    /// (RFC 1191 §6.3, RFC 8201 §5.3).
    public var pathMTUIncreases: UInt64 = 0
    /// Connections aborted by a hard ICMP error (RFC 5461).
    public var icmpHardErrorAborts: UInt64 = 0
    /// Soft ICMP errors noted on a connection (RFC 1122 §4.2.3.9).
    public var icmpSoftErrors: UInt64 = 0
    /// RFC 4821 (Linux's TCPMTUP*): black holes suspected, probes sent, acknowledged, lost.
    public var mtuBlackHolesDetected: UInt64 = 0
    /// Path MTU probes sent (RFC 4821).
    public var mtuProbesSent: UInt64 = 0
    /// Path MTU probes acknowledged: the MSS goes up.
    public var mtuProbesSucceeded: UInt64 = 0
    /// Path MTU probes lost.
    public var mtuProbesFailed: UInt64 = 0

    // Drops by reason (each a segment that reached TCP and was discarded)
    /// Segments dropped as outside the receive window (RFC 9293 §3.10.7.4's acceptability test).
    public var droppedOutOfWindow: UInt64 = 0
    /// Segments dropped for an ACK of data never sent (RFC 9293 §3.10.7.4).
    public var droppedUnacceptableAck: UInt64 = 0
    /// Segments dropped for lacking the ACK flag in a synchronized state.
    public var droppedNoAckFlag: UInt64 = 0
    /// Out-of-order segments dropped because the reassembly queue was at its limit.
    public var droppedReassemblyLimit: UInt64 = 0
    /// Segments to no connection and no listener (answered with RST).
    public var droppedInClosedState: UInt64 = 0
    /// RSTs dropped as outside the window (RFC 5961 §3).
    public var droppedResetOutOfWindow: UInt64 = 0

    /// All zero.
    public init() {}

    /// Every counter with a stable snake_case name, in a fixed order, for printing.
    public var all: [(name: String, value: UInt64)] {
        [
            ("ip_packets_received", ipPacketsReceived), ("ip_packets_sent", ipPacketsSent),
            ("ip_malformed", ipMalformed), ("ip_bad_checksum", ipBadChecksum),
            ("ip_fragments_dropped", ipFragmentsDropped), ("ip_not_for_us", ipNotForUs),
            ("ip_unknown_protocol", ipUnknownProtocol), ("ip_output_too_big", ipOutputTooBig),
            ("ip_reassembly_required", ipReassemblyRequired), ("ip_reassembled", ipReassembled),
            ("ip_reassembly_failures", ipReassemblyFailures), ("ip_reassembly_timeouts", ipReassemblyTimeouts),
            ("ip_fragment_overlaps", ipFragmentOverlaps), ("ip_reassembly_evictions", ipReassemblyEvictions),
            ("ip_fragment_duplicates", ipFragmentDuplicates), ("ip_atomic_fragments", ipAtomicFragments),
            ("ip_fragmented_datagrams", ipFragmentedDatagrams), ("ip_fragments_created", ipFragmentsCreated),
            ("ip_fragmentation_failures", ipFragmentationFailures),
            ("filter_dropped", filterDropped), ("filter_rejected", filterRejected),
            ("filter_impair_lost", filterImpairLost), ("filter_impair_delayed", filterImpairDelayed),
            ("filter_impair_duplicated", filterImpairDuplicated), ("filter_impair_corrupted", filterImpairCorrupted),
            ("filter_held_overflows", filterHeldOverflows),
            ("icmp_in_messages", icmpInMessages), ("icmp_in_errors", icmpInErrors),
            ("icmp_in_checksum_errors", icmpInChecksumErrors),
            ("icmp_in_destination_unreachables", icmpInDestinationUnreachables),
            ("icmp_in_time_exceeded", icmpInTimeExceeded), ("icmp_in_parameter_problems", icmpInParameterProblems),
            ("icmp_in_echos", icmpInEchos), ("icmp_in_echo_replies", icmpInEchoReplies),
            ("icmp_out_messages", icmpOutMessages),
            ("icmp_out_destination_unreachables", icmpOutDestinationUnreachables),
            ("icmp_out_time_exceeded", icmpOutTimeExceeded),
            ("icmp_out_echo_replies", icmpOutEchoReplies), ("icmp_out_rate_limited", icmpOutRateLimited),
            ("icmp_out_suppressed", icmpOutSuppressed),
            ("icmp6_in_messages", icmp6InMessages), ("icmp6_in_errors", icmp6InErrors),
            ("icmp6_in_checksum_errors", icmp6InChecksumErrors),
            ("icmp6_in_destination_unreachables", icmp6InDestinationUnreachables),
            ("icmp6_in_packet_too_bigs", icmp6InPacketTooBigs), ("icmp6_in_time_exceeded", icmp6InTimeExceeded),
            ("icmp6_in_parameter_problems", icmp6InParameterProblems),
            ("icmp6_in_echos", icmp6InEchos), ("icmp6_in_echo_replies", icmp6InEchoReplies),
            ("icmp6_out_messages", icmp6OutMessages),
            ("icmp6_out_destination_unreachables", icmp6OutDestinationUnreachables),
            ("icmp6_out_parameter_problems", icmp6OutParameterProblems),
            ("icmp6_out_time_exceeded", icmp6OutTimeExceeded),
            ("icmp6_out_echo_replies", icmp6OutEchoReplies),
            ("udp_in_datagrams", udpInDatagrams), ("udp_no_ports", udpNoPorts), ("udp_in_errors", udpInErrors),
            ("udp_in_checksum_errors", udpInChecksumErrors), ("udp_receive_buffer_errors", udpReceiveBufferErrors),
            ("udp_memory_errors", udpMemoryErrors),
            ("udp_out_datagrams", udpOutDatagrams),
            ("intercept_requests", interceptRequests), ("intercept_syns_absorbed", interceptSYNsAbsorbed),
            ("intercept_accepted", interceptAccepted), ("intercept_refused_reset", interceptRefusedReset),
            ("intercept_refused_unreachable", interceptRefusedUnreachable),
            ("intercept_refused_silence", interceptRefusedSilence), ("intercept_pending_full", interceptPendingFull),
            ("intercept_connections_full", interceptConnectionsFull),
            ("intercept_deadline_expired", interceptDeadlineExpired),
            ("udp_flows_created", udpFlowsCreated), ("udp_flows_expired", udpFlowsExpired),
            ("udp_flow_table_full", udpFlowTableFull),
            ("icmp_echo_delivered", icmpEchoDelivered), ("icmp_echo_dropped", icmpEchoDropped),
            ("segments_received", segmentsReceived), ("segments_sent", segmentsSent),
            ("segments_retransmitted", segmentsRetransmitted), ("bad_segments", badSegments),
            ("bad_checksums", badChecksums), ("resets_received", resetsReceived), ("resets_sent", resetsSent),
            ("active_opens", activeOpens), ("passive_opens", passiveOpens),
            ("fast_open_passive", fastOpenPassive), ("fast_open_passive_failures", fastOpenPassiveFailures),
            ("fast_open_cookie_requests", fastOpenCookieRequests),
            ("fast_open_listen_overflows", fastOpenListenOverflows),
            ("fast_open_active", fastOpenActive), ("fast_open_active_failures", fastOpenActiveFailures),
            ("failed_connection_attempts", failedConnectionAttempts), ("established_resets", establishedResets),
            ("syns_received", synsReceived), ("listen_overflows", listenOverflows),
            ("syn_queue_drops", synQueueDrops), ("retransmission_timeouts", retransmissionTimeouts),
            ("fast_retransmits", fastRetransmits), ("connections_timed_out", connectionsTimedOut),
            ("zero_window_probes_sent", zeroWindowProbesSent),
            ("zero_window_advertisements", zeroWindowAdvertisements),
            ("silly_window_overrides", sillyWindowOverrides),
            ("ecn_connections", ecnConnections), ("ecn_ce_received", congestionExperiencedReceived),
            ("ecn_ece_received", ecnEchoesReceived), ("ecn_window_reductions", ecnWindowReductions),
            ("ecn_cwr_sent", congestionWindowReducedSent),
            ("window_updates_sent", windowUpdatesSent), ("delayed_acks_sent", delayedAcksSent),
            ("resets_on_close_with_unread_data", resetsOnCloseWithUnreadData),
            ("keepalive_probes_sent", keepaliveProbesSent), ("keepalive_timeouts", keepaliveTimeouts),
            ("duplicate_acks_received", duplicateAcksReceived), ("out_of_order_segments", outOfOrderSegments),
            ("duplicate_segments", duplicateSegments), ("challenge_acks_sent", challengeAcksSent),
            ("challenge_acks_suppressed", challengeAcksSuppressed),
            ("invalid_ack_replies_suppressed", invalidAckRepliesSuppressed),
            ("syn_cookies_sent", synCookiesSent), ("syn_cookies_validated", synCookiesValidated),
            ("syn_cookies_failed", synCookiesFailed),
            ("paws_rejected", pawsRejected),
            ("sack_blocks_received", sackBlocksReceived), ("dsack_blocks_received", dsackBlocksReceived),
            ("sack_blocks_invalid", sackBlocksInvalid), ("dsack_blocks_sent", dsackBlocksSent),
            ("tail_loss_probes", tailLossProbes), ("spurious_retransmissions_undone", spuriousRetransmissionsUndone),
            ("memory_budget_refusals", memoryBudgetRefusals),
            ("memory_budget_out_of_order_prunes", memoryBudgetOutOfOrderPrunes),
            ("dropped_memory_budget", droppedMemoryBudget), ("time_wait_overflows", timeWaitOverflows),
            ("time_wait_recycled_by_timestamp", timeWaitRecycledByTimestamp),
            ("time_wait_recycled_by_sequence", timeWaitRecycledBySequence),
            ("time_wait_syns_rejected", timeWaitSYNsRejected), ("time_wait_reused_by_connect", timeWaitReusedByConnect),
            ("receive_buffer_growths", receiveBufferGrowths), ("receive_buffer_shrinks", receiveBufferShrinks),
            ("send_buffer_growths", sendBufferGrowths), ("send_buffer_shrinks", sendBufferShrinks),
            ("idle_buffer_reclaims", idleBufferReclaims),
            ("icmp_errors_received", icmpErrorsReceived), ("icmp_errors_out_of_window", icmpErrorsOutOfWindow),
            ("icmp_errors_no_connection", icmpErrorsNoConnection), ("path_mtu_reductions", pathMTUReductions),
            ("path_mtu_increases", pathMTUIncreases),
            ("icmp_hard_error_aborts", icmpHardErrorAborts), ("icmp_soft_errors", icmpSoftErrors),
            ("mtu_black_holes_detected", mtuBlackHolesDetected), ("mtu_probes_sent", mtuProbesSent),
            ("mtu_probes_succeeded", mtuProbesSucceeded), ("mtu_probes_failed", mtuProbesFailed),
            ("dropped_out_of_window", droppedOutOfWindow), ("dropped_unacceptable_ack", droppedUnacceptableAck),
            ("dropped_no_ack_flag", droppedNoAckFlag), ("dropped_reassembly_limit", droppedReassemblyLimit),
            ("dropped_in_closed_state", droppedInClosedState),
            ("dropped_reset_out_of_window", droppedResetOutOfWindow),
        ]
    }
}
