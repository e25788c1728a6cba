import NIOCore
import TCPIP

/// Hand-built IPv4/TCP datagrams for link tests, independent of the Wire target. Shared by the
/// link and simulation test targets.
public enum TestDatagram {
    /// An IPv4 datagram carrying a TCP segment, with valid IP and TCP checksums.
    ///
    /// - Parameters:
    ///   - flags: the TCP flag byte (0x02 SYN, 0x10 ACK, 0x12 SYN+ACK, 0x18 PSH+ACK).
    public static func ipv4TCP(
        source: (UInt8, UInt8, UInt8, UInt8) = (198, 18, 0, 1),
        destination: (UInt8, UInt8, UInt8, UInt8) = (198, 18, 0, 2),
        sourcePort: UInt16 = 41_234,
        destinationPort: UInt16 = 5_001,
        sequence: UInt32 = 0xFFFF_FF00,
        acknowledgment: UInt32 = 0,
        flags: UInt8 = 0x02,
        identification: UInt16 = 1,
        payload: [UInt8] = []
    ) -> ByteBuffer {
        let sourceBytes = [source.0, source.1, source.2, source.3]
        let destinationBytes = [destination.0, destination.1, destination.2, destination.3]
        let tcpLength = 20 + payload.count

        var tcp: [UInt8] = []
        tcp += bigEndian(sourcePort) + bigEndian(destinationPort)
        tcp += bigEndian(sequence) + bigEndian(acknowledgment)
        tcp += [5 << 4, flags] + bigEndian(UInt16(65_535)) + [0, 0] + [0, 0]
        tcp += payload
        let pseudoHeader = sourceBytes + destinationBytes + [0, 6] + bigEndian(UInt16(tcpLength))
        let tcpChecksum = internetChecksum(pseudoHeader + tcp)
        tcp[16] = UInt8(tcpChecksum >> 8)
        tcp[17] = UInt8(tcpChecksum & 0xFF)

        var ip: [UInt8] = [0x45, 0]
        ip += bigEndian(UInt16(20 + tcpLength)) + bigEndian(identification)
        ip += [0x40, 0, 64, 6, 0, 0]
        ip += sourceBytes + destinationBytes
        let ipChecksum = internetChecksum(ip)
        ip[10] = UInt8(ipChecksum >> 8)
        ip[11] = UInt8(ipChecksum & 0xFF)

        var buffer = ByteBufferAllocator().buffer(capacity: ip.count + tcp.count)
        buffer.writeBytes(ip + tcp)
        return buffer
    }

    /// A datagram of `size` bytes whose first eight bytes hold `number`, to follow it through a link.
    public static func numbered(_ number: UInt64, size: Int = 64) -> ByteBuffer {
        precondition(size >= 8)
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        buffer.writeInteger(number)
        buffer.writeRepeatingByte(UInt8(truncatingIfNeeded: number), count: size - 8)
        return buffer
    }

    public static func number(of packet: ByteBuffer) -> UInt64? {
        packet.getInteger(at: packet.readerIndex, as: UInt64.self)
    }

    /// RFC 1071: the 16-bit one's complement of the one's complement sum.
    public static func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count {
            sum += UInt32(bytes[index]) << 8
        }
        while sum > 0xFFFF {
            sum = (sum & 0xFFFF) + (sum >> 16)
        }
        return ~UInt16(sum)
    }

    private static func bigEndian(_ value: UInt16) -> [UInt8] {
        [UInt8(value >> 8), UInt8(value & 0xFF)]
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}

extension Instant {
    public static func milliseconds(_ value: Int64) -> Instant { .zero + .milliseconds(value) }
    public static func microseconds(_ value: Int64) -> Instant { .zero + .microseconds(value) }
}
