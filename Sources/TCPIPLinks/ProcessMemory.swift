/// The process's memory as Linux reports it in /proc, for the memory benchmark (`tcpip bench memory`):
/// a measurement of the outside world, so it lives with the other system calls, not in the simulation.
public enum ProcessMemory {
    /// The process's resident set size, from /proc/self/statm (Linux), in bytes.
    public static func residentBytes() -> Int? {
        guard let bytes = try? SystemCall.readSmallFile("/proc/self/statm") else { return nil }
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * SystemCall.pageSize
    }

    /// The most the process has had resident so far (`VmHWM` in /proc/self/status), in bytes:
    /// what a machine must have for the whole run, both ends and the benchmark's own arrays included.
    public static func peakResidentBytes() -> Int? {
        guard let bytes = try? SystemCall.readSmallFile("/proc/self/status", capacity: 16384) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let kibibytes = Int(fields[1]) else { return nil }
            return kibibytes * 1024
        }
        return nil
    }
}
