import TCPIPWire

/// The connection table as `netstat -tn` prints it, in 80 columns:
///
///     Proto Recv-Q Send-Q Local Address           Foreign Address         State
///     tcp     8192      0 198.18.0.2:5001         198.18.0.1:49233        ESTABLISHED
///     tcp        0 262144 198.18.0.1:49233        198.18.0.2:5001         ESTABLISHED
///
/// Recv-Q is what the application has not read yet; Send-Q what it wrote that the peer has not
/// acknowledged. States are spelled as RFC 9293 §3.3.2 spells them. IPv6 rows say `tcp6` and
/// bracket their addresses, so the port stands apart from the address.
public struct NetstatTable: Hashable, Sendable {
    /// One line of the table.
    public struct Row: Hashable, Sendable {
        /// `tcp` or `tcp6`.
        public var proto: String
        /// Recv-Q: bytes received and not read.
        public var receiveQueue: Int
        /// Send-Q: bytes written and not acknowledged.
        public var sendQueue: Int
        /// Our address and port.
        public var local: String
        /// The peer's address and port.
        public var foreign: String
        /// The state, as RFC 9293 §3.3.2 spells it.
        public var state: String

        /// A row with these columns.
        public init(proto: String, receiveQueue: Int, sendQueue: Int, local: String, foreign: String, state: String) {
            self.proto = proto
            self.receiveQueue = receiveQueue
            self.sendQueue = sendQueue
            self.local = local
            self.foreign = foreign
            self.state = state
        }
    }

    /// The heading line.
    public static let header = line(
        proto: "Proto", receiveQueue: "Recv-Q", sendQueue: "Send-Q",
        local: "Local Address", foreign: "Foreign Address", state: "State")

    /// The rows, in the order added.
    public var rows: [Row] = []

    /// An empty table.
    public init() {}

    /// Adds a row for a connection.
    public mutating func add(_ status: ConnectionStatus) {
        rows.append(Row(
            proto: Self.proto(status.local.address), receiveQueue: status.receiveQueue, sendQueue: status.sendQueue,
            local: status.local.description, foreign: status.remote.description, state: status.state.rfcName))
    }

    /// Adds a row for a listening socket, as netstat shows one with `-a`.
    public mutating func addListener(_ local: Endpoint) {
        let foreign = if case .v6 = local.address { "[::]:*" } else { "0.0.0.0:*" }
        rows.append(Row(
            proto: Self.proto(local.address), receiveQueue: 0, sendQueue: 0,
            local: local.description, foreign: foreign, state: TCPState.listen.rfcName))
    }

    /// Adds a row for a UDP endpoint, as `netstat -un` shows one: Recv-Q is the bytes of the datagrams
    /// not yet read; an endpoint bound to every address shows `0.0.0.0` (or `[::]`, IPv6 only: ours
    /// takes both families, shown as `*`); a connected one shows its peer and ESTABLISHED.
    public mutating func add(_ status: UDPEndpointStatus) {
        let local: String
        if let address = status.localAddress {
            local = Endpoint(address, status.localPort).description
        } else {
            local = "*:\(status.localPort)"
        }
        let family = status.localAddress ?? status.remote?.address
        let proto = if case .v6? = family { "udp6" } else { "udp" }
        rows.append(Row(
            proto: proto, receiveQueue: status.queuedBytes, sendQueue: 0, local: local,
            foreign: status.remote?.description ?? "*:*", state: status.remote == nil ? "" : "ESTABLISHED"))
    }

    /// The header, then one line per row.
    public var lines: [String] {
        [Self.header] + rows.map { row in
            Self.line(
                proto: row.proto, receiveQueue: String(row.receiveQueue), sendQueue: String(row.sendQueue),
                local: row.local, foreign: row.foreign, state: row.state)
        }
    }

    private static func proto(_ address: IPAddress) -> String {
        if case .v6 = address { "tcp6" } else { "tcp" }
    }

    // 5 + 1 + 6 + 1 + 6 + 1 + 23 + 1 + 23 + 1 + 11 ("ESTABLISHED") = 79 columns.
    private static func line(
        proto: String, receiveQueue: String, sendQueue: String, local: String, foreign: String, state: String
    ) -> String {
        TextFormat.left(proto, 5) + " " + TextFormat.right(receiveQueue, 6) + " " + TextFormat.right(sendQueue, 6)
            + " " + TextFormat.left(local, 23) + " " + TextFormat.left(foreign, 23) + " " + state
    }
}
