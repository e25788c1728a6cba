import NIOCore

/// A channel of ours whose options live on its event loop (`setOption0` / `getOption0`): set and
/// read from any thread through `setOption` / `getOption`, and synchronously on the loop through
/// `syncOptions`, as NIO's own channels allow. Shared by `TCPConnectionChannel` and `UDPChannel`.
protocol LoopBoundOptionsChannel: Channel {
    func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws
    func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value
}

extension LoopBoundOptionsChannel {
    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try setOption0(option, value: value) }
        }
        return eventLoop.submit { try self.setOption0(option, value: value) }
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try getOption0(option) }
        }
        return eventLoop.submit { try self.getOption0(option) }
    }
}

/// `Channel.syncOptions` of a `LoopBoundOptionsChannel`: the loop-bound calls themselves.
struct LoopBoundSynchronousOptions<Bound: LoopBoundOptionsChannel>: NIOSynchronousChannelOptions {
    let channel: Bound

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        try channel.setOption0(option, value: value)
    }

    func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        try channel.getOption0(option)
    }
}

/// What a bootstrap does to each channel it opens before handing it over, in NIO's order: its
/// options, then its `channelInitializer`, then (for the async API) the initializer whose output
/// the caller gets. Shared by `TCPIPClientBootstrap` and `TCPIPDatagramBootstrap`.
struct ChannelSetup: Sendable {
    var options = ChannelOptions.Storage()
    var initializer: @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }

    /// Runs the setup on `channel` (on its loop), then `channelInitializer`; its output, or the first
    /// failure.
    func run<Output: Sendable>(
        on channel: Channel, then channelInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Output>
    ) -> EventLoopFuture<Output> {
        let initializer = self.initializer
        return options.applyAllChannelOptions(to: channel).flatMap {
            initializer(channel)
        }.flatMap {
            channelInitializer(channel)
        }
    }
}
