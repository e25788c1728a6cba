import TCPIP
import TCPIPWire
import Testing

/// The fixtures: each state reached from CLOSED through real segments and user calls, as a
/// packetdrill script would get there.
extension TCPTester {
    mutating func reach(_ fixture: Fixture) throws {
        switch fixture {
        case .closed:
            break
        case .listen:
            listener = try stack.listen(on: Self.listenPort)
        case .synSent:
            connection = try stack.connect(to: Endpoint(remoteAddress, Self.remotePort), now: now)
        case .synReceived:
            try reach(.listen)
            try inject("+0 < S 0:0(0) win \(peer.window) \(synOptions(replying: false))")
            try expect("+0 > S. 0:0(0) ack 1")
            if peer.repeatsSYN {
                try inject("+0 < S 0:0(0) win \(peer.window) \(synOptions(replying: false))")
                try expect("+0 > S. 0:0(0) ack 1")
            }
        case .synReceivedSimultaneous:
            try reach(.synSent)
            try expect("+0 > S 0:0(0)")
            try inject("+0 < S 0:0(0) win \(peer.window) \(synOptions(replying: false))")
            try expect("+0 > S. 0:0(0) ack 1")
        case .established:
            try reach(.synReceived)
            try inject("+0 < . 1:1(0) ack 1 win \(peer.window) \(segmentOptions)")
        case .establishedActive:
            try reach(.synSent)
            try expect("+0 > S 0:0(0)")
            try inject("+0 < S. 0:0(0) ack 1 win \(peer.window) \(synOptions(replying: true))")
            try expect("+0 > . 1:1(0) ack 1")
        case .finWait1:
            try reach(.established)
            try app.close()
        case .finWait2:
            try reach(.finWait1)
            try expect("+0 > F. 1:1(0) ack 1")
            try inject("+0 < . 1:1(0) ack 2 win \(peer.window) \(segmentOptions)")
        case .closeWait:
            try reach(.established)
            try inject("+0 < F. 1:1(0) ack 1 win \(peer.window) \(segmentOptions)")
            try expect("+0 > . 1:1(0) ack 2")
        case .closing:
            try reach(.finWait1)
            try expect("+0 > F. 1:1(0) ack 1")
            try inject("+0 < F. 1:1(0) ack 1 win \(peer.window) \(segmentOptions)")
            try expect("+0 > . 2:2(0) ack 2")
        case .lastAck:
            try reach(.closeWait)
            try app.close()
        case .timeWait:
            try reach(.finWait2)
            try inject("+0 < F. 1:1(0) ack 2 win \(peer.window) \(segmentOptions)")
            try expect("+0 > . 2:2(0) ack 2")
        }
    }

    /// The options of the peer's SYN or SYN-ACK, as configured in `peer`.
    func synOptions(replying: Bool) -> String {
        var options: [String] = []
        if let mss = peer.maximumSegmentSize { options.append("mss \(mss)") }
        if peer.sackPermitted { options.append("sackOK") }
        if let value = peer.timestampValue { options.append("TS val \(value) ecr \(replying ? "*" : "0")") }
        if let shift = peer.windowScale { options.append("wscale \(shift)") }
        return options.isEmpty ? "" : "<\(options.joined(separator: ","))>"
    }

    /// The options of every later segment from the peer: its timestamp, if it offered them.
    var segmentOptions: String {
        peer.timestampValue.map { "<nop,nop,TS val \($0) ecr *>" } ?? ""
    }
}
