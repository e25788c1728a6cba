import TCPIPWire

extension IPAddress {
    /// Whether this address can be the other end of a TCP connection: RFC 1122 §3.2.1.3 forbids
    /// the unspecified address, "this network" (0.0.0.0/8), IPv4's limited broadcast and multicast
    /// addresses (224.0.0.0/4, ff00::/8) as a source, and RFC 9293 §3.9.1.1 (MUST-46) as the remote
    /// address of an OPEN. A subnet's directed broadcast cannot be told apart: the stack knows its
    /// addresses, not their prefixes.
    var canBeAPeer: Bool {
        switch self {
        case .v4(let address):
            let raw = address.rawValue
            return raw >> 24 != 0 && raw != 0xFFFF_FFFF && raw >> 28 != 0xE
        case .v6(let address):
            return !(address.high == 0 && address.low == 0) && address.high >> 56 != 0xFF
        }
    }
}
