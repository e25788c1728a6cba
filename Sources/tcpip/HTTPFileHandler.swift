#if os(Linux)
import Glibc
import NIOCore
import NIOHTTP1

/// Serves the regular files under a root directory with GET and HEAD, streaming each file in
/// 64 KiB chunks as fast as the channel is writable: a full send buffer pauses the file, an ACK
/// that makes room resumes it.
final class HTTPFileHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let chunkSize = 64 * 1024

    let root: String
    private var request: HTTPRequestHead?
    private var file: Int32 = -1
    private var remaining = 0
    private var keepAlive = false

    init(root: String) {
        self.root = root
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let request else { return }
            self.request = nil
            respond(to: request, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && file >= 0 { streamFile(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeFile()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        closeFile()
        context.close(promise: nil)
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        keepAlive = request.isKeepAlive
        guard request.method == .GET || request.method == .HEAD else {
            return sendStatus(.methodNotAllowed, context: context)
        }
        guard let path = resolve(request.uri) else { return sendStatus(.notFound, context: context) }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return sendStatus(.notFound, context: context) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(descriptor)
            return sendStatus(.notFound, context: context)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: String(info.st_size))
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
        if request.method == .HEAD {
            Glibc.close(descriptor)
            return finish(context: context)
        }
        file = descriptor
        remaining = Int(info.st_size)
        streamFile(context: context)
    }

    /// A path under the root, or nil for one that tries to leave it.
    private func resolve(_ uri: String) -> String? {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        let components = path.split(separator: "/")
        guard !components.contains(where: { $0 == ".." }) else { return nil }
        return root + "/" + components.joined(separator: "/")
    }

    private func streamFile(context: ChannelHandlerContext) {
        while remaining > 0 && context.channel.isWritable {
            var buffer = context.channel.allocator.buffer(capacity: min(Self.chunkSize, remaining))
            let descriptor = file
            let count = buffer.withUnsafeMutableWritableBytes { bytes in
                read(descriptor, bytes.baseAddress, min(bytes.count, remaining))
            }
            guard count > 0 else {
                // The file shrank or failed under us: the length we promised cannot be kept.
                closeFile()
                context.close(promise: nil)
                return
            }
            buffer.moveWriterIndex(forwardBy: count)
            remaining -= count
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        context.flush()
        if remaining == 0 {
            closeFile()
            finish(context: context)
        }
    }

    private func sendStatus(_ status: HTTPResponseStatus, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "0")
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        finish(context: context)
    }

    private func finish(context: ChannelHandlerContext) {
        let keepAlive = self.keepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }

    private func closeFile() {
        if file >= 0 { Glibc.close(file) }
        file = -1
        remaining = 0
    }
}
#endif
