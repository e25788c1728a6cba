import NIOCore
import TCPIPWire

/// Netfilter's hooks in the stack's IP path (docs/NETFILTER.md):
///
///     receive ─▶ parse ─▶ (reassemble) ─▶ prerouting ─▶ ours? ─▶ input ─▶ TCP / UDP / ICMP
///                                                         └─no─▶ (router) filterForward: forward, postrouting
///     TCP / UDP / ICMP ─▶ outgoing queue ─▶ output ─▶ postrouting ─▶ nextPacketToSend
///                             └─(router) nextPacketToRoute ─▶ routing decision ─▶ filterOutput: output, postrouting
///
/// The hooks run only while a ruleset with chains on them is installed (`filterHooks`, one bit per
/// hook): without one, `receive` and `nextPacketToSend` pay one test of a zero word each.
///
/// A datagram an `impair` rule holds back waits in `filterHeld`, a heap ordered by release time;
/// `advanceTime` releases it and it goes on after the hook that held it. `nextDeadline` includes
/// the earliest release.
extension Stack {
    /// Most datagrams held back by `impair` rules at once (both directions and forwarding); beyond
    /// it, a datagram to be held is dropped and counted (`filterHeldOverflows`).
    public static var filterHeldLimit: Int { 65_536 }

    /// Installs `ruleset` in place of the rules there were (nil, or a ruleset without tables,
    /// removes them). Counters, rate-limit buckets and connection tracking start afresh; datagrams
    /// held back by the previous rules are dropped.
    ///
    /// The filter's random draws (`numgen random`, `impair`) come from the configured seed when
    /// there is one, so a seeded run reproduces exactly.
    public func install(_ ruleset: FilterRuleset?) throws(PacketFilter.CompileError) {
        filterHeld.removeAll()
        filterReady.removeAll()
        filterForwardReady.removeAll()
        filterTransitReady.removeAll()
        guard let ruleset, !ruleset.tables.isEmpty else {
            filter = nil
            filterHooks = 0
            return
        }
        let seed = configuration.seed.map { $0 ^ 0x4E46_5441_424C_4553 } ?? random.next()
        let compiled = try PacketFilter(ruleset, seed: seed, tracker: ConnectionTracker(capacity: configuration.filterConnectionLimit))
        var hooks: UInt8 = 0
        for hook in FilterHook.allCases where compiled.hasRules(at: hook) { hooks |= hook.bit }
        // Connection tracking sees every datagram in and out, as Linux's does from its hooks at
        // prerouting and output, so that `ct state` knows replies.
        if compiled.tracksConnections { hooks |= FilterHook.prerouting.bit | FilterHook.output.bit }
        filter = compiled
        filterHooks = hooks
    }

    /// The installed rules with their counters, tracker and log; nil when none are.
    public var packetFilter: PacketFilter? { filter }

    /// `nft list ruleset` of the installed rules with their counters; nil when none are.
    public func filterListing() -> String? { filter?.listing() }

    /// The `log` lines gathered since the last call. (While `tracing` is on they go to the trace
    /// instead, each as a `netfilter` line.)
    public func drainFilterLog() -> [FilterLogRecord] {
        filter?.drainLog() ?? []
    }

    /// Datagrams held back by `impair` rules, not yet released.
    public var filterHeldCount: Int { filterHeld.count }

    /// Remembers the latest time an entry point was given, for what leaves through
    /// `nextPacketToSend` (which takes none): rate limits and delays of the output hooks count from it.
    @inline(__always)
    func noteFilterTime(_ now: Instant) {
        if filterHooks != 0, now > filterNow { filterNow = now }
    }

    // MARK: Input: prerouting and input

    /// The input path with rules installed: reassembly first (a hook sees whole datagrams, as
    /// Linux's conntrack defragments ahead of every hook), prerouting, the routing decision, input,
    /// then the protocol table. A datagram an `impair` rule held comes back here with `done` (the
    /// hook that held it) and its `FilterPacket` (with the state connection tracking gave it).
    func filteredDatagramArrives(
        _ arriving: consuming IPDatagram, verify: Bool, now: Instant, done: FilterHook? = nil, known: FilterPacket? = nil,
        inputLink: String? = nil
    ) {
        noteFilterTime(now)
        var ip = arriving
        var verify = verify
        let local = isLocal(ip.destination) || interceptsEverything
        if local, ip.fragment != nil {
            guard let whole = reassemble(consume ip, now: now) else { return }
            ip = whole
        }
        var packet = known ?? FilterPacket(ip, inputLink: inputLink ?? configuration.linkName)
        if done == nil, filterHooks & FilterHook.prerouting.bit != 0 {
            guard passInbound(&ip, &packet, hook: .prerouting, verify: &verify, now: now) else { return }
        }
        guard local else {
            // A router forwards from here (`filterForward`); a host drops.
            io.counters.ipNotForUs &+= 1
            return
        }
        if done != .input, filterHooks & FilterHook.input.bit != 0 {
            guard passInbound(&ip, &packet, hook: .input, verify: &verify, now: now) else { return }
        }
        datagramArrives(ip, verify: verify, now: now)
    }

    /// One inbound hook. Returns whether the datagram goes on now; otherwise it was dropped,
    /// rejected, lost or held.
    private func passInbound(
        _ ip: inout IPDatagram, _ packet: inout FilterPacket, hook: FilterHook, verify: inout Bool, now: Instant
    ) -> Bool {
        let verdict = evaluateFilter(&packet, hook: hook, now: now)
        switch verdict {
        case .accept:
            return true
        case .drop:
            io.counters.filterDropped &+= 1
            return false
        case .reject(let reply):
            io.counters.filterRejected &+= 1
            rejectArrival(reply, ip, packet, now: now)
            return false
        case .impair(let decision):
            if decision.lost {
                io.counters.filterImpairLost &+= 1
                return false
            }
            if let bit = decision.corruptBit {
                io.counters.filterImpairCorrupted &+= 1
                var bytes = copied(originalBytes(of: ip))
                ImpairmentProcess.flip(bit, in: &bytes)
                // A corrupted datagram is checked whatever the link vouched for: its checksums
                // are what should catch it.
                verify = true
                do {
                    ip = try IPDatagram.parse(bytes, verifyChecksum: true, keepingFragments: true)
                } catch {
                    if error == .badChecksum { io.counters.ipBadChecksum &+= 1 } else { io.counters.ipMalformed &+= 1 }
                    return false
                }
            }
            if decision.duplicate {
                io.counters.filterImpairDuplicated &+= 1
                hold(.inbound(ip, verify: verify), packet: packet, after: hook, release: now + decision.duplicateDelay)
            }
            guard decision.delay > .zero else { return true }
            io.counters.filterImpairDelayed &+= 1
            hold(.inbound(ip, verify: verify), packet: packet, after: hook, release: now + decision.delay)
            return false
        }
    }

    /// A `reject` on the way in: an RST for TCP (RFC 9293 §3.10.7.1's form, as for a segment that
    /// finds no connection, through the stack's builder), else a destination unreachable through
    /// the stack's ICMP builder and its rate limiter.
    private func rejectArrival(_ reply: RejectReply, _ ip: IPDatagram, _ packet: FilterPacket, now: Instant) {
        switch reply {
        case .tcpReset:
            // RFC 9293 §3.10.7.1: "An incoming segment containing a RST is discarded."
            guard packet.transportComplete, !packet.tcpFlags.contains(.rst) else { return }
            let tuple = FourTuple(
                local: Endpoint(packet.destination, packet.destinationPort),
                remote: Endpoint(packet.source, packet.sourcePort))
            let (sequence, acknowledging) = Self.resetNumbers(answering: packet)
            sendReset(tuple: tuple, sequence: sequence, acknowledging: acknowledging)
            io.decision("RFC 9293 §3.10.7.1", "rejected by a rule: RST", connection: tuple, now: now)
        case .icmpUnreachable(let code):
            sendICMPError(.rejected(code: code), about: ip, now: now)
        }
    }

    /// RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST> when the segment has an ACK, else
    /// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    static func resetNumbers(answering packet: FilterPacket) -> (SequenceNumber, SequenceNumber?) {
        if packet.tcpFlags.contains(.ack) { return (SequenceNumber(packet.acknowledgmentNumber), nil) }
        var length = UInt32(truncatingIfNeeded: packet.payloadLength)
        if packet.tcpFlags.contains(.syn) { length &+= 1 }
        if packet.tcpFlags.contains(.fin) { length &+= 1 }
        return (SequenceNumber(0), SequenceNumber(packet.sequenceNumber) + length)
    }

    // MARK: Output: output and postrouting

    /// `nextPacketToSend` with rules installed: datagrams released from an `impair` hold first (they
    /// were queued before what is queued now), then the outgoing queue, each through output and
    /// postrouting; what a hook drops, rejects or holds is skipped.
    func filteredNextPacket() -> ByteBuffer? {
        let now = filterNow
        while true {
            if let ready = filterReady.popFirst() {
                if let datagram = passOutbound(ready.datagram, known: ready.packet, done: ready.done, now: now) { return datagram }
                continue
            }
            guard let datagram = io.outgoing.popFirst() else { return nil }
            if let datagram = passOutbound(datagram, known: nil, done: nil, now: now) { return datagram }
        }
    }

    /// Output then postrouting for one of our datagrams; `outputLink` (`oifname`) is the link a
    /// router chose for it, else the stack's own.
    private func passOutbound(
        _ leaving: ByteBuffer, known: FilterPacket?, outputLink: String? = nil, done: FilterHook?, now: Instant
    ) -> ByteBuffer? {
        var datagram = leaving
        // Our own datagram: it parses (checksums are not checked, they may be left to offload).
        guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: false, keepingFragments: true) else { return datagram }
        var packet = known ?? FilterPacket(ip, outputLink: outputLink ?? configuration.linkName)
        if done == nil, filterHooks & FilterHook.output.bit != 0 {
            guard passOutboundHook(&datagram, ip, &packet, hook: .output, held: .outbound, now: now) else { return nil }
        }
        if done != .postrouting, filterHooks & FilterHook.postrouting.bit != 0 {
            guard passOutboundHook(&datagram, ip, &packet, hook: .postrouting, held: .outbound, now: now) else { return nil }
        }
        return datagram
    }

    /// One hook on the way out (or through): whether the datagram goes on now.
    private func passOutboundHook(
        _ datagram: inout ByteBuffer, _ ip: IPDatagram, _ packet: inout FilterPacket, hook: FilterHook,
        held: HeldDatagram.Direction, now: Instant
    ) -> Bool {
        switch evaluateFilter(&packet, hook: hook, now: now) {
        case .accept:
            return true
        case .drop:
            io.counters.filterDropped &+= 1
            return false
        case .reject(let reply):
            io.counters.filterRejected &+= 1
            if held == .outbound {
                rejectDeparture(reply, datagram, packet, now: now)
            } else {
                rejectArrival(reply, ip, packet, now: now)
            }
            return false
        case .impair(let decision):
            if decision.lost {
                io.counters.filterImpairLost &+= 1
                return false
            }
            if let bit = decision.corruptBit {
                io.counters.filterImpairCorrupted &+= 1
                datagram = copied(datagram)
                ImpairmentProcess.flip(bit, in: &datagram)
            }
            let kind: HeldDatagram.Kind
            switch held {
            case .outbound: kind = .outbound(datagram)
            case .forwarded: kind = .forwarded(datagram)
            case .transit: kind = .transit(datagram)
            }
            if decision.duplicate {
                io.counters.filterImpairDuplicated &+= 1
                hold(kind, packet: packet, after: hook, release: now + decision.duplicateDelay)
            }
            guard decision.delay > .zero else { return true }
            io.counters.filterImpairDelayed &+= 1
            hold(kind, packet: packet, after: hook, release: now + decision.delay)
            return false
        }
    }

    /// A `reject` of a datagram we send (Linux's `nf_reject` in the output hook): the answer comes
    /// back to us, as if from the destination — an RST that resets our connection, or a destination
    /// unreachable our ICMP input matches to it (RFC 5927's checks apply as to any other). The ICMP
    /// answer is held to the rate limiter of the errors we send.
    private func rejectDeparture(_ reply: RejectReply, _ datagram: ByteBuffer, _ packet: FilterPacket, now: Instant) {
        let answer: ByteBuffer
        switch reply {
        case .tcpReset:
            guard packet.transportComplete, !packet.tcpFlags.contains(.rst) else { return }
            let (sequence, acknowledging) = Self.resetNumbers(answering: packet)
            let header = TCPHeader(
                sourcePort: packet.destinationPort, destinationPort: packet.sourcePort, sequenceNumber: sequence,
                acknowledgmentNumber: acknowledging ?? SequenceNumber(0), flags: acknowledging == nil ? .rst : [.rst, .ack],
                window: 0)
            answer = PacketBuffer.tcpDatagram(
                header: header, payload: nil, source: packet.destination, destination: packet.source)
        case .icmpUnreachable(let code):
            guard icmpErrorLimiter.allow(now: now) else {
                io.counters.icmpOutRateLimited &+= 1
                return
            }
            var quote = datagram
            switch (packet.destination, packet.source) {
            case (.v4(let source), .v4(let destination)):
                let room = Self.minimumIPv4ErrorDatagram - IPv4Header.minimumLength - ICMPv4Message.headerLength
                quote.moveWriterIndex(to: quote.readerIndex + min(quote.readableBytes, room))
                answer = PacketBuffer.icmpv4Datagram(
                    message: .destinationUnreachable(ICMPv4UnreachableCode(rawValue: code), nextHopMTU: 0),
                    body: quote, source: source, destination: destination)
            case (.v6(let source), .v6(let destination)):
                let room = Self.minimumIPv6MTU - IPv6Header.length - ICMPv6Message.headerLength
                quote.moveWriterIndex(to: quote.readerIndex + min(quote.readableBytes, room))
                answer = PacketBuffer.icmpv6Datagram(
                    message: .destinationUnreachable(ICMPv6UnreachableCode(rawValue: code)),
                    body: quote, source: source, destination: destination)
            default:
                return
            }
        }
        // Delivered past the hooks: an answer the rules made is not filtered again.
        guard let ip = try? IPDatagram.parse(answer, verifyChecksum: false, keepingFragments: true) else { return }
        io.counters.ipPacketsReceived &+= 1
        datagramArrives(ip, verify: false, now: now)
    }

    // MARK: Output after the routing decision (for a router)

    /// Whether output or postrouting has rules (connection tracking counts: it sees every datagram
    /// out). A router routes its own datagrams first and passes them through
    /// `filterOutput(_:outputLink:now:)` when this is true; otherwise it takes them from
    /// `nextPacketToSend()`, at the cost of this one test.
    public var filtersOutput: Bool { filterHooks & Self.outputHookBits != 0 }

    /// The next datagram this stack sends, before output and postrouting, for a router that makes
    /// its routing decision first and then calls `filterOutput(_:outputLink:now:)` with the link it
    /// chose — as Linux routes a datagram of its own (`ip_route_output`, `ip_queue_xmit`) before
    /// NF_INET_LOCAL_OUT, so that `oifname` matches it at output and postrouting.
    ///
    /// Like `nextPacketToSend()` it ends a batch (deferred ACKs are built first). Datagrams the
    /// output hooks held come back from `nextOutputPacket()`, not from here.
    public func nextPacketToRoute() -> ByteBuffer? {
        if !io.deferredAcks.isEmpty { sendDeferredAcks() }
        return io.outgoing.popFirst()
    }

    /// Netfilter's NF_INET_LOCAL_OUT then NF_INET_POST_ROUTING for a datagram a router sends
    /// itself — one of this stack's (`nextPacketToRoute()`) or an ICMP error the router built —
    /// after its routing decision, with the link it leaves by. With no rules on either hook it
    /// returns `datagram` untouched, at the cost of one test.
    ///
    /// - Parameters:
    ///   - datagram: the whole IP datagram, header first.
    ///   - outputLink: the name of the link it leaves on (`oifname`), if known.
    ///   - now: the time it is sent at.
    /// - Returns: the datagram to send now (possibly with a bit flipped by `impair corrupt`), or
    ///   nil when a rule dropped, rejected (the answer comes back to this stack, as for any of its
    ///   datagrams), lost or held it. A held or duplicated datagram comes out of
    ///   `nextOutputPacket()` once `advanceTime` passes its release time.
    public func filterOutput(_ datagram: ByteBuffer, outputLink: String?, now: Instant) -> ByteBuffer? {
        guard filtersOutput else { return datagram }
        noteFilterTime(now)
        return passOutbound(datagram, known: nil, outputLink: outputLink, done: nil, now: now)
    }

    /// A datagram `filterOutput(_:outputLink:now:)` held or duplicated, due now, through the hooks
    /// after the one that held it: its bytes and the output link it was given.
    public func nextOutputPacket() -> (datagram: ByteBuffer, outputLink: String?)? {
        while let ready = filterReady.popFirst() {
            if let datagram = passOutbound(ready.datagram, known: ready.packet, done: ready.done, now: filterNow) {
                return (datagram, ready.packet.outputLink)
            }
        }
        return nil
    }

    // MARK: Prerouting (for a router)

    /// Whether `filterPrerouting` has anything to do: a router skips the call otherwise.
    public var filtersPrerouting: Bool { filterHooks & FilterHook.prerouting.bit != 0 }

    /// A datagram in transit past prerouting: its bytes (a copy with a flipped bit when `corrupted`,
    /// to be checked again) and the fields the hooks read, with the state connection tracking gave
    /// it, for `filterForward(_:inputLink:outputLink:now:known:)`.
    public struct Prerouted {
        /// The datagram to route, header first.
        public var datagram: ByteBuffer
        /// The fields the hooks read, with its conntrack state; nil when prerouting has no rules or
        /// could not parse the datagram.
        public var packet: FilterPacket?
        /// An `impair corrupt` rule flipped a bit: check the datagram again before routing it.
        public var corrupted: Bool
    }

    /// Netfilter's NF_INET_PRE_ROUTING for a datagram a router received that is not addressed to
    /// its own stack (those go to `receive(_:inputLink:now:checksumVerified:)`, whose prerouting is
    /// this hook too). Call it after the header checks and before the routing decision, as Linux's
    /// `ip_rcv` does, so that a rule dropping it also keeps the router from answering with ICMP.
    ///
    /// - Returns: the datagram to route now, or nil when a rule dropped, rejected (the answer is
    ///   queued for `nextPacketToSend`), lost or held it. A held datagram comes out of
    ///   `nextPreroutedPacket()` once `advanceTime` passes its release time.
    public func filterPrerouting(_ datagram: ByteBuffer, inputLink: String?, now: Instant) -> Prerouted? {
        guard filtersPrerouting else { return Prerouted(datagram: datagram, packet: nil, corrupted: false) }
        noteFilterTime(now)
        guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: false, keepingFragments: true) else {
            return Prerouted(datagram: datagram, packet: nil, corrupted: false)
        }
        var packet = FilterPacket(ip, inputLink: inputLink)
        var passed = datagram
        let corruptedBefore = io.counters.filterImpairCorrupted
        guard passOutboundHook(&passed, ip, &packet, hook: .prerouting, held: .transit, now: now) else { return nil }
        return Prerouted(datagram: passed, packet: packet, corrupted: io.counters.filterImpairCorrupted != corruptedBefore)
    }

    /// A transit datagram prerouting held or duplicated, due now: back to the router's routing
    /// decision (its bytes are checked again: they may have been corrupted when held).
    public func nextPreroutedPacket() -> Prerouted? {
        guard let ready = filterTransitReady.popFirst() else { return nil }
        return Prerouted(datagram: ready.datagram, packet: ready.packet, corrupted: true)
    }

    // MARK: Forward (for a router)

    /// A datagram a router forwards, not addressed to this stack, through the forward hook and then
    /// postrouting (as Linux: forwarded datagrams leave through postrouting too).
    ///
    /// Call it after the routing decision (the output link chosen) and before decrementing the TTL
    /// or hop limit. With no rules on either hook it returns `datagram` untouched, at the cost of
    /// one test.
    ///
    /// - Parameters:
    ///   - datagram: the whole IP datagram, header first.
    ///   - inputLink: the name of the link it came in on (`iifname`), if known.
    ///   - outputLink: the name of the link it will leave on (`oifname`), if known.
    ///   - now: the time it is forwarded at.
    ///   - known: what `filterPrerouting` returned for it (its conntrack state goes on with it), if it ran.
    /// - Returns: the datagram to forward now (possibly with a bit flipped by `impair corrupt`), or
    ///   nil when a rule dropped, rejected (the answer is queued for `nextPacketToSend`), lost or
    ///   held it. A held or duplicated datagram comes out of `nextForwardedPacket()` once
    ///   `advanceTime` passes its release time (`nextDeadline` includes it).
    public func filterForward(
        _ datagram: ByteBuffer, inputLink: String?, outputLink: String?, now: Instant, known: FilterPacket? = nil
    ) -> ByteBuffer? {
        guard filterHooks & (FilterHook.forward.bit | FilterHook.postrouting.bit) != 0 else { return datagram }
        noteFilterTime(now)
        guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: false, keepingFragments: true) else { return datagram }
        var packet: FilterPacket
        if let known {
            packet = known
            packet.outputLink = outputLink
        } else {
            packet = FilterPacket(ip, inputLink: inputLink, outputLink: outputLink)
        }
        return passForward(datagram, ip, &packet, done: nil, now: now)
    }

    /// A forwarded datagram that an `impair` rule held or duplicated, due now: its bytes and the
    /// output link given to `filterForward`.
    public func nextForwardedPacket() -> (datagram: ByteBuffer, outputLink: String?)? {
        while let ready = filterForwardReady.popFirst() {
            guard let ip = try? IPDatagram.parse(ready.datagram, verifyChecksum: false, keepingFragments: true) else { continue }
            var packet = ready.packet
            if let datagram = passForward(ready.datagram, ip, &packet, done: ready.done, now: filterNow) {
                return (datagram, packet.outputLink)
            }
        }
        return nil
    }

    private func passForward(_ forwarded: ByteBuffer, _ ip: IPDatagram, _ packet: inout FilterPacket, done: FilterHook?, now: Instant) -> ByteBuffer? {
        var datagram = forwarded
        if done == nil, filterHooks & FilterHook.forward.bit != 0 {
            guard passOutboundHook(&datagram, ip, &packet, hook: .forward, held: .forwarded, now: now) else { return nil }
        }
        if done != .postrouting, filterHooks & FilterHook.postrouting.bit != 0 {
            guard passOutboundHook(&datagram, ip, &packet, hook: .postrouting, held: .forwarded, now: now) else { return nil }
        }
        return datagram
    }

    // MARK: Held datagrams

    private func hold(_ kind: HeldDatagram.Kind, packet: FilterPacket, after hook: FilterHook, release: Instant) {
        guard filterHeld.count < Self.filterHeldLimit else {
            io.counters.filterHeldOverflows &+= 1
            return
        }
        filterHeldOrder &+= 1
        filterHeld.insert(HeldDatagram(release: release, order: filterHeldOrder, kind: kind, packet: packet, done: hook))
    }

    /// Releases the held datagrams due at `now`, in release order: inbound ones go on through the
    /// input path at once; outbound and forwarded ones wait for `nextPacketToSend` and
    /// `nextForwardedPacket`.
    func releaseHeldDatagrams(now: Instant) {
        noteFilterTime(now)
        while let first = filterHeld.first, first.release <= now {
            let held = filterHeld.removeFirst()
            switch held.kind {
            case .inbound(let ip, let verify):
                filteredDatagramArrives(ip, verify: verify, now: now, done: held.done, known: held.packet)
            case .outbound(let datagram):
                filterReady.append(ReadyDatagram(datagram: datagram, packet: held.packet, done: held.done))
            case .forwarded(let datagram):
                filterForwardReady.append(ReadyDatagram(datagram: datagram, packet: held.packet, done: held.done))
            case .transit(let datagram):
                filterTransitReady.append(ReadyDatagram(datagram: datagram, packet: held.packet, done: held.done))
            }
        }
    }

    /// Runs the hook's chains and moves `log` lines into the trace when tracing.
    private func evaluateFilter(_ packet: inout FilterPacket, hook: FilterHook, now: Instant) -> FilterVerdict {
        guard filter != nil else { return .accept }
        let verdict = filter!.evaluate(&packet, hook: hook, now: now)
        if io.tracing, !filter!.log.isEmpty {
            for record in filter!.drainLog() {
                io.trace.append(TraceRecord(time: record.now, connection: nil, rule: "netfilter", message: record.description))
            }
        }
        return verdict
    }

    /// A buffer of its own: a bit flipped in a shared one would change the original too.
    private func copied(_ bytes: ByteBuffer) -> ByteBuffer {
        var copy = PacketBuffer.make(payloadCapacity: bytes.readableBytes)
        copy.writeImmutableBuffer(bytes)
        return copy
    }
}

extension FilterHook {
    /// This hook's bit in `Stack.filterHooks`.
    var bit: UInt8 {
        switch self {
        case .prerouting: 1
        case .input: 2
        case .forward: 4
        case .output: 8
        case .postrouting: 16
        }
    }
}

/// A datagram an `impair` rule held back, and where it goes on when released.
struct HeldDatagram {
    /// Which way a datagram held as bytes goes: ours leaving, forwarded past the routing decision,
    /// or in transit before it (a router's prerouting).
    enum Direction { case outbound, forwarded, transit }

    enum Kind {
        case inbound(IPDatagram, verify: Bool)
        case outbound(ByteBuffer)
        case forwarded(ByteBuffer)
        case transit(ByteBuffer)
    }

    var release: Instant
    /// Ties in release time leave in the order they were held.
    var order: UInt64
    var kind: Kind
    var packet: FilterPacket
    /// The hook that held it: it goes on with the next one.
    var done: FilterHook

    func precedes(_ other: HeldDatagram) -> Bool {
        (release, order) < (other.release, other.order)
    }
}

/// An outbound or forwarded datagram released from its hold, waiting for the link.
struct ReadyDatagram {
    var datagram: ByteBuffer
    var packet: FilterPacket
    var done: FilterHook
}

/// A binary min-heap of held datagrams by release time: jitter lets a later datagram leave first.
struct HeldDatagramHeap {
    private var items: [HeldDatagram] = []

    var count: Int { items.count }
    var first: HeldDatagram? { items.first }

    mutating func removeAll() { items.removeAll() }

    mutating func insert(_ item: HeldDatagram) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func removeFirst() -> HeldDatagram {
        items.swapAt(0, items.count - 1)
        let first = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count, items[left].precedes(items[smallest]) { smallest = left }
            if right < items.count, items[right].precedes(items[smallest]) { smallest = right }
            guard smallest != parent else { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
