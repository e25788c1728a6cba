#if os(Linux)
import Glibc
import NIOCore

/// The writing half of a `TUNDevice` without a virtio-net header, for a thread of its own: it
/// writes batches of datagrams, one write(2) each, while the device's owner goes on building them.
///
/// Without offload every segment is a write(2), and the kernel does the receiving host's work for
/// it (IP, TCP, waking the reader) inside that call: most of a download's CPU time. A thread of its
/// own takes that work off the thread that runs the stack, which on a 2-core machine is the
/// difference between one core and two (`StackRuntime` starts one for a TUN device without offload).
///
/// It writes through a duplicate of the device's descriptor, so the owner may close the device at
/// any time; it closes its duplicate itself (`close`), from the thread that writes.
public final class TUNTransmitter: @unchecked Sendable {
    private var descriptor: Int32

    /// What one batch came to.
    public struct Outcome: Sendable {
        /// Datagrams the kernel had no room for (EAGAIN, ENOBUFS), dropped as a full ring drops.
        public var droppedQueueFull = 0
        /// Datagrams refused for another reason, dropped.
        public var writeErrors = 0
        /// The device is gone: nothing more can be written.
        public var failure: TUNError?

        /// An outcome with these counts (none by default).
        public init(droppedQueueFull: Int = 0, writeErrors: Int = 0, failure: TUNError? = nil) {
            self.droppedQueueFull = droppedQueueFull
            self.writeErrors = writeErrors
            self.failure = failure
        }
    }

    /// A writing half for `device`, on a duplicate of its descriptor.
    public init(_ device: TUNDevice) throws(TUNError) {
        descriptor = try device.duplicateDescriptor()
    }

    deinit { close() }

    /// Writes each datagram as it is (its checksums complete), in order; stops at a failure that
    /// makes the device unusable.
    public func write(_ batch: [ByteBuffer]) -> Outcome {
        var outcome = Outcome()
        for packet in batch {
            do {
                _ = try packet.withUnsafeReadableBytes { bytes in
                    Result { () throws(Errno) in try SystemCall.writeOnce(descriptor, bytes) }
                }.get()
            } catch {
                switch error {
                case .wouldBlock, .noBufferSpace:
                    outcome.droppedQueueFull += 1
                case .badFileDescriptorState, .noDevice, Errno(rawValue: EIO), Errno(rawValue: EBADF):
                    outcome.failure = TUNDevice.classify(error)
                    return outcome
                default:
                    outcome.writeErrors += 1
                }
            }
        }
        return outcome
    }

    /// Closes the duplicate descriptor. Call it from the thread that writes, once it has stopped.
    public func close() {
        guard descriptor >= 0 else { return }
        try? SystemCall.closeFile(descriptor)
        descriptor = -1
    }
}
#endif
