import HiscoreCore
import HiscoreWire
import NIOCore

/// A subscription as its hub keeps it: the target, the last state sent, and whether it must be
/// recomputed. Lives on the board's home shard loop only.
final class Subscription {
    let callID: UInt64
    let sink: StreamSink
    let target: SubscriptionTarget
    let ranking: RankResolution
    /// Minimum time between two events (already clamped to the floor).
    let interval: TimeAmount

    /// Changed since its last event: refresh it (a note-following stream: send it) when due.
    var dirty = true
    /// Send the whole state (first event, or after the reader fell behind) rather than changes.
    var needsSnapshot = true
    var lastSent: NIODeadline?
    /// The key interval whose writes can change what this subscriber sees.
    var watched: ClosedRange<RankKey> = RankKey.min...RankKey.max

    var lastPlayer: PlayerRankChange?
    /// Note-following player streams: entries better than the counting key now, as far as the hub knows —
    /// from the last query, plus the shifts of every write noted since (`KeyMoves`).
    var betterCount: Int?
    /// The notes that last query already reflected, until all of them have reached the hub.
    var cut: StreamCut?
    /// The key whose better-count is the rank: the player's key, or for competition ranks the
    /// first key of its (score, subscore). Set by the last query.
    var countingKey: RankKey?
    /// The rank cannot be derived from notes: ask the shards at the next refresh.
    var needsQuery = true
    /// Where the hub keeps it in its ordered array (-1 once removed).
    var position = -1
    /// Its event was held back by its connection's event budget (`StreamSink.reserve`): it goes
    /// first in the flush that follows the budget's release, so a connection with more events
    /// than the budget cannot starve the same streams flush after flush.
    var heldBack = false
    /// It was left out (its connection's socket full, or its event budget taken) while it had
    /// something to send: the connection's `resume` gives it a fresh snapshot. Streams whose
    /// events all went out are not resent.
    var missed = false
    var lastWindow: [WireEntry] = []
    /// Feeds: the position in the board's feed backlog of the first item no flush has taken for
    /// it yet (its hub counts positions from the board's first item; a flush moves it when it
    /// starts, and sends the items it took when its queries come back). Each feed has its own, so a feed whose
    /// interval has not passed, or whose reader is behind, does not hold the others back.
    var feedCursor = 0

    init(callID: UInt64, sink: StreamSink, target: SubscriptionTarget, ranking: RankResolution, interval: TimeAmount) {
        self.callID = callID
        self.sink = sink
        self.target = target
        self.ranking = ranking
        self.interval = interval
        if case .player = target { followsNotes = ranking.mode != .dense } else { followsNotes = false }
    }

    /// A player stream whose rank the hub keeps current from write notes (ordinal and competition
    /// ranks; dense ranks count distinct scores, which key moves alone do not tell).
    let followsNotes: Bool
    /// The player a player stream watches.
    var player: String? {
        if case .player(let player) = target { return player }
        return nil
    }

    var isFeed: Bool {
        if case .feed = target { return true }
        return false
    }

    /// Whether its interval has passed since the last event (or it never sent one).
    func isDue(at now: NIODeadline, widenedBy factor: Int64) -> Bool {
        guard let lastSent else { return true }
        return now - lastSent >= interval * factor
    }

    func nextDue(widenedBy factor: Int64) -> NIODeadline {
        (lastSent ?? .now()) + interval * factor
    }
}

struct SubscriptionKey: Hashable {
    let connectionID: UInt64
    let callID: UInt64
}
