import NIOCore

/// Where a `PcapRecorder` puts its bytes.
public protocol PcapSink: AnyObject {
    /// Appends the readable bytes of `bytes`. The sink must not keep `bytes` itself: the caller reuses it.
    func write(_ bytes: ByteBuffer)
    /// Pushes buffered bytes to their destination.
    func flush()
}

/// Keeps a capture in memory, for tests.
public final class PcapMemorySink: PcapSink {
    /// The capture so far: the global header and every record.
    public private(set) var bytes: [UInt8] = []

    /// An empty capture.
    public init() {}

    public func write(_ bytes: ByteBuffer) {
        self.bytes.append(contentsOf: bytes.readableBytesView)
    }

    public func flush() {}
}
