import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// SOCKS5 connections opened ahead: a few connections to the server, each past the greeting (and
/// the authentication), waiting for a CONNECT. A flow that takes one costs the CONNECT's round trip
/// only, not the TCP handshake with the server, the greeting and NIO's connect completion too.
///
/// Bounded and demand-driven: a loop's pool opens connections only after one was taken (up to
/// `size` idle or opening; none for a second after one failed), so a gateway nobody uses holds none; each closes `idleTimeout` after it
/// was opened if no flow took it (servers close idle clients: dante after 30 s). A server that closes
/// one while it waits takes it out of the pool at once (the handshake keeps a read outstanding);
/// one closed just as it is taken fails with `SOCKS5Error.closedDuringHandshake`, which the caller
/// (`SOCKS5Upstream.connect`) answers with a fresh dial.
final class SOCKS5Pool: Sendable {
    /// One idle connection: the channel and its handshake, ready for `send`.
    struct Prepared {
        let channel: Channel
        let handshake: NIOLoopBound<SOCKS5Handshake>
    }

    private let size: Int
    private let idleTimeout: TimeAmount
    private let dial: @Sendable (EventLoop) -> EventLoopFuture<Prepared>
    /// One pool per event loop (a gateway runs a stack per queue, each on a loop of its own).
    private let loops = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<LoopPool>]>([:])

    /// - Parameters:
    ///   - size: the most connections idle or opening per loop.
    ///   - idleTimeout: how long one waits for a flow before it is closed.
    ///   - dial: opens a connection on a loop and takes it to `ready`.
    init(size: Int, idleTimeout: TimeAmount, dial: @escaping @Sendable (EventLoop) -> EventLoopFuture<Prepared>) {
        self.size = size
        self.idleTimeout = idleTimeout
        self.dial = dial
    }

    /// On `loop`: an idle connection if there is one (nil otherwise). The caller then calls
    /// `refill(on:)`, after it has sent its request: the dials that refill the pool (a socket,
    /// its options, a connect, each a system call) must not hold up the flow that took one.
    func take(on loop: EventLoop) -> Prepared? {
        pool(on: loop).value.take()
    }

    /// On `loop`: opens connections until `size` are idle or opening (see the type's comment).
    func refill(on loop: EventLoop) {
        pool(on: loop).value.refill()
    }

    private func pool(on loop: EventLoop) -> NIOLoopBound<LoopPool> {
        loop.preconditionInEventLoop()
        let key = ObjectIdentifier(loop)
        return loops.withLockedValue { loops in
            if let pool = loops[key] { return pool }
            let pool = NIOLoopBound(LoopPool(loop: loop, size: size, idleTimeout: idleTimeout, dial: dial), eventLoop: loop)
            loops[key] = pool
            return pool
        }
    }

    /// Idle connections on `loop`. On `loop`.
    func idleCount(on loop: EventLoop) -> Int {
        loop.preconditionInEventLoop()
        return loops.withLockedValue { $0[ObjectIdentifier(loop)] }?.value.idleCount ?? 0
    }
}

/// A pool on one loop; touched only there.
private final class LoopPool {
    private let loop: EventLoop
    private let size: Int
    private let idleTimeout: TimeAmount
    private let dial: @Sendable (EventLoop) -> EventLoopFuture<SOCKS5Pool.Prepared>
    /// Oldest first: the newest is taken, so the oldest reach their timeout when demand falls.
    private var idle: [(prepared: SOCKS5Pool.Prepared, expiry: Scheduled<Void>)] = []
    private var opening = 0
    /// After a dial failed, no more are opened ahead until then: a server that is down is not
    /// dialed `size` times more for every flow.
    private var quietUntil = NIODeadline.uptimeNanoseconds(0)
    /// How long a failed dial keeps the pool from opening more.
    static let quietAfterFailure = TimeAmount.seconds(1)

    init(loop: EventLoop, size: Int, idleTimeout: TimeAmount, dial: @escaping @Sendable (EventLoop) -> EventLoopFuture<SOCKS5Pool.Prepared>) {
        self.loop = loop
        self.size = size
        self.idleTimeout = idleTimeout
        self.dial = dial
    }

    var idleCount: Int { idle.count }

    func take() -> SOCKS5Pool.Prepared? {
        var taken: SOCKS5Pool.Prepared?
        while taken == nil, let last = idle.popLast() {
            last.expiry.cancel()
            if last.prepared.channel.isActive { taken = last.prepared }
        }
        return taken
    }

    func refill() {
        guard NIODeadline.now() >= quietUntil else { return }
        while idle.count + opening < size {
            opening += 1
            let this = NIOLoopBound(self, eventLoop: loop)
            dial(loop).whenComplete { result in
                let pool = this.value
                pool.opening -= 1
                // A failed dial is not retried here: the next flow's take tries again, a second later.
                guard case .success(let prepared) = result else {
                    pool.quietUntil = NIODeadline.now() + Self.quietAfterFailure
                    return
                }
                pool.admit(prepared)
            }
        }
    }

    private func admit(_ prepared: SOCKS5Pool.Prepared) {
        let channel = prepared.channel
        guard channel.isActive else { return }
        let this = NIOLoopBound(self, eventLoop: loop)
        let expiry = loop.scheduleTask(in: idleTimeout) { channel.close(promise: nil) }
        idle.append((prepared, expiry))
        // Closed while idle (our timeout, or the server): out of the pool.
        channel.closeFuture.whenComplete { _ in
            this.value.idle.removeAll { $0.prepared.channel === channel }
        }
    }
}
