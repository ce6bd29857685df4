import HiscoreCore
import HiscoreWire

/// The full refresh of note-following player subscriptions (ordinal or competition ranks, one
/// plan per mode), for those whose rank the hub cannot derive from write notes (a first
/// snapshot, a player who was written, a reader that fell behind). A rank here is 1 + the number
/// of entries better than the player's counting key (`RankResolution.countingKey`).
///
/// Phase 1, on each owner shard in one group: each player's entry with the count of better
/// entries there, and the shard's note number for the board. Phase 2, on every other shard of
/// the board in one group: the count of entries better than each of those keys, and the note
/// number. So each shard's part of a rank comes with the note number of the same moment, and the
/// player's key and its owner's count are read together: a write to the player between the phases
/// cannot make the rank count the player against itself (its note, newer than the cut, makes the
/// hub query it again). The hub reads the results from the plan (`located`, `cuts`).
final class PlayerRefreshPlan: CallPlan {
    let callID: UInt64
    private let ranking: RankResolution
    private var board: BoardHandle { ranking.board }
    private var shardCount: Int { ranking.shardCount }
    /// In the hub's order; duplicates allowed (two streams on one player).
    let playerIDs: [String]
    /// Per player, in `playerIDs` order: its entry, the number of entries better than its counting
    /// key, that key, and the notes that count reflects; nil when it is not on the board. Valid
    /// once `completed`.
    private(set) var located: [(entry: LeaderboardEntry, better: Int, counting: RankKey, cut: StreamCut)?]
    private(set) var completed = false

    private var phase = 0
    private var owners: [(shard: Int, positions: [Int])] = []
    /// Phase 1 results per owner shard: its note number, and (position, entry, local count).
    private var ownerSequences: [Int: UInt64] = [:]
    private var found: [(position: Int, owner: Int, entry: LeaderboardEntry, counting: RankKey, better: Int)] = []
    /// Phase 2: the shards asked, in order.
    private var others: [Int] = []

    init(callID: UInt64, ranking: RankResolution, playerIDs: [String]) {
        assert(ranking.mode != .dense, "dense ranks do not follow from key moves")
        self.callID = callID
        self.ranking = ranking
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
            var calls: [ShardCall] = []
            for owner in owners {
                calls.append(ShardCall(
                    shard: owner.shard,
                    operation: .lookupCounted(
                        BoardRef(board), playerIDs: owner.positions.map { playerIDs[$0] }, competition: ranking.mode == .competition)))
                calls.append(ShardCall(shard: owner.shard, operation: .noteSequence(BoardRef(board))))
            }
            return .run(calls)
        case 2:
            for (index, owner) in owners.enumerated() {
                let at = results.startIndex + index * 2
                guard at + 1 < results.endIndex, case .found(let entries) = results[at],
                    case .noteSequence(let sequence) = results[at + 1]
                else { continue }
                ownerSequences[owner.shard] = sequence
                for (position, entry) in zip(owner.positions, entries) {
                    if let entry {
                        found.append((position, owner.shard, entry.entry, ranking.countingKey(of: entry.entry), entry.localBetter))
                    }
                }
            }
            others = board.shardRange(shardCount: shardCount).filter { shard in found.contains { $0.owner != shard } }
            guard !found.isEmpty, !others.isEmpty else { return finish(otherCounts: []) }
            // Counting in key order keeps consecutive descents on neighbouring nodes.
            found.sort { $0.counting < $1.counting }
            var calls: [ShardCall] = []
            for shard in others {
                var keys = CountKeys()
                for item in found where item.owner != shard { keys.append(item.counting) }
                calls.append(ShardCall(shard: shard, operation: .countBetter(BoardRef(board), keys: keys, orEqual: false)))
                calls.append(ShardCall(shard: shard, operation: .noteSequence(BoardRef(board))))
            }
            return .run(calls)
        default:
            return finish(otherCounts: results)
        }
    }

    /// Adds the other shards' counts to each player's owner count; builds one cut per owner.
    private func finish(otherCounts results: ShardResults) -> PlanStep {
        var sequences = [UInt64](repeating: 0, count: shardCount)
        for (index, shard) in others.enumerated() {
            let at = results.startIndex + index * 2
            guard at + 1 < results.endIndex else { continue }
            if case .noteSequence(let sequence) = results[at + 1] { sequences[shard] = sequence }
            guard case .counts(let counts) = results[at] else { continue }
            var next = 0
            for index in found.indices where found[index].owner != shard {
                if next < counts.count { found[index].better += counts[next] }
                next += 1
            }
        }
        var cuts: [Int: StreamCut] = [:]
        for (owner, sequence) in ownerSequences {
            var ownCut = sequences
            ownCut[owner] = sequence
            cuts[owner] = StreamCut(sequences: ownCut)
        }
        for item in found {
            guard let cut = cuts[item.owner] else { continue }
            located[item.position] = (item.entry, item.better, item.counting, cut)
        }
        return finish()
    }

    private func finish() -> PlanStep {
        completed = true
        return .finished(.ok(callID, .entries(EntriesResponse(entries: [], boardSize: 0))))
    }
}
