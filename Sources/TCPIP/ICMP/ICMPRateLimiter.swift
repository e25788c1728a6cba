/// The token bucket every ICMP error we send draws from.
///
/// RFC 4443 §2.4(f): "a token bucket … each time an error message is sent, a token is consumed; if
/// the bucket is empty, the message is not sent" — and RFC 1812 §4.3.2.8 asks the same of IPv4.
/// One bucket for the stack, as Linux's `icmp_global_allow`: an attacker spraying closed ports or
/// unknown protocols from many addresses gets no more than `rate` answers a second in total.
///
/// Credit is kept in nanoseconds of elapsed time, so that refilling is exact integer arithmetic
/// on the `Instant`s the caller passes: a token costs `1 s / rate` of credit.
struct ICMPRateLimiter {
    private let tokenCost: Int64
    private let capacity: Int64
    private var credit: Int64
    private var lastRefill: Instant?

    init(perSecond rate: Int, burst: Int) {
        if rate > 0 {
            tokenCost = 1_000_000_000 / Int64(min(rate, 1_000_000_000))
            capacity = tokenCost * Int64(max(burst, 1))
        } else {
            tokenCost = .max
            capacity = 0
        }
        credit = capacity
    }

    /// Whether one error may go out at `now`; takes its token if so.
    mutating func allow(now: Instant) -> Bool {
        guard capacity > 0 else { return false }
        if let lastRefill {
            let (elapsed, overflow) = now.nanoseconds.subtractingReportingOverflow(lastRefill.nanoseconds)
            credit = min(capacity, credit + (overflow ? capacity : min(max(elapsed, 0), capacity)))
        }
        lastRefill = now
        guard credit >= tokenCost else { return false }
        credit -= tokenCost
        return true
    }
}
