import NIOCore
import TCPIP

/// One half of a splice: installed on each of two channels, it writes what one reads to the other.
///
/// - Back-pressure: a read is issued on one side only while the other side is writable (NIO's
///   `read` event is held until `channelWritabilityChanged`), so at most one read batch beyond the
///   write buffer's high-water mark is in flight per direction, and the gateway's memory does not
///   grow with a slow reader.
/// - Half-close: the end of one side's input (with `allowRemoteHalfClosure`) closes the other's
///   output, after what was read before it has been written (`shutdown(SHUT_WR)` on a socket, our
///   FIN on the stack). When both inputs have ended, both channels close.
/// - A reset on one side (`TCPError.connectionReset`, `ECONNRESET`) is carried as a reset to the other.
/// - Idle: a flow on which neither side read anything for `idleTimeout` is closed on both sides.
public final class SpliceHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Which side of the flow a half serves: bytes read on `.client` count as sent by the client.
    public enum Side: Sendable { case client, upstream }

    let side: Side
    let flow: FlowRecord
    /// How a reset is carried to this half's channel (`SO_LINGER` 0 then close, or the stack's abort).
    let resetter: @Sendable (Channel) -> Void
    private var partner: SpliceHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var inputEnded = false
    private var outputEnded = false
    private var closing = false
    private var lastWrite: EventLoopFuture<Void>?
    private var idleTimer: Scheduled<Void>?
    private var activeSinceTimer = false
    private let idleTimeout: TimeAmount?

    init(side: Side, flow: FlowRecord, idleTimeout: TimeAmount?, resetter: @escaping @Sendable (Channel) -> Void) {
        self.side = side
        self.flow = flow
        self.idleTimeout = idleTimeout
        self.resetter = resetter
    }

    /// Two halves joined: `client` goes on the channel to the tunnel's client, `upstream` on the one
    /// to the upstream. The idle timer runs on the client half.
    public static func pair(
        flow: FlowRecord, idleTimeout: TimeAmount? = nil,
        resetClient: @escaping @Sendable (Channel) -> Void = SpliceHandler.resetSocket,
        resetUpstream: @escaping @Sendable (Channel) -> Void = SpliceHandler.resetSocket
    ) -> (client: SpliceHandler, upstream: SpliceHandler) {
        let client = SpliceHandler(side: .client, flow: flow, idleTimeout: idleTimeout, resetter: resetClient)
        let upstream = SpliceHandler(side: .upstream, flow: flow, idleTimeout: nil, resetter: resetUpstream)
        client.partner = upstream
        upstream.partner = client
        return (client, upstream)
    }

    /// A kernel socket's reset: `SO_LINGER` with a zero timeout makes `close` send RST (RFC 9293
    /// §3.10.4 ABORT), and drops what is queued.
    public static let resetSocket: @Sendable (Channel) -> Void = { channel in
        guard let options = channel as? SocketOptionProvider else {
            channel.close(promise: nil)
            return
        }
        // struct linger { int l_onoff; int l_linger; } on Linux and Darwin.
        let linger: (Int32, Int32) = (1, 0)
        options.unsafeSetSocketOption(level: .socket, name: .so_linger, value: linger).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        flow.noteOpen(side)
        scheduleIdleCheck(context.eventLoop)
        // The partner may have held a read until this side could take its bytes.
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        // Reads were held while the flow was being set up (autoRead off); from here the channel reads
        // on its own, each read passing `read(context:)`, which holds it while the partner is full.
        context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        idleTimer?.cancel()
        idleTimer = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        sideClosed()
        context.fireChannelInactive()
    }

    /// This half's channel closed before (or while) the half was installed, so no `channelInactive`
    /// will reach it: an upstream that hung up between its connect and the splice. The partner
    /// closes once what it was given has gone.
    func channelClosedBeforeSplice() {
        sideClosed()
    }

    private func sideClosed() {
        flow.noteClosed(side)
        idleTimer?.cancel()
        idleTimer = nil
        let partner = self.partner
        self.partner = nil
        partner?.partnerClosed()
    }

    // MARK: Data

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        activeSinceTimer = true
        flow.count(bytes.readableBytes, from: side)
        partner?.partnerWrite(bytes)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
        context.fireChannelReadComplete()
    }

    public func read(context: ChannelHandlerContext) {
        // Back-pressure: read only while the other side can take what we would read.
        if partner?.writable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        inputEnded = true
        flow.noteInputEnded(side)
        partner?.partnerInputEnded()
        closeIfBothEnded()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if Self.isReset(error) {
            flow.noteReset(side)
            let partner = self.partner
            self.partner = nil
            partner?.partnerReset()
        }
        context.close(promise: nil)
    }

    /// A reset by the peer: the stack's `connectionReset`, or a socket's ECONNRESET / EPIPE.
    static func isReset(_ error: Error) -> Bool {
        if let error = error as? TCPError { return error == .connectionReset }
        if let error = error as? IOError { return error.errnoCode == Errno.connectionReset || error.errnoCode == Errno.brokenPipe }
        return false
    }

    // MARK: Called by the partner

    private var writable: Bool { context?.channel.isWritable ?? false }

    private func partnerWrite(_ bytes: ByteBuffer) {
        guard let context, !outputEnded else { return }
        lastWrite = context.write(wrapOutboundOut(bytes))
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerBecameWritable() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    /// The other side's input ended: our output ends once what was written has gone.
    private func partnerInputEnded() {
        guard let context, !outputEnded else { return }
        outputEnded = true
        context.flush()
        let channel = context.channel
        if let lastWrite {
            lastWrite.whenComplete { _ in channel.close(mode: .output, promise: nil) }
        } else {
            channel.close(mode: .output, promise: nil)
        }
        closeIfBothEnded()
    }

    /// The other side closed: ours closes too, after what was written to it has gone.
    private func partnerClosed() {
        guard let context, !closing else { return }
        closing = true
        partner = nil
        context.flush()
        let channel = context.channel
        if let lastWrite { lastWrite.whenComplete { _ in channel.close(promise: nil) } } else { channel.close(promise: nil) }
    }

    private func partnerReset() {
        guard let context, !closing else { return }
        closing = true
        partner = nil
        resetter(context.channel)
    }

    private func closeIfBothEnded() {
        guard inputEnded, outputEnded, let partner, partner.inputEnded, partner.outputEnded else { return }
        // Both directions carried their FIN: the flow is done once the last writes have gone.
        partner.partnerClosed()
        self.partnerClosed()
    }

    // MARK: Idle timeout

    private func scheduleIdleCheck(_ loop: EventLoop) {
        guard let idleTimeout else { return }
        let this = NIOLoopBound(self, eventLoop: loop)
        idleTimer = loop.scheduleTask(in: idleTimeout) { this.value.idleCheck(loop) }
    }

    private func idleCheck(_ loop: EventLoop) {
        guard let context else { return }
        if activeSinceTimer || partner?.activeSinceTimer == true {
            activeSinceTimer = false
            partner?.activeSinceTimer = false
            scheduleIdleCheck(loop)
        } else {
            flow.noteIdleTimeout()
            let partner = self.partner
            self.partner = nil
            partner?.partnerClosed()
            context.close(promise: nil)
        }
    }
}

/// The errno values the gateway tells apart, per platform (the portable modules import no C library).
enum Errno {
    #if os(Linux)
    static let connectionRefused: CInt = 111
    static let connectionReset: CInt = 104
    static let brokenPipe: CInt = 32
    static let timedOut: CInt = 110
    static let hostUnreachable: CInt = 113
    static let networkUnreachable: CInt = 101
    #else
    static let connectionRefused: CInt = 61
    static let connectionReset: CInt = 54
    static let brokenPipe: CInt = 32
    static let timedOut: CInt = 60
    static let hostUnreachable: CInt = 65
    static let networkUnreachable: CInt = 51
    #endif
}
