import HiscoreCore
@testable import HiscoreServer
import Testing
import HiscoreTestSupport

/// A snapshot copies a shard's boards a chunk at a time while writes go on between chunks; it
/// must hold every entry not written since it began (the log it keeps has the others).
/// Deterministic per seed (printed on failure; override with HISCORE_TEST_SEED).
@Suite("Snapshot cursor")
struct SnapshotCursorTests {
    @Test("every entry not written since the start is copied, in its state at the start, whatever moves between chunks", arguments: [1, 3, 16])
    func copiesEveryUntouchedEntry(chunk: Int) throws {
        let seed = DifferentialServerTests.seed() &+ UInt64(chunk)
        var random = SplitMix64(seed: seed)
        var sequence: UInt64 = 0
        let boards = [
            BoardPartition(config: BoardConfig(id: "set", writeOperator: .set)),
            BoardPartition(config: BoardConfig(id: "empty")),
            BoardPartition(config: BoardConfig(id: "deleted", writeOperator: .set)),
            BoardPartition(config: BoardConfig(id: "asc", scoreOrder: .ascending, writeOperator: .set)),
        ]
        func write(_ board: BoardPartition, _ player: Int) throws {
            sequence += 1
            _ = try board.write(
                playerID: "p\(player)", score: Int64(random.next(below: 50)), subscore: 0, metadata: nil, sequence: sequence)
        }
        for board in [boards[0], boards[2], boards[3]] {
            for player in 0..<120 { try write(board, player) }
        }
        var atStart: [Int: [String: LeaderboardEntry]] = [:]
        for (index, board) in boards.enumerated() {
            atStart[index] = Dictionary(uniqueKeysWithValues: board.entries(fromRank: 0, limit: board.count).map { ($0.playerID, $0) })
        }
        var live = Set(boards.indices)
        var cursor = SnapshotCursor(boards: boards.enumerated().map { (UInt64($0.offset), $0.element) })
        var copied: [Int: [String: LeaderboardEntry]] = [:]
        var touched: [Int: Set<String>] = [:]
        var chunks = 0
        while let next = cursor.nextChunk(limit: chunk, isLive: { incarnation, _ in live.contains(Int(incarnation)) }) {
            chunks += 1
            #expect(chunks < 10_000, "seed \(seed): the walk does not end")
            #expect(next.entries.count <= chunk)
            for entry in next.entries { copied[Int(next.incarnation), default: [:]][entry.playerID] = entry }
            // Writes between chunks: removals and moves, above and below the cursor.
            for _ in 0..<random.next(below: 4) {
                let index = [0, 3][Int(random.next(below: 2))]
                let player = Int(random.next(below: 140))
                touched[index, default: []].insert("p\(player)")
                if random.next(below: 3) == 0 {
                    _ = boards[index].remove(playerID: "p\(player)")
                } else {
                    try write(boards[index], player)
                }
            }
            if chunks == 3 { live.remove(2) }  // a board deleted during the snapshot
        }
        for index in [0, 3] {
            for (player, entry) in atStart[index] ?? [:] where !(touched[index]?.contains(player) ?? false) {
                #expect(copied[index]?[player] == entry, "seed \(seed) chunk \(chunk): board \(index) player \(player) not copied as it was")
            }
        }
        #expect(copied[1] == nil)
    }
}
