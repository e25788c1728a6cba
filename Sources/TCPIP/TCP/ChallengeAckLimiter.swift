/// RFC 5961 §7: "An implementation SHOULD include an ACK throttling mechanism" — so that a flood of
/// forged RSTs, SYNs or ACKs cannot make us send a challenge ACK for each.
///
/// A budget per one-second window, for the whole stack. A fixed global budget is itself a side
/// channel: an off-path attacker who exhausts it and counts the challenge ACKs a victim connection
/// still gets learns whether a guess was in its window (CVE-2016-5696). As Linux since 4.7, each
/// window's budget is drawn at random in [limit/2, limit·3/2).
struct ChallengeAckLimiter {
    private let limit: Int?
    private var generator: SeededGenerator
    private var windowStart: Instant?
    private var remaining = 0

    init(limit: Int?, generator: SeededGenerator) {
        self.limit = limit
        self.generator = generator
    }

    /// Whether a challenge ACK may go out at `now`; counts it if so.
    mutating func allow(now: Instant) -> Bool {
        guard let limit else { return true }
        guard limit > 0 else { return false }
        if windowStart.map({ now - $0 >= .seconds(1) }) ?? true {
            windowStart = now
            remaining = max(1, limit / 2 + Int(generator.next() % UInt64(limit)))
        }
        guard remaining > 0 else { return false }
        remaining -= 1
        return true
    }
}
