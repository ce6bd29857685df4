import HiscoreCore
@testable import HiscoreServer
import Testing

/// Which write notes a board feed turns into items.
@Suite("Feed items")
struct FeedNoteTests {
    static func note(entry: LeaderboardEntry?, currentKey: RankKey?) -> WriteNote {
        WriteNote(
            board: BoardHandle(config: BoardConfig(id: "f"), incarnation: 1, partitionCount: 1, homeShard: 0,
                topCacheBudget: TopCacheBudget(limitBytes: 1 << 20)),
            playerID: "p", previousKey: nil, currentKey: currentKey, entry: entry, created: true, version: 1, shard: 0,
            sequence: 1)
    }

    @Test("a write noted before the first feed subscribed (no entry attached) is not an item; writes with entries and removals are")
    func itemsFromNotes() {
        let key = BoardConfig(id: "f").codec.key(score: 7, subscore: 0, sequence: 1)
        let entry = LeaderboardEntry(playerID: "p", score: 7, subscore: 0, metadata: [], sequence: 1, key: key)
        #expect(SubscriptionHub.isFeedItem(Self.note(entry: entry, currentKey: key)))
        #expect(!SubscriptionHub.isFeedItem(Self.note(entry: nil, currentKey: key)))
        #expect(SubscriptionHub.isFeedItem(Self.note(entry: nil, currentKey: nil)))
    }
}
