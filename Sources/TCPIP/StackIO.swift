import NIOCore
import TCPIPWire

/// What a connection may touch of the stack while it handles an event: the queue of datagrams
/// to transmit, the counters, the event queue and the decision trace. Connections compute; the
/// stack's caller performs the effects (drains `outgoing` onto a link).
struct StackIO {
    /// Datagrams to send, oldest first (a `PacketQueue`: each leaves by a move, not a copy).
    var outgoing = PacketQueue<ByteBuffer>(initialCapacity: 64)
    var counters = StackCounters()
    var events = CircularBuffer<SlabHandle>(initialCapacity: 16)
    var listenerEvents = CircularBuffer<SlabHandle>(initialCapacity: 4)
    var checksumOffload: Bool
    /// `StackConfiguration.timeToLive`.
    var timeToLive: UInt8 = 64
    var tracing = false
    var challengeAcks = ChallengeAckLimiter(limit: nil, generator: SeededGenerator(seed: 0))
    var trace = CircularBuffer<TraceRecord>()
    /// The buffers of the datagrams we send, reused once the receiver is done with them.
    var packets = PacketRecycler()
    /// Storage for the send buffers' packed chunks, reused across connections.
    var packedChunks = PackedChunkPool()
    /// Connections whose ACK waits for the end of the batch (`TCPConnection.sendAckAtEndOfBatch`), and when it was owed.
    var deferredAcks: [SlabHandle] = []
    var deferredAcksOwedAt = Instant.zero
    /// Under memory pressure (`Stack.memoryPressure`), the most one connection's send or receive
    /// buffer may hold: buffers stop growing, and those above it shrink to it. nil: no pressure.
    var bufferCeiling: Int?
    /// TCP Fast Open: the cookies servers gave us (RFC 7413 §4.1.3), updated by SYN-SENT connections.
    var fastOpenCookies = FastOpenCookieCache()

    init(checksumOffload: Bool) {
        self.checksumOffload = checksumOffload
    }

    /// Builds one datagram around `header` and `payload` and queues it for the link.
    mutating func transmit(_ header: TCPHeader, payload: ByteBuffer? = nil, from local: IPAddress, to remote: IPAddress) {
        let datagram = PacketBuffer.tcpDatagram(
            in: packets.make(payloadCapacity: payload?.readableBytes ?? 0), header: header,
            source: local, destination: remote, computeChecksum: !checksumOffload, timeToLive: timeToLive
        ) { buffer in
            if let payload { buffer.writeImmutableBuffer(payload) }
        }
        enqueue(datagram, carrying: header)
    }

    /// Builds one datagram whose payload is `length` bytes of `sendBuffer` from `offset`, copied once,
    /// with `ecn` in the IP header (RFC 3168 §5).
    mutating func transmit(
        _ header: TCPHeader, from sendBuffer: SendBuffer, offset: Int, length: Int,
        local: IPAddress, remote: IPAddress, ecn: ECNCodepoint = .notECT
    ) {
        let datagram = PacketBuffer.tcpDatagram(
            in: packets.make(payloadCapacity: length), header: header, source: local, destination: remote,
            computeChecksum: !checksumOffload, timeToLive: timeToLive, ecn: ecn
        ) { packet in
            sendBuffer.copyBytes(at: offset, length: length, into: &packet)
        }
        enqueue(datagram, carrying: header)
    }

    /// <SEQ=sequence><CTL=RST>, or <SEQ=sequence><ACK=acknowledging><CTL=RST,ACK> when an ACK is
    /// given (RFC 9293 §3.5.2) — from a connection or for a segment that found none.
    mutating func transmitReset(for tuple: FourTuple, sequence: SequenceNumber, acknowledging: SequenceNumber?) {
        let header = TCPHeader(
            sourcePort: tuple.local.port, destinationPort: tuple.remote.port,
            sequenceNumber: sequence, acknowledgmentNumber: acknowledging ?? SequenceNumber(0),
            flags: acknowledging == nil ? .rst : [.rst, .ack], window: 0)
        transmit(header, from: tuple.local.address, to: tuple.remote.address)
    }

    mutating func deferAck(_ handle: SlabHandle, now: Instant) {
        deferredAcks.append(handle)
        deferredAcksOwedAt = now
    }

    /// Queues a finished datagram for the link and counts it.
    private mutating func enqueue(_ datagram: consuming ByteBuffer, carrying header: TCPHeader) {
        packets.sent(datagram)
        outgoing.append(datagram)
        counters.segmentsSent &+= 1
        counters.ipPacketsSent &+= 1
        if header.flags.contains(.rst) { counters.resetsSent &+= 1 }
    }

    /// Records a decision and the rule behind it, when tracing is on. The message is built only then.
    mutating func decision(
        _ rule: StaticString, _ message: @autoclosure () -> String, connection: FourTuple?, now: Instant
    ) {
        guard tracing else { return }
        trace.append(TraceRecord(time: now, connection: connection, rule: "\(rule)", message: message()))
    }
}

/// One line of the decision trace: what the stack decided, when, and which rule made it decide so.
public struct TraceRecord: Hashable, Sendable, CustomStringConvertible {
    /// When it was decided.
    public var time: Instant
    /// The connection it concerns, if one.
    public var connection: FourTuple?
    /// The rule, cited as `RFC 9293 §3.8.6.1`.
    public var rule: String
    /// What was decided, in words.
    public var message: String

    public var description: String { "\(rule): \(message)" }
}

/// What happened to a connection since the application last looked.
public struct ConnectionEvents: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The handshake completed (RFC 9293 §3.10.7: ESTABLISHED).
    public static let established = ConnectionEvents(rawValue: 1 << 0)
    /// Data, or the end of the stream, can be read.
    public static let readable = ConnectionEvents(rawValue: 1 << 1)
    /// Send-buffer space opened up.
    public static let writable = ConnectionEvents(rawValue: 1 << 2)
    /// The connection ended, gracefully or with an error (see `status`).
    public static let closed = ConnectionEvents(rawValue: 1 << 3)
}

/// An event for the application or runtime.
public enum StackEvent: Hashable, Sendable {
    /// Something happened to a connection (`ConnectionEvents`).
    case connection(ConnectionID, ConnectionEvents)
    /// A listener has a connection waiting in its accept queue.
    case acceptable(ListenerID)
    /// A UDP endpoint has a datagram, or an error, to receive.
    case udpReadable(UDPEndpointID)
    /// Intercept mode: a SYN to some address waits for `Stack.accept(_:configuration:now:)` or
    /// `Stack.refuse(_:with:now:)` (`Stack.connectionRequest(_:)` says who and where).
    case connectionRequest(ConnectionRequestID)
    /// Intercept mode: the first datagram of a new UDP 5-tuple made this connected endpoint, whose
    /// local address is the original destination; the datagram waits on it.
    case udpFlow(UDPEndpointID)
    /// Intercept mode: a flow stayed idle for its timeout and the stack closed it (the handle is stale).
    case udpFlowExpired(UDPEndpointID)
    /// Intercept mode with `InterceptedEcho.deliver`: an echo request for the application to answer.
    /// Boxed (`indirect`): its 72 bytes inline made every event that size and its copies and
    /// destroys outlined calls, paid by every `nextEvent()` of a TCP stack (`bench connrate`).
    indirect case echoRequest(EchoRequest)
}

/// A handle to a connection: a slot in the stack's slab and the generation that owns it.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    let handle: SlabHandle
    public var description: String { "c\(handle.index).\(handle.generation)" }
}

/// A handle to a listener.
public struct ListenerID: Hashable, Sendable, CustomStringConvertible {
    let handle: SlabHandle
    public var description: String { "l\(handle.index).\(handle.generation)" }
}
