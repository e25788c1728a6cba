#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error number from a failed system call.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    /// The C library's `errno` value.
    public var rawValue: Int32

    /// The error numbered `rawValue` (`EINTR`, …).
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// `EINTR`: a signal interrupted the call; it is retried.
    public static let interrupted = Errno(rawValue: EINTR)
    /// `EAGAIN`: nothing to read, or no room to write, on a non-blocking descriptor.
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    /// `ENODEV`: the interface is gone.
    public static let noDevice = Errno(rawValue: ENODEV)
    /// `EBADFD`: the TUN interface is down (the kernel refuses reads and writes).
    public static let badFileDescriptorState = Errno(rawValue: EBADFD)
    /// `EMSGSIZE`: the datagram is larger than the device takes.
    public static let messageTooLong = Errno(rawValue: EMSGSIZE)
    /// `ENOBUFS`: the device's queue is full; the datagram is dropped, as a full wire drops it.
    public static let noBufferSpace = Errno(rawValue: ENOBUFS)

    public var description: String {
        guard let message = strerror(rawValue) else { return "errno \(rawValue)" }
        return "\(String(cString: message)) (errno \(rawValue))"
    }
}

/// The one funnel through which this target makes system calls: each call retries on EINTR where
/// that is safe and turns -1 into a thrown `Errno`, so callers never read the global `errno` themselves.
enum SystemCall {
    static func openFile(_ path: String, flags: Int32, mode: mode_t) throws(Errno) -> Int32 {
        let descriptor = try retryingOnInterrupt { Int(path.withCString { open($0, flags, mode) }) }
        return Int32(truncatingIfNeeded: descriptor)
    }

    /// Writes all of `bytes`, continuing after short writes.
    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            offset += try retryingOnInterrupt {
                write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            }
        }
    }

    /// The size of a memory page, in bytes.
    static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// Reads up to `capacity` bytes from the start of a (small) file, such as one under /proc.
    static func readSmallFile(_ path: String, capacity: Int = 4096) throws(Errno) -> [UInt8] {
        let descriptor = try openFile(path, flags: O_RDONLY, mode: 0)
        defer { try? closeFile(descriptor) }
        var bytes = [UInt8](repeating: 0, count: capacity)
        var count = 0
        while count < capacity {
            let remaining = capacity - count
            let got = try retryingOnInterrupt {
                bytes.withUnsafeMutableBytes { buffer in read(descriptor, buffer.baseAddress! + count, remaining) }
            }
            if got == 0 { break }
            count += got
        }
        return Array(bytes[..<count])
    }

    static func closeFile(_ descriptor: Int32) throws(Errno) {
        // POSIX leaves the descriptor's state unspecified after EINTR from close; Linux has already
        // released it, so retrying could close a descriptor someone else just opened. Don't retry.
        guard close(descriptor) == 0 else { throw Errno(rawValue: errno) }
    }

    /// One read(2) into `buffer`; EAGAIN is thrown like any other error (the caller decides).
    static func readOnce(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retryingOnInterrupt { read(descriptor, buffer.baseAddress, buffer.count) }
    }

    /// One write(2) of `bytes`; a short write is returned, not continued (a TUN write is one packet).
    static func writeOnce(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try retryingOnInterrupt { write(descriptor, bytes.baseAddress, bytes.count) }
    }

    /// ioctl(2) with a pointer argument, such as a `struct ifreq`.
    static func ioControl(_ descriptor: Int32, _ request: UInt, _ argument: inout [UInt8]) throws(Errno) {
        try argument.withUnsafeMutableBytes { bytes in
            Result { () throws(Errno) in
                _ = try retryingOnInterrupt { Int(ioctl(descriptor, request, bytes.baseAddress!)) }
            }
        }.get()
    }

    static func openSocket(domain: Int32, type: Int32) throws(Errno) -> Int32 {
        Int32(truncatingIfNeeded: try retryingOnInterrupt { Int(socket(domain, type, 0)) })
    }

    static func duplicate(_ descriptor: Int32) throws(Errno) -> Int32 {
        Int32(truncatingIfNeeded: try retryingOnInterrupt { Int(fcntl(descriptor, F_DUPFD_CLOEXEC, 0)) })
    }

    /// ioctl(2) whose argument is a value rather than a pointer (TUNSETOFFLOAD takes its flags so).
    static func ioControl(_ descriptor: Int32, _ request: UInt, value: UInt) throws(Errno) {
        _ = try retryingOnInterrupt { Int(ioctl(descriptor, request, CInt(truncatingIfNeeded: value))) }
    }

    /// writev(2) of two pieces as one datagram (a TUN write is one packet; a short write is returned).
    static func writeOnce(_ descriptor: Int32, _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) throws(Errno) -> Int {
        var vectors = (
            iovec(iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress), iov_len: first.count),
            iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress), iov_len: second.count))
        return try withUnsafeMutableBytes(of: &vectors) { raw in
            Result { () throws(Errno) in
                try retryingOnInterrupt {
                    writev(descriptor, raw.baseAddress!.assumingMemoryBound(to: iovec.self), 2)
                }
            }
        }.get()
    }

    /// A non-blocking, close-on-exec pipe: (read end, write end).
    static func makePipe() throws(Errno) -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        _ = try retryingOnInterrupt { Int(pipe(&ends)) }
        for end in ends {
            do {
                try setNonBlocking(end)
                _ = try retryingOnInterrupt { Int(fcntl(end, F_SETFD, FD_CLOEXEC)) }
            } catch {
                for end in ends { try? closeFile(end) }
                throw error
            }
        }
        return (ends[0], ends[1])
    }

    /// poll(2) on `descriptors` for `events` each, blocking until one is ready; returns the
    /// `revents` of each, in order.
    static func poll(_ descriptors: [Int32], events: Int16) throws(Errno) -> [Int16] {
        var entries = descriptors.map { pollfd(fd: $0, events: events, revents: 0) }
        _ = try retryingOnInterrupt { Int(pollDescriptors(&entries)) }
        return entries.map(\.revents)
    }

    static func setNonBlocking(_ descriptor: Int32) throws(Errno) {
        let flags = try retryingOnInterrupt { Int(fcntl(descriptor, F_GETFL)) }
        _ = try retryingOnInterrupt { Int(fcntl(descriptor, F_SETFL, Int32(flags) | O_NONBLOCK)) }
    }

    private static func retryingOnInterrupt(_ call: () -> Int) throws(Errno) -> Int {
        while true {
            let result = call()
            if result >= 0 { return result }
            let error = Errno(rawValue: errno)
            if error != .interrupted { throw error }
        }
    }
}

/// poll(2) with no timeout, outside `SystemCall` whose own `poll` would shadow it.
private func pollDescriptors(_ entries: inout [pollfd]) -> Int32 {
    poll(&entries, nfds_t(entries.count), -1)
}
