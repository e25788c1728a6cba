import Foundation
import NIOCore
import TCPIP
import TCPIPLinks
import TCPIPSimulation
import Testing
import TestSupport

@Suite struct PcapWriterTests {
    /// Classic pcap, little-endian, microsecond magic, version 2.4, snaplen 65535, LINKTYPE_RAW (101).
    static let globalHeader: [UInt8] = [
        0xD4, 0xC3, 0xB2, 0xA1, 0x02, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xFF, 0xFF, 0x00, 0x00, 0x65, 0x00, 0x00, 0x00,
    ]

    @Test func writesTheGlobalHeaderOnceAtInit() {
        let sink = PcapMemorySink()
        _ = PcapRecorder(sink: sink)
        #expect(sink.bytes == Self.globalHeader)
    }

    @Test func recordsADatagramWithItsTimestampAndLengths() {
        let sink = PcapMemorySink()
        let recorder = PcapRecorder(sink: sink)
        let datagram = TestDatagram.ipv4TCP()
        recorder.record(datagram, at: Instant(nanoseconds: 1_500_250_999))

        let recordHeader: [UInt8] = [
            0x01, 0x00, 0x00, 0x00,  // 1 s
            0x1A, 0xA2, 0x07, 0x00,  // 500 250 µs (the nanoseconds below a microsecond are cut)
            0x28, 0x00, 0x00, 0x00,  // 40 bytes captured
            0x28, 0x00, 0x00, 0x00,  // 40 bytes on the wire
        ]
        #expect(sink.bytes == Self.globalHeader + recordHeader + Array(datagram.readableBytesView))
    }

    @Test func recordsOnlyTheReadableBytes() {
        let sink = PcapMemorySink()
        let recorder = PcapRecorder(sink: sink)
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeBytes([0xEE, 0xEE, 0x45, 0x00])
        buffer.moveReaderIndex(forwardBy: 2)  // headroom a link left in front
        recorder.record(buffer, at: .zero)
        #expect(Array(sink.bytes.dropFirst(24)) == [0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0x45, 0x00])
    }

    @Test func cutsDatagramsAtTheSnapshotLength() {
        let sink = PcapMemorySink()
        let recorder = PcapRecorder(sink: sink)
        var big = ByteBufferAllocator().buffer(capacity: 70_000)
        big.writeRepeatingByte(0x45, count: 70_000)
        recorder.record(big, at: .zero)

        let header = Array(sink.bytes[24..<40])
        #expect(header[8..<12] == [0xFF, 0xFF, 0x00, 0x00])
        #expect(header[12..<16] == [0x70, 0x11, 0x01, 0x00])
        #expect(sink.bytes.count == 24 + 16 + 65_535)
    }

    @Test func timestampsBeforeTheEpochAreZero() {
        let sink = PcapMemorySink()
        PcapRecorder(sink: sink).record(TestDatagram.numbered(1, size: 8), at: Instant(nanoseconds: -5))
        #expect(Array(sink.bytes[24..<32]) == [0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func recordsBothDirectionsOfTheWrappedEnd() {
        let sink = PcapMemorySink()
        let (a, b) = MemoryLink.pair(.init(delay: .milliseconds(2)))
        let captured = PcapWriter(wrapping: a, sink: sink)
        let syn = TestDatagram.ipv4TCP(flags: 0x02)
        let synAck = TestDatagram.ipv4TCP(
            source: (198, 18, 0, 2), destination: (198, 18, 0, 1),
            sourcePort: 5_001, destinationPort: 41_234, flags: 0x12
        )

        captured.send(syn, now: .milliseconds(1))
        #expect(b.receive(now: .milliseconds(3)) == syn)
        b.send(synAck, now: .milliseconds(3))
        #expect(captured.nextArrival == .milliseconds(5))
        #expect(captured.receive(now: .milliseconds(5)) == synAck)

        var expected = Self.globalHeader
        expected += [0, 0, 0, 0, 0xE8, 0x03, 0, 0, 40, 0, 0, 0, 40, 0, 0, 0] + Array(syn.readableBytesView)
        expected += [0, 0, 0, 0, 0x88, 0x13, 0, 0, 40, 0, 0, 0, 40, 0, 0, 0] + Array(synAck.readableBytesView)
        #expect(sink.bytes == expected)
        #expect(captured.mtu == a.mtu)
        #expect(captured.capabilities == a.capabilities)
    }

    @Test func theFileSinkWritesWhatTheMemorySinkHolds() throws {
        let path = Self.temporaryPath("file-sink")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let memory = PcapMemorySink()
        let file = try PcapFileSink(path: path)
        let toMemory = PcapRecorder(sink: memory)
        let toFile = PcapRecorder(sink: file)
        // Enough to pass through the file sink's buffer several times, plus one record larger than it.
        for number in 0..<300 {
            let packet = TestDatagram.numbered(UInt64(number), size: 1500)
            toMemory.record(packet, at: .milliseconds(Int64(number)))
            toFile.record(packet, at: .milliseconds(Int64(number)))
        }
        var large = ByteBufferAllocator().buffer(capacity: 65_535)
        large.writeRepeatingByte(0x60, count: 65_535)
        toMemory.record(large, at: .milliseconds(300))
        toFile.record(large, at: .milliseconds(300))
        try file.close()
        try file.close()

        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(written == memory.bytes)
    }

    @Test func openingAFileInAMissingDirectoryThrowsErrno() {
        #expect(throws: Errno(rawValue: ENOENT)) {
            _ = try PcapFileSink(path: "/nonexistent-swift-tcpip-directory/capture.pcap")
        }
    }

    @Test(.enabled(if: Tshark.path != nil, "tshark is not installed; install it to check captures parse"))
    func tsharkReadsTheCapture() throws {
        let path = Self.temporaryPath("tshark")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = try PcapFileSink(path: path)
        let (client, server) = MemoryLink.pair(.init(delay: .milliseconds(1)))
        let captured = PcapWriter(wrapping: client, sink: sink)
        let handshake = [
            TestDatagram.ipv4TCP(sequence: 0xFFFF_FF00, flags: 0x02, identification: 1),
            TestDatagram.ipv4TCP(
                source: (198, 18, 0, 2), destination: (198, 18, 0, 1), sourcePort: 5_001, destinationPort: 41_234,
                sequence: 0x1000, acknowledgment: 0xFFFF_FF01, flags: 0x12, identification: 2
            ),
            TestDatagram.ipv4TCP(sequence: 0xFFFF_FF01, acknowledgment: 0x1001, flags: 0x10, identification: 3),
            TestDatagram.ipv4TCP(
                sequence: 0xFFFF_FF01, acknowledgment: 0x1001, flags: 0x18, identification: 4,
                payload: Array("hello".utf8)
            ),
        ]
        captured.send(handshake[0], now: .milliseconds(0))
        server.send(handshake[1], now: .milliseconds(1))
        #expect(captured.receive(now: .milliseconds(2)) == handshake[1])
        captured.send(handshake[2], now: .milliseconds(2))
        captured.send(handshake[3], now: .milliseconds(2))
        try sink.close()

        let output = try Tshark.run([
            "-r", path, "-T", "fields", "-E", "separator=,",
            "-e", "frame.time_epoch", "-e", "ip.src", "-e", "tcp.srcport", "-e", "tcp.dstport",
            "-e", "tcp.flags", "-e", "tcp.len", "-e", "ip.checksum.status", "-e", "tcp.checksum.status",
            "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
        ])
        let lines = output.split(separator: "\n").map(String.init)
        // The last two fields are the IP and TCP checksum verdicts: 1 is "good" (0 bad, 2 unverified).
        #expect(lines == [
            "0.000000000,198.18.0.1,41234,5001,0x0002,0,1,1",
            "0.002000000,198.18.0.2,5001,41234,0x0012,0,1,1",
            "0.002000000,198.18.0.1,41234,5001,0x0010,0,1,1",
            "0.002000000,198.18.0.1,41234,5001,0x0018,5,1,1",
        ])
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("swift-tcpip-links-\(name)-\(ProcessInfo.processInfo.processIdentifier).pcap")
            .path
    }
}

/// Finds and runs tshark, the command-line Wireshark.
enum Tshark {
    static let path: String? = {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return directories.map { "\($0)/tshark" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    struct Failed: Error, CustomStringConvertible {
        var status: Int32
        var standardError: String
        var description: String { "tshark exited with \(status): \(standardError)" }
    }

    /// Runs tshark with `arguments` and returns its standard output.
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path!)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failed(status: process.terminationStatus, standardError: String(decoding: errorData, as: UTF8.self))
        }
        return String(decoding: outputData, as: UTF8.self)
    }
}
