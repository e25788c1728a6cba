import NIOCore
import TCPIP
import TCPIPWire

/// Two stacks back to back on virtual time, rules installed on either: A is 198.18.0.1 and
/// 2001:db8::1, B is 198.18.0.2 and 2001:db8::2. Every datagram that leaves a stack (past its
/// output hooks) is kept, when `recording`, for the test to count.
final class FilterPair {
    static let a4 = IPv4Address(198, 18, 0, 1)
    static let b4 = IPv4Address(198, 18, 0, 2)
    static let a6 = IPv6Address("2001:db8::1")!
    static let b6 = IPv6Address("2001:db8::2")!

    let a: Stack
    let b: Stack
    var now = Instant.zero
    var recording = true
    var fromA: [ByteBuffer] = []
    var fromB: [ByteBuffer] = []
    /// Runs after every exchange: what the applications on either side do.
    var applications: () -> Void = {}

    init(a rulesA: String? = nil, b rulesB: String? = nil, seed: UInt64 = 7) throws {
        var configurationA = StackConfiguration(addresses: [.v4(Self.a4), .v6(Self.a6)], seed: seed)
        var configurationB = StackConfiguration(addresses: [.v4(Self.b4), .v6(Self.b6)], seed: seed &+ 1)
        if let rulesA { configurationA.rules = try FilterRuleset(parsing: rulesA) }
        if let rulesB { configurationB.rules = try FilterRuleset(parsing: rulesB) }
        a = Stack(configurationA)
        b = Stack(configurationB)
    }

    /// Exchanges datagrams, running timers as virtual time reaches them, until `done` holds or
    /// nothing is left to do before `limit` from now.
    func run(for limit: TimeAmount = .seconds(5), until done: () -> Bool = { false }) {
        let end = now + limit
        while !done() {
            var moved = false
            while let packet = a.nextPacketToSend() {
                if recording { fromA.append(packet) }
                b.receive(packet, now: now)
                moved = true
            }
            while let packet = b.nextPacketToSend() {
                if recording { fromB.append(packet) }
                a.receive(packet, now: now)
                moved = true
            }
            applications()
            if moved || a.pendingPacketCount > 0 || b.pendingPacketCount > 0 { continue }
            guard let next = Instant.earliest(a.nextDeadline, b.nextDeadline), next <= end else { return }
            now = max(now, next)
            a.advanceTime(to: now)
            b.advanceTime(to: now)
        }
    }

    /// Connects A to B's `port` (B listening) and runs the handshake; returns both ends.
    func connect(to port: UInt16, v6: Bool = false) throws -> (client: ConnectionID, server: ConnectionID?) {
        let listener = try b.listen(on: port)
        let client = try a.connect(to: Endpoint(v6 ? .v6(Self.b6) : .v4(Self.b4), port), now: now)
        run(for: .seconds(1))
        return (client, b.accept(listener))
    }

    static func parsed(_ datagrams: [ByteBuffer]) -> [IPDatagram] {
        datagrams.compactMap { try? IPDatagram.parse($0, verifyChecksum: false) }
    }

    /// TCP segments among `datagrams`, to or from `port`.
    static func segments(_ datagrams: [ByteBuffer], port: UInt16) -> [(header: TCPHeader, payload: Int)] {
        parsed(datagrams).compactMap { ip in
            guard ip.upperLayerProtocol == IPProtocolNumber.tcp,
                  let (header, payload) = try? TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: false),
                  header.sourcePort == port || header.destinationPort == port
            else { return nil }
            return (header, payload.readableBytes)
        }
    }
}

extension Stack {
    /// The packet counter of rule `rule` (from 0) of chain `chain`, as listed now.
    func ruleCounter(_ chain: String, _ rule: Int) -> UInt64? {
        guard let ruleset = packetFilter?.currentRuleset else { return nil }
        for table in ruleset.tables {
            for candidate in table.chains where candidate.name == chain { return candidate.rules[rule].packets }
        }
        return nil
    }
}
