import NIOCore
import TCPIP
import TCPIPWire

/// The filter in a stack as libFuzzer sees it: hostile datagrams through a ruleset with chains at
/// every hook — matches of every kind, connection tracking, rate limits and meters, reject, log,
/// jumps, and impairment (delay with jitter, loss, duplicate, reorder, corrupt, a rate with a queue).
///
/// Input format, one event after another until the bytes run out (a short tail is ignored):
///
///     op % 4 == 0  datagram in        len:u16be, then len octets handed to Stack.receive (the link
///                                     vouches for the checksums when op ≥ 128)
///     op % 4 == 1  datagram forwarded len:u16be, then len octets handed to Stack.filterForward
///     op % 4 == 2  time step          step:u8 — the clock moves step² milliseconds and timers run
///     op % 4 == 3  our own traffic    call:u8 — a TCP connect, a UDP datagram or an abort, to the
///                                     peer's addresses, through output and postrouting
///
/// After every event the stack's output and the forwarded datagrams it released are drained. The
/// fixture is deterministic, so an input replays exactly.
public enum FilterFuzzing {
    public static let local4 = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    public static let local6 = IPAddress("2001:db8::2")!
    public static let peer4 = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    public static let peer6 = IPAddress("2001:db8::1")!
    /// Most events one input plays.
    public static let maximumEvents = 512

    public static let rules = """
        table inet fuzz {
            set blocked { type ipv4_addr; flags interval; elements = { 198.18.9.0/24, 198.19.0.0/16 } }
            chain pre {
                type filter hook prerouting priority -100; policy accept;
                ct state invalid counter drop
                ip saddr @blocked drop
                meta l4proto tcp impair delay 2ms jitter 1ms duplicate 5% reorder 5% corrupt 5%
            }
            chain in {
                type filter hook input priority 0; policy accept;
                ct state established,related accept
                tcp dport 81 reject with tcp reset
                udp dport 53 reject with icmpx admin-prohibited
                tcp flags syn meter per_source size 4 { ip saddr limit rate 3/second } jump checks
                tcp flags syn limit rate over 10/second drop
                icmp type echo-request numgen random mod 4 < 1 log prefix "echo "
                icmpv6 type echo-request limit rate 2/second accept
                meta length > 1400 drop
            }
            chain checks {
                tcp dport 1-1023 log
                iifname "fuzz*" return
                th dport 7 impair loss 20% rate 1mbit queue 4
            }
            chain out {
                type filter hook output priority 0; policy accept;
                tcp dport 82 reject with tcp reset
                udp dport 54 reject
                ct state new impair delay 1ms
            }
            chain fwd {
                type filter hook forward priority 0; policy drop;
                ct state established,related accept
                ip daddr 198.18.5.0/24 impair delay 3ms loss 10% duplicate 10% corrupt 10%
                ip6 daddr 2001:db8:5::/48 reject with icmpv6 no-route
            }
            chain post {
                type filter hook postrouting priority 0; policy accept;
                oifname "b" tcp flags rst drop
                impair rate 10mbit queue 16
            }
        }
        """

    public static func run(_ bytes: UnsafeRawBufferPointer) {
        var configuration = StackConfiguration(addresses: [local4, local6], seed: 3)
        configuration.rules = try! FilterRuleset(parsing: rules)
        configuration.filterConnectionLimit = 64
        configuration.linkName = "fuzz0"
        let stack = Stack(configuration)
        _ = try? stack.listen(on: 80)
        let udp = try? stack.bindUDP(port: 5353)
        var connections: [ConnectionID] = []
        var now = Instant.zero + .seconds(1)
        var offset = 0
        var events = 0

        func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }
        func datagram() -> ByteBuffer? {
            guard let high = byte(), let low = byte() else { return nil }
            let length = min(Int(high) << 8 | Int(low), bytes.count - offset)
            var buffer = PacketBuffer.make(payloadCapacity: length)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
            offset += length
            return buffer
        }
        func drain() {
            var count = 0
            while stack.nextPacketToSend() != nil { count += 1; precondition(count < 100_000, "output loops") }
            while stack.nextForwardedPacket() != nil { count += 1; precondition(count < 100_000, "forwarding loops") }
            precondition(stack.filterHeldCount <= Stack.filterHeldLimit, "held datagrams beyond the limit")
        }

        while events < maximumEvents, let op = byte() {
            events += 1
            switch op % 4 {
            case 0:
                guard let packet = datagram() else { return }
                stack.receive(packet, now: now, checksumVerified: op >= 128)
            case 1:
                guard let packet = datagram() else { return }
                _ = stack.filterForward(packet, inputLink: op >= 128 ? "a" : "fuzz1", outputLink: "b", now: now)
            case 2:
                guard let step = byte() else { return }
                now = now + .milliseconds(Int64(step) * Int64(step))
                stack.advanceTime(to: now)
            default:
                guard let call = byte() else { return }
                let peer = call & 1 == 0 ? peer4 : peer6
                let port = UInt16(call >> 2) % 4 + 80
                switch call >> 1 & 3 {
                case 0:
                    if let id = try? stack.connect(to: Endpoint(peer, port), now: now) { connections.append(id) }
                case 1:
                    if let udp { try? stack.send(udp, ByteBuffer(string: "fuzz"), to: Endpoint(peer, 50 + port % 8), now: now) }
                case 2:
                    if let id = connections.popLast() { stack.abort(id, now: now) }
                default:
                    now = now + .seconds(1)
                    stack.advanceTime(to: now)
                }
            }
            drain()
            while stack.nextEvent() != nil {}
        }
        // Every held datagram is released in time (releasing one may hold another, a little later).
        var turns = 0
        while stack.filterHeldCount > 0, let deadline = stack.nextDeadline {
            turns += 1
            precondition(turns < 100_000, "held datagrams never all released")
            now = max(now, deadline)
            stack.advanceTime(to: now)
            drain()
        }
        precondition(stack.filterHeldCount == 0, "held datagrams with no deadline to release them")
        _ = stack.filterListing()
    }
}
