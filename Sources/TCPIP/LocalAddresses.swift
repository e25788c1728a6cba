import TCPIPWire

/// The stack's own addresses, asked about twice for every datagram (is it for us; does it claim to
/// come from us). They are fixed when the stack is made, so IPv4 ones go into an open-addressed
/// table built once: a multiplicative hash and, nearly always, one probe. A `Set` hashed each
/// address with SipHash through thread-local state: 100 instructions a question, 2% of the
/// connection rate for a client spread over 256 addresses.
///
/// Nothing a peer sends can slow the table down: its contents never change, so a question probes
/// at most the longest run of filled slots, fixed at construction.
struct LocalAddresses {
    /// IPv4 addresses widened to 64 bits; `empty` marks a free slot. At most half the slots are
    /// filled, so every probe sequence ends.
    private let v4Slots: [UInt64]
    private let v4Mask: Int
    private let v4Shift: UInt64
    /// IPv6 addresses: a scan for a few, a set for many.
    private let v6List: [IPAddress]
    private let v6Set: Set<IPAddress>?

    private static var empty: UInt64 { .max }

    init(_ addresses: [IPAddress]) {
        var v4: [UInt32] = []
        var v6: [IPAddress] = []
        for address in addresses {
            switch address {
            case .v4(let a): v4.append(a.rawValue)
            case .v6: v6.append(address)
            }
        }
        var bits = 1
        while 1 << bits < 2 * max(1, v4.count) { bits += 1 }
        var slots = [UInt64](repeating: Self.empty, count: 1 << bits)
        let mask = slots.count - 1
        let shift = UInt64(64 - bits)
        for address in v4 {
            var index = Self.slot(address, shift: shift)
            while slots[index] != Self.empty && slots[index] != UInt64(address) { index = (index + 1) & mask }
            slots[index] = UInt64(address)
        }
        v4Slots = slots
        v4Mask = mask
        v4Shift = shift
        v6List = v6
        v6Set = v6.count > 8 ? Set(v6) : nil
    }

    /// Fibonacci hashing: the top bits of the address times 2⁶⁴/φ.
    @inline(__always)
    private static func slot(_ address: UInt32, shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (UInt64(address) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    @inline(__always)
    func contains(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let a):
            let wanted = UInt64(a.rawValue)
            var index = Self.slot(a.rawValue, shift: v4Shift)
            while true {
                let slot = v4Slots[index]
                if slot == wanted { return true }
                if slot == Self.empty { return false }
                index = (index + 1) & v4Mask
            }
        case .v6:
            if let v6Set { return v6Set.contains(address) }
            return v6List.contains(address)
        }
    }
}
