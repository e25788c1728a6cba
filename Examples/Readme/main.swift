// The README's in-process snippets, word for word, as the top-level code of a `main.swift`: what a
// new package holds when it copies them. Top-level code is where Swift does not prefer `async`
// overloads, so this proves the README's calls pick the async bootstraps there too.
// ExamplesTests checks that README.md still shows exactly these lines, and runs this.
//
//   swift run ReadmeExample
import TCPIPStack

let (client, server) = try await StackRuntime.makePair(
    StackConfiguration(addresses: [IPAddress("198.18.0.1")!]),
    StackConfiguration(addresses: [IPAddress("198.18.0.2")!]),
    group: MultiThreadedEventLoopGroup.singleton)
let listener = try await TCPIPServerBootstrap(runtime: server)
    .childChannelOption(.allowRemoteHalfClosure, value: true)
    .bind(port: 7, childChannelConfiguration: .init(isOutboundHalfClosureEnabled: true))
let echoing = Task {
    try await withThrowingDiscardingTaskGroup { group in
        try await listener.executeThenClose { connections in
            for try await connection in connections {
                group.addTask {
                    try? await connection.executeThenClose { inbound, outbound in
                        for try await chunk in inbound { try await outbound.write(chunk) }
                        outbound.finish()
                    }
                }
            }
        }
    }
}
let connection = try await TCPIPClientBootstrap(runtime: client)
    .connect(to: Endpoint("198.18.0.2:7")!, configuration: .init())
try await connection.executeThenClose { inbound, outbound in
    try await outbound.write(ByteBuffer(string: "hello\n"))
    for try await chunk in inbound { print(String(buffer: chunk), terminator: ""); break }
}
let echo = try await TCPIPDatagramBootstrap(runtime: server).bind(port: 7, configuration: .init())
let answering = Task {
    try await echo.executeThenClose { inbound, outbound in
        for try await datagram in inbound {
            try await outbound.write(AddressedEnvelope(remoteAddress: datagram.remoteAddress, data: datagram.data))
        }
    }
}
let peer = Endpoint("198.18.0.2:7")!
let socket = try await TCPIPDatagramBootstrap(runtime: client).connect(to: peer, configuration: .init())
try await socket.executeThenClose { inbound, outbound in
    try await outbound.write(AddressedEnvelope(remoteAddress: peer.socketAddress, data: ByteBuffer(string: "hello")))
    for try await reply in inbound { print(String(buffer: reply.data)); break }
}
echoing.cancel()
answering.cancel()
try await client.stop()
try await server.stop()
print("ok: the README's TCP and UDP echoes answered over the in-process pair")
