import NIOCore
import TCPIPWire

/// What a matched rule does beyond `accept`, `drop`, `jump` and the like: `reject with …`, and our
/// `impair …` with its percentages, durations and rates.
extension FilterParser {
    // MARK: - reject

    mutating func reject() throws(FilterParseError) -> RejectKind {
        guard accept(word: "with") else { return .default }
        let kindToken = current
        switch try name("tcp, icmp, icmpv6 or icmpx") {
        case "tcp":
            try expect(word: "reset")
            return .tcpReset
        case "icmp", "icmpv6", "icmpx":
            _ = accept(word: "type")  // nft before 1.0: `reject with icmp type host-unreachable`
            let codeToken = current
            let code = try name("a reject code")
            switch kindToken.text {
            case "icmp":
                if let named = RejectKind.icmpCodes.first(where: { $0.0 == code }) { return .icmp(named.1) }
                if let value = Self.integer(code), (0...15).contains(value) { return .icmp(UInt8(value)) }
            case "icmpv6":
                if let named = RejectKind.icmpv6Codes.first(where: { $0.0 == code }) { return .icmpv6(named.1) }
                if let value = Self.integer(code), (0...7).contains(value) { return .icmpv6(UInt8(value)) }
            default:
                if let named = RejectKind.ICMPXCode(rawValue: code) { return .icmpx(named) }
            }
            throw error("unknown \(kindToken.text) reject code", at: codeToken)
        default:
            throw error("expected tcp, icmp, icmpv6 or icmpx", at: kindToken)
        }
    }

    // MARK: - impair (ours)

    mutating func impairment() throws(FilterParseError) -> ImpairmentSpec {
        var spec = ImpairmentSpec()
        var seen: Set<String> = []
        while current.kind == .word, ["loss", "duplicate", "reorder", "corrupt", "delay", "jitter", "rate", "queue"].contains(current.text) {
            let key = advance()
            guard seen.insert(key.text).inserted else { throw error("\(key.text) given twice", at: key) }
            switch key.text {
            case "loss": spec.lossPPM = try percent()
            case "duplicate": spec.duplicatePPM = try percent()
            case "reorder": spec.reorderPPM = try percent()
            case "corrupt": spec.corruptPPM = try percent()
            case "delay": spec.delay = try duration()
            case "jitter": spec.jitter = try duration()
            case "rate": spec.rate = try bitRate()
            default: spec.queue = try number(in: 1...100_000)
            }
        }
        guard !seen.isEmpty else { throw error("expected loss, duplicate, reorder, corrupt, delay, jitter, rate or queue") }
        return spec
    }

    /// `1%`, `0.25%`, at most four decimals: parts per million.
    mutating func percent() throws(FilterParseError) -> Int {
        guard current.kind == .word, current.text.hasSuffix("%") else { throw error("expected a percentage, as 1%") }
        let number = current.text.dropLast()
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = Int(parts[0]), parts[0].allSatisfy(\.isNumber) else { throw error("expected a percentage, as 1%") }
        var fraction = 0
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].count <= 4, parts[1].allSatisfy(\.isNumber), let digits = Int(parts[1]) else {
                throw error("expected a percentage with at most four decimals")
            }
            fraction = digits
            for _ in parts[1].count..<4 { fraction *= 10 }
        }
        let ppm = whole * 10_000 + fraction
        guard whole <= 100, ppm <= 1_000_000 else { throw error("a percentage is at most 100%") }
        position += 1
        return ppm
    }

    /// `25ms`, `1s`, `500us`, `2m`, `1h`, `100ns`.
    mutating func duration() throws(FilterParseError) -> TimeAmount {
        guard current.kind == .word else { throw error("expected a duration, as 25ms") }
        let text = current.text
        let digits = text.prefix { $0.isNumber }
        let unit = text.dropFirst(digits.count)
        let scale: Int64? = ["ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000][String(unit)]
        guard !digits.isEmpty, let scale, let value = Int64(digits), value <= Int64.max / scale, value * scale <= 3_600_000_000_000 else {
            throw error("expected a duration up to 1h, as 25ms")
        }
        position += 1
        return .nanoseconds(value * scale)
    }

    /// `10mbit`, `512kbit`, `1gbit`, `9600bit`.
    mutating func bitRate() throws(FilterParseError) -> Int {
        guard current.kind == .word else { throw error("expected a rate, as 10mbit") }
        let text = current.text
        let digits = text.prefix { $0.isNumber }
        let scale: Int? = ["bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000][String(text.dropFirst(digits.count))]
        guard !digits.isEmpty, let scale, let value = Int(digits), value > 0, value <= 400_000_000_000 / scale else {
            throw error("expected a rate up to 400gbit, as 10mbit")
        }
        position += 1
        return value * scale
    }
}
