import ArgumentParser
import TCPIP

/// `--buffers`: the TCP buffer presets (`TCPConfiguration.server`, `.packetTunnel`) or fixed buffers.
enum BufferPreset: String, ExpressibleByArgument, CaseIterable {
    case server
    case tunnel
    case fixed

    func apply(to configuration: inout StackConfiguration) {
        let congestionControl = configuration.tcp.congestionControl
        switch self {
        case .server:
            configuration.tcp = .server
        case .tunnel:
            configuration.tcp = .packetTunnel
            configuration.memoryBudget = StackConfiguration.packetTunnelMemoryBudget
        case .fixed:
            // Setting the sizes fixes them (SO_RCVBUF / SO_SNDBUF): no autotuning.
            configuration.tcp.receiveBufferSize = 256 * 1024
            configuration.tcp.sendBufferSize = 256 * 1024
            return
        }
        configuration.tcp.congestionControl = congestionControl
    }
}
