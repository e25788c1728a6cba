import NIOCore
import TCPIP
import TCPIPSimulation
import TCPIPWire
import Testing

/// The code of the DocC guide "Driving a Stack yourself" (Sources/TCPIP/TCPIP.docc/DrivingAStack.md),
/// run as it is printed there, so the guide cannot drift from the API.
@Suite struct DrivingAStackGuideTests {
    @Test func theGuidesLoopMovesAMessageAndItsAnswer() throws {
        // -- from the guide --
        let clientAddress = IPAddress("198.18.0.1")!
        let serverAddress = IPAddress("198.18.0.2")!
        var configuration = StackConfiguration(addresses: [serverAddress])
        configuration.seed = 1                       // a seed makes the run repeatable
        let server = Stack(configuration)
        configuration.addresses = [clientAddress]
        configuration.seed = 2
        let client = Stack(configuration)
        let (clientLink, serverLink) = MemoryLink.pair(MemoryLink.Configuration(delay: .milliseconds(5)))

        var now = Instant.zero
        /// One turn of the loop: packets out, packets in, timers, for both stacks.
        func settle() {
            for (stack, link) in [(client, clientLink), (server, serverLink)] as [(Stack, MemoryLink.End)] {
                while let datagram = link.receive(now: now) { stack.receive(datagram, now: now) }
                stack.advanceTime(to: now)
                while let datagram = stack.nextPacketToSend() { link.send(datagram, now: now) }
            }
        }
        /// Sends what the last calls queued, then jumps virtual time to whatever is due next — a
        /// stack's timer or a datagram's arrival — and lets it happen.
        func step() {
            settle()
            let due = [client.nextDeadline, server.nextDeadline, clientLink.nextArrival, serverLink.nextArrival]
                .compactMap { $0 }.min()
            if let due, due > now { now = due }
            settle()
        }

        let listener = try server.listen(on: 7, address: serverAddress)
        let connection = try client.connect(to: Endpoint(serverAddress, 7), now: now)
        var accepted: ConnectionID?
        while accepted == nil {
            step()
            accepted = server.accept(listener)
        }
        _ = try client.send(connection, ByteBuffer(string: "hello"), now: now)
        var request = ByteBuffer()
        while request.readableBytes < 5 {
            step()
            if case .data(var chunk) = try server.read(accepted!, now: now) { request.writeBuffer(&chunk) }
        }
        _ = try server.send(accepted!, request, now: now)   // echo it
        // -- end of the guide --

        var answer = ByteBuffer()
        while answer.readableBytes < 5 {
            step()
            if case .data(var chunk) = try client.read(connection, now: now) { answer.writeBuffer(&chunk) }
        }
        #expect(String(buffer: answer) == "hello")
        // 5 ms a hop: SYN, SYN-ACK, ACK (the server accepts at 15 ms), request, answer. No timer fired.
        #expect(now == .zero + .milliseconds(25))
    }
}
