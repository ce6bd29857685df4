import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreWire
import Testing
import HiscoreTestSupport

/// The server, end to end over a socket, against a sorted-array model: random writes with every
/// operator on boards split over several shards, then every query compared with the model.
/// Deterministic per seed (printed on failure; override with HISCORE_TEST_SEED).
@Suite("Server vs reference model")
struct DifferentialServerTests {
    struct ModelEntry {
        var player: String
        var score: Int64
        var subscore: Int64
        var reachedAt: Int64
    }

    /// A board as a plain array, sorted on demand.
    struct Model {
        let config: BoardConfig
        var entries: [String: ModelEntry] = [:]

        func isBetter(_ a: ModelEntry, _ b: ModelEntry) -> Bool {
            if a.score != b.score { return config.scoreOrder == .descending ? a.score > b.score : a.score < b.score }
            if a.subscore != b.subscore {
                return config.subscoreOrder == .descending ? a.subscore > b.subscore : a.subscore < b.subscore
            }
            return a.reachedAt < b.reachedAt
        }

        var sorted: [ModelEntry] { entries.values.sorted(by: isBetter) }

        /// What the stored (score, subscore) should be after a write, per the operator.
        func expectedAfter(player: String, score: Int64, subscore: Int64) -> (Int64, Int64) {
            let old = entries[player]
            switch config.writeOperator {
            case .set: return (score, subscore)
            case .best:
                guard let old else { return (score, subscore) }
                let candidate = ModelEntry(player: player, score: score, subscore: subscore, reachedAt: .max)
                let stored = ModelEntry(player: player, score: old.score, subscore: old.subscore, reachedAt: .max)
                return isBetter(candidate, stored) ? (score, subscore) : (old.score, old.subscore)
            case .increment:
                let (sum, overflow) = (old?.score ?? 0).addingReportingOverflow(score)
                return (overflow ? (score > 0 ? .max : .min) : sum, subscore)
            case .decrement:
                let (difference, overflow) = (old?.score ?? 0).subtractingReportingOverflow(score)
                return (overflow ? (score > 0 ? .min : .max) : difference, subscore)
            }
        }

        func ranks(_ mode: RankMode) -> [String: UInt64] {
            var result: [String: UInt64] = [:]
            let order = sorted
            var dense: UInt64 = 0
            var competition: UInt64 = 0
            for (index, entry) in order.enumerated() {
                let tied = index > 0 && order[index - 1].score == entry.score && order[index - 1].subscore == entry.subscore
                if !tied {
                    dense += 1
                    competition = UInt64(index + 1)
                }
                switch mode {
                case .ordinal: result[entry.player] = UInt64(index + 1)
                case .competition: result[entry.player] = competition
                case .dense: result[entry.player] = dense
                }
            }
            return result
        }
    }

    static func seed() -> UInt64 {
        if let text = ProcessInfo.processInfo.environment["HISCORE_TEST_SEED"], let value = UInt64(text) { return value }
        return UInt64.random(in: 1...UInt64.max)
    }

    @Test("random writes and every query match the model", arguments: [1, 2, 3, 5])
    func randomized(shards: Int) async throws {
        let seed = Self.seed()
        var random = SplitMix64(seed: seed)
        let configs = [
            BoardConfig(id: "best-desc", rankMode: .competition),
            BoardConfig(id: "set-asc", scoreOrder: .ascending, subscoreOrder: .descending, writeOperator: .set),
            BoardConfig(id: "incr", writeOperator: .increment),
            BoardConfig(id: "decr-dense", scoreOrder: .ascending, writeOperator: .decrement, rankMode: .dense),
        ]
        try await withClient(shards: shards) { client, _ in
            var models: [String: Model] = [:]
            for config in configs {
                try await client.createBoard(config)
                models[config.id] = Model(config: config)
            }
            for round in 0..<6 {
                // A batch of random writes per board (a small score range forces ties).
                for config in configs {
                    var model = models[config.id]!
                    var submits: [SubmitRequest] = []
                    for _ in 0..<60 {
                        let player = "p\(random.next(below: 80))"
                        let extreme = random.next(below: 20) == 0
                        let score = extreme ? (random.next(below: 2) == 0 ? Int64.max : Int64.min) : Int64(random.next(below: 15)) - 5
                        submits.append(SubmitRequest(boardID: config.id, playerID: player, score: score, subscore: Int64(random.next(below: 3))))
                    }
                    let results = try await client.submitBatch(submits)
                    for (submit, result) in zip(submits, results) {
                        let response = try #require(result.response, "seed \(seed): \(result.status)")
                        let (score, subscore) = model.expectedAfter(player: submit.playerID, score: submit.score, subscore: submit.subscore)
                        #expect(response.entry.score == score && response.entry.subscore == subscore, "seed \(seed) \(config.id)")
                        model.entries[submit.playerID] = ModelEntry(
                            player: submit.playerID, score: response.entry.score, subscore: response.entry.subscore,
                            reachedAt: response.entry.reachedAtMicros)
                    }
                    // Single submits, one at a time: their ranks (always ordinal) must match the
                    // model before and after the write.
                    for _ in 0..<8 {
                        let player = "p\(random.next(below: 80))"
                        let score = Int64(random.next(below: 15)) - 5
                        let before = model.entries[player] == nil ? 0 : model.ranks(.ordinal)[player] ?? 0
                        let response = try await client.submit(board: config.id, player: player, score: score)
                        let (expectedScore, _) = model.expectedAfter(player: player, score: score, subscore: 0)
                        #expect(response.entry.score == expectedScore, "seed \(seed) \(config.id) single submit")
                        model.entries[player] = ModelEntry(
                            player: player, score: response.entry.score, subscore: response.entry.subscore,
                            reachedAt: response.entry.reachedAtMicros)
                        #expect(response.previousRank == before, "seed \(seed) \(config.id) previous rank of \(player)")
                        #expect(response.entry.rank == model.ranks(.ordinal)[player], "seed \(seed) \(config.id) rank of \(player)")
                    }
                    // Removes.
                    for _ in 0..<3 {
                        let player = "p\(random.next(below: 80))"
                        if model.entries.removeValue(forKey: player) != nil {
                            _ = try await client.removePlayer(board: config.id, player: player)
                        } else {
                            await expectStatus(.notFound) { try await client.removePlayer(board: config.id, player: player) }
                        }
                    }
                    models[config.id] = model
                }
                for config in configs { try await compare(client, models[config.id]!, seed: seed, round: round, random: &random) }
            }
        }
    }

    private func compare(_ client: HiscoreClient, _ model: Model, seed: UInt64, round: Int, random: inout SplitMix64) async throws {
        let board = model.config.id
        let context = "seed \(seed) shards round \(round) board \(board)"
        let sorted = model.sorted
        let mode = model.config.rankMode
        let ranks = model.ranks(mode)
        // Whole board, ordinal and default mode.
        let all = try await client.top(board: board, limit: 1000, mode: .ordinal)
        #expect(all.entries.map(\.playerID) == sorted.map(\.player), "\(context)")
        #expect(all.boardSize == UInt64(sorted.count), "\(context)")
        let defaultRanks = try await client.top(board: board, limit: 1000)
        #expect(defaultRanks.entries.map(\.rank) == sorted.map { ranks[$0.player]! }, "\(context)")
        // Pages at every offset step.
        for offset in stride(from: 0, to: sorted.count + 3, by: 7) {
            let page = try await client.top(board: board, limit: 5, offset: UInt64(offset))
            let expected = sorted.dropFirst(offset).prefix(5)
            #expect(page.entries.map(\.playerID) == expected.map(\.player), "\(context) offset \(offset)")
            #expect(page.entries.map(\.rank) == expected.map { ranks[$0.player]! }, "\(context) offset \(offset)")
        }
        // Ranks, around and entries for some players.
        let players = Array(model.entries.keys).sorted()
        for _ in 0..<8 {
            guard !players.isEmpty else { break }
            let player = players[Int(random.next(below: UInt64(players.count)))]
            let rank = try await client.rank(board: board, player: player)
            #expect(rank.entry.rank == ranks[player], "\(context) rank \(player)")
            let position = sorted.firstIndex { $0.player == player }!
            let before = Int(random.next(below: 4))
            let after = Int(random.next(below: 4))
            let window = try await client.around(board: board, player: player, before: UInt32(before), after: UInt32(after))
            let expected = sorted[max(0, position - before)...min(sorted.count - 1, position + after)]
            #expect(window.entries.map(\.playerID) == expected.map(\.player), "\(context) around \(player)")
            #expect(window.entries.map(\.rank) == expected.map { ranks[$0.player]! }, "\(context) around \(player)")
        }
        let friends = (0..<10).map { _ in "p\(random.next(below: 90))" }
        let found = try await client.entries(board: board, players: friends)
        let expectedFriends = sorted.filter { friends.contains($0.player) }
        #expect(found.entries.map(\.playerID) == expectedFriends.map(\.player), "\(context) entries")
        #expect(found.entries.map(\.rank) == expectedFriends.map { ranks[$0.player]! }, "\(context) entries")
        #expect(Set(found.missingPlayerIDs) == Set(friends.filter { model.entries[$0] == nil }), "\(context)")
        let low = Int64(random.next(below: 10)) - 5
        let high = low + Int64(random.next(below: 6))
        let counted = try await client.count(board: board, minScore: low, maxScore: high)
        #expect(counted.count == UInt64(sorted.filter { $0.score >= low && $0.score <= high }.count), "\(context) count")
    }
}

