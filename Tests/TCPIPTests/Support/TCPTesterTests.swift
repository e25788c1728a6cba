import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// The harness must fail loudly when the stack does anything the script did not say.
@Suite struct TCPTesterTests {
    @Test func parsesAPacketdrillLine() throws {
        let line = try ScriptLine("+.2~+0.3 > FP. 1:1001(1000) ack 4294967295 win 0 <mss 1460,sackOK,TS val * ecr 7,nop,wscale 14,sack 1:2 5:9>")
        #expect(line.timing == .relative(earliest: .milliseconds(200), latest: .milliseconds(300)))
        #expect(line.direction == .outbound)
        #expect(line.flags == [.fin, .psh, .ack])
        #expect(line.sequence == 1 && line.length == 1000)
        #expect(line.acknowledgment == 4_294_967_295 && line.window == 0)
        let options = try #require(line.options)
        #expect(options.maximumSegmentSize == 1460 && options.windowScale == 14 && options.sackPermitted)
        #expect(options.timestamps == .init(value: nil, echoReply: 7))
        #expect(options.sackBlocks == [.init(start: 1, end: 2), .init(start: 5, end: 9)])
        #expect(try ScriptLine("1.5 < S 0:0(0) win 65535").timing == .absolute(earliest: .milliseconds(1500), latest: .milliseconds(1500)))
        #expect(try ScriptLine("* > R 0:0(0)").timing == .any)
        // No `<...>` on an outbound line: options unchecked; `<>`: none at all.
        #expect(try ScriptLine("+0 > . 1:1(0) ack 1").options == nil)
        #expect(try ScriptLine("+0 > . 1:1(0) ack 1 <>").options == ScriptLine.Options())
    }

    @Test func rejectsMalformedLines() {
        #expect(throws: ScriptLine.ParseError.self) { try ScriptLine("+0 < S 0:5(0) win 65535") }        // end - start != length
        #expect(throws: ScriptLine.ParseError.self) { try ScriptLine("+0 < X 0:0(0) win 65535") }        // unknown flag
        #expect(throws: ScriptLine.ParseError.self) { try ScriptLine("+0 = S 0:0(0) win 65535") }        // direction
        #expect(throws: ScriptLine.ParseError.self) { try ScriptLine("* < S 0:0(0) win 65535") }         // `*` inbound
        #expect(throws: ScriptLine.ParseError.self) { try ScriptLine("+0 < S 0:0(0) win 65535 <bogus>") }
        #expect(throws: ScriptLine.ParseError.self) { try ScriptLine("+0 < S 0:0(0) ack") }
        #expect(throws: ScriptLine.ParseError.self) { try ScriptLine("+0 < S 0:0(0)") }         // inbound needs `win`
        #expect(throws: ScriptLine.ParseError.self) { try ScriptLine("+0 > [ect0] S. 0:0(0) ack 1") } // not played
        #expect(throws: ScriptLine.ParseError.self) { try ScriptLine("+0 close(3) = 0") }      // a system call
    }

    @Test func expectFailsWhenNothingIsSent() throws {
        var t = try TCPTester(.established)
        #expect(throws: TCPTester.Failure.self) { try t.expect("+1 > . 1:1(0) ack 1") }
    }

    @Test func expectFailsOnAnyDifference() throws {
        for wrong in ["+0 > . 1:101(100) ack 1", "+0 > P. 2:102(100) ack 1", "+0 > P. 1:101(100) ack 2",
                      "+0 > P. 1:101(100) ack 1 win 1", "+0 > P. 1:101(100) ack 1 <nop,nop,TS val * ecr *>",
                      "+0 > P. 1:51(50) ack 1", "+.1 > P. 1:101(100) ack 1"] {
            var t = try TCPTester(.established)
            try t.app.send(100)
            #expect(throws: TCPTester.Failure.self, "\(wrong)") { try t.expect(wrong) }
        }
    }

    @Test func timingIsChecked() throws {
        // The retransmission comes at +1 s (no RTT sample yet): expecting it at +0.5 s fails, in a
        // range it passes.
        var early = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try early.app.send(100)
        try early.expect("+0 > P. 1:101(100) ack 1")
        #expect(throws: TCPTester.Failure.self) { try early.expect("+.5 > P. 1:101(100) ack 1") }
        var t = try TCPTester(.established, peer: .init(repeatsSYN: true))
        try t.app.send(100)
        try t.expect("+0 > P. 1:101(100) ack 1")
        try t.expect("+.9~+1.1 > P. 1:101(100) ack 1")
        #expect(t.elapsed == .seconds(1))
    }

    @Test func unexpectedOutputFailsTheNextInjectAndExpectNothing() throws {
        var injecting = try TCPTester(.established)
        try injecting.app.send(100)
        #expect(throws: TCPTester.Failure.self) { try injecting.inject("+0 < . 1:1(0) ack 101 win 65535") }
        var t = try TCPTester(.established)
        try t.app.send(100)
        #expect(throws: TCPTester.Failure.self) { try t.expectNothing() }
    }

    @Test func fixturesReachEveryState() throws {
        let expected: [(TCPTester.Fixture, String)] = [
            (.closed, "CLOSED"), (.listen, "LISTEN"), (.synSent, "SYN-SENT"), (.synReceived, "SYN-RECEIVED"),
            (.synReceivedSimultaneous, "SYN-RECEIVED"), (.established, "ESTABLISHED"),
            (.establishedActive, "ESTABLISHED"), (.finWait1, "FIN-WAIT-1"), (.finWait2, "FIN-WAIT-2"),
            (.closeWait, "CLOSE-WAIT"), (.closing, "CLOSING"), (.lastAck, "LAST-ACK"), (.timeWait, "TIME-WAIT"),
        ]
        for (fixture, name) in expected {
            for peer in [TCPTester.Peer(), TCPTester.Peer(windowScale: 7, sackPermitted: true, timestampValue: 1, ipv6: true)] {
                let t = try TCPTester(fixture, peer: peer)
                #expect(t.state.rfcName == name, "\(fixture) \(peer)")
            }
        }
    }

    @Test func runsAScript() throws {
        var t = try TCPTester(.established)
        try t.run("""
            // The peer sends two segments; the second forces our ACK.
            +0 < . 1:1001(1000) ack 1 win 65535
            +0 < P. 1001:2001(1000) ack 1 win 65535
            +0 > . 1:1(0) ack 2001

            +.1 < F. 2001:2001(0) ack 1 win 65535
            +0 > . 1:1(0) ack 2002
            """)
        #expect(t.state == .closeWait)
        #expect(throws: TCPTester.Failure.self) { try t.run("+0 > . 1:1(0) ack 2002") }
    }
}
