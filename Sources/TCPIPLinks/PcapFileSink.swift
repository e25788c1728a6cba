#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import TCPIP

/// Writes a capture to a file, buffering so that most datagrams cost no system call.
///
/// `write` and `flush` cannot throw (recording must not disturb the link it watches), so the first
/// failure is kept in `error`, later writes are discarded, and `close()` throws it.
public final class PcapFileSink: PcapSink {
    /// Bytes gathered before a write(2).
    public static let bufferSize = 64 * 1024

    /// The file the capture is written to.
    public let path: String
    /// The first write failure, if any; once set, nothing more is written.
    public private(set) var error: Errno?
    private var descriptor: Int32?
    private var buffer: ByteBuffer

    /// Creates or truncates the file at `path`.
    public init(path: String) throws(Errno) {
        self.path = path
        self.descriptor = try SystemCall.openFile(path, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644)
        self.buffer = ByteBufferAllocator().buffer(capacity: Self.bufferSize)
    }

    deinit {
        try? close()
    }

    public func write(_ bytes: ByteBuffer) {
        guard descriptor != nil, error == nil else { return }
        if buffer.readableBytes + bytes.readableBytes > Self.bufferSize {
            flush()
        }
        if bytes.readableBytes >= Self.bufferSize {
            // Larger than the buffer: straight to the file rather than through it.
            writeOut(bytes)
        } else {
            buffer.writeImmutableBuffer(bytes)
        }
    }

    public func flush() {
        guard buffer.readableBytes > 0 else { return }
        writeOut(buffer)
        buffer.clear()
    }

    /// Flushes and closes the file; throws the first failure seen since it was opened.
    /// Closing twice does nothing.
    public func close() throws(Errno) {
        guard let descriptor else { return }
        flush()
        self.descriptor = nil
        do {
            try SystemCall.closeFile(descriptor)
        } catch {
            if self.error == nil { self.error = error }
        }
        if let error { throw error }
    }

    private func writeOut(_ bytes: ByteBuffer) {
        guard let descriptor, error == nil else { return }
        do {
            try bytes.withUnsafeReadableBytes { raw throws(Errno) in try SystemCall.writeAll(descriptor, raw) }
        } catch {
            self.error = error
        }
    }
}
