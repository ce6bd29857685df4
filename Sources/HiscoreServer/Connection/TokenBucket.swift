import NIOCore

/// The per-connection request rate limit: `rate` calls per second on average, bursts of up to
/// `burst`. Refilled lazily from the time of each call (no timer).
struct TokenBucket {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: NIODeadline

    /// `rate` 0 = unlimited.
    init(rate: Int, now: NIODeadline = .now()) {
        self.rate = Double(rate)
        self.burst = Double(rate) * 2
        self.tokens = Double(rate) * 2
        self.last = now
    }

    mutating func take(now: NIODeadline) -> Bool {
        guard rate > 0 else { return true }
        let elapsed = Double((now - last).nanoseconds) / 1e9
        if elapsed > 0 {
            tokens = min(burst, tokens + elapsed * rate)
            last = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
