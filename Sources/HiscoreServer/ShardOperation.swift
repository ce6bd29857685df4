import HiscoreCore
import HiscoreWire

/// One step of a call that runs on one shard, synchronously, against that shard's partition of
/// a board. The board of a read or a submit is a `BoardRef` (not counted: see there why, and why
/// that is safe); the rare removals and drops keep a counted one. Calls are split into such steps so that a read batch hops to each other event loop
/// once per phase, carrying every step of every call bound there.
enum ShardOperation: Sendable {
    /// Apply a submit on the player's owning shard.
    case submit(BoardRef, SubmitRequest)
    /// Entries of players owned by this shard, each with its local count of strictly better keys.
    case lookup(BoardRef, playerIDs: [String], denseRanks: Bool)
    /// `lookup` for rank-following streams: each entry with the count of entries better than its
    /// counting key here — its own key, or for competition ranks the first key of its (score,
    /// subscore), so that ties do not count.
    case lookupCounted(BoardRef, playerIDs: [String], competition: Bool)
    /// `lookup` of one player (a rank, an around): answered with `foundOne`, no arrays. Without
    /// `counting` (an around, which counts in its next phase) `localBetter` is 0 and the shard
    /// skips that descent.
    case lookupOne(BoardRef, playerID: String, counting: Bool)
    /// For each key: entries strictly better (or better-or-equal) on this shard.
    case countBetter(BoardRef, keys: CountKeys, orEqual: Bool)
    /// Entries at local ranks `range` (0-based) plus the partition size.
    case entriesAtRanks(BoardRef, range: Range<Int>)
    /// Keys at local ranks `range` (0-based) plus the partition size: an offset page's window.
    case keysAtRanks(BoardRef, range: Range<Int>)
    /// Up to `limit` entries strictly after `key`, plus the count of entries up to and including it.
    case entriesAfter(BoardRef, key: RankKey, limit: Int)
    /// `count` entries beginning `before` places ahead of where `key` stands, with their first
    /// local rank: an offset page's run around its anchor key (`PageAnchors`).
    case entryRun(BoardRef, key: RankKey, before: Int, count: Int)
    /// The `before` nearest better and `after` nearest worse entries around `key`, plus the count of
    /// entries strictly better than `key`. On the shard of the player `key` was read from
    /// (`centre`), the player's own entry is left out of both, in case a write moved it since.
    case neighbours(BoardRef, key: RankKey, before: Int, after: Int, centre: String?)
    /// Entries with a score in the inclusive bounds.
    case countScores(BoardRef, min: Int64?, max: Int64?)
    /// Distinct (score, subscore) values strictly better than each key (single-partition boards).
    case distinctBetter(BoardRef, keys: CountKeys)
    /// Remove a player, reporting its entry and local better count before removal.
    case remove(BoardHandle, playerID: String)
    /// Drop this shard's partition of a deleted board.
    case dropBoard(BoardHandle)
    /// Remove a player from these boards' partitions on this shard, live and archived (an
    /// erasure: `ErasePlayerPlan`), reporting how many held it.
    case erase(playerID: String, boards: [BoardHandle])
    /// Start a snapshot once this batch's records are in the log, whatever the log's size (the
    /// end of an erasure: the player's bytes then leave this shard's files).
    case requestSnapshot
    /// The number of the last write note this shard made for the board. Run in the same group as
    /// counts, it says which notes those counts reflect (a group runs in one go on the shard's loop).
    case noteSequence(BoardRef)
    /// Passes once every write this shard has applied is durable (fsync mode: after the group
    /// fsync covering its last record; at once otherwise). A reset's answer counts the archived
    /// period only after these (`ResetAnswerPlan`).
    case writesDurable
}

extension ShardOperation {
    /// Whether the operation adds records to the shard's log (so a log failure refuses it).
    var appendsToLog: Bool {
        switch self {
        case .submit, .remove, .erase: true
        default: false
        }
    }

    /// Whether its answer may stand only once the writes before it are durable, even when it
    /// adds no record itself: a write that changed nothing answers with the state earlier writes
    /// made (a keep-best submit below the stored score, an erase of a player already removed),
    /// and in fsync mode an answer never precedes the durability of what it reports.
    var answersAfterEarlierWrites: Bool {
        switch self {
        case .submit, .remove, .erase, .writesDurable: true
        default: false
        }
    }
}

enum ShardResult: Sendable {
    case submitted(SubmitOnShard)
    case refused(Status)
    case found([LocatedEntry?])
    case foundOne(LocatedEntry?)
    case counts(CountList)
    case entries([LeaderboardEntry], partitionSize: Int)
    case keys([RankKey], partitionSize: Int)
    case entriesAfter([LeaderboardEntry], countUpToKey: Int)
    case entryRun(EntryRun)
    case neighbours(better: [LeaderboardEntry], worse: [LeaderboardEntry], betterCount: Int)
    case count(Int)
    case removed(LocatedEntry?)
    case dropped(Int)
    case erased(Int)
    case noteSequence(UInt64)
    /// `writesDurable` passed.
    case writesDurable
}

/// An entry with what its own shard knows of its rank.
struct LocatedEntry: Sendable {
    var entry: LeaderboardEntry
    /// Entries strictly better on the owning shard.
    var localBetter: Int
    /// Distinct better (score, subscore) values on the owning shard (dense ranks only).
    var localDistinctBetter: Int
}

/// The owning shard's part of a submit.
/// What a submit did on its player's shard: the stored entry after the write, and of the entry
/// before it only its key (all the plan needs of it; a whole entry would be copied through every
/// step of the plan for nothing).
struct SubmitOnShard: Sendable {
    var current: LeaderboardEntry
    /// nil: the player was created.
    var previousKey: RankKey?
    /// The ranking key changed (the player moved, or was created).
    var keyChanged: Bool
    var created: Bool
    /// Entries strictly better than the previous key, before the write (nil: new player).
    var previousLocalBetter: Int?
    /// Entries strictly better than the new key, after the write.
    var currentLocalBetter: Int
    var boardVersion: UInt64
}
