// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "swift-tcpip",
    // Everything but the real links (`TCPIPLinks`: the Linux TUN device) builds for Apple platforms too.
    //
    // The dependency tree (arrows point to what a module imports):
    //
    //   tcpip (CLI) ─┬─ TCPIPScript ─────────────┐
    //                ├─ TCPIPFuzzing (no product) ┤
    //                ├─ TCPIPSimulation ──────────┤
    //   TCPIPStack ──┴─ TCPIPNIO ─ (Linux) TCPIPLinks ─┴─ TCPIP ─ TCPIPWire
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "TCPIPWire", targets: ["TCPIPWire"]),
        .library(name: "TCPIP", targets: ["TCPIP"]),
        .library(name: "TCPIPLinks", targets: ["TCPIPLinks"]),
        .library(name: "TCPIPSimulation", targets: ["TCPIPSimulation"]),
        .library(name: "TCPIPNIO", targets: ["TCPIPNIO"]),
        // One import for an app: the stack, the runtime, the bootstraps, NIO, and on Linux the TUN device.
        .library(name: "TCPIPStack", targets: ["TCPIPStack"]),
        // tun2socks: every intercepted flow relayed through SOCKS5 or a direct socket (issue 19).
        .library(name: "TCPIPGateway", targets: ["TCPIPGateway"]),
        .executable(name: "tcpip", targets: ["tcpip"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // Logging in the runtime and the long-running commands (never in the sans-IO core).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // `serve` and `sink` as services that stop gracefully on SIGINT/SIGTERM.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The stack's counters exported by the runtime (the sans-IO core only counts).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // `--metrics-port` on the long-running commands: the counters in Prometheus' text format.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `swift package generate-documentation`: the DocC catalogs under Sources/*/*.docc.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Packet formats: views and values for IPv4, IPv6, TCP; checksums; SequenceNumber. No I/O.
        .target(
            name: "TCPIPWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // The sans-IO stack: time and randomness are parameters; no clocks, no I/O, no locks.
        .target(
            name: "TCPIP",
            dependencies: ["TCPIPWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // Real links, the only library layer (with the runtime) that touches the outside world: the Linux TUN
        // device (virtio header, segment coalescing), the system-call funnel, pcap captures to files.
        // `PacketLink` and the pcap format live in TCPIP, so that simulation does not need this module.
        .target(
            name: "TCPIPLinks",
            dependencies: ["TCPIP", "TCPIPWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // Everything on virtual time, portable: the in-memory link, fault injection, the PMTU router, the
        // virtual network, transfer simulation and its matrix, the in-memory benchmark harness.
        .target(
            name: "TCPIPSimulation",
            dependencies: ["TCPIP", "TCPIPWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // The fuzzing harness: one entry point per libFuzzer target (Fuzz/) and the seed corpus writer
        // (`tcpip fuzz-corpus`). No library product: Fuzz/ compiles these sources itself (Fuzz/Package.swift).
        .target(
            name: "TCPIPFuzzing",
            dependencies: ["TCPIP", "TCPIPWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // packetdrill scripts: parser and a runner that plays the remote peer against a Stack.
        .target(
            name: "TCPIPScript",
            dependencies: ["TCPIP", "TCPIPWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // The runtime: a Stack on a SwiftNIO EventLoop over any packet source; TCP connections as NIO
        // Channels. Portable; the TUN device (TCPIPLinks) is Linux's source.
        .target(
            name: "TCPIPNIO",
            dependencies: [
                "TCPIP", "TCPIPWire",
                .target(name: "TCPIPLinks", condition: .when(platforms: [.linux])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // The one-import umbrella: re-exports TCPIPWire, TCPIP, TCPIPNIO, NIOCore, NIOPosix (and TCPIPLinks on Linux).
        .target(
            name: "TCPIPStack",
            dependencies: [
                "TCPIPWire", "TCPIP", "TCPIPNIO",
                .target(name: "TCPIPLinks", condition: .when(platforms: [.linux])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The gateway: relays (direct, SOCKS5), the splice, fake DNS. Depends on the runtime and its
        // PacketSource protocol only, so an app brings its own source (NEPacketTunnelFlow, VpnService).
        // Portable: the C library only inside `#if os(Linux)`.
        .target(
            name: "TCPIPGateway",
            dependencies: [
                "TCPIP", "TCPIPWire", "TCPIPNIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "tcpip",
            dependencies: [
                "TCPIP", "TCPIPWire", "TCPIPLinks", "TCPIPSimulation", "TCPIPFuzzing", "TCPIPScript", "TCPIPNIO", "TCPIPGateway",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // Examples/: each imports only TCPIPStack (and NIOHTTP1 for HTTP). Run without arguments they
        // serve over the in-process pair, check themselves and exit; ExamplesTests runs them in CI.
        .executableTarget(
            name: "EchoServerExample", dependencies: ["TCPIPStack"], path: "Examples/EchoServer", swiftSettings: strict),
        .executableTarget(
            name: "InProcessPairExample", dependencies: ["TCPIPStack"], path: "Examples/InProcessPair",
            swiftSettings: strict),
        .executableTarget(name: "ClientExample", dependencies: ["TCPIPStack"], path: "Examples/Client", swiftSettings: strict),
        // The README's in-process snippets as top-level code (ExamplesTests keeps the two the same).
        .executableTarget(name: "ReadmeExample", dependencies: ["TCPIPStack"], path: "Examples/Readme", swiftSettings: strict),
        .executableTarget(
            name: "HTTPServerExample",
            dependencies: ["TCPIPStack", .product(name: "NIOHTTP1", package: "swift-nio")],
            path: "Examples/HTTPServer", swiftSettings: strict),
        .testTarget(
            name: "ExamplesTests",
            dependencies: ["EchoServerExample", "InProcessPairExample", "ClientExample", "HTTPServerExample", "ReadmeExample"],
            swiftSettings: strict),
        .testTarget(name: "TCPIPWireTests", dependencies: ["TCPIPWire"], swiftSettings: strict),
        .testTarget(
            name: "TCPIPTests", dependencies: ["TCPIP", "TCPIPWire", "TCPIPLinks", "TCPIPSimulation", "TCPIPFuzzing", "TCPIPScript", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "TCPIPLinksTests", dependencies: ["TCPIPLinks", "TCPIPSimulation", "TCPIP", "TCPIPWire", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "TCPIPSimulationTests", dependencies: ["TCPIPSimulation", "TCPIP", "TCPIPWire", "TestSupport"],
            swiftSettings: strict),
        // Hand-built datagrams shared by the link and simulation tests (not a product).
        .target(
            name: "TestSupport", dependencies: ["TCPIP", "TCPIPWire", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "TCPIPScriptTests", dependencies: ["TCPIPScript", "TCPIP", "TCPIPWire"], swiftSettings: strict),
        .testTarget(
            name: "tcpipTests", dependencies: ["tcpip", "TCPIPLinks", "TCPIPSimulation"],
            exclude: ["Snapshots"],  // read from the source tree by path, not bundled
            swiftSettings: strict),
        .testTarget(
            name: "TCPIPNIOTests",
            dependencies: [
                "TCPIPNIO", "TCPIP", "TCPIPWire", "TCPIPLinks", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "TCPIPGatewayTests",
            dependencies: [
                "TCPIPGateway", "TCPIPNIO", "TCPIP", "TCPIPWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // Kernel interop over TUN in network namespaces; runs the built `tcpip` binary (needs root).
        .testTarget(
            name: "InteropTests", dependencies: ["tcpip", "EchoServerExample", "HTTPServerExample"], swiftSettings: strict),
    ]
)
