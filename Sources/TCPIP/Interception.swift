import NIOCore
import TCPIPWire

/// How a stack in intercept mode treats the flows it terminates on behalf of every address
/// (`StackConfiguration.interception`).
///
/// In intercept mode the stack owns no addresses: a SYN to any address and port is a *connection
/// request* (`StackEvent.connectionRequest`) that waits, unanswered, until the application accepts
/// it (`Stack.accept(_:configuration:now:)`) or refuses it (`Stack.refuse(_:with:now:)`); the first
/// UDP datagram of a new 5-tuple is a *flow* (`StackEvent.udpFlow`); ICMP echo requests to any address
/// are answered, delivered or dropped (`icmpEcho`). This is what a packet-tunnel gateway needs: it
/// dials the real destination first and only then completes the client's handshake, so that it
/// never tells a client a port is open when it is not.
public struct InterceptionConfiguration: Sendable, Hashable {
    /// How long a connection request waits for an answer before it is refused with an RST. 10 s.
    public var requestDeadline: Duration = .seconds(10)
    /// Most connection requests waiting for an answer at once; beyond it a SYN is refused with an RST
    /// (and counted, `interceptPendingFull`). 1,024, as the default SYN queue.
    public var maxPendingRequests: Int = 1024
    /// Most intercepted connections at once; beyond it a SYN is refused with an RST (and counted,
    /// `interceptConnectionsFull`). 8,192.
    public var maxConnections: Int = 8192
    /// How long a UDP flow may stay idle before the stack closes it: 120 s, RFC 4787 §4.3 REQ-5
    /// ("a NAT UDP mapping timer MUST NOT expire in less than two minutes").
    public var udpFlowTimeout: Duration = .seconds(120)
    /// The idle timeout of flows to port 53 (DNS): 10 s (RFC 4787 REQ-5a lets well-known ports
    /// have shorter timers; a DNS exchange is one query and its answer).
    public var dnsFlowTimeout: Duration = .seconds(10)
    /// Most UDP flows at once; a datagram that would start one more is dropped and counted
    /// (`udpFlowTableFull`). 4,096.
    public var maxUDPFlows: Int = 4096
    /// What an ICMP or ICMPv6 echo request to any address meets. `.answer` by default.
    public var icmpEcho: InterceptedEcho = .answer

    /// A configuration with these values (see each property); the defaults are the ones stated there.
    public init(
        requestDeadline: Duration = .seconds(10), maxPendingRequests: Int = 1024, maxConnections: Int = 8192,
        udpFlowTimeout: Duration = .seconds(120), dnsFlowTimeout: Duration = .seconds(10), maxUDPFlows: Int = 4096,
        icmpEcho: InterceptedEcho = .answer
    ) {
        self.requestDeadline = requestDeadline
        self.maxPendingRequests = maxPendingRequests
        self.maxConnections = maxConnections
        self.udpFlowTimeout = udpFlowTimeout
        self.dnsFlowTimeout = dnsFlowTimeout
        self.maxUDPFlows = maxUDPFlows
        self.icmpEcho = icmpEcho
    }
}

/// What an intercepting stack does with an echo request to any address.
public enum InterceptedEcho: Sendable, Hashable {
    /// The stack answers it, from the address it was sent to (RFC 1122 §3.2.2.6, RFC 4443 §4.2).
    case answer
    /// The application gets it as `StackEvent.echoRequest` and may answer (`Stack.answer(_:now:)`).
    case deliver
    /// Nobody answers (counted, `icmpEchoDropped`).
    case drop
}

/// A handle to a connection request: a slot in the stack's table of pending requests and the
/// generation that owns it.
public struct ConnectionRequestID: Hashable, Sendable, CustomStringConvertible {
    let handle: SlabHandle
    public var description: String { "r\(handle.index).\(handle.generation)" }
}

/// A SYN an intercepting stack holds without answering, until the application accepts or refuses it.
public struct ConnectionRequest: Hashable, Sendable, CustomStringConvertible {
    /// The handle the stack answers the request by.
    public let id: ConnectionRequestID
    /// The client: where the SYN came from.
    public let source: Endpoint
    /// The original destination: where the client wanted to go. An accepted connection's local endpoint.
    public let destination: Endpoint
    /// When the first SYN arrived.
    public let receivedAt: Instant

    public var description: String { "\(id) \(source) > \(destination)" }
}

/// How a connection request is turned away.
public enum Refusal: Sendable, Hashable, CustomStringConvertible {
    /// <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK> (RFC 9293 §3.10.7.1): the client sees "connection refused".
    case reset
    /// ICMP destination unreachable with this code, quoting the SYN (RFC 792; RFC 1122 §3.2.2.1); over
    /// IPv6, the ICMPv6 destination unreachable (type 1) code that RFC 7915 §4.2 translates it to.
    /// 1 (host unreachable) and 13 (administratively prohibited) are the usual ones.
    case unreachable(code: UInt8)
    /// No answer at all: the client's SYN retransmissions time out.
    case silence

    public var description: String {
        switch self {
        case .reset: "reset"
        case .unreachable(let code): "unreachable (code \(code))"
        case .silence: "silence"
        }
    }
}

/// An echo request an intercepting stack handed to the application (`InterceptedEcho.deliver`).
public struct EchoRequest: Hashable, Sendable {
    /// Who asked, and which address it asked.
    public let source: IPAddress
    /// The address the request was sent to.
    public let destination: IPAddress
    /// The echo identifier (RFC 792, RFC 4443 §4.1), to send back.
    public let identifier: UInt16
    /// The echo sequence number, to send back.
    public let sequenceNumber: UInt16
    /// The data to echo back.
    public let payload: ByteBuffer
}

extension TimeAmount {
    /// A `Duration` in nanoseconds, saturating at `Int64`'s range.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow {
            self = .nanoseconds(seconds < 0 ? .min : .max)
            return
        }
        let (sum, overflowed) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        self = .nanoseconds(overflowed ? (seconds < 0 ? .min : .max) : sum)
    }
}
