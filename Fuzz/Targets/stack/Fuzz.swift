import CLibFuzzer
import FuzzHarness

/// `fuzz-stack`: libFuzzer on `StackFuzzing.run(_:)` (Sources/TCPIPFuzzing/). Takes libFuzzer's options.
@main
enum FuzzStack {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            StackFuzzing.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
            return 0
        }
        if status != 0 { fatalError("libFuzzer exited with status \(status)") }
    }
}
