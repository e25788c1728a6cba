import CLibFuzzer
import FuzzHarness

/// `fuzz-ipv6`: libFuzzer on `WireFuzzing.ipv6(_:)` (Sources/TCPIPFuzzing/). Takes libFuzzer's options.
@main
enum FuzzIpv6 {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            WireFuzzing.ipv6(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
            return 0
        }
        if status != 0 { fatalError("libFuzzer exited with status \(status)") }
    }
}
