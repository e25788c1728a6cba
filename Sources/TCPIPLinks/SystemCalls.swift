#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error number from a failed system call.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public static let interrupted = Errno(rawValue: EINTR)

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

    private static func retryingOnInterrupt(_ call: () -> Int) throws(Errno) -> Int {
        while true {
            let result = call()
            if result >= 0 { return result }
            let error = Errno(rawValue: errno)
            if error != .interrupted { throw error }
        }
    }
}
