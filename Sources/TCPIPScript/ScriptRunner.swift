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
    /// Our ISS (the stack's), learnt from its SYN or SYN-ACK.
    var iss: UInt32?
    /// The first outbound TS val minus the script's: maps TS values between the two clocks.
    var timestampOffset: UInt32?
    var liveTimestamps: [UInt32: UInt32] = [:]

    var now = Instant.zero
    /// Relative times count from here: when the previous event actually completed.
    var base = Instant.zero
    var outbound: [(time: Instant, datagram: ByteBuffer)] = []
    var currentLine = 0

    var sockets: [Int: ScriptSocket] = [:]
    /// The connection most recently opened or accepted, for state queries after its fd is closed.
    var lastConnection: ConnectionID?
    var lastConnectionTuple: FourTuple?
    var pending: PendingCall?
    let toleranceMicroseconds: Int64
    let tolerancePercent: Double

    public init(script: Script, profile: ScriptProfile, seed: UInt64 = 1) {
        self.script = script
        self.profile = profile
        let ipv6 = script.option("ip_version") == "ipv6"
        localAddress = ipv6 ? .v6(IPv6Address("fd3d:a0b:17d6::1")!) : .v4(IPv4Address(192, 168, 0, 1))
        remoteAddress = ipv6 ? .v6(IPv6Address("fd3d:fa7b:d17d::1")!) : .v4(IPv4Address(192, 0, 2, 1))
        var tcp = profile.tcpConfiguration()
        if let command = script.initCommand {
            if command.contains("tcp_timestamps=0") { tcp.timestamps = false }
            if command.contains("tcp_sack=0") { tcp.selectiveAcknowledgments = false }
            if command.contains("tcp_window_scaling=0") { tcp.windowScaling = false }
            Self.applySysctls(command, to: &tcp)
        }
        let mtu = script.option("mtu").flatMap { Int($0) } ?? (ipv6 ? profile.mtu + 20 : profile.mtu)
        configuration = StackConfiguration(addresses: [localAddress], mtu: mtu, checksumOffload: false, seed: seed, tcp: tcp)
        toleranceMicroseconds = script.option("tolerance_usecs").flatMap { Int64($0) } ?? 4000
        tolerancePercent = script.option("tolerance_percent").flatMap { Double($0) } ?? 12.5
    }

    /// The sysctls of a shell line that map onto the stack's configuration: ECN (Linux
    /// `net.ipv4.tcp_ecn`, FreeBSD `net.inet.tcp.ecn.enable`: 0 off, 1 request, 2 accept when asked),
    /// the SYN retry count (Linux `net.ipv4.tcp_syn_retries`) and FreeBSD's connection-establishment
    /// timeout (`net.inet.tcp.keepinit`, milliseconds).
    static func applySysctls(_ command: String, to tcp: inout TCPConfiguration) {
        for word in command.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "`" }) {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let value = Int(parts[1]) else { continue }
            switch parts[0] {
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
            default:
                continue
            }
        }
    }

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
            for event in script.events {
                currentLine = event.position.line
                try perform(event)
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

    func failure(_ message: String, line: Int? = nil, expected: String? = nil, actual: String? = nil) -> ScriptFailure {
        ScriptFailure(line: line ?? currentLine, message: message, expected: expected, actual: actual, recent: Array(exchanged.suffix(6)))
    }

    private func perform(_ event: ScriptEvent) throws {
        switch event.action {
        case .packet(let packet) where packet.other != nil:
            guard packet.direction == .inbound, let icmp = ScriptICMP(packet.other!) else {
                throw ScriptSkip(reason: "non-TCP packet `\(packet.other!)`")
            }
            let time = try scheduledTime(event.timing)
            try advance(to: time)
            try injectICMP(icmp, line: packet.other!)
            base = time
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
                if header.flags.contains(.syn) {
                    iss = header.sequenceNumber.rawValue
                    localPort = header.sourcePort
                    remotePort = header.destinationPort
                }
                let ecn = Self.ecnText(Self.ecn(of: datagram))
                exchanged.append("\(format(now)) > \(ecn)\(describe(header, payloadLength: payload.readableBytes, outbound: true))")
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

struct ScriptSkip: Error {
    var reason: String
}
