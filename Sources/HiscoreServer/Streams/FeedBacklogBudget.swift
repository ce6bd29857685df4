import NIOConcurrencyHelpers

/// The bytes feed backlogs hold over every board of the server (`max_feed_backlog_bytes`), and
/// which board holds most of them.
///
/// A feed keeps each accepted write of its board until its consumer has been sent it: bounded
/// per board (`SubscriptionHub.maxPendingFeedBytes`, 64 MiB), but a writer updating many boards
/// that slow consumers watch made every board's backlog grow to that bound, past any memory
/// ceiling (4 boards took 327 MiB under `--max-memory 32M`; updates go on above the ceiling).
/// So each board's hub reports what it holds here after each batch of writes; past the bound,
/// the board holding the most is asked (on its own loop) to end its feeds that hold back more
/// than an event's worth, with RESOURCE_EXHAUSTED. Asking the largest, not the board whose
/// write crossed the bound: a stalled consumer of a quiet board would otherwise keep its
/// megabytes while healthy feeds of busy boards were ended one after another.
/// A board asked once is settled at what it still holds (its feeds are all within an event):
/// it is not asked again until it holds an event's worth more, so the next largest is asked
/// instead (it may hold the lagging feed), and a server over the bound with no feed lagging is
/// not asked for relief — a hop to a board's loop — at every write batch.
/// Cost: one short lock per batch of writes to a board with a feed; a scan of the holders (the
/// boards with feed backlogs) only while over the bound.
final class FeedBacklogBudget: Sendable {
    /// A board's hub, as the budget knows it: its bytes and how to ask it for relief.
    private struct Holder {
        var bytes: Int
        let relieve: @Sendable () -> Void
        /// What it held when its last relief was done; asked again past this plus an event.
        var settledBytes: Int?

        func mayBeAsked(slackBytes: Int) -> Bool {
            guard let settledBytes else { return true }
            return bytes > settledBytes + slackBytes
        }
    }

    private struct State {
        var total = 0
        var holders: [ObjectIdentifier: Holder] = [:]
        /// The holder asked for relief and not done yet (asked once, not per write).
        var asked: ObjectIdentifier?
    }

    let limitBytes: Int
    /// How much a settled holder must grow before it is asked again: a feed event's bytes.
    let slackBytes: Int
    private let state = NIOLockedValueBox(State())

    init(limitBytes: Int, slackBytes: Int = StreamRefresh.feedEventBytes) {
        self.limitBytes = limitBytes
        self.slackBytes = slackBytes
    }

    /// Bytes held over every board.
    var held: Int { state.withLockedValue { $0.total } }

    /// Records that `holder` now holds `bytes` (0 forgets it). Past the bound, returns how to
    /// ask the largest holder not settled for relief, unless one was asked already; the caller
    /// runs it with no lock held (it may be the caller itself).
    func update(
        _ holder: ObjectIdentifier, bytes: Int, relieve: @escaping @Sendable () -> Void
    ) -> (@Sendable () -> Void)? {
        state.withLockedValue { state in
            let before = state.holders[holder]?.bytes ?? 0
            state.total += bytes - before
            assert(state.total >= 0, "feed backlog bytes went negative")
            if bytes == 0 {
                state.holders[holder] = nil
                if state.asked == holder { state.asked = nil }
            } else if state.holders[holder] == nil {
                state.holders[holder] = Holder(bytes: bytes, relieve: relieve)
            } else {
                state.holders[holder]?.bytes = bytes
            }
            let slackBytes = self.slackBytes
            guard state.total > limitBytes, state.asked == nil,
                let largest = state.holders.lazy.filter({ $0.value.mayBeAsked(slackBytes: slackBytes) })
                    .max(by: { $0.value.bytes < $1.value.bytes })
            else { return nil }
            state.asked = largest.key
            return largest.value.relieve
        }
    }

    /// `holder` has ended what it could: it is settled at what it still holds, and the next
    /// write past the bound asks the largest holder not settled.
    func reliefDone(_ holder: ObjectIdentifier) {
        state.withLockedValue { state in
            if state.asked == holder { state.asked = nil }
            if let bytes = state.holders[holder]?.bytes { state.holders[holder]?.settledBytes = bytes }
        }
    }
}
