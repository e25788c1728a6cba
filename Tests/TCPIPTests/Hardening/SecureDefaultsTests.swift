import NIOCore
import TCPIP
import TCPIPWire
import Testing

/// `StackConfiguration.seed` defaults to nil: the secrets come from the system's cryptographic
/// generator, so two stacks built alike answer the same SYN with different ISNs (RFC 6528 §3), and
/// only a seed passed on purpose makes them the same.
struct SecureDefaultsTests {
    static let server = IPAddress("198.18.0.2")!
    static let client = IPAddress("198.18.0.1")!

    /// The ISN of the SYN-ACK a fresh server stack sends for one and the same SYN.
    func synAckSequenceNumber(seed: UInt64?, for syn: ByteBuffer) throws -> UInt32 {
        let stack = Stack(StackConfiguration(addresses: [Self.server], checksumOffload: true, seed: seed))
        _ = try stack.listen(on: 80)
        stack.receive(syn, now: .zero)
        let synAck = try #require(stack.nextPacketToSend())
        #expect(synAck.getInteger(at: synAck.readerIndex + 20 + 13, as: UInt8.self) == 0x12, "SYN-ACK")
        return try #require(synAck.getInteger(at: synAck.readerIndex + 20 + 4, as: UInt32.self))
    }

    func syn() throws -> ByteBuffer {
        let client = Stack(StackConfiguration(addresses: [Self.client], checksumOffload: true, seed: 1))
        _ = try client.connect(to: Endpoint(Self.server, 80), now: .zero)
        return try #require(client.nextPacketToSend())
    }

    @Test func defaultStacksDrawDifferentSecrets() throws {
        #expect(StackConfiguration(addresses: [Self.server]).seed == nil)
        let syn = try syn()
        // Same 4-tuple, same instant: only the secret key differs (2^-32 that two keys collide here;
        // three draws make a false failure 2^-64).
        let isns = try (0..<3).map { _ in try synAckSequenceNumber(seed: nil, for: syn) }
        #expect(Set(isns).count == 3, "ISNs \(isns)")
    }

    @Test func aSeedReproducesTheSecrets() throws {
        let syn = try syn()
        #expect(try synAckSequenceNumber(seed: 7, for: syn) == synAckSequenceNumber(seed: 7, for: syn))
        #expect(try synAckSequenceNumber(seed: 7, for: syn) != synAckSequenceNumber(seed: 8, for: syn))
    }

    @Test func defaultStacksStartTheirEphemeralPortsApart() throws {
        // RFC 6056 §3.1: the first ephemeral port is not a constant (three equal draws: 2^-28).
        let ports = try (0..<3).map { _ -> UInt16 in
            let stack = Stack(StackConfiguration(addresses: [Self.client], checksumOffload: true))
            _ = try stack.connect(to: Endpoint(Self.server, 80), now: .zero)
            let syn = try #require(stack.nextPacketToSend())
            return try #require(syn.getInteger(at: syn.readerIndex + 20, as: UInt16.self))
        }
        #expect(Set(ports).count > 1, "ports \(ports)")
    }

    /// RFC 6864 §4.1: our IPv4 datagrams are atomic (DF set), and their identification is 0 — no
    /// counter for an observer to read.
    @Test func ipv4IdentificationIsNoCounter() throws {
        let syn = try syn()
        #expect(syn.getInteger(at: syn.readerIndex + 4, as: UInt16.self) == 0, "identification")
        #expect(syn.getInteger(at: syn.readerIndex + 6, as: UInt16.self) == 0x4000, "DF, no fragment")
    }
}
