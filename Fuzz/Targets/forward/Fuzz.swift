import CLibFuzzer
import FuzzHarness

/// `fuzz-forward`: libFuzzer on `ForwardFuzzing.forward(_:)` (Sources/TCPIPFuzzing/). Takes libFuzzer's options.
@main
enum FuzzForward {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            ForwardFuzzing.forward(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
            return 0
        }
        if status != 0 { fatalError("libFuzzer exited with status \(status)") }
    }
}
