import NIOCore

/// The TCP header of RFC 9293 §3.1, as a value.
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |          Source Port          |       Destination Port        |
///     |                        Sequence Number                        |
///     |                    Acknowledgment Number                      |
///     |  DOff |  Rsrvd  |W|C|R|C|S|S|Y|I|            Window           |
///     |           Checksum            |         Urgent Pointer        |
///     |                           [Options]                           |
///
/// Parsing normalises: SYN+FIN is rejected, the window scale is clamped to 14, unknown options are dropped.
public struct TCPHeader: Hashable, Sendable {
    /// Octets of a header without options.
    public static let minimumLength = 20

    /// The sender's port.
    public var sourcePort: UInt16
    /// The receiver's port.
    public var destinationPort: UInt16
    /// The sequence number of the segment's first octet (of the SYN, on a SYN).
    public var sequenceNumber: SequenceNumber
    /// The next sequence number the sender expects from the receiver, when `flags` has ACK.
    public var acknowledgmentNumber: SequenceNumber
    /// The control bits.
    public var flags: TCPFlags
    /// The window field as sent: not yet shifted by the window scale.
    public var window: UInt16
    /// As parsed; `prepend(to:source:destination:computeChecksum:)` computes its own.
    public var checksum: UInt16
    /// The urgent pointer (RFC 9293 §3.8.5), meaningful with URG; we send 0.
    public var urgentPointer: UInt16
    /// The options the header carries.
    public var options: TCPOptions

    /// A header with these fields (each as the property of the same name); the checksum is computed when it is
    /// written.
    public init(
        sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: SequenceNumber,
        acknowledgmentNumber: SequenceNumber, flags: TCPFlags, window: UInt16, options: TCPOptions = TCPOptions()
    ) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.checksum = 0
        self.urgentPointer = 0
        self.options = options
    }

    /// Octets of header this value encodes to: 20 plus the options, at most 60.
    @inlinable
    public var encodedLength: Int { TCPHeader.minimumLength + options.encodedLength }

    /// Parses a TCP segment: `segment`'s readable bytes are exactly header and payload (`IPDatagram.payload`).
    ///
    /// Verifies the checksum over the pseudo-header, header and payload when `verifyChecksum`.
    /// - Returns: the header and the payload: `segment` itself, its reader index moved past the header
    ///   (`consuming`: no slice, so no second reference to the storage; a caller that keeps its
    ///   buffer passes a copy).
    ///
    /// - Parameters:
    ///   - segment: the TCP header and payload, nothing else.
    ///   - source: the IP source address, for the pseudo-header.
    ///   - destination: the IP destination address, for the pseudo-header.
    ///   - verifyChecksum: `false` when the link already verified it (checksum offload).
    ///   - acceptsSYNWithFIN: a SYN with FIN set parses (FreeBSD with net.inet.tcp.drop_synfin=0)
    ///     instead of throwing `.invalidFlags` (Linux).
    public static func parse(
        _ segment: consuming ByteBuffer, source: IPAddress, destination: IPAddress, verifyChecksum: Bool = true,
        acceptsSYNWithFIN: Bool = false
    ) throws(WireError) -> (header: TCPHeader, payload: ByteBuffer) {
        let available = segment.readableBytes
        guard available >= minimumLength else { throw .truncated }
        // The fixed fields through one pointer: one access to the buffer instead of one per field,
        // and the checksum, when verified, summed through the same one (each opening of a SwiftNIO
        // buffer's storage is a dynamic exclusivity check, 76 instructions).
        let fixed = segment.withWireReader { reader in
            (checksumIsValid: !verifyChecksum || checksumIsValid(reader.bytes, source: source, destination: destination),
             sourcePort: reader.wireUInt16(at: 0), destinationPort: reader.wireUInt16(at: 2),
             sequence: reader.wireUInt32(at: 4), acknowledgment: reader.wireUInt32(at: 8),
             offset: reader.wireUInt8(at: 12), flags: reader.wireUInt8(at: 13), window: reader.wireUInt16(at: 14),
             checksum: reader.wireUInt16(at: 16), urgentPointer: reader.wireUInt16(at: 18),
             // The first option words, for the two layouts read below without the option walk
             // (zero past the end).
             option0: reader.wireUInt32(at: 20), option1: reader.wireUInt32(at: 24),
             option2: reader.wireUInt32(at: 28), option3: reader.wireUInt32(at: 32),
             option4: reader.wireUInt32(at: 36))
        }
        let headerLength = Int(fixed.offset >> 4) * 4
        guard headerLength >= minimumLength, headerLength <= available else { throw .badDataOffset }
        guard fixed.checksumIsValid else { throw .badChecksum }
        let flags = TCPFlags(rawValue: fixed.flags)
        // Linux drops SYN+FIN outright (tcp_rcv_state_process); no state has a use for it. FreeBSD
        // (drop_synfin=0) lets it through: the SYN is processed first, and the FIN counts in the
        // sequence space an RST for a closed port acknowledges.
        guard acceptsSYNWithFIN || !flags.isSuperset(of: [.syn, .fin]) else { throw .invalidFlags }
        let options: TCPOptions
        if headerLength == minimumLength + 12 && fixed.option0 == TCPOptions.alignedTimestampsWord {
            // NOP, NOP, TS: what nearly every segment of a connection with timestamps carries (RFC 7323
            // Appendix A's layout), read in the same pass as the header instead of option by option, as
            // Linux's tcp_parse_aligned_timestamp does.
            options = TCPOptions(timestamps: TCPTimestamps(value: fixed.option1, echoReply: fixed.option2))
        } else if headerLength == minimumLength + 20, fixed.option0 >> 16 == TCPOptions.synLayoutWords.0,
                  fixed.option1 == TCPOptions.synLayoutWords.1, fixed.option4 >> 8 == TCPOptions.synLayoutWords.2 {
            // MSS, SACK permitted, timestamps, NOP, window scale: the SYN and SYN-ACK that Linux and
            // this stack send, read with the header too (the walk took 320 instructions, and an
            // opening of the buffer of its own).
            options = TCPOptions(
                maximumSegmentSize: UInt16(truncatingIfNeeded: fixed.option0),
                windowScale: min(UInt8(truncatingIfNeeded: fixed.option4), TCPOptions.maximumWindowScale),
                sackPermitted: true, timestamps: TCPTimestamps(value: fixed.option2, echoReply: fixed.option3))
        } else {
            options = try TCPOptions.parse(segment, offset: minimumLength, length: headerLength - minimumLength)
        }
        var header = TCPHeader(
            sourcePort: fixed.sourcePort,
            destinationPort: fixed.destinationPort,
            sequenceNumber: SequenceNumber(fixed.sequence),
            acknowledgmentNumber: SequenceNumber(fixed.acknowledgment),
            flags: flags,
            window: fixed.window,
            options: options
        )
        header.checksum = fixed.checksum
        header.urgentPointer = fixed.urgentPointer
        segment.moveReaderIndex(forwardBy: headerLength)
        return (header, segment)
    }

    /// Whether `segment` (header and payload) sums to zero with its pseudo-header: out of line, so
    /// that a parse without verification (checksum offload) does not carry it.
    @inline(never)
    static func checksumIsValid(_ segment: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress) -> Bool {
        var sum = InternetChecksum()
        sum.addPseudoHeader(
            source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
            upperLayerLength: segment.count
        )
        sum.add(segment)
        return sum.checksum == 0
    }

    /// Writes header and options into the headroom in front of `buffer`'s readable bytes (the payload) and
    /// moves the reader index back over them.
    ///
    /// Computes the checksum over pseudo-header, header and payload when `computeChecksum`; otherwise leaves
    /// 0 there, for links that offload checksums.
    /// - Precondition: `buffer.readerIndex >= encodedLength`.
    public func prepend(
        to buffer: inout ByteBuffer, source: IPAddress, destination: IPAddress, computeChecksum: Bool = true
    ) {
        let length = encodedLength
        precondition(buffer.readerIndex >= length, "no headroom for a TCP header of \(length) octets")
        let start = buffer.readerIndex - length
        buffer.prependWire(length: length) { header in
            write(to: header, length: length)
        }
        if computeChecksum {
            var sum = InternetChecksum()
            sum.addPseudoHeader(
                source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
                upperLayerLength: buffer.readableBytes
            )
            sum.add(buffer)
            buffer.setInteger(sum.checksum, at: start + 16, endianness: .big)
        }
    }

    /// `prepend`, then `IPv4Header.prepend` of a header from `source` to `destination`, in one
    /// opening of the buffer instead of two:
    /// each opening of a SwiftNIO buffer's storage is a dynamic exclusivity check (76 instructions),
    /// and this is the send path of every IPv4 segment. The checksum, when computed, is summed over
    /// the same opening.
    ///
    /// - Precondition: `buffer.readerIndex >= encodedLength + 20`, and the datagram fits in 65535 octets.
    public func prependWithIPv4(
        to buffer: inout ByteBuffer, source: IPv4Address, destination: IPv4Address, timeToLive: UInt8 = 64,
        typeOfService: UInt8 = 0, computeChecksum: Bool = true
    ) {
        let tcpLength = encodedLength
        let ipLength = IPv4Header.minimumLength
        precondition(buffer.readerIndex >= tcpLength + ipLength, "no headroom for TCP and IPv4 headers")
        let segmentLength = tcpLength + buffer.readableBytes
        let total = ipLength + segmentLength
        precondition(total <= Int(UInt16.max), "IPv4 datagram of \(total) octets")
        let ip = IPv4Header(
            source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
            payloadLength: segmentLength, timeToLive: timeToLive, typeOfService: typeOfService)
        buffer.moveReaderIndex(to: buffer.readerIndex - tcpLength - ipLength)
        buffer.withUnsafeMutableReadableBytes { bytes in
            ip.write(to: WireWriter(bytes: UnsafeMutableRawBufferPointer(rebasing: bytes[0..<ipLength])), totalLength: total)
            let segment = UnsafeMutableRawBufferPointer(rebasing: bytes[ipLength...])
            let header = WireWriter(bytes: UnsafeMutableRawBufferPointer(rebasing: segment[0..<tcpLength]))
            write(to: header, length: tcpLength)
            if computeChecksum {
                var sum = InternetChecksum()
                sum.addPseudoHeader(
                    source: .v4(ip.source), destination: .v4(ip.destination), protocolNumber: IPProtocolNumber.tcp,
                    upperLayerLength: segmentLength)
                sum.add(UnsafeRawBufferPointer(segment))
                header.store(sum.checksum, at: 16)
            }
        }
    }

    /// The header's octets, checksum zero, into `header` (`length` is `encodedLength`).
    @inline(__always)
    func write(to header: WireWriter, length: Int) {
        // Five words behind one bounds check, the checksum (zero) in the high half of the last.
        header.store(
            UInt32(sourcePort) << 16 | UInt32(destinationPort), sequenceNumber.rawValue, acknowledgmentNumber.rawValue,
            UInt32(length / 4) << 28 | UInt32(flags.rawValue) << 16 | UInt32(window), UInt32(urgentPointer), at: 0)
        let written = options.write(to: header, at: TCPHeader.minimumLength)
        assert(written == length - TCPHeader.minimumLength)
    }
}
