import HiscoreCore

/// Walks a shard's boards for a snapshot, a chunk of entries at a time, while writes go on
/// between chunks (a snapshot never stops the shard for longer than one chunk).
///
/// What it must guarantee: the snapshot holds every entry not written since the snapshot began,
/// in its current state. Writes after the start are in the log segments the snapshot keeps, and
/// recovery replays them over it; an entry not written since is in no kept segment, so the
/// snapshot is its only copy once the older segments are deleted.
///
/// Why the cursor is the last key copied, not a rank: between two chunks a removal, or an entry
/// moving from above the cursor to below it, shifts every later entry up one rank, and a rank
/// cursor then skips the entry that slides into the gap — one that may not have been written
/// since, and would be lost. An entry not written since keeps its key, so a key cursor reaches
/// it exactly once. An entry that moves from above the cursor to below it is copied twice
/// (recovery keeps the later copy, then replays the log); one that moves above the cursor is not
/// copied again (its write is in the log). Cost: one `entries(after:)` descent per chunk,
/// O(key bytes), plus the chunk.
struct SnapshotCursor {
    private var boards: [(incarnation: UInt64, partition: BoardPartition)]
    /// The last key copied from the first board of `boards`; nil before its first chunk.
    private var lastKey: RankKey?

    init(boards: [(incarnation: UInt64, partition: BoardPartition)]) {
        self.boards = boards
    }

    /// The next chunk of up to `limit` entries of the board being walked, or nil once every
    /// board has been walked. A board for which `isLive` is false (deleted meanwhile: recovery
    /// ignores its records anyway) is skipped. A chunk may be empty.
    mutating func nextChunk(
        limit: Int, isLive: (UInt64, BoardPartition) -> Bool
    ) -> (incarnation: UInt64, entries: [LeaderboardEntry])? {
        assert(limit > 0)
        guard let (incarnation, partition) = boards.first else { return nil }
        guard isLive(incarnation, partition) else {
            moveToNextBoard()
            return (incarnation, [])
        }
        let chunk = lastKey.map { partition.entries(after: $0, limit: limit) } ?? partition.entries(fromRank: 0, limit: limit)
        if chunk.count < limit {
            moveToNextBoard()
        } else {
            lastKey = chunk.last?.key
        }
        return (incarnation, chunk)
    }

    private mutating func moveToNextBoard() {
        boards.removeFirst()
        lastKey = nil
    }
}
