import HiscoreCore
import HiscoreWire

/// The full refresh of ordinal player subscriptions, for those whose rank the hub cannot derive
/// from write notes (a first snapshot, a player who was written, a reader that fell behind).
/// Phase 1 finds each player's entry on its owner; phase 2 counts, on every shard of the board,
/// the entries better than each found key, together with the shard's note number — both in one
/// group per shard, so from one moment on that shard. The hub reads the results from the plan
/// (`located`, `cut`); the response it finishes with carries nothing.
final class PlayerRefreshPlan: CallPlan {
    private let callID: UInt64
    private let board: BoardHandle
    private let shardCount: Int
    /// In the hub's order; duplicates allowed (two streams on one player).
    let playerIDs: [String]
    /// Per player, in `playerIDs` order: its entry and the number of entries better, or nil when
    /// it is not on the board. Valid once the plan finished with `completed`.
    private(set) var located: [(entry: LeaderboardEntry, better: Int)?]
    /// The notes the counts reflect (nil when no player was found: nothing was counted).
    private(set) var cut: StreamCut?
    private(set) var completed = false

    private var phase = 0
    private var owners: [(shard: Int, positions: [Int])] = []
    /// Positions (into `playerIDs`) of the found players, in the order of the counted keys.
    private var counted: [Int] = []

    init(callID: UInt64, board: BoardHandle, shardCount: Int, playerIDs: [String]) {
        self.callID = callID
        self.board = board
        self.shardCount = shardCount
        self.playerIDs = playerIDs
        self.located = Array(repeating: nil, count: playerIDs.count)
    }

    func advance(_ results: ShardResults) -> PlanStep {
        phase += 1
        switch phase {
        case 1:
            var byShard: [Int: [Int]] = [:]
            for (position, id) in playerIDs.enumerated() {
                byShard[board.shard(for: id, shardCount: shardCount), default: []].append(position)
            }
            owners = byShard.sorted { $0.key < $1.key }.map { (shard: $0.key, positions: $0.value) }
            guard !owners.isEmpty else { return finish() }
            return .run(owners.map { owner in
                ShardCall(shard: owner.shard, operation: .lookup(board, playerIDs: owner.positions.map { playerIDs[$0] }, denseRanks: false))
            })
        case 2:
            var found: [(position: Int, entry: LeaderboardEntry)] = []
            for (owner, result) in zip(owners, results) {
                guard case .found(let entries) = result else { continue }
                for (position, entry) in zip(owner.positions, entries) {
                    if let entry { found.append((position, entry.entry)) }
                }
            }
            guard !found.isEmpty else { return finish() }
            // Counting in key order keeps consecutive descents on neighbouring nodes.
            found.sort { $0.entry.key < $1.entry.key }
            var keys = CountKeys()
            for item in found {
                located[item.position] = (item.entry, 0)
                counted.append(item.position)
                keys.append(item.entry.key)
            }
            var calls: [ShardCall] = []
            for shard in board.shardRange(shardCount: shardCount) {
                calls.append(ShardCall(shard: shard, operation: .countBetter(board, keys: keys, orEqual: false)))
                calls.append(ShardCall(shard: shard, operation: .noteSequence))
            }
            return .run(calls)
        default:
            var better = [Int](repeating: 0, count: counted.count)
            var sequences = [UInt64](repeating: 0, count: shardCount)
            for (shard, pair) in zip(board.shardRange(shardCount: shardCount), stride(from: results.startIndex, to: results.endIndex, by: 2)) {
                if case .counts(let counts) = results[pair] {
                    for index in 0..<min(counts.count, better.count) { better[index] += counts[index] }
                }
                if pair + 1 < results.endIndex, case .noteSequence(let sequence) = results[pair + 1] { sequences[shard] = sequence }
            }
            for (index, position) in counted.enumerated() {
                if let entry = located[position]?.entry { located[position] = (entry, better[index]) }
            }
            cut = StreamCut(sequences: sequences)
            return finish()
        }
    }

    private func finish() -> PlanStep {
        completed = true
        return .finished(.ok(callID, .entries(EntriesResponse(entries: [], boardSize: 0))))
    }
}
