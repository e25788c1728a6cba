import NIOCore
import TCPIP
import TCPIPNIO

extension Gateway {
    /// Relays every connection request and UDP flow of `runtime`, a stack in intercept mode
    /// (`StackConfiguration.interception`). The gateway's loop must be the runtime's.
    ///
    /// - Parameter runtime: the stack whose intercepted flows the gateway relays.
    public func serve(_ runtime: StackRuntime) {
        precondition(runtime.eventLoop === loop, "a gateway serves a runtime on its own loop")
        let this = NIOLoopBound(self, eventLoop: loop)
        runtime.setConnectionRequestHandler { request in
            this.value.relayConnection(
                source: request.source, destination: request.destination,
                accept: { initializer in runtime.accept(request, initializer: initializer) },
                refuse: { refusal in runtime.refuse(request, with: Refusal(refusal)) },
                resetClient: { channel in
                    // A reset from upstream reaches the client as a reset (RFC 9293 §3.10.4 ABORT).
                    channel.triggerUserOutboundEvent(TCPChannelAbort(), promise: nil)
                })
        }
        runtime.setUDPFlowHandler { channel in this.value.relayDatagrams(on: channel) }
    }
}

extension Refusal {
    /// The stack's spelling of a gateway refusal.
    ///
    /// - Parameter refusal: what the gateway decided the client is told.
    public init(_ refusal: GatewayRefusal) {
        switch refusal {
        case .reset: self = .reset
        case .unreachable(let code): self = .unreachable(code: code)
        case .silence: self = .silence
        }
    }
}
