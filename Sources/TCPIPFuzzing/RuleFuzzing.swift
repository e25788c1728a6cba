import NIOCore
import TCPIP
import TCPIPWire

/// The rule language as libFuzzer sees it: text in, a ruleset or a positioned error out, never a
/// trap. A ruleset that parses must list and parse back to itself, and load into a `PacketFilter`
/// (or be refused with a typed error) that then judges a few datagrams.
public enum RuleFuzzing {
    public static func rules(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        let ruleset: FilterRuleset
        do {
            ruleset = try FilterRuleset(parsing: text)
        } catch {
            precondition(error.line >= 1 && error.column >= 1, "an error without a position: \(error)")
            return
        }
        let listed = ruleset.listing()
        guard let again = try? FilterRuleset(parsing: listed) else {
            preconditionFailure("a listing does not parse:\n\(listed)")
        }
        precondition(again == ruleset, "a listing parses to another ruleset:\n\(listed)")
        guard var filter = try? PacketFilter(ruleset) else { return }
        for var packet in samples {
            for hook in FilterHook.allCases {
                _ = filter.evaluate(&packet, hook: hook, now: Instant(nanoseconds: 1_000_000))
            }
        }
        _ = filter.listing()
    }

    /// A SYN over IPv4 and IPv6, a UDP datagram, an echo request.
    static let samples: [FilterPacket] = {
        var result: [FilterPacket] = []
        for (source, destination) in [(IPAddress("198.18.0.1")!, IPAddress("198.18.1.1")!), (IPAddress("2001:db8::1")!, IPAddress("2001:db8::2")!)] {
            var buffer = PacketBuffer.make(payloadCapacity: 0)
            TCPHeader(sourcePort: 40000, destinationPort: 22, sequenceNumber: SequenceNumber(1), acknowledgmentNumber: SequenceNumber(0),
                      flags: .syn, window: 65535).prepend(to: &buffer, source: source, destination: destination)
            prependIP(source, destination, IPProtocolNumber.tcp, &buffer)
            if let datagram = try? IPDatagram.parse(buffer) { result.append(FilterPacket(datagram, inputLink: "tun0")) }
        }
        var udp = PacketBuffer.make(payloadCapacity: 8)
        udp.writeBytes([0x14, 0xE9, 0, 53, 0, 8, 0, 0])
        prependIP(IPAddress("198.18.0.1")!, IPAddress("198.18.1.1")!, IPProtocolNumber.udp, &udp)
        if let datagram = try? IPDatagram.parse(udp) { result.append(FilterPacket(datagram)) }
        var echo = PacketBuffer.make(payloadCapacity: 8)
        echo.writeBytes([8, 0, 0, 0, 0, 7, 0, 1])
        prependIP(IPAddress("198.18.0.1")!, IPAddress("198.18.1.1")!, IPProtocolNumber.icmp, &echo)
        if let datagram = try? IPDatagram.parse(echo) { result.append(FilterPacket(datagram)) }
        return result
    }()

    static func prependIP(_ source: IPAddress, _ destination: IPAddress, _ protocolNumber: UInt8, _ buffer: inout ByteBuffer) {
        switch (source, destination) {
        case (.v4(let s), .v4(let d)):
            IPv4Header(source: s, destination: d, protocolNumber: protocolNumber, payloadLength: buffer.readableBytes).prepend(to: &buffer)
        case (.v6(let s), .v6(let d)):
            IPv6Header(source: s, destination: d, nextHeader: protocolNumber, payloadLength: buffer.readableBytes).prepend(to: &buffer)
        default:
            return
        }
    }

    /// Seeds: rulesets that use every construct, and broken ones.
    static let seeds: [(String, String)] = [
        ("example", """
            table inet filter {
                set blocked { type ipv4_addr; flags interval; elements = { 198.18.5.0/24 } }
                chain input { type filter hook input priority 0; policy accept; tcp dport 22 ct state new limit rate 10/second accept; ip saddr @blocked drop; }
            }
            """),
        ("constructs", """
            flush ruleset
            table inet t {
                set svc { type inet_service; elements = { 22, 8000-8080 } }
                set six { type ipv6_addr; flags interval; elements = { 2001:db8::/32 } }
                chain input {
                    type filter hook input priority filter; policy drop;
                    ct state established,related accept
                    ct state invalid drop
                    iifname "tun*" tcp flags & (syn | ack) == syn tcp dport @svc meter m size 64 { ip saddr limit rate 3/second } accept
                    ip6 saddr @six icmpv6 type { echo-request, nd-neighbor-solicit } accept
                    icmp type echo-request limit rate over 5/minute burst 2 packets drop
                    meta l4proto { tcp, udp } meta length > 1400 log prefix "big " jump big
                    udp dport != 1024-65535 reject with icmpx admin-prohibited
                    tcp flags syn,!ack reject with tcp reset
                    numgen random mod 100 < 5 impair loss 1% delay 25ms jitter 5ms
                    meta l4proto tcp impair duplicate 1% reorder 10% corrupt 0.1% rate 10mbit queue 50
                }
                chain big { ip saddr 198.18.0.0/15 return; goto sink }
                chain sink { drop }
            }
            """),
        ("error-position", "table ip t {\n  chain c {\n    tcp dport 99999 accept\n  }\n}"),
        ("error-loop", "table ip t { chain a { jump b } chain b { goto a } }"),
    ]
}
