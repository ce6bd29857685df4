import HiscoreCore
import HiscoreWire
import NIOPosix
import Testing

@testable import HiscoreServer

/// A shard prepares the runs of a batch before executing it (`prepareSubmitRuns`,
/// `prepareLookupRuns`, ...): hints only, so a batch must answer exactly what its operations
/// answer one by one. Lookup runs map positions to ids across operations of every lookup kind,
/// including ones with no ids; a wrong mapping traps (debug) or answers differently.
@Suite("Shard batches")
struct ShardBatchTests {
    @Test("a batch of mixed lookups and submits answers as its operations do one by one")
    func preparedRunsChangeNoAnswer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // Two shards fed the same writes: one runs the lookups as a batch, the other one by one.
        let batchShard = Shard(index: 0, loop: loop, memory: MemoryCeiling(limitBytes: 0))
        let aloneShard = Shard(index: 0, loop: loop, memory: MemoryCeiling(limitBytes: 0))
        let batchBoard = try BoardDirectory(shardCount: 1, maxBoards: 10).boardCreatingDefault("b")
        let aloneBoard = try BoardDirectory(shardCount: 1, maxBoards: 10).boardCreatingDefault("b")
        let players = (0..<40).map { "p\($0)" }  // scores index * 7 % 40: all distinct
        func operations(_ board: BoardHandle) -> (submits: [ShardOperation], lookups: [ShardOperation]) {
            let submits = players.enumerated().map { index, player in
                ShardOperation.submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: player, score: Int64(index * 7 % 40)))
            }
            let lookups: [ShardOperation] = [
                .lookupOne(BoardRef(board), playerID: "p3", counting: true),
                .lookup(BoardRef(board), playerIDs: [], denseRanks: false),
                .lookup(BoardRef(board), playerIDs: ["p5", "absent", "p9"], denseRanks: false),
                .lookupOne(BoardRef(board), playerID: "absent", counting: true),
                .lookupCounted(BoardRef(board), playerIDs: ["p9", "p1"], competition: false),
                .lookup(BoardRef(board), playerIDs: [], denseRanks: false),
                .lookupOne(BoardRef(board), playerID: "p39", counting: false),
                .submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: "p2", score: 1_000)),
                .lookupOne(BoardRef(board), playerID: "p2", counting: true),
                .lookup(BoardRef(board), playerIDs: players, denseRanks: false),
            ]
            return (submits, lookups)
        }
        let batchOperations = operations(batchBoard)
        let aloneOperations = operations(aloneBoard)
        let batched = try await loop.submit {
            batchShard.assumeIsolated { shard -> [String] in
                var ignored: [ShardResult] = []
                shard.execute(batchOperations.submits, into: &ignored)
                var results: [ShardResult] = []
                shard.execute(batchOperations.lookups, into: &results)
                return results.map(Self.describe)
            }
        }.get()
        let alone = try await loop.submit {
            aloneShard.assumeIsolated { shard -> [String] in
                var ignored: [ShardResult] = []
                for operation in aloneOperations.submits { shard.execute([operation], into: &ignored) }
                var results: [ShardResult] = []
                for operation in aloneOperations.lookups { shard.execute([operation], into: &results) }
                return results.map(Self.describe)
            }
        }.get()
        // The operations name their boards without holding them: the boards must outlive them.
        withExtendedLifetime((batchBoard, aloneBoard)) {}
        try await group.shutdownGracefully()
        #expect(batched.count == 10)
        #expect(batched == alone)
        #expect(batched[0] == "p3 18", "p3 scored 21: 18 players scored more")
        #expect(batched[3] == "nil")
        #expect(batched[8] == "p2 0")
    }

    @Test("neighbours of a player moved since its key was read leave the player out (no duplicate, no extra better)")
    func neighboursLeaveTheMovedCentreOut() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let shard = Shard(index: 0, loop: loop, memory: MemoryCeiling(limitBytes: 0))
        let board = try BoardDirectory(shardCount: 1, maxBoards: 10).boardCreatingDefault("b")
        let answers = try await loop.submit {
            shard.assumeIsolated { shard -> [String] in
                var ignored: [ShardResult] = []
                for (player, score) in [("a", 100), ("p", 50), ("c", 10)] {
                    shard.execute([.submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: player, score: Int64(score)))], into: &ignored)
                }
                var read: [ShardResult] = []
                shard.execute([.lookupOne(BoardRef(board), playerID: "p", counting: false)], into: &read)
                guard case .foundOne(let located?) = read.first else { return ["p not found"] }
                var answers: [String] = []
                // Unmoved: as before. Then p moves above a, and below c, after its key was read.
                for score: Int64 in [50, 200, 5] {
                    if score != 50 {
                        shard.execute([.submit(BoardRef(board), SubmitRequest(boardID: "b", playerID: "p", score: score))], into: &ignored)
                    }
                    var results: [ShardResult] = []
                    shard.execute([.neighbours(BoardRef(board), key: located.entry.key, before: 2, after: 1, centre: "p")], into: &results)
                    guard case .neighbours(let better, let worse, let count) = results.first else { return ["no neighbours"] }
                    answers.append("\(better.map(\.playerID)) \(worse.map(\.playerID)) \(count)")
                }
                return answers
            }
        }.get()
        try await group.shutdownGracefully()
        #expect(answers == [#"["a"] ["c"] 1"#, #"["a"] ["c"] 1"#, #"["a"] ["c"] 1"#])
    }

    @Test("a removal reaching a board reset or deleted since it was routed is refused and changes nothing")
    func removalOfAnArchivedOrDeletedBoard() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let shard = Shard(index: 0, loop: loop, memory: MemoryCeiling(limitBytes: 0))
        let directory = BoardDirectory(shardCount: 1, maxBoards: 10)
        let archived = try directory.boardCreatingDefault("a")
        let deleted = try directory.boardCreatingDefault("d")
        let answers = try await loop.submit {
            shard.assumeIsolated { shard -> [String] in
                var ignored: [ShardResult] = []
                for board in [archived, deleted] {
                    shard.execute([.submit(BoardRef(board), SubmitRequest(boardID: board.config.id, playerID: "p", score: 1))], into: &ignored)
                }
                archived.markArchived(at: 1)
                deleted.markDeleted()
                var results: [ShardResult] = []
                shard.execute([.remove(archived, playerID: "p"), .remove(deleted, playerID: "p")], into: &results)
                shard.execute([.lookupOne(BoardRef(archived), playerID: "p", counting: false)], into: &results)
                return results.map(Self.describe)
            }
        }.get()
        try await group.shutdownGracefully()
        #expect(answers == [
            "refused board a was reset while this removal was in flight; remove again", "refused board d not found", "p 0",
        ])
    }

    /// What a result says, as text: the entries found and their local better counts.
    static func describe(_ result: ShardResult) -> String {
        func text(_ located: LocatedEntry?) -> String {
            located.map { "\($0.entry.playerID) \($0.localBetter)" } ?? "nil"
        }
        switch result {
        case .foundOne(let located): return text(located)
        case .found(let all): return all.map(text).joined(separator: ", ")
        case .submitted(let onShard): return "submitted \(onShard.current.playerID) \(onShard.currentLocalBetter)"
        case .refused(let status): return "refused \(status.message)"
        default: return "other"
        }
    }
}
