import HiscoreCore

/// What a shard tells a board's subscription hub about one accepted write: where the player's
/// key was and where it is now (nil = absent). That interval is all the hub needs to find the
/// subscriptions the write can affect; the entry itself travels only when the board has feed
/// subscribers.
struct WriteNote: Sendable {
    let board: BoardHandle
    let playerID: String
    let previousKey: RankKey?
    let currentKey: RankKey?
    /// The entry after the write (nil when removed); only for feeds.
    let entry: LeaderboardEntry?
    let created: Bool
    let version: UInt64
    /// The shard that applied the write, and the note's number among that shard's notes for the
    /// board (`Shard.noteSequences`).
    let shard: Int
    let sequence: UInt64

    /// The note without its entry: what the stream marking keeps (an entry, with up to 4 KiB of
    /// metadata, is the feeds' alone; kept there too, it held the metadata of up to 65,536
    /// pending notes per board after the feeds had let go of it).
    var withoutEntry: WriteNote {
        guard entry != nil else { return self }
        return WriteNote(
            board: board, playerID: playerID, previousKey: previousKey, currentKey: currentKey, entry: nil,
            created: created, version: version, shard: shard, sequence: sequence)
    }

    /// The key interval a write touches: between its old and new keys, where a missing key counts
    /// as worse than every key (a new entry shifts everyone below it; a removal likewise).
    var touchedInterval: ClosedRange<RankKey> {
        let old = previousKey ?? .max
        let new = currentKey ?? .max
        return min(old, new)...max(old, new)
    }
}
