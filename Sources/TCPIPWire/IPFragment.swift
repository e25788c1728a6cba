import NIOCore

/// What makes a datagram a fragment (RFC 791 §3.2, RFC 8200 §4.5): the fields a reassembler needs,
/// from the IPv4 header or the IPv6 Fragment header, and where the fragmentable bytes begin.
public struct IPFragmentInfo: Hashable, Sendable {
    // Stored narrow: every datagram the input path parses carries an optional one (12 octets, not 40).
    @usableFromInline var storedOffset: UInt16
    @usableFromInline var storedHeaderLength: UInt16
    @usableFromInline var storedNextHeaderField: UInt16
    /// The MF flag (IPv4) or M flag (IPv6): more fragments follow this one.
    public var moreFragments: Bool
    /// IPv4's 16-bit Identification (widened) or IPv6's 32-bit one.
    public var identification: UInt32

    /// Where this fragment's bytes go in the reassembled payload, in octets (a multiple of 8).
    @inlinable
    public var offset: Int { Int(storedOffset) }
    /// Octets in front of the fragment's payload in the datagram as received: the IPv4 header with its
    /// options, or the IPv6 header, the extension headers before the Fragment header, and the
    /// Fragment header itself.
    @inlinable
    public var headerLength: Int { Int(storedHeaderLength) }
    /// IPv6: the offset of the octet that names the Fragment header (the fixed header's Next Header,
    /// 6, or the first octet of the extension header in front of it), which reassembly rewrites.
    /// IPv4: the protocol field, 9.
    @inlinable
    public var nextHeaderField: Int { Int(storedNextHeaderField) }

    /// - Precondition: `offset`, `headerLength` and `nextHeaderField` fit in 16 bits (as they do on the wire).
    public init(identification: UInt32, offset: Int, moreFragments: Bool, headerLength: Int, nextHeaderField: Int) {
        self.identification = identification
        self.storedOffset = UInt16(offset)
        self.moreFragments = moreFragments
        self.storedHeaderLength = UInt16(headerLength)
        self.storedNextHeaderField = UInt16(nextHeaderField)
    }

    /// RFC 6946 §2: an IPv6 Fragment header with offset 0 and M clear — the datagram is whole.
    /// (An IPv4 datagram with both is no fragment and never gets an `IPFragmentInfo`.)
    @inlinable
    public var isAtomic: Bool { offset == 0 && !moreFragments }

    /// One past the last payload octet this fragment carries, for a payload of `length` octets.
    @inlinable
    public func end(length: Int) -> Int { offset + length }
}

/// The IPv6 Fragment header of RFC 8200 §4.5, as a value.
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
///     |                         Identification                        |
public struct IPv6FragmentHeader: Hashable, Sendable {
    /// Octets of the fragment header.
    public static let length = 8

    /// The header that follows in the reassembled datagram (`IPProtocolNumber`).
    public var nextHeader: UInt8
    /// In octets (the header carries it in 8-octet units): a multiple of 8, at most 65,528.
    public var offset: Int
    /// The M flag: more fragments follow this one.
    public var moreFragments: Bool
    /// The same for every fragment of one datagram (RFC 8200 §4.5).
    public var identification: UInt32

    /// A fragment header with these fields (each as the property of the same name); `offset` must be a multiple
    /// of 8, at most 65,528.
    public init(nextHeader: UInt8, offset: Int, moreFragments: Bool, identification: UInt32) {
        precondition(offset >= 0 && offset <= 0xFFF8 && offset % 8 == 0, "fragment offset \(offset)")
        self.nextHeader = nextHeader
        self.offset = offset
        self.moreFragments = moreFragments
        self.identification = identification
    }

    /// Reads the header `offset` octets past `buffer`'s reader index; the caller has checked that
    /// eight octets are there. The reserved bits are ignored on receipt (RFC 8200 §4.5).
    public init(_ buffer: borrowing ByteBuffer, at offset: Int) {
        nextHeader = buffer.wireUInt8(at: offset)
        let offsetAndFlags = buffer.wireUInt16(at: offset + 2)
        self.offset = Int(offsetAndFlags & 0xFFF8)
        moreFragments = offsetAndFlags & 1 != 0
        identification = buffer.wireUInt32(at: offset + 4)
    }

    /// The header's eight octets, reserved fields zero.
    public var bytes: [UInt8] {
        let offsetAndFlags = UInt16(offset) | (moreFragments ? 1 : 0)
        return [nextHeader, 0, UInt8(offsetAndFlags >> 8), UInt8(offsetAndFlags & 0xFF),
                UInt8(identification >> 24), UInt8((identification >> 16) & 0xFF),
                UInt8((identification >> 8) & 0xFF), UInt8(identification & 0xFF)]
    }
}
