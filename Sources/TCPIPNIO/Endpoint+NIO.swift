import NIOCore
import TCPIP
import TCPIPWire

extension Endpoint {
    /// The NIO spelling of this endpoint, for `Channel.localAddress` and `remoteAddress`.
    public var socketAddress: SocketAddress {
        // An IPAddress always prints as text inet_pton reads back.
        try! SocketAddress(ipAddress: address.description, port: Int(port))
    }

    /// The stack's spelling of a NIO address; nil for a Unix-domain address.
    public init?(_ address: SocketAddress) {
        guard let text = address.ipAddress, let ip = IPAddress(text), let port = address.port,
            let port16 = UInt16(exactly: port)
        else { return nil }
        self.init(ip, port16)
    }

    /// An endpoint from its text, as `description` prints it: `198.18.0.2:80`, `[2001:db8::2]:80`.
    /// nil for anything else (a host name needs a resolver, which the stack does not have).
    public init?(_ text: String) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            // An IPv6 address must be bracketed, or its last group would read as the port.
            guard !host.contains(":") else { return nil }
        }
        guard let address = IPAddress(String(host)), let number = UInt16(port) else { return nil }
        self.init(address, number)
    }
}
