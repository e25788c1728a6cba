import NIOCore
import TCPIPWire

/// Fragments: reassembly on input (RFC 791 §3.2, RFC 8200 §4.5) and fragmentation on output.
extension Stack {
    /// A datagram for one of our addresses that `IPDatagram.parse` found to be a fragment: into the
    /// reassembly table. Returns the whole datagram once its last missing fragment has arrived,
    /// parsed as if it had arrived in one piece, and nil until then (or if the fragment was dropped).
    func reassemble(_ fragment: consuming IPDatagram, now: Instant) -> IPDatagram? {
        guard let info = fragment.fragment else { return fragment }
        if info.isAtomic {
            // RFC 6946 §4: an atomic fragment is processed in isolation, never queued — and never
            // mixed into a reassembly with the same identification.
            io.counters.ipAtomicFragments &+= 1
            fragment.fragment = nil
            return fragment
        }
        switch reassembly.insert(fragment, now: now, counters: &io.counters) {
        case .incomplete:
            return nil
        case .dropped(let drop):
            io.decision(drop.rule, drop.description, connection: nil, now: now)
            return nil
        case .complete(let whole):
            do {
                // A Fragment header inside the reassembled datagram (a fragment of a fragment) is
                // malformed, and the parse without `keepingFragments` says so.
                return try IPDatagram.parse(whole, verifyChecksum: false)
            } catch {
                io.counters.ipReassembled &-= 1
                io.counters.ipReassemblyFailures &+= 1
                io.decision("RFC 8200 §4.5", "reassembled datagram does not parse: \(error)", connection: nil, now: now)
                return nil
            }
        }
    }

    /// Reassemblies whose time ran out at `now` (part of `advanceTime`): each whose first fragment
    /// had arrived gets its source an ICMP / ICMPv6 Time Exceeded, code 1 ("fragment reassembly time
    /// exceeded"), through the ICMP error path: the same rules and the same token bucket as every
    /// error we send, so a flood of incomplete datagrams earns no more answers than the rate allows.
    func expireFragments(now: Instant) {
        guard reassembly.count > 0 else { return }
        for notice in reassembly.expire(now: now, counters: &io.counters) {
            io.decision(notice.source.isIPv6 ? "RFC 8200 §4.5" : "RFC 1122 §3.3.2",
                        "reassembly from \(notice.source) timed out after its first fragment", connection: nil, now: now)
            let payload = notice.quote.getSlice(
                at: notice.quote.readerIndex + notice.headerLength, length: notice.quote.readableBytes - notice.headerLength
            ) ?? ByteBuffer()
            guard mayAnswerWithError(source: notice.source, destination: notice.destination,
                                     upperLayerProtocol: notice.upperLayerProtocol, payload: payload) else {
                io.counters.icmpOutSuppressed &+= 1
                continue
            }
            sendICMPError(.reassemblyTimeExceeded, quoting: notice.quote, from: notice.destination, to: notice.source, now: now)
        }
    }

    /// Datagrams being reassembled, and the bytes they pin (what `FragmentReassemblyConfiguration.memoryLimit` bounds).
    public var reassemblyStatus: (datagrams: Int, pinnedBytes: Int) {
        (reassembly.count, reassembly.pinnedBytes)
    }

    /// Cuts a whole IP datagram into fragments of at most `mtu` octets (IPv4 with DF clear; IPv6 with a
    /// Fragment header), with an unpredictable Identification (RFC 7739 §5.3). A datagram that fits
    /// comes back as it is. For UDP and ICMP datagrams larger than the path MTU: TCP never relies on
    /// fragmentation.
    public func fragment(_ datagram: ByteBuffer, mtu: Int) throws(FragmentationError) -> [ByteBuffer] {
        let addresses: (IPAddress, IPAddress)
        let length: Int
        do throws(WireError) {
            switch datagram.readableBytesView.first.map({ $0 >> 4 }) {
            case 4:
                let header = try IPv4Header.parse(datagram, verifyChecksum: false)
                addresses = (.v4(header.source), .v4(header.destination))
                length = Int(header.totalLength)
            case 6:
                let header = try IPv6Header.parse(datagram)
                addresses = (.v6(header.source), .v6(header.destination))
                length = IPv6Header.length + Int(header.payloadLength)
            default:
                throw .unsupportedVersion
            }
        } catch {
            io.counters.ipFragmentationFailures &+= 1
            throw .malformed(error)
        }
        // A datagram that fits spends no identification.
        guard length > mtu else { return [datagram.getSlice(at: datagram.readerIndex, length: length)!] }
        let identification = fragmentIdentifiers.next(source: addresses.0, destination: addresses.1)
        do {
            let fragments = try IPFragmentation.fragment(datagram, mtu: mtu, identification: identification)
            if fragments.count > 1 {
                io.counters.ipFragmentedDatagrams &+= 1
                io.counters.ipFragmentsCreated &+= UInt64(fragments.count)
            }
            return fragments
        } catch {
            io.counters.ipFragmentationFailures &+= 1
            throw error
        }
    }
}
