import TCPIPWire

/// TCP Fast Open (RFC 7413): what a stack does as a client and as a server.
///
/// Defaults, decided as Linux's `net.ipv4.tcp_fastopen = 1`: the client side is on — it costs
/// nothing until an application asks for Fast Open on a connection (`Stack.connect(fastOpen:)`),
/// which RFC 7413 §4.1.3 leaves to the application, since data in a SYN may be delivered twice
/// (§6.1). The server side is off: a listener takes data from SYNs only when it or this
/// configuration says so (`Stack.setFastOpen`, `serverOnEveryListener`), because the application must
/// be able to bear a duplicate of that data (§6.1; §7.1's "MUST NOT" default).
public struct FastOpen: Sendable, Hashable {
    /// Whether connections may ask for Fast Open as clients (Linux's bit 0x1).
    public var client: Bool = true
    /// Whether a server accepts data in SYNs at all (Linux's bit 0x2). A listener also needs a
    /// limit of pending Fast Open connections: its own (`Stack.setFastOpen`, TCP_FASTOPEN), or its
    /// backlog with `serverOnEveryListener`.
    public var server: Bool = false
    /// Every listener takes Fast Open SYNs without asking, with its listen backlog as the limit of
    /// pending ones (RFC 7413 §5.1) — Linux's bit 0x400, TFO_SERVER_WO_SOCKOPT1.
    public var serverOnEveryListener: Bool = false
    /// A server accepts data in SYNs without a valid cookie, or none (Linux's bit 0x200,
    /// `TFO_SERVER_COOKIE_NOT_REQD`) — for testing: RFC 7413 §4.2.2 requires a cookie.
    public var serverRequiresCookie: Bool = true
    /// A client sends data in its SYN without a cookie (Linux's bit 0x4, `TFO_CLIENT_NO_COOKIE`):
    /// for servers that take data without one (RFC 7413 §7.2's "pre-configured" case).
    public var clientRequiresCookie: Bool = true
    /// The server's cookie key, 128 bits (RFC 7413 §4.1.2: "the server SHOULD … periodically
    /// change the key"); nil (the default) draws it from the stack's generator — the system's
    /// cryptographic one unless the stack has a seed. Set it only to share a key between servers
    /// behind one address (Linux's `tcp_fastopen_key`).
    public var key: FastOpenKey? = nil
    /// Most servers whose cookies a client remembers (Linux's tcp_fastopen cache is per route).
    public var clientCacheLimit: Int = 1024
    /// What bounds the data of a SYN when no MSS of the server is cached (a cookie-less Fast Open,
    /// `clientRequiresCookie` off).
    public var uncachedSYNDataLimit: SYNDataLimit = .defaultMSS

    /// What bounds the data of a SYN to a server whose MSS is not cached.
    public enum SYNDataLimit: Sendable, Hashable {
        /// RFC 7413 §4.1.3: "the default MSS of 536 bytes for IPv4 … and 1220 bytes for IPv6".
        case defaultMSS
        /// Our own MSS, as Linux's tcp_send_syn_data (mss_clamp = advmss when nothing is cached).
        case ownMSS
    }

    /// Linux's defaults: client on, server off.
    public init() {}
}

/// A Fast Open server key: two 64-bit halves of a SipHash-2-4 key.
public struct FastOpenKey: Sendable, Hashable {
    /// The key's first half.
    public var key0: UInt64
    /// The key's second half.
    public var key1: UInt64

    /// The key whose halves are `key0` and `key1`.
    public init(key0: UInt64, key1: UInt64) {
        self.key0 = key0
        self.key1 = key1
    }

    /// Linux's notation (`tcp_fastopen_key`, TCP_FASTOPEN_KEY as text): four 32-bit words in hex,
    /// `a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4`, taken as Linux takes them (each word little-endian in
    /// memory, then the 16 octets as two little-endian 64-bit halves).
    public init?(linuxNotation text: some StringProtocol) {
        let words = text.split(separator: "-").map { UInt32($0, radix: 16) }
        guard words.count == 4, let w0 = words[0], let w1 = words[1], let w2 = words[2], let w3 = words[3] else { return nil }
        key0 = UInt64(w0) | UInt64(w1) << 32
        key1 = UInt64(w2) | UInt64(w3) << 32
    }

    /// The 16 octets of TCP_FASTOPEN_KEY's binary form, as Linux reads them (two little-endian halves).
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        func half(_ start: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[start + $1]) << (8 * $1) }
        }
        key0 = half(0)
        key1 = half(8)
    }

    /// RFC 7413 §4.1.2: the cookie is a MAC of the client's address, here SipHash-2-4 (a PRF, as
    /// §4.1.2 asks: "AES_128(key, client IP)" is the example) over the SYN's source address then
    /// its destination, as Linux's `__tcp_fastopen_cookie_gen_cipher`, so Linux's tests' cookies
    /// and ours agree for the same key. 8 octets, the hash little-endian.
    func cookie(client: IPAddress, server: IPAddress, form: TCPFastOpenCookie.Form) -> TCPFastOpenCookie {
        var hasher = SipHash24(key0: key0, key1: key1)
        hasher.combineNetworkOrder(client)
        hasher.combineNetworkOrder(server)
        return TCPFastOpenCookie(form: form, littleEndianMAC: hasher.finalize())
    }
}

extension SipHash24 {
    /// The address's octets in network order.
    mutating func combineNetworkOrder(_ address: IPAddress) {
        switch address {
        case .v4(let v4):
            combine(v4.rawValue.byteSwapped)
        case .v6(let v6):
            combine(v6.high.byteSwapped)
            combine(v6.low.byteSwapped)
        }
    }
}

/// A client's cookies (RFC 7413 §4.1.3: "The client MUST cache cookies from servers"), one per
/// pair of our address and the server's, with the MSS the server announced beside it (§4.1.3
/// recommends caching it: it bounds the data of the next SYN). At most `limit` servers; the
/// oldest entry goes first.
struct FastOpenCookieCache {
    struct Key: Hashable {
        var local: IPAddress
        var remote: IPAddress
    }

    struct Entry {
        var cookie: TCPFastOpenCookie?
        var maximumSegmentSize: Int?
        /// Without a cookie: 1 asks with the experimental form next, 2 went back to the standard
        /// form after both went unanswered (Linux's tcp_fastopen_metrics.try_exp); 0 not tried.
        var tryExperimental: UInt8 = 0
    }

    private(set) var entries: [Key: Entry] = [:]
    private var order: [Key] = []
    var limit = 1024

    subscript(key: Key) -> Entry? { entries[key] }

    /// RFC 7413 §4.2.1 step 3: a SYN-ACK's cookie replaces the cached one; one without a cookie
    /// leaves it (Linux's tcp_fastopen_cache_set); the MSS is always the latest.
    mutating func update(_ key: Key, cookie: TCPFastOpenCookie?, maximumSegmentSize: Int?, tryExperimental: UInt8 = 0) {
        if var entry = entries[key] {
            if let cookie {
                entry.cookie = cookie
            } else if tryExperimental > entry.tryExperimental && entry.cookie == nil {
                entry.tryExperimental = tryExperimental
            }
            if let maximumSegmentSize { entry.maximumSegmentSize = maximumSegmentSize }
            entries[key] = entry
            return
        }
        guard limit > 0 else { return }
        if order.count >= limit, let oldest = order.first {
            order.removeFirst()
            entries[oldest] = nil
        }
        entries[key] = Entry(cookie: cookie, maximumSegmentSize: maximumSegmentSize, tryExperimental: cookie == nil ? tryExperimental : 0)
        order.append(key)
    }

    /// Forgets every server (`Stack.flushFastOpenCookies`).
    mutating func removeAll() {
        entries.removeAll()
        order.removeAll()
    }
}
