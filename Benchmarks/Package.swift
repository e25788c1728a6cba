// swift-tools-version: 6.1
// The hot-path benchmarks of swift-tcpip, with package-benchmark. A package of its own, so that the main
// package's `swift test` neither builds nor fetches it. Run from this directory:
//
//     swift package benchmark                          # throughput, wall clock and malloc counts
//     swift package benchmark thresholds check --path "$PWD/Thresholds"   # fails when mallocs regress
import PackageDescription

let package = Package(
    name: "swift-tcpip-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "swift-tcpip", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "HotPath",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "TCPIP", package: "swift-tcpip"),
                .product(name: "TCPIPWire", package: "swift-tcpip"),
                .product(name: "TCPIPSimulation", package: "swift-tcpip"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/HotPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
