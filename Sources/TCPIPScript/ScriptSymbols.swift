/// The Linux numeric values of the symbols scripts use (packetdrill resolves them the same way).
enum ScriptSymbols {
    static let values: [String: Int64] = [
        "AF_INET": 2, "AF_INET6": 10, "AF_UNSPEC": 0, "PF_INET": 2, "PF_INET6": 10,
        "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "SOCK_NONBLOCK": 0x800, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17, "IPPROTO_IP": 0,
        "SOL_SOCKET": 1, "SOL_TCP": 6, "SOL_IP": 0,
        "SO_REUSEADDR": 2, "SO_ERROR": 4, "SO_SNDBUF": 7, "SO_RCVBUF": 8, "SO_KEEPALIVE": 9, "SO_LINGER": 13,
        "SO_REUSEPORT": 15,
        "TCP_NODELAY": 1, "TCP_MAXSEG": 2, "TCP_CORK": 3, "TCP_KEEPIDLE": 4, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 6,
        "TCP_INFO": 11, "TCP_CONGESTION": 13, "TCP_USER_TIMEOUT": 18, "TCP_NOTSENT_LOWAT": 25, "TCP_INQ": 36,
        "O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2, "O_NONBLOCK": 0x800, "F_GETFL": 3, "F_SETFL": 4,
        "SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2,
        "MSG_OOB": 1, "MSG_PEEK": 2, "MSG_DONTWAIT": 0x40, "MSG_EOR": 0x80, "MSG_MORE": 0x8000,
        "MSG_ZEROCOPY": 0x4000000, "MSG_FASTOPEN": 0x20000000, "MSG_NOSIGNAL": 0x4000,
        "POLLIN": 1, "POLLPRI": 2, "POLLOUT": 4, "POLLERR": 8, "POLLHUP": 0x10, "POLLNVAL": 0x20,
        "POLLRDNORM": 0x40, "POLLWRNORM": 0x100, "POLLRDHUP": 0x2000,
        "SIOCINQ": 0x541B, "FIONREAD": 0x541B,
        "EAGAIN": 11, "EPIPE": 32, "ECONNRESET": 104, "ECONNREFUSED": 111, "ETIMEDOUT": 110, "ENOTCONN": 107,
        "EINPROGRESS": 115, "EALREADY": 114, "EISCONN": 106, "EINVAL": 22, "ECONNABORTED": 103,
        "EFAULT": 14,
        "MSG_ERRQUEUE": 0x2000, "SO_MARK": 36, "SO_ZEROCOPY": 60,
        "SO_EE_ORIGIN_ZEROCOPY": 5, "SO_EE_CODE_ZEROCOPY_COPIED": 1,
        "EPOLLIN": 0x1, "EPOLLPRI": 0x2, "EPOLLOUT": 0x4, "EPOLLERR": 0x8, "EPOLLHUP": 0x10, "EPOLLRDNORM": 0x40,
        "EPOLLWRNORM": 0x100, "EPOLLRDHUP": 0x2000, "EPOLLEXCLUSIVE": 0x1000_0000, "EPOLLONESHOT": 0x4000_0000,
        "EPOLLET": 0x8000_0000, "EPOLL_CTL_ADD": 1, "EPOLL_CTL_DEL": 2, "EPOLL_CTL_MOD": 3,
        "TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3, "TCP_CA_Loss": 4,
    ]

    static func value(_ name: String) -> Int64? { values[name] }

    /// An integer expression: a number, a symbol, `A|B`, or `htons(N)`.
    static func evaluate(_ expression: ScriptExpression) -> Int64? {
        switch expression {
        case .integer(let value): value
        case .symbol(let name): values[name]
        case .bitwiseOr(let a, let b): evaluate(a).flatMap { a in evaluate(b).map { a | $0 } }
        case .call("htons", let arguments): arguments.first.flatMap(evaluate)
        case .list(let items) where items.count == 1: evaluate(items[0])
        default: nil
        }
    }

    /// RFC 9293 §3.3.2 states by Linux's `TCPI_*` names (`tcp_states.h`).
    static let tcpiStates: [String: String] = [
        "TCPI_ESTABLISHED": "ESTABLISHED", "TCPI_SYN_SENT": "SYN-SENT", "TCPI_SYN_RECV": "SYN-RECEIVED",
        "TCPI_FIN_WAIT1": "FIN-WAIT-1", "TCPI_FIN_WAIT2": "FIN-WAIT-2", "TCPI_TIME_WAIT": "TIME-WAIT",
        "TCPI_CLOSE": "CLOSED", "TCPI_CLOSE_WAIT": "CLOSE-WAIT", "TCPI_LAST_ACK": "LAST-ACK",
        "TCPI_LISTEN": "LISTEN", "TCPI_CLOSING": "CLOSING",
    ]
}
