import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
@testable import TCPIPGateway
import TCPIPWire
import Testing

@Suite struct SOCKS5Tests {
    @Test func udpEncapsulationRoundTrips() throws {
        let payload = ByteBuffer(bytes: Array(0..<200).map { UInt8($0) })
        for address: SOCKS5.Address in [
            .ip(.v4(IPv4Address(198, 19, 0, 1)), port: 53), .ip(try #require(IPAddress("2001:db8:19::1")), port: 5004),
            .domain("target.test", port: 80),
        ] {
            let datagram = SOCKS5.encapsulate(payload, to: address)
            let (source, data) = try #require(SOCKS5.decapsulate(datagram))
            #expect(source == address)
            #expect(data == payload)
        }
    }

    @Test func fragmentedOrMalformedDatagramsAreDropped() {
        var fragment = SOCKS5.encapsulate(ByteBuffer(bytes: [1, 2, 3]), to: .ip(.v4(IPv4Address(1, 2, 3, 4)), port: 1))
        fragment.setInteger(UInt8(1), at: 2)  // RFC 1928 §7: FRAG other than 0
        #expect(SOCKS5.decapsulate(fragment) == nil)
        #expect(SOCKS5.decapsulate(ByteBuffer(bytes: [0, 0, 0, 9, 1, 2])) == nil)
        #expect(SOCKS5.decapsulate(ByteBuffer(bytes: [0, 0, 0, 1, 1, 2])) == nil)
        #expect(SOCKS5.decapsulate(ByteBuffer(bytes: [0, 0, 0, 3, 200, 1])) == nil)
    }

    /// The handshake with username/password, CONNECT by name; the server's first data, in the same
    /// read as its reply, reaches the handler after the handshake when it is removed.
    @Test func connectWithCredentialsByName() throws {
        let channel = EmbeddedChannel()
        let handshake = SOCKS5Handshake(
            command: .connect, target: .domain("target.test", port: 80),
            credentials: Credentials(username: "user", password: "secret"), eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(handshake)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [5, 2, 0, 2]))
        try channel.writeInbound(ByteBuffer(bytes: [5, 2]))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [1, 4] + Array("user".utf8) + [6] + Array("secret".utf8)))
        try channel.writeInbound(ByteBuffer(bytes: [1, 0]))
        #expect(
            try channel.readOutbound(as: ByteBuffer.self)
                == ByteBuffer(bytes: [5, 1, 0, 3, 11] + Array("target.test".utf8) + [0, 80]))
        // The reply, split, then data in the same segment as its end.
        try channel.writeInbound(ByteBuffer(bytes: [5, 0, 0, 1, 198, 18]))
        let bound = NIOLockedValueBox<SOCKS5.Address?>(nil)
        handshake.result.whenSuccess { address in bound.withLockedValue { $0 = address } }
        #expect(bound.withLockedValue { $0 } == nil)
        try channel.writeInbound(ByteBuffer(bytes: [1, 2, 0x04, 0x38] + Array("HTTP".utf8)))
        #expect(bound.withLockedValue { $0 } == .ip(.v4(IPv4Address(198, 18, 1, 2)), port: 1080))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        try channel.pipeline.syncOperations.removeHandler(handshake).wait()
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "HTTP"))
        _ = try channel.finish()
    }

    /// A target that answers and closes at once (an accept-and-close server): dante relays its
    /// FIN right behind the reply, before the splice is installed. The FIN is held with the data
    /// and handed on at removal; lost, the flow would wait for it forever.
    @Test func theServersFINBeforeTheSpliceIsHandedOn() throws {
        let channel = EmbeddedChannel()
        let handshake = SOCKS5Handshake(
            command: .connect, target: .ip(.v4(IPv4Address(198, 19, 0, 1)), port: 5002), credentials: nil,
            eventLoop: channel.eventLoop)
        let events = EventRecorder()
        try channel.pipeline.syncOperations.addHandler(handshake)
        try channel.pipeline.syncOperations.addHandler(events)
        try channel.writeInbound(ByteBuffer(bytes: [5, 0]))
        try channel.writeInbound(ByteBuffer(bytes: [5, 0, 0, 1, 198, 18, 1, 2, 0x04, 0x38, 0x2A]))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(events.inputClosed == 0)
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        try channel.pipeline.syncOperations.removeHandler(handshake).wait()
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [0x2A]))
        #expect(events.inputClosed == 1)
        _ = try channel.finish()
    }

    /// Counts `ChannelEvent.inputClosed` and passes everything on.
    final class EventRecorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var inputClosed = 0

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, case .inputClosed = event { inputClosed += 1 }
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Pipelining (no credentials): greeting and CONNECT leave in one write; the method reply and
    /// the CONNECT reply come back together or apart, and the handshake ends as without it.
    @Test func pipelinedRequestGoesWithTheGreeting() throws {
        let channel = EmbeddedChannel()
        let handshake = SOCKS5Handshake(
            command: .connect, target: .ip(.v4(IPv4Address(198, 19, 0, 1)), port: 80), credentials: nil, pipelining: true,
            eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(handshake)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(bytes: [5, 1, 0, 5, 1, 0, 1, 198, 19, 0, 1, 0, 80]))
        let bound = NIOLockedValueBox<SOCKS5.Address?>(nil)
        handshake.result.whenSuccess { address in bound.withLockedValue { $0 = address } }
        try channel.writeInbound(ByteBuffer(bytes: [5, 0, 5, 0, 0, 1, 198, 18, 1, 2]))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(bound.withLockedValue { $0 } == nil)
        try channel.writeInbound(ByteBuffer(bytes: [0x04, 0x38]))
        #expect(bound.withLockedValue { $0 } == .ip(.v4(IPv4Address(198, 18, 1, 2)), port: 1080))
        _ = try channel.finish()
    }

    @Test func aRefusalIsTheRefusalReply() throws {
        let channel = EmbeddedChannel()
        let handshake = SOCKS5Handshake(
            command: .connect, target: .ip(.v4(IPv4Address(198, 19, 0, 1)), port: 9), credentials: nil,
            eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(handshake)
        let failure = NIOLockedValueBox<SOCKS5Error?>(nil)
        handshake.result.whenFailure { error in failure.withLockedValue { $0 = error as? SOCKS5Error } }
        try channel.writeInbound(ByteBuffer(bytes: [5, 0]))
        try channel.writeInbound(ByteBuffer(bytes: [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]))
        let error = try #require(failure.withLockedValue { $0 })
        #expect(error == .reply(.connectionRefused))
        #expect(UpstreamFailure(error) == .refused)
        #expect(!channel.isActive)
    }

    @Test func garbageFailsTheHandshake() throws {
        for reply: [UInt8] in [[4, 0], [5, 0xFF], [5, 7]] {
            let channel = EmbeddedChannel()
            let handshake = SOCKS5Handshake(
                command: .connect, target: .ip(.v4(IPv4Address(198, 19, 0, 1)), port: 9), credentials: nil,
                eventLoop: channel.eventLoop)
            try channel.pipeline.syncOperations.addHandler(handshake)
            let failed = NIOLockedValueBox(false)
            handshake.result.whenFailure { _ in failed.withLockedValue { $0 = true } }
            _ = try? channel.writeInbound(ByteBuffer(bytes: reply))
            #expect(failed.withLockedValue { $0 })
        }
    }

    @Test func failuresMapToRefusals() {
        let gatewayConfiguration = GatewayConfiguration(upstream: DirectUpstream())
        let gateway = Gateway(configuration: gatewayConfiguration, loop: EmbeddedEventLoop())
        #expect(gateway.refusal(for: .refused) == .reset)
        #expect(gateway.refusal(for: .unreachable(network: false)) == .unreachable(code: 1))
        #expect(gateway.refusal(for: .unreachable(network: true)) == .unreachable(code: 0))
        #expect(gateway.refusal(for: .timedOut) == .unreachable(code: 1))
        #expect(UpstreamFailure(SOCKS5Error.reply(.hostUnreachable)) == .unreachable(network: false))
        var resetting = gatewayConfiguration
        resetting.unreachable = .reset
        #expect(Gateway(configuration: resetting, loop: EmbeddedEventLoop()).refusal(for: .timedOut) == .reset)
    }
}
