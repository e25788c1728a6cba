#if os(Linux)
import NIOCore
import TCPIP
import TCPIPLinks
import TCPIPWire
import Testing

/// `StackConfiguration.transmitChecksumOffload`: what we send leaves the TCP checksum to the link
/// (RFC 9293 §3.1's checksum is then the link's to finish, as a NIC's with transmit offload), while
/// what arrives is still checked (MUST-2/MUST-3).
struct TransmitChecksumOffloadTests {
    static let ours = IPAddress("198.18.0.2")!
    static let peer = IPAddress("198.18.0.1")!

    @Test func sentChecksumsAreLeftToTheLinkAndReceivedOnesStillChecked() throws {
        var configuration = StackConfiguration(addresses: [Self.ours], seed: 1)
        configuration.transmitChecksumOffload = true
        let stack = Stack(configuration)
        let peer = Stack(StackConfiguration(addresses: [Self.peer], seed: 2))
        _ = try peer.listen(on: 80)
        _ = try stack.connect(to: Endpoint(Self.peer, 80), now: .zero)

        let syn = try #require(stack.nextPacketToSend())
        #expect(syn.getInteger(at: syn.readerIndex + 20 + 16, as: UInt16.self) == 0, "no checksum computed")
        // A peer that checks finds it wrong, as it must; finished by the link, it is right.
        peer.receive(syn, now: .zero)
        #expect(peer.counters.badChecksums == 1)
        peer.receive(TUNDevice.completingChecksum(syn), now: .zero)
        var synAck = try #require(peer.nextPacketToSend())

        // What arrives is still checked: one bit flipped in the SYN-ACK, and it is dropped.
        let last = synAck.writerIndex - 1
        var damaged = synAck
        damaged.setInteger(damaged.getInteger(at: last, as: UInt8.self)! ^ 0x01, at: last)
        stack.receive(damaged, now: .zero)
        #expect(stack.counters.badChecksums == 1)
        #expect(stack.nextPacketToSend() == nil)
        // Unless the link vouches for it (a TUN datagram from the kernel's own TCP).
        stack.receive(synAck, now: .zero, checksumVerified: true)
        synAck = try #require(stack.nextPacketToSend())
        #expect(synAck.getInteger(at: synAck.readerIndex + 20 + 13, as: UInt8.self) == 0x10, "the handshake's ACK")
    }
}
#endif
