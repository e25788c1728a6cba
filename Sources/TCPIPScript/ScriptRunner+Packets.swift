import NIOCore
import TCPIP
import TCPIPWire

/// Packet lines: building what the peer injects, matching what the stack sends (`run_packet.c`).
extension ScriptRunner {
    // MARK: Inbound

    /// Builds the segment a `<` line describes, in live numbers, and hands it to the stack.
    ///
    /// The peer's sequence numbers are the script's (its ISN is the SYN's `start`); `ack` and SACK
    /// blocks count from our ISS; `TS ecr` is mapped to the live TS val the script saw under that name.
    func inject(_ packet: ScriptPacket) throws {
        let ourBase = iss ?? 0
        var options = TCPOptions()
        if case .list(let list) = packet.options {
            for option in list {
                switch option {
                case .nop, .eol: break
                case .mss(let value): options.maximumSegmentSize = value
                case .windowScale(let value): options.windowScale = value
                case .sackPermitted: options.sackPermitted = true
                case .sack(let blocks):
                    for (left, right) in blocks.prefix(SACKBlocks.capacity) {
                        options.sackBlocks.append(SACKBlock(start: SequenceNumber(ourBase &+ left), end: SequenceNumber(ourBase &+ right)))
                    }
                case .timestamp(let value, let echo):
                    options.timestamps = TCPTimestamps(value: value, echoReply: liveTimestamp(forScript: echo))
                case .md5:
                    throw ScriptSkip(reason: "TCP MD5 signature option (RFC 2385): the stack does not implement it")
                case .other(let text):
                    if let cookie = try fastOpenOption(text) {
                        options.fastOpen = cookie
                        continue
                    }
                    let feature = text.hasPrefix("FO") ? "TCP Fast Open's cookie option (RFC 7413), which the stack does not implement"
                        : "an option the runner cannot inject"
                    throw ScriptSkip(reason: "inbound option `\(text)`: \(feature)")
                }
            }
        }
        // URG is injected as written: the stack delivers urgent data inline, in sequence (RFC 6093 §5),
        // and has no out-of-band API, so a script reading urgent data with MSG_OOB is skipped there.
        let live = sockets.compactMap { fd, socket in socket.connection.flatMap { stack.state($0) }.map { (fd, socket, $0) } }
        if case .new(let fd, _) = underTest {
            if packet.flags.contains(.syn) && !packet.flags.contains(.ack), sockets[fd]?.listener != nil {
                // packetdrill's handle_listen_for_script_packet: a SYN to the listener under test
                // makes a child, the new socket under test, each from a remote port of its own.
                if childrenMade > 0 { remotePort &+= 1 }
                childrenMade += 1
                underTest = .connection(.init(local: localPort, remote: remotePort))
            } else {
                underTest = .new(fd: fd, injected: .init(local: localPort, remote: remotePort))
            }
        }
        if packet.flags.contains(.syn) {
            // A SYN-ACK to our SYN, or a SYN when no connection is open, starts the peer's numbering.
            let opening = packet.flags.contains(.ack)
                ? live.contains { $0.2 == .synSent }
                : !live.contains { $0.2.isSynchronized }
            if opening { remoteBase = packet.start }
        }
        var header = TCPHeader(
            sourcePort: remotePort, destinationPort: localPort,
            sequenceNumber: SequenceNumber(packet.flags.contains(.syn) ? packet.start : packet.start &+ remoteBase),
            // packetdrill maps the ACK field of a packet with ACK set from script space whether or not
            // the line wrote `ack N` (an omitted one is 0: our ISN, run_packet.c).
            acknowledgmentNumber: SequenceNumber(
                packet.flags.contains(.ack) ? ourBase &+ (packet.acknowledgment ?? 0) : packet.acknowledgment.map { ourBase &+ $0 } ?? 0),
            flags: packet.flags, window: packet.window ?? 0, options: options)
        header.urgentPointer = packet.urgentPointer ?? 0
        // `[ect0]`, `[ce]`, …: the ECN field the peer's packet carries (RFC 3168 §5); Not-ECT otherwise.
        let ecn = try Self.writtenECN(packet)?.first ?? .notECT
        // A packet longer than the MSS is one GSO packet (of `--mss`-octet segments, packetdrill's
        // gso_size), which Linux's GRO hands to TCP as one skb: it is injected as one segment.
        var payload: ByteBuffer?
        if packet.length > 0 {
            var buffer = ByteBufferAllocator().buffer(capacity: packet.length)
            buffer.writeRepeatingByte(0, count: packet.length)
            payload = buffer
        }
        var datagram = PacketBuffer.tcpDatagram(
            header: header, payload: payload, source: remoteAddress, destination: localAddress,
            timeToLive: packet.ip.timeToLive ?? 64, ecn: ecn)
        if packet.ip.typeOfService != nil || packet.ip.flowLabel != nil { Self.write(packet.ip, into: &datagram) }
        exchanged.append("\(format(now)) < \(Self.ecnText(ecn))\(describe(header, payloadLength: packet.length, outbound: false))")
        capture.append((now, datagram))
        // A blocking write waiting for the handshake (Linux's sk_write_pending) wakes before the
        // stack's ACK of the SYN-ACK is built, so its data carries that ACK.
        let writerWaitsForHandshake = pending.map { ["write", "writev", "send", "sendto", "sendmsg"].contains($0.call.name) } == true
            && live.contains { $0.2 == .synSent }
        stack.receive(datagram, now: now)
        if writerWaitsForHandshake && packet.flags.contains(.syn) && packet.flags.contains(.ack) { try completePending() }
        if packet.flags.contains(.rst) || packet.flags.contains(.syn) {
            // A reset connection whose handle the stack freed at once takes its error with it;
            // the socket keeps it, as a kernel socket does (SO_ERROR, then the next call). An RST
            // resets it, or refuses it in SYN-SENT; a SYN resets it under RFC 793's rule (insecure_syn).
            for (fd, socket, state) in live where socket.connection.flatMap({ stack.state($0) }) == nil {
                sockets[fd]?.lostError = state == .synSent && packet.flags.contains(.rst) ? .connectionRefused : .connectionReset
            }
        }
        collect()
        try completePending()
    }

    /// The ECN codepoints a packet line's IP information allows (`[ect01]`: either ECT), or nil when
    /// it says nothing about ECN (the field is then not checked).
    static func writtenECN(_ packet: ScriptPacket) throws -> [ECNCodepoint]? {
        var allowed: [ECNCodepoint]?
        for information in packet.ipInformation {
            for word in information.split(separator: " ") {
                switch word.lowercased() {
                case "noecn": allowed = [.notECT]
                case "ect0": allowed = [.ect0]
                case "ect1": allowed = [.ect1]
                case "ect01": allowed = [.ect0, .ect1]
                case "ce": allowed = [.congestionExperienced]
                default: continue
                }
            }
        }
        if packet.direction == .inbound, let allowed, allowed.count > 1 {
            throw ScriptSkip(reason: "inbound `[ect01]` names no single codepoint to inject")
        }
        return allowed
    }

    /// Writes a line's `(tos N)` (the whole octet: DSCP and ECN) and IPv6 flow label into a datagram
    /// built by `PacketBuffer`, fixing the IPv4 header checksum.
    static func write(_ fields: ScriptIPFields, into datagram: inout ByteBuffer) {
        let start = datagram.readerIndex
        guard let first = datagram.getInteger(at: start, as: UInt8.self) else { return }
        if first >> 4 == 4 {
            if let tos = fields.typeOfService { datagram.setInteger(tos, at: start + 1) }
            let headerLength = Int(first & 0x0f) * 4
            datagram.setInteger(UInt16(0), at: start + 10)
            var sum: UInt32 = 0
            for offset in stride(from: 0, to: headerLength, by: 2) {
                sum += UInt32(datagram.getInteger(at: start + offset, as: UInt16.self) ?? 0)
            }
            while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
            datagram.setInteger(~UInt16(sum), at: start + 10)
        } else if var word = datagram.getInteger(at: start, as: UInt32.self) {
            if let tos = fields.typeOfService { word = (word & 0xf00f_ffff) | UInt32(tos) << 20 }
            if let label = fields.flowLabel { word = (word & 0xfff0_0000) | (label & 0xf_ffff) }
            datagram.setInteger(word, at: start)
        }
    }

    /// The TOS octet (traffic class), TTL (hop limit) and flow label (IPv6; 0 for IPv4) of a datagram.
    static func ipFields(of datagram: ByteBuffer) -> (typeOfService: UInt8, timeToLive: UInt8, flowLabel: UInt32)? {
        let start = datagram.readerIndex
        guard let first = datagram.getInteger(at: start, as: UInt8.self) else { return nil }
        if first >> 4 == 4 {
            guard let tos = datagram.getInteger(at: start + 1, as: UInt8.self),
                let ttl = datagram.getInteger(at: start + 8, as: UInt8.self) else { return nil }
            return (tos, ttl, 0)
        }
        guard let word = datagram.getInteger(at: start, as: UInt32.self),
            let hops = datagram.getInteger(at: start + 7, as: UInt8.self) else { return nil }
        return (UInt8(truncatingIfNeeded: word >> 20), hops, word & 0xf_ffff)
    }

    /// What differs between the IP fields a `>` line names and the datagram's.
    static func ipMismatch(_ fields: ScriptIPFields, _ datagram: ByteBuffer) -> String? {
        guard fields != ScriptIPFields(), let actual = ipFields(of: datagram) else { return nil }
        if let tos = fields.typeOfService, tos != actual.typeOfService { return "TOS \(actual.typeOfService) instead of \(tos)" }
        if let ttl = fields.timeToLive, ttl != actual.timeToLive { return "TTL \(actual.timeToLive) instead of \(ttl)" }
        if let label = fields.flowLabel, label != actual.flowLabel { return "flow label \(actual.flowLabel) instead of \(label)" }
        return nil
    }

    /// The live TS val the stack sent where the script wrote `script`.
    func liveTimestamp(forScript script: UInt32) -> UInt32 {
        if script == 0 { return 0 }
        if let live = liveTimestamps[script] { return live }
        if let timestampOffset { return script &+ timestampOffset }
        return script
    }

    // MARK: Outbound

    /// Takes the stack's next segment(s) for a `>` line and compares them; returns when the packet
    /// was sent (the base for the next relative time).
    func expect(_ packet: ScriptPacket, timing: ScriptTiming) throws -> Instant {
        let (earliest, latest): (Instant?, Instant?) = switch timing {
        case .at(let time): (instant(time), instant(time))
        case .range(let start, let end): (instant(start), instant(end))
        case .any: (nil, nil)
        case .blocking: (nil, nil)
        }
        let tolerance = tolerance(for: latest ?? now)
        // packetdrill waits up to the expected time plus 2 s for a packet.
        let giveUp = (latest ?? now + .seconds(3600)) + tolerance + .seconds(2)
        guard let (time, header, payloadLength, ecn, datagram) = try nextOutbound(until: giveUp, length: packet.length) else {
            throw failure("timed out waiting for a packet", expected: lineText(packet), actual: "nothing by \(format(giveUp))")
        }
        if packet.flags.contains(.syn), header.flags.contains(.syn) {
            // packetdrill learns our ISN from the first outbound SYN: its live sequence number is the
            // line's `start` (`> S. 1234:1234(0)` names our ISN 1234 in script space).
            iss = header.sequenceNumber.rawValue &- packet.start
        }
        let actualText = Self.ecnText(ecn) + describe(header, payloadLength: payloadLength, outbound: true, wire: Self.rawOptions(of: datagram))
        if let earliest, let latest, time < earliest - tolerance || time > latest + tolerance {
            let when = earliest == latest ? format(earliest) : "\(format(earliest))~\(format(latest))"
            throw failure(
                "packet sent at \(format(time)), expected at \(when) (tolerance \(tolerance.nanoseconds / 1000) µs)",
                expected: lineText(packet), actual: actualText)
        }
        if let mismatch = mismatch(packet, header, payloadLength: payloadLength, datagram: datagram) ?? Self.ipMismatch(packet.ip, datagram) {
            throw failure("bad outbound packet: \(mismatch)", expected: lineText(packet), actual: actualText)
        }
        if let allowed = try Self.writtenECN(packet), !allowed.contains(ecn) {
            let actual = Self.ecnText(ecn).isEmpty ? "[noecn]" : String(Self.ecnText(ecn).dropLast())
            throw failure("bad outbound packet: ECN field \(actual) instead of \(packet.ipInformation.map { "[\($0)]" }.joined(separator: " "))",
                          expected: lineText(packet), actual: actualText)
        }
        return time
    }

    /// The next outbound segment, merging consecutive segments whose payloads add up to `length`
    /// (packetdrill's aggregation of TSO bursts: seq from the first, flags and options from the last),
    /// with the ECN field of the first.
    func nextOutbound(until giveUp: Instant, length: Int) throws -> (Instant, TCPHeader, Int, ECNCodepoint, ByteBuffer)? {
        var merged: (Instant, TCPHeader, Int)?
        var firstECN = ECNCodepoint.notECT
        var firstDatagram = ByteBuffer()
        while true {
            guard let (time, datagram) = try takeOutbound(until: giveUp) else { return merged.map { ($0.0, $0.1, $0.2, firstECN, firstDatagram) } }
            guard let (header, payload) = decode(datagram) else {
                throw failure("the stack sent a datagram that does not parse as IP/TCP")
            }
            try checkPayloadIsZero(payload)
            if case (let firstTime, var first, var total)? = merged {
                guard header.sequenceNumber == first.sequenceNumber + UInt32(total) else {
                    outbound.insert((time, datagram), at: 0)
                    return (firstTime, first, total, firstECN, firstDatagram)
                }
                total += payload.readableBytes
                var combined = header
                combined.sequenceNumber = first.sequenceNumber
                first = combined
                merged = (firstTime, first, total)
            } else {
                merged = (time, header, payload.readableBytes)
                firstECN = Self.ecn(of: datagram)
                firstDatagram = datagram
            }
            let total = merged!.2
            // `--strict_segments`: one line, one segment.
            if total >= length || payload.readableBytes == 0 || header.flags.contains(.fin) || header.flags.contains(.syn)
                || self.header.strictSegments {
                return merged.map { ($0.0, $0.1, $0.2, firstECN, firstDatagram) }
            }
        }
    }

    /// The next segment of the socket under test (`SocketUnderTest`); segments of other
    /// connections are passed over, as packetdrill's sniffer passes them over.
    private func takeOutbound(until giveUp: Instant) throws -> (Instant, ByteBuffer)? {
        collect()
        while true {
            while outbound.isEmpty {
                guard let deadline = stackStorage?.nextDeadline, deadline <= giveUp else { return nil }
                try advance(to: deadline)
            }
            let next = outbound.removeFirst()
            if let (header, _) = decode(next.datagram), !underTest.owns(header) { continue }
            return next
        }
    }

    private func checkPayloadIsZero(_ payload: ByteBuffer) throws {
        if payload.readableBytesView.contains(where: { $0 != 0 }) {
            throw failure("the stack sent payload octets the application did not write (scripts write zeros)")
        }
    }

    /// What differs between a `>` line and the segment sent, or nil.
    func mismatch(_ packet: ScriptPacket, _ header: TCPHeader, payloadLength: Int, datagram: ByteBuffer? = nil) -> String? {
        let ourBase = iss ?? 0
        let ignored: TCPFlags = profile.checksPush ? [] : .psh
        if header.flags.subtracting(ignored) != packet.flags.subtracting(ignored) { return "flags \(Self.flagText(header.flags)) instead of \(Self.flagText(packet.flags))" }
        let sequence = header.sequenceNumber.rawValue &- ourBase
        if !packet.anySequence, sequence != packet.start { return "sequence number \(sequence) instead of \(packet.start)" }
        if payloadLength != packet.length { return "payload length \(payloadLength) instead of \(packet.length)" }
        let acknowledgment = header.acknowledgmentNumber.rawValue &- (header.flags.contains(.syn) ? 0 : remoteBase)
        if let expected = packet.acknowledgment {
            if acknowledgment != expected { return "ack \(acknowledgment) instead of \(expected)" }
        } else if !header.flags.contains(.ack), acknowledgment != 0 {
            return "ack field \(acknowledgment) on a segment without ACK (expected 0)"
        }
        if let window = packet.window, header.window != window { return "window \(header.window) instead of \(window)" }
        if let urgent = packet.urgentPointer, header.urgentPointer != urgent { return "urgent pointer \(header.urgentPointer) instead of \(urgent)" }
        return optionsMismatch(packet.options, header.options, sent: datagram.flatMap(Self.rawOptions))
    }

    /// The options of a datagram's TCP header as written on the wire, NOP and EOL included (after an
    /// EOL, every padding octet reads as another EOL, as packetdrill's `<…,eol,eol>` spells it).
    static func rawOptions(of datagram: ByteBuffer) -> [ScriptOption]? {
        guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: false) else { return nil }
        let tcp = ip.payload
        let start = tcp.readerIndex
        guard let offsetByte = tcp.getInteger(at: start + 12, as: UInt8.self) else { return nil }
        let end = start + Int(offsetByte >> 4) * 4
        var at = start + 20
        var list: [ScriptOption] = []
        while at < end, let kind = tcp.getInteger(at: at, as: UInt8.self) {
            if kind == 0 || kind == 1 {
                list.append(kind == 0 ? .eol : .nop)
                at += 1
                continue
            }
            guard let length = tcp.getInteger(at: at + 1, as: UInt8.self), length >= 2, at + Int(length) <= end else { return nil }
            func word(_ offset: Int) -> UInt32 { tcp.getInteger(at: at + offset, as: UInt32.self) ?? 0 }
            switch (kind, length) {
            case (2, 4): list.append(.mss(tcp.getInteger(at: at + 2, as: UInt16.self) ?? 0))
            case (3, 3): list.append(.windowScale(tcp.getInteger(at: at + 2, as: UInt8.self) ?? 0))
            case (4, 2): list.append(.sackPermitted)
            case (8, 10): list.append(.timestamp(value: word(2), echo: word(6)))
            case (5, _):
                list.append(.sack((0..<(Int(length) - 2) / 8).map { (word(2 + 8 * $0), word(6 + 8 * $0)) }))
            case (34, _), (254, _):
                list.append(rawFastOpenOption(kind: kind, bytes: (2..<Int(length)).map { tcp.getInteger(at: at + $0, as: UInt8.self) ?? 0 }))
            default: list.append(.other("kind \(kind)"))
            }
            at += Int(length)
        }
        return list
    }

    private func optionsMismatch(_ written: ScriptPacket.OptionList, _ actual: TCPOptions, sent wire: [ScriptOption]? = nil) -> String? {
        let ourBase = iss ?? 0
        let sent = wire ?? Self.wireOrder(actual)
        var expected: [ScriptOption]
        switch written {
        case .unchecked:
            recordTimestamp(written: nil, actual: actual)
            return nil
        case .none: expected = []
        case .list(let list): expected = list.map(normalisedOption)
        }

        // Map the stack's values into script space before comparing: SACK blocks count from the
        // peer's ISN (zero here), TS val through the offset the first TS val fixed.
        var writtenTS: UInt32?
        // `--tcp_ts_tick_usecs=T`: TS val is checked, within the tolerance counted in ticks
        // (packetdrill's `|live − script| × T ≤ tolerance`).
        let tick = header.timestampTickMicroseconds
        let allowedTicks = tick.map { UInt32(clamping: tolerance(for: now).nanoseconds / 1000 / max($0, 1)) }
        for (index, option) in expected.enumerated() {
            if case .timestamp(let value, _) = option { writtenTS = value; expected[index] = .timestamp(value: value, echo: 0) }
        }
        recordTimestamp(written: writtenTS, actual: actual)
        let normalisedSent: [ScriptOption] = sent.map { option in
            switch option {
            case .timestamp(let value, _):
                let mapped = value &- (timestampOffset ?? 0)
                let tsValue: UInt32
                if let allowedTicks, let writtenTS {
                    let distance = min(mapped &- writtenTS, writtenTS &- mapped)
                    tsValue = distance <= allowedTicks ? writtenTS : mapped
                } else {
                    tsValue = writtenTS ?? mapped
                }
                return .timestamp(value: tsValue, echo: 0)
            case .sack(let blocks): return .sack(blocks.map { ($0.0 &- remoteBase, $0.1 &- remoteBase) })
            default: return option
            }
        }
        _ = ourBase
        let matches: Bool
        switch profile.optionComparison {
        case .exact: matches = normalisedSent == expected
        case .unordered:
            let strip: ([ScriptOption]) -> [ScriptOption] = { $0.filter { $0 != .nop && $0 != .eol } }
            let a = strip(normalisedSent), b = strip(expected)
            matches = a.count == b.count && a.allSatisfy { option in b.contains(option) }
        }
        if matches { return nil }
        return "options <\(Self.optionText(normalisedSent))> instead of <\(Self.optionText(expected))>"
    }

    /// Fixes the TS offset from the first outbound TS val, and remembers script→live values for `ecr`.
    private func recordTimestamp(written: UInt32?, actual: TCPOptions) {
        guard let live = actual.timestamps?.value else { return }
        if let written {
            if timestampOffset == nil { timestampOffset = live &- written }
            liveTimestamps[written] = live
        }
    }

    /// The options as the stack wrote them, in its wire order (`TCPOptions.write`): Linux's layout.
    static func wireOrder(_ options: TCPOptions) -> [ScriptOption] {
        var list: [ScriptOption] = []
        if let mss = options.maximumSegmentSize { list.append(.mss(mss)) }
        if let timestamps = options.timestamps {
            list += options.sackPermitted ? [.sackPermitted] : [.nop, .nop]
            list.append(.timestamp(value: timestamps.value, echo: timestamps.echoReply))
        } else if options.sackPermitted {
            list += [.nop, .nop, .sackPermitted]
        }
        if let shift = options.windowScale { list += [.nop, .windowScale(shift)] }
        if !options.sackBlocks.isEmpty {
            list += [.nop, .nop, .sack(options.sackBlocks.map { ($0.start.rawValue, $0.end.rawValue) })]
        }
        return list
    }

    // MARK: Notation

    static func flagText(_ flags: TCPFlags) -> String {
        var text = ""
        if flags.contains(.syn) { text += "S" }
        if flags.contains(.fin) { text += "F" }
        if flags.contains(.rst) { text += "R" }
        if flags.contains(.psh) { text += "P" }
        if flags.contains(.urg) { text += "U" }
        if flags.contains(.ece) { text += "E" }
        if flags.contains(.cwr) { text += "W" }
        if flags.contains(.ack) { text += "." }
        return text.isEmpty ? "-" : text
    }

    static func optionText(_ options: [ScriptOption]) -> String {
        options.map { option in
            switch option {
            case .nop: "nop"
            case .eol: "eol"
            case .mss(let value): "mss \(value)"
            case .windowScale(let value): "wscale \(value)"
            case .sackPermitted: "sackOK"
            case .sack(let blocks): "sack " + blocks.map { "\($0.0):\($0.1)" }.joined(separator: " ")
            case .timestamp(let value, let echo): "TS val \(value) ecr \(echo)"
            case .md5(let text): "md5 \(text)"
            case .other(let text): text
            }
        }.joined(separator: ",")
    }

    /// A live segment in the script's notation and numbering.
    func describe(_ header: TCPHeader, payloadLength: Int, outbound: Bool, wire: [ScriptOption]? = nil) -> String {
        let ourBase = iss ?? 0
        let start = outbound ? header.sequenceNumber.rawValue &- ourBase : header.sequenceNumber.rawValue &- (header.flags.contains(.syn) ? 0 : remoteBase)
        var text = "\(Self.flagText(header.flags)) \(start):\(start &+ UInt32(payloadLength))(\(payloadLength))"
        if header.flags.contains(.ack) {
            let ack = outbound ? header.acknowledgmentNumber.rawValue &- (header.flags.contains(.syn) ? 0 : remoteBase)
                : header.acknowledgmentNumber.rawValue &- ourBase
            text += " ack \(ack)"
        }
        text += " win \(header.window)"
        var options = wire ?? Self.wireOrder(header.options)
        if outbound {
            options = options.map { option in
                if case .timestamp(let value, let echo) = option { return .timestamp(value: value &- (timestampOffset ?? 0), echo: echo) }
                return option
            }
        } else {
            // An inbound SACK block counts from our ISS, as the script wrote it.
            options = options.map { option in
                if case .sack(let blocks) = option { return .sack(blocks.map { ($0.0 &- ourBase, $0.1 &- ourBase) }) }
                return option
            }
        }
        if !options.isEmpty { text += " <\(Self.optionText(options))>" }
        return text
    }

    func lineText(_ packet: ScriptPacket) -> String {
        let information = packet.ipInformation.map { "[\($0)] " }.joined()
        var text = "\(packet.direction == .inbound ? "<" : ">") \(information)\(Self.flagText(packet.flags)) \(packet.start):\(packet.end)(\(packet.length))"
        if let ack = packet.acknowledgment { text += " ack \(ack)" }
        if let window = packet.window { text += " win \(window)" }
        switch packet.options {
        case .none: break
        case .unchecked: text += " <...>"
        case .list(let list): text += " <\(Self.optionText(list))>"
        }
        return text
    }
}
