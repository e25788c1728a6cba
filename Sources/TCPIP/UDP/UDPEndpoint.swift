import NIOCore
import TCPIPWire

/// A handle to a UDP endpoint: a slot in the stack's slab and the generation that owns it.
public struct UDPEndpointID: Hashable, Sendable, CustomStringConvertible {
    let handle: SlabHandle
    public var description: String { "u\(handle.index).\(handle.generation)" }
}

/// One datagram received: who sent it, which of our addresses it was sent to, and its data.
public struct UDPDatagram: Hashable, Sendable {
    /// The sender's address and port (port 0 when it gave none, RFC 768).
    public var source: Endpoint
    /// Our address and port the datagram was sent to (IP_PKTINFO's answer).
    public var destination: Endpoint
    /// The data.
    public var payload: ByteBuffer

    /// A datagram with these fields.
    public init(source: Endpoint, destination: Endpoint, payload: ByteBuffer) {
        self.source = source
        self.destination = destination
        self.payload = payload
    }
}

/// Why a UDP call failed.
public enum UDPError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An ICMP port unreachable answered a datagram of this connected endpoint (RFC 1122 §4.1.3.3):
    /// reported once, on the next receive, as a socket's ECONNREFUSED.
    case connectionRefused
    /// Another endpoint is bound to an overlapping address and port.
    case addressInUse
    /// No local address of the right family, or no free ephemeral port.
    case addressUnavailable
    /// More than a UDP datagram can carry (65,507 octets over IPv4, 65,527 over IPv6), or a datagram the
    /// link MTU leaves no room to fragment.
    case messageTooLong
    /// A send with no destination from an endpoint that is not connected.
    case destinationRequired
    /// A stale handle.
    case endpointDoesNotExist
    /// `UDPConfiguration.maximumEndpoints` endpoints exist.
    case resourcesExhausted
    /// A call's argument was out of range: EINVAL.
    case invalidArgument

    public var description: String {
        switch self {
        case .connectionRefused: "connection refused"
        case .addressInUse: "address in use"
        case .addressUnavailable: "address unavailable"
        case .messageTooLong: "message too long"
        case .destinationRequired: "destination address required"
        case .endpointDoesNotExist: "endpoint does not exist"
        case .resourcesExhausted: "insufficient resources"
        case .invalidArgument: "invalid argument"
        }
    }
}

/// What `Stack.udpStatus` reports of an endpoint, as `ss -u` shows a socket.
public struct UDPEndpointStatus: Hashable, Sendable {
    /// The bound address (nil: every address of the stack) and port.
    public var localAddress: IPAddress?
    /// The bound port.
    public var localPort: UInt16
    /// The peer of a connected endpoint.
    public var remote: Endpoint?
    /// Datagrams waiting to be received, the bytes of their payloads, and the storage they pin.
    public var queuedDatagrams: Int
    /// The bytes of their payloads.
    public var queuedBytes: Int
    /// The storage they pin (the buffers they arrived in).
    public var queuedPinnedBytes: Int
    /// Datagrams dropped because the queue was full.
    public var drops: UInt64
}

/// A UDP endpoint: a bound port, maybe a peer, and the datagrams received and not yet read.
struct UDPEndpoint {
    var localAddress: IPAddress?
    var localPort: UInt16
    var remote: Endpoint?
    var queue = CircularBuffer<UDPDatagram>()
    var queuedBytes = 0
    /// What the queued payloads pin (`pinnedStorageBytes`): what the receive buffer limit counts.
    var queuedPinnedBytes = 0
    var pendingError: UDPError?
    /// Queued in the stack's UDP events and not yet taken.
    var pendingEvent = false
    var drops: UInt64 = 0
    /// An intercepted flow's idle timeout (nil: not a flow), and when a datagram last crossed it.
    var flowTimeout: TimeAmount?
    var lastActivity = Instant.zero

    var key: UDPKey { UDPKey(address: localAddress, port: localPort, remote: remote) }
}

/// How the UDP table finds an endpoint: a connected one by its five numbers, a bound one by address
/// and port, a wildcard one by port.
struct UDPKey: Hashable {
    var address: IPAddress?
    var port: UInt16
    var remote: Endpoint?
}
