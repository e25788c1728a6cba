#if os(Linux)
import Glibc
import NIOCore

/// The reading half of a `TUNDevice`, for a thread of its own: it blocks in poll(2) until the
/// device has datagrams, reads a batch, and hands it on, while the device's owner keeps writing.
///
/// It reads through a duplicate of the device's descriptor, so the owner may close the device at
/// any time without this half reading from a number the process has since reused; it closes its
/// duplicate itself (`close`). `wake` is the only call meant for another thread — and only while
/// the receiver is open, which its user must guarantee (a lock around `wake` and `close` does).
public final class TUNReceiver: @unchecked Sendable {
    private var descriptor: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let mtu: Int
    private let virtioNetHeader: Bool
    private var scratch: [UInt8] = []
    private let allocator = ByteBufferAllocator()

    /// What one batch brought.
    public struct Batch: Sendable {
        /// The datagrams read, in order.
        public var datagrams: [TUNDatagram] = []
        /// Datagrams dropped for a virtio-net header we could not honour (see `TUNDevice.DropCounters`).
        public var badVirtioNetHeaders = 0
    }

    /// A receiver reading `device` on a descriptor of its own (a duplicate), so that it can block in poll(2) on
    /// a thread while the device is written elsewhere.
    ///
    /// - Parameter device: the device to read.
    public init(_ device: TUNDevice) throws(TUNError) {
        let duplicate = try device.duplicateDescriptor()
        do {
            (wakeRead, wakeWrite) = try SystemCall.makePipe()
        } catch {
            try? SystemCall.closeFile(duplicate)
            throw .io(error)
        }
        descriptor = duplicate
        mtu = device.mtu
        virtioNetHeader = device.virtioNetHeader
    }

    deinit { close() }

    /// Blocks until the device has something to read (true) or `wake` was called (false).
    /// - Throws: `TUNError.deviceGone` when the device reports an error condition and nothing to
    ///   read: TUN does so (POLLERR) only while its interface is being deleted, and a read then would
    ///   find nothing (EAGAIN) — waiting again would spin.
    public func wait() throws(TUNError) -> Bool {
        let events: [Int16]
        do {
            events = try SystemCall.poll([descriptor, wakeRead], events: Int16(POLLIN))
        } catch {
            throw .io(error)
        }
        if events[1] != 0 { return false }
        let trouble = Int16(POLLERR) | Int16(POLLHUP) | Int16(POLLNVAL)
        if events[0] & Int16(POLLIN) == 0, events[0] & trouble != 0 {
            throw .deviceGone(Errno(rawValue: events[0] & Int16(POLLNVAL) != 0 ? EBADF : EIO))
        }
        return true
    }

    /// Reads up to `limit` datagrams, stopping early when the device has no more queued.
    /// - Throws: `TUNError.deviceGone` when the interface was deleted (EBADFD, EIO, ENODEV, or a
    ///   read of 0 from a socket standing in for a device).
    public func read(upTo limit: Int) throws(TUNError) -> Batch {
        try TUNDevice.readBatch(
            from: descriptor, upTo: limit, mtu: mtu, virtioNetHeader: virtioNetHeader, scratch: &scratch, allocator: allocator)
    }

    /// Makes a blocked or later `wait` return false. Any thread, while the receiver is open.
    public func wake() {
        var byte: UInt8 = 1
        _ = try? withUnsafeBytes(of: &byte) { bytes in
            Result { () throws(Errno) in try SystemCall.writeOnce(wakeWrite, bytes) }
        }.get()
    }

    /// Closes the duplicate descriptor and the wake-up pipe. The reading thread's last call.
    public func close() {
        guard descriptor >= 0 else { return }
        try? SystemCall.closeFile(descriptor)
        try? SystemCall.closeFile(wakeRead)
        try? SystemCall.closeFile(wakeWrite)
        descriptor = -1
    }
}
#endif
