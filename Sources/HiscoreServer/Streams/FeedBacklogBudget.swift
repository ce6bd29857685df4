import Atomics

/// The bytes feed backlogs hold over every board of the server (`max_feed_backlog_bytes`).
///
/// A feed keeps each accepted write of its board until its consumer has been sent it: bounded
/// per board (`SubscriptionHub.maxPendingFeedBytes`, 64 MiB), but a writer updating many boards
/// that a slow consumer watches made every board's backlog grow to that bound, past any memory
/// ceiling (4 boards took 327 MiB under `--max-memory 32M`; updates go on above the ceiling).
/// Hubs on every loop add what they hold here; past the bound, a hub that adds more ends the
/// feeds it holds back (RESOURCE_EXHAUSTED, as for one that falls behind its board's bound).
/// One relaxed atomic add per held item, only while a board has a feed.
final class FeedBacklogBudget: Sendable {
    let limitBytes: Int
    private let heldBytes = ManagedAtomic<Int>(0)

    init(limitBytes: Int) {
        self.limitBytes = limitBytes
    }

    var held: Int { heldBytes.load(ordering: .relaxed) }
    var isExceeded: Bool { held > limitBytes }

    func add(_ bytes: Int) {
        guard bytes != 0 else { return }
        heldBytes.wrappingIncrement(by: bytes, ordering: .relaxed)
    }
}
