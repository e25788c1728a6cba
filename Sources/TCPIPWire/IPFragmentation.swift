import NIOCore

/// Why a datagram could not be cut into fragments.
public enum FragmentationError: Error, Hashable, Sendable {
    /// The datagram does not parse (or is itself an IPv6 fragment).
    case malformed(WireError)
    /// IPv4 with DF set: it may not be fragmented (RFC 791 §3.2); the caller owes "fragmentation needed".
    case dontFragment
    /// The MTU leaves no room for eight octets of data behind the headers.
    case mtuTooSmall
}

/// Fragmentation on output: RFC 791 §3.2's procedure for IPv4 and RFC 8200 §4.5's for IPv6.
///
///     IPv4:  [hdr|aaaaaaaa bbbbbbbb cc]  →  [hdr MF off 0|aaaaaaaa] [hdr' MF off 1|bbbbbbbb] [hdr' off 2|cc]
///     IPv6:  [unfrag|fragmentable]       →  [unfrag|FH off 0 M|part 1] [unfrag|FH off n M|part 2] … [unfrag|FH|last]
///
/// Every fragment but the last carries a multiple of eight octets. Each fragment is a new buffer (one
/// copy of the bytes); a datagram that fits the MTU comes back as it is.
public enum IPFragmentation {
    /// Cuts `datagram` (a whole IPv4 or IPv6 datagram at the reader index) into fragments of at most
    /// `mtu` octets each, in order of offset.
    ///
    /// - Parameters:
    ///   - datagram: the whole datagram, header first, at the reader index.
    ///   - mtu: the largest fragment, header included, in octets.
    ///   - identification: the datagram's Identification, unpredictable (RFC 7739); IPv4 takes its low 16 bits.
    ///   - allocator: allocates each fragment's buffer.
    /// - Throws: `.dontFragment` for IPv4 with DF set, `.mtuTooSmall`, `.malformed`.
    public static func fragment(
        _ datagram: ByteBuffer, mtu: Int, identification: UInt32, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(FragmentationError) -> [ByteBuffer] {
        guard let first = datagram.readableBytesView.first else { throw .malformed(.truncated) }
        switch first >> 4 {
        case 4: return try fragmentIPv4(datagram, mtu: mtu, identification: UInt16(truncatingIfNeeded: identification), allocator: allocator)
        case 6: return try fragmentIPv6(datagram, mtu: mtu, identification: identification, allocator: allocator)
        default: throw .malformed(.unsupportedVersion)
        }
    }

    // MARK: IPv4

    static func fragmentIPv4(
        _ datagram: ByteBuffer, mtu: Int, identification: UInt16, allocator: ByteBufferAllocator
    ) throws(FragmentationError) -> [ByteBuffer] {
        let header: IPv4Header
        do { header = try IPv4Header.parse(datagram, verifyChecksum: false) } catch { throw .malformed(error) }
        let total = Int(header.totalLength)
        guard total > mtu else { return [datagram.getSlice(at: datagram.readerIndex, length: total)!] }
        // RFC 791 §3.2: "If the Don't Fragment flag (DF) bit is set, then internet fragmentation of
        // this datagram is NOT permitted".
        guard !header.dontFragment else { throw .dontFragment }
        let headerBytes = Array(datagram.readableBytesView.prefix(header.headerLength))
        // RFC 791 §3.1 (Options): only options whose copied flag is set go into the later fragments.
        let laterHeaderBytes = copiedOptionsHeader(headerBytes)
        let dataLength = total - header.headerLength
        let baseOffset = Int(header.fragmentOffset) * 8
        guard header.headerLength + baseOffset + dataLength <= Int(UInt16.max) else { throw .malformed(.badTotalLength) }
        var fragments: [ByteBuffer] = []
        var position = 0
        while position < dataLength {
            let headerPart = position == 0 ? headerBytes : laterHeaderBytes
            // RFC 791 §3.2: NFB, the number of fragment blocks, is (MTU - IHL*4) / 8.
            let room = (mtu - headerPart.count) & ~7
            guard room >= 8 else { throw .mtuTooSmall }
            let length = min(room, dataLength - position)
            let last = position + length == dataLength
            var fragment = allocator.buffer(capacity: headerPart.count + length)
            fragment.writeBytes(headerPart)
            fragment.writeImmutableBuffer(
                datagram.getSlice(at: datagram.readerIndex + header.headerLength + position, length: length)!)
            let offsetUnits = UInt16((baseOffset + position) / 8)
            // The original MF stays on the last piece: a fragment may be fragmented again.
            let more = !last || header.moreFragments
            let flagsAndOffset = (more ? 0x2000 : 0) | (offsetUnits & 0x1FFF)
            fragment.setInteger(UInt16(headerPart.count + length), at: 2)
            fragment.setInteger(identification, at: 4)
            fragment.setInteger(flagsAndOffset, at: 6)
            fragment.setInteger(UInt16(0), at: 10)
            var sum = InternetChecksum()
            fragment.addToChecksum(&sum, offset: 0, length: headerPart.count)
            fragment.setInteger(sum.checksum, at: 10)
            fragments.append(fragment)
            position += length
        }
        return fragments
    }

    /// The header of every fragment after the first: the fixed 20 octets and the options whose copied
    /// flag (the type's high bit) is set, padded with End of Option List to a multiple of four.
    static func copiedOptionsHeader(_ header: [UInt8]) -> [UInt8] {
        var result = Array(header.prefix(IPv4Header.minimumLength))
        var index = IPv4Header.minimumLength
        while index < header.count {
            let type = header[index]
            if type == 0 { break }
            if type == 1 { index += 1; continue }
            guard index + 1 < header.count else { break }
            let length = Int(header[index + 1])
            guard length >= 2, index + length <= header.count else { break }
            if type & 0x80 != 0 { result += header[index..<(index + length)] }
            index += length
        }
        while result.count % 4 != 0 { result.append(0) }
        result[0] = 0x40 | UInt8(result.count / 4)
        return result
    }

    // MARK: IPv6

    static func fragmentIPv6(
        _ datagram: ByteBuffer, mtu: Int, identification: UInt32, allocator: ByteBufferAllocator
    ) throws(FragmentationError) -> [ByteBuffer] {
        let header: IPv6Header
        do { header = try IPv6Header.parse(datagram) } catch { throw .malformed(error) }
        let total = IPv6Header.length + Int(header.payloadLength)
        guard total > mtu else { return [datagram.getSlice(at: datagram.readerIndex, length: total)!] }
        // RFC 8200 §4.5: the Unfragmentable Part is the IPv6 header and the extension headers routers
        // process — up to and including the Routing header if present, else the Hop-by-Hop Options
        // header if present. `field` is the octet naming the first fragmentable header.
        var unfragmentable = IPv6Header.length
        var field = 6
        var offset = IPv6Header.length
        var next = header.nextHeader
        var candidateField = 6
        walk: while true {
            switch next {
            case IPProtocolNumber.hopByHop, IPProtocolNumber.routing, IPProtocolNumber.destinationOptions:
                guard total - offset >= 8 else { throw .malformed(.badExtensionHeader) }
                let length = (Int(datagram.wireUInt8(at: offset + 1)) + 1) * 8
                guard length <= total - offset else { throw .malformed(.badExtensionHeader) }
                let kind = next
                next = datagram.wireUInt8(at: offset)
                candidateField = offset
                offset += length
                if kind != IPProtocolNumber.destinationOptions {
                    unfragmentable = offset
                    field = candidateField
                }
            case IPProtocolNumber.fragment:
                throw .malformed(.badExtensionHeader)
            default:
                break walk
            }
        }
        let unfragmentableBytes = Array(datagram.readableBytesView.prefix(unfragmentable))
        let firstFragmentable = unfragmentableBytes[field]
        let fragmentableLength = total - unfragmentable
        let room = (mtu - unfragmentable - IPv6FragmentHeader.length) & ~7
        guard room >= 8 else { throw .mtuTooSmall }
        var fragments: [ByteBuffer] = []
        var position = 0
        while position < fragmentableLength {
            let length = min(room, fragmentableLength - position)
            let last = position + length == fragmentableLength
            let fragmentHeader = IPv6FragmentHeader(
                nextHeader: firstFragmentable, offset: position, moreFragments: !last, identification: identification)
            var fragment = allocator.buffer(capacity: unfragmentable + IPv6FragmentHeader.length + length)
            fragment.writeBytes(unfragmentableBytes)
            fragment.setInteger(IPProtocolNumber.fragment, at: field)
            fragment.setInteger(UInt16(unfragmentable - IPv6Header.length + IPv6FragmentHeader.length + length), at: 4)
            fragment.writeBytes(fragmentHeader.bytes)
            fragment.writeImmutableBuffer(
                datagram.getSlice(at: datagram.readerIndex + unfragmentable + position, length: length)!)
            fragments.append(fragment)
            position += length
        }
        return fragments
    }
}
