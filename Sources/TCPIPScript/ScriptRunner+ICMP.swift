import NIOCore
import TCPIP
import TCPIPWire

/// An inbound ICMP or ICMPv6 line, packetdrill's form:
///
///     < icmp unreachable frag_needed mtu 1280 [1:1461(1460)]
///     < icmp unreachable port_unreachable [0:0(0)]
///     < icmp6 packet_too_big mtu 1280 [1:1441(1440)]
///
/// The bracket is the TCP segment of ours the error quotes, in our sequence numbers (from our ISS);
/// without it, the segment at our ISS.
struct ScriptICMP: Equatable {
    var explicitlyIPv6: Bool
    var typeName: String
    var code: UInt8
    var mtu: UInt32
    var quotedStart: UInt32
    var quotedLength: Int
    /// The line wrote `[start:end(length)]`.
    var quotedRangeWritten = false

    /// Parses the words of a non-TCP packet line; nil when it is no ICMP line this runner plays.
    init?(_ text: String) {
        // The lexer's tokens come joined by spaces: take the punctuation apart and read words.
        var words: [String] = []
        var word = ""
        for character in text {
            if character == " " || "[]():".contains(character) {
                if !word.isEmpty { words.append(word) }
                word = ""
                if "[]():".contains(character) { words.append(String(character)) }
            } else {
                word.append(character)
            }
        }
        if !word.isEmpty { words.append(word) }
        guard let first = words.first, first == "icmp" || first == "icmp6", words.count >= 2 else { return nil }
        var index = 1
        func next() -> String? {
            guard index < words.count else { return nil }
            defer { index += 1 }
            return words[index]
        }
        let typeName = next()!
        var code: UInt8 = 0
        var mtu: UInt32 = 0
        var start: UInt32 = 0
        var length = 0
        while let token = next() {
            switch token {
            case "mtu":
                guard let value = next().flatMap({ UInt32($0) }) else { return nil }
                mtu = value
            case "[":
                // start : end ( length ) ]
                guard let s = next().flatMap({ UInt32($0) }), next() == ":", next().flatMap({ UInt32($0) }) != nil,
                      next() == "(", let l = next().flatMap({ Int($0) }), next() == ")", next() == "]"
                else { return nil }
                start = s
                length = l
                quotedRangeWritten = true
            default:
                guard let value = Self.codes[token] else { return nil }
                code = value
            }
        }
        self.explicitlyIPv6 = first == "icmp6" || typeName == "packet_too_big"
        guard Self.v4Types[typeName] != nil || Self.v6Types[typeName] != nil else { return nil }
        self.typeName = typeName
        self.code = code
        self.mtu = mtu
        self.quotedStart = start
        self.quotedLength = length
    }

    /// The ICMP type and code for the script's family: packetdrill writes ICMPv6 lines as `icmp` in
    /// IPv6 scripts too (`icmp6` says so explicitly); nil when the type has no equivalent.
    func typeAndCode(ipv6: Bool) -> (type: UInt8, code: UInt8)? {
        guard ipv6 else {
            guard !explicitlyIPv6, let type = Self.v4Types[typeName] else { return nil }
            return (type, code)
        }
        guard let type = Self.v6Types[typeName] else { return nil }
        return (type, Self.codeNames[code].flatMap { Self.v6Codes[$0] } ?? code)
    }

    static let v4Types: [String: UInt8] = [
        "unreachable": 3, "destination_unreachable": 3, "source_quench": 4, "time_exceeded": 11, "parameter_problem": 12,
    ]
    static let v6Types: [String: UInt8] = [
        "unreachable": 1, "destination_unreachable": 1, "packet_too_big": 2, "time_exceeded": 3, "parameter_problem": 4,
    ]

    /// packetdrill's names of RFC 792's unreachable codes (and ICMPv6's, mapped below).
    static let codes: [String: UInt8] = [
        "net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2, "port_unreachable": 3,
        "frag_needed": 4, "source_route_failed": 5, "net_unknown": 6, "host_unknown": 7, "source_host_isolated": 8,
        "net_prohibited": 9, "host_prohibited": 10, "net_unreachable_for_tos": 11, "host_unreachable_for_tos": 12,
        "packet_filtered": 13, "precedence_violation": 14, "precedence_cutoff": 15,
        "no_route": 100, "admin_prohibited": 101, "address_unreachable": 103, "unrecognized_next_header": 104,
    ]
    static let codeNames: [UInt8: String] = Dictionary(uniqueKeysWithValues: codes.map { ($0.value, $0.key) })
    /// RFC 4443 §3.1 / §3.4 codes for the names that differ between the families.
    static let v6Codes: [String: UInt8] = [
        "no_route": 0, "net_unreachable": 0, "admin_prohibited": 1, "net_prohibited": 1, "host_prohibited": 1,
        "address_unreachable": 3, "host_unreachable": 3, "port_unreachable": 4, "unrecognized_next_header": 1,
    ]
}

extension ScriptRunner {
    /// Plays an inbound ICMP line: an error from the peer's address quoting our segment (its IP
    /// header and first 8 TCP octets, RFC 792) at `quotedStart` from our ISS.
    func injectICMP(_ icmp: ScriptICMP, line: String) throws {
        let sequence = (iss ?? 0) &+ icmp.quotedStart
        // Without a written range, the quote says the length of our segment at that sequence number,
        // as a router quotes the datagram it could not forward (the stack checks a too-big error's
        // MTU against it, RFC 1191 §5).
        var quotedLength = icmp.quotedLength
        if !icmp.quotedRangeWritten, let last = lastOutboundSegment, last.sequence == sequence { quotedLength = last.payload }
        var quote = ByteBufferAllocator().buffer(capacity: 64)
        quote.writeBytes([UInt8](repeating: 0, count: 40))
        quote.moveReaderIndex(forwardBy: 40)
        quote.writeInteger(localPort)
        quote.writeInteger(remotePort)
        quote.writeInteger(sequence)
        let datagram: ByteBuffer
        switch (localAddress, remoteAddress) {
        case (.v4(let local), .v4(let remote)):
            guard let (type, code) = icmp.typeAndCode(ipv6: false) else {
                throw ScriptSkip(reason: "ICMP line `\(line)` has no IPv4 form")
            }
            PacketBuffer.prependIPHeader(
                to: &quote, source: localAddress, destination: remoteAddress, protocolNumber: IPProtocolNumber.tcp,
                dontFragment: true)
            // The quoted header's length is the original datagram's, as routers quote it.
            quote.setInteger(UInt16(clamping: 40 + quotedLength), at: quote.readerIndex + 2)
            datagram = PacketBuffer.icmpv4Datagram(
                message: ICMPv4Message(type: type, code: code, restOfHeader: icmp.mtu & 0xFFFF),
                body: quote, source: remote, destination: local)
        case (.v6(let local), .v6(let remote)):
            guard let (type, code) = icmp.typeAndCode(ipv6: true) else {
                throw ScriptSkip(reason: "ICMP line `\(line)` has no IPv6 form")
            }
            PacketBuffer.prependIPHeader(
                to: &quote, source: localAddress, destination: remoteAddress, protocolNumber: IPProtocolNumber.tcp)
            quote.setInteger(UInt16(clamping: 20 + quotedLength), at: quote.readerIndex + 4)
            datagram = PacketBuffer.icmpv6Datagram(
                message: ICMPv6Message(type: type, code: code, restOfHeader: icmp.mtu),
                body: quote, source: remote, destination: local)
        default:
            throw ScriptSkip(reason: "mixed address families")
        }
        let written = line.replacingSpaces(around: ["[", "]", ":", "(", ")"])
        exchanged.append("\(format(now)) < \(written)")
        capture.append((now, datagram))
        stack.receive(datagram, now: now)
        collect()
        try completePending()
    }
}

extension String {
    /// `[ 1 : 1461 ( 1460 ) ]` as written: `[1:1461(1460)]`.
    fileprivate func replacingSpaces(around marks: [Character]) -> String {
        var result = ""
        for character in self {
            if character == " ", let last = result.last, marks.contains(last) && last != ")" { continue }
            if marks.contains(character), character != "[", result.last == " " { result.removeLast() }
            result.append(character)
        }
        return result
    }
}
