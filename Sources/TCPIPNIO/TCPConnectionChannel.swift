import Logging
import NIOConcurrencyHelpers
import NIOCore
import TCPIP
import TCPIPWire

/// One TCP connection of a `Stack`, as a NIO `Channel`: handlers and `NIOAsyncChannel` run on it
/// as on a socket.
///
/// - Reads follow NIO's read(): data is taken from the stack only while a read is pending (always
///   with `autoRead`). An application that stops reading leaves the bytes in the stack's receive
///   buffer, so the advertised window closes (RFC 9293 §3.8.6).
/// - Writes queue here until flushed, then move into the stack's send buffer as it has room. The
///   channel is unwritable while more than the high water mark waits here, that is, while the
///   send buffer is full; it becomes writable again when ACKs make room.
/// - `close(mode: .output)` sends our FIN once the flushed writes are in the send buffer (§3.10.4);
///   the peer's FIN is `ChannelEvent.inputClosed` with `allowRemoteHalfClosure`, else it closes.
/// - A reset, timeout or refusal is fired as a `TCPError` through `errorCaught`, then the channel closes.
/// - `close()` is graceful, like close(2) on a socket: writes already flushed are still sent, then FIN.
///
/// All state is touched on the event loop only; `isActive` and `isWritable` are readable anywhere.
final class TCPConnectionChannel: LoopBoundOptionsChannel, ChannelCore, @unchecked Sendable {
    enum Lifecycle {
        case connecting
        case active
        /// The application closed the channel; the stack may still be sending what was flushed.
        case lingering
        case closed
    }

    struct PendingWrite {
        var buffer: ByteBuffer
        var promise: EventLoopPromise<Void>?
    }

    let runtime: RuntimeCore
    let connection: ConnectionID
    let eventLoop: EventLoop
    let parent: Channel?
    let allocator = ByteBufferAllocator()
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    private let activeBox = NIOLockedValueBox(false)
    private let writableBox = NIOLockedValueBox(true)
    private let local: SocketAddress?
    private let remote: SocketAddress?

    var isDirty = false
    private var lifecycle: Lifecycle
    private var connectPromise: EventLoopPromise<Void>?
    private var autoRead = true
    private var allowRemoteHalfClosure = false
    private var readPending = false
    private var inputClosed = false
    private var outputClosed = false
    private var outputClosePromise: EventLoopPromise<Void>?
    private var finPending = false
    /// Two slots to start with: an idle connection (a gateway may hold thousands) keeps no more;
    /// a busy writer grows the ring by doubling.
    private var pendingWrites = CircularBuffer<PendingWrite>(initialCapacity: 2)
    /// How many of `pendingWrites`, from the front, have been flushed.
    private var flushedCount = 0
    private var pendingBytes = 0
    private var waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 * 1024, high: 64 * 1024)
    private var maxMessagesPerRead = 16
    private var maximumReadSize = Int.max

    init(runtime: RuntimeCore, connection: ConnectionID, parent: Channel?, connecting: EventLoopPromise<Void>?) {
        self.runtime = runtime
        self.connection = connection
        self.eventLoop = runtime.eventLoop
        self.parent = parent
        self.closePromise = runtime.eventLoop.makePromise()
        let status = runtime.stack.status(connection)
        self.local = status?.local.socketAddress
        self.remote = status?.remote.socketAddress
        self.connectPromise = connecting
        self.lifecycle = .connecting
        self._pipeline = ChannelPipeline(channel: self)
    }

    // MARK: Channel

    var pipeline: ChannelPipeline { _pipeline }
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    var localAddress: SocketAddress? { local }
    var remoteAddress: SocketAddress? { remote }
    var isActive: Bool { activeBox.withLockedValue { $0 } }
    var isWritable: Bool { writableBox.withLockedValue { $0 } }
    var _channelCore: ChannelCore { self }

    var syncOptions: NIOSynchronousChannelOptions? { LoopBoundSynchronousOptions(channel: self) }

    func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            let on = value as! Bool
            let wasOff = !autoRead
            autoRead = on
            if on && wasOff && lifecycle == .active { pipeline.read() }
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowRemoteHalfClosure = value as! Bool
        case _ as ChannelOptions.Types.WriteBufferWaterMarkOption:
            waterMark = value as! ChannelOptions.Types.WriteBufferWaterMark
            updateWritability()
        case _ as ChannelOptions.Types.MaxMessagesPerReadOption:
            maxMessagesPerRead = max(1, Int(value as! UInt))
        case _ as TCPChannelOptions.MaximumReadSize:
            maximumReadSize = max(1, value as! Int)
        case let socketOption as ChannelOptions.Types.SocketOption:
            // TCP_NODELAY is the one socket option with a meaning here; the rest are accepted and ignored,
            // so code written for sockets (SO_REUSEADDR in a bootstrap) runs unchanged.
            if socketOption.optionLevel == .tcp && socketOption.optionName == .tcp_nodelay {
                runtime.stack.setNoDelay(connection, (value as! SocketOptionValue) != 0, now: StackRuntime.now())
                runtime.pump()
            }
        default:
            throw ChannelError._unsupportedOption
        }
    }

    func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption: return autoRead as! Option.Value
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption: return allowRemoteHalfClosure as! Option.Value
        case _ as ChannelOptions.Types.WriteBufferWaterMarkOption: return waterMark as! Option.Value
        case _ as ChannelOptions.Types.MaxMessagesPerReadOption: return UInt(maxMessagesPerRead) as! Option.Value
        case _ as TCPChannelOptions.MaximumReadSize: return maximumReadSize as! Option.Value
        default: throw ChannelError._unsupportedOption
        }
    }

    // MARK: ChannelCore

    func localAddress0() throws -> SocketAddress {
        guard let local else { throw ChannelError.unknownLocalAddress }
        return local
    }

    func remoteAddress0() throws -> SocketAddress {
        guard let remote else { throw ChannelError.operationUnsupported }
        return remote
    }

    func register0(promise: EventLoopPromise<Void>?) {
        promise?.succeed(())
    }

    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) {
        promise?.succeed(())
    }

    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard lifecycle == .active || lifecycle == .connecting else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard !outputClosed else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        let buffer = unwrapData(data, as: ByteBuffer.self)
        pendingWrites.append(PendingWrite(buffer: buffer, promise: promise))
        pendingBytes += buffer.readableBytes
        updateWritability()
    }

    func flush0() {
        flushedCount = pendingWrites.count
        guard lifecycle != .connecting else { return }
        runtime.markDirty(self)
    }

    func read0() {
        guard lifecycle == .active, !inputClosed else { return }
        readPending = true
        runtime.markDirty(self)
    }

    func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .input:
            guard lifecycle == .active, !inputClosed else {
                promise?.fail(ChannelError.alreadyClosed)
                return
            }
            inputClosed = true
            readPending = false
            promise?.succeed(())
            pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        case .output:
            guard lifecycle == .active, !outputClosed else {
                promise?.fail(lifecycle == .active ? ChannelError.outputClosed : ChannelError.alreadyClosed)
                return
            }
            outputClosed = true
            failUnflushedWrites(ChannelError.outputClosed)
            outputClosePromise = promise
            finPending = true
            runtime.markDirty(self)
        case .all:
            guard lifecycle == .active || lifecycle == .connecting else {
                promise?.fail(ChannelError.alreadyClosed)
                return
            }
            if lifecycle == .connecting {
                runtime.stack.abort(connection, now: StackRuntime.now())
                connectPromise?.fail(error)
                connectPromise = nil
                becomeClosed(promise: promise)
                runtime.unregister(self)
                runtime.pump()
                return
            }
            failUnflushedWrites(ChannelError.ioOnClosedChannel)
            if !outputClosed {
                outputClosed = true
                finPending = true
            }
            becomeClosed(promise: promise, lingering: true)
            runtime.markDirty(self)
        }
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        guard event is TCPChannelAbort else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        guard lifecycle == .active || lifecycle == .connecting else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        // RFC 9293 §3.10.4 ABORT: an RST to the peer, everything queued dropped (a socket's
        // SO_LINGER 0 then close). A relay carries a reset it received this way.
        runtime.stack.abort(connection, now: StackRuntime.now())
        connectPromise?.fail(TCPError.aborted)
        connectPromise = nil
        failAllWrites(ChannelError.ioOnClosedChannel)
        becomeClosed(promise: promise)
        runtime.unregister(self)
        runtime.pump()
    }

    func channelRead0(_ data: NIOAny) {
        // Reached the tail of the pipeline unhandled: dropped, as NIO's own channels do.
    }

    func errorCaught0(error: Error) {}

    // MARK: Stack events (from the runtime's pump)

    func handle(_ events: ConnectionEvents, now: Instant) {
        if events.contains(.established), lifecycle == .connecting {
            becomeActive()
        }
        if events.contains(.writable) || events.contains(.readable) {
            service(now: now)
        }
        if events.contains(.closed) {
            connectionClosed(now: now)
        }
    }

    /// Delivers reads if one is pending, and moves flushed writes into the send buffer.
    func service(now: Instant) {
        switch lifecycle {
        case .connecting, .closed:
            return
        case .lingering:
            discardInput(now: now)
            pushWrites(now: now)
        case .active:
            if readPending && !inputClosed { deliverReads(now: now) }
            pushWrites(now: now)
        }
    }

    func becomeActive() {
        lifecycle = .active
        runtime.logger?.trace("connection established", metadata: logMetadata())
        activeBox.withLockedValue { $0 = true }
        let promise = connectPromise
        connectPromise = nil
        promise?.succeed(())
        pipeline.fireChannelActive()
        if autoRead && lifecycle == .active { pipeline.read() }
        if flushedCount > 0 { runtime.markDirty(self) }
    }

    private func deliverReads(now: Instant) {
        var delivered = false
        var reads = 0
        while reads < maxMessagesPerRead && lifecycle == .active && !inputClosed {
            let result: ReceiveResult
            do {
                result = try runtime.stack.read(connection, upTo: maximumReadSize, now: now)
            } catch {
                break
            }
            switch result {
            case .data(let bytes):
                readPending = false
                delivered = true
                reads += 1
                pipeline.fireChannelRead(bytes)
            case .wouldBlock:
                reads = maxMessagesPerRead
            case .endOfStream:
                if delivered {
                    delivered = false
                    pipeline.fireChannelReadComplete()
                }
                endOfInput()
                return
            }
        }
        if delivered {
            pipeline.fireChannelReadComplete()
            if autoRead && lifecycle == .active && !inputClosed { pipeline.read() }
        }
    }

    private func endOfInput() {
        inputClosed = true
        readPending = false
        if allowRemoteHalfClosure {
            pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        } else {
            close(promise: nil)
        }
    }

    /// After the application closed: read and drop what still arrives, so the window stays open
    /// until our FIN goes out.
    private func discardInput(now: Instant) {
        while case .data? = try? runtime.stack.read(connection, now: now) {}
    }

    private func pushWrites(now: Instant) {
        var completed: [EventLoopPromise<Void>] = []
        var failure: Error?
        while flushedCount > 0, var first = pendingWrites.first {
            let taken: Int
            if first.buffer.readableBytes == 0 {
                taken = 0
            } else {
                do {
                    taken = try runtime.stack.send(connection, first.buffer, now: now)
                } catch {
                    failure = error
                    break
                }
            }
            pendingBytes -= taken
            if taken == first.buffer.readableBytes {
                pendingWrites.removeFirst()
                flushedCount -= 1
                if let promise = first.promise { completed.append(promise) }
            } else {
                first.buffer.moveReaderIndex(forwardBy: taken)
                pendingWrites[pendingWrites.startIndex] = first
                break
            }
        }
        if let failure {
            failAllWrites(failure)
        }
        if finPending && flushedCount == 0 {
            finPending = false
            do {
                try runtime.stack.close(connection, now: now)
            } catch {
                // Already closing or gone: the FIN is as good as sent.
            }
            let promise = outputClosePromise
            outputClosePromise = nil
            promise?.succeed(())
            if lifecycle == .active { pipeline.fireUserInboundEventTriggered(ChannelEvent.outputClosed) }
        }
        if lifecycle == .lingering && flushedCount == 0 && !finPending {
            // FIN queued: the stack finishes the close on its own and frees the connection when done.
            // The channel lets go of it as a socket's close() does (`Stack.release`): TIME-WAIT is
            // kept as a compact record rather than the whole TCB, and data the peer still sends is
            // answered with an RST instead of piling up where nobody reads (RFC 1122 §4.2.2.13).
            lifecycle = .closed
            runtime.unregister(self)
            runtime.stack.release(connection, now: now)
        }
        updateWritability()
        for promise in completed { promise.succeed(()) }
    }

    /// The connection reached CLOSED: in error (reset, timeout, refused) or after both FINs.
    private func connectionClosed(now: Instant) {
        let error = runtime.stack.status(connection)?.error
        if let logger = runtime.logger {
            if let error {
                logger.debug("connection ended in error", metadata: logMetadata(["error": "\(error)"]))
            } else {
                logger.trace("connection closed", metadata: logMetadata())
            }
        }
        switch lifecycle {
        case .connecting:
            let promise = connectPromise
            connectPromise = nil
            becomeClosed(promise: nil)
            promise?.fail(error ?? TCPError.connectionDoesNotExist)
        case .active:
            if let error {
                failAllWrites(error)
                pipeline.fireErrorCaught(error)
            } else if !inputClosed {
                // Whatever is still buffered, and the end of the stream, before the channel goes.
                readPending = true
                deliverReads(now: now)
            }
            if lifecycle == .active {
                becomeClosed(promise: nil)
            }
        case .lingering, .closed:
            failAllWrites(error ?? ChannelError.ioOnClosedChannel)
        }
        lifecycle = .closed
        runtime.unregister(self)
        // The stack frees the slot once the application has closed too.
        if error == nil { try? runtime.stack.close(connection, now: now) } else { runtime.stack.abort(connection, now: now) }
    }

    /// The runtime under this channel stopped: because of `error` (its device failed), or because
    /// it was told to (nil), in which case the channel just closes — NIO reserves `errorCaught` for
    /// errors, and an orderly stop is not one.
    func runtimeStopped(_ error: Error?) {
        let failure = error ?? ChannelError.ioOnClosedChannel
        failAllWrites(failure)
        if lifecycle == .connecting {
            let promise = connectPromise
            connectPromise = nil
            promise?.fail(failure)
        }
        if lifecycle == .active || lifecycle == .connecting {
            if let error { pipeline.fireErrorCaught(error) }
            becomeClosed(promise: nil)
        }
        lifecycle = .closed
    }

    // MARK: Helpers

    /// What identifies this connection in a log line.
    func logMetadata(_ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = extra
        metadata["tcp.local"] = "\(local.map { "\($0)" } ?? "?")"
        metadata["tcp.remote"] = "\(remote.map { "\($0)" } ?? "?")"
        return metadata
    }

    private func becomeClosed(promise: EventLoopPromise<Void>?, lingering: Bool = false) {
        let wasActive = lifecycle == .active
        lifecycle = lingering ? .lingering : .closed
        activeBox.withLockedValue { $0 = false }
        readPending = false
        promise?.succeed(())
        if wasActive { pipeline.fireChannelInactive() }
        pipeline.fireChannelUnregistered()
        eventLoop.execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed(())
        }
    }

    private func failUnflushedWrites(_ error: Error) {
        var failed: [EventLoopPromise<Void>] = []
        while pendingWrites.count > flushedCount, let last = pendingWrites.popLast() {
            pendingBytes -= last.buffer.readableBytes
            if let promise = last.promise { failed.append(promise) }
        }
        updateWritability()
        for promise in failed { promise.fail(error) }
    }

    private func failAllWrites(_ error: Error) {
        let failed = pendingWrites.compactMap(\.promise)
        pendingWrites.removeAll()
        flushedCount = 0
        pendingBytes = 0
        finPending = false
        let promise = outputClosePromise
        outputClosePromise = nil
        updateWritability()
        for promise in failed { promise.fail(error) }
        promise?.fail(error)
    }

    private func updateWritability() {
        let writable = isWritable
        if writable && pendingBytes > waterMark.high {
            writableBox.withLockedValue { $0 = false }
            if lifecycle == .active { pipeline.fireChannelWritabilityChanged() }
        } else if !writable && pendingBytes < waterMark.low {
            writableBox.withLockedValue { $0 = true }
            if lifecycle == .active { pipeline.fireChannelWritabilityChanged() }
        }
    }
}

/// An outbound user event (`channel.triggerUserOutboundEvent(TCPChannelAbort())`): the connection
/// is aborted — an RST to the peer, what is queued dropped (RFC 9293 §3.10.4) — and the channel closes.
public struct TCPChannelAbort: Sendable {
    /// The event.
    public init() {}
}

/// Options of TCP channels beyond NIO's own.
public enum TCPChannelOptions {
    /// The most bytes one `channelRead` carries (RECEIVE's length, RFC 9293 §3.10.3); unlimited by default.
    public struct MaximumReadSize: ChannelOption, Sendable {
        public typealias Value = Int
        /// The option (`TCPChannelOptions.maximumReadSize` spells it).
        public init() {}
    }

    /// The most bytes one `channelRead` carries: `channel.setOption(TCPChannelOptions.maximumReadSize, value: 16384)`.
    public static let maximumReadSize = MaximumReadSize()
}

extension ChannelError {
    static var _unsupportedOption: ChannelError { .operationUnsupported }
}
