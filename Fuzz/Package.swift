// swift-tools-version: 6.1
// libFuzzer targets for swift-tcpip, kept out of the main package: they build only with
// `-sanitize=fuzzer,address` (see run.sh), which `swift build` and `swift test` must not need.
import Foundation
import PackageDescription

// A path dependency is named after its folder, whatever the checkout is called.
let parent = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let targets = ["ipv4", "ipv6", "datagram", "tcp", "address", "stack", "udp", "icmp", "reassembly", "rules", "filter", "forward"]

let package = Package(
    name: "swift-tcpip-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(name: "CLibFuzzer", path: "Targets/CLibFuzzer"),
        // The harness is the main package's TCPIPFuzzing target, which no library product exposes (apps
        // have no use for it): compiled here from its sources through the symlink Targets/TCPIPFuzzing.
        // Named apart from the main package's TCPIPFuzzing target (target names are unique across a
        // package graph), with the same sources.
        .target(
            name: "FuzzHarness",
            dependencies: [
                .product(name: "TCPIP", package: parent), .product(name: "TCPIPWire", package: parent),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Targets/TCPIPFuzzing",
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ] + targets.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: ["CLibFuzzer", "FuzzHarness"],
            path: "Targets/\(name)",
            swiftSettings: [.swiftLanguageMode(.v6)])
    }
)
