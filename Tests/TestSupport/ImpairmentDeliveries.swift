import NIOCore
import TCPIP
import TCPIPWire

/// What an impairment did to a run of numbered datagrams, as the agreement tests of the one
/// impairment model (`ImpairmentProcess`) compare it: an `impair` rule's decisions here, a
/// `FaultInjector`'s or an `Impairer`'s in the suites that check those against them.
public enum ImpairmentDeliveries {
    /// 300 datagrams of 200 octets.
    public static let count = 300

    /// Datagram `index`, numbered in its first two octets.
    public static func datagram(_ index: Int) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt16(index))
        bytes.writeBytes((2..<200).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) })
        return bytes
    }

    /// A delivered datagram: when, its number, its bytes.
    public struct Delivery: Hashable, Comparable, Sendable {
        public var time: Int64
        public var index: Int
        public var bytes: [UInt8]

        public init(time: Int64, index: Int, bytes: [UInt8]) {
            self.time = time
            self.index = index
            self.bytes = bytes
        }

        public static func < (a: Delivery, b: Delivery) -> Bool {
            if a.time != b.time { return a.time < b.time }
            if a.index != b.index { return a.index < b.index }
            return a.bytes.lexicographicallyPrecedes(b.bytes)
        }
    }

    /// Every datagram at time zero, intact: what no impairment delivers.
    public static var unimpaired: [Delivery] {
        (0..<count).map { Delivery(time: 0, index: $0, bytes: Array(datagram($0).readableBytesView)) }
    }

    /// What an `impair` rule (`statement`) decides for the datagrams, all arriving at time zero, as
    /// sorted deliveries; nil when the rule's verdict is not `impair`.
    public static func throughRule(_ statement: String, seed: UInt64) throws -> [Delivery]? {
        var filter = try PacketFilter(FilterRuleset(parsing: """
            table ip t { chain c { type filter hook prerouting priority 0; \(statement) } }
            """), seed: seed)
        var deliveries: [Delivery] = []
        for index in 0..<count {
            var packet = FilterPacket(
                source: .v4(IPv4Address(198, 18, 0, 1)), destination: .v4(IPv4Address(198, 18, 2, 1)), protocolNumber: 17, length: 200)
            guard case .impair(let decision) = filter.evaluate(&packet, hook: .prerouting, now: .zero) else { return nil }
            if decision.lost { continue }
            var bytes = datagram(index)
            if let bit = decision.corruptBit { ImpairmentProcess.flip(bit, in: &bytes) }
            let delivered = Array(bytes.readableBytesView)
            if decision.duplicate { deliveries.append(Delivery(time: decision.duplicateDelay.nanoseconds, index: index, bytes: delivered)) }
            deliveries.append(Delivery(time: decision.delay.nanoseconds, index: index, bytes: delivered))
        }
        return deliveries.sorted()
    }
}
