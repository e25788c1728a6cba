// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "swift-tcpip",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TCPIPWire", targets: ["TCPIPWire"]),
        .library(name: "TCPIP", targets: ["TCPIP"]),
        .library(name: "TCPIPLinks", targets: ["TCPIPLinks"]),
        .library(name: "TCPIPNIO", targets: ["TCPIPNIO"]),
        .executable(name: "tcpip", targets: ["tcpip"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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
        // The only layer that touches the outside world: links, captures, fault injection.
        .target(
            name: "TCPIPLinks",
            dependencies: ["TCPIP", "TCPIPWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // packetdrill scripts: parser and a runner that plays the remote peer against a Stack.
        .target(
            name: "TCPIPScript",
            dependencies: ["TCPIP", "TCPIPWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // The runtime: a Stack on a SwiftNIO EventLoop with its TUN link; TCP connections as NIO Channels.
        .target(
            name: "TCPIPNIO",
            dependencies: [
                "TCPIP", "TCPIPWire", "TCPIPLinks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "tcpip",
            dependencies: [
                "TCPIP", "TCPIPWire", "TCPIPLinks", "TCPIPScript", "TCPIPNIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "TCPIPWireTests", dependencies: ["TCPIPWire"], swiftSettings: strict),
        .testTarget(name: "TCPIPTests", dependencies: ["TCPIP", "TCPIPWire", "TCPIPLinks"], swiftSettings: strict),
        .testTarget(name: "TCPIPLinksTests", dependencies: ["TCPIPLinks", "TCPIP", "TCPIPWire"], swiftSettings: strict),
        .testTarget(name: "TCPIPScriptTests", dependencies: ["TCPIPScript", "TCPIP", "TCPIPWire"], swiftSettings: strict),
        .testTarget(
            name: "tcpipTests", dependencies: ["tcpip", "TCPIPLinks"],
            exclude: ["Snapshots"],  // read from the source tree by path, not bundled
            swiftSettings: strict),
        .testTarget(
            name: "TCPIPNIOTests",
            dependencies: [
                "TCPIPNIO", "TCPIP", "TCPIPWire", "TCPIPLinks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // Kernel interop over TUN in network namespaces; runs the built `tcpip` binary (needs root).
        .testTarget(name: "InteropTests", dependencies: ["tcpip"], swiftSettings: strict),
    ]
)
