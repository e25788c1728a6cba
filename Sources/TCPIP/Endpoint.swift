import TCPIPWire

/// One end of a TCP connection: an IP address and a port (RFC 9293 §3.1's "socket").
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// The IP address.
    public var address: IPAddress
    /// The port.
    public var port: UInt16

    /// The endpoint `address`:`port`.
    @inlinable
    public init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// As netstat and ss print it: `198.18.0.1:5001`, `[2001:db8::1]:5001`.
    ///
    /// IPv6 addresses are bracketed (RFC 5952 §6) because the address itself contains colons.
    public var description: String {
        switch address {
        case .v4(let v4): "\(v4):\(port)"
        case .v6(let v6): "[\(v6)]:\(port)"
        }
    }

    /// As tcpdump prints it: `198.18.0.1.5001`, `2001:db8::1.5001`.
    public var tcpdumpDescription: String {
        "\(address).\(port)"
    }
}

/// The four numbers that name a connection: local and remote endpoints (RFC 9293 §3.4's "socket pair").
public struct FourTuple: Hashable, Sendable, CustomStringConvertible {
    /// Our end.
    public var local: Endpoint
    /// The peer's end.
    public var remote: Endpoint

    /// The pair of `local` and `remote`.
    @inlinable
    public init(local: Endpoint, remote: Endpoint) {
        self.local = local
        self.remote = remote
    }

    /// The same connection as the peer names it.
    @inlinable
    public var reversed: FourTuple {
        FourTuple(local: remote, remote: local)
    }

    /// `local > remote` in tcpdump's notation, as in a segment we send.
    public var description: String {
        "\(local.tcpdumpDescription) > \(remote.tcpdumpDescription)"
    }

    /// A connection's 4-tuple is looked up for every segment and goes in and out of three tables
    /// (half-open, connections, TIME-WAIT): hashed by `TableHash`, not SipHash through `Hasher`.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(_rawHashValue(seed: 0))
    }

    public func _rawHashValue(seed: Int) -> Int {
        let addresses: UInt64
        switch (local.address, remote.address) {
        case (.v4(let localAddress), .v4(let remoteAddress)):
            addresses = UInt64(localAddress.rawValue) << 32 | UInt64(remoteAddress.rawValue)
        default:
            addresses = local.address.foldedForHashing &* 0x9E37_79B9_7F4A_7C15 ^ remote.address.foldedForHashing
        }
        return TableHash.hash(addresses, UInt64(local.port) << 16 | UInt64(remote.port), seed: seed)
    }
}
