/// Sleeps until `duration` has passed, counting only time in which this test process kept
/// getting to run: it sleeps in steps of `step`, and a step that woke late counts as at most
/// twice its length, however late it woke.
///
/// For the deadline side of a bounded wait. On a loaded two-core CI machine every task of the
/// test process has stalled for 7–18 s at once (CPU-bound suites holding the cooperative pool,
/// other processes). A plain `Task.sleep(for: 10 s)` then passes its deadline during the stall
/// and wins the race the moment the pool frees up, before the work it bounds (a stream reader
/// with events already in its buffer) has run at all: the test would fail on the stall instead
/// of on the behaviour it checks. A bound that never ends still ends: every step counts for at
/// least its own length.
func sleepCountingRunTime(_ duration: Duration, step: Duration = .milliseconds(100)) async throws {
    precondition(step > .zero, "a step of zero never counts time")
    let clock = ContinuousClock()
    var counted = Duration.zero
    while counted < duration {
        let start = clock.now
        try await Task.sleep(for: min(step, duration - counted))
        counted += min(clock.now - start, step * 2)
    }
}
