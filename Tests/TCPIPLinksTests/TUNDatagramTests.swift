#if os(Linux)
import Glibc
import NIOCore
import TCPIP
import TCPIPLinks
import Testing
import TestSupport

/// The virtio-net header path of `TUNDevice` (IFF_VNET_HDR), over a SOCK_SEQPACKET pair standing in
/// for /dev/net/tun: the test writes what the kernel would, the device reads it.
struct TUNDatagramTests {
    /// The 10 bytes of struct virtio_net_hdr, little-endian.
    static func header(
        flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, segmentSize: UInt16 = 0,
        checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0
    ) -> [UInt8] {
        func le(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
        return [flags, gsoType] + le(headerLength) + le(segmentSize) + le(checksumStart) + le(checksumOffset)
    }

    /// A device reading one end of a fresh pair, and the other end for the test to write on.
    static func pair() throws -> (TUNDevice, Int32) {
        var descriptors: [Int32] = [0, 0]
        let made = socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &descriptors)
        try #require(made == 0)
        return (try TUNDevice(adopting: descriptors[0], name: "vnet0", mtu: 1500, virtioNetHeader: true), descriptors[1])
    }

    static func send(_ bytes: [UInt8], on descriptor: Int32) {
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    /// The TCP checksum field left as the kernel leaves it for offload: the pseudo-header sum only.
    static func partial(_ packet: ByteBuffer) -> [UInt8] {
        var bytes = Array(packet.readableBytesView)
        let tcpLength = bytes.count - 20
        let pseudo = Array(bytes[12..<20]) + [0, 6, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)]
        // The one's-complement sum of the pseudo-header, not complemented (CHECKSUM_PARTIAL).
        let sum = ~TestDatagram.internetChecksum(pseudo)
        bytes[36] = UInt8(sum >> 8)
        bytes[37] = UInt8(sum & 0xFF)
        return bytes
    }

    /// A datagram with NEEDS_CSUM reads back with its checksum completed, byte for byte the datagram
    /// as it would have been on a wire.
    @Test func partialChecksumIsCompletedOnRead() throws {
        let (device, kernel) = try Self.pair()
        defer { close(kernel) }
        let original = TestDatagram.ipv4TCP(flags: 0x18, payload: Array(0..<200).map { UInt8($0 & 0xFF) })
        let partial = Self.partial(original)
        #expect(partial != Array(original.readableBytesView))
        Self.send(Self.header(flags: 1, checksumStart: 20, checksumOffset: 16) + partial, on: kernel)
        let read = try #require(try device.read())
        #expect(Array(read.readableBytesView) == Array(original.readableBytesView))
        #expect(device.statistics.packetsDelivered == 1)
    }

    /// `TUNDatagram` keeps what the header said until asked to complete the checksum.
    @Test func completeChecksumFillsThePartialSum() {
        let original = TestDatagram.ipv4TCP(flags: 0x18, payload: [1, 2, 3])
        var datagram = TUNDatagram(
            packet: ByteBuffer(bytes: Self.partial(original)), checksum: .partial(start: 20, offset: 16))
        #expect(datagram.checksumTrusted)
        datagram.completeChecksum()
        #expect(datagram.checksum == .unverified)
        #expect(datagram.packet == original)
    }

    /// A TSO super-packet may be larger than the MTU; a plain datagram may not.
    @Test func superPacketsMayExceedTheMTU() throws {
        let (device, kernel) = try Self.pair()
        defer { close(kernel) }
        let big = TestDatagram.ipv4TCP(flags: 0x10, payload: [UInt8](repeating: 7, count: 20_000))
        Self.send(Self.header(gsoType: 1, headerLength: 40, segmentSize: 1460) + Array(big.readableBytesView), on: kernel)
        Self.send(Self.header() + Array(big.readableBytesView), on: kernel)
        let read = try #require(try device.read())
        #expect(read == big)
        #expect(try device.read() == nil)
        #expect(device.drops.truncated == 1)
    }

    /// A header asking for a segmentation we did not offer (UDP), a checksum field outside the
    /// datagram, or a datagram shorter than the header: dropped and counted, the next one read.
    @Test func headersWeCannotHonourAreDroppedAndCounted() throws {
        let (device, kernel) = try Self.pair()
        defer { close(kernel) }
        let packet = Array(TestDatagram.ipv4TCP(flags: 0x10).readableBytesView)
        Self.send(Self.header(gsoType: 3, segmentSize: 1400) + packet, on: kernel)
        Self.send(Self.header(flags: 1, checksumStart: 30, checksumOffset: 16) + packet, on: kernel)
        Self.send([0, 0, 0], on: kernel)
        Self.send(Self.header() + packet, on: kernel)
        let read = try #require(try device.read())
        #expect(Array(read.readableBytesView) == packet)
        #expect(device.drops.badVirtioNetHeader == 3)
    }

    /// Reads what the device wrote on the other end: (virtio-net header, datagram), or nil for none.
    static func receive(on descriptor: Int32) -> ([UInt8], [UInt8])? {
        var bytes = [UInt8](repeating: 0, count: 70_000)
        let count = bytes.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard count >= 10 else { return nil }
        return (Array(bytes[0..<10]), Array(bytes[10..<count]))
    }

    static func segment(sequence: UInt32, flags: UInt8 = 0x10, size: Int = 1460, fill: UInt8 = 0) -> ByteBuffer {
        TestDatagram.ipv4TCP(
            sequence: sequence, acknowledgment: 1, flags: flags,
            payload: (0..<size).map { UInt8(truncatingIfNeeded: Int(fill) &+ $0) })
    }

    /// Consecutive full-sized segments of one flow leave as one TSO super-packet: the first
    /// segment's headers with the run's length, a partial checksum the kernel finishes, and a
    /// virtio-net header asking for TCPv4 segmentation at the segment size. Completing the checksum
    /// as the kernel would gives a segment whose checksum checks out (RFC 1071).
    @Test func consecutiveSegmentsLeaveAsOneSuperPacket() throws {
        let (device, kernel) = try Self.pair()
        defer { close(kernel) }
        let segments = (0..<5).map { Self.segment(sequence: 1000 + UInt32($0) * 1460, flags: $0 == 4 ? 0x18 : 0x10, fill: UInt8($0)) }
        for segment in segments { try device.enqueue(segment) }
        #expect(Self.receive(on: kernel) == nil, "held back until flush")
        try device.flush()
        let (header, packet) = try #require(Self.receive(on: kernel))
        #expect(Self.receive(on: kernel) == nil)
        // flags NEEDS_CSUM, gso TCPV4, hdr_len 40, gso_size 1460, csum_start 20, csum_offset 16.
        #expect(header == [1, 1, 40, 0, 0xB4, 0x05, 20, 0, 16, 0])
        #expect(packet.count == 40 + 5 * 1460)
        #expect(Int(packet[2]) << 8 | Int(packet[3]) == packet.count)
        #expect(TestDatagram.internetChecksum(Array(packet[0..<20])) == 0, "IPv4 header checksum")
        #expect(packet[33] == 0x18, "PSH from the last segment")
        #expect(Array(packet[40...]) == segments.flatMap { Array($0.readableBytesView.dropFirst(40)) })
        var datagram = TUNDatagram(packet: ByteBuffer(bytes: packet), checksum: .partial(start: 20, offset: 16))
        datagram.completeChecksum()
        let bytes = Array(datagram.packet.readableBytesView)
        let tcpLength = bytes.count - 20
        let pseudo = Array(bytes[12..<20]) + [0, 6, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)]
        #expect(TestDatagram.internetChecksum(pseudo + Array(bytes[20...])) == 0)
        #expect(device.superPacketsWritten == 1)
        #expect(device.statistics.packetsSent == 5)
    }

    /// A run ends at a gap in sequence, a different acknowledgment, a short segment, PSH, or a
    /// segment that is not plain ACK with text (a FIN here); those leave as they came.
    @Test func runsEndWhereASegmentationEngineCouldNotHaveMadeThem() throws {
        let (device, kernel) = try Self.pair()
        defer { close(kernel) }
        try device.enqueue(Self.segment(sequence: 0))
        try device.enqueue(Self.segment(sequence: 1460))  // joins: one super-packet of 2
        try device.enqueue(Self.segment(sequence: 5000))  // gap: a new run
        try device.enqueue(Self.segment(sequence: 6460, size: 100))  // short: joins, then closes
        try device.enqueue(Self.segment(sequence: 6560))  // the run was closed
        try device.enqueue(Self.segment(sequence: 8020, flags: 0x11))  // FIN: alone
        try device.flush()
        var frames: [([UInt8], [UInt8])] = []
        while let frame = Self.receive(on: kernel) { frames.append(frame) }
        #expect(frames.map(\.1.count) == [40 + 2920, 40 + 1560, 40 + 1460, 40 + 1460])
        // The two alone leave unsegmented, their checksum partial (NEEDS_CSUM from byte 20, field at 16).
        let single: [UInt8] = [1, 0, 0, 0, 0, 0, 20, 0, 16, 0]
        #expect(frames.map(\.0) == [frames[0].0, frames[1].0, single, single])
        #expect(frames[0].0[1] == 1 && frames[1].0[1] == 1, "TCPv4 segmentation")
        #expect(device.superPacketsWritten == 2)
    }

    /// A segment built without its TCP checksum (transmit checksum offload) gets the real one from
    /// `completingChecksum`, for paths that check it (the runtime's impairment).
    @Test func completingChecksumComputesAMissingOne() {
        let original = Self.segment(sequence: 7, flags: 0x18, size: 333)
        var bare = original
        bare.setInteger(UInt16(0), at: bare.readerIndex + 36)
        #expect(bare != original)
        #expect(TUNDevice.completingChecksum(bare) == original)
        let notTCP = ByteBuffer(bytes: [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17] + [UInt8](repeating: 0, count: 10))
        #expect(TUNDevice.completingChecksum(notTCP) == notTCP)
    }

    /// What the device writes carries a header saying "a whole packet, checksums done".
    @Test func writesCarryAPlainHeader() throws {
        let (device, kernel) = try Self.pair()
        defer { close(kernel) }
        let packet = TestDatagram.ipv4TCP(flags: 0x12)
        try device.write(packet)
        var bytes = [UInt8](repeating: 0xFF, count: 2000)
        let count = bytes.withUnsafeMutableBytes { read(kernel, $0.baseAddress, $0.count) }
        #expect(count == 10 + packet.readableBytes)
        #expect(Array(bytes[0..<10]) == [UInt8](repeating: 0, count: 10))
        #expect(Array(bytes[10..<count]) == Array(packet.readableBytesView))
    }
}
#endif
