import NIOCore

/// The IPv4 header of RFC 791 §3.1, as a value.
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |Version|  IHL  |Type of Service|          Total Length         |
///     |         Identification        |Flags|      Fragment Offset    |
///     |  Time to Live |    Protocol   |         Header Checksum       |
///     |                       Source Address                          |
///     |                    Destination Address                        |
///     |                    Options                    |    Padding    |
///
/// Options are skipped on parse and never written: we send 20-octet headers only.
public struct IPv4Header: Hashable, Sendable {
    /// Octets of a header without options: the only length we send.
    public static let minimumLength = 20

    /// DSCP (high six bits) and ECN (low two bits), RFC 2474 / RFC 3168.
    public var typeOfService: UInt8
    /// Header and data, in octets.
    public var totalLength: UInt16
    /// Names the datagram its fragments belong to (RFC 791, RFC 6864).
    public var identification: UInt16
    /// The DF flag: routers must not fragment it (path MTU discovery, RFC 1191).
    public var dontFragment: Bool
    /// The MF flag: more fragments of the datagram follow this one.
    public var moreFragments: Bool
    /// In units of eight octets.
    public var fragmentOffset: UInt16
    /// Hops left: each router decrements it and drops the datagram at zero.
    public var timeToLive: UInt8
    /// The upper-layer protocol (`IPProtocolNumber`).
    public var protocolNumber: UInt8
    /// As parsed; `prepend(to:)` computes its own.
    public var headerChecksum: UInt16
    /// The source address.
    public var source: IPv4Address
    /// The destination address.
    public var destination: IPv4Address
    /// As parsed (20...60, options skipped); `prepend(to:)` always writes 20.
    public var headerLength: Int

    /// A header for a datagram of `payloadLength` octets after it, the other fields as the properties of the
    /// same name.
    public init(
        source: IPv4Address, destination: IPv4Address, protocolNumber: UInt8, payloadLength: Int,
        timeToLive: UInt8 = 64, identification: UInt16 = 0, dontFragment: Bool = true, typeOfService: UInt8 = 0
    ) {
        self.typeOfService = typeOfService
        self.totalLength = UInt16(truncatingIfNeeded: IPv4Header.minimumLength + payloadLength)
        self.identification = identification
        self.dontFragment = dontFragment
        self.moreFragments = false
        self.fragmentOffset = 0
        self.timeToLive = timeToLive
        self.protocolNumber = protocolNumber
        self.headerChecksum = 0
        self.source = source
        self.destination = destination
        self.headerLength = IPv4Header.minimumLength
    }

    /// Whether this datagram is a fragment of a larger one (RFC 791 §3.2: MF set or a nonzero offset).
    @inlinable
    public var isFragment: Bool { moreFragments || fragmentOffset != 0 }

    /// Parses the header at `datagram`'s reader index.
    ///
    /// Validates the version, the IHL, the total length (a buffer longer than the total length is fine:
    /// link padding), and the header checksum when `verifyChecksum`.
    public static func parse(_ datagram: ByteBuffer, verifyChecksum: Bool = true) throws(WireError) -> IPv4Header {
        try parse(FixedFields(datagram), of: datagram, verifyChecksum: verifyChecksum)
    }

    /// The 20 octets every IPv4 header has, read through one pointer: one access to the buffer
    /// instead of one per field. Octets beyond the readable bytes read as zero.
    struct FixedFields {
        var versionAndIHL: UInt8, typeOfService: UInt8, totalLength: UInt16, identification: UInt16
        var flagsAndOffset: UInt16, timeToLive: UInt8, protocolNumber: UInt8, checksum: UInt16
        var source: UInt32, destination: UInt32

        init(_ datagram: borrowing ByteBuffer) {
            self = datagram.withWireReader { reader in FixedFields(reader) }
        }

        init(_ reader: WireReader) {
            versionAndIHL = reader.wireUInt8(at: 0)
            typeOfService = reader.wireUInt8(at: 1)
            totalLength = reader.wireUInt16(at: 2)
            identification = reader.wireUInt16(at: 4)
            flagsAndOffset = reader.wireUInt16(at: 6)
            timeToLive = reader.wireUInt8(at: 8)
            protocolNumber = reader.wireUInt8(at: 9)
            checksum = reader.wireUInt16(at: 10)
            source = reader.wireUInt32(at: 12)
            destination = reader.wireUInt32(at: 16)
        }

        /// The 20 octets as one sum of big-endian words (unfolded), for the header checksum.
        var wordSum: UInt64 {
            UInt64(UInt16(versionAndIHL) << 8 | UInt16(typeOfService)) &+ UInt64(totalLength)
                &+ UInt64(identification) &+ UInt64(flagsAndOffset)
                &+ UInt64(UInt16(timeToLive) << 8 | UInt16(protocolNumber)) &+ UInt64(checksum)
                &+ UInt64(source) &+ UInt64(destination)
        }
    }

    /// `parse` with the fixed fields already read from `datagram`.
    static func parse(_ fixed: FixedFields, of datagram: ByteBuffer, verifyChecksum: Bool) throws(WireError) -> IPv4Header {
        let available = datagram.readableBytes
        guard available >= minimumLength else { throw .truncated }
        let versionAndIHL = fixed.versionAndIHL
        guard versionAndIHL >> 4 == 4 else { throw .unsupportedVersion }
        let headerLength = Int(versionAndIHL & 0x0F) * 4
        guard headerLength >= minimumLength, headerLength <= available else { throw .badHeaderLength }
        let totalLength = fixed.totalLength
        guard Int(totalLength) >= headerLength, Int(totalLength) <= available else { throw .badTotalLength }
        if verifyChecksum {
            var sum = InternetChecksum()
            if headerLength == minimumLength {
                // RFC 1071: a header without options is all in `fixed`, so its words are summed from
                // there instead of through a second opening of the buffer (a dynamic exclusivity
                // check, 76 instructions, on every datagram received).
                sum.addWords(fixed.wordSum)
            } else {
                datagram.addToChecksum(&sum, offset: 0, length: headerLength)
            }
            guard sum.checksum == 0 else { throw .badChecksum }
        }
        let flagsAndOffset = fixed.flagsAndOffset
        var header = IPv4Header(
            source: IPv4Address(rawValue: fixed.source),
            destination: IPv4Address(rawValue: fixed.destination),
            protocolNumber: fixed.protocolNumber,
            payloadLength: 0,
            timeToLive: fixed.timeToLive,
            identification: fixed.identification,
            dontFragment: flagsAndOffset & 0x4000 != 0,
            typeOfService: fixed.typeOfService
        )
        header.totalLength = totalLength
        header.moreFragments = flagsAndOffset & 0x2000 != 0
        header.fragmentOffset = flagsAndOffset & 0x1FFF
        header.headerChecksum = fixed.checksum
        header.headerLength = headerLength
        return header
    }

    /// Writes a 20-octet header into the headroom in front of `buffer`'s readable bytes and moves the reader
    /// index back over it. The total length covers header and readable bytes; the checksum is computed.
    ///
    /// - Precondition: `buffer.readerIndex >= 20`, and the datagram fits in 65535 octets.
    public func prepend(to buffer: inout ByteBuffer) {
        let length = IPv4Header.minimumLength
        precondition(buffer.readerIndex >= length, "no headroom for an IPv4 header")
        let total = length + buffer.readableBytes
        precondition(total <= Int(UInt16.max), "IPv4 datagram of \(total) octets")
        buffer.prependWire(length: length) { header in
            write(to: header, totalLength: total)
        }
    }

    /// The header's 20 octets, checksum computed, into `header`, for a datagram of `total` octets.
    @inline(__always)
    func write(to header: WireWriter, totalLength total: Int) {
        let flagsAndOffset = (dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0) | (fragmentOffset & 0x1FFF)

        // Sum the header words directly rather than reading them back from memory.
        let words: (UInt16, UInt16, UInt16, UInt16, UInt16) = (
            0x4500 | UInt16(typeOfService), UInt16(total), identification, flagsAndOffset,
            UInt16(timeToLive) << 8 | UInt16(protocolNumber)
        )
        var sum = InternetChecksum()
        sum.addWords(UInt64(words.0) &+ UInt64(words.1) &+ UInt64(words.2) &+ UInt64(words.3)
            &+ UInt64(words.4) &+ UInt64(source.rawValue) &+ UInt64(destination.rawValue))

        // Five words behind one bounds check.
        header.store(
            UInt32(words.0) << 16 | UInt32(words.1), UInt32(words.2) << 16 | UInt32(words.3),
            UInt32(words.4) << 16 | UInt32(sum.checksum), source.rawValue, destination.rawValue, at: 0)
    }
}
