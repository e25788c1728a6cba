import NIOCore
import TCPIP
import TCPIPWire

/// Runs a packetdrill script against a `Stack` on virtual time, playing the remote peer.
///
/// `<` packets are built and handed to the stack at their time; `>` packets are taken from what the
/// stack sent, in order, and compared field by field in the script's relative numbering (packetdrill's
/// `run_packet.c`); system calls go to the stack through a table of script file descriptors
/// (`ScriptRunner+SystemCalls.swift`). Time passes only when the script says so, timer by timer,
/// so a run is exact and repeatable: the tolerance of `--tolerance_usecs` still applies to when the
/// stack sent something, but there is no scheduling noise to absorb.
///
/// Runner choices, documented in docs/CONFORMANCE.md:
/// - Inbound packets larger than the MSS are injected as one segment (no GSO split).
/// - Shell commands are skipped; `%{ assert tcpi_state == TCPI_X }%` is evaluated, other Python skipped.
/// - Segments left over at the end are not reported, as in packetdrill.
public final class ScriptRunner {
    public let script: Script
    public let profile: ScriptProfile
    /// The script's header options (`--ip_version`, `--tolerance_usecs`, …).
    public let header: ScriptHeader
    /// Mismatches `--non_fatal` let through, in order.
    public internal(set) var warnings: [ScriptFailure] = []
    /// Every datagram in both directions with its time, for `--pcap`.
    public internal(set) var capture: [(time: Instant, datagram: ByteBuffer)] = []
    /// Every segment exchanged, in the script's numbering, for failure reports and `--trace`.
    public internal(set) var exchanged: [String] = []
    /// Decisions the stack traced (with `tracing`).
    public internal(set) var decisions: [String] = []
    public var tracing = false

    var configuration: StackConfiguration
    var stackStorage: Stack?
    let localAddress: IPAddress
    let remoteAddress: IPAddress
    /// The stack's port and the peer's; learnt from the stack's SYN on an active open.
    var localPort: UInt16 = 8080
    var remotePort: UInt16 = 40000
    /// The MSS the run's MTU gives (MTU less the IP and TCP headers).
    let segmentSize: Int
    /// Our ISS (the stack's), learnt from its SYN or SYN-ACK.
    var iss: UInt32?
    /// The peer's ISN in script space, from the SYN or SYN-ACK that opened the connection under
    /// test: packetdrill numbers the peer's later sequence numbers from it (`< S. 123:123(0)`, then
    /// `> . 1:1(0) ack 1`), while our SYN-ACK's ack field stays as written (`ack 1428933`).
    var remoteBase: UInt32 = 0
    /// The first outbound TS val minus the script's: maps TS values between the two clocks.
    var timestampOffset: UInt32?
    var liveTimestamps: [UInt32: UInt32] = [:]

    var now = Instant.zero
    /// Relative times count from here: when the previous event actually completed.
    var base = Instant.zero
    var outbound: [(time: Instant, datagram: ByteBuffer)] = []
    var currentLine = 0

    var sockets: [Int: ScriptSocket] = [:]
    /// epoll instances by file descriptor (`ScriptRunner+Epoll.swift`).
    var epolls: [Int: EpollSet] = [:]
    /// packetdrill's socket under test, whose segments alone `>` lines are compared with.
    var underTest = SocketUnderTest.any
    /// Connections a listener under test has made from inbound SYNs: each after the first comes
    /// from a new remote port, as packetdrill gives each child its own (next_ephemeral_port).
    var childrenMade = 0
    /// The ports of the last `< udp` line, which an outbound ICMP error must quote (ScriptRunner+UDP.swift).
    var lastInboundUDPPorts: (source: UInt16, destination: UInt16)?
    /// The sequence number and payload length of the stack's latest TCP segment, for ICMP quotes.
    var lastOutboundSegment: (sequence: UInt32, payload: Int)?
    /// The connection most recently opened or accepted, for state queries after its fd is closed.
    var lastConnection: ConnectionID?
    var lastConnectionTuple: FourTuple?
    var pending: PendingCall?
    let toleranceMicroseconds: Int64
    let tolerancePercent: Double

    public init(script: Script, profile: ScriptProfile, seed: UInt64 = 1) {
        self.script = script
        self.profile = profile
        header = ScriptHeader(script)
        let ipv6 = header.ipVersion == .ipv6
        (localAddress, remoteAddress) = header.addresses
        localPort = header.bindPort
        var tcp = profile.tcpConfiguration()
        let mtu = header.mtu ?? (ipv6 ? profile.ipv6MTU : profile.mtu)
        segmentSize = mtu - (ipv6 ? 60 : 40)
        if let space = profile.receiveSpace { tcp.receiveBufferSize = Self.wholeSegments(space, segmentSize) }
        if let command = script.initCommand {
            Self.applySysctls(command, to: &tcp, segmentSize: segmentSize)
        }
        configuration = StackConfiguration(addresses: [localAddress], mtu: mtu, checksumOffload: false, seed: seed, tcp: tcp)
        toleranceMicroseconds = header.toleranceMicroseconds
        tolerancePercent = header.tolerancePercent
    }

    /// The sysctls of a shell line that map onto the stack's configuration, FreeBSD's
    /// (`sysctl -w net.inet.tcp.x=V`) and Linux's (`sysctl -q net.ipv4.tcp_x=V`,
    /// `set_sysctls.py /proc/sys/net/ipv4/tcp_x=V`). A sysctl of either system with no meaning for
    /// the stack (host cache, TSO, pacing) changes nothing.
    ///
    /// - ECN: `net.ipv4.tcp_ecn`, `net.inet.tcp.ecn.enable` (0 off, 1 request, 2 accept when asked).
    /// - Options: `net.inet.tcp.rfc1323` (timestamps and window scaling; FreeBSD's 2 and 3 select
    ///   one), `net.inet.tcp.sack.enable`, `net.ipv4.tcp_timestamps`, `tcp_sack`, `tcp_window_scaling`.
    /// - RFC 793 instead of RFC 5961: `net.inet.tcp.insecure_rst`, `net.inet.tcp.insecure_syn`.
    /// - SYN with FIN: `net.inet.tcp.drop_synfin` (0 takes it as a SYN).
    /// - Closed ports: `net.inet.tcp.blackhole` (1: no RST for a SYN, 2: none at all).
    /// - Buffers: `net.inet.tcp.recvspace`, `net.inet.tcp.sendspace` (the default socket buffers).
    /// - Timers: `net.ipv4.tcp_syn_retries`, `net.inet.tcp.keepinit` (ms), `net.inet.tcp.delacktime`
    ///   (ms), `net.inet.tcp.rexmit_initial` (ms), `net.inet.tcp.rexmit_min` (ms), `net.inet.tcp.msl` (ms).
    /// Linux's `net.ipv4.tcp_fastopen` bits (include/net/tcp.h): 0x1 client, 0x2 server, 0x4 a
    /// client sends data without a cookie, 0x200 a server takes data without one, 0x400 every
    /// listener without TCP_FASTOPEN.
    static func applyFastOpenFlags(_ value: Int, to fastOpen: inout FastOpen) {
        fastOpen.client = value & 0x1 != 0
        fastOpen.server = value & 0x2 != 0
        fastOpen.clientRequiresCookie = value & 0x4 == 0
        fastOpen.serverRequiresCookie = value & 0x200 == 0
        fastOpen.serverOnEveryListener = value & 0x400 != 0
    }

    /// `size` rounded up to whole segments, as FreeBSD's tcp_mss rounds its socket buffers.
    static func wholeSegments(_ size: Int, _ segment: Int) -> Int {
        let segment = max(segment, 1)
        return (size + segment - 1) / segment * segment
    }

    /// - Returns: the names of the sysctls that changed the configuration.
    @discardableResult
    static func applySysctls(_ command: String, to tcp: inout TCPConfiguration, segmentSize: Int) -> [String] {
        var applied: [String] = []
        // A backslash ends a line that goes on (`set_sysctls.py /proc/sys/…=0\`).
        for word in command.split(whereSeparator: { " \n\t`\"'\\".contains($0) }) {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            var name = parts[0]
            if name.hasPrefix("/proc/sys/") { name = String(name.dropFirst("/proc/sys/".count)).replacingSlashes }
            if name == "net.ipv4.tcp_fastopen_key" {
                // The primary key; a backup key after a comma is not kept (the stack has one key).
                if let key = FastOpenKey(linuxNotation: parts[1].split(separator: ",").first ?? "") {
                    tcp.fastOpen.key = key
                    applied.append(name)
                }
                continue
            }
            let hex = parts[1].hasPrefix("0x") ? Int(parts[1].dropFirst(2), radix: 16) : nil
            guard let value = hex ?? Int(parts[1]) else { continue }
            switch name {
            case "net.ipv4.tcp_fastopen":
                applyFastOpenFlags(value, to: &tcp.fastOpen)
            case "net.inet.tcp.fastopen.client_enable":
                tcp.fastOpen.client = value != 0
            case "net.inet.tcp.fastopen.server_enable":
                tcp.fastOpen.server = value != 0
            case "net.ipv4.tcp_ecn", "net.inet.tcp.ecn.enable":
                switch value {
                case 0: tcp.explicitCongestionNotification = .off
                case 1: tcp.explicitCongestionNotification = .request
                default: tcp.explicitCongestionNotification = .acceptWhenRequested
                }
            case "net.ipv4.tcp_syn_retries" where value > 0:
                tcp.maximumSYNRetransmissions = value
            case "net.inet.tcp.keepinit" where value > 0:
                tcp.connectionTimeout = .milliseconds(Int64(value))
            case "net.inet.tcp.rfc1323":
                // tcp_input.c / tcp_syncache.c: V_tcp_do_rfc1323 1 both, 2 window scaling only, 3 timestamps only.
                tcp.windowScaling = value == 1 || value == 2
                tcp.timestamps = value == 1 || value == 3
            case "net.ipv4.tcp_timestamps":
                tcp.timestamps = value != 0
            case "net.ipv4.tcp_window_scaling":
                tcp.windowScaling = value != 0
            case "net.inet.tcp.sack.enable", "net.ipv4.tcp_sack":
                tcp.selectiveAcknowledgments = value != 0
            case "net.inet.tcp.insecure_rst":
                tcp.acceptsAnyResetInWindow = value != 0
            case "net.inet.tcp.blackhole":
                tcp.closedPortResets = value == 0 ? .all : value == 1 ? .exceptSYN : .none
            case "net.inet.tcp.drop_synfin":
                tcp.acceptsSYNWithFIN = value == 0
                tcp.acceptsSYNACKWithFIN = value == 0
            case "net.inet.tcp.insecure_syn":
                tcp.resetsOnSYNInWindow = value != 0
            case "net.inet.tcp.recvspace" where value > 0:
                // tcp_mss() (tcp_input.c) rounds the buffer up to whole segments of the MSS once it is
                // known; the suite's peers offer the full MSS without timestamps (65536 → 65700 over IPv4).
                tcp.receiveBufferSize = wholeSegments(value, segmentSize)
            case "net.inet.tcp.sendspace" where value > 0:
                tcp.sendBufferSize = max(tcp.sendBufferSize, value)
            case "net.inet.tcp.delacktime" where value > 0:
                tcp.delayedAckTimeout = .milliseconds(Int64(value))
            case "net.inet.tcp.rexmit_initial" where value > 0:
                tcp.initialRTO = .milliseconds(Int64(value))
            case "net.inet.tcp.rexmit_min" where value > 0:
                tcp.minimumRTO = .milliseconds(Int64(value))
            case "net.inet.tcp.msl" where value > 0:
                tcp.maximumSegmentLifetime = .milliseconds(Int64(value))
            default:
                continue
            }
            applied.append(name)
        }
        return applied
    }

    /// The sysctls a script may set once the stack is made: those of `TCPConfiguration.Reconfigurable`
    /// (`Stack.reconfigure` says from when each applies).
    static let reconfigurableSysctls: Set<String> = [
        "net.ipv4.tcp_fastopen", "net.ipv4.tcp_fastopen_key", "net.inet.tcp.fastopen.client_enable",
        "net.inet.tcp.fastopen.server_enable", "net.ipv4.tcp_ecn", "net.inet.tcp.ecn.enable", "net.ipv4.tcp_syn_retries",
        "net.inet.tcp.rfc1323", "net.ipv4.tcp_timestamps", "net.ipv4.tcp_window_scaling", "net.inet.tcp.sack.enable",
        "net.ipv4.tcp_sack", "net.inet.tcp.insecure_rst", "net.inet.tcp.insecure_syn", "net.inet.tcp.drop_synfin",
        "net.inet.tcp.blackhole",
    ]

    /// The stack, made on first use so that options set before `listen`/`connect` (SO_RCVBUF,
    /// TCP_NODELAY) can still shape its configuration.
    var stack: Stack {
        if let stackStorage { return stackStorage }
        let stack = Stack(configuration)
        stack.tracing = tracing
        stackStorage = stack
        return stack
    }

    // MARK: Running

    public func run() -> ScriptOutcome {
        do {
            if let (name, reason) = header.unsupported.first {
                throw ScriptSkip(reason: "--\(name): \(reason)")
            }
            if let command = script.initCommand, command.contains("route"), command.contains("advmss") || command.contains("mtu lock") {
                // A route's advmss / locked MTU, as `ip route` sets them for RFC 4821 MTU probing: the
                // stack's MSS and MTU are per stack, with no route table.
                throw ScriptSkip(reason: "route attributes (advmss, mtu lock) set with `ip route`: the stack has no route table")
            }
            for event in script.events {
                currentLine = event.position.line
                do {
                    try perform(event)
                } catch let failure as ScriptFailure where isNonFatal(event) {
                    warnings.append(failure)
                }
            }
            currentLine = script.events.last?.position.line ?? 0
            if let pending {
                throw failure("blocking \(pending.call.name)() never returned", line: pending.line)
            }
            return ScriptOutcome(verdict: .passed, exchanged: exchanged, decisions: decisions)
        } catch let skip as ScriptSkip {
            return ScriptOutcome(verdict: .skipped(skip.reason, line: currentLine), exchanged: exchanged, decisions: decisions)
        } catch let failure as ScriptFailure {
            return ScriptOutcome(verdict: .failed(failure), exchanged: exchanged, decisions: decisions)
        } catch {
            return ScriptOutcome(verdict: .failed(self.failure("\(error)")), exchanged: exchanged, decisions: decisions)
        }
    }

    /// `--non_fatal=packet,syscall`: a mismatch of such an event is a warning, and the script goes on.
    private func isNonFatal(_ event: ScriptEvent) -> Bool {
        switch event.action {
        case .packet: header.nonFatal.contains("packet")
        case .systemCall: header.nonFatal.contains("syscall")
        default: false
        }
    }

    func failure(_ message: String, line: Int? = nil, expected: String? = nil, actual: String? = nil) -> ScriptFailure {
        ScriptFailure(line: line ?? currentLine, message: message, expected: expected, actual: actual, recent: Array(exchanged.suffix(6)))
    }

    private func perform(_ event: ScriptEvent) throws {
        switch event.action {
        case .packet(let packet) where packet.other != nil:
            // ICMP and UDP lines: ScriptRunner+UDP.swift.
            base = try playNonTCP(packet, timing: event.timing)
        case .packet(let packet) where packet.options.containsMD5:
            throw ScriptSkip(reason: "TCP MD5 signature option (RFC 2385): the stack does not implement it")
        case .packet(let packet) where packet.encapsulation != nil:
            throw ScriptSkip(reason: "a segment encapsulated in `/\(packet.encapsulation!)`: the stack has no TCP over UDP")
        case .packet(let packet) where packet.marked:
            throw ScriptSkip(reason: "`!` after a sequence range is not packetdrill's grammar; the runner does not interpret it")
        case .packet(let packet) where packet.direction == .inbound:
            let time = try scheduledTime(event.timing)
            try advance(to: time)
            try inject(packet)
            base = time
        case .packet(let packet):
            base = try expect(packet, timing: event.timing)
        case .systemCall(let call):
            switch event.timing {
            case .blocking(let callStart, let callEnd):
                let startTime = try scheduledTime(.at(callStart))
                let endTime = instant(callEnd)
                try advance(to: startTime)
                base = startTime
                try start(call, line: event.position.line, blockingUntil: endTime)
            default:
                let time = try scheduledTime(event.timing)
                try advance(to: time)
                base = time
                try start(call, line: event.position.line, blockingUntil: nil)
            }
        case .shell(let command):
            let time = try scheduledTime(event.timing)
            try advance(to: time)
            base = time
            try shell(command)
        case .python(let code):
            let time = try scheduledTime(event.timing)
            try advance(to: time)
            base = time
            try python(code)
        }
    }

    /// When an event at `.at(t)` is due; it fails if the script is already past that time by more than
    /// the tolerance (a previous event happened late).
    func scheduledTime(_ timing: ScriptTiming) throws -> Instant {
        guard case .at(let time) = timing else { return now }
        let target = instant(time)
        if target < now - .microseconds(toleranceMicroseconds) {
            throw failure("event due at \(format(target)) but the script is already at \(format(now))")
        }
        return max(target, now)
    }

    func instant(_ time: ScriptTime) -> Instant {
        time.relative ? base + .microseconds(time.microseconds) : .zero + .microseconds(time.microseconds)
    }

    /// packetdrill's tolerance: the larger of `--tolerance_usecs` and `--tolerance_percent` of the
    /// time since the previous event.
    func tolerance(for target: Instant) -> TimeAmount {
        let sincePrevious = max(0, (target - base).nanoseconds)
        let percent = Int64(Double(sincePrevious) * tolerancePercent / 100)
        return .nanoseconds(max(toleranceMicroseconds * 1000, percent))
    }

    func format(_ instant: Instant) -> String {
        let micros = instant.nanoseconds / 1000
        let fraction = String(micros % 1_000_000 + 1_000_000).dropFirst()
        return "\(micros / 1_000_000).\(fraction)s"
    }

    // MARK: Time

    /// Lets virtual time pass to `target`, running every timer due on the way and collecting output.
    func advance(to target: Instant) throws {
        collect()
        try completePending()
        var steps = 0
        while let deadline = stackStorage?.nextDeadline, deadline <= target, steps < 1_000_000 {
            try checkPendingDeadline(before: deadline)
            now = max(now, deadline)
            stack.advanceTime(to: now)
            collect()
            try completePending()
            steps += 1
        }
        try checkPendingDeadline(before: target)
        now = max(now, target)
        try completePending()
    }

    /// Drains what the stack sent into the outbound queue.
    func collect() {
        guard let stack = stackStorage else { return }
        while let datagram = stack.nextPacketToSend() {
            outbound.append((now, datagram))
            capture.append((now, datagram))
            if let (header, payload) = decode(datagram) {
                lastOutboundSegment = (header.sequenceNumber.rawValue, payload.readableBytes)
                if header.flags.contains(.syn) {
                    iss = header.sequenceNumber.rawValue
                    localPort = header.sourcePort
                    remotePort = header.destinationPort
                }
                let ecn = Self.ecnText(Self.ecn(of: datagram))
                exchanged.append("\(format(now)) > \(ecn)\(describe(header, payloadLength: payload.readableBytes, outbound: true, wire: Self.rawOptions(of: datagram)))")
            }
        }
        if tracing {
            decisions.append(contentsOf: stack.drainTrace().map { "\(format($0.time)) \($0.rule): \($0.message)" })
        }
    }

    /// The ECN field of a datagram's IP header (RFC 3168 §5).
    static func ecn(of datagram: ByteBuffer) -> ECNCodepoint {
        (try? IPDatagram.parse(datagram, verifyChecksum: false))?.ecn ?? .notECT
    }

    /// `[ect0] ` and the like for a segment line; nothing for Not-ECT.
    static func ecnText(_ codepoint: ECNCodepoint) -> String {
        switch codepoint {
        case .notECT: ""
        case .ect0: "[ect0] "
        case .ect1: "[ect1] "
        case .congestionExperienced: "[ce] "
        }
    }

    func decode(_ datagram: ByteBuffer) -> (TCPHeader, ByteBuffer)? {
        guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: true),
            let segment = try? TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: true)
        else { return nil }
        return segment
    }
}

/// How a script ended.
public struct ScriptOutcome: Sendable {
    public enum Verdict: Sendable {
        case passed
        case failed(ScriptFailure)
        /// The script needs something the runner or the stack does not offer.
        case skipped(String, line: Int)
    }
    public var verdict: Verdict
    public var exchanged: [String]
    public var decisions: [String]

    public var passed: Bool {
        if case .passed = verdict { return true }
        return false
    }
}

/// The first mismatch of a script: its line, what it expected and what happened.
public struct ScriptFailure: Error, Sendable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public var expected: String?
    public var actual: String?
    /// The last segments exchanged before the failure, in script numbering.
    public var recent: [String]

    public init(line: Int, message: String, expected: String? = nil, actual: String? = nil, recent: [String]) {
        self.line = line
        self.message = message
        self.expected = expected
        self.actual = actual
        self.recent = recent
    }

    public var description: String {
        var text = "line \(line): \(message)"
        if let expected { text += "\n  expected: \(expected)" }
        if let actual { text += "\n  actual:   \(actual)" }
        if !recent.isEmpty { text += "\n  last segments:\n" + recent.map { "    \($0)" }.joined(separator: "\n") }
        return text
    }
}

extension Instant {
    static func - (lhs: Instant, rhs: TimeAmount) -> Instant {
        Instant(nanoseconds: lhs.nanoseconds - rhs.nanoseconds)
    }
}

/// The socket packetdrill compares outbound segments for (run_packet.c: `socket_under_test`, set by
/// socket() and by an inbound SYN to a listener; sniff_outbound_live_packet drops every live packet
/// that is not from it, find_socket_for_live_packet and find_connect_for_live_packet): segments of
/// other connections — the FIN of a socket closed before the next socket() — are not the script's.
enum SocketUnderTest: Equatable {
    /// No socket() yet: every segment is compared.
    case any
    /// A socket that has no connection yet: a SYN (without ACK) it sends on connect(), and answers
    /// to segments the script sent it — which packetdrill maps onto the socket's own ports — on
    /// `injected`, the ports of the last of them.
    case new(fd: Int, injected: Ports?)
    /// A connection: its ports.
    case connection(Ports)

    struct Ports: Equatable {
        var local: UInt16
        var remote: UInt16
    }

    /// Whether the stack's segment `header` is the socket's; a SYN of a new socket makes it its.
    mutating func owns(_ header: TCPHeader) -> Bool {
        let ports = Ports(local: header.sourcePort, remote: header.destinationPort)
        switch self {
        case .any:
            return true
        case .new(_, let injected):
            if header.flags.contains(.syn) && !header.flags.contains(.ack) {
                self = .connection(ports)
                return true
            }
            return ports == injected
        case .connection(let own):
            return ports == own
        }
    }
}

struct ScriptSkip: Error {
    var reason: String
}

extension ScriptPacket.OptionList {
    var containsMD5: Bool {
        guard case .list(let options) = self else { return false }
        return options.contains { if case .md5 = $0 { true } else { false } }
    }
}

extension String {
    /// `net/ipv4/tcp_sack` → `net.ipv4.tcp_sack`: a /proc/sys path as a sysctl name.
    var replacingSlashes: String { String(map { $0 == "/" ? "." : $0 }) }
}
