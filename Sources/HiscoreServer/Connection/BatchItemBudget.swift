import NIOCore

/// Submit-batch items in flight on one event loop, over all of its connections: the loop's share
/// of `ServerLimits.maxServerInflightBatchItems`.
///
/// Why a bound over connections: each item holds ~0.5–0.8 KB while its batch runs (its plan, its
/// operations and results on every shard it visits), and `max_inflight_batch_items` bounds one
/// connection only, so `max_connections` writers could hold that much each. And more batches in
/// flight do not load faster: a loop with two batches of 1,000 in flight is already busy (a 1M
/// preload took the same time with 16 in flight over two loops as with 4, for 8 MB more peak
/// resident memory and 7% more CPU: docs/benchmarks.md).
///
/// The rule (`CallHandler.holdsForBatches`): while the loop is at its share, a connection with a
/// batch of its own in flight reads nothing more until the loop is back under. A connection with
/// none is always let through: every writer keeps a batch going, and a connection that sends no
/// batches (a game client's reads) is never held for others' batches. The check is made before a
/// frame is decoded, so the batch that crosses the share is admitted whole. So the bound's slack
/// is about one batch per writing connection: a connection's own count drops when its batch is
/// answered, the loop's when the batch's round ends, a moment later, and a batch admitted in
/// between counts twice meanwhile.
///
/// A batch's items are taken when it is admitted and given back when its plan is freed
/// (`BatchItemTicket`), not when its connection answers or closes: a client closing connections
/// with batches in flight cannot get past the bound while that work still runs.
///
/// Loop-confined, like `PlanPool`: the connections of one loop and the plans they make run there.
final class BatchItemBudget {
    /// Items at which the loop is full.
    let limit: Int
    let loop: any EventLoop
    private(set) var inFlight = 0
    /// What to run once the loop is under `limit` again: one entry per connection held for it.
    private var waiters: [() -> Void] = []
    private var wakeScheduled = false

    init(limit: Int, loop: any EventLoop) {
        self.limit = max(1, limit)
        self.loop = loop
    }

    var isFull: Bool { inFlight >= limit }

    /// Counts `items` in flight until the returned ticket is freed.
    func take(_ items: Int) -> BatchItemTicket {
        loop.assertInEventLoop()
        assert(items >= 0, "a batch of \(items) items")
        inFlight += items
        return BatchItemTicket(budget: self, items: items)
    }

    fileprivate func release(_ items: Int) {
        loop.assertInEventLoop()
        let wasFull = isFull
        inFlight -= items
        assert(inFlight >= 0, "batch items given back twice")
        if wasFull && !isFull { scheduleWake() }
    }

    /// Runs `resume` on a later turn of the loop, once it is under `limit` (at once on that turn
    /// if it already is). Each waiter runs once; one still held must wait again. Waiters run in
    /// turn: one that is run and waits again goes behind those it was not run before.
    func resumeWhenUnder(_ resume: @escaping () -> Void) {
        loop.assertInEventLoop()
        waiters.append(resume)
        if !isFull { scheduleWake() }
    }

    /// Connections waiting for the loop to go under its share, for tests.
    var waiting: Int { waiters.count }

    /// Waiters run on the loop's next turn, not inside the release: a release happens as a
    /// round ends, and a resumed connection dispatches its held frames as a new batch, which
    /// must not join the round being torn down.
    private func scheduleWake() {
        guard !wakeScheduled, !waiters.isEmpty else { return }
        wakeScheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute {
            let budget = bound.value
            budget.wakeScheduled = false
            let woken = budget.waiters
            budget.waiters = []
            // In the order they began to wait, until one fills the loop again: those not run yet
            // keep their place at the front, ahead of any that ran and wait again, so the loop's
            // room goes round its writers rather than to the first in line each time.
            var next = 0
            while next < woken.count && !budget.isFull {
                woken[next]()
                next += 1
            }
            if next < woken.count { budget.waiters = Array(woken[next...]) + budget.waiters }
        }
    }
}

/// A batch's items, counted in its loop's `BatchItemBudget` while this lives (its plan holds it).
final class BatchItemTicket {
    private let budget: NIOLoopBound<BatchItemBudget>
    private let items: Int

    fileprivate init(budget: BatchItemBudget, items: Int) {
        self.budget = NIOLoopBound(budget, eventLoop: budget.loop)
        self.items = items
    }

    deinit {
        // Plans are freed on the loop that made them; should one be freed elsewhere, its items
        // go back on that loop all the same.
        let budget = self.budget
        let items = self.items
        if budget.eventLoop.inEventLoop {
            budget.value.release(items)
        } else {
            budget.eventLoop.execute { budget.value.release(items) }
        }
    }
}
