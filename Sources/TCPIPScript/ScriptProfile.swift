import NIOCore
import TCPIP
import TCPIPWire

/// The platform constants a corpus script assumes, so that the stack can be configured to meet
/// them. A profile changes constants and how options are compared, never protocol logic.
public struct ScriptProfile: Sendable, Hashable {
    public enum Name: String, Sendable, CaseIterable {
        case linux, freebsd
    }

    /// How the options of an outbound packet are compared with the script's list.
    public enum OptionComparison: Sendable, Hashable {
        /// Kind by kind in wire order, NOP and EOL included — packetdrill's rule.
        case exact
        /// As a set of kinds with their values; NOP and EOL ignored. For scripts written for a
        /// platform whose option order differs from ours (ours is Linux's).
        case unordered
    }

    public var name: Name
    /// Initial congestion window in segments (Linux: 10, RFC 6928).
    public var initialWindowSegments: Int
    public var minimumRTO: TimeAmount
    /// RFC 6298 §2's G in RTO = SRTT + max(G, K·RTTVAR) (`TCPConfiguration.clockGranularity`):
    /// Linux bounds the variance term by tcp_rto_min, i.e. G = 200 ms; FreeBSD keeps its tick.
    public var clockGranularity: TimeAmount = .milliseconds(1)
    public var delayedAckTimeout: TimeAmount
    /// Segments acknowledged at once at the start of a connection (Linux: TCP_MAX_QUICKACKS = 16;
    /// FreeBSD has no quick-ACK mode: 0).
    public var quickAcks: Int = 16
    /// The window-scale shift the platform announces, whatever its buffer (RFC 7323 §2.3).
    public var windowScale: UInt8
    /// Whether a receive buffer the script sets (SO_RCVBUF) decides the shift instead: Linux clamps
    /// the window, and so the shift, to a locked buffer (tcp_select_initial_window); FreeBSD derives
    /// it from kern.ipc.maxsockbuf whatever the buffer.
    public var windowScaleFollowsSetReceiveBuffer: Bool = false
    /// Receive buffer per connection. Linux announces the shift of tcp_rmem's maximum (15 MiB → 8).
    public var receiveBufferSize: Int
    /// FreeBSD's net.inet.tcp.recvspace: the buffer is this rounded up to whole segments of the run's
    /// MSS (tcp_input.c, tcp_mss): 65700 over IPv4 (MSS 1460), 66240 over IPv6 (MSS 1440). nil: the
    /// buffer is `receiveBufferSize`.
    public var receiveSpace: Int? = nil
    /// RFC 3465's per-ACK slow-start limit in segments (`TCPConfiguration.slowStartLimitSegments`):
    /// Linux counts every segment acknowledged (nil); FreeBSD's ABC uses L = 2 (net.inet.tcp.abc_l_var).
    public var slowStartLimitSegments: Int? = 1
    /// Whether the ACK of a FIN after data waits for the delayed-ACK timeout (Linux's pingpong
    /// mode: `TCPConfiguration.delaysFINAcknowledgment`) or leaves at once (FreeBSD).
    public var delaysFINAcknowledgment: Bool = false
    /// Whether a connection that replies within the delayed-ACK timeout stops quick-ACKing data
    /// (Linux's pingpong mode: `TCPConfiguration.interactiveDelayedAcks`).
    public var interactiveDelayedAcks: Bool = false
    /// Whether the ACK of a simultaneous-close FIN repeats our unacknowledged FIN
    /// (`TCPConfiguration.repeatsFINInSimultaneousClose`): FreeBSD yes, Linux no.
    public var repeatsFINInSimultaneousClose: Bool = false
    /// The receiver's SWS avoidance (`TCPConfiguration.receiverSWSAvoidance`): Linux keeps the right
    /// edge as RFC 9293 §3.8.6.2.2 suggests; FreeBSD offers all its free space unless it is small.
    public var receiverSWSAvoidance: ReceiverSWSAvoidance = .rightEdge
    /// RCV.WND for acceptability (`TCPConfiguration.receiveWindowForAcceptance`): Linux, the window
    /// announced; FreeBSD, its buffer's free space when larger (tcp_input's rcv_wnd).
    public var receiveWindowForAcceptance: ReceiveWindowForAcceptance = .announced
    /// The zero-window probe (`TCPConfiguration.zeroWindowProbe`): Linux sends a zero-length
    /// segment at SND.UNA − 1; FreeBSD an octet of new data.
    public var zeroWindowProbe: ZeroWindowProbe = .newData
    public var sendBufferSize: Int
    /// What `getsockopt(SO_RCVBUF / SO_SNDBUF)` reports for a size (set by the script or not), once
    /// the connection has this MSS (nil before): Linux doubles what was set; FreeBSD rounds up to
    /// a multiple of the MSS when the connection is established (65536 → 65700).
    public var reportedBufferSize: @Sendable (_ size: Int, _ set: Bool, _ mss: Int?) -> Int
    /// What `getsockopt(SO_RCVBUF / SO_SNDBUF)` reports before the script sets them.
    public var defaultReportedReceiveBuffer: Int
    public var defaultReportedSendBuffer: Int
    public var optionComparison: OptionComparison
    /// Whether PSH is compared. RFC 9293 §3.9.1.2 leaves where PSH goes to the sender (and a
    /// receiver must not depend on it); Linux marks the end of every TSO burst, which a stack
    /// sending MSS-sized segments from one buffer does not reproduce, so the Linux profile ignores it.
    public var checksPush: Bool
    /// The SYN option layout the platform sends, for documentation and error messages.
    public var synOptionOrder: String
    /// How the stack arranges its SYN's options under this profile (`TCPConfiguration.synOptionLayout`).
    public var synOptionLayout: TCPOptions.Layout = .linux
    /// Whether TIME-WAIT acknowledges every segment but a duplicate ACK
    /// (`TCPConfiguration.acknowledgesSegmentsInTimeWait`; FreeBSD's tcp_twcheck in tcp_timewait.c).
    public var acknowledgesSegmentsInTimeWait = false
    /// Whether a SYN with FIN set counts as a SYN (`TCPConfiguration.acceptsSYNWithFIN`): FreeBSD's
    /// default net.inet.tcp.drop_synfin=0 (tcp_input.c); Linux drops it (tcp_rcv_state_process).
    public var acceptsSYNWithFIN = false
    public var mtu: Int
    /// The MTU of an IPv6 run when the script names none: Linux's runners pass `--mtu=1520` so that
    /// the MSS stays 1460 (ksft_runner.sh); FreeBSD's suite runs IPv6 over its 1500-octet tun (MSS 1440).
    public var ipv6MTU: Int = 1520
    /// SYN retransmissions before an OPEN fails (Linux tcp_syn_retries = 6; FreeBSD TCP_MAXRXTSHIFT = 12).
    public var maximumSYNRetransmissions: Int = 6
    /// The largest RTO, the cap of the backoff (Linux TCP_RTO_MAX is 120 s — our 60 s, RFC 6298
    /// §2.5's floor, is kept for Linux; FreeBSD TCPTV_REXMTMAX = 64 s).
    public var maximumRTO: TimeAmount = .seconds(60)
    /// TCP_KEEPINIT's default (FreeBSD net.inet.tcp.keepinit = 75 s); Linux has none.
    public var connectionTimeout: TimeAmount? = nil
    /// Minshall's Nagle (`TCPConfiguration.nagleMinshall`): Linux's tcp_nagle_check.
    public var nagleMinshall = false
    /// What the PTO adds to 2·SRTT with more than one segment in flight (`TCPConfiguration.lossProbeSlack`):
    /// Linux's TCP_TIMEOUT_MIN, 2 ms at HZ=1000 (tcp_schedule_loss_probe); FreeBSD's RACK stack is not its default.
    public var lossProbeSlack: TimeAmount = .zero
    /// TCP Fast Open (`TCPConfiguration.fastOpen`); the RFC's defaults unless the platform's differ.
    public var fastOpen = FastOpen()
    /// The errno of a write on a TCP socket that was never connected: Linux's EPIPE (tcp_sendmsg_locked
    /// → sk_stream_wait_connect in state CLOSE), FreeBSD's ENOTCONN (sosend_generic, PR_CONNREQUIRED).
    public var unconnectedWriteErrno = "ENOTCONN"

    public static func == (lhs: ScriptProfile, rhs: ScriptProfile) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    /// `gtests/net/common/defaults.sh` and the kernel defaults the google and kernel scripts rely on.
    public static let linux = ScriptProfile(
        name: .linux, initialWindowSegments: 10, minimumRTO: .milliseconds(200), clockGranularity: .milliseconds(200),
        delayedAckTimeout: .milliseconds(40),
        windowScale: 8, windowScaleFollowsSetReceiveBuffer: true, receiveBufferSize: 15_728_640, slowStartLimitSegments: nil, delaysFINAcknowledgment: true,
        zeroWindowProbe: .acknowledgmentRequest, sendBufferSize: 4_194_304,
        reportedBufferSize: { size, set, _ in set ? size * 2 : size }, defaultReportedReceiveBuffer: 540_000, defaultReportedSendBuffer: 262_144,
        optionComparison: .exact, checksPush: false,
        synOptionOrder: "<mss 1460,sackOK,TS val V ecr 0,nop,wscale 8>", mtu: 1500
    ).withLinuxFastOpen()

    /// defaults.sh: `tcp_fastopen=0x70403` (client, server, every listener without the socket
    /// option) and `tcp_fastopen_key=a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4`, the key behind the
    /// scripts' TFO_COOKIE.
    private func withLinuxFastOpen() -> ScriptProfile {
        var profile = self
        ScriptRunner.applyFastOpenFlags(0x70403, to: &profile.fastOpen)
        profile.fastOpen.key = FastOpenKey(linuxNotation: "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4")
        // tcp_send_syn_data: with no server MSS cached, a SYN's data is bounded by our own MSS.
        profile.fastOpen.uncachedSYNDataLimit = .ownMSS
        profile.nagleMinshall = true
        // tcp_event_data_sent / tcp_in_quickack_mode: a reply within ATO makes the connection
        // interactive (TCP_PINGPONG_THRESH 1) and its data is ACKed after the delayed-ACK timeout.
        profile.interactiveDelayedAcks = true
        profile.unconnectedWriteErrno = "EPIPE"
        profile.lossProbeSlack = .milliseconds(2)
        return profile
    }

    /// freebsd-net/tcp-testsuite: `win 65535`, wscale 6, its own option order, SO_RCVBUF 65536 → 65700.
    /// The SYN and SYN-ACK options follow FreeBSD's tcp_addoptions (sys/netinet/tcp_output.c):
    /// mss, nop, wscale, sackOK, TS, with NOP alignment and EOL padding; other segments' options are
    /// laid out as ours (nop, nop, TS; nop, nop, sack), so options are compared exactly, in wire order.
    /// FreeBSD's buffer is net.inet.tcp.recvspace (65536), rounded up by tcp_mss() to whole segments
    /// of the suite's MSS of 1460 (65700), and it asks for shift 6 whatever the buffer. The suite's
    /// peers never scale, so FreeBSD announces min(free space, 65535): 65535 while it holds less than
    /// 165 octets, and accepts what its 65700 octets hold.
    public static let freebsd = ScriptProfile(
        name: .freebsd, initialWindowSegments: 10, minimumRTO: .milliseconds(30), delayedAckTimeout: .milliseconds(40),
        quickAcks: 0, windowScale: 6, receiveBufferSize: 65700, receiveSpace: 65536, slowStartLimitSegments: 2,
        repeatsFINInSimultaneousClose: true, receiverSWSAvoidance: .smallWindows, receiveWindowForAcceptance: .bufferSpace,
        sendBufferSize: 65535 << 5,
        reportedBufferSize: { size, _, mss in mss.map { (size + $0 - 1) / $0 * $0 } ?? size }, defaultReportedReceiveBuffer: 65536,
        defaultReportedSendBuffer: 32768, optionComparison: .exact, checksPush: true,
        synOptionOrder: "<mss 1460,nop,wscale 6,sackOK,TS val V ecr 0>", synOptionLayout: .bsd, acknowledgesSegmentsInTimeWait: true, acceptsSYNWithFIN: true, mtu: 1500, ipv6MTU: 1500,
        maximumSYNRetransmissions: 12, maximumRTO: .seconds(64), connectionTimeout: .seconds(75))

    public static func named(_ name: Name) -> ScriptProfile {
        switch name {
        case .linux: .linux
        case .freebsd: .freebsd
        }
    }

    /// The profile a script was written for, judged from its path and text: FreeBSD's suite sets
    /// sysctls with `sysctl -w` and lives in `freebsd-tcp-testsuite`; everything else is Linux.
    public static func guess(path: String, text: String) -> ScriptProfile {
        if path.contains("freebsd") || text.contains("sysctl -w net.inet") || text.contains("sysctl net.inet") { return .freebsd }
        return .linux
    }

    /// The stack's configuration under this profile.
    public func tcpConfiguration() -> TCPConfiguration {
        var tcp = TCPConfiguration()
        tcp.initialWindowSegments = initialWindowSegments
        tcp.minimumRTO = minimumRTO
        tcp.clockGranularity = clockGranularity
        tcp.delayedAckTimeout = delayedAckTimeout
        tcp.quickAcks = quickAcks
        tcp.receiveBufferSize = receiveBufferSize
        tcp.windowScaleShift = windowScale
        tcp.delaysFINAcknowledgment = delaysFINAcknowledgment
        tcp.interactiveDelayedAcks = interactiveDelayedAcks
        tcp.slowStartLimitSegments = slowStartLimitSegments
        tcp.repeatsFINInSimultaneousClose = repeatsFINInSimultaneousClose
        tcp.receiverSWSAvoidance = receiverSWSAvoidance
        tcp.receiveWindowForAcceptance = receiveWindowForAcceptance
        tcp.zeroWindowProbe = zeroWindowProbe
        tcp.sendBufferSize = sendBufferSize
        tcp.maximumSYNRetransmissions = maximumSYNRetransmissions
        tcp.maximumRTO = maximumRTO
        tcp.connectionTimeout = connectionTimeout
        tcp.synOptionLayout = synOptionLayout
        tcp.acknowledgesSegmentsInTimeWait = acknowledgesSegmentsInTimeWait
        tcp.acceptsSYNWithFIN = acceptsSYNWithFIN
        tcp.fastOpen = fastOpen
        tcp.nagleMinshall = nagleMinshall
        tcp.lossProbeSlack = lossProbeSlack
        return tcp
    }
}

/// Parses and runs one script file's text: what `tcpip script` and the corpus test do per file.
public enum ScriptFileRun {
    /// - Parameters:
    ///   - path: used to pick the profile when `profile` is nil ("auto").
    ///   - tracing: record the stack's decisions (`--trace`).
    public static func run(
        path: String, text: String, profile: ScriptProfile?, seed: UInt64 = 1, tracing: Bool = false
    ) -> (runner: ScriptRunner?, outcome: ScriptOutcome) {
        let script: Script
        do {
            script = try ScriptParser.parse(text)
        } catch {
            let failure = ScriptFailure(line: error.position.line, message: "syntax error at \(error)", recent: [])
            return (nil, ScriptOutcome(verdict: .failed(failure), exchanged: [], decisions: []))
        }
        let runner = ScriptRunner(script: script, profile: profile ?? .guess(path: path, text: text), seed: seed)
        runner.tracing = tracing
        return (runner, runner.run())
    }
}
