import TCPIPWire

/// One end of a TCP connection: an IP address and a port (RFC 9293 §3.1's "socket").
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

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
    public var local: Endpoint
    public var remote: Endpoint

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

    /// Every packet looks its 4-tuple up at least once: an IPv4 tuple goes to the hasher as two
    /// words instead of six fields with their enum tags. Equal tuples still hash equally.
    @inlinable
    public func hash(into hasher: inout Hasher) {
        if case .v4(let localAddress) = local.address, case .v4(let remoteAddress) = remote.address {
            hasher.combine(UInt64(localAddress.rawValue) << 32 | UInt64(remoteAddress.rawValue))
        } else {
            hasher.combine(local.address)
            hasher.combine(remote.address)
        }
        hasher.combine(UInt32(local.port) << 16 | UInt32(remote.port))
    }
}
