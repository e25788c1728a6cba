import CLibFuzzer
import FuzzHarness

/// `fuzz-tcp`: libFuzzer on `WireFuzzing.tcp(_:)` (Sources/TCPIPFuzzing/). Takes libFuzzer's options.
@main
enum FuzzTcp {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            WireFuzzing.tcp(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
            return 0
        }
        if status != 0 { fatalError("libFuzzer exited with status \(status)") }
    }
}
