#if os(Linux)
import ArgumentParser
import Glibc
import NIOCore
import NIOHTTP1
import TCPIP
import TCPIPNIO
import TCPIPWire

/// `tcpip fetch`: an HTTP/1.1 GET over our TCP (NIOHTTP1's client handlers on a TCP channel).
struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a URL over this stack's TCP on a TUN device.",
        discussion: """
            Only http:// URLs with an IP address as host: http://198.18.0.1:8000/file or \
            http://[2001:db8::1]:8000/file. The last line is machine-readable: \
            status=<code> bytes=<N> seconds=<T> gbit_per_s=<R>
            """)

    @OptionGroup var device: TUNOptions
    @Argument(help: "The URL to fetch.")
    var url: String
    @Option(name: .shortAndLong, help: "Where to write the body.")
    var output: String

    func validate() throws {
        guard FetchTarget(url) != nil else { throw ValidationError("need http://IP[:PORT]/PATH, got \(url)") }
    }

    func run() throws {
        let target = FetchTarget(url)!
        let descriptor = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ValidationError("cannot create \(output): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let running = try device.start()
        defer { running.finish() }
        let done = running.runtime.eventLoop.makePromise(of: FetchResult.self)
        let start = NIODeadline.now()
        _ = try TCPIPClientBootstrap(runtime: running.runtime)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        FetchHandler(target: target, descriptor: descriptor, done: done))
                }
            }
            .connect(to: target.endpoint).wait()
        let result = try done.futureResult.wait()
        let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        announce("status=\(result.status) bytes=\(result.bytes) seconds=\(seconds) gbit_per_s=\(Double(result.bytes) * 8 / seconds / 1e9)")
        guard result.status == 200 else { throw ExitCode.failure }
    }
}

struct FetchTarget: Sendable {
    var endpoint: Endpoint
    var hostHeader: String
    var path: String

    init?(_ url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        hostHeader = authority
        let withPort = authority.hasSuffix("]") || !authority.contains(":") || authority.filter({ $0 == ":" }).count > 1 && !authority.hasPrefix("[")
            ? (authority.hasPrefix("[") || !authority.contains(":") ? authority + ":80" : "[\(authority)]:80")
            : authority
        guard let endpoint = parseEndpoint(withPort) else { return nil }
        self.endpoint = endpoint
    }
}

struct FetchResult: Sendable {
    var status: UInt
    var bytes: Int
}

/// Sends one GET, writes the body to a file descriptor, and completes when the response ends.
final class FetchHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    let target: FetchTarget
    let descriptor: Int32
    let done: EventLoopPromise<FetchResult>
    private var result = FetchResult(status: 0, bytes: 0)

    init(target: FetchTarget, descriptor: Int32, done: EventLoopPromise<FetchResult>) {
        self.target = target
        self.descriptor = descriptor
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: target.hostHeader)
        headers.add(name: "User-Agent", value: "tcpip-fetch")
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target.path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            result.status = head.status.code
        case .body(let body):
            result.bytes += body.readableBytes
            var offset = 0
            body.withUnsafeReadableBytes { bytes in
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
            if offset < body.readableBytes {
                done.fail(ValidationError("cannot write the output: \(String(cString: strerror(errno)))"))
                context.close(promise: nil)
            }
        case .end:
            done.succeed(result)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        done.fail(error)
        context.close(promise: nil)
    }
}
#endif
