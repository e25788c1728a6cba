import NIOCore

/// One relayed flow as the gateway sees it: who, through what, how far along, how many bytes.
/// Lives on the gateway's event loop (every handler that updates it runs there).
public final class FlowRecord {
    public enum Transport: String, Sendable { case tcp, udp }

    public enum State: String, Sendable {
        /// Dialing upstream; the client's SYN is held.
        case dialing
        /// Upstream connected; completing the client's handshake.
        case accepting
        case established
        /// One direction has carried its FIN (half-closed).
        case halfClosed = "half-closed"
        case closed
        case refused
        case reset
        case idle = "idle-timeout"
    }

    public let id: UInt64
    public let transport: Transport
    /// The tunnel's client, and where it was going (`host:port`, or the name fake DNS mapped).
    public let client: String
    public var destination: String
    /// The upstream's description: `direct`, `socks5 198.18.1.2:1080`.
    public let upstream: String
    public private(set) var state: State = .dialing
    /// Bytes the client sent (relayed upstream) and received (from upstream).
    public private(set) var bytesFromClient: UInt64 = 0
    public private(set) var bytesToClient: UInt64 = 0
    /// The client side's smoothed RTT, when its channel is the stack's (filled by the table's reader).
    public var rtt: TimeAmount?
    public let openedAt: NIODeadline
    private var inputsEnded = 0
    private var sidesOpen = 0
    /// The table's running totals, which outlive the record.
    private let totals: FlowTotals

    init(id: UInt64, transport: Transport, client: String, destination: String, upstream: String, totals: FlowTotals) {
        self.totals = totals
        self.id = id
        self.transport = transport
        self.client = client
        self.destination = destination
        self.upstream = upstream
        self.openedAt = .now()
    }

    public var isFinished: Bool {
        switch state {
        case .closed, .refused, .reset, .idle: true
        default: false
        }
    }

    func set(_ state: State) {
        guard !isFinished else { return }
        self.state = state
    }

    func count(_ bytes: Int, from side: SpliceHandler.Side) {
        switch side {
        case .client: count(datagram: bytes, fromClient: true)
        case .upstream: count(datagram: bytes, fromClient: false)
        }
    }

    func count(datagram bytes: Int, fromClient: Bool) {
        if fromClient {
            bytesFromClient &+= UInt64(bytes)
            totals.bytesFromClient &+= UInt64(bytes)
        } else {
            bytesToClient &+= UInt64(bytes)
            totals.bytesToClient &+= UInt64(bytes)
        }
    }

    func noteOpen(_ side: SpliceHandler.Side) {
        sidesOpen += 1
        if sidesOpen == 2 { set(.established) }
    }

    func noteInputEnded(_ side: SpliceHandler.Side) {
        inputsEnded += 1
        if inputsEnded == 1 { set(.halfClosed) }
    }

    func noteClosed(_ side: SpliceHandler.Side) {
        set(.closed)
    }

    func noteReset(_ side: SpliceHandler.Side) {
        set(.reset)
    }

    func noteIdleTimeout() {
        set(.idle)
    }
}

/// Bytes relayed by every flow since the start, finished ones included (the metrics' figures).
final class FlowTotals {
    var bytesFromClient: UInt64 = 0
    var bytesToClient: UInt64 = 0
}

/// Every flow the gateway relays, for the `ss`-like table `tcpip gateway` prints and for tests.
/// Finished flows stay for one report, then go; without reports (`--status-interval 0`, a library
/// that never asks) only the `finishedKept` most recent stay, so a gateway that relays millions of
/// short flows does not remember each one. On the gateway's event loop only.
public final class FlowTable {
    /// Finished flows kept between reports, at most (the oldest go first).
    public static let finishedKept = 256
    private var flows: [UInt64: FlowRecord] = [:]
    private var nextID: UInt64 = 1
    private let totals = FlowTotals()
    /// Flows opened and refused since the start.
    public private(set) var opened: UInt64 = 0
    public private(set) var refused: UInt64 = 0
    public private(set) var finished: UInt64 = 0
    /// Flows opened since the start, by transport.
    public private(set) var openedTCP: UInt64 = 0
    public private(set) var openedUDP: UInt64 = 0

    public init() {}

    /// Bytes the clients sent (relayed upstream) and received, over every flow since the start.
    public var bytesFromClients: UInt64 { totals.bytesFromClient }
    public var bytesToClients: UInt64 { totals.bytesToClient }

    func open(_ transport: FlowRecord.Transport, client: String, destination: String, upstream: String) -> FlowRecord {
        let flow = FlowRecord(
            id: nextID, transport: transport, client: client, destination: destination, upstream: upstream, totals: totals)
        nextID += 1
        opened += 1
        switch transport {
        case .tcp: openedTCP += 1
        case .udp: openedUDP += 1
        }
        flows[flow.id] = flow
        if opened % UInt64(Self.finishedKept) == 0 { forgetFinished(keeping: Self.finishedKept) }
        return flow
    }

    func refuse(_ flow: FlowRecord) {
        flow.set(.refused)
        refused += 1
    }

    /// Flows that are not finished.
    public var active: [FlowRecord] { flows.values.filter { !$0.isFinished }.sorted { $0.id < $1.id } }

    /// How many flows of `transport` are not finished.
    public func activeCount(_ transport: FlowRecord.Transport) -> Int {
        flows.values.reduce(0) { $0 + ($1.transport == transport && !$1.isFinished ? 1 : 0) }
    }

    /// All flows, finished ones included, oldest first.
    public var all: [FlowRecord] { flows.values.sorted { $0.id < $1.id } }

    /// The table as lines, like `ss`: flow, upstream, state, bytes each way, RTT. Finished flows are
    /// shown once and then forgotten.
    public func report() -> [String] {
        var lines = ["Proto Client                                  Destination                              Upstream              State        BytesOut    BytesIn  RTT"]
        for flow in all {
            let rtt = flow.rtt.map { amount -> String in
                let micros = amount.nanoseconds / 1000
                return "\(micros / 1000).\(micros % 1000 / 100)ms"
            } ?? "-"
            lines.append(
                [
                    pad(flow.transport.rawValue, 5), pad(flow.client, 39), pad(flow.destination, 40), pad(flow.upstream, 21),
                    pad(flow.state.rawValue, 12), pad(String(flow.bytesFromClient), 10, right: true),
                    pad(String(flow.bytesToClient), 10, right: true), rtt,
                ].joined(separator: " "))
        }
        forgetFinished()
        return lines
    }

    /// Drops finished flows (the table keeps only what it has not reported yet), all but the
    /// `keeping` most recent.
    public func forgetFinished(keeping: Int = 0) {
        var done = flows.values.filter(\.isFinished).map(\.id)
        guard done.count > keeping else { return }
        done.sort()
        for id in done.dropLast(keeping) {
            flows[id] = nil
            finished += 1
        }
    }

    /// One line of totals.
    public var summary: String {
        "flows: active=\(active.count) opened=\(opened) refused=\(refused) finished=\(finished)"
    }

    private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        guard text.count < width else { return text }
        let padding = String(repeating: " ", count: width - text.count)
        return right ? padding + text : text + padding
    }
}
