import NIOConcurrencyHelpers
import NIOCore
import TCPIPWire

/// One fake-DNS pool for every gateway of a process: with `--queues N` the kernel hashes a client's
/// DNS query (UDP to port 53) to one queue and its connection to the answer to another, so the
/// queue that answered and the queue that maps the address back must see the same pool. Everything
/// else of a queue is its own; this is the one thing the queues share, behind a lock taken once per
/// query and once per new flow to a pool address (never per packet).
public final class SharedFakeDNS: Sendable {
    private let pool: NIOLockedValueBox<FakeDNSPool>

    /// Shares `pool`, which the gateways then map names through under the lock.
    ///
    /// - Parameter pool: the pool every gateway of the process answers from.
    public init(_ pool: FakeDNSPool) {
        self.pool = NIOLockedValueBox(pool)
    }

    /// The name mapped to `address` (now the most recently used), or nil.
    ///
    /// - Parameter address: a connection's or datagram's destination.
    public func name(for address: IPAddress) -> String? {
        pool.withLockedValue { $0.name(for: address) }
    }

    /// The answer to an A/AAAA query from the pool, or nil to relay it upstream.
    ///
    /// - Parameter query: a UDP payload sent to port 53.
    public func answer(_ query: ByteBuffer) -> ByteBuffer? {
        pool.withLockedValue { $0.answer(query) }
    }

    /// How many names are mapped.
    public var count: Int { pool.withLockedValue { $0.count } }
}
