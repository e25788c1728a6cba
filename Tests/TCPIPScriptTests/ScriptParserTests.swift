import TCPIPScript
import TCPIPWire
import Testing

/// One test per construct of the language reference (`shared/reference/packetdrill-language.md`).
@Suite struct ScriptParserTests {
    func parse(_ text: String) throws -> Script { try ScriptParser.parse(text) }

    func packet(_ text: String) throws -> ScriptPacket {
        let script = try parse(text)
        guard case .packet(let packet) = script.events[0].action else { throw ParseTestFailure.notAPacket }
        return packet
    }

    func call(_ text: String) throws -> ScriptSystemCall {
        let script = try parse(text)
        guard case .systemCall(let call) = script.events[0].action else { throw ParseTestFailure.notACall }
        return call
    }

    func syntaxError(_ text: String) -> ScriptSyntaxError? {
        do {
            _ = try ScriptParser.parse(text)
            return nil
        } catch {
            return error
        }
    }

    enum ParseTestFailure: Error { case notAPacket, notACall }

    // MARK: §2 layout and lexical rules

    @Test func optionLinesInitAndCleanupCommands() throws {
        let script = try parse("""
            --tolerance_usecs=10000
            --strict_segments
            `../common/defaults.sh
              sysctl -q net.ipv4.tcp_sack=0`
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
            `/tmp/sysctl_restore_${PPID}.sh`
            """)
        #expect(script.option("tolerance_usecs") == "10000")
        #expect(script.option("strict_segments") == "")
        #expect(script.initCommand?.contains("tcp_sack=0") == true)
        #expect(script.cleanupCommand == "/tmp/sysctl_restore_${PPID}.sh")
        #expect(script.events.count == 1)
    }

    @Test func commentsAndMultiLineEvents() throws {
        let script = try parse("""
            // a comment
            0 poll([{fd=4, /* inline */ events=POLLIN|POLLOUT,
                     revents=POLLOUT}], 1, 0) = 1   // trailing
            /* block
               comment */
            +0 close(4) = 0
            """)
        #expect(script.events.count == 2)
        #expect(script.events[1].position.line == 6)
    }

    @Test func timedShellCommandAndPythonBlock() throws {
        let script = try parse("""
            0 `sysctl -w net.inet.tcp.rfc1323=1`
            +0 %{ assert tcpi_state == TCPI_ESTABLISHED }%
            """)
        guard case .shell(let command) = script.events[0].action, case .python(let code) = script.events[1].action else {
            Issue.record("expected shell then python")
            return
        }
        #expect(command == "sysctl -w net.inet.tcp.rfc1323=1")
        #expect(code == "assert tcpi_state == TCPI_ESTABLISHED")
    }

    @Test func ifdefBranchesOfTheFreeBSDSuite() throws {
        let text = "0 close(3) = 0\n#ifdef STANDARD\n+0 close(4) = 0\n#else\n+0 close(5) = 0\n#endif\n#ifdef FreeBSD\n+0 close(6) = 0\n#endif"
        let standard = try ScriptParser.parse(text)
        #expect(standard.events.count == 2)
        #expect(standard.events[1].position.line == 3)
        #expect(try ScriptParser.parse(text, defines: ["FreeBSD"]).events.count == 3)
        #expect(syntaxError("0 close(3) = 0\n#ifdef X\n")?.message.contains("without #endif") == true)
    }

    // MARK: §3 time

    @Test func absoluteAndRelativeTimes() throws {
        let script = try parse("0 close(3) = 0\n1.5 close(3) = 0\n.1 close(3) = 0\n+.004 close(3) = 0\n+2 close(3) = 0")
        let times = script.events.map(\.timing)
        #expect(times[0] == .at(ScriptTime(relative: false, microseconds: 0)))
        #expect(times[1] == .at(ScriptTime(relative: false, microseconds: 1_500_000)))
        #expect(times[2] == .at(ScriptTime(relative: false, microseconds: 100_000)))
        #expect(times[3] == .at(ScriptTime(relative: true, microseconds: 4_000)))
        #expect(times[4] == .at(ScriptTime(relative: true, microseconds: 2_000_000)))
    }

    @Test func rangesAndAnyTimeOnOutboundPackets() throws {
        let script = try parse("0.1~0.3 > . 1:1(0) ack 1\n+.3~+.31 > . 1:1001(1000) ack 1\n* > F. 1:1(0) ack 1")
        #expect(script.events[0].timing == .range(.init(relative: false, microseconds: 100_000), .init(relative: false, microseconds: 300_000)))
        #expect(script.events[1].timing == .range(.init(relative: true, microseconds: 300_000), .init(relative: true, microseconds: 310_000)))
        #expect(script.events[2].timing == .any)
    }

    @Test func rangesAreRejectedOnInboundPacketsAndCalls() {
        #expect(syntaxError("0~1 < . 1:1(0) ack 1 win 100")?.position == SourcePosition(line: 1, column: 1))
        #expect(syntaxError("* close(3) = 0") != nil)
    }

    @Test func blockingCalls() throws {
        let script = try parse("+.1...0.200 read(4, ..., 2000) = 2000\n+0...0 connect(3, ..., ...) = 0\n+.002 ... 0.004 accept(3, ..., ...) = 4\n0.1...0.2 close(3) = 0")
        #expect(script.events[0].timing == .blocking(start: .init(relative: true, microseconds: 100_000), end: .init(relative: true, microseconds: 200_000)))
        #expect(script.events[1].timing == .blocking(start: .init(relative: true, microseconds: 0), end: .init(relative: true, microseconds: 0)))
        #expect(script.events[2].timing == .blocking(start: .init(relative: true, microseconds: 2_000), end: .init(relative: true, microseconds: 4_000)))
        #expect(script.events[3].timing == .blocking(start: .init(relative: false, microseconds: 100_000), end: .init(relative: false, microseconds: 200_000)))
    }

    // MARK: §4 packets

    @Test func flagsInAnyOrder() throws {
        #expect(try packet("0 > S 0:0(0) <...>").flags == .syn)
        #expect(try packet("0 > S. 0:0(0) ack 1 <...>").flags == [.syn, .ack])
        #expect(try packet("0 > F. 1:1(0) ack 1").flags == [.fin, .ack])
        #expect(try packet("0 > FP. 1:1(0) ack 1").flags == [.fin, .psh, .ack])
        #expect(try packet("0 > R. 1:1(0) ack 1").flags == [.rst, .ack])
        #expect(try packet("0 > SEW 0:0(0) <...>").flags == [.syn, .ece, .cwr])
        #expect(try packet("0 > U. 1:1(0) ack 1 urg 1").flags == [.urg, .ack])
        #expect(try packet("0 < - 1:1001(1000) win 20000").flags == [])
        #expect(try packet("0 > . 1:1(0) ack 1").flags == .ack)
    }

    @Test func sequenceAckWindowUrgent() throws {
        let p = try packet("0 < P. 1:2001(2000) ack 1 win 257 urg 3")
        #expect(p.direction == .inbound)
        #expect(p.start == 1 && p.end == 2001 && p.length == 2000)
        #expect(p.acknowledgment == 1 && p.window == 257 && p.urgentPointer == 3)
        #expect(p.options == .none)
    }

    @Test func inconsistentSequenceIsAnErrorAtTheDirection() {
        let error = syntaxError("0 < . 1:10(5) ack 1 win 100")
        #expect(error?.position == SourcePosition(line: 1, column: 3))
        #expect(error?.message.contains("end must be start + length") == true)
    }

    @Test func inboundPacketsNeedAWindow() {
        #expect(syntaxError("0 < . 1:1(0) ack 1")?.message.contains("win") == true)
    }

    @Test func optionsInWireOrder() throws {
        let p = try packet("0 < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7>")
        #expect(p.options == .list([.mss(1000), .sackPermitted, .timestamp(value: 100, echo: 0), .nop, .windowScale(7)]))
        let sack = try packet("0 < . 1:1(0) ack 1 win 257 <nop,nop,sack 2001:3001 6001:7001>")
        #expect(sack.options == .list([.nop, .nop, .sack([(2001, 3001), (6001, 7001)])]))
        #expect(try packet("0 > S 0:0(0) <mss 1460,sackOK,eol,eol>").options == .list([.mss(1460), .sackPermitted, .eol, .eol]))
        #expect(try packet("0 > S 0:0(0) <md5 000102030405060708090a0b0c0d0e0f>").options == .list([.md5("000102030405060708090a0b0c0d0e0f")]))
        #expect(try packet("0 > S 0:0(0) <FO 3021b9d889017eeb,nop,nop>").options == .list([.other("FO 3021b9d889017eeb"), .nop, .nop]))
    }

    @Test func timestampWildcardsOnlyWhenAskedFor() throws {
        // packetdrill has no `*` in TS; the TCPIPTests' tester writes it, through this parser.
        #expect(syntaxError("0 > . 1:1(0) ack 1 <nop,nop,TS val * ecr 5>") != nil)
        let script = try ScriptParser.parse("0 > . 1:1(0) ack 1 <nop,nop,TS val * ecr 5>", timestampWildcards: true)
        guard case .packet(let p) = script.events[0].action else { throw ParseTestFailure.notAPacket }
        #expect(p.options == .list([.nop, .nop, .timestamp(value: 0, echo: 5)]))
        #expect(p.timestampWildcards == .value)
        let both = try ScriptParser.parse("0 < . 1:1(0) ack 1 win 9 <TS val * ecr *>", timestampWildcards: true)
        guard case .packet(let q) = both.events[0].action else { throw ParseTestFailure.notAPacket }
        #expect(q.timestampWildcards == [.value, .echo])
        #expect(try packet("0 > . 1:1(0) ack 1 <TS val 1 ecr 2>").timestampWildcards.isEmpty)
    }

    @Test func uncheckedOptionsOnlyOutbound() throws {
        #expect(try packet("0 > S 0:0(0) <...>").options == .unchecked)
        #expect(syntaxError("0 < S 0:0(0) win 100 <...>")?.message.contains("outbound") == true)
    }

    @Test func ipInformationBeforeTheFlags() throws {
        let p = try packet("0 > [ect0] P. 1:1001(1000) ack 1")
        #expect(p.ipInformation == ["ect0"])
        #expect(p.flags == [.psh, .ack])
        #expect(try packet("0 < (tos 0x10) S 0:0(0) win 100").ipInformation == ["tos 0x10"])
    }

    @Test func nonTCPPacketsAreKeptAsText() throws {
        let p = try packet("0 < icmp unreachable port_unreachable")
        #expect(p.other == "icmp unreachable port_unreachable")
    }

    /// packetdrill's UDP lines (`< udp (LEN)`, `> udp (LEN)`, and ours with ports) keep their words
    /// for the runner (ScriptRunner+UDP.swift); the UDP socket calls parse like TCP's.
    @Test func udpLinesAndSocketCalls() throws {
        let inbound = try packet("0 < udp (20)")
        #expect(inbound.direction == .inbound)
        #expect(inbound.other == "udp ( 20 )")
        #expect(inbound.window == nil, "a UDP line needs no `win`")
        let outbound = try packet("+.01 > udp (1472)")
        #expect(outbound.direction == .outbound)
        #expect(outbound.other == "udp ( 1472 )")
        #expect(try packet("0 < udp 53 > 8080 (0)").other == "udp 53 > 8080 ( 0 )")
        #expect(try packet("0 > (tos 0x10) udp (8)").ipInformation == ["tos 0x10"])
        let socket = try call("0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3")
        #expect(socket.arguments == [.ellipsis, .symbol("SOCK_DGRAM"), .symbol("IPPROTO_UDP")])
        let receive = try call("0 recvfrom(3, ..., 100, MSG_DONTWAIT, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)")
        #expect(receive.result == -1 && receive.errno == "EAGAIN")
        #expect(receive.arguments[3] == .symbol("MSG_DONTWAIT"))
        let send = try call("0 sendto(3, ..., 20, 0, ..., ...) = 20")
        #expect(send.name == "sendto" && send.result == 20 && send.arguments.count == 6)
    }

    @Test func errorsPointAtLineAndColumn() {
        let error = syntaxError("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > S 0:0(0) <mss 1460,bogus>\n+0 > Q 0:0(0)")
        // `bogus` is kept as an unknown option; the bad flag on line 3 is the error.
        #expect(error?.position == SourcePosition(line: 3, column: 6))
        #expect(syntaxError("0 > S 0:0(0) ack")?.message.contains("acknowledgment") == true)
        #expect(syntaxError("0 close(3) = 0\n+0 close(3 = 0")?.position.line == 2)
        #expect(syntaxError("0 `never closed")?.message.contains("unterminated") == true)
    }

    // MARK: §7 system calls

    @Test func resultsErrnoAndNotes() throws {
        let connect = try call("0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)")
        #expect(connect.name == "connect" && connect.result == -1 && connect.errno == "EINPROGRESS")
        #expect(connect.note == "Operation now in progress")
        #expect(connect.arguments == [.integer(3), .ellipsis, .ellipsis])
        let fcntl = try call("0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)")
        #expect(fcntl.result == 2 && fcntl.errno == nil && fcntl.note == "flags O_RDWR")
        let reset = try call("0 read(4, ..., 1000) = -1 ECONNRESET(Connection reset by peer)")
        #expect(reset.errno == "ECONNRESET")
    }

    @Test func argumentForms() throws {
        let set = try call("0 setsockopt(3, SOL_SOCKET, SO_RCVBUF, [65536], 4) = 0")
        #expect(set.arguments[3] == .list([.integer(65536)]))
        let flags = try call("0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0")
        #expect(flags.arguments[2] == .bitwiseOr(.symbol("O_RDWR"), .symbol("O_NONBLOCK")))
        let linger = try call("0 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0")
        #expect(linger.arguments[3] == .structure([
            ScriptField(name: .symbol("onoff"), value: .integer(1)), ScriptField(name: .symbol("linger"), value: .integer(0)),
        ]))
        let address = try call("0 connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.0.2.1\")}, 16) = 0")
        #expect(address.arguments[1] == .structure([
            ScriptField(name: .symbol("sa_family"), value: .symbol("AF_INET")),
            ScriptField(name: .symbol("sin_port"), value: .call("htons", [.integer(8080)])),
            ScriptField(name: .symbol("sin_addr"), value: .call("inet_addr", [.string("192.0.2.1")])),
        ]))
        let message = try call("0 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 40}], msg_flags=0}, 0) = 40")
        #expect(message.arguments[1] == .structure([
            ScriptField(name: .call("msg_name", [.ellipsis]), value: .ellipsis),
            ScriptField(name: .call("msg_iov", [.integer(1)]), value: .list([.structure([ScriptField(name: nil, value: .ellipsis), ScriptField(name: nil, value: .integer(40))])])),
            ScriptField(name: .symbol("msg_flags"), value: .integer(0)),
        ]))
        let negative = try call("0 setsockopt(3, SOL_TCP, TCP_KEEPIDLE, [-1], 4) = -1 EINVAL")
        #expect(negative.arguments[3] == .list([.integer(-1)]))
        let hex = try call("0 ioctl(4, 0x541B, [1000]) = 0")
        #expect(hex.arguments[1] == .integer(0x541B))
    }

    @Test func theAnnotatedExampleParses() throws {
        let script = try parse("""
            `../common/defaults.sh`
                0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
             +.01...0.011 connect(3, ..., ...) = 0
               +0 >  S 0:0(0) <...>
               +0 < S. 0:0(0) ack 1 win 32768 <mss 1000,nop,wscale 6,nop,nop,sackOK>
               +0 >  . 1:1(0) ack 1
               +0 write(3, ..., 1000) = 1000
               +0 >  P. 1:1001(1000) ack 1
               +0 < . 1:1(0) ack 1001 win 257
               +0 close(3) = 0
               +0 >  F. 1001:1001(0) ack 1
            """)
        #expect(script.events.count == 10)
        #expect(script.initCommand == "../common/defaults.sh")
    }

    // MARK: Header options (packetdrill's config.c) and packet-line syntax

    @Test func everyHeaderOptionOfConfigIsKnownAndHonoured() throws {
        let script = try parse("""
            --ip_version=ipv4-mapped-ipv6
            --tolerance_usecs=25000
            --tolerance_percent=5
            --mss=1000
            --mtu=1520
            --bind_port=9090
            --connect_port=9091
            --local_ip=192.168.0.2
            --remote_ip=10.248.0.3
            --tcp_ts_tick_usecs=1000
            --tcp_ts_ecr_scaled
            --strict_segments
            --non_fatal=packet,syscall
            --wire_client
            --speed=1000
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
            """)
        let header = ScriptHeader(script)
        #expect(header.ipVersion == .ipv4MappedIPv6)
        #expect(header.toleranceMicroseconds == 25000)
        #expect(header.tolerancePercent == 5)
        #expect(header.segmentSize == 1000)
        #expect(header.mtu == 1520)
        #expect(header.bindPort == 9090 && header.connectPort == 9091)
        #expect(header.localAddress == IPAddress("192.168.0.2") && header.remoteAddress == IPAddress("10.248.0.3"))
        #expect(header.timestampTickMicroseconds == 1000 && header.timestampEchoScaled && header.strictSegments)
        #expect(header.nonFatal == ["packet", "syscall"])
        #expect(header.ignored.map(\.name) == ["wire_client", "speed"])
    }

    @Test func anUnknownHeaderOptionOrBadValueIsAnErrorAtItsLine() {
        let unknown = syntaxError("--tolerance_usec=1000\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3")
        #expect(unknown?.position.line == 1)
        #expect(unknown?.message.contains("unknown option --tolerance_usec") == true)
        let bad = syntaxError("--ip_version=ipv5\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3")
        #expect(bad?.message.contains("bad --ip_version") == true)
        #expect(syntaxError("--mss=0\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3") != nil)
    }

    @Test func defineSubstitutesASymbol() throws {
        let call = try call("--define=MY_FD=7\n0 close(MY_FD) = 0")
        #expect(call.arguments == [.integer(7)])
    }

    @Test func ipHeaderFieldsBeforeTheFlags() throws {
        let hop = try packet("0 > (hlim 64) S. 0:0(0) ack 1 <...>")
        #expect(hop.ip.timeToLive == 64)
        let ttl = try packet("0 < (tos 0x10, ttl 32) S 0:0(0) win 100")
        #expect(ttl.ip.typeOfService == 0x10 && ttl.ip.timeToLive == 32)
        let label = try packet("0 < [ect0] [flowlabel 0x12345] S 0:0(0) win 100")
        #expect(label.ip.flowLabel == 0x12345 && label.ipInformation.first == "ect0")
        #expect(syntaxError("0 < (colour 3) S 0:0(0) win 100") != nil)
    }

    /// nplab's packetdrill (FreeBSD's suite): `--udp_encapsulation`, `/udp(…)`, `(class N)`.
    @Test func nplabExtensionsParse() throws {
        let script = try parse("""
            --udp_encapsulation=tcp
            0 < (class 0x28) S 0:0(0) win 32767/udp(1 > 9811)
            """)
        #expect(ScriptHeader(script).unsupported.map(\.name) == ["udp_encapsulation"])
        guard case .packet(let packet) = script.events[0].action else { Issue.record("not a packet"); return }
        #expect(packet.ip.typeOfService == 0x28 && packet.encapsulation == "udp ( 1 > 9811 )")
        let any = try self.packet("0 > S. ...(0) ack 4 <mss 1452>")
        #expect(any.anySequence && any.length == 0 && any.acknowledgment == 4)
    }

    @Test func bangAfterTheSequenceRangeAndMD5Options() throws {
        let marked = try packet("0 < . 1:1001(1000)! ack 1 win 100")
        #expect(marked.marked && marked.length == 1000)
        let signed = try packet("0 < S 0:0(0) win 100 <md5 000102030405060708090a0b0c0d0e0f,nop,nop>")
        #expect(signed.options == .list([.md5("000102030405060708090a0b0c0d0e0f"), .nop, .nop]))
    }
}
