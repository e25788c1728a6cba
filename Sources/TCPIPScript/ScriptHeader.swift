import TCPIP
import TCPIPWire

/// The options a script declares at its top (`--name=value`), read as packetdrill's `config.c` reads
/// its command line (`process_option`), and what each means to this runner.
///
/// Every option of `config.c` (google's, and nplab's fork that FreeBSD's suite uses) is known: an option with a meaning here is honoured, one that concerns
/// packetdrill's own machinery (a tun device, a remote wire server, a shared-object stack) is accepted
/// and ignored with the reason below; an option `config.c` does not know, or a bad value, is a syntax
/// error at its line, as packetdrill's `die("%s: bad --…")`.
public struct ScriptHeader: Sendable {
    public enum IPVersion: String, Sendable {
        case ipv4
        /// AF_INET6 sockets over IPv4 on the wire: the wire is what the runner plays.
        case ipv4MappedIPv6 = "ipv4-mapped-ipv6"
        case ipv6
    }

    public var ipVersion: IPVersion = .ipv4
    /// `--local_ip` / `--remote_ip`: the stack's address and the peer's (packetdrill's defaults otherwise).
    public var localAddress: IPAddress?
    public var remoteAddress: IPAddress?
    /// `--bind_port`: the port `bind` gives the socket under test (8080).
    public var bindPort: UInt16 = 8080
    /// `--connect_port`: the remote port `connect` reaches (8080).
    public var connectPort: UInt16 = 8080
    public var mtu: Int?
    /// `--mss`: the GSO size packetdrill gives injected packets larger than one segment. Linux's GRO
    /// hands such a packet to TCP as one skb, and the runner injects it as one segment, so the value
    /// changes nothing the stack sees (scripts read it back only through `tcpi_rcv_mss`).
    public var segmentSize: Int?
    public var toleranceMicroseconds: Int64 = 4000
    public var tolerancePercent: Double = 12.5
    /// `--tcp_ts_tick_usecs`: outbound TS val is checked, one tick being this many microseconds.
    public var timestampTickMicroseconds: Int64?
    /// `--tcp_ts_ecr_scaled`: an inbound `ecr` the script never saw as a TS val is scaled from the
    /// offset of the first (packetdrill interpolates; our clock offset is one constant).
    public var timestampEchoScaled = false
    /// `--strict_segments`: an outbound line matches one segment, no aggregation of bursts.
    public var strictSegments = false
    /// `--non_fatal=packet,syscall`: mismatches of these kinds are reported and the script goes on.
    public var nonFatal: Set<String> = []
    /// `--define=NAME=value`: symbols substituted in the script (`-D` on packetdrill's command line).
    public var defines: [String: String] = [:]
    /// Options accepted without effect, with why.
    public var ignored: [(name: String, reason: String)] = []
    /// Options that ask for something the stack does not do: the script is skipped with the reason.
    public var unsupported: [(name: String, reason: String)] = []

    public init() {}

    /// Why each option of `config.c` with no meaning for a user-space runner on virtual time is ignored.
    static let ignoredOptions: [String: String] = [
        "gateway_ip": "the runner plays the peer directly; there is no route or gateway",
        "netmask_ip": "the runner plays the peer directly; there is no subnet to configure",
        "speed": "the speed of packetdrill's tun device; the runner hands packets over without a link",
        "init_scripts": "shell scripts run before the test; the runner runs no shell",
        "wire_client": "packetdrill's two-machine mode; the runner is in-process",
        "wire_server": "packetdrill's two-machine mode; the runner is in-process",
        "wire_server_ip": "packetdrill's two-machine mode; the runner is in-process",
        "wire_server_at": "packetdrill's two-machine mode; the runner is in-process",
        "wire_server_port": "packetdrill's two-machine mode; the runner is in-process",
        "wire_client_dev": "packetdrill's two-machine mode; the runner is in-process",
        "wire_server_dev": "packetdrill's two-machine mode; the runner is in-process",
        "so_filename": "a shared-object stack for packetdrill; the stack under test is ours",
        "so_flags": "a shared-object stack for packetdrill; the stack under test is ours",
        "code_command": "the Python interpreter of %{ }% blocks; the runner evaluates tcpi_state itself",
        "code_format": "the language of %{ }% blocks; the runner evaluates tcpi_state itself",
        "code_sockopt": "the getsockopt behind %{ }% blocks (TCP_INFO); the runner queries the stack",
        "dry_run": "parse only: the runner always parses a script whole before running it",
        "is_anyip": "Linux's AnyIP routes; the stack owns the addresses it is configured with",
        "send_omit_free": "MSG_ZEROCOPY completion notifications; the stack has no zero-copy send",
        "debug": "packetdrill's debug output; use `tcpip script --trace`",
        "verbose": "packetdrill's verbose output; use `tcpip script --trace`",
    ]

    /// Options of nplab's packetdrill (the tool FreeBSD's tcp-testsuite runs under) that ask for
    /// something the stack does not do: the script is skipped, naming it.
    static let unsupportedOptions: [String: String] = [
        "udp_encapsulation": "TCP over UDP encapsulation (nplab packetdrill's --udp_encapsulation), which the stack does not have",
        "tcp_md5_secret": "TCP MD5 signatures (RFC 2385), which the stack does not implement",
    ]

    /// nplab's options about its tun device: the runner has none.
    static let nplabIgnoredOptions: [String: String] = [
        "tun_dev": "the tun device packetdrill opens; the runner hands packets over directly",
        "persistent_tun_dev": "the tun device packetdrill opens; the runner hands packets over directly",
    ]

    /// Reads one option; a message on an unknown option or a bad value.
    mutating func apply(name: String, value: String) -> String? {
        func integer(_ range: ClosedRange<Int64>) -> Int64? {
            let parsed = value.hasPrefix("0x") ? Int64(value.dropFirst(2), radix: 16) : Int64(value)
            return parsed.flatMap { range.contains($0) ? $0 : nil }
        }
        switch name {
        case "ip_version":
            guard let version = IPVersion(rawValue: value) else {
                return "bad --ip_version: \(value) (ipv4, ipv4-mapped-ipv6 or ipv6)"
            }
            ipVersion = version
        case "local_ip", "remote_ip":
            // `192.0.2.1/24`: packetdrill takes a prefix for the remote address.
            let text = String(value.split(separator: "/").first ?? "")
            guard let address = IPAddress(text) else { return "bad --\(name): \(value)" }
            if name == "local_ip" { localAddress = address } else { remoteAddress = address }
        case "bind_port", "connect_port":
            guard let port = integer(1...0xffff) else { return "bad --\(name): \(value)" }
            if name == "bind_port" { bindPort = UInt16(port) } else { connectPort = UInt16(port) }
        case "mss":
            guard let mss = integer(1...65535) else { return "bad --mss: \(value)" }
            segmentSize = Int(mss)
        case "mtu":
            guard let mtu = integer(68...65535) else { return "bad --mtu: \(value)" }
            self.mtu = Int(mtu)
        case "tolerance_usecs":
            guard let tolerance = integer(0...Int64(Int32.max)) else { return "bad --tolerance_usecs: \(value)" }
            toleranceMicroseconds = tolerance
        case "tolerance_percent":
            guard let percent = Double(value), percent >= 0 else { return "bad --tolerance_percent: \(value)" }
            tolerancePercent = percent
        case "tcp_ts_tick_usecs":
            guard let tick = integer(0...1_000_000) else { return "bad --tcp_ts_tick_usecs: \(value)" }
            timestampTickMicroseconds = tick == 0 ? nil : tick
        case "tcp_ts_ecr_scaled":
            timestampEchoScaled = true
        case "strict_segments":
            strictSegments = true
        case "non_fatal":
            for kind in value.split(whereSeparator: { $0 == "," || $0 == " " }) {
                guard kind == "packet" || kind == "syscall" else { return "bad --non_fatal: \(kind) (packet or syscall)" }
                nonFatal.insert(String(kind))
            }
        case "define":
            guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
                return "bad --define: \(value) (NAME=value)"
            }
            defines[String(value[..<equals])] = String(value[value.index(after: equals)...])
        default:
            if let reason = Self.unsupportedOptions[name] {
                unsupported.append((name, reason))
                return nil
            }
            guard let reason = Self.ignoredOptions[name] ?? Self.nplabIgnoredOptions[name] else { return "unknown option --\(name)" }
            ignored.append((name, reason))
        }
        return nil
    }

    /// The header of a parsed script (its options were checked when it was parsed).
    public init(_ script: Script) {
        self.init()
        for (name, value) in script.options { _ = apply(name: name, value: value) }
    }

    /// The addresses the script runs with: those it names, else packetdrill's runners' defaults
    /// (`ksft_runner.sh`, run_all.py: 192.168.0.1 and 192.0.2.1; fd3d:a0b:17d6::1 and fd3d:fa7b:d17d::1).
    var addresses: (local: IPAddress, remote: IPAddress) {
        let ipv6 = ipVersion == .ipv6
        func family(_ address: IPAddress?) -> IPAddress? {
            switch address {
            case .v4?: ipv6 ? nil : address
            case .v6?: ipv6 ? address : nil
            case nil: nil
            }
        }
        let local = family(localAddress)
            ?? (ipv6 ? .v6(IPv6Address("fd3d:a0b:17d6::1")!) : .v4(IPv4Address(192, 168, 0, 1)))
        let remote = family(remoteAddress)
            ?? (ipv6 ? .v6(IPv6Address("fd3d:fa7b:d17d::1")!) : .v4(IPv4Address(192, 0, 2, 1)))
        return (local, remote)
    }
}
