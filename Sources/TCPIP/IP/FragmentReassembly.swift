import NIOCore
import TCPIPWire

/// Datagrams being put back together from their fragments (RFC 791 §3.2, RFC 815, RFC 8200 §4.5).
///
/// A datagram's fragments are kept as they arrived — slices of their buffers, sorted by offset, never
/// overlapping — until they cover `0..<length` with the last fragment in; then they are copied once,
/// behind the first fragment's headers, into one new buffer that goes through the input path as if
/// it had arrived whole. RFC 815's hole list is implicit: with disjoint pieces, the datagram is whole
/// when the octets received add up to its length.
///
/// Hostile input is bounded three ways: by `memoryLimit` (the storage the fragments' buffers pin,
/// oldest datagrams evicted first), by the timeout, and by the fragment count per datagram. Any
/// overlap abandons the whole datagram (RFC 5722; the same for IPv4, where RFC 791 would let the
/// later bytes win — the teardrop and the overlapping-header attacks of RFC 1858 §4).
struct FragmentReassembly {
    /// RFC 791 §3.2: "source, destination, protocol, and identification"; RFC 8200 §4.5: "Source
    /// Address, Destination Address, and Fragment Identification" (the protocol is 0 for IPv6).
    struct Key: Hashable {
        var source: IPAddress
        var destination: IPAddress
        var identification: UInt32
        var protocolNumber: UInt8
    }

    /// A fragment's bytes and where they go.
    struct Piece {
        var offset: Int
        var payload: ByteBuffer
        var end: Int { offset + payload.readableBytes }
    }

    /// One datagram being reassembled.
    struct Queue {
        var created: Instant
        var isIPv6: Bool
        /// Sorted by offset, pairwise disjoint.
        var pieces: [Piece] = []
        /// The payload's length, once the last fragment (MF or M clear) has arrived.
        var totalLength: Int?
        var receivedBytes = 0
        /// What this datagram counts against `memoryLimit`.
        var pinnedBytes = 0
        /// The headers of the offset-0 fragment as received: the IPv4 header, or the IPv6 header and
        /// extension headers through the Fragment header. A copy: the fragment's buffer may be
        /// replaced by a compact one.
        var firstHeaders: ByteBuffer?
        /// See `IPFragmentInfo.nextHeaderField`, of the offset-0 fragment.
        var nextHeaderField = 0
        /// One bit per ECN codepoint seen (RFC 3168 §5.3).
        var ecnSeen: UInt8 = 0
        /// The lists of datagrams in order of arrival, one per family (whose timeouts differ).
        var older: Key?
        var newer: Key?
    }

    /// What became of a fragment.
    enum Outcome {
        /// Kept; the datagram is not whole yet.
        case incomplete
        /// The datagram is whole: its headers and payload in one new buffer.
        case complete(ByteBuffer)
        /// Dropped (and with it, for most reasons, the datagram it belonged to).
        case dropped(Drop)
    }

    /// Why a fragment or a datagram was dropped: values, so that a flood of them formats no text
    /// unless the decision trace is on.
    enum Drop: Hashable {
        case notMultipleOfEight(length: Int)
        case beyondMaximumLength(end: Int)
        case tcpAtOffsetOne
        case tinyFirstFragment(length: Int, needed: Int)
        case overlap(offset: Int, end: Int, otherOffset: Int, otherEnd: Int)
        case conflictingEnd(end: Int, total: Int)
        case tooManyFragments(limit: Int)
        case memoryFull(pinned: Int)
        case missingHeaders
        case congestionMixedWithNotECT

        var rule: StaticString {
            switch self {
            case .notMultipleOfEight, .beyondMaximumLength, .tooManyFragments, .memoryFull: "RFC 8200 §4.5"
            case .tcpAtOffsetOne: "RFC 1858 §3.2"
            case .tinyFirstFragment: "RFC 3128 §3"
            case .overlap, .conflictingEnd: "RFC 5722 §4"
            case .missingHeaders: "RFC 791 §3.2"
            case .congestionMixedWithNotECT: "RFC 3168 §5.3"
            }
        }

        var description: String {
            switch self {
            case .notMultipleOfEight(let length): "fragment of \(length) octets with more to come: not a multiple of 8"
            case .beyondMaximumLength(let end): "fragment ending at \(end): datagram beyond 65,535 octets"
            case .tcpAtOffsetOne: "TCP fragment at offset 1 (8 octets)"
            case .tinyFirstFragment(let length, let needed): "first fragment of \(length) octets splits the \(needed)-octet transport header"
            case .overlap(let offset, let end, let otherOffset, let otherEnd):
                "fragment \(offset)..<\(end) overlaps \(otherOffset)..<\(otherEnd): datagram abandoned"
            case .conflictingEnd(let end, let total): "fragment ending at \(end) conflicts with the datagram's end \(total): datagram abandoned"
            case .tooManyFragments(let limit): "more than \(limit) fragments: datagram abandoned"
            case .memoryFull(let pinned): "reassembly memory full (\(pinned) octets)"
            case .missingHeaders: "reassembled datagram without its first fragment's headers"
            case .congestionMixedWithNotECT: "CE and Not-ECT fragments in one datagram"
            }
        }
    }

    /// Storage and bookkeeping a datagram costs beyond its fragments' buffers (the queue, its table
    /// entry, the copied headers) and a fragment beyond its buffer.
    static let queueOverheadBytes = 256
    static let pieceOverheadBytes = 64

    let configuration: FragmentReassemblyConfiguration
    private(set) var queues: [Key: Queue] = [:]
    /// The sum of the queues' `pinnedBytes`: what `memoryLimit` bounds.
    private(set) var pinnedBytes = 0
    /// Per family (0: IPv4, 1: IPv6), the oldest and newest datagram.
    private var oldest: [Key?] = [nil, nil]
    private var newest: [Key?] = [nil, nil]

    init(configuration: FragmentReassemblyConfiguration) {
        self.configuration = configuration
    }

    var count: Int { queues.count }

    func timeout(isIPv6: Bool) -> TimeAmount {
        isIPv6 ? configuration.ipv6Timeout : configuration.ipv4Timeout
    }

    /// When the oldest datagram of either family times out.
    var nextDeadline: Instant? {
        var deadline: Instant?
        for family in 0..<2 {
            guard let key = oldest[family], let queue = queues[key] else { continue }
            let due = queue.created + timeout(isIPv6: queue.isIPv6)
            deadline = deadline.map { min($0, due) } ?? due
        }
        return deadline
    }

    // MARK: A fragment arrives

    /// Adds one fragment (`datagram.fragment` set, not atomic), counting what happens.
    mutating func insert(_ datagram: consuming IPDatagram, now: Instant, counters: inout StackCounters) -> Outcome {
        guard let info = datagram.fragment else { preconditionFailure("not a fragment") }
        counters.ipReassemblyRequired &+= 1
        let isIPv6: Bool
        if case .v6 = datagram.header { isIPv6 = true } else { isIPv6 = false }
        let key = Key(
            source: datagram.source, destination: datagram.destination, identification: info.identification,
            protocolNumber: isIPv6 ? 0 : datagram.upperLayerProtocol)
        let protocolNumber = datagram.upperLayerProtocol
        let ecn = datagram.ecn
        var payload = datagram.takePayload()
        let length = payload.readableBytes
        let offset = info.offset
        let end = info.end(length: length)

        // RFC 8200 §4.5: a fragment that is not the last must carry a multiple of 8 octets (RFC 791's
        // offsets count in 8-octet units, so the same holds for IPv4). Nor may it be empty.
        if info.moreFragments && (length == 0 || length % 8 != 0) {
            counters.ipFragmentsDropped &+= 1
            return .dropped(.notMultipleOfEight(length: length))
        }
        // RFC 8200 §4.5 / RFC 791 §3.1: the reassembled datagram may not exceed 65,535 octets
        // (IPv6: its Payload Length). A chain that would is an attack (the "ping of death"): the
        // whole datagram goes.
        let allowance = isIPv6 ? info.headerLength - IPv6FragmentHeader.length - IPv6Header.length : info.headerLength
        if allowance + end > Int(UInt16.max) {
            counters.ipFragmentsDropped &+= 1
            abandon(key, counters: &counters)
            return .dropped(.beyondMaximumLength(end: end))
        }
        // RFC 1858 §3.2 and RFC 3128 §3: "if FO=1 and PROTOCOL=TCP then DROP PACKET" — it could only
        // overwrite the TCP flags — and a first fragment must hold the whole transport header
        // (RFC 7112 for IPv6), or it could hide the ports or flags in a later one.
        if offset == 8 && protocolNumber == IPProtocolNumber.tcp {
            counters.ipFragmentsDropped &+= 1
            abandon(key, counters: &counters)
            return .dropped(.tcpAtOffsetOne)
        }
        if offset == 0, let needed = Self.transportHeaderLength(protocolNumber, payload), length < needed {
            counters.ipFragmentsDropped &+= 1
            abandon(key, counters: &counters)
            return .dropped(.tinyFirstFragment(length: length, needed: needed))
        }

        let isNew = queues[key] == nil
        // (Bound in this scope only: a copy of the queue alive at the insertion below would make
        // its pieces array copy itself.)
        if let existing = queues[key] {
            // RFC 5722 §4: an overlapping fragment abandons the datagram; RFC 8200 §4.5 lets an exact
            // duplicate go alone instead (a network duplicates packets).
            if let duplicate = existing.pieces.first(where: { $0.offset == offset && $0.end == end }),
               duplicate.payload == payload, info.moreFragments || existing.totalLength == end {
                counters.ipFragmentDuplicates &+= 1
                return .incomplete
            }
            if let conflict = Self.conflict(existing, offset: offset, end: end, last: !info.moreFragments) {
                counters.ipFragmentOverlaps &+= 1
                abandon(key, counters: &counters)
                return .dropped(conflict)
            }
            guard existing.pieces.count < configuration.maximumFragmentsPerDatagram else {
                counters.ipFragmentsDropped &+= 1
                abandon(key, counters: &counters)
                return .dropped(.tooManyFragments(limit: configuration.maximumFragmentsPerDatagram))
            }
        }

        var firstHeaders: ByteBuffer?
        if offset == 0 {
            // The headers sit in front of the payload in the buffer it arrived in (`IPDatagram.parse`).
            // (ByteBuffer's getters read only readable bytes: the reader index is moved back over them.)
            var headers = ByteBufferAllocator().buffer(capacity: info.headerLength)
            if payload.readerIndex >= info.headerLength {
                var whole = payload
                whole.moveReaderIndex(to: payload.readerIndex - info.headerLength)
                headers.writeImmutableBuffer(whole.getSlice(at: whole.readerIndex, length: info.headerLength)!)
            }
            firstHeaders = headers
        }
        // A fragment pins its buffer's storage; one much larger than the fragment is copied out, so
        // that accounting by storage does not let small fragments of big buffers crowd out the rest.
        if payload.pinnedStorageBytes > 2 * length + Self.pieceOverheadBytes {
            var compact = ByteBufferAllocator().buffer(capacity: length)
            compact.writeImmutableBuffer(payload)
            payload = compact
        }
        let cost = payload.pinnedStorageBytes + Self.pieceOverheadBytes + (firstHeaders?.capacity ?? 0)
            + (isNew ? Self.queueOverheadBytes : 0)
        // Linux's ipfrag_high_thresh: make room by evicting the oldest datagrams. When the oldest is
        // this fragment's own, it goes instead.
        while pinnedBytes + cost > configuration.memoryLimit {
            guard let victim = oldestKey(), victim != key else {
                counters.ipFragmentsDropped &+= 1
                abandon(key, counters: &counters)
                return .dropped(.memoryFull(pinned: pinnedBytes))
            }
            abandon(victim, counters: &counters)
            counters.ipReassemblyEvictions &+= 1
        }

        if queues[key] == nil {
            var queue = Queue(created: now, isIPv6: isIPv6)
            append(key, to: &queue)
            queues[key] = queue
        }
        pinnedBytes += cost
        // In place: the table holds the only reference to the pieces.
        let whole = Self.add(Piece(offset: offset, payload: payload), to: &queues[key]!, cost: cost, ecn: ecn,
                             last: !info.moreFragments, firstHeaders: firstHeaders, nextHeaderField: info.nextHeaderField)
        guard whole, let queue = remove(key) else { return .incomplete }
        return reassembled(queue, counters: &counters)
    }

    /// Records a piece that passed every check; returns whether the datagram is whole.
    private static func add(
        _ piece: Piece, to queue: inout Queue, cost: Int, ecn: ECNCodepoint, last: Bool, firstHeaders: ByteBuffer?,
        nextHeaderField: Int
    ) -> Bool {
        let index = queue.pieces.firstIndex { $0.offset > piece.offset } ?? queue.pieces.count
        queue.receivedBytes += piece.payload.readableBytes
        if last { queue.totalLength = piece.end }
        queue.pieces.insert(piece, at: index)
        queue.pinnedBytes += cost
        queue.ecnSeen |= 1 << ecn.rawValue
        if let firstHeaders {
            queue.firstHeaders = firstHeaders
            queue.nextHeaderField = nextHeaderField
        }
        // Disjoint pieces inside 0..<total adding up to total cover it: the datagram is whole.
        guard let total = queue.totalLength else { return false }
        return queue.receivedBytes == total
    }

    /// Why a fragment at `offset..<end` cannot join `queue`, or nil if it can.
    static func conflict(_ queue: Queue, offset: Int, end: Int, last: Bool) -> Drop? {
        if let total = queue.totalLength {
            // A second last fragment with another end, or bytes beyond the end.
            if (last && end != total) || end > total { return .conflictingEnd(end: end, total: total) }
        } else if last, let highest = queue.pieces.last, highest.end > end {
            return .conflictingEnd(end: end, total: highest.end)
        }
        let index = queue.pieces.firstIndex { $0.offset >= offset } ?? queue.pieces.count
        if index > 0, queue.pieces[index - 1].end > offset {
            let other = queue.pieces[index - 1]
            return .overlap(offset: offset, end: end, otherOffset: other.offset, otherEnd: other.end)
        }
        if index < queue.pieces.count, queue.pieces[index].offset < end {
            let other = queue.pieces[index]
            return .overlap(offset: offset, end: end, otherOffset: other.offset, otherEnd: other.end)
        }
        return nil
    }

    /// The octets a first fragment must carry for `protocolNumber`: the TCP header with its options,
    /// or the 8 octets of a UDP, ICMP or ICMPv6 header; nil for other protocols.
    static func transportHeaderLength(_ protocolNumber: UInt8, _ payload: ByteBuffer) -> Int? {
        switch protocolNumber {
        case IPProtocolNumber.tcp:
            let dataOffset = payload.getInteger(at: payload.readerIndex + 12, as: UInt8.self).map { Int($0 >> 4) * 4 } ?? 0
            return max(TCPHeader.minimumLength, dataOffset)
        case IPProtocolNumber.udp, IPProtocolNumber.icmp, IPProtocolNumber.icmpv6:
            return 8
        default:
            return nil
        }
    }

    /// The whole datagram: the first fragment's headers, rewritten to describe it, then the payload.
    private func reassembled(_ queue: Queue, counters: inout StackCounters) -> Outcome {
        guard let total = queue.totalLength, let headers = queue.firstHeaders, headers.readableBytes > 0 else {
            counters.ipReassemblyFailures &+= 1
            return .dropped(.missingHeaders)
        }
        // RFC 3168 §5.3: CE on any fragment is kept — unless another was Not-ECT, then the datagram goes.
        var ce = false
        if queue.ecnSeen & (1 << ECNCodepoint.congestionExperienced.rawValue) != 0 {
            guard queue.ecnSeen & (1 << ECNCodepoint.notECT.rawValue) == 0 else {
                counters.ipReassemblyFailures &+= 1
                return .dropped(.congestionMixedWithNotECT)
            }
            ce = true
        }
        let headerLength = queue.isIPv6 ? headers.readableBytes - IPv6FragmentHeader.length : headers.readableBytes
        let payloadLength = (queue.isIPv6 ? headerLength - IPv6Header.length : headerLength) + total
        guard payloadLength <= Int(UInt16.max), headerLength >= (queue.isIPv6 ? IPv6Header.length : IPv4Header.minimumLength) else {
            counters.ipReassemblyFailures &+= 1
            return .dropped(.beyondMaximumLength(end: payloadLength))
        }
        var whole = ByteBufferAllocator().buffer(capacity: headerLength + total)
        whole.writeImmutableBuffer(headers.getSlice(at: headers.readerIndex, length: headerLength)!)
        if queue.isIPv6 {
            // RFC 8200 §4.5: the Fragment header goes; the header in front of it names what it named.
            let next = headers.getInteger(at: headers.readerIndex + headerLength, as: UInt8.self) ?? IPProtocolNumber.noNextHeader
            whole.setInteger(next, at: queue.nextHeaderField)
            whole.setInteger(UInt16(payloadLength), at: 4)
            if ce { whole.setInteger((whole.getInteger(at: 1, as: UInt8.self) ?? 0) | 0x30, at: 1) }
        } else {
            // RFC 791 §3.2: the first fragment's header, its total length and flags those of the whole.
            whole.setInteger(UInt16(payloadLength), at: 2)
            let flags = (whole.getInteger(at: 6, as: UInt16.self) ?? 0) & 0x4000
            whole.setInteger(flags, at: 6)
            if ce { whole.setInteger((whole.getInteger(at: 1, as: UInt8.self) ?? 0) | 0x03, at: 1) }
            whole.setInteger(UInt16(0), at: 10)
            var sum = InternetChecksum()
            whole.withUnsafeReadableBytes { sum.add(UnsafeRawBufferPointer(rebasing: $0[0..<headerLength])) }
            whole.setInteger(sum.checksum, at: 10)
        }
        for piece in queue.pieces { whole.writeImmutableBuffer(piece.payload) }
        counters.ipReassembled &+= 1
        return .complete(whole)
    }

    // MARK: Time

    /// Forgets every datagram whose time is up at `now`, oldest first. Returns a notice for each whose
    /// first fragment had arrived, with as much of that fragment as an ICMPv6 error can quote.
    mutating func expire(now: Instant, counters: inout StackCounters) -> [ReassemblyTimeExceeded] {
        var notices: [ReassemblyTimeExceeded] = []
        for family in 0..<2 {
            while let key = oldest[family], let queue = queues[key], queue.created + timeout(isIPv6: queue.isIPv6) <= now {
                remove(key)
                counters.ipReassemblyTimeouts &+= 1
                counters.ipReassemblyFailures &+= 1
                // RFC 1122 §3.3.2: "the partially-reassembled datagram MUST be discarded and an ICMP
                // Time Exceeded message sent to the source host (if fragment zero has been received)";
                // RFC 8200 §4.5: "If the first fragment (i.e., the one with a Fragment Offset of zero)
                // has been received, an ICMP Time Exceeded -- Fragment Reassembly Time Exceeded
                // message should be sent to the source of that fragment." Code 1 in both (RFC 792,
                // RFC 4443 §3.3).
                guard var quote = queue.firstHeaders, quote.readableBytes > 0, let first = queue.pieces.first,
                      first.offset == 0 else { continue }
                let headerLength = quote.readableBytes
                // IPv4: the header's Protocol; IPv6: the Fragment header's Next Header (its first octet).
                let upperLayerProtocol = queue.isIPv6
                    ? quote.getInteger(at: quote.readerIndex + headerLength - IPv6FragmentHeader.length) ?? IPProtocolNumber.noNextHeader
                    : key.protocolNumber
                quote.writeImmutableBuffer(first.payload.getSlice(
                    at: first.payload.readerIndex,
                    length: min(first.payload.readableBytes, max(0, ReassemblyTimeExceeded.maximumQuote - headerLength)))!)
                notices.append(ReassemblyTimeExceeded(
                    source: key.source, destination: key.destination, quote: quote,
                    upperLayerProtocol: upperLayerProtocol, headerLength: headerLength))
            }
        }
        return notices
    }

    // MARK: The table and its age lists

    /// The datagram that arrived first, of either family.
    func oldestKey() -> Key? {
        switch (oldest[0].flatMap { queues[$0] }, oldest[1].flatMap { queues[$0] }) {
        case (let v4?, let v6?): v4.created <= v6.created ? oldest[0] : oldest[1]
        case (.some, nil): oldest[0]
        case (nil, .some): oldest[1]
        case (nil, nil): nil
        }
    }

    /// Drops a datagram being reassembled, if there is one, as a failure.
    mutating func abandon(_ key: Key, counters: inout StackCounters) {
        guard remove(key) != nil else { return }
        counters.ipReassemblyFailures &+= 1
    }

    private mutating func append(_ key: Key, to queue: inout Queue) {
        let family = queue.isIPv6 ? 1 : 0
        queue.older = newest[family]
        queue.newer = nil
        if let previous = newest[family] { queues[previous]?.newer = key } else { oldest[family] = key }
        newest[family] = key
    }

    @discardableResult
    private mutating func remove(_ key: Key) -> Queue? {
        guard let queue = queues.removeValue(forKey: key) else { return nil }
        let family = queue.isIPv6 ? 1 : 0
        if let older = queue.older { queues[older]?.newer = queue.newer } else { oldest[family] = queue.newer }
        if let newer = queue.newer { queues[newer]?.older = queue.older } else { newest[family] = queue.older }
        pinnedBytes -= queue.pinnedBytes
        return queue
    }
}

/// A datagram whose reassembly timed out after its first fragment had arrived: the stack owes its
/// source an ICMP Time Exceeded, code 1 (RFC 792) or ICMPv6 Time Exceeded, code 1 (RFC 4443 §3.3),
/// which `Stack.expireFragments` sends through the ICMP error path and its token bucket.
struct ReassemblyTimeExceeded: Hashable, Sendable {
    /// Most octets of the first fragment kept for the quote: what fits in a 1280-octet ICMPv6 error
    /// (RFC 4443 §2.4 (c)); an ICMPv4 error quotes less of it (RFC 1812 §4.3.2.3: 576 in all).
    static let maximumQuote = 1280 - 48

    /// The source of the fragments, to whom the error goes.
    var source: IPAddress
    /// Their destination: our address, the error's source.
    var destination: IPAddress
    /// The first fragment as it arrived (headers included), up to `maximumQuote` octets.
    var quote: ByteBuffer
    /// The protocol the fragments carry, and where its header starts in `quote`: an ICMP error is
    /// never sent about an ICMP error (RFC 1122 §3.2.2, RFC 4443 §2.4(e)).
    var upperLayerProtocol: UInt8
    var headerLength: Int
}
