import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// Plays the remote peer of one connection of a real `Stack`, in packetdrill's notation, on virtual time.
///
/// ```swift
/// var t = try TCPTester(.established)                    // reached through real segments
/// try t.inject("+0 < . 1:1001(1000) ack 1 win 65535")    // peer -> stack
/// try t.expect("+.04 > . 1:1(0) ack 1001")               // stack -> peer, 40 ms later (delayed ACK)
/// try t.expectNothing()                                  // anything not expected fails
/// ```
///
/// The stack is 198.18.0.1 (or 2001:db8::1) port 8080 when passive; the peer is 198.18.0.2 (or
/// 2001:db8::2) port 5001. Sequence numbers in `<` lines are relative to the peer's ISN (near 2^32,
/// so every test crosses the wrap), acknowledgment numbers to our ISS — the stack's own choice,
/// learnt from its SYN or SYN-ACK; `>` lines the other way round. Timestamps are absolute, and an
/// inbound `ecr *` echoes the stack's latest TSval.
///
/// Time passes only in `inject` (`+0.5 <` first advances 500 ms, running every timer due on the way),
/// `expect` (which advances timer by timer until the stack sends, and checks *when* it sent), and
/// `advance`. Strict about output: a segment still unexpected when the test injects fails it, and so
/// does one left at `expectNothing()`.
///
/// Data is a fixed pattern of the relative sequence number (`payload(from:count:)`), both ways: the
/// tester verifies every payload octet the stack sends, and tests compare what the application reads.
///
/// `run` takes several lines at once; `datagram(_:fromPort:)`, `inject(datagram:)` and
/// `takeSegments()` let a test damage segments or run connections from other ports of the peer.
/// The stack is a reference: copies of a tester share it, so a test keeps exactly one.
struct TCPTester {
    /// The state to start in, reached through real segments and user calls from CLOSED.
    ///
    /// Every segment on the way is expected by the fixture except those of the last user call:
    /// the SYN of `.synSent`, the FIN of `.finWait1` and `.lastAck` are left for the test.
    enum Fixture: Sendable {
        /// No listener and no connection: RFC 9293 §3.10.7.1.
        case closed
        /// A listener on port 8080 (RFC 9293 §3.10.7.2).
        case listen
        /// `connect`; the SYN is left unexpected.
        case synSent
        /// Passive: the peer's SYN arrived at the listener and our SYN-ACK was seen.
        case synReceived
        /// Active, then the peer's SYN crossed ours (simultaneous open); our SYN-ACK was seen.
        case synReceivedSimultaneous
        /// Passive open completed by the peer's ACK, and accepted.
        case established
        /// Active open: SYN, the peer's SYN-ACK, our ACK.
        case establishedActive
        case finWait1, finWait2, closeWait, closing, lastAck, timeWait
    }

    /// What the remote peer offers in its SYN (or SYN-ACK). By default only MSS 1460: no window
    /// scaling, SACK or timestamps, so tests see plain headers unless they ask for more.
    struct Peer: Sendable {
        var initialSequenceNumber: UInt32 = 0xFFFF_FF00
        var maximumSegmentSize: UInt16? = 1460
        var windowScale: UInt8?
        var sackPermitted = false
        /// The TSval of the peer's SYN; nil offers no timestamps.
        var timestampValue: UInt32?
        var window: UInt16 = 65535
        var ipv6 = false
        /// On a passive open the peer sends its SYN twice, so our SYN-ACK goes out twice and the
        /// handshake's ACK is no RTT sample (Karn, RFC 6298 §3): the connection starts with the
        /// initial RTO of 1 s (RFC 6298 §2 (2.1)). For the tests of timing before any measurement.
        var repeatsSYN = false

        init(
            initialSequenceNumber: UInt32 = 0xFFFF_FF00, maximumSegmentSize: UInt16? = 1460, windowScale: UInt8? = nil,
            sackPermitted: Bool = false, timestampValue: UInt32? = nil, window: UInt16 = 65535, ipv6: Bool = false,
            repeatsSYN: Bool = false
        ) {
            self.initialSequenceNumber = initialSequenceNumber
            self.maximumSegmentSize = maximumSegmentSize
            self.windowScale = windowScale
            self.sackPermitted = sackPermitted
            self.timestampValue = timestampValue
            self.window = window
            self.ipv6 = ipv6
            self.repeatsSYN = repeatsSYN
        }
    }

    /// A script line that did not match, with where it was written.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let listenPort: UInt16 = 8080
    static let remotePort: UInt16 = 5001

    let stack: Stack
    let peer: Peer
    let localAddress: IPAddress
    let remoteAddress: IPAddress
    /// The peer's ISN: `<` sequence numbers and `>` acknowledgment numbers count from it.
    let peerISN: SequenceNumber
    private(set) var localPort = TCPTester.listenPort
    private(set) var now = Instant.zero
    var listener: ListenerID?
    var connection: ConnectionID?
    /// Our ISS, once the stack has sent a SYN or SYN-ACK.
    private(set) var iss: SequenceNumber?
    /// The stack's most recent TSval, echoed by an inbound `ecr *`.
    private(set) var latestTSval: UInt32?
    /// Datagrams the stack sent that no `expect` has consumed yet, with when they were sent.
    private var unexpected: [(time: Instant, datagram: ByteBuffer)] = []

    /// - Parameter configure: adjusts the stack's configuration (checksum offload and seed are
    ///   fixed first, so the run is deterministic).
    init(
        _ fixture: Fixture, peer: Peer = Peer(), configure: (inout StackConfiguration) -> Void = { _ in }
    ) throws {
        self.peer = peer
        localAddress = peer.ipv6 ? .v6(IPv6Address("2001:db8::1")!) : .v4(IPv4Address(198, 18, 0, 1))
        remoteAddress = peer.ipv6 ? .v6(IPv6Address("2001:db8::2")!) : .v4(IPv4Address(198, 18, 0, 2))
        peerISN = SequenceNumber(peer.initialSequenceNumber)
        var configuration = StackConfiguration(addresses: [localAddress], checksumOffload: true, seed: 9293)
        // The RFC 9293 §3.8.6.3 tests pin the delayed-ACK rules from the first segment; quick-ACK
        // mode at connection start is tested on its own (AcknowledgmentPolicyTests).
        configuration.tcp.quickAcks = 0
        // The packetdrill-like tests are written for fixed 256 KiB buffers (their windows and
        // scale) and RFC 5681's one SMSS per ACK in slow start; autotuning has its own tests.
        configuration.tcp.receiveBufferSize = 256 * 1024
        configuration.tcp.sendBufferSize = 256 * 1024
        configuration.tcp.slowStartLimitSegments = 1
        configure(&configuration)
        stack = Stack(configuration)
        try reach(fixture)
    }

    init(state fixture: Fixture, peer: Peer = Peer(), configure: (inout StackConfiguration) -> Void = { _ in }) throws {
        try self.init(fixture, peer: peer, configure: configure)
    }

    // MARK: Observing

    /// The connection's state; LISTEN or SYN-RECEIVED while a passive open has no TCB of its own yet.
    var state: TCPState {
        if let connection { return stack.state(connection) ?? .closed }
        if stack.halfOpenCount > 0 { return .synReceived }
        return listener == nil ? .closed : .listen
    }

    var status: ConnectionStatus? { connection.flatMap { stack.status($0) } }
    var counters: StackCounters { stack.counters }
    /// Time since the test began.
    var elapsed: TimeAmount { now - .zero }

    /// The application's side of the connection, at the current virtual time.
    var app: Application { Application(stack: stack, connection: connection, now: now, iss: iss) }

    /// A new incarnation of the 4-tuple begins (the peer's SYN reopens a connection in TIME-WAIT, or
    /// our `connect` reuses one): the old connection's handle and ISS are forgotten, so the next SYN
    /// or SYN-ACK the stack sends sets the ISS that `>` lines count from, and the next accepted
    /// connection is the tester's. `<` sequence numbers still count from the peer's first ISN.
    mutating func beginNewIncarnation() {
        connection = nil
        iss = nil
    }

    // MARK: Time

    /// Lets virtual time pass, running every timer that falls due, in order.
    mutating func advance(by duration: TimeAmount) {
        advance(to: now + duration)
    }

    private mutating func advance(to target: Instant) {
        collectOutput()
        var steps = 0
        while let deadline = stack.nextDeadline, deadline <= target, steps < 100_000 {
            now = max(now, deadline)
            stack.advanceTime(to: now)
            collectOutput()
            steps += 1
        }
        now = max(now, target)
    }

    // MARK: The script

    /// Sends a segment from the peer, after letting the line's time pass.
    mutating func inject(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let line = try parse(text, .inbound, sourceLocation)
        switch line.timing {
        case .relative(let delay, _): advance(by: delay)
        case .absolute(let time, _): advance(to: .zero + time)
        case .any: break
        }
        try failOnUnexpectedOutput(before: text, sourceLocation)
        inject(datagram: datagram(for: line))
    }

    /// Hands the stack a datagram built by hand (`datagram(_:)`, then damaged), at the current time.
    mutating func inject(datagram: ByteBuffer) {
        stack.receive(datagram, now: now)
        collectOutput()
        if connection == nil, let listener { connection = stack.accept(listener) }
    }

    /// The datagram an inbound line describes, for a test that wants to damage it first or send
    /// it from another port of the peer (a second connection, a SYN flood).
    func datagram(
        _ text: String, fromPort port: UInt16 = TCPTester.remotePort, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ByteBuffer {
        datagram(for: try parse(text, .inbound, sourceLocation), fromPort: port)
    }

    /// Consumes everything the stack has sent, as parsed headers (absolute numbers), for tests
    /// that run connections of their own from other ports.
    mutating func takeSegments() -> [TCPHeader] {
        collectOutput()
        defer { unexpected.removeAll() }
        return unexpected.compactMap { try? decode($0.datagram, #_sourceLocation).header }
    }

    /// Consumes everything the stack has sent, for tests that flood it and only count the answers.
    mutating func takeOutput() -> [String] {
        collectOutput()
        defer { unexpected.removeAll() }
        return unexpected.map { _, datagram in
            (try? decode(datagram, #_sourceLocation)).map { describe($0.header, payload: $0.payload) } ?? "undecodable"
        }
    }

    /// Consumes the next segment the stack sent and checks it against the line: flags, sequence
    /// number, length and payload always; ack, window and options when the line gives them; and
    /// that it was sent at the line's time.
    mutating func expect(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let line = try parse(text, .outbound, sourceLocation)
        let start = now
        let (earliest, latest): (Instant, Instant) = switch line.timing {
        case .relative(let a, let b): (start + a, start + b)
        case .absolute(let a, let b): (.zero + a, .zero + b)
        case .any: (.zero, start + .seconds(24 * 3600))
        }
        collectOutput()
        var steps = 0
        while unexpected.isEmpty, let deadline = stack.nextDeadline, deadline <= latest, steps < 100_000 {
            now = max(now, deadline)
            stack.advanceTime(to: now)
            collectOutput()
            steps += 1
        }
        guard !unexpected.isEmpty else {
            now = max(now, latest)
            let next = stack.nextDeadline.map { "; next timer at \(format($0))" } ?? "; no timer armed"
            throw failure("expected `\(text)` by \(format(latest)) but the stack sent nothing\(next)", sourceLocation)
        }
        let (time, datagram) = unexpected.removeFirst()
        let (header, payload) = try decode(datagram, sourceLocation)
        let seen = describe(header, payload: payload)
        guard time >= earliest && time <= latest else {
            throw failure("expected `\(text)` at \(format(earliest)), but `\(seen)` was sent at \(format(time))", sourceLocation)
        }
        if let mismatch = mismatch(line, header, payload) {
            throw failure("expected `\(text)`, got `\(seen)` at \(format(time)): \(mismatch)", sourceLocation)
        }
    }

    /// Runs several script lines, `<` injected and `>` expected, as packetdrill would; blank lines
    /// and `//` comments are skipped. A failure names the script line.
    mutating func run(_ script: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for (number, raw) in script.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = String(raw.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            let words = text.split(separator: " ")
            guard words.count >= 2 else { continue }
            do {
                if words[1] == "<" { try inject(text, sourceLocation: sourceLocation) } else { try expect(text, sourceLocation: sourceLocation) }
            } catch let failure as Failure {
                throw Failure(description: "\(failure.description) (script line \(number + 1))")
            }
        }
    }

    /// Fails if the stack has sent anything not yet expected, after letting `duration` pass.
    mutating func expectNothing(for duration: TimeAmount = .zero, sourceLocation: SourceLocation = #_sourceLocation) throws {
        advance(by: duration)
        try failOnUnexpectedOutput(before: nil, sourceLocation)
    }

    // MARK: Payloads

    /// The octet at relative sequence number `sequence` of either direction's data.
    static func patternOctet(_ sequence: UInt32) -> UInt8 { UInt8(truncatingIfNeeded: sequence % 251) }

    /// The data a peer sends at relative sequence numbers `from ..< from + count`.
    static func payload(from start: UInt32, count: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        for offset in 0..<count { buffer.writeInteger(patternOctet(start &+ UInt32(truncatingIfNeeded: offset))) }
        return buffer
    }
}

// MARK: - Internals

extension TCPTester {
    private func parse(_ text: String, _ direction: ScriptLine.Direction, _ location: SourceLocation) throws -> ScriptLine {
        let line: ScriptLine
        do {
            line = try ScriptLine(text)
        } catch {
            throw failure("cannot parse `\(text)`: \(error)", location)
        }
        guard line.direction == direction else {
            throw failure("`\(text)` is \(direction == .inbound ? "outbound; use expect" : "inbound; use inject")", location)
        }
        return line
    }

    private func failure(_ message: String, _ location: SourceLocation) -> Failure {
        Failure(description: "\(location.fileName):\(location.line): \(message)")
    }

    private func format(_ instant: Instant) -> String {
        let milliseconds = instant.nanoseconds / 1_000_000
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction) s"
    }

    private mutating func collectOutput() {
        while let datagram = stack.nextPacketToSend() {
            if let (header, _) = try? decode(datagram, #_sourceLocation) {
                if header.flags.contains(.syn), iss == nil, header.destinationPort == Self.remotePort {
                    iss = header.sequenceNumber
                    localPort = header.sourcePort
                }
                if let timestamps = header.options.timestamps { latestTSval = timestamps.value }
            }
            unexpected.append((now, datagram))
        }
    }

    private mutating func failOnUnexpectedOutput(before text: String?, _ location: SourceLocation) throws {
        collectOutput()
        guard !unexpected.isEmpty else { return }
        let segments = unexpected.map { time, datagram in
            let description = (try? decode(datagram, location)).map { describe($0.header, payload: $0.payload) }
            return "`\(description ?? "undecodable datagram")` at \(format(time))"
        }
        unexpected.removeAll()
        let when = text.map { " before `\($0)`" } ?? ""
        throw failure("unexpected segment(s)\(when): \(segments.joined(separator: ", "))", location)
    }

    private func decode(_ datagram: ByteBuffer, _ location: SourceLocation) throws -> (header: TCPHeader, payload: ByteBuffer) {
        let verify = !stack.configuration.checksumOffload
        do {
            let ip = try IPDatagram.parse(datagram, verifyChecksum: verify)
            guard ip.source == localAddress, ip.destination == remoteAddress else {
                throw failure("datagram from \(ip.source) to \(ip.destination), not to the peer", location)
            }
            return try TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: verify)
        } catch let error as Failure {
            throw error
        } catch {
            throw failure("the stack sent an invalid datagram: \(error)", location)
        }
    }

    private func datagram(for line: ScriptLine, fromPort port: UInt16 = TCPTester.remotePort) -> ByteBuffer {
        let ackBase = iss ?? SequenceNumber(0)
        var options = TCPOptions()
        if let written = line.options {
            options.maximumSegmentSize = written.maximumSegmentSize
            options.windowScale = written.windowScale
            options.sackPermitted = written.sackPermitted
            if let timestamps = written.timestamps {
                options.timestamps = TCPTimestamps(
                    value: timestamps.value ?? 0, echoReply: timestamps.echoReply ?? latestTSval ?? 0)
            }
            for block in written.sackBlocks {
                options.sackBlocks.append(SACKBlock(start: ackBase + block.start, end: ackBase + block.end))
            }
        }
        let header = TCPHeader(
            sourcePort: port, destinationPort: localPort,
            sequenceNumber: peerISN + line.sequence,
            acknowledgmentNumber: line.acknowledgment.map { ackBase + $0 } ?? SequenceNumber(0),
            flags: line.flags, window: line.window ?? 65535, options: options)
        let firstDataOctet = line.sequence &+ (line.flags.contains(.syn) ? 1 : 0)
        let payload = line.length > 0 ? Self.payload(from: firstDataOctet, count: line.length) : nil
        return PacketBuffer.tcpDatagram(
            header: header, payload: payload, source: remoteAddress, destination: localAddress,
            computeChecksum: !stack.configuration.checksumOffload)
    }

    /// What differs between an outbound line and the segment the stack sent, or nil.
    private func mismatch(_ line: ScriptLine, _ header: TCPHeader, _ payload: ByteBuffer) -> String? {
        let base = iss ?? SequenceNumber(0)
        let sequence = header.sequenceNumber.rawValue &- base.rawValue
        if header.destinationPort != Self.remotePort { return "sent to port \(header.destinationPort)" }
        if header.flags != line.flags { return "flags" }
        if sequence != line.sequence { return "sequence number" }
        if payload.readableBytes != line.length { return "length" }
        if let ack = line.acknowledgment, header.acknowledgmentNumber.rawValue &- peerISN.rawValue != ack {
            return "acknowledgment number"
        }
        if let window = line.window, header.window != window { return "window" }
        if let options = line.options, let difference = optionsMismatch(options, header.options) { return difference }
        let firstDataOctet = sequence &+ (header.flags.contains(.syn) ? 1 : 0)
        for (offset, octet) in payload.readableBytesView.enumerated()
        where octet != Self.patternOctet(firstDataOctet &+ UInt32(offset)) {
            return "payload octet at \(firstDataOctet &+ UInt32(offset)) is not what the application sent"
        }
        return nil
    }

    private func optionsMismatch(_ expected: ScriptLine.Options, _ actual: TCPOptions) -> String? {
        if expected.maximumSegmentSize != actual.maximumSegmentSize { return "mss" }
        if expected.windowScale != actual.windowScale { return "wscale" }
        if expected.sackPermitted != actual.sackPermitted { return "sackOK" }
        switch (expected.timestamps, actual.timestamps) {
        case (nil, nil): break
        case (let written?, let sent?):
            if let value = written.value, value != sent.value { return "TS val" }
            if let echo = written.echoReply, echo != sent.echoReply { return "TS ecr" }
        default: return "timestamps"
        }
        let blocks = actual.sackBlocks.map {
            ScriptLine.Options.Block(start: $0.start.rawValue &- peerISN.rawValue, end: $0.end.rawValue &- peerISN.rawValue)
        }
        if blocks != expected.sackBlocks { return "SACK blocks" }
        return nil
    }

    /// A sent segment in the script's own notation, relative numbers and all.
    private func describe(_ header: TCPHeader, payload: ByteBuffer) -> String {
        var flags = ""
        for (flag, letter) in [(TCPFlags.syn, "S"), (.fin, "F"), (.rst, "R"), (.psh, "P"), (.ack, "."), (.urg, "U"), (.ece, "E"), (.cwr, "W")]
        where header.flags.contains(flag) { flags += letter }
        let sequence = header.sequenceNumber.rawValue &- (iss ?? SequenceNumber(0)).rawValue
        let length = UInt32(payload.readableBytes)
        var text = "> \(flags) \(sequence):\(sequence &+ length)(\(length))"
        if header.flags.contains(.ack) { text += " ack \(header.acknowledgmentNumber.rawValue &- peerISN.rawValue)" }
        text += " win \(header.window)"
        var options: [String] = []
        if let mss = header.options.maximumSegmentSize { options.append("mss \(mss)") }
        if header.options.sackPermitted { options.append("sackOK") }
        if let timestamps = header.options.timestamps { options.append("TS val \(timestamps.value) ecr \(timestamps.echoReply)") }
        if let shift = header.options.windowScale { options.append("wscale \(shift)") }
        if !header.options.sackBlocks.isEmpty {
            let blocks = header.options.sackBlocks.map {
                "\($0.start.rawValue &- peerISN.rawValue):\($0.end.rawValue &- peerISN.rawValue)"
            }
            options.append("sack \(blocks.joined(separator: " "))")
        }
        if !options.isEmpty { text += " <\(options.joined(separator: ","))>" }
        if header.destinationPort != Self.remotePort { text += " (to port \(header.destinationPort))" }
        return text
    }
}

// MARK: - The application

extension TCPTester {
    /// The user calls of RFC 9293 §3.10 on the connection under test, made at the tester's current time.
    struct Application {
        let stack: Stack
        let connection: ConnectionID?
        let now: Instant
        let iss: SequenceNumber?

        private func handle() throws -> ConnectionID {
            guard let connection else { throw Failure(description: "no connection yet") }
            return connection
        }

        /// SEND `count` octets of the pattern, continuing the stream. Returns how many were taken.
        @discardableResult
        func send(_ count: Int) throws -> Int {
            let id = try handle()
            guard let status = stack.status(id), let iss else { throw TCPError.connectionDoesNotExist }
            // The relative sequence number of the first new octet: after the SYN and everything queued.
            let unacknowledged = status.sendUnacknowledged &- iss.rawValue
            let next = max(unacknowledged, 1) &+ UInt32(status.sendQueue)
            return try stack.send(id, TCPTester.payload(from: next, count: count), now: now)
        }

        /// RECEIVE up to `maxLength` octets.
        func read(upTo maxLength: Int = .max) throws -> ReceiveResult {
            try stack.read(try handle(), upTo: maxLength, now: now)
        }

        func close() throws { try stack.close(try handle(), now: now) }
        func abort() throws { stack.abort(try handle(), now: now) }
        func release() throws { stack.release(try handle(), now: now) }
        func setNoDelay(_ noDelay: Bool) throws { stack.setNoDelay(try handle(), noDelay, now: now) }
    }
}
