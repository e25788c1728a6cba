import NIOCore
import TCPIPWire
import Testing
@testable import TCPIP

/// RFC 3168 §6.1 between two real stacks: negotiation (§6.1.1), the receiver's echo (§6.1.3), the
/// sender's reaction (§6.1.2) and which packets are ECT (§6.1.4–§6.1.5). A hook on the wire can mark
/// the client's data CE or drop it, as a router would.
@Suite struct ExplicitCongestionTests {
    static let clientAddress = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    static let serverAddress = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    static let port: UInt16 = 5001

    /// What crossed the wire: who sent it, its flags, payload length and ECN field.
    struct Seen {
        var fromClient: Bool
        var flags: TCPFlags
        var sequence: UInt32
        var payload: Int
        var ecn: ECNCodepoint
    }

    final class Pair {
        let client: Stack
        let server: Stack
        let listener: ListenerID
        var now = Instant.zero + .seconds(1)
        var accepted: [ConnectionID] = []
        var seen: [Seen] = []
        /// Decides what happens to a client datagram on its way: returned as is, changed, or nil (dropped).
        var clientToServer: (IPDatagram, ByteBuffer) -> ByteBuffer? = { _, datagram in datagram }

        init(
            client clientECN: ExplicitCongestionNotification, server serverECN: ExplicitCongestionNotification,
            synCookies: SYNCookieMode = .whenSYNQueueFull
        ) throws {
            var tcp = TCPConfiguration()
            tcp.explicitCongestionNotification = clientECN
            client = Stack(StackConfiguration(addresses: [ExplicitCongestionTests.clientAddress], checksumOffload: true, seed: 7, tcp: tcp))
            tcp.explicitCongestionNotification = serverECN
            tcp.synCookies = synCookies
            server = Stack(StackConfiguration(addresses: [ExplicitCongestionTests.serverAddress], checksumOffload: true, seed: 8, tcp: tcp))
            listener = try server.listen(on: ExplicitCongestionTests.port)
        }

        func record(_ datagram: ByteBuffer, fromClient: Bool) -> IPDatagram? {
            guard let ip = try? IPDatagram.parse(datagram, verifyChecksum: false),
                  let (header, payload) = try? TCPHeader.parse(ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: false)
            else { return nil }
            seen.append(Seen(fromClient: fromClient, flags: header.flags, sequence: header.sequenceNumber.rawValue,
                             payload: payload.readableBytes, ecn: ip.ecn))
            return ip
        }

        func exchange() {
            var progress = true
            while progress {
                progress = false
                while let datagram = client.nextPacketToSend() {
                    progress = true
                    guard let ip = record(datagram, fromClient: true) else { continue }
                    if let delivered = clientToServer(ip, datagram) { server.receive(delivered, now: now) }
                }
                while let datagram = server.nextPacketToSend() {
                    progress = true
                    _ = record(datagram, fromClient: false)
                    client.receive(datagram, now: now)
                }
                while let id = server.accept(listener) {
                    accepted.append(id)
                    progress = true
                }
            }
        }

        func advance(by amount: TimeAmount) {
            let until = now + amount
            while true {
                let next = [client.nextDeadline, server.nextDeadline].compactMap { $0 }.filter { $0 <= until }.min()
                guard let next else { break }
                now = max(now, next)
                client.advanceTime(to: now)
                server.advanceTime(to: now)
                exchange()
            }
            now = until
            exchange()
        }

        func connect() throws -> (client: ConnectionID, server: ConnectionID) {
            let id = try client.connect(to: Endpoint(ExplicitCongestionTests.serverAddress, ExplicitCongestionTests.port), now: now)
            exchange()
            let serverSide = try #require(accepted.last)
            return (id, serverSide)
        }

        /// Reads everything the server has, as bytes.
        func drainServer(_ id: ConnectionID) throws -> [UInt8] {
            var bytes: [UInt8] = []
            while case .data(let buffer) = try server.read(id, now: now) { bytes += Array(buffer.readableBytesView) }
            exchange()
            return bytes
        }
    }

    static func pattern(from offset: Int, count: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        for index in offset..<(offset + count) { buffer.writeInteger(UInt8(truncatingIfNeeded: index % 251)) }
        return buffer
    }

    /// A copy of `datagram` with its ECN field set to CE (checksums are offloaded on this wire).
    static func markCE(_ datagram: ByteBuffer) -> ByteBuffer {
        var copy = datagram
        let tos = copy.getInteger(at: copy.readerIndex + 1, as: UInt8.self)!
        copy.setInteger(ECNCodepoint.congestionExperienced.applied(to: tos), at: copy.readerIndex + 1)
        return copy
    }

    // MARK: §6.1.1 negotiation

    @Test func requestMeetsAcceptance() throws {
        let pair = try Pair(client: .request, server: .acceptWhenRequested)
        let (client, server) = try pair.connect()
        let syn = try #require(pair.seen.first { $0.fromClient && $0.flags.contains(.syn) })
        let synAck = try #require(pair.seen.first { !$0.fromClient && $0.flags.contains(.syn) })
        #expect(syn.flags == [.syn, .ece, .cwr])
        #expect(synAck.flags == [.syn, .ack, .ece])
        // §6.1.1: "A host MUST NOT set ECT on SYN or SYN-ACK packets."
        #expect(syn.ecn == .notECT && synAck.ecn == .notECT)
        #expect(pair.client.status(client)?.ecn == true)
        #expect(pair.server.status(server)?.ecn == true)
        #expect(pair.client.counters.ecnConnections == 1 && pair.server.counters.ecnConnections == 1)

        // Both directions' data goes as ECT(0); the pure ACKs as Not-ECT (§6.1.4).
        #expect(try pair.client.send(client, Self.pattern(from: 0, count: 3000), now: pair.now) == 3000)
        #expect(try pair.server.send(server, Self.pattern(from: 0, count: 2000), now: pair.now) == 2000)
        pair.exchange()
        pair.advance(by: .milliseconds(100))
        let data = pair.seen.filter { $0.payload > 0 }
        #expect(data.count >= 4)
        #expect(data.allSatisfy { $0.ecn == .ect0 })
        let pureAcks = pair.seen.filter { $0.payload == 0 && !$0.flags.contains(.syn) }
        #expect(!pureAcks.isEmpty && pureAcks.allSatisfy { $0.ecn == .notECT })
        #expect(try pair.drainServer(server) == Array(Self.pattern(from: 0, count: 3000).readableBytesView))
    }

    @Test func aSYNCookieKeepsTheAgreement() throws {
        // RFC 4987 §3.6: the ECN bit rides in the cookie's TSval, as window scale and SACK do.
        let pair = try Pair(client: .request, server: .acceptWhenRequested, synCookies: .always)
        let (client, server) = try pair.connect()
        let synAck = try #require(pair.seen.first { !$0.fromClient && $0.flags.contains(.syn) })
        #expect(synAck.flags == [.syn, .ack, .ece])
        #expect(pair.server.counters.synCookiesValidated == 1)
        #expect(pair.client.status(client)?.ecn == true)
        #expect(pair.server.status(server)?.ecn == true)
        #expect(try pair.client.send(client, Self.pattern(from: 0, count: 1000), now: pair.now) == 1000)
        pair.exchange()
        #expect(pair.seen.last { $0.fromClient && $0.payload > 0 }?.ecn == .ect0)
        #expect(try pair.drainServer(server) == Array(Self.pattern(from: 0, count: 1000).readableBytesView))
    }

    @Test func refusedWhenTheListenerIsOff() throws {
        let pair = try Pair(client: .request, server: .off)
        let (client, server) = try pair.connect()
        let synAck = try #require(pair.seen.first { !$0.fromClient && $0.flags.contains(.syn) })
        // §6.1.1: a host not willing to use ECN clears both ECE and CWR in its SYN-ACK.
        #expect(synAck.flags == [.syn, .ack])
        #expect(pair.client.status(client)?.ecn == false)
        #expect(pair.server.status(server)?.ecn == false)
        #expect(try pair.client.send(client, Self.pattern(from: 0, count: 2000), now: pair.now) == 2000)
        pair.exchange()
        #expect(pair.seen.filter { $0.payload > 0 }.allSatisfy { $0.ecn == .notECT })
        #expect(try pair.drainServer(server) == Array(Self.pattern(from: 0, count: 2000).readableBytesView))
    }

    @Test func theDefaultAcceptsButDoesNotAsk() throws {
        #expect(TCPConfiguration().explicitCongestionNotification == .acceptWhenRequested)
        let pair = try Pair(client: .acceptWhenRequested, server: .acceptWhenRequested)
        let (client, _) = try pair.connect()
        let syn = try #require(pair.seen.first { $0.fromClient && $0.flags.contains(.syn) })
        #expect(syn.flags == .syn)
        #expect(pair.client.status(client)?.ecn == false)
    }

    @Test func aRetransmittedSYNGivesUpOnECN() throws {
        // §6.1.1.1: the SYN is resent without ECE and CWR (a middlebox may drop ECN-setup SYNs);
        // having sent a non-ECN-setup SYN, the connection must not use ECN (§6.1.1).
        let pair = try Pair(client: .request, server: .acceptWhenRequested)
        var dropped = false
        pair.clientToServer = { _, datagram in
            if dropped { return datagram }
            dropped = true
            return nil
        }
        let id = try pair.client.connect(to: Endpoint(Self.serverAddress, Self.port), now: pair.now)
        pair.exchange()
        pair.advance(by: .seconds(2))
        let syns = pair.seen.filter { $0.fromClient && $0.flags.contains(.syn) }
        #expect(syns.count == 2)
        #expect(syns.first?.flags == [.syn, .ece, .cwr])
        #expect(syns.last?.flags == .syn)
        #expect(pair.client.state(id) == .established)
        #expect(pair.client.status(id)?.ecn == false)
    }

    @Test func aPlainSYNRetransmissionWithdrawsTheAgreement() throws {
        // The client's ECN-setup SYN reaches the server, the SYN-ACK is lost, and the client's
        // retransmission is a plain SYN (§6.1.1.1): the server answers without ECE and neither uses ECN.
        let pair = try Pair(client: .request, server: .acceptWhenRequested)
        var synAcksDropped = 0
        let id = try pair.client.connect(to: Endpoint(Self.serverAddress, Self.port), now: pair.now)
        // Drop the first SYN-ACK by taking it off the server's queue.
        while let syn = pair.client.nextPacketToSend() {
            _ = pair.record(syn, fromClient: true)
            pair.server.receive(syn, now: pair.now)
        }
        while let synAck = pair.server.nextPacketToSend() {
            _ = pair.record(synAck, fromClient: false)
            synAcksDropped += 1
        }
        #expect(synAcksDropped == 1)
        pair.advance(by: .seconds(2))
        let synAcks = pair.seen.filter { !$0.fromClient && $0.flags.contains(.syn) }
        #expect(synAcks.first?.flags == [.syn, .ack, .ece])
        #expect(synAcks.last?.flags == [.syn, .ack])
        let server = try #require(pair.accepted.last)
        #expect(pair.client.state(id) == .established)
        #expect(pair.client.status(id)?.ecn == false)
        #expect(pair.server.status(server)?.ecn == false)
    }

    // MARK: §6.1.2 / §6.1.3 the signal

    @Test func congestionExperiencedIsEchoedUntilCongestionWindowReduced() throws {
        let pair = try Pair(client: .request, server: .acceptWhenRequested)
        let (client, server) = try pair.connect()
        // A router marks the first data segment CE instead of dropping it.
        var marked = false
        pair.clientToServer = { ip, datagram in
            guard !marked, ip.payload.readableBytes > 20 else { return datagram }
            marked = true
            return Self.markCE(datagram)
        }
        let cwndBefore = try #require(pair.client.status(client)?.congestionWindow)
        let total = 20 * 1460
        #expect(try pair.client.send(client, Self.pattern(from: 0, count: total), now: pair.now) == total)
        pair.exchange()
        pair.advance(by: .milliseconds(200))

        // §6.1.3: the receiver echoed ECE, and stopped once the sender's CWR arrived.
        #expect(pair.server.counters.congestionExperiencedReceived == 1)
        let serverAcks = pair.seen.filter { !$0.fromClient && !$0.flags.contains(.syn) }
        let firstEcho = try #require(serverAcks.firstIndex { $0.flags.contains(.ece) })
        #expect(serverAcks[firstEcho...].contains { !$0.flags.contains(.ece) })
        #expect(serverAcks.last.map { !$0.flags.contains(.ece) } == true)

        // §6.1.2: exactly one reduction, CWR on exactly one new data segment, and it carried ECT(0).
        let status = try #require(pair.client.status(client))
        #expect(status.ecnEchoesReceived >= 1)
        #expect(status.ecnWindowReductions == 1)
        #expect(status.congestionWindowReducedSent == 1)
        #expect(status.slowStartThreshold < Int.max)
        #expect(status.congestionWindow < cwndBefore + total)
        let cwr = pair.seen.filter { $0.fromClient && $0.flags.contains(.cwr) && !$0.flags.contains(.syn) }
        #expect(cwr.count == 1)
        #expect(cwr.first.map { $0.payload > 0 && $0.ecn == .ect0 } == true)
        // No retransmission: an ECE is not a loss.
        #expect(status.retransmits == 0)
        #expect(try pair.drainServer(server) == Array(Self.pattern(from: 0, count: total).readableBytesView))
    }

    @Test func oneReductionPerWindowOfData() throws {
        // Every data segment of the first window is marked: one window, one reduction (§6.1.2).
        let pair = try Pair(client: .request, server: .acceptWhenRequested)
        let (client, server) = try pair.connect()
        var marks = Int.max
        pair.clientToServer = { ip, datagram in
            guard marks > 0, ip.payload.readableBytes > 20 else { return datagram }
            marks -= 1
            return Self.markCE(datagram)
        }
        let mss = try #require(pair.client.status(client)?.maximumSegmentSize)
        let flight = 10 * mss
        #expect(try pair.client.send(client, Self.pattern(from: 0, count: flight), now: pair.now) == flight)
        pair.exchange()
        let afterFirstWindow = try #require(pair.client.status(client))
        #expect(afterFirstWindow.ecnEchoesReceived >= 2)
        #expect(afterFirstWindow.ecnWindowReductions == 1)
        let reducedTo = afterFirstWindow.congestionWindow

        // One mark in data sent after the reduction: a new window, a second reduction.
        marks = 1
        #expect(try pair.client.send(client, Self.pattern(from: flight, count: flight), now: pair.now) == flight)
        pair.exchange()
        pair.advance(by: .milliseconds(500))
        let later = try #require(pair.client.status(client))
        #expect(later.ecnWindowReductions == 2)
        #expect(later.congestionWindowReducedSent == 2)
        #expect(later.congestionWindow <= reducedTo)
        #expect(later.retransmits == 0)
        #expect(try pair.drainServer(server) == Array(Self.pattern(from: 0, count: 2 * flight).readableBytesView))
    }

    // MARK: §6.1.5 retransmissions

    @Test func retransmissionsAreNotECT() throws {
        let pair = try Pair(client: .request, server: .acceptWhenRequested)
        let (client, server) = try pair.connect()
        // The segment and its tail loss probe (RFC 8985 §7.3) are lost: the RTO's retransmission gets through.
        var drops = 2
        pair.clientToServer = { ip, datagram in
            guard drops > 0, ip.payload.readableBytes > 20 else { return datagram }
            drops -= 1
            return nil
        }
        #expect(try pair.client.send(client, Self.pattern(from: 0, count: 1000), now: pair.now) == 1000)
        pair.exchange()
        pair.advance(by: .seconds(3))
        let data = pair.seen.filter { $0.fromClient && $0.payload > 0 }
        #expect(data.count == 3)
        #expect(data.first?.ecn == .ect0)
        #expect(data.dropFirst().allSatisfy { $0.ecn == .notECT && !$0.flags.contains(.cwr) })
        #expect(pair.client.status(client).map { $0.timeouts } == 1)
        // The timeout reduced cwnd: CWR goes on the next *new* data (§6.1.2), not on the retransmission.
        #expect(try pair.client.send(client, Self.pattern(from: 1000, count: 500), now: pair.now) == 500)
        pair.exchange()
        let next = pair.seen.filter { $0.fromClient && $0.payload > 0 }.last
        #expect(next.map { $0.flags.contains(.cwr) && $0.ecn == .ect0 } == true)
        #expect(try pair.drainServer(server) == Array(Self.pattern(from: 0, count: 1500).readableBytesView))
    }
}
