import CLibFuzzer
import FuzzHarness

/// `fuzz-ipv4`: libFuzzer on `WireFuzzing.ipv4(_:)` (Sources/TCPIPFuzzing/). Takes libFuzzer's options.
@main
enum FuzzIpv4 {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            WireFuzzing.ipv4(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
            return 0
        }
        if status != 0 { fatalError("libFuzzer exited with status \(status)") }
    }
}
