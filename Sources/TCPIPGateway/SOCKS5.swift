import NIOCore
import TCPIPWire

/// SOCKS version 5 (RFC 1928) with username/password authentication (RFC 1929): the messages a
/// client sends and parses, as values. No I/O; `SOCKS5Handshake` drives them on a channel.
///
/// swift-nio-extras' `NIOSOCKS` has a client handler for CONNECT without authentication; the
/// gateway also needs RFC 1929 and UDP ASSOCIATE with its datagram header, so it speaks the
/// protocol itself (about the same size as adapting NIOSOCKS's handler would have been).
public enum SOCKS5 {
    /// RFC 1928 §4: CMD.
    public enum Command: UInt8, Sendable {
        /// CONNECT: a TCP connection to the address.
        case connect = 0x01
        /// UDP ASSOCIATE: a relay for the datagrams of one client (RFC 1928 §7).
        case udpAssociate = 0x03
    }

    /// Where a request goes: DST.ADDR and DST.PORT (RFC 1928 §5: ATYP 1, 3 or 4).
    public enum Address: Hashable, Sendable, CustomStringConvertible {
        /// An IPv4 (ATYP 1) or IPv6 (ATYP 4) address and a port.
        case ip(IPAddress, port: UInt16)
        /// A domain name (ATYP 3), which the server resolves, and a port.
        case domain(String, port: UInt16)

        /// DST.PORT, whichever the form of the address.
        public var port: UInt16 {
            switch self {
            case .ip(_, let port), .domain(_, let port): port
            }
        }

        /// `host:port`, with an IPv6 address in brackets.
        public var description: String {
            switch self {
            case .ip(.v6(let address), let port): "[\(address)]:\(port)"
            case .ip(let address, let port): "\(address):\(port)"
            case .domain(let name, let port): "\(name):\(port)"
            }
        }

        /// Appends ATYP, the address and the port.
        func write(to buffer: inout ByteBuffer) {
            switch self {
            case .ip(.v4(let address), let port):
                buffer.writeInteger(UInt8(0x01))
                buffer.writeInteger(address.rawValue)
                buffer.writeInteger(port)
            case .ip(.v6(let address), let port):
                buffer.writeInteger(UInt8(0x04))
                buffer.writeInteger(address.high)
                buffer.writeInteger(address.low)
                buffer.writeInteger(port)
            case .domain(let name, let port):
                // RFC 1928 §5: the first octet holds the name's length, so at most 255 octets (checked by
                // `Upstream`: a longer name is refused before it gets here).
                let bytes = Array(name.utf8.prefix(255))
                buffer.writeInteger(UInt8(0x03))
                buffer.writeInteger(UInt8(bytes.count))
                buffer.writeBytes(bytes)
                buffer.writeInteger(port)
            }
        }

        /// Reads ATYP, an address and a port; nil when the buffer ends first (nothing is consumed),
        /// throws on an unknown ATYP.
        static func read(from buffer: inout ByteBuffer) throws(SOCKS5Error) -> Address? {
            var copy = buffer
            guard let type = copy.readInteger(as: UInt8.self) else { return nil }
            let address: Address
            switch type {
            case 0x01:
                guard let raw = copy.readInteger(as: UInt32.self), let port = copy.readInteger(as: UInt16.self) else {
                    return nil
                }
                address = .ip(.v4(IPv4Address(rawValue: raw)), port: port)
            case 0x04:
                guard let high = copy.readInteger(as: UInt64.self), let low = copy.readInteger(as: UInt64.self),
                    let port = copy.readInteger(as: UInt16.self)
                else { return nil }
                address = .ip(.v6(IPv6Address(high: high, low: low)), port: port)
            case 0x03:
                guard let length = copy.readInteger(as: UInt8.self), let bytes = copy.readBytes(length: Int(length)),
                    let port = copy.readInteger(as: UInt16.self)
                else { return nil }
                address = .domain(String(decoding: bytes, as: UTF8.self), port: port)
            default:
                throw .malformed("address type \(type)")
            }
            buffer = copy
            return address
        }
    }

    /// RFC 1928 §6: REP.
    public enum Reply: UInt8, Sendable {
        /// X'00' succeeded.
        case succeeded = 0x00
        /// X'01' general SOCKS server failure.
        case generalFailure = 0x01
        /// X'02' connection not allowed by ruleset.
        case notAllowed = 0x02
        /// X'03' network unreachable.
        case networkUnreachable = 0x03
        /// X'04' host unreachable.
        case hostUnreachable = 0x04
        /// X'05' connection refused.
        case connectionRefused = 0x05
        /// X'06' TTL expired.
        case ttlExpired = 0x06
        /// X'07' command not supported.
        case commandNotSupported = 0x07
        /// X'08' address type not supported.
        case addressTypeNotSupported = 0x08
    }

    /// RFC 1928 §3: the version identifier/method selection message.
    static func greeting(withCredentials: Bool) -> [UInt8] {
        // 0x00: NO AUTHENTICATION REQUIRED; 0x02: USERNAME/PASSWORD (RFC 1929).
        withCredentials ? [0x05, 0x02, 0x00, 0x02] : [0x05, 0x01, 0x00]
    }

    /// RFC 1929 §2: VER=1, ULEN, UNAME, PLEN, PASSWD (each 1–255 octets, checked by `Credentials`).
    static func authentication(_ credentials: Credentials) -> [UInt8] {
        let user = Array(credentials.username.utf8)
        let password = Array(credentials.password.utf8)
        return [0x01, UInt8(user.count)] + user + [UInt8(password.count)] + password
    }

    /// RFC 1928 §4: VER, CMD, RSV, then the address.
    static func request(_ command: Command, _ address: Address) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes([0x05, command.rawValue, 0x00])
        address.write(to: &buffer)
        return buffer
    }

    /// RFC 1928 §7: the header of every datagram to and from the relay: RSV (2), FRAG, the address.
    ///
    /// - Parameters:
    ///   - payload: the datagram's data.
    ///   - address: DST.ADDR and DST.PORT, where the relay sends it.
    public static func encapsulate(_ payload: ByteBuffer, to address: Address) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.readableBytes + 22)
        buffer.writeBytes([0x00, 0x00, 0x00])
        address.write(to: &buffer)
        var payload = payload
        buffer.writeBuffer(&payload)
        return buffer
    }

    /// A datagram from the relay: its source and payload; nil for anything malformed or fragmented
    /// (RFC 1928 §7: "An implementation that does not support fragmentation MUST drop any datagram
    /// whose FRAG field is other than X'00'").
    ///
    /// - Parameter datagram: a UDP payload received from the relay.
    public static func decapsulate(_ datagram: ByteBuffer) -> (source: Address, payload: ByteBuffer)? {
        var buffer = datagram
        guard let reserved = buffer.readInteger(as: UInt16.self), reserved == 0,
            let fragment = buffer.readInteger(as: UInt8.self), fragment == 0,
            let source = try? Address.read(from: &buffer)
        else { return nil }
        return (source, buffer)
    }
}

/// RFC 1929 credentials; each field 1 to 255 octets.
public struct Credentials: Hashable, Sendable {
    /// UNAME, 1 to 255 octets of UTF-8.
    public var username: String
    /// PASSWD, 1 to 255 octets of UTF-8.
    public var password: String

    /// nil when a field is empty or longer than 255 octets (RFC 1929 §2).
    ///
    /// - Parameters:
    ///   - username: UNAME, 1 to 255 octets.
    ///   - password: PASSWD, 1 to 255 octets.
    public init?(username: String, password: String) {
        guard (1...255).contains(username.utf8.count), (1...255).contains(password.utf8.count) else { return nil }
        self.username = username
        self.password = password
    }
}

/// What went wrong in a SOCKS5 exchange.
public enum SOCKS5Error: Error, Hashable, Sendable, CustomStringConvertible {
    /// The server answered with a REP other than succeeded.
    case reply(SOCKS5.Reply)
    /// A REP code RFC 1928 does not define.
    case unknownReply(UInt8)
    /// The server accepts none of the methods we offered (X'FF').
    case noAcceptableMethod
    /// RFC 1929: the server rejected the username/password.
    case authenticationFailed
    /// The server sent something that is not SOCKS5.
    case malformed(String)
    /// The connection closed before the handshake completed.
    case closedDuringHandshake

    /// What went wrong, in words.
    public var description: String {
        switch self {
        case .reply(let reply): "SOCKS5 reply \(reply)"
        case .unknownReply(let code): "SOCKS5 reply \(code)"
        case .noAcceptableMethod: "SOCKS5: no acceptable authentication method"
        case .authenticationFailed: "SOCKS5: authentication failed"
        case .malformed(let what): "SOCKS5: malformed \(what)"
        case .closedDuringHandshake: "SOCKS5: connection closed during the handshake"
        }
    }
}
