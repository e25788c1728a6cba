import CLibFuzzer
import FuzzHarness

/// `fuzz-datagram`: libFuzzer on `WireFuzzing.datagram(_:)` (Sources/TCPIPFuzzing/). Takes libFuzzer's options.
@main
enum FuzzDatagram {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            WireFuzzing.datagram(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
            return 0
        }
        if status != 0 { fatalError("libFuzzer exited with status \(status)") }
    }
}
