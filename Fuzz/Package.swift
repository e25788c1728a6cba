// swift-tools-version: 6.1
// libFuzzer targets for swift-tcpip, kept out of the main package: they build only with
// `-sanitize=fuzzer,address` (see run.sh), which `swift build` and `swift test` must not need.
import Foundation
import PackageDescription

// A path dependency is named after its folder, whatever the checkout is called.
let parent = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let targets = ["ipv4", "ipv6", "datagram", "tcp", "address", "stack", "udp", "icmp", "reassembly", "rules", "forward"]

let package = Package(
    name: "swift-tcpip-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(path: "..")],
    targets: [.target(name: "CLibFuzzer", path: "Targets/CLibFuzzer")] + targets.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: ["CLibFuzzer", .product(name: "TCPIPLinks", package: parent)],
            path: "Targets/\(name)",
            swiftSettings: [.swiftLanguageMode(.v6)])
    }
)
