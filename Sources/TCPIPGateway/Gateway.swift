import Logging
import NIOCore
import TCPIP
import TCPIPNIO
import TCPIPWire

/// What the client of an intercepted connection is told when its flow cannot be relayed.
public enum GatewayRefusal: Hashable, Sendable {
    /// <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>: the client's connect fails with ECONNREFUSED.
    case reset
    /// ICMP destination unreachable with this code (0 net, 1 host, 3 port; the stack maps it to ICMPv6).
    case unreachable(code: UInt8)
    /// Nothing: the client's SYN goes unanswered.
    case silence
}

/// How a dial that failed for want of a route or an answer is reported to the client.
public enum UnreachableAnswer: String, Sendable, Hashable {
    /// ICMP destination unreachable (host or network, as the failure was).
    case icmp
    /// RST, as for a refusal.
    case reset
}

/// The gateway's settings.
public struct GatewayConfiguration: Sendable {
    /// Where flows go.
    public var upstream: any Upstream
    /// What a client is told when its destination cannot be reached or does not answer in time.
    public var unreachable: UnreachableAnswer = .icmp
    /// Flows (TCP and UDP) relayed at once; beyond it new connections are refused with RST and new
    /// UDP flows dropped. nil: only the stack's own limits.
    public var maxFlows: Int?
    /// A TCP flow on which nothing moved either way for this long is closed on both sides.
    public var idleTimeout: TimeAmount? = .seconds(7200)
    /// A UDP flow whose upstream sent nothing and whose client sent nothing for this long is closed
    /// (the stack expires the client side by its own `udpFlowTimeout`).
    public var udpIdleTimeout: TimeAmount = .seconds(120)
    /// Fake DNS, when on: A/AAAA queries to port 53 answered from the pool; connections to pool
    /// addresses go upstream by name.
    public var fakeDNS: FakeDNSPool?
    /// Datagrams held per UDP flow while its upstream session opens; more are dropped.
    public var udpPendingLimit = 64

    /// Settings that send every flow to `upstream`, with the defaults above for the rest.
    ///
    /// - Parameter upstream: where flows go.
    public init(upstream: any Upstream) {
        self.upstream = upstream
    }
}

/// The relays of a tun2socks gateway, independent of where intercepted flows come from: the
/// stack's interception (`Gateway+Runtime`) or a test. On one event loop; every method there.
///
/// TCP: the upstream is dialed first; only when it answers is the client's handshake completed
/// (`accept`), so a closed port looks closed and an unreachable host unreachable (no "every port is
/// open" as with gateways that answer the SYN at once). Then both channels are spliced.
public final class Gateway {
    /// The event loop the gateway runs on: the runtime's it serves; every method is called there.
    public let loop: EventLoop
    /// The settings the gateway was made with.
    public private(set) var configuration: GatewayConfiguration
    /// Every flow relayed, live and recently finished.
    public let flows = FlowTable()
    /// The fake-DNS pool, when on: `configuration.fakeDNS`'s, or one shared with other gateways.
    public let fakeDNS: SharedFakeDNS?
    let logger: Logger
    private var live = 0
    /// Counters: connections refused for each reason, datagrams dropped.
    public private(set) var refusedAtLimit = 0
    /// Connections refused because their dial upstream failed.
    public private(set) var upstreamFailures = 0
    /// Dials that failed, by how (`refused`, `unreachable`, `timed_out`, `failed`).
    public private(set) var upstreamFailuresByKind: [String: Int] = [:]
    /// Connections whose client went away after the dial upstream succeeded, before its own
    /// handshake completed.
    public private(set) var clientsGone = 0
    /// Datagrams dropped beyond `udpPendingLimit` while their flow's upstream session opened.
    public private(set) var udpDropped = 0
    /// DNS queries answered from the fake-DNS pool.
    public private(set) var dnsAnswered = 0

    /// A gateway with no flows yet; ``serve(_:)`` or the relay methods give it some.
    ///
    /// - Parameter configuration: where flows go, and the limits.
    /// - Parameter loop: the event loop it runs on, the serving runtime's.
    /// - Parameter logger: where dials that fail and flows that are refused are logged.
    /// - Parameter fakeDNS: a pool shared with the gateways of the other queues of a multi-queue
    ///   device (a query answered on one queue, its connection arriving on another); by default
    ///   the gateway's own, from `configuration.fakeDNS`.
    public init(
        configuration: GatewayConfiguration, loop: EventLoop, logger: Logger = Logger(label: "tcpip.gateway"),
        fakeDNS: SharedFakeDNS? = nil
    ) {
        self.configuration = configuration
        self.fakeDNS = fakeDNS ?? configuration.fakeDNS.map(SharedFakeDNS.init)
        self.loop = loop
        self.logger = logger
    }

    /// Where a flow to `destination` goes: by name when fake DNS mapped the address.
    func target(for destination: Endpoint) -> SOCKS5.Address {
        if let name = fakeDNS?.name(for: destination.address) {
            return .domain(name, port: destination.port)
        }
        return .ip(destination.address, port: destination.port)
    }

    /// The refusal for a failed dial.
    func refusal(for failure: UpstreamFailure) -> GatewayRefusal {
        switch failure {
        case .refused, .failed:
            return .reset
        case .unreachable(let network):
            return configuration.unreachable == .icmp ? .unreachable(code: network ? 0 : 1) : .reset
        case .timedOut:
            return configuration.unreachable == .icmp ? .unreachable(code: 1) : .reset
        }
    }

    /// Relays one intercepted TCP connection: dials, then `accept` (which completes the client's
    /// handshake and runs the initializer on its channel) or `refuse`.
    ///
    /// - Parameters:
    ///   - source: the client.
    ///   - destination: where the client's SYN was going.
    ///   - accept: completes the handshake; the initializer runs on the client's channel before its
    ///     first read; the future succeeds with the channel once established.
    ///   - refuse: answers the SYN with a refusal.
    ///   - resetClient: carries a reset to the client's channel (default: close).
    public func relayConnection(
        source: Endpoint, destination: Endpoint,
        accept: @escaping @Sendable (_ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel>,
        refuse: @escaping @Sendable (GatewayRefusal) -> Void,
        resetClient: @escaping @Sendable (Channel) -> Void = { $0.close(promise: nil) }
    ) {
        loop.preconditionInEventLoop()
        let target = self.target(for: destination)
        let flow = flows.open(.tcp, client: source.description, destination: target.description, upstream: configuration.upstream.description)
        if let maxFlows = configuration.maxFlows, live >= maxFlows {
            refusedAtLimit += 1
            flows.refuse(flow)
            refuse(.reset)
            return
        }
        live += 1
        let this = NIOLoopBound(self, eventLoop: loop)
        let loop = self.loop
        let idle = configuration.idleTimeout
        let record = NIOLoopBound(flow, eventLoop: loop)
        configuration.upstream.connect(to: target, on: loop).whenComplete { result in
            let gateway = this.value
            switch result {
            case .failure(let error):
                let failure = UpstreamFailure(error)
                gateway.upstreamFailures += 1
                gateway.upstreamFailuresByKind[failure.metricName, default: 0] += 1
                gateway.live -= 1
                gateway.flows.refuse(record.value)
                gateway.logger.debug("\(source) -> \(target): upstream \(failure)")
                refuse(gateway.refusal(for: failure))
            case .success(let connection):
                record.value.set(.accepting)
                let halves = SpliceHandler.pair(flow: record.value, idleTimeout: idle, resetClient: resetClient)
                let client = NIOLoopBound(halves.client, eventLoop: loop)
                let upstream = NIOLoopBound(halves.upstream, eventLoop: loop)
                connection.channel.closeFuture.whenComplete { _ in this.value.live -= 1 }
                accept { channel in
                    channel.setOption(.allowRemoteHalfClosure, value: true).flatMapThrowing {
                        try channel.pipeline.syncOperations.addHandler(client.value)
                    }
                }.whenComplete { result in
                    switch result {
                    case .success:
                        do {
                            try connection.splice(upstream.value)
                        } catch {
                            connection.channel.close(promise: nil)
                        }
                    case .failure:
                        // The client went away before its handshake completed.
                        this.value.clientsGone += 1
                        record.value.set(.closed)
                        connection.channel.close(promise: nil)
                    }
                }
            }
        }
    }

    /// Relays one intercepted UDP flow: `channel` carries `AddressedEnvelope<ByteBuffer>`, its
    /// local address the original destination. Adds its handler synchronously.
    ///
    /// - Parameter channel: the stack's channel of the flow, on the gateway's loop.
    public func relayDatagrams(on channel: Channel) {
        loop.preconditionInEventLoop()
        guard let address = channel.localAddress, let local = Endpoint(address) else {
            channel.close(promise: nil)
            return
        }
        let client = channel.remoteAddress.flatMap { Endpoint($0) }
        let target = self.target(for: local)
        let flow = flows.open(
            .udp, client: client?.description ?? "?", destination: target.description, upstream: configuration.upstream.description)
        let answersDNS = fakeDNS != nil && local.port == 53
        if !answersDNS, let maxFlows = configuration.maxFlows, live >= maxFlows {
            refusedAtLimit += 1
            flows.refuse(flow)
            channel.close(promise: nil)
            return
        }
        live += 1
        let relay = UDPFlowRelay(gateway: self, flow: flow, target: target, answersDNS: answersDNS)
        do {
            try channel.pipeline.syncOperations.addHandler(relay)
        } catch {
            channel.close(promise: nil)
        }
    }

    fileprivate func udpFlowEnded() {
        live -= 1
    }

    func answerDNS(_ query: ByteBuffer) -> ByteBuffer? {
        guard let answer = fakeDNS?.answer(query) else { return nil }
        dnsAnswered += 1
        return answer
    }

    fileprivate func countDrop() { udpDropped += 1 }
}

/// One UDP flow: what the client sends goes to an upstream session, opened on the first datagram;
/// what comes back goes to the client, from the original destination. With fake DNS, A/AAAA
/// queries are answered here.
final class UDPFlowRelay: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private unowned let gateway: Gateway
    private let flow: FlowRecord
    private let target: SOCKS5.Address
    private let answersDNS: Bool
    private var session: UDPSession?
    private var opening = false
    private var pending: [ByteBuffer] = []
    private var client: SocketAddress?
    private var context: ChannelHandlerContext?
    private var ended = false
    private var idleTimer: Scheduled<Void>?
    private var activeSinceTimer = false

    init(gateway: Gateway, flow: FlowRecord, target: SOCKS5.Address, answersDNS: Bool) {
        self.gateway = gateway
        self.flow = flow
        self.target = target
        self.answersDNS = answersDNS
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        flow.set(.established)
        scheduleIdleCheck(context.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        client = envelope.remoteAddress
        activeSinceTimer = true
        flow.count(datagram: envelope.data.readableBytes, fromClient: true)
        if answersDNS, let answer = gateway.answerDNS(envelope.data) {
            flow.count(datagram: answer.readableBytes, fromClient: false)
            context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: answer)), promise: nil)
            return
        }
        if let session {
            session.send(envelope.data)
            return
        }
        guard pending.count < gateway.configuration.udpPendingLimit else {
            gateway.countDrop()
            return
        }
        pending.append(envelope.data)
        guard !opening else { return }
        opening = true
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        gateway.configuration.upstream.openUDP(to: target, on: gateway.loop).whenComplete { result in
            this.value.opened(result)
        }
    }

    private func opened(_ result: Result<UDPSession, Error>) {
        switch result {
        case .failure(let error):
            gateway.logger.debug("udp \(flow.client) -> \(target): upstream \(UpstreamFailure(error))")
            pending.removeAll()
            end()
        case .success(let session):
            guard !ended else {
                session.close()
                return
            }
            self.session = session
            let this = NIOLoopBound(self, eventLoop: gateway.loop)
            session.onDatagram = { payload in this.value.fromUpstream(payload) }
            session.onClose = { this.value.end() }
            for datagram in pending { session.send(datagram) }
            pending.removeAll()
        }
    }

    private func fromUpstream(_ payload: ByteBuffer) {
        guard let context, let client else { return }
        activeSinceTimer = true
        flow.count(datagram: payload.readableBytes, fromClient: false)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: payload)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A datagram that could not be sent back (too large) is dropped, as a socket's sendto fails.
    }

    private func end() {
        guard !ended else { return }
        ended = true
        idleTimer?.cancel()
        flow.set(.closed)
        gateway.udpFlowEnded()
        session?.close()
        session = nil
        context?.close(promise: nil)
    }

    private func scheduleIdleCheck(_ loop: EventLoop) {
        let this = NIOLoopBound(self, eventLoop: loop)
        idleTimer = loop.scheduleTask(in: gateway.configuration.udpIdleTimeout) {
            let relay = this.value
            guard !relay.ended else { return }
            if relay.activeSinceTimer {
                relay.activeSinceTimer = false
                relay.scheduleIdleCheck(loop)
            } else {
                relay.flow.noteIdleTimeout()
                relay.end()
            }
        }
    }
}
