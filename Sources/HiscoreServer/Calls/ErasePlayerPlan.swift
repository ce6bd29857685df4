import HiscoreWire

/// ErasePlayer: removes a player from every board and every archived period of every board.
///
/// The board ids are taken when the call starts (boards created later are not covered: a write
/// to them comes after the erasure). Each phase takes the next `boardsPerPhase` of them, looks
/// up their live and archived incarnations as they are at that moment (a board reset meanwhile
/// is found as its new live board plus the archive its entries moved to; a deleted one is
/// skipped), and asks each shard to remove the player from the partitions it may hold among them:
/// the player's own shard for boards split over every shard, the home shard for a board kept on
/// one. A server with many boards therefore never holds its shards for one erasure: other calls'
/// operations run between the phases. Cost: one id lookup per partition asked.
///
/// A last phase asks every shard for a snapshot, which starts once the removals are in its log:
/// published, it deletes the log segments and the snapshot that still held the player's bytes
/// (also those of entries removed before, of deleted boards, of pruned periods). Erasures in a
/// row share their snapshots: one runs, one more waits for it.
///
/// Stopped midway (a deadline), an erasure has removed some entries and not others; calling it
/// again removes the rest (it is idempotent).
final class ErasePlayerPlan: CallPlan {
    /// Boards per phase: a bound on the work one phase puts on a shard (with archived periods,
    /// up to 101 partitions a board).
    static let boardsPerPhase = 256

    var writesEntries: Bool { true }
    private let callID: UInt64
    private let playerID: String
    private let directory: BoardDirectory
    private let shardCount: Int
    private let boardIDs: [String]
    private var nextBoard = 0
    private var snapshotsRequested = false
    private var removed: UInt64 = 0

    init(callID: UInt64, playerID: String, directory: BoardDirectory, shardCount: Int) {
        self.callID = callID
        self.playerID = playerID
        self.directory = directory
        self.shardCount = shardCount
        self.boardIDs = directory.boardIDs()
    }

    func advance(_ results: ShardResults) -> PlanStep {
        for case .erased(let count) in results { removed += UInt64(count) }
        while nextBoard < boardIDs.count {
            let end = min(nextBoard + Self.boardsPerPhase, boardIDs.count)
            var boardsByShard = [[BoardHandle]](repeating: [], count: shardCount)
            for id in boardIDs[nextBoard..<end] {
                for board in directory.incarnations(id) {
                    boardsByShard[board.shard(for: playerID, shardCount: shardCount)].append(board)
                }
            }
            nextBoard = end
            let calls = boardsByShard.indices.compactMap { shard in
                boardsByShard[shard].isEmpty
                    ? nil : ShardCall(shard: shard, operation: .erase(playerID: playerID, boards: boardsByShard[shard]))
            }
            if !calls.isEmpty { return .run(calls) }
        }
        if !snapshotsRequested {
            snapshotsRequested = true
            return .runOnEach(.requestSnapshot, shards: 0..<shardCount, skipping: nil)
        }
        return .finished(.ok(callID, .erasePlayer(removedEntries: removed)))
    }
}
