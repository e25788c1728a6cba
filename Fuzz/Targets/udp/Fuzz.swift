import CLibFuzzer
import FuzzHarness

/// `fuzz-udp`: libFuzzer on `WireFuzzing.udp(_:)` (Sources/TCPIPFuzzing/). Takes libFuzzer's options.
@main
enum FuzzUdp {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            WireFuzzing.udp(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
            return 0
        }
        if status != 0 { fatalError("libFuzzer exited with status \(status)") }
    }
}
