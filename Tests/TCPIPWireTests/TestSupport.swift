import NIOCore
import TCPIPWire

/// SplitMix64: a seeded stand-in for `TCPIP.SeededGenerator`, which this test target cannot import
/// (TCPIPWire sits below TCPIP). Fixed seeds make every random test reproducible.
struct WireTestGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension ByteBuffer {
    /// The readable bytes, for comparing against hand-written bytes.
    var bytes: [UInt8] { Array(readableBytesView) }
}

/// Bytes as big-endian words, for building packets by hand.
func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
func be32(_ value: UInt32) -> [UInt8] { be16(UInt16(value >> 16)) + be16(UInt16(value & 0xFFFF)) }

/// RFC 1071's definition, one 16-bit word at a time: the reference the fast checksum is checked against.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index < bytes.count {
        let high = UInt32(bytes[index]) << 8
        let low = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
        sum += high | low
        sum = (sum & 0xFFFF) + (sum >> 16)
        index += 2
    }
    return ~UInt16(sum)
}

let v4Source = IPAddress.v4(IPv4Address(198, 18, 0, 1))
let v4Destination = IPAddress.v4(IPv4Address(198, 18, 0, 2))
let v6Source = IPAddress("2001:db8::1")!
let v6Destination = IPAddress("2001:db8::2")!

/// A TCP segment built byte by byte, with a correct checksum for `source` and `destination` unless told.
func rawTCPSegment(
    flags: UInt8 = 0x10, options: [UInt8] = [], dataOffsetWords: Int? = nil, payload: [UInt8] = [],
    source: IPAddress = v4Source, destination: IPAddress = v4Destination, correctChecksum: Bool = true
) -> ByteBuffer {
    let dataOffset = dataOffsetWords ?? (20 + options.count + 3) / 4
    var paddedOptions = options
    while (20 + paddedOptions.count) % 4 != 0 { paddedOptions.append(0) }
    var bytes = be16(40000) + be16(80) + be32(0xFFFF_FF00) + be32(0x1234_5678)
    bytes += [UInt8(dataOffset << 4), flags] + be16(1000) + be16(0) + be16(0)
    bytes += paddedOptions + payload
    var sum = InternetChecksum()
    sum.addPseudoHeader(source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
                        upperLayerLength: bytes.count)
    bytes.withUnsafeBytes { sum.add($0) }
    let checksum = correctChecksum ? sum.checksum : ~sum.checksum
    bytes[16] = UInt8(checksum >> 8)
    bytes[17] = UInt8(checksum & 0xFF)
    return ByteBuffer(bytes: bytes)
}

/// A 20-octet IPv4 header (or longer with `options`) in front of `payload`, checksum correct.
func rawIPv4(
    ihl: Int? = nil, totalLength: Int? = nil, flagsAndOffset: UInt16 = 0x4000, protocolNumber: UInt8 = 6,
    options: [UInt8] = [], payload: [UInt8] = [], padding: Int = 0, version: UInt8 = 4
) -> ByteBuffer {
    let headerWords = ihl ?? (20 + options.count) / 4
    let total = totalLength ?? 20 + options.count + payload.count
    var header = [version << 4 | UInt8(headerWords & 0x0F), 0] + be16(UInt16(total))
    header += be16(0x1C46) + be16(flagsAndOffset)
    header += [64, protocolNumber] + be16(0) + [198, 18, 0, 1] + [198, 18, 0, 2] + options
    let checksum = referenceChecksum(header)
    header[10] = UInt8(checksum >> 8)
    header[11] = UInt8(checksum & 0xFF)
    return ByteBuffer(bytes: header + payload + [UInt8](repeating: 0xEE, count: padding))
}

/// A 40-octet IPv6 header from 2001:db8::1 to 2001:db8::2 in front of `rest`.
func rawIPv6(nextHeader: UInt8, rest: [UInt8], payloadLength: Int? = nil) -> ByteBuffer {
    var bytes: [UInt8] = [0x60, 0x00, 0x00, 0x00] + be16(UInt16(payloadLength ?? rest.count)) + [nextHeader, 64]
    bytes += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
    bytes += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
    return ByteBuffer(bytes: bytes + rest)
}

/// An IPv6 extension header: next header, length in 8-octet units beyond the first, then filler.
func extensionHeader(next: UInt8, units: UInt8 = 0, segmentsLeft: UInt8 = 0) -> [UInt8] {
    var bytes: [UInt8] = [next, units, 0, segmentsLeft]
    bytes += [UInt8](repeating: 0, count: (Int(units) + 1) * 8 - 4)
    return bytes
}
