import NIOCore
@testable import TCPIP
import TCPIPWire

/// Whole datagrams with a recognisable payload, to fragment and put back together.
enum FragmentFixtures {
    static let peer4 = IPv4Address(198, 18, 0, 2)
    static let local4 = IPv4Address(198, 18, 0, 1)
    static let peer6 = IPv6Address("2001:db8::2")!
    static let local6 = IPv6Address("2001:db8::1")!

    /// `count` octets that differ from those of any other offset or seed nearby.
    static func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 7 &+ $0 / 251 &+ seed &* 13) % 251) }
    }

    /// An IPv4 datagram from the peer to us, DF clear, identification `identification`.
    static func ipv4(
        payload: [UInt8], protocolNumber: UInt8 = IPProtocolNumber.udp, identification: UInt16 = 0xBEEF,
        source: IPv4Address = peer4, ecn: ECNCodepoint = .notECT
    ) -> ByteBuffer {
        var buffer = PacketBuffer.make(payloadCapacity: payload.count)
        buffer.writeBytes(payload)
        IPv4Header(source: source, destination: local4, protocolNumber: protocolNumber, payloadLength: payload.count,
                   identification: identification, dontFragment: false, typeOfService: ecn.rawValue).prepend(to: &buffer)
        return buffer
    }

    /// An IPv6 datagram from the peer to us with 8-octet extension headers of the given kinds in
    /// front of the upper layer (options headers with one PadN, routing headers with no segments left).
    static func ipv6(
        payload: [UInt8], nextHeader: UInt8 = IPProtocolNumber.udp, extensionHeaders: [UInt8] = [],
        source: IPv6Address = peer6, ecn: ECNCodepoint = .notECT
    ) -> ByteBuffer {
        var chain: [UInt8] = []
        for (index, kind) in extensionHeaders.enumerated() {
            let next = index + 1 < extensionHeaders.count ? extensionHeaders[index + 1] : nextHeader
            chain += kind == IPProtocolNumber.routing ? [next, 0, 0, 0, 0, 0, 0, 0] : [next, 0, 1, 4, 0, 0, 0, 0]
        }
        var buffer = PacketBuffer.make(payloadCapacity: chain.count + payload.count)
        buffer.writeBytes(chain + payload)
        var header = IPv6Header(source: source, destination: local6, nextHeader: extensionHeaders.first ?? nextHeader,
                                payloadLength: chain.count + payload.count)
        header.trafficClass = ecn.rawValue
        header.prepend(to: &buffer)
        return buffer
    }

    /// A datagram with its IPv4 DF flag cleared (TCP sets it), header checksum recomputed.
    static func clearingDontFragment(_ datagram: ByteBuffer) -> ByteBuffer {
        var copy = ByteBufferAllocator().buffer(capacity: datagram.readableBytes)
        copy.writeImmutableBuffer(datagram)
        guard copy.getInteger(at: 0, as: UInt8.self).map({ $0 >> 4 }) == 4 else { return copy }
        let flags = copy.getInteger(at: 6, as: UInt16.self)! & ~0x4000
        copy.setInteger(flags, at: 6)
        copy.setInteger(UInt16(0), at: 10)
        let headerLength = Int(copy.getInteger(at: 0, as: UInt8.self)! & 0x0F) * 4
        var sum = InternetChecksum()
        copy.withUnsafeReadableBytes { sum.add(UnsafeRawBufferPointer(rebasing: $0[0..<headerLength])) }
        copy.setInteger(sum.checksum, at: 10)
        return copy
    }

    /// The reassembler's outcome for one datagram off the wire, as `Stack.receive` would hand it over.
    static func feed(
        _ reassembly: inout FragmentReassembly, _ datagram: ByteBuffer, now: Instant, counters: inout StackCounters
    ) throws -> FragmentReassembly.Outcome {
        let ip = try IPDatagram.parse(datagram, verifyChecksum: true, keepingFragments: true)
        return reassembly.insert(ip, now: now, counters: &counters)
    }
}

extension FragmentReassembly.Outcome {
    var completed: ByteBuffer? {
        if case .complete(let whole) = self { return whole }
        return nil
    }

    var isIncomplete: Bool {
        if case .incomplete = self { return true }
        return false
    }

    var isDropped: Bool {
        if case .dropped = self { return true }
        return false
    }
}
