import NIOCore
import TCPIPWire

/// A time–sequence graph of one TCP connection, as tcptrace and Wireshark's "Stevens" and "tcptrace"
/// graphs draw it, written as plain SVG.
///
///     sequence ▲                      ┌── receive window's right edge (ACK + advertised window)
///     offset   │           ┌──────────┘
///              │        ┌──┘ │ │ │ │     ← segments sent: a vertical bar from its first to last octet
///              │     ┌──┘ │ │ ·········  ← ACK line: what the receiver has acknowledged
///              │  ┌──┘ │ │               red bars: retransmissions; purple: SACK blocks
///              └──────────────────────▶ time (s)       shaded: the window was zero
///
/// A second panel shows the sender's congestion window, slow-start threshold and bytes in flight,
/// sampled by whoever drives the stack (`sample(_:at:)`).
///
/// The plot follows the first connection it sees; of its two directions, the one that carried more
/// payload is drawn as "the sender". Sequence numbers are drawn as offsets from the sender's ISN, so
/// wrap-around does not break the picture. Memory is bounded: past `maximumEvents` segments the rest
/// are counted, not kept (the plot says so).
public struct TimeSequencePlot: Sendable {
    /// A segment one side sent, in offsets from that side's ISN.
    struct Sent: Sendable {
        var time: Instant
        var start: Int64
        var end: Int64
        var retransmission: Bool
    }

    /// An acknowledgment one side sent: what it acknowledged of the other's stream, and its window.
    struct Acknowledged: Sendable {
        var time: Instant
        var acknowledged: Int64
        var window: Int64
        var sack: [(start: Int64, end: Int64)]
    }

    /// What is kept of one direction (the side that sent these segments).
    struct Direction: Sendable {
        var endpoint: Endpoint
        var initialSequence: UInt32?
        var windowScale: UInt8 = 0
        var scaleAnnounced = false
        var payloadBytes: Int64 = 0
        var highestSent: Int64 = 0
        var sent: [Sent] = []
        var acknowledgments: [Acknowledged] = []
    }

    /// One sample of the sender's congestion state.
    struct CongestionSample: Sendable {
        var time: Instant
        var congestionWindow: Int
        var slowStartThreshold: Int?
        var bytesInFlight: Int
    }

    /// At most this many segments and samples are kept, so a long-running command cannot grow without
    /// bound (about 10 MB at the limit).
    public let maximumEvents: Int
    /// Events not kept because `maximumEvents` were.
    public private(set) var droppedEvents = 0
    private var forward: Direction?
    private var reverse: Direction?
    private var samples: [CongestionSample] = []
    private var events = 0
    /// The graph's title.
    public var title: String
    /// Drawn by an observer in the path, not an end (`ObservedFlowPlot`): the second panel shows the
    /// bytes in flight as seen on the wire (highest sequence seen − highest ACK seen), computed from
    /// the segments; cwnd and ssthresh, which only the sender knows, are left out.
    public var observed = false

    /// An empty graph titled `title`, keeping at most `maximumEvents` segments and samples.
    public init(title: String = "TCP time–sequence graph", maximumEvents: Int = 200_000) {
        self.title = title
        self.maximumEvents = maximumEvents
    }

    /// Records a raw IPv4 or IPv6 datagram seen at `time`; anything but the followed connection's TCP
    /// segments is ignored, as is anything malformed.
    public mutating func record(_ datagram: ByteBuffer, at time: Instant) {
        guard let segment = try? CapturedSegment.parse(datagram) else { return }
        record(segment, at: time)
    }

    /// Records one captured segment seen at `time`.
    public mutating func record(_ segment: CapturedSegment, at time: Instant) {
        if forward == nil {
            forward = Direction(endpoint: segment.source)
            reverse = Direction(endpoint: segment.destination)
        }
        let isForward: Bool
        if segment.source == forward!.endpoint && segment.destination == reverse!.endpoint {
            isForward = true
        } else if segment.source == reverse!.endpoint && segment.destination == forward!.endpoint {
            isForward = false
        } else {
            return
        }
        guard events < maximumEvents else {
            droppedEvents += 1
            return
        }
        events += 1
        if isForward {
            Self.record(segment, at: time, from: &forward!, to: &reverse!)
        } else {
            Self.record(segment, at: time, from: &reverse!, to: &forward!)
        }
    }

    private static func record(_ segment: CapturedSegment, at time: Instant, from sender: inout Direction, to receiver: inout Direction) {
        let header = segment.header
        if header.flags.contains(.syn) {
            sender.initialSequence = header.sequenceNumber.rawValue
            // RFC 7323 §2.2: the shift applies to windows after the SYN, and only if both sides offered it.
            if let scale = header.options.windowScale {
                sender.windowScale = min(scale, TCPOptions.maximumWindowScale)
                sender.scaleAnnounced = true
            }
        }
        if sender.initialSequence == nil {
            // Joined mid-connection: the first sequence number seen stands in for the ISN.
            sender.initialSequence = header.sequenceNumber.rawValue &- 1
        }
        let start = offset(header.sequenceNumber.rawValue, from: sender.initialSequence!)
        let length = Int64(segment.sequenceLength)
        if length > 0 {
            let end = start + length
            // Only a segment wholly below what was already sent repeats data; one that starts below and
            // reaches past it (the octet of a zero-window probe, sent again with new data) is new data.
            let retransmission = end <= sender.highestSent && segment.payloadLength > 0
            sender.sent.append(Sent(time: time, start: start, end: end, retransmission: retransmission))
            sender.highestSent = max(sender.highestSent, end)
            sender.payloadBytes += Int64(segment.payloadLength)
        }
        guard header.flags.contains(.ack), let peerISN = receiver.initialSequence else { return }
        let acknowledged = offset(header.acknowledgmentNumber.rawValue, from: peerISN)
        let scaled = !header.flags.contains(.syn) && sender.scaleAnnounced && receiver.scaleAnnounced
        let window = Int64(header.window) << (scaled ? Int64(sender.windowScale) : 0)
        let sack = header.options.sackBlocks.map {
            (start: offset($0.start.rawValue, from: peerISN), end: offset($0.end.rawValue, from: peerISN))
        }
        sender.acknowledgments.append(Acknowledged(time: time, acknowledged: acknowledged, window: window, sack: sack))
    }

    /// Distance from the ISN in sequence space (modulo 2^32, so a stream may wrap once per 4 GiB).
    private static func offset(_ sequence: UInt32, from initial: UInt32) -> Int64 {
        Int64(sequence &- initial)
    }

    /// Records the sending stack's congestion state for the second panel.
    public mutating func sample(congestionWindow: Int, slowStartThreshold: Int?, bytesInFlight: Int, at time: Instant) {
        guard events < maximumEvents else {
            droppedEvents += 1
            return
        }
        events += 1
        samples.append(CongestionSample(
            time: time, congestionWindow: congestionWindow, slowStartThreshold: slowStartThreshold,
            bytesInFlight: bytesInFlight))
    }

    /// Records the congestion state from a connection's status (`Stack.status(_:)`).
    public mutating func sample(_ status: ConnectionStatus, at time: Instant) {
        // A threshold of "infinity" (no loss yet) is not drawn.
        let threshold = status.slowStartThreshold >= Int(Int32.max) ? nil : status.slowStartThreshold
        sample(
            congestionWindow: status.congestionWindow, slowStartThreshold: threshold,
            bytesInFlight: Int(status.sendNext &- status.sendUnacknowledged), at: time)
    }

    /// The direction drawn as the sender: the one that carried more payload.
    private var senderAndReceiver: (sender: Direction, receiver: Direction)? {
        guard let forward, let reverse else { return nil }
        return reverse.payloadBytes > forward.payloadBytes ? (reverse, forward) : (forward, reverse)
    }

    /// Periods in which the receiver advertised a zero window: from the first zero to the next
    /// non-zero advertisement (or the end of the capture).
    public var zeroWindowEpisodes: [(start: Instant, end: Instant)] {
        guard let (_, receiver) = senderAndReceiver else { return [] }
        var episodes: [(start: Instant, end: Instant)] = []
        var open: Instant?
        for ack in receiver.acknowledgments {
            if ack.window == 0 {
                if open == nil { open = ack.time }
            } else if let start = open {
                episodes.append((start, ack.time))
                open = nil
            }
        }
        if let start = open { episodes.append((start, receiver.acknowledgments.last!.time)) }
        return episodes
    }

    /// Segments the sender sent, and how many of them were retransmissions.
    public var segmentCounts: (sent: Int, retransmitted: Int) {
        guard let (sender, _) = senderAndReceiver else { return (0, 0) }
        return (sender.sent.count, sender.sent.count { $0.retransmission })
    }

    // MARK: Rendering

    /// The graph as a standalone SVG document.
    public func svg() -> String {
        var canvas = SVGCanvas(width: 960, height: 720)
        canvas.text(x: 480, y: 24, title, anchor: "middle", cssClass: "title")
        guard let (sender, receiver) = senderAndReceiver else {
            canvas.text(x: 480, y: 360, "no TCP segments were recorded", anchor: "middle")
            return canvas.document()
        }
        canvas.text(
            x: 480, y: 42, "\(sender.endpoint) → \(receiver.endpoint)", anchor: "middle", cssClass: "subtitle")

        let times = sender.sent.map(\.time) + receiver.acknowledgments.map(\.time) + samples.map(\.time)
        let first = times.min() ?? .zero
        let last = max(times.max() ?? .zero, first + .milliseconds(1))
        let seconds = { (t: Instant) in Double((t - first).nanoseconds) / 1e9 }
        let span = seconds(last)

        // Panel 1: sequence offsets.
        let top = SVGCanvas.Frame(x: 90, y: 60, width: 840, height: 400)
        var highest = sender.highestSent
        for ack in receiver.acknowledgments { highest = max(highest, ack.acknowledged + ack.window) }
        let sequenceAxis = Axis(lower: 0, upper: Double(max(highest, 1)), binary: true)
        let timeAxis = Axis(lower: 0, upper: span)
        let x = { (t: Instant) in top.x + top.width * timeAxis.fraction(seconds(t)) }
        let y = { (value: Int64) in top.y + top.height * (1 - sequenceAxis.fraction(Double(value))) }

        for episode in zeroWindowEpisodes {
            let left = x(episode.start)
            canvas.rect(x: left, y: top.y, width: max(x(episode.end) - left, 0.5), height: top.height, cssClass: "zero-window")
        }
        canvas.axes(top, time: timeAxis, values: sequenceAxis, valueLabel: "sequence offset", showTimeLabel: false)

        var window = SVGCanvas.Polyline()
        var acknowledged = SVGCanvas.Polyline()
        var sack = SVGCanvas.Path()
        for ack in receiver.acknowledgments {
            let px = x(ack.time)
            window.step(to: px, y(ack.acknowledged + ack.window))
            acknowledged.step(to: px, y(ack.acknowledged))
            for block in ack.sack { sack.bar(x: px + 1, from: y(block.start), to: y(block.end)) }
        }
        var sent = SVGCanvas.Path()
        var retransmitted = SVGCanvas.Path()
        for segment in sender.sent {
            if segment.retransmission {
                retransmitted.bar(x: x(segment.time), from: y(segment.start), to: y(segment.end))
            } else {
                sent.bar(x: x(segment.time), from: y(segment.start), to: y(segment.end))
            }
        }
        canvas.polyline(window, cssClass: "window")
        canvas.polyline(acknowledged, cssClass: "ack")
        canvas.path(sent, cssClass: "sent")
        canvas.path(retransmitted, cssClass: "retransmitted")
        canvas.path(sack, cssClass: "sack")
        canvas.legend(
            x: top.x + 8, y: top.y + 14,
            [("sent", "segments sent"), ("retransmitted", "retransmissions"), ("ack", "ACK"),
             ("window", "receive window edge"), ("sack", "SACK blocks"), ("zero-window", "zero window")])

        // Panel 2: congestion state.
        let bottom = SVGCanvas.Frame(x: 90, y: 510, width: 840, height: 160)
        let samples = observed ? Self.inFlight(sender: sender, receiver: receiver) : self.samples
        var largest = 1
        for sample in samples {
            largest = max(largest, sample.congestionWindow, sample.bytesInFlight, sample.slowStartThreshold ?? 0)
        }
        let bytesAxis = Axis(lower: 0, upper: Double(largest), binary: true)
        let by = { (value: Int) in bottom.y + bottom.height * (1 - bytesAxis.fraction(Double(value))) }
        let bx = { (t: Instant) in bottom.x + bottom.width * timeAxis.fraction(seconds(t)) }
        canvas.axes(bottom, time: timeAxis, values: bytesAxis, valueLabel: "bytes", showTimeLabel: true)
        var congestionWindow = SVGCanvas.Polyline()
        var threshold = SVGCanvas.Polyline()
        var inFlight = SVGCanvas.Polyline()
        for sample in samples {
            let px = bx(sample.time)
            congestionWindow.step(to: px, by(sample.congestionWindow))
            inFlight.step(to: px, by(sample.bytesInFlight))
            if let value = sample.slowStartThreshold { threshold.step(to: px, by(value)) }
        }
        canvas.polyline(inFlight, cssClass: "inflight")
        if observed {
            canvas.legend(
                x: bottom.x + 8, y: bottom.y + 14,
                [("inflight", "bytes in flight as seen (highest sequence − highest ACK); cwnd and ssthresh: unknown to an observer")])
        } else {
            canvas.polyline(threshold, cssClass: "ssthresh")
            canvas.polyline(congestionWindow, cssClass: "cwnd")
            if samples.isEmpty {
                canvas.text(x: bottom.x + bottom.width / 2, y: bottom.y + bottom.height / 2, "no congestion samples", anchor: "middle")
            }
            canvas.legend(x: bottom.x + 8, y: bottom.y + 14, [("cwnd", "cwnd"), ("ssthresh", "ssthresh"), ("inflight", "bytes in flight")])
        }
        if droppedEvents > 0 {
            canvas.text(x: 930, y: 700, "\(droppedEvents) later events not drawn", anchor: "end")
        }
        return canvas.document()
    }
}

extension TimeSequencePlot {
    /// What an observer sees in flight after each segment and each ACK, in the order they crossed:
    /// the highest sequence offset the sender has sent minus the highest the receiver acknowledged.
    fileprivate static func inFlight(sender: Direction, receiver: Direction) -> [CongestionSample] {
        var samples: [CongestionSample] = []
        samples.reserveCapacity(sender.sent.count + receiver.acknowledgments.count)
        var highest: Int64 = 0
        var acknowledged: Int64 = 0
        var segment = 0
        var ack = 0
        while segment < sender.sent.count || ack < receiver.acknowledgments.count {
            let time: Instant
            if ack == receiver.acknowledgments.count
                || (segment < sender.sent.count && sender.sent[segment].time <= receiver.acknowledgments[ack].time)
            {
                highest = max(highest, sender.sent[segment].end)
                time = sender.sent[segment].time
                segment += 1
            } else {
                acknowledged = max(acknowledged, receiver.acknowledgments[ack].acknowledged)
                time = receiver.acknowledgments[ack].time
                ack += 1
            }
            samples.append(CongestionSample(
                time: time, congestionWindow: 0, slowStartThreshold: nil, bytesInFlight: Int(max(0, highest - acknowledged))))
        }
        return samples
    }
}

/// A linear axis from zero with "nice" ticks: 1, 2 or 5 × 10^k apart for time, a power of two for
/// bytes, four to ten of them.
struct Axis {
    var lower: Double
    var upper: Double
    var step: Double

    init(lower: Double, upper: Double, binary: Bool = false) {
        let span = max(upper - lower, 1e-9)
        var candidates: [Double] = []
        if binary {
            var step = 1.0
            while span / step > 8 { step *= 2 }
            candidates = [step]
        } else {
            var magnitude = 1.0
            while span / magnitude > 10 { magnitude *= 10 }
            while span / magnitude < 1 { magnitude /= 10 }
            candidates = [magnitude / 10, magnitude / 5, magnitude / 2, magnitude]
        }
        let step = candidates.first { span / $0 <= 10 } ?? candidates.last!
        self.step = step
        self.lower = lower
        self.upper = (upper / step).rounded(.up) * step
    }

    func fraction(_ value: Double) -> Double {
        (value - lower) / max(upper - lower, 1e-9)
    }

    var ticks: [Double] {
        var ticks: [Double] = []
        var index = 0.0
        while lower + index * step <= upper + step / 1000 {
            ticks.append(lower + index * step)
            index += 1
        }
        return ticks
    }
}

/// Just enough SVG: elements as text, coordinates with one decimal.
struct SVGCanvas {
    struct Frame {
        var x: Double
        var y: Double
        var width: Double
        var height: Double
    }

    /// A polyline drawn as a step function; points that land on the same tenth of a pixel are merged.
    struct Polyline {
        var points = ""
        var last: (x: Int, y: Int)?

        mutating func step(to x: Double, _ y: Double) {
            let point = (x: Int((x * 10).rounded()), y: Int((y * 10).rounded()))
            if let last {
                if last == point { return }
                if last.y != point.y && last.x != point.x { append(point.x, last.y) }
            }
            append(point.x, point.y)
            last = point
        }

        private mutating func append(_ x: Int, _ y: Int) {
            if !points.isEmpty { points += " " }
            points += "\(SVGCanvas.tenths(x)),\(SVGCanvas.tenths(y))"
        }
    }

    /// Vertical bars in one path element.
    struct Path {
        var data = ""

        mutating func bar(x: Double, from y0: Double, to y1: Double) {
            let top = Int((min(y0, y1) * 10).rounded())
            // Even a one-octet segment gets a visible tick.
            let bottom = max(Int((max(y0, y1) * 10).rounded()), top + 15)
            data += "M\(SVGCanvas.tenths(Int((x * 10).rounded()))) \(SVGCanvas.tenths(top))V\(SVGCanvas.tenths(bottom))"
        }
    }

    let width: Int
    let height: Int
    private var body: [String] = []

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// `value` tenths as a decimal: 1234 → "123.4".
    static func tenths(_ value: Int) -> String {
        let sign = value < 0 ? "-" : ""
        let magnitude = value.magnitude
        let fraction = magnitude % 10
        return fraction == 0 ? "\(sign)\(magnitude / 10)" : "\(sign)\(magnitude / 10).\(fraction)"
    }

    static func number(_ value: Double) -> String { tenths(Int((value * 10).rounded())) }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    mutating func text(x: Double, y: Double, _ text: String, anchor: String = "start", cssClass: String? = nil) {
        let classAttribute = cssClass.map { " class=\"\($0)\"" } ?? ""
        body.append("<text x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" text-anchor=\"\(anchor)\"\(classAttribute)>\(Self.escape(text))</text>")
    }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, cssClass: String) {
        body.append("<rect class=\"\(cssClass)\" x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" width=\"\(Self.number(width))\" height=\"\(Self.number(height))\"/>")
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, cssClass: String) {
        body.append("<line class=\"\(cssClass)\" x1=\"\(Self.number(x1))\" y1=\"\(Self.number(y1))\" x2=\"\(Self.number(x2))\" y2=\"\(Self.number(y2))\"/>")
    }

    mutating func polyline(_ polyline: Polyline, cssClass: String) {
        guard !polyline.points.isEmpty else { return }
        body.append("<polyline class=\"\(cssClass)\" points=\"\(polyline.points)\"/>")
    }

    mutating func path(_ path: Path, cssClass: String) {
        guard !path.data.isEmpty else { return }
        body.append("<path class=\"\(cssClass)\" d=\"\(path.data)\"/>")
    }

    /// A frame with ticks and labels: seconds along the bottom, `values` (bytes) up the side.
    mutating func axes(_ frame: Frame, time: Axis, values: Axis, valueLabel: String, showTimeLabel: Bool) {
        rect(x: frame.x, y: frame.y, width: frame.width, height: frame.height, cssClass: "frame")
        for tick in time.ticks {
            let x = frame.x + frame.width * time.fraction(tick)
            line(x, frame.y + frame.height, x, frame.y + frame.height + 5, cssClass: "tick")
            text(x: x, y: frame.y + frame.height + 18, Self.seconds(tick, step: time.step), anchor: "middle")
        }
        for tick in values.ticks {
            let y = frame.y + frame.height * (1 - values.fraction(tick))
            line(frame.x - 5, y, frame.x, y, cssClass: "tick")
            line(frame.x, y, frame.x + frame.width, y, cssClass: "grid")
            text(x: frame.x - 8, y: y + 4, Self.bytes(tick), anchor: "end")
        }
        if showTimeLabel {
            text(x: frame.x + frame.width / 2, y: frame.y + frame.height + 36, "time (s)", anchor: "middle")
        }
        let middle = frame.y + frame.height / 2
        body.append("<text x=\"20\" y=\"\(Self.number(middle))\" text-anchor=\"middle\" transform=\"rotate(-90 20 \(Self.number(middle)))\">\(Self.escape(valueLabel))</text>")
    }

    mutating func legend(x: Double, y: Double, _ entries: [(cssClass: String, label: String)]) {
        let width = entries.reduce(0.0) { $0 + 28 + Double($1.label.count) * 6.2 }
        rect(x: x - 4, y: y - 12, width: width, height: 16, cssClass: "legend")
        var offset = 0.0
        for entry in entries {
            rect(x: x + offset, y: y - 8, width: 14, height: 8, cssClass: "key-\(entry.cssClass)")
            text(x: x + offset + 18, y: y, entry.label)
            offset += 28 + Double(entry.label.count) * 6.2
        }
    }

    /// Tick labels in seconds with as many decimals as the step needs.
    static func seconds(_ value: Double, step: Double) -> String {
        var decimals = 0
        var scale = 1.0
        while step * scale < 0.999 && decimals < 6 {
            decimals += 1
            scale *= 10
        }
        let scaled = Int((value * scale).rounded())
        guard decimals > 0 else { return "\(scaled)" }
        var digits = String(scaled.magnitude)
        while digits.count <= decimals { digits = "0" + digits }
        return (scaled < 0 ? "-" : "") + digits.dropLast(decimals) + "." + digits.suffix(decimals)
    }

    /// Tick labels in bytes: B, KiB or MiB, with at most two decimals (ticks are powers of two).
    static func bytes(_ value: Double) -> String {
        func hundredths(_ value: Double) -> String {
            let scaled = Int((value * 100).rounded())
            var text = "\(scaled / 100)"
            let fraction = scaled % 100
            if fraction != 0 { text += fraction % 10 == 0 ? ".\(fraction / 10)" : (fraction < 10 ? ".0\(fraction)" : ".\(fraction)") }
            return text
        }
        if value >= 1_048_576 { return hundredths(value / 1_048_576) + " MiB" }
        if value >= 1024 { return hundredths(value / 1024) + " KiB" }
        return hundredths(value) + " B"
    }

    func document() -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="11">
        <style>
        .title { font-size: 15px; font-weight: bold; }
        .subtitle { fill: #555; }
        .frame { fill: none; stroke: #333; stroke-width: 1; }
        .grid { stroke: #e4e4e4; stroke-width: 0.5; }
        .tick { stroke: #333; stroke-width: 1; }
        .zero-window { fill: #f6d3d3; stroke: none; }
        .sent { stroke: #1f4e9c; stroke-width: 1; fill: none; }
        .retransmitted { stroke: #d62728; stroke-width: 3; fill: none; }
        .ack { stroke: #7f7f7f; stroke-width: 1; fill: none; }
        .window { stroke: #2ca02c; stroke-width: 1; fill: none; }
        .sack { stroke: #9467bd; stroke-width: 1.5; fill: none; }
        .cwnd { stroke: #1f4e9c; stroke-width: 1.2; fill: none; }
        .ssthresh { stroke: #ff7f0e; stroke-width: 1.2; stroke-dasharray: 4 3; fill: none; }
        .inflight { stroke: #7f7f7f; stroke-width: 1; fill: none; }
        .legend { fill: #ffffff; fill-opacity: 0.85; stroke: #cccccc; stroke-width: 0.5; }
        .key-sent { fill: #1f4e9c; } .key-retransmitted { fill: #d62728; } .key-ack { fill: #7f7f7f; }
        .key-window { fill: #2ca02c; } .key-sack { fill: #9467bd; } .key-zero-window { fill: #f6d3d3; stroke: #d9a0a0; stroke-width: 0.5; }
        .key-cwnd { fill: #1f4e9c; } .key-ssthresh { fill: #ff7f0e; } .key-inflight { fill: #7f7f7f; }
        </style>
        \(body.joined(separator: "\n"))
        </svg>

        """
    }
}
