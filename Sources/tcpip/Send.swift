#if os(Linux)
import ArgumentParser
import Glibc
import NIOCore
import TCPIP
import TCPIPNIO
import TCPIPWire

/// `tcpip send`: one bulk transfer from our TCP to a peer, then a graceful close.
struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send bytes to HOST:PORT over this stack's TCP on a TUN device, then close.",
        discussion: """
            Writes in 128 KiB chunks while the channel is writable, shuts down its output (our FIN) and \
            waits for the peer to close. Without --file the bytes are a fixed pattern. The last line is \
            machine-readable: sent=<bytes> seconds=<T> gbit_per_s=<R>
            """)

    @OptionGroup var device: TUNOptions
    @Option(help: "Where to send: 198.18.0.1:5001 or [2001:db8::1]:5001.")
    var to: String
    @Option(help: "How many bytes to send (default: the whole --file).")
    var bytes: Int?
    @Option(help: "Send this file's contents instead of a pattern.")
    var file: String?
    @Option(help: "Stop writing after this many seconds (a timed run, as the peers' tcpbench send), whatever is left.")
    var seconds: Double?

    func validate() throws {
        guard bytes != nil || file != nil || seconds != nil else {
            throw ValidationError("give --bytes, --file or --seconds: what to send")
        }
        if let bytes { try OptionChecks.nonNegative(bytes, option: "bytes", what: "the bytes to send") }
        if let seconds { try OptionChecks.seconds(seconds, 0.001...86_400, option: "seconds", because: "how long to write, up to a day") }
        guard parseEndpoint(to) != nil else {
            throw ValidationError("--to \(to): where to send, as 198.18.0.1:5001 or [2001:db8::1]:5001")
        }
    }

    func run() throws {
        let remote = parseEndpoint(to)!
        let running = try device.start()
        let source = try ByteSource(
            file: file, limit: bytes ?? (seconds != nil && file == nil ? .max : nil),
            deadline: seconds.map { NIODeadline.now() + .nanoseconds(Int64($0 * 1e9)) })
        defer { running.finish() }
        let done = running.runtime.eventLoop.makePromise(of: Void.self)
        let start = NIODeadline.now()
        let channel = try TCPIPClientBootstrap(runtime: running.runtime)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(BulkSendHandler(source: source, done: done))
                }
            }
            .connect(to: remote).wait()
        try done.futureResult.wait()
        try? channel.closeFuture.wait()
        let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        announce("sent=\(source.sent) seconds=\(seconds) gbit_per_s=\(Double(source.sent) * 8 / seconds / 1e9)")
    }
}

/// Bytes to send: a file's, or a pattern; read in chunks as the channel has room.
final class ByteSource: @unchecked Sendable {
    static let chunkSize = 128 * 1024
    private let descriptor: Int32
    private let total: Int
    private(set) var sent = 0
    private var pattern: ByteBuffer
    /// When a timed run stops writing.
    private let deadline: NIODeadline?

    init(file: String?, limit: Int?, deadline: NIODeadline? = nil) throws {
        self.deadline = deadline
        if let file {
            descriptor = open(file, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw ValidationError("cannot open \(file): \(String(cString: strerror(errno)))") }
            var info = stat()
            fstat(descriptor, &info)
            total = min(Int(info.st_size), limit ?? .max)
        } else {
            descriptor = -1
            total = limit ?? 0
        }
        pattern = ByteBuffer(bytes: (0..<Self.chunkSize).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 7) })
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    var isFinished: Bool { sent >= total || deadline.map { NIODeadline.now() >= $0 } == true }

    func next(allocator: ByteBufferAllocator) -> ByteBuffer? {
        if let deadline, NIODeadline.now() >= deadline { return nil }
        let length = min(Self.chunkSize, total - sent)
        guard length > 0 else { return nil }
        if descriptor < 0 {
            sent += length
            return pattern.getSlice(at: pattern.readerIndex, length: length)
        }
        var buffer = allocator.buffer(capacity: length)
        let count = buffer.withUnsafeMutableWritableBytes { read(descriptor, $0.baseAddress, length) }
        guard count > 0 else { return nil }
        buffer.moveWriterIndex(forwardBy: count)
        sent += count
        return buffer
    }
}

/// Writes the source while the channel is writable, then half-closes and waits for the peer's close.
final class BulkSendHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let source: ByteSource
    let done: EventLoopPromise<Void>
    private var outputClosed = false

    init(source: ByteSource, done: EventLoopPromise<Void>) {
        self.source = source
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        fill(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        fill(context: context)
        context.fireChannelWritabilityChanged()
    }

    private func fill(context: ChannelHandlerContext) {
        guard !outputClosed else { return }
        while context.channel.isWritable, let chunk = source.next(allocator: context.channel.allocator) {
            context.write(wrapOutboundOut(chunk), promise: nil)
        }
        context.flush()
        if source.isFinished {
            outputClosed = true
            context.close(mode: .output, promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if source.isFinished { done.succeed(()) } else { done.fail(ChannelError.eof) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        done.fail(error)
        context.close(promise: nil)
    }
}

/// `198.18.0.1:80`, `[2001:db8::1]:80`.
func parseEndpoint(_ text: String) -> Endpoint? {
    let host: Substring
    let port: Substring
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
        host = text[text.index(after: text.startIndex)..<close]
        let rest = text[text.index(after: close)...]
        guard rest.hasPrefix(":") else { return nil }
        port = rest.dropFirst()
    } else {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        host = text[..<colon]
        port = text[text.index(after: colon)...]
    }
    guard let address = IPAddress(String(host)), let number = UInt16(port), number != 0 else { return nil }
    return Endpoint(address, number)
}
#endif
