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
                ShardOperation.submit(board, SubmitRequest(boardID: "b", playerID: player, score: Int64(index * 7 % 40)))
            }
            let lookups: [ShardOperation] = [
                .lookupOne(board, playerID: "p3", counting: true),
                .lookup(board, playerIDs: [], denseRanks: false),
                .lookup(board, playerIDs: ["p5", "absent", "p9"], denseRanks: false),
                .lookupOne(board, playerID: "absent", counting: true),
                .lookupCounted(board, playerIDs: ["p9", "p1"], competition: false),
                .lookup(board, playerIDs: [], denseRanks: false),
                .lookupOne(board, playerID: "p39", counting: false),
                .submit(board, SubmitRequest(boardID: "b", playerID: "p2", score: 1_000)),
                .lookupOne(board, playerID: "p2", counting: true),
                .lookup(board, playerIDs: players, denseRanks: false),
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
        try await group.shutdownGracefully()
        #expect(batched.count == 10)
        #expect(batched == alone)
        #expect(batched[0] == "p3 18", "p3 scored 21: 18 players scored more")
        #expect(batched[3] == "nil")
        #expect(batched[8] == "p2 0")
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
