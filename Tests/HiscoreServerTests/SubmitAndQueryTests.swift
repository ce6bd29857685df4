import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreWire
import Testing

@Suite("Submit and query over a real socket")
struct SubmitAndQueryTests {
    @Test("a descending board ranks higher scores first and auto-creates on first submit")
    func descendingBoard() async throws {
        try await withClient { client, _ in
            let first = try await client.submit(board: "weekly", player: "alice", score: 100)
            #expect(first.created && first.changed && first.previousRank == 0 && first.entry.rank == 1)
            _ = try await client.submit(board: "weekly", player: "bob", score: 300)
            let carol = try await client.submit(board: "weekly", player: "carol", score: 200)
            #expect(carol.entry.rank == 2)

            let top = try await client.top(board: "weekly", limit: 10)
            #expect(top.entries.map(\.playerID) == ["bob", "carol", "alice"])
            #expect(top.entries.map(\.rank) == [1, 2, 3])
            #expect(top.boardSize == 3)

            let info = try await client.describeBoard("weekly")
            #expect(info.config == BoardConfig.defaultConfig(id: "weekly"))
            #expect(info.size == 3)
        }
    }

    @Test("a full board refuses new players only: updates go on, and a removal makes room", arguments: [1, 2])
    func fullBoard(shards: Int) async throws {
        try await withClient(shards: shards) { client, _ in
            try await client.createBoard(BoardConfig(id: "small", limits: BoardLimits(maxEntries: 3, maxMetadataBytes: 256)))
            for (index, player) in ["a", "b", "c"].enumerated() {
                #expect(try await client.submit(board: "small", player: player, score: Int64(10 * index)).created)
            }
            let message = await expectStatus(.resourceExhausted) { _ = try await client.submit(board: "small", player: "d", score: 99) }
            #expect(message.contains("is full"), "\(message)")
            let update = try await client.submit(board: "small", player: "a", score: 100)
            #expect(update.changed && update.entry.rank == 1 && update.previousRank == 3)
            #expect(try await client.describeBoard("small").size == 3, "the refused player was not counted")
            _ = try await client.removePlayer(board: "small", player: "b")
            let admitted = try await client.submit(board: "small", player: "d", score: 5)
            #expect(admitted.created && admitted.entry.rank == 3)
            _ = await expectStatus(.resourceExhausted) { _ = try await client.submit(board: "small", player: "e", score: 1) }
        }
    }

    /// Both shards reserve room for new players at once; a reservation refused at the limit
    /// must never show (found by a race hunt: describe_board read 51 on a board of 50).
    @Test("a full board amid new players never reports more than max_entries")
    func fullBoardSizeNeverExceedsMax() async throws {
        try await withServer { server in
            let admin = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            try await admin.createBoard(BoardConfig(id: "full", limits: BoardLimits(maxEntries: 50)))
            _ = try await admin.submitBatch((0..<50).map { SubmitRequest(boardID: "full", playerID: "p\($0)", score: Int64($0)) })
            // The writers' new players are all refused: the board stays full.
            try await whileWritingNewPlayers(port: server.localPort, board: "full", writers: 3, batch: 50, score: { _ in 1 }) {
                var seen: [UInt64] = []
                for _ in 0..<2000 {
                    let size = try await admin.describeBoard("full").size
                    if size != 50 { seen.append(size) }
                }
                #expect(seen.isEmpty, "sizes other than 50 on a full board of 50: \(seen.prefix(10)) (\(seen.count) of 2000)")
            }
            try await admin.close()
        }
    }

    @Test("best keeps the better score; a worse submit changes nothing")
    func bestOperator() async throws {
        try await withClient { client, _ in
            _ = try await client.submit(board: "b", player: "p1", score: 50)
            _ = try await client.submit(board: "b", player: "p2", score: 70)
            let worse = try await client.submit(board: "b", player: "p1", score: 10)
            #expect(!worse.changed && worse.entry.score == 50 && worse.previousRank == 2 && worse.entry.rank == 2)
            let better = try await client.submit(board: "b", player: "p1", score: 90)
            #expect(better.changed && better.previousRank == 2 && better.entry.rank == 1 && better.entry.score == 90)
        }
    }

    @Test("a submit with skip_ranks writes as a ranked one does and answers no ranks", arguments: [1, 2])
    func unrankedSubmits(shards: Int) async throws {
        try await withClient(shards: shards) { client, _ in
            // Ranked and unranked submits of the same players in the same order, on two boards.
            let moves: [(player: String, score: Int64)] = [("a", 10), ("b", 30), ("c", 20), ("a", 40), ("b", 5), ("d", 30)]
            for (player, score) in moves {
                let ranked = try await client.submit(board: "ranked", player: player, score: score)
                let unranked = try await client.submit(board: "unranked", player: player, score: score, skipRanks: true)
                #expect(unranked.entry.rank == 0 && unranked.previousRank == 0, "\(player) \(score)")
                #expect(unranked.created == ranked.created && unranked.changed == ranked.changed, "\(player) \(score)")
                #expect(unranked.entry.score == ranked.entry.score && unranked.entry.playerID == player)
            }
            let rankedTop = try await client.top(board: "ranked", limit: 10).entries
            let unrankedTop = try await client.top(board: "unranked", limit: 10).entries
            #expect(unrankedTop.map(\.playerID) == rankedTop.map(\.playerID))
            #expect(unrankedTop.map(\.score) == [40, 30, 30, 20])
            #expect(try await client.rank(board: "unranked", player: "d").entry.rank == 3)

            // In a batch, each item chooses; ranked items count the unranked ones applied before
            // them, and each gets its own counts.
            let results = try await client.submitBatch([
                SubmitRequest(boardID: "unranked", playerID: "e", score: 50, skipRanks: true),
                SubmitRequest(boardID: "unranked", playerID: "f", score: 45),
                SubmitRequest(boardID: "unranked", playerID: "c", score: 1, skipRanks: true),
                SubmitRequest(boardID: "unranked", playerID: "g", score: 35),
            ])
            #expect(results.map(\.status.code) == [.ok, .ok, .ok, .ok])
            #expect(results[0].response?.entry.rank == 0 && results[0].response?.created == true)
            #expect(results[1].response?.entry.rank == 2 && results[1].response?.created == true)
            #expect(results[2].response?.entry.rank == 0 && results[2].response?.changed == false, "best kept 20")
            #expect(results[3].response?.entry.rank == 4 && results[3].response?.previousRank == 0, "e, f and a beat 35")
            #expect(try await client.rank(board: "unranked", player: "e").entry.rank == 1)
        }
    }

    @Test("set, increment and decrement operators, with saturation at the Int64 bounds")
    func otherOperators() async throws {
        try await withClient { client, _ in
            try await client.createBoard(BoardConfig(id: "set", writeOperator: .set))
            _ = try await client.submit(board: "set", player: "p", score: 90)
            let lowered = try await client.submit(board: "set", player: "p", score: 5)
            #expect(lowered.changed && lowered.entry.score == 5)

            try await client.createBoard(BoardConfig(id: "inc", writeOperator: .increment))
            _ = try await client.submit(board: "inc", player: "p", score: 7)
            let added = try await client.submit(board: "inc", player: "p", score: 8)
            #expect(added.entry.score == 15)
            let saturated = try await client.submit(board: "inc", player: "p", score: .max)
            #expect(saturated.entry.score == .max)

            try await client.createBoard(BoardConfig(id: "dec", writeOperator: .decrement))
            let fromZero = try await client.submit(board: "dec", player: "p", score: 3)
            #expect(fromZero.entry.score == -3)
            let floor = try await client.submit(board: "dec", player: "p", score: .max)
            #expect(floor.entry.score == .min)
        }
    }

    @Test("an ascending board ranks lower scores first; subscores break ties in their own order")
    func ascendingWithSubscore() async throws {
        try await withClient { client, _ in
            try await client.createBoard(BoardConfig(id: "laps", scoreOrder: .ascending, subscoreOrder: .ascending))
            _ = try await client.submit(board: "laps", player: "slow", score: 70_000)
            _ = try await client.submit(board: "laps", player: "fast", score: 61_000, subscore: 9)
            _ = try await client.submit(board: "laps", player: "faster", score: 61_000, subscore: 2)
            let top = try await client.top(board: "laps")
            #expect(top.entries.map(\.playerID) == ["faster", "fast", "slow"])
            // best on an ascending board keeps the lower score
            let worse = try await client.submit(board: "laps", player: "slow", score: 80_000)
            #expect(!worse.changed && worse.entry.score == 70_000)
        }
    }

    @Test("ties: ordinal by arrival, competition 1224, dense 1223")
    func tieModes() async throws {
        try await withClient(shards: 3) { client, _ in
            try await client.createBoard(BoardConfig(id: "comp", rankMode: .competition))
            try await client.createBoard(BoardConfig(id: "dense", rankMode: .dense))
            for board in ["comp", "dense"] {
                _ = try await client.submit(board: board, player: "a", score: 40)
                _ = try await client.submit(board: board, player: "b", score: 30)
                _ = try await client.submit(board: board, player: "c", score: 30)
                _ = try await client.submit(board: board, player: "d", score: 10)
            }
            let ordinal = try await client.top(board: "comp", mode: .ordinal)
            #expect(ordinal.entries.map(\.playerID) == ["a", "b", "c", "d"])
            #expect(ordinal.entries.map(\.rank) == [1, 2, 3, 4])
            #expect(try await client.top(board: "comp").entries.map(\.rank) == [1, 2, 2, 4])
            #expect(try await client.top(board: "dense").entries.map(\.rank) == [1, 2, 2, 3])
            #expect(try await client.rank(board: "comp", player: "c").entry.rank == 2)
            #expect(try await client.rank(board: "dense", player: "d").entry.rank == 3)
            #expect(try await client.top(board: "comp", limit: 2, offset: 2).entries.map(\.rank) == [2, 4])
            #expect(try await client.top(board: "dense", limit: 2, offset: 2).entries.map(\.rank) == [2, 3])
            #expect(try await client.around(board: "comp", player: "c", before: 1, after: 1).entries.map(\.rank) == [2, 2, 4])
            await expectStatus(.failedPrecondition) { _ = try await client.rank(board: "comp", player: "a", mode: .dense) }
        }
    }

    @Test("around returns before better entries, the player, then after worse ones")
    func around() async throws {
        try await withClient(shards: 3) { client, _ in
            for index in 0..<20 { _ = try await client.submit(board: "r", player: "p\(index)", score: Int64(index * 10)) }
            let window = try await client.around(board: "r", player: "p10", before: 2, after: 3)
            #expect(window.entries.map(\.playerID) == ["p12", "p11", "p10", "p9", "p8", "p7"])
            #expect(window.entries.map(\.rank) == [8, 9, 10, 11, 12, 13])
            let nearTop = try await client.around(board: "r", player: "p18", before: 5, after: 1)
            #expect(nearTop.entries.map(\.playerID) == ["p19", "p18", "p17"])
            await expectStatus(.notFound) { _ = try await client.around(board: "r", player: "nobody") }
        }
    }

    @Test("entries of a friends list carry global ranks and list the missing ids")
    func friends() async throws {
        try await withClient(shards: 4) { client, _ in
            for index in 0..<50 { _ = try await client.submit(board: "f", player: "p\(index)", score: Int64(index)) }
            let result = try await client.entries(board: "f", players: ["p3", "ghost", "p40", "p3", "p10"])
            #expect(result.entries.map(\.playerID) == ["p40", "p10", "p3"])
            #expect(result.entries.map(\.rank) == [10, 40, 47])
            #expect(result.missingPlayerIDs == ["ghost"])
        }
    }

    @Test("count by inclusive score range")
    func count() async throws {
        try await withClient(shards: 2) { client, _ in
            for index in 0..<100 { _ = try await client.submit(board: "c", player: "p\(index)", score: Int64(index)) }
            #expect(try await client.count(board: "c").count == 100)
            #expect(try await client.count(board: "c", minScore: 10, maxScore: 19).count == 10)
            #expect(try await client.count(board: "c", minScore: 95).count == 5)
            #expect(try await client.count(board: "c", maxScore: -1).count == 0)
            await expectStatus(.invalidArgument) { _ = try await client.count(board: "c", minScore: 5, maxScore: 4) }
        }
    }

    @Test("a batch whose answer could exceed max_frame_bytes is refused before anything is written")
    func batchAnswerBound() async throws {
        try await withClient { client, _ in
            try await client.createBoard(BoardConfig(id: "fat", limits: BoardLimits(maxMetadataBytes: 4096)))
            let metadata = [UInt8](repeating: 1, count: 4096)
            for first in stride(from: 0, to: 1000, by: 200) {  // 200 x 4 KiB: requests under 1 MiB
                let results = try await client.submitBatch((first..<(first + 200)).map {
                    SubmitRequest(boardID: "fat", playerID: "p\($0)", score: 1, metadata: metadata)
                })
                #expect(results.allSatisfy { $0.status.code == .ok })
            }
            // A small request (no metadata: the stored 4 KiB are kept) whose 1000 answers would
            // each carry 4 KiB of metadata: ~4.2 MB, over the 1 MiB frame.
            let raises = (0..<1000).map { SubmitRequest(boardID: "fat", playerID: "p\($0)", score: 2) }
            let message = await expectStatus(.resourceExhausted) { _ = try await client.submitBatch(raises) }
            #expect(message.contains("send at most 249"), "\(message)")  // 1,048,576 / (96 + 3 + 4 + 4096)
            #expect(try await client.top(board: "fat", limit: 1).entries.first?.score == 1, "a refused batch wrote")
            let fitting = try await client.submitBatch(Array(raises.prefix(249)))
            #expect(fitting.count == 249 && fitting.allSatisfy { $0.status.code == .ok })
            // Boards with the default 256-byte limit take full batches.
            let plain = (0..<1000).map { SubmitRequest(boardID: "plain", playerID: "p\($0)", score: 1, metadata: [1]) }
            #expect(try await client.submitBatch(plain).count == 1000)
        }
    }

    /// With --max-frame-bytes 1024 a board allowing 4 KiB of metadata was created, and its calls
    /// then refused with "ask for at most 1 players" for one player, "send at most 0 per batch".
    @Test("small frames: a board whose one entry cannot fit an answer is refused at creation; the boards that fit answer one entry")
    func smallFramesRefuseBoardsThatCannotAnswer() async throws {
        try await withClient(configure: { $0.limits.maxFrameBytes = 1024 }) { client, _ in
            let refused = await expectStatus(.invalidArgument) {
                try await client.createBoard(BoardConfig(id: "fat", limits: BoardLimits(maxMetadataBytes: 4096)))
            }
            #expect(refused.contains("more than this server's max_frame_bytes (1024)") && refused.contains("at most 576"), "\(refused)")
            // The largest that fits: an entry with a 128-byte id and all its metadata answers.
            try await client.createBoard(BoardConfig(id: "fits", limits: BoardLimits(maxMetadataBytes: 576)))
            let id = String(repeating: "p", count: 128)
            let metadata = [UInt8](repeating: 7, count: 576)
            _ = try await client.submit(board: "fits", player: id, score: 1, metadata: metadata)
            #expect(try await client.entries(board: "fits", players: [id]).entries.first?.metadata == metadata)
            #expect(try await client.top(board: "fits", limit: 1).entries.count == 1)
        }
    }

    /// Each shard built its share of a page (metadata copied) before the answer's frame bound
    /// refused it: a 1000-entry page of a 4 KiB board made ~8 MB of copies per call. Reads whose
    /// answer could exceed max_frame_bytes on their board are now refused before they run.
    @Test("top, around, entries and streams whose answers could exceed max_frame_bytes on their board are refused before they run")
    func readAnswerBound() async throws {
        try await withClient(shards: 2) { client, _ in
            try await client.createBoard(BoardConfig(id: "fat", limits: BoardLimits(maxMetadataBytes: 4096)))
            let metadata = [UInt8](repeating: 7, count: 4096)
            for first in stride(from: 0, to: 400, by: 200) {
                _ = try await client.submitBatch((first..<(first + 200)).map {
                    SubmitRequest(boardID: "fat", playerID: "p\($0)", score: Int64($0), metadata: metadata)
                })
            }
            // (1,048,576 - 256) / (64 + 128 + 4096) = 244 entries a frame.
            let page = await expectStatus(.resourceExhausted) { _ = try await client.top(board: "fat", limit: 1000) }
            // The refusal names the call (a description made only when it refuses).
            #expect(page.contains("at most 244") && page.contains("a page of 1000"), "\(page)")
            let cursorPage = await expectStatus(.resourceExhausted) { _ = try await client.top(board: "fat", limit: 245, after: []) }
            #expect(cursorPage.contains("at most 244"), "\(cursorPage)")
            let fitting = try await client.top(board: "fat", limit: 244)
            #expect(fitting.entries.count == 244 && fitting.entries.allSatisfy { $0.metadata == metadata })
            #expect(try await client.top(board: "fat", limit: 244, offset: 100).entries.first?.rank == 101)
            #expect(try await client.top(board: "fat").entries.count == 10)  // the default page fits
            let around = await expectStatus(.resourceExhausted) {
                _ = try await client.around(board: "fat", player: "p200", before: 122, after: 122)
            }
            #expect(around.contains("at most 244") && around.contains("122 before and 122 after a player"), "\(around)")
            #expect(try await client.around(board: "fat", player: "p200", before: 121, after: 122).entries.count == 244)
            let ids = (0..<400).map { "p\($0)" }
            let entries = await expectStatus(.resourceExhausted) { _ = try await client.entries(board: "fat", players: ids) }
            #expect(entries.contains("players per call"), "\(entries)")
            #expect(try await client.entries(board: "fat", players: Array(ids.prefix(200))).entries.count == 200)
            var streamStatus: StatusCode?
            do {
                for try await _ in client.subscribe(board: "fat", target: .top(300)) { break }
            } catch let error as HiscoreError {
                streamStatus = error.status.code
            }
            #expect(streamStatus == .resourceExhausted)
            // Boards at the default 256 bytes of metadata answer full pages.
            _ = try await client.submitBatch((0..<1000).map { SubmitRequest(boardID: "plain", playerID: "q\($0)", score: Int64($0)) })
            #expect(try await client.top(board: "plain", limit: 1000).entries.count == 1000)
        }
    }

    @Test("offset pages on a board whose shards hold disjoint score ranges: exact, and bounded by max_page_fallback_keys")
    func unevenShards() async throws {
        // Players that hash to shard 0 get the high scores, shard 1's the low ones: the windows
        // planned from an even spread miss the page, and the plan falls back to every key.
        var high: [String] = []
        var low: [String] = []
        var index = 0
        while high.count < 300 || low.count < 300 {
            let id = "u\(index)"
            if PlayerHash.hash(id) % 2 == 0 { if high.count < 300 { high.append(id) } } else if low.count < 300 { low.append(id) }
            index += 1
        }
        for limit in [1000, 100] {
            try await withClient(shards: 2, configure: { $0.limits.maxPageFallbackKeys = limit }) { client, _ in
                let submits = high.enumerated().map { SubmitRequest(boardID: "u", playerID: $0.element, score: Int64(10_000 + $0.offset)) }
                    + low.enumerated().map { SubmitRequest(boardID: "u", playerID: $0.element, score: Int64($0.offset)) }
                _ = try await client.submitBatch(submits)
                if limit == 100 {
                    let message = await expectStatus(.resourceExhausted) { _ = try await client.top(board: "u", limit: 50, offset: 250) }
                    #expect(message.contains("next_cursor"))
                    return
                }
                let page = try await client.top(board: "u", limit: 50, offset: 250)
                // Ranks 251-300 are shard 0's lowest 50: scores 10,049 down to 10,000.
                #expect(page.entries.map(\.score) == (0..<50).map { Int64(10_049 - $0) })
                #expect(page.entries.map(\.rank) == (251...300).map { UInt64($0) })
                let across = try await client.top(board: "u", limit: 50, offset: 275)  // spans both shards
                let expected: [Int64] = (0..<25).map { Int64(10_024 - $0) } + (0..<25).map { Int64(299 - $0) }
                #expect(across.entries.map(\.score) == expected)
            }
        }
    }

    @Test("an offset page whose shards interleave beyond the first, tight windows is exact")
    func pageAfterTightWindowsMiss() async throws {
        // The order of PartitionMergeTests.wideWindowsAfterTightMiss: the top 250 hold 160 of
        // shard 0's players and 90 of shard 1's, so the first windows miss the page at 250.
        var ids: [[String]] = [[], []]
        var index = 0
        while ids[0].count < 300 || ids[1].count < 300 {
            let id = "w\(index)"
            let shard = Int(PlayerHash.hash(id) % 2)
            if ids[shard].count < 300 { ids[shard].append(id) }
            index += 1
        }
        var owners = Array(repeating: 0, count: 70)
        for _ in 0..<(90 + 25 + 115) { owners += [0, 1] }
        owners += Array(repeating: 1, count: 70)
        var next = [0, 0]
        let order = owners.map { owner -> String in
            defer { next[owner] += 1 }
            return ids[owner][next[owner]]
        }
        try await withClient(shards: 2) { client, _ in
            let submits = order.enumerated().map { SubmitRequest(boardID: "w", playerID: $0.element, score: Int64(1000 - $0.offset)) }
            _ = try await client.submitBatch(submits)
            for offset in [250, 240, 260] {
                let page = try await client.top(board: "w", limit: 50, offset: UInt64(offset))
                #expect(page.entries.map(\.playerID) == Array(order[offset..<(offset + 50)]), "offset \(offset)")
                #expect(page.entries.map(\.rank) == ((offset + 1)...(offset + 50)).map { UInt64($0) })
            }
        }
    }

    @Test("paging by offset and by cursor walks the whole board in order")
    func paging() async throws {
        try await withClient(shards: 3) { client, _ in
            let submits = (0..<500).map { SubmitRequest(boardID: "pg", playerID: "p\($0)", score: Int64($0 % 137)) }
            let results = try await client.submitBatch(submits)
            #expect(results.allSatisfy { $0.status.code == .ok })
            let byCursor = try await walkByCursor(client, board: "pg", pageSize: 64).entries
            #expect(byCursor.count == 500)
            #expect(byCursor.map(\.rank) == (1...500).map { UInt64($0) })
            var byOffset: [WireEntry] = []
            for offset in stride(from: 0, to: 500, by: 50) {
                byOffset += try await client.top(board: "pg", limit: 50, offset: UInt64(offset)).entries
            }
            #expect(byOffset == byCursor)
            for pair in zip(byCursor, byCursor.dropFirst()) {
                #expect(pair.0.score >= pair.1.score)
                if pair.0.score == pair.1.score { #expect(pair.0.reachedAtMicros < pair.1.reachedAtMicros) }
            }
        }
    }

    @Test("a cursor pages only the board incarnation it came from: a reset or re-created board refuses it")
    func cursorBelongsToItsIncarnation() async throws {
        try await withClient(shards: 2) { client, _ in
            _ = try await client.submitBatch((0..<30).map { SubmitRequest(boardID: "cur", playerID: "p\($0)", score: Int64($0)) })
            _ = try await client.submitBatch((0..<30).map { SubmitRequest(boardID: "other", playerID: "p\($0)", score: Int64($0)) })
            let first = try await client.top(board: "cur", limit: 10)
            #expect(first.nextCursor.count == 41)  // format, incarnation, board identity, rank key
            #expect(try await client.top(board: "cur", limit: 10, after: first.nextCursor).entries.first?.rank == 11)
            // Another board: refused, not read as a position on it.
            let elsewhere = await expectStatus(.invalidArgument) {
                _ = try await client.top(board: "other", limit: 10, after: first.nextCursor)
            }
            #expect(elsewhere.contains("another board or season"))
            // A season reset: the live board refuses the old period's cursor; the period itself
            // (period_id) still pages with it.
            let reset = try await client.resetBoard("cur")
            _ = try await client.submit(board: "cur", player: "new", score: 1_000)
            await expectStatus(.invalidArgument) { _ = try await client.top(board: "cur", limit: 10, after: first.nextCursor) }
            let archived = try await client.top(board: "cur", limit: 10, after: first.nextCursor, period: reset.archivedPeriodID)
            #expect(archived.entries.map(\.playerID) == (10..<20).reversed().map { "p\($0)" })
            // Deleted and created again: refused too.
            let live = try await client.top(board: "cur", limit: 1)
            _ = try await client.deleteBoard("cur")
            _ = try await client.submit(board: "cur", player: "again", score: 5)
            await expectStatus(.invalidArgument) { _ = try await client.top(board: "cur", limit: 1, after: live.nextCursor) }
            // Bytes that were never a cursor.
            await expectStatus(.invalidArgument) { _ = try await client.top(board: "cur", limit: 1, after: Array(repeating: 7, count: 24)) }
        }
    }

    @Test("metadata is stored, kept when absent, replaced when present")
    func metadata() async throws {
        try await withClient { client, _ in
            _ = try await client.submit(board: "m", player: "p", score: 1, metadata: [1, 2, 3])
            _ = try await client.submit(board: "m", player: "p", score: 2)
            #expect(try await client.rank(board: "m", player: "p").entry.metadata == [1, 2, 3])
            _ = try await client.submit(board: "m", player: "p", score: 3, metadata: [9])
            #expect(try await client.rank(board: "m", player: "p").entry.metadata == [9])
            await expectStatus(.invalidArgument) {
                _ = try await client.submit(board: "m", player: "p", score: 4, metadata: [UInt8](repeating: 0, count: 257))
            }
        }
    }

    @Test("remove player reports its rank and later queries say NOT_FOUND")
    func removePlayer() async throws {
        try await withClient { client, _ in
            _ = try await client.submit(board: "rm", player: "a", score: 5)
            _ = try await client.submit(board: "rm", player: "b", score: 9)
            let removed = try await client.removePlayer(board: "rm", player: "a")
            #expect(removed.rank == 2 && removed.score == 5)
            await expectStatus(.notFound) { _ = try await client.rank(board: "rm", player: "a") }
            await expectStatus(.notFound) { try await client.removePlayer(board: "rm", player: "a") }
            #expect(try await client.describeBoard("rm").size == 1)
        }
    }

    @Test("extreme scores order correctly")
    func extremeScores() async throws {
        try await withClient { client, _ in
            try await client.createBoard(BoardConfig(id: "x", writeOperator: .set))
            _ = try await client.submit(board: "x", player: "min", score: .min)
            _ = try await client.submit(board: "x", player: "max", score: .max)
            _ = try await client.submit(board: "x", player: "zero", score: 0)
            _ = try await client.submit(board: "x", player: "neg", score: -1)
            #expect(try await client.top(board: "x").entries.map(\.playerID) == ["max", "zero", "neg", "min"])
        }
    }
}
