import TCPIPScript
import Testing

/// The runner against small scripts of its own: that it passes what the stack does, and that it
/// fails — at the right line — what the stack does not.
@Suite struct ScriptRunnerTests {
    func run(_ text: String, profile: ScriptProfile = .linux) throws -> ScriptOutcome {
        let script = try ScriptParser.parse(text)
        return ScriptRunner(script: script, profile: profile).run()
    }

    func failureOf(_ outcome: ScriptOutcome) -> ScriptFailure? {
        if case .failed(let failure) = outcome.verdict { return failure }
        return nil
    }

    static let activeClose = """
        0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
        +.01...0.011 connect(3, ..., ...) = 0
        +0 > S 0:0(0) <...>
        +0 < S. 0:0(0) ack 1 win 32768 <mss 1000,nop,wscale 6,nop,nop,sackOK>
        +0 > . 1:1(0) ack 1
        +0 write(3, ..., 1000) = 1000
        +0 > P. 1:1001(1000) ack 1
        +0 < . 1:1(0) ack 1001 win 257
        +0 close(3) = 0
        +0 > F. 1001:1001(0) ack 1
        +0 < . 1:1(0) ack 1002 win 257
        +0 < F. 1:1(0) ack 1002 win 257
        +0 > . 1002:1002(0) ack 2
        +0 %{ assert tcpi_state == TCPI_TIME_WAIT }%
        """

    /// RFC 9293 §3.5 and §3.6: active open, data, active close through FIN-WAIT-1/2 to TIME-WAIT.
    @Test func activeOpenDataAndClosePass() throws {
        let outcome = try run(Self.activeClose)
        #expect(outcome.passed, "\(outcome.verdict)")
    }

    /// The init command's `tcp_ecn=1` asks for ECN on active opens (RFC 3168 §6.1.1); `[ect0]` and
    /// `[noecn]` check the IP header's ECN field, and a wrong one fails at its line.
    @Test func ecnSysctlAndECNFieldChecks() throws {
        let script = """
            `sysctl -q net.ipv4.tcp_ecn=1`
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
            +0...0.01 connect(3, ..., ...) = 0
            +0 > SEW 0:0(0) <...>
            +.01 < SE. 0:0(0) ack 1 win 32768 <mss 1000,nop,wscale 6>
            +0 > [noecn] . 1:1(0) ack 1
            +0 write(3, ..., 1000) = 1000
            +0 > [ect0] P. 1:1001(1000) ack 1
            +0 < [ce] . 1:1(0) ack 1001 win 257
            """
        let outcome = try run(script)
        #expect(outcome.passed, "\(outcome.verdict)")
        let wrong = try run(script.replacingOccurrences(of: "> [ect0] P.", with: "> [ect1] P."))
        #expect(failureOf(wrong)?.line == 8)
        #expect(failureOf(wrong)?.message.contains("ECN field [ect0]") == true)
        // Without the sysctl the SYN does not ask (Linux's default tcp_ecn = 2).
        let plain = try run(script.replacingOccurrences(of: "tcp_ecn=1", with: "tcp_ecn=2"))
        #expect(failureOf(plain)?.line == 4)
    }

    @Test func aWrongAcknowledgmentFailsAtItsLine() throws {
        let broken = Self.activeClose.replacingOccurrences(of: "+0 > . 1002:1002(0) ack 2", with: "+0 > . 1002:1002(0) ack 3")
        let failure = try #require(failureOf(try run(broken)))
        #expect(failure.line == 13)
        #expect(failure.message.contains("ack 2 instead of 3"))
        #expect(!failure.recent.isEmpty)
    }

    @Test func aStateAssertionIsChecked() throws {
        let broken = Self.activeClose.replacingOccurrences(of: "TCPI_TIME_WAIT", with: "TCPI_CLOSE_WAIT")
        #expect(failureOf(try run(broken))?.line == 14)
    }

    /// RFC 9293 §3.10.7.2: a SYN to a listener is answered by a SYN-ACK; accept returns the child;
    /// a blocking read returns when the data arrives, packetdrill's `start...end`.
    @Test func passiveOpenAndBlockingRead() throws {
        let outcome = try run("""
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
            +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
            +0 bind(3, ..., ...) = 0
            +0 listen(3, 1) = 0
            +.1 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
            +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
            +.1 < . 1:1(0) ack 1 win 257
            +0 accept(3, ..., ...) = 4
            +0...0.100 read(4, ..., 1000) = 1000
            +.1 < P. 1:1001(1000) ack 1 win 257
            +0 > . 1:1(0) ack 1001
            """)
        #expect(outcome.passed, "\(outcome.verdict)")
    }

    @Test func nonBlockingCallsReportErrno() throws {
        let outcome = try run("""
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
            +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
            +0 fcntl(3, F_GETFL) = 0x802
            +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
            +0 > S 0:0(0) <...>
            +0 read(3, ..., 100) = -1 EAGAIN
            +0 close(3) = 0
            +.1 < S. 0:0(0) ack 1 win 32000 <mss 1460,nop,wscale 7>
            +0 > R 1:1(0)
            """)
        #expect(outcome.passed, "\(outcome.verdict)")
    }

    /// RFC 9293 §3.10.7.3: an RST acceptable in SYN-SENT refuses the connection; SO_ERROR says so once.
    @Test func refusedConnectionReportsECONNREFUSED() throws {
        let outcome = try run("""
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
            +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
            +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
            +0 > S 0:0(0) <...>
            +.1 < R. 0:0(0) ack 1 win 0
            +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0
            +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0
            """)
        #expect(outcome.passed, "\(outcome.verdict)")
    }

    @Test func aLateSegmentFailsOnTiming() throws {
        let outcome = try run("""
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
            +0 bind(3, ..., ...) = 0
            +0 listen(3, 1) = 0
            +0 < S 0:0(0) win 32792 <mss 1000>
            +0 > S. 0:0(0) ack 1 <mss 1460>
            +0 < . 1:1(0) ack 1 win 257
            +0 accept(3, ..., ...) = 4
            +0 < P. 1:101(100) ack 1 win 257
            +.1 > . 1:1(0) ack 101
            """)
        let failure = try #require(failureOf(outcome))
        #expect(failure.line == 9)
        #expect(failure.message.contains("expected at"))
    }

    /// Segments the stack sends one MSS at a time match one larger script segment (packetdrill's
    /// aggregation of TSO bursts).
    @Test func consecutiveSegmentsAreMerged() throws {
        let outcome = try run("""
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
            +0 bind(3, ..., ...) = 0
            +0 listen(3, 1) = 0
            +0 < S 0:0(0) win 65535 <mss 1000,nop,wscale 7>
            +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
            +0 < . 1:1(0) ack 1 win 1000
            +0 accept(3, ..., ...) = 4
            +0 write(4, ..., 4000) = 4000
            +0 > P. 1:4001(4000) ack 1
            """)
        #expect(outcome.passed, "\(outcome.verdict)")
    }

    /// UDP lines against a UDP socket: the datagram in reaches recvfrom whole, the one out is checked
    /// for length and ports (a wrong one fails at its line), an unconnected send has no destination,
    /// and `udp SPORT > DPORT (LEN)` names ports no socket holds.
    @Test func udpLinesArePlayedAndChecked() throws {
        let echo = """
            0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3
            +0 bind(3, ..., ...) = 0
            +0 < udp (30)
            +0 recvfrom(3, ..., 100, 0, ..., ...) = 30
            +0 send(3, ..., 30, 0) = -1 EDESTADDRREQ (Destination address required)
            +0 sendto(3, ..., 30, 0, ..., ...) = 30
            +0 > udp (30)
            """
        let passed = try run(echo)
        #expect(passed.passed, "\(passed.verdict)")
        #expect(passed.exchanged.contains { $0.hasSuffix("> udp 8080 > 40000 (30)") })
        #expect(failureOf(try run(echo.replacingOccurrences(of: "> udp (30)", with: "> udp (31)")))?.line == 7)
        #expect(failureOf(try run(echo.replacingOccurrences(of: "> udp (30)", with: "> udp 8080 > 9 (30)")))?.message
                    .contains("ports 8080 > 40000") == true)

        let closedPort = try run("0 < udp 40000 > 7 (0)\n+0 > icmp unreachable port_unreachable")
        #expect(closedPort.passed, "\(closedPort.verdict)")
        let wrongCode = try run("0 < udp 40000 > 7 (0)\n+0 > icmp unreachable host_unreachable")
        #expect(failureOf(wrongCode)?.message.contains("code 3 instead of type 3 code 1") == true)

        guard case .skipped(let reason, let line) = try run("0 < udp (twenty)").verdict else {
            Issue.record("a malformed UDP line is skipped, not played")
            return
        }
        #expect(line == 1 && reason.contains("udp"))
    }

    /// The same over IPv6 (RFC 8200 §8.1: the checksum over the IPv6 pseudo-header; RFC 4443 §3.1:
    /// port unreachable is code 4): a connected socket refused, a closed port answered.
    @Test func udpLinesOverIPv6() throws {
        let refused = try run("""
            --ip_version=ipv6
            0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3
            +0 connect(3, ..., ...) = 0
            +0 write(3, ..., 1200) = 1200
            +0 > udp (1200)
            +.01 < icmp unreachable port_unreachable
            +0 read(3, ..., 100) = -1 ECONNREFUSED (Connection refused)
            +0 < udp (7)
            +0 read(3, ..., 100) = 7
            """)
        #expect(refused.passed, "\(refused.verdict)")
        let closedPort = try run("--ip_version=ipv6\n0 < udp (20)\n+0 > icmp unreachable port_unreachable")
        #expect(closedPort.passed, "\(closedPort.verdict)")
    }

    @Test func unsupportedCallsSkipTheScript() throws {
        let outcome = try run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 sendfile(3, 4, NULL, 10) = 10")
        guard case .skipped(let reason, let line) = outcome.verdict else {
            Issue.record("expected a skip, got \(outcome.verdict)")
            return
        }
        #expect(line == 2 && reason.contains("sendfile"))
    }

    @Test func profilesCarryThePlatformConstants() {
        #expect(ScriptProfile.linux.initialWindowSegments == 10)
        #expect(ScriptProfile.linux.windowScale == 8)
        #expect(ScriptProfile.linux.tcpConfiguration().minimumRTO == .milliseconds(200))
        #expect(ScriptProfile.linux.tcpConfiguration().delayedAckTimeout == .milliseconds(40))
        #expect(ScriptProfile.freebsd.windowScale == 6)
        #expect(ScriptProfile.freebsd.reportedBufferSize(65536, true, 1460) == 65700)
        #expect(ScriptProfile.linux.reportedBufferSize(21000, true, nil) == 42000)
        #expect(ScriptProfile.guess(path: "x/freebsd-tcp-testsuite/a.pkt", text: "") == .freebsd)
        #expect(ScriptProfile.guess(path: "google/close/a.pkt", text: "") == .linux)
    }
}
