import HiscoreClient
import HiscoreCore
import HiscoreWire
import Testing

/// Many connections writing to one board at once. Connections are spread over the server's loops
/// and every batch reaches every shard, so each shard takes trips from several loops at once: a
/// lost increment, a torn tree or a stale count would show in the totals, in the ranks or in the
/// debug builds' invariant checks.
@Suite("Concurrent writers")
struct ConcurrentWritersTests {
    static let clients = 6
    static let rounds = 5
    static let ownPlayers = 120
    static let sharedPlayers = 40

    @Test("increments from many connections are neither lost nor misranked", arguments: [2, 3])
    func concurrentIncrements(shards: Int) async throws {
        try await withServer(shards: shards) { server in
            let admin = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            try await admin.createBoard(BoardConfig(id: "race", writeOperator: .increment))

            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<Self.clients {
                    group.addTask {
                        let connection = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
                        do {
                            for round in 0..<Self.rounds {
                                // Each batch mixes this client's own players with players every
                                // client increments, so two loops write one entry at once.
                                var submits: [SubmitRequest] = []
                                for player in 0..<Self.ownPlayers {
                                    submits.append(SubmitRequest(boardID: "race", playerID: "c\(client)-p\(player)", score: Int64(client + 1)))
                                }
                                for player in 0..<Self.sharedPlayers {
                                    submits.append(SubmitRequest(boardID: "race", playerID: "shared-\(player)", score: 1))
                                }
                                let results = try await connection.submitBatch(submits)
                                for result in results {
                                    #expect(result.response != nil, "round \(round): \(result.status)")
                                }
                                // Reads interleaved with the other clients' writes.
                                _ = try await connection.rank(board: "race", player: "shared-\(round)")
                                _ = try await connection.top(board: "race", limit: 20)
                            }
                            try? await connection.close()
                        } catch {
                            try? await connection.close()
                            throw error
                        }
                    }
                }
                try await group.waitForAll()
            }

            // Every entry exactly once, with the score its increments add up to.
            var expected: [String: Int64] = [:]
            for client in 0..<Self.clients {
                for player in 0..<Self.ownPlayers { expected["c\(client)-p\(player)"] = Int64((client + 1) * Self.rounds) }
            }
            for player in 0..<Self.sharedPlayers { expected["shared-\(player)"] = Int64(Self.clients * Self.rounds) }

            let (listed, boardSize) = try await walkByCursor(admin, board: "race", pageSize: 100)
            #expect(boardSize == UInt64(expected.count))
            #expect(listed.count == expected.count)
            #expect(Set(listed.map(\.playerID)).count == listed.count, "an entry listed twice")
            for entry in listed {
                #expect(entry.score == expected[entry.playerID], "\(entry.playerID): \(entry.score)")
            }
            // Best first, ranks 1, 2, 3, … across the shards' merge.
            for (index, entry) in listed.enumerated() {
                #expect(entry.rank == UInt64(index + 1), "\(entry.playerID) listed at \(index + 1) ranked \(entry.rank)")
                if index > 0 { #expect(listed[index - 1].score >= entry.score) }
            }
            // A player's own rank agrees with the listing.
            for entry in listed.prefix(60) {
                let rank = try await admin.rank(board: "race", player: entry.playerID)
                #expect(rank.entry.rank == entry.rank, "\(entry.playerID)")
            }
            try? await admin.close()
        }
    }
}
