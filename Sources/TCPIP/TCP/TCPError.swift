/// Why a user call failed or a connection ended: the error reports of RFC 9293 §3.10.
public enum TCPError: Error, Hashable, Sendable, CustomStringConvertible {
    /// "error: connection reset" — the peer sent an acceptable RST (§3.10.7.4, second).
    case connectionReset
    /// "error: connection refused" — an RST answered our SYN (§3.10.7.3).
    case connectionRefused
    /// The retransmission limit was reached (RFC 9293 §3.8.3, R2; MUST-20).
    case timedOut
    /// "error: connection aborted due to user abort".
    case aborted
    /// "error: connection closing" — SEND or CLOSE after our FIN.
    case connectionClosing
    /// "error: connection does not exist" — a stale handle.
    case connectionDoesNotExist
    /// "error: connection already exists" / "error: foreign socket unspecified".
    case addressInUse
    /// No local address of the right family, or no free ephemeral port.
    case addressUnavailable
    /// A memory or table limit of the stack was reached.
    case resourcesExhausted
    /// A call's argument was out of range, or the call is not valid in the connection's state: EINVAL.
    case invalidArgument
    /// An ICMP error said the peer's network (RFC 792 type 3 code 0; RFC 4443 §3.1 code 0) or
    /// host (the other unreachable codes, time exceeded) cannot be reached: ENETUNREACH,
    /// EHOSTUNREACH. Soft (RFC 1122 §4.2.3.9): reported only if the connection then fails.
    case networkUnreachable
    /// The host cannot be reached: EHOSTUNREACH (see `networkUnreachable`).
    case hostUnreachable
    /// ICMP protocol unreachable (RFC 792 type 3 code 2; RFC 4443 §3.4 code 1): ENOPROTOOPT.
    case protocolUnreachable

    public var description: String {
        switch self {
        case .connectionReset: "connection reset"
        case .connectionRefused: "connection refused"
        case .timedOut: "connection timed out"
        case .aborted: "connection aborted"
        case .connectionClosing: "connection closing"
        case .connectionDoesNotExist: "connection does not exist"
        case .addressInUse: "address in use"
        case .addressUnavailable: "address unavailable"
        case .resourcesExhausted: "insufficient resources"
        case .invalidArgument: "invalid argument"
        case .networkUnreachable: "network unreachable"
        case .hostUnreachable: "host unreachable"
        case .protocolUnreachable: "protocol unreachable"
        }
    }
}
