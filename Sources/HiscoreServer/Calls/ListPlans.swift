import HiscoreCore
import HiscoreWire

/// Turns a run of consecutive board entries into a response once the rank of its first entry is
/// known: in ordinal mode that is free; otherwise one more phase counts what beats the first
/// entry, and the rest follow from ties inside the run.
private struct RunRanker {
    let ranking: RankResolution

    func firstRankStep(_ run: [LeaderboardEntry], firstOrdinal: UInt64) -> PlanStep? {
        guard ranking.mode != .ordinal, firstOrdinal > 1, !run.isEmpty else { return nil }
        return ranking.countOperations(for: run.prefix(1))
    }

    func entries(_ run: [LeaderboardEntry], firstOrdinal: UInt64, countResults: ShardResults?) -> [WireEntry] {
        let ranks = ranks(run, firstOrdinal: firstOrdinal, countResults: countResults)
        return zip(run, ranks).map { WireEntry($0.0, rank: $0.1) }
    }

    func ranks(_ run: [LeaderboardEntry], firstOrdinal: UInt64, countResults: ShardResults?) -> [UInt64] {
        let firstRank = countResults.map { ranking.firstRank(from: $0) } ?? firstOrdinal
        return ranking.ranksOfRun(run, firstOrdinal: firstOrdinal, firstRank: firstRank)
    }
}

/// Top N, at an offset or after a cursor.
///
/// Offset 0: each shard returns its best `limit`; a k-way merge picks the global best.
/// Offset k > 0 asked before: the page's first key when it was last answered (`PageAnchors`)
/// places one run of entries per shard around it (`PartitionMerge.anchoredRun`); when the runs
/// prove the page, it is answered from them in one phase. Otherwise, or the first time:
/// Offset k > 0: asking every shard for k + limit entries would cost O(k) per page, so each shard
/// is asked for the keys in a window of local ranks around k/S (players are spread by hash, so
/// local ranks track k/S closely); the merge proves from the window bounds which local ranks of
/// each shard hold global positions k..<k+limit, and a second phase fetches exactly those
/// entries. Building an entry (player id, metadata) costs far more than reading a key, so this
/// builds `limit` entries instead of every window's ~(limit/S + 4 standard deviations). A proof
/// that fails asks again with wider windows (`PartitionMerge.WindowSlack`), then for
/// every key up to the page's end (a skewed board), then falls back to full windows.
/// Cursor: each shard returns `limit` entries after the cursor key plus how many are at or before
/// it, which gives the first rank.
/// The top itself (offset 0) is answered from the board's `TopCache` when it holds it, and kept
/// there after it is computed.
final class TopPlan: CallPlan {
    private enum Stage {
        case start
        /// Runs of entries around the page's anchor key were asked for.
        case anchored(RankKey)
        /// The runs missed the page: the ranges where they showed it now stands were asked for.
        case rerun([Range<Int>])
        case keyWindows([Range<Int>], PartitionMerge.WindowSlack)
        /// The windowed proof failed: every shard's keys up to offset + limit.
        case everyKey([Range<Int>])
        /// The proven ranges were asked for: `requested` entries in all.
        case pageRanges(requested: Int)
        case fullWindows
        case afterCursor(RankKey)
        case ranking(run: [LeaderboardEntry], firstOrdinal: UInt64)
    }

    private var callID: UInt64
    private var ranking: RankResolution
    private var limit: Int
    private var start: PageStart
    private var maxFallbackKeys: Int
    private var stage = Stage.start
    /// Set when this plan computes the top (offset 0): the cache's write count at the start.
    private var fillToken: UInt64?
    /// A shard answered fewer of its proven page entries than asked: a removal between the
    /// phases shifted its order. The page may then be short while the board goes on.
    private var sliceCameShort = false
    /// Runs around the page's anchor (at once or after a rerun) proved the page.
    private var anchorReached = false

    /// Whether the answer is for the wire — a top (offset 0) packed once (`.packed`), any other
    /// page in the engine's form (`.rankedTop`) — or `.top` for the server's own readers
    /// (stream refreshes look inside it).
    private let packsTop: Bool

    init(
        callID: UInt64, ranking: RankResolution, limit: Int, start: PageStart,
        maxFallbackKeys: Int = ServerLimits().maxPageFallbackKeys, packsTop: Bool = true
    ) {
        self.callID = callID
        self.ranking = ranking
        self.limit = limit
        self.start = start
        self.maxFallbackKeys = maxFallbackKeys
        self.packsTop = packsTop
    }

    /// Makes a finished plan (see `PlanPool`) a new one for the wire.
    func reset(callID: UInt64, ranking: RankResolution, limit: Int, start: PageStart, maxFallbackKeys: Int) {
        assert(packsTop, "only plans answering the wire are pooled")
        self.callID = callID
        self.ranking = ranking
        self.limit = limit
        self.start = start
        self.maxFallbackKeys = maxFallbackKeys
        stage = .start
        fillToken = nil
        sliceCameShort = false
        anchorReached = false
    }

    /// Pooled only when it answers the wire (a stream refresh's plan is not handed back). The
    /// stage goes first: a finished page may still hold its entries there.
    func recycle(into pool: PlanPool) {
        guard packsTop else { return }
        stage = .start
        pool.recycle(self)
    }

    private var board: BoardHandle { ranking.board }
    /// The board's shards, as a range: no array per call.
    private var shards: Range<Int> { board.shardRange(shardCount: ranking.shardCount) }

    func advance(_ results: ShardResults) -> PlanStep {
        switch stage {
        case .start:
            switch start {
            case .cursor(let bytes):
                guard let cursor = PageCursor(bytes: bytes) else {
                    return .finished(.failure(callID: callID, Status(.invalidArgument, "cursor is not a page cursor of this server")))
                }
                guard cursor.belongs(to: board) else {
                    return .finished(.failure(callID: callID, Status(
                        .invalidArgument,
                        "cursor is from another board or season of \(board.config.id) (reset, deleted and created again, or a restart of a server without a data directory since): page again from offset 0")))
                }
                let key = cursor.key
                stage = .afterCursor(key)
                return .run(shards.map { ShardCall(shard: $0, operation: .entriesAfter(BoardRef(board), key: key, limit: limit)) })
            case .offset(let rawOffset):
                let offset = Int(clamping: rawOffset)
                if offset == 0 {
                    fillToken = board.topCache.fillToken
                    let boardSize = UInt64(max(0, board.size))
                    if packsTop, let packed = board.topCache.packed(mode: ranking.mode, limit: limit, boardSize: boardSize) {
                        return .finished(.ok(callID, .packed(packed)))
                    }
                    if let cached = board.topCache.lookup(mode: ranking.mode, limit: limit) {
                        return respond(Array(cached.entries), ranks: Array(cached.ranks))
                    }
                }
                if shards.count == 1 {
                    stage = .fullWindows
                    return .runOne(ShardCall(
                        shard: shards.lowerBound, operation: .entriesAtRanks(BoardRef(board), range: offset..<(offset + limit))))
                }
                if offset == 0 {
                    stage = .fullWindows
                    return .run(fullWindowCalls(offset: offset))
                }
                if let anchor = board.pageAnchors.key(offset: offset) {
                    let run = PartitionMerge.anchoredRun(limit: limit, partitions: shards.count)
                    stage = .anchored(anchor)
                    return .run(shards.map {
                        ShardCall(shard: $0, operation: .entryRun(BoardRef(board), key: anchor, before: run.before, count: run.count))
                    })
                }
                return evenKeyWindowCalls(offset: offset)
            }
        case .anchored(let anchor):
            let offset = Int(clamping: offsetValue)
            var runs: [EntryRun] = []
            runs.reserveCapacity(shards.count)
            for case .entryRun(let run) in results { runs.append(run) }
            guard runs.count == shards.count else { return evenKeyWindowCalls(offset: offset) }
            if let step = answer(from: runs, offset: offset) { return step }
            // Writes since the anchor was recorded moved the page past the runs' margins: fetch
            // it from where the runs show it now stands, or, when it moved too far for that,
            // take the windowed path (and skip this anchor for a while).
            if let ranges = PartitionMerge.rerunRanges(after: runs, anchor: anchor, offset: offset, limit: limit) {
                stage = .rerun(ranges)
                return .run(zip(shards, ranges).map { ShardCall(shard: $0.0, operation: .entriesAtRanks(BoardRef(board), range: $0.1)) })
            }
            return runsMissed(runs, offset: offset)
        case .rerun(let ranges):
            let offset = Int(clamping: offsetValue)
            var runs: [EntryRun] = []
            runs.reserveCapacity(shards.count)
            for (range, result) in zip(ranges, results) {
                guard case .entries(let entries, let size) = result else { break }
                runs.append(EntryRun(localStart: range.lowerBound, entries: entries, partitionSize: size))
            }
            guard runs.count == shards.count else { return evenKeyWindowCalls(offset: offset) }
            if let step = answer(from: runs, offset: offset) { return step }
            // The shards' orders do not interleave as the rerun assumed (shards holding different
            // score ranges): runs will keep missing here.
            return runsMissed(runs, offset: offset)
        case .keyWindows(let windows, _), .everyKey(let windows):
            let offset = Int(clamping: offsetValue)
            let keyWindows = zip(windows.map(\.lowerBound), results).compactMap { window, result -> KeyWindow? in
                guard case .keys(let keys, let size) = result else { return nil }
                return KeyWindow(localStart: window, keys: keys, partitionSize: size)
            }
            if keyWindows.count == shards.count,
                let ranges = PartitionMerge.pageRanges(windows: keyWindows, offset: offset, limit: limit)
            {
                let calls = zip(shards, ranges).compactMap { shard, range in
                    range.isEmpty ? nil : ShardCall(shard: shard, operation: .entriesAtRanks(BoardRef(board), range: range))
                }
                if calls.isEmpty { return rank([], firstOrdinal: UInt64(offset) + 1) }
                stage = .pageRanges(requested: ranges.reduce(0) { $0 + $1.count })
                return .run(calls)
            }
            if case .keyWindows(_, .tight) = stage {
                // The shards' orders interleave less evenly than the tight windows allowed for
                // (one page in ~20): ask again with wider windows, sized from the shards' sizes
                // as they answered.
                let sizes = keyWindows.count == shards.count
                    ? keyWindows.map(\.partitionSize) : Array(repeating: max(0, board.size) / shards.count, count: shards.count)
                return keyWindowCalls(offset: offset, partitionSizes: sizes, slack: .wide)
            }
            if case .keyWindows(_, .wide) = stage {
                // The shards' orders do not interleave as evenly as the windows assumed (a board
                // whose players hash unevenly, or whose shards hold different score ranges): take
                // every key up to the page's end from each shard, 24 bytes a key, and prove again
                // (a proof from rank 0 always holds); only then build the page's entries.
                guard offset + limit <= maxFallbackKeys else {
                    return .finished(.failure(callID: callID, Status(
                        .resourceExhausted,
                        "offset \(offset) on board \(board.config.id) would need more than \(maxFallbackKeys) keys per shard (max_page_fallback_keys): its shards are unevenly filled; page with next_cursor instead")))
                }
                let every = shards.map { _ in 0..<(offset + limit) }
                stage = .everyKey(every)
                return .run(zip(shards, every).map { ShardCall(shard: $0.0, operation: .keysAtRanks(BoardRef(board), range: $0.1)) })
            }
            // Writes between the phases moved the keys: build the entries (bounded as above).
            stage = .fullWindows
            return .run(fullWindowCalls(offset: offset))
        case .pageRanges(let requested):
            // Each shard's part is a run of its local order; writes between the two phases can
            // shift it, which moves the page as any write between two page calls would.
            var slices: [[LeaderboardEntry]] = []
            for case .entries(let entries, _) in results { slices.append(entries) }
            sliceCameShort = slices.reduce(0) { $0 + $1.count } < requested
            return rank(PartitionMerge.mergeTop(slices, limit: limit), firstOrdinal: offsetValue + 1)
        case .fullWindows:
            let offset = Int(clamping: offsetValue)
            var slices: [[LeaderboardEntry]] = []
            for case .entries(let entries, _) in results { slices.append(entries) }
            let merged: [LeaderboardEntry]
            if shards.count == 1 {
                merged = slices.first ?? []  // already the page's range
            } else {
                merged = Array(PartitionMerge.mergeTop(slices, limit: offset + limit).dropFirst(offset))
            }
            return rank(merged, firstOrdinal: UInt64(offset) + 1)
        case .afterCursor:
            var slices: [[LeaderboardEntry]] = []
            var upToCursor = 0
            for case .entriesAfter(let entries, let count) in results {
                slices.append(entries)
                upToCursor += count
            }
            return rank(PartitionMerge.mergeTop(slices, limit: limit), firstOrdinal: UInt64(upToCursor) + 1)
        case .ranking(let run, let firstOrdinal):
            return finish(run, firstOrdinal: firstOrdinal, countResults: results)
        }
    }

    private var offsetValue: UInt64 {
        if case .offset(let offset) = start { return offset }
        return 0
    }

    /// The page proven from runs of entries around its anchor, or nil when they cannot prove it.
    private func answer(from runs: [EntryRun], offset: Int) -> PlanStep? {
        guard let page = PartitionMerge.page(from: runs, offset: offset, limit: limit) else { return nil }
        anchorReached = true
        return rank(page, firstOrdinal: UInt64(offset) + 1)
    }

    /// Runs around the anchor cannot reach the page: skip the anchor for a while
    /// (`PageAnchors.noteFarMiss`) and take the windowed path, sized from the runs' partitions.
    private func runsMissed(_ runs: [EntryRun], offset: Int) -> PlanStep {
        board.pageAnchors.noteFarMiss(offset: offset)
        return keyWindowCalls(offset: offset, partitionSizes: runs.map(\.partitionSize), slack: .tight)
    }

    /// `keyWindowCalls` for shards assumed to hold the board in equal parts (their sizes are not
    /// known before they answer).
    private func evenKeyWindowCalls(offset: Int) -> PlanStep {
        let estimate = max(0, board.size) / shards.count
        return keyWindowCalls(offset: offset, partitionSizes: Array(repeating: estimate, count: shards.count), slack: .tight)
    }

    /// Asks every shard for its keys in the windows planned for an offset page.
    private func keyWindowCalls(offset: Int, partitionSizes: [Int], slack: PartitionMerge.WindowSlack) -> PlanStep {
        let windows = PartitionMerge.planPageWindows(offset: offset, limit: limit, partitionSizes: partitionSizes, slack: slack)
        stage = .keyWindows(windows, slack)
        return .run(zip(shards, windows).map { ShardCall(shard: $0.0, operation: .keysAtRanks(BoardRef(board), range: $0.1)) })
    }

    /// Every shard's entries up to the page's end (a board split over shards; one shard is asked
    /// for the page's own range instead).
    private func fullWindowCalls(offset: Int) -> [ShardCall] {
        assert(shards.count > 1, "a single-shard board asks for the page's range")
        return shards.map { ShardCall(shard: $0, operation: .entriesAtRanks(BoardRef(board), range: 0..<(offset + limit))) }
    }

    private func rank(_ run: [LeaderboardEntry], firstOrdinal: UInt64) -> PlanStep {
        if let step = RunRanker(ranking: ranking).firstRankStep(run, firstOrdinal: firstOrdinal) {
            stage = .ranking(run: run, firstOrdinal: firstOrdinal)
            return step
        }
        return finish(run, firstOrdinal: firstOrdinal, countResults: nil)
    }

    private func finish(_ run: [LeaderboardEntry], firstOrdinal: UInt64, countResults: ShardResults?) -> PlanStep {
        let ranks = RunRanker(ranking: ranking).ranks(run, firstOrdinal: firstOrdinal, countResults: countResults)
        if let fillToken {
            board.topCache.store(
                TopCache.Snapshot(
                    mode: ranking.mode, limit: limit, entries: run, ranks: ranks,
                    threshold: run.count == limit ? run.last?.key : nil),
                token: fillToken)
        }
        return respond(run, ranks: ranks)
    }

    private func respond(_ run: [LeaderboardEntry], ranks: [UInt64]) -> PlanStep {
        if case .offset(let offset) = start, offset > 0, shards.count > 1, let first = run.first {
            board.pageAnchors.record(offset: Int(clamping: offset), key: first.key, anchorReached: anchorReached)
        }
        // An empty cursor says the board ended: not so for a page cut short by a shard's slice.
        let continues = run.count == limit || (sliceCameShort && !run.isEmpty)
        let cursor = continues ? (run.last.map { PageCursor(board: board, key: $0.key).bytes } ?? []) : []
        let boardSize = UInt64(max(0, board.size))
        let ranked = RankedTop(entries: run, ranks: ranks, nextCursor: cursor, boardSize: boardSize)
        // A wire answer is encoded from the engine's entries as they are; the server's own
        // readers (stream refreshes) look inside a `.top`.
        guard packsTop else { return .finished(.ok(callID, .top(ranked.response))) }
        // The top (offset 0) is asked again and again: pack it once for the calls that follow.
        guard let fillToken else { return .finished(.ok(callID, .rankedTop(ranked))) }
        let packed = PackedResult.top(ranked.response)
        board.topCache.keep(packed, mode: ranking.mode, limit: limit, boardSize: boardSize, token: fillToken)
        return .finished(.ok(callID, .packed(packed)))
    }
}

/// Around a player: phase 1 finds the player's key on its shard; phase 2 asks every shard for
/// its nearest `before` better and `after` worse entries around that key (plus its count of
/// better entries, which gives the player's rank); a merge keeps the nearest overall.
final class AroundPlan: CallPlan {
    private let callID: UInt64
    private let ranking: RankResolution
    private let request: AroundRequest
    private var playerEntry: LeaderboardEntry?
    private var pendingRun: (run: [LeaderboardEntry], firstOrdinal: UInt64)?

    init(callID: UInt64, ranking: RankResolution, request: AroundRequest) {
        self.callID = callID
        self.ranking = ranking
        self.request = request
    }

    func advance(_ results: ShardResults) -> PlanStep {
        let board = ranking.board
        if let pendingRun {
            return finish(pendingRun.run, firstOrdinal: pendingRun.firstOrdinal, countResults: results)
        }
        guard let playerEntry else {
            if results.isEmpty {
                let owner = board.shard(for: request.playerID, shardCount: ranking.shardCount)
                return .runOne(ShardCall(shard: owner, operation: .lookupOne(BoardRef(board), playerID: request.playerID, counting: false)))
            }
            guard case .foundOne(let located?) = results.first else {
                return .finished(.failure(
                    callID: callID, CallValidation.playerNotFound(request.playerID, board: board.config.id)))
            }
            self.playerEntry = located.entry
            let owner = board.shard(for: request.playerID, shardCount: ranking.shardCount)
            return .run(board.shardRange(shardCount: ranking.shardCount).map {
                ShardCall(shard: $0, operation: .neighbours(
                    BoardRef(board), key: located.entry.key, before: Int(request.before), after: Int(request.after),
                    centre: $0 == owner ? request.playerID : nil))
            })
        }
        var better: [[LeaderboardEntry]] = []
        var worse: [[LeaderboardEntry]] = []
        better.reserveCapacity(results.count)
        worse.reserveCapacity(results.count)
        var betterCount = 0
        for case .neighbours(let b, let w, let count) in results {
            better.append(b)
            worse.append(w)
            betterCount += count
        }
        let (run, betterTaken) = PartitionMerge.neighbourRun(
            better: better, centre: playerEntry, worse: worse, before: Int(request.before), after: Int(request.after))
        let firstOrdinal = UInt64(betterCount + 1 - betterTaken)
        if let step = RunRanker(ranking: ranking).firstRankStep(run, firstOrdinal: firstOrdinal) {
            pendingRun = (run, firstOrdinal)
            return step
        }
        return finish(run, firstOrdinal: firstOrdinal, countResults: nil)
    }

    private func finish(_ run: [LeaderboardEntry], firstOrdinal: UInt64, countResults: ShardResults?) -> PlanStep {
        let entries = RunRanker(ranking: ranking).entries(run, firstOrdinal: firstOrdinal, countResults: countResults)
        return .finished(.ok(callID, .around(EntriesResponse(
            entries: entries, boardSize: UInt64(max(0, ranking.board.size))))))
    }
}
