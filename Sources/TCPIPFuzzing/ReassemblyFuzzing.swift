import NIOCore
import TCPIP
import TCPIPWire

/// Fragment reassembly as libFuzzer sees it: a fuzz input is a sequence of events — forged
/// fragments with any offset, flag and length, raw datagrams, time steps, and real datagrams cut by
/// `IPFragmentation` and delivered shuffled and duplicated — played against a `Stack` with a small
/// reassembly memory limit. After every event the table stays within its limit; every real datagram
/// is reassembled exactly once; and once its timers have run out, the table is empty.
///
/// Input format, one event after another until the bytes run out:
///
///     op % 4 == 0  forged fragment  family:u8, id:u8, offset:u16be (8-octet units), flags:u8, len:u16be,
///                                   then len octets (fewer if the input ends) — flags bit 0: more
///                                   fragments; bits 1-2: TCP, UDP, ICMP or 253
///     op % 4 == 1  raw datagram     len:u16be, then len octets handed to Stack.receive
///     op % 4 == 2  time step        step:u8 — the clock moves step² × 100 milliseconds
///     op % 4 == 3  real datagram    family:u8, size:u16be, mtu:u16be, order:u8 — a datagram of
///                                   `size % 20000` octets cut for `mtu`, delivered in an order
///                                   (and with duplicates) drawn from `order`
public enum ReassemblyFuzzing {
    public static let peerV4 = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    public static let localV4 = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    public static let peerV6 = IPAddress("2001:db8::1")!
    public static let localV6 = IPAddress("2001:db8::2")!
    public static let memoryLimit = 64 * 1024
    public static let maximumEvents = 512

    /// Plays `input` against a fresh stack. Never traps unless the reassembler has a bug.
    /// - Returns: the stack as the input left it (before the final expiry), for regression tests.
    @discardableResult
    public static func run(_ input: UnsafeRawBufferPointer) -> Stack {
        var configuration = StackConfiguration(addresses: [localV4, localV6], checksumOffload: true, seed: 18)
        configuration.fragments.memoryLimit = memoryLimit
        let stack = Stack(configuration)
        var reader = StackFuzzing.Reader(bytes: input)
        var now = Instant.zero + .seconds(1)
        var realIdentification: UInt32 = 0x1000
        var events = 0
        while events < maximumEvents, let op = reader.byte() {
            events += 1
            switch op % 4 {
            case 0:
                guard let family = reader.byte(), let id = reader.byte(), let offset = reader.uint16(),
                      let flags = reader.byte(), let length = reader.uint16() else { break }
                let count = min(Int(length), reader.bytes.count - reader.offset)
                let payload = Array(reader.bytes[reader.offset..<(reader.offset + count)])
                reader.offset += count
                let protocols = [IPProtocolNumber.tcp, IPProtocolNumber.udp, IPProtocolNumber.icmp, 253]
                stack.receive(fragment(ipv6: family & 1 != 0, identification: UInt32(id & 0x0F),
                                       offset: Int(offset & 0x1FFF) * 8, more: flags & 1 != 0,
                                       protocolNumber: protocols[Int(flags >> 1) & 3], payload: payload), now: now)
            case 1:
                guard let datagram = reader.datagram() else { break }
                stack.receive(datagram, now: now)
            case 2:
                guard let step = reader.byte() else { break }
                now = now + .milliseconds(Int64(step) * Int64(step) * 100)
                stack.advanceTime(to: now)
            default:
                guard let family = reader.byte(), let size = reader.uint16(), let mtu = reader.uint16(),
                      let order = reader.byte() else { break }
                realIdentification += 1
                deliverReal(to: stack, ipv6: family & 1 != 0, size: Int(size) % 20_000, mtu: Int(mtu),
                            order: order, identification: realIdentification, now: now)
            }
            while stack.nextPacketToSend() != nil {}
            let status = stack.reassemblyStatus
            precondition(status.pinnedBytes <= memoryLimit, "reassembly pins \(status.pinnedBytes) octets, beyond its limit")
            precondition((status.datagrams == 0) == (status.pinnedBytes == 0), "reassembly accounting out of step: \(status)")
        }
        // Every timer run out: nothing may be left behind.
        stack.advanceTime(to: now + .seconds(61))
        let status = stack.reassemblyStatus
        precondition(status.datagrams == 0 && status.pinnedBytes == 0, "reassembly left \(status) after its timeouts")
        return stack
    }

    /// A datagram of `size` octets cut for `mtu` (at most 64 fragments) and delivered shuffled, with
    /// duplicates, until it is whole: it must be reassembled exactly once.
    static func deliverReal(to stack: Stack, ipv6: Bool, size: Int, mtu requested: Int, order: UInt8, identification: UInt32, now: Instant) {
        let headers = ipv6 ? 48 : 20
        let mtu = max(requested % 9000, headers + size / 60 + 16, headers + 8)
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(order)) }
        var datagram = PacketBuffer.make(payloadCapacity: size)
        datagram.writeBytes(payload)
        switch ipv6 {
        case true:
            guard case .v6(let source) = peerV6, case .v6(let destination) = localV6 else { return }
            IPv6Header(source: source, destination: destination, nextHeader: 253, payloadLength: size).prepend(to: &datagram)
        case false:
            guard case .v4(let source) = peerV4, case .v4(let destination) = localV4 else { return }
            IPv4Header(source: source, destination: destination, protocolNumber: 253, payloadLength: size,
                       dontFragment: false).prepend(to: &datagram)
        }
        guard let fragments = try? IPFragmentation.fragment(datagram, mtu: mtu, identification: identification),
              fragments.count > 1 else { return }
        precondition(fragments.count <= 64, "\(fragments.count) fragments for \(size) octets at MTU \(mtu)")
        var random = SeededGenerator(seed: UInt64(order) &* 0x9E37_79B9 &+ UInt64(size))
        var arrivals = fragments + (0..<Int(order % 4)).map { _ in fragments[Int(random.next() % UInt64(fragments.count))] }
        arrivals.shuffle(using: &random)
        func refusals(_ counters: StackCounters) -> UInt64 {
            counters.ipReassemblyFailures + counters.ipFragmentsDropped + counters.ipFragmentOverlaps
        }
        let before = stack.counters.ipReassembled
        let refusedBefore = refusals(stack.counters)
        for arrival in arrivals {
            stack.receive(arrival, now: now)
            if stack.counters.ipReassembled != before { break }
        }
        // Unless a raw datagram of the input forged a fragment of this one first (and so it was
        // refused, counted), it is whole now, and only once.
        precondition(stack.counters.ipReassembled == before + 1 || refusals(stack.counters) != refusedBefore,
                     "a datagram of \(size) octets in \(fragments.count) fragments was not reassembled")
    }

    static func fragment(ipv6: Bool, identification: UInt32, offset: Int, more: Bool, protocolNumber: UInt8, payload: [UInt8]) -> ByteBuffer {
        var buffer = PacketBuffer.make(payloadCapacity: payload.count + 8)
        switch (ipv6, peerV4, localV4, peerV6, localV6) {
        case (false, .v4(let source), .v4(let destination), _, _):
            buffer.writeBytes(payload.prefix(65_515))
            var header = IPv4Header(source: source, destination: destination, protocolNumber: protocolNumber,
                                    payloadLength: buffer.readableBytes,
                                    identification: UInt16(identification), dontFragment: false)
            header.moreFragments = more
            header.fragmentOffset = UInt16(offset / 8)
            header.prepend(to: &buffer)
        case (true, _, _, .v6(let source), .v6(let destination)):
            buffer.writeBytes(IPv6FragmentHeader(nextHeader: protocolNumber, offset: offset, moreFragments: more,
                                                 identification: identification).bytes)
            buffer.writeBytes(payload.prefix(65_527))
            IPv6Header(source: source, destination: destination, nextHeader: IPProtocolNumber.fragment,
                       payloadLength: buffer.readableBytes).prepend(to: &buffer)
        default:
            break
        }
        return buffer
    }

    /// Seeds: each kind of event, and the attacks of `Tests/TCPIPTests/Hardening/FragmentFloodTests`.
    public static var seeds: [(String, [UInt8])] {
        func forged(_ family: UInt8, id: UInt8, offset: UInt16, more: Bool, protocolIndex: UInt8 = 1, length: Int) -> [UInt8] {
            [0, family, id, UInt8(offset >> 8), UInt8(offset & 0xFF), (more ? 1 : 0) | protocolIndex << 1,
             UInt8(length >> 8), UInt8(length & 0xFF)] + (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7) }
        }
        func real(_ family: UInt8, size: UInt16, mtu: UInt16, order: UInt8) -> [UInt8] {
            [3, family, UInt8(size >> 8), UInt8(size & 0xFF), UInt8(mtu >> 8), UInt8(mtu & 0xFF), order]
        }
        var seeds: [(String, [UInt8])] = []
        seeds.append(("real-v4", real(0, size: 3000, mtu: 576, order: 1) + real(0, size: 9000, mtu: 1500, order: 7)))
        seeds.append(("real-v6", real(1, size: 3000, mtu: 1280, order: 2) + real(1, size: 19_000, mtu: 1280, order: 3)))
        seeds.append(("in-order-v4", forged(0, id: 1, offset: 0, more: true, length: 24) + forged(0, id: 1, offset: 3, more: false, length: 10)))
        seeds.append(("in-order-v6", forged(1, id: 1, offset: 0, more: true, length: 24) + forged(1, id: 1, offset: 3, more: false, length: 10)))
        seeds.append(("overlap", forged(0, id: 2, offset: 0, more: true, length: 64) + forged(0, id: 2, offset: 4, more: false, length: 64)))
        seeds.append(("teardrop", forged(1, id: 2, offset: 0, more: true, length: 800) + forged(1, id: 2, offset: 3, more: false, length: 16)))
        let tinyFirst: [UInt8] = forged(0, id: 3, offset: 0, more: true, protocolIndex: 0, length: 8)
        seeds.append(("tiny-tcp", tinyFirst + forged(0, id: 3, offset: 1, more: true, protocolIndex: 0, length: 64)))
        seeds.append(("beyond-65535", forged(0, id: 4, offset: 0, more: true, length: 64) + forged(0, id: 4, offset: 8180, more: false, length: 200)))
        var many: [UInt8] = []
        for index in 0..<70 { many += forged(1, id: 5, offset: UInt16(index * 2), more: true, length: 16) }
        seeds.append(("many-fragments", many))
        var flood: [UInt8] = []
        for index in 0..<40 { flood += forged(UInt8(index % 2), id: UInt8(index), offset: UInt16(index * 100), more: true, length: 1000) }
        flood += [2, 60] + real(0, size: 5000, mtu: 1000, order: 9) + [2, 255]
        seeds.append(("flood-and-time", flood))
        return seeds
    }
}
