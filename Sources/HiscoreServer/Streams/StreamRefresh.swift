import HiscoreCore
import HiscoreWire
import NIOCore

/// One flush's recomputation: the query plans that refresh every due subscriber at once, and the
/// frames that follow from comparing the results with what each subscriber saw last.
struct StreamRefresh {
    let board: BoardHandle
    let due: [Subscription]
    /// The board's feed backlog from the oldest position among the due feeds on: each feed gets
    /// the part from its own offset (`frames(feeds:)`).
    let feedNotes: [WriteNote]
    /// Note-following player streams that need the shards this time, one plan per rank mode,
    /// each with its streams in the plan's order.
    private let playerRefreshes: [(streams: [Subscription], plan: PlayerRefreshPlan)]
    /// Feed items per event are cut at about this many bytes (`feedEventBytes(maxFrameBytes:)`).
    private let feedEventLimit: Int

    init(board: BoardHandle, due: [Subscription], feedNotes: [WriteNote], feedEventBytes: Int = StreamRefresh.feedEventBytes) {
        self.board = board
        self.due = due
        self.feedNotes = feedNotes
        self.feedEventLimit = feedEventBytes
        var byMode: [RankMode: [Subscription]] = [:]
        for subscription in due where subscription.followsNotes
            && (subscription.needsQuery || subscription.needsSnapshot || subscription.betterCount == nil)
        {
            byMode[subscription.ranking.mode, default: []].append(subscription)
        }
        playerRefreshes = byMode.sorted { $0.key.rawValue < $1.key.rawValue }.compactMap { mode, streams in
            guard let ranking = streams.first?.ranking else { return nil }
            let plan = PlayerRefreshPlan(
                callID: Self.playerRefreshPlanID + UInt64(mode.rawValue), ranking: ranking, playerIDs: streams.compactMap(\.player))
            return (streams, plan)
        }
    }

    /// Plan ids: 1 + mode = the dense player subscribers, 10 + N*4 + mode = a top N, 2^40 + index =
    /// a window subscriber, 2^62 = the feed ranks, 2^62 + 16 + mode = the note-following player
    /// streams of that mode that need a query.
    private static let feedPlanID: UInt64 = 1 << 62
    /// Feed items per event are cut at about this many bytes (well under `max_frame_bytes`).
    static let feedEventBytes = 256 << 10

    /// The feed event size for a server whose frames hold at most `maxFrameBytes`: half of it at
    /// most (an item's encoding can exceed its estimate by a few bytes of fields), so that a feed
    /// that reads is never ended for an event its client could not ask to be smaller.
    static func feedEventBytes(maxFrameBytes: Int) -> Int {
        max(1, min(feedEventBytes, maxFrameBytes / 2))
    }
    /// Bytes counted per feed item besides its id and metadata.
    static let feedItemOverhead = 64

    /// Bytes a window change takes besides its entry (kind, previous rank, framing), rounded up.
    static let changeOverhead = 24

    /// Estimated encoded size of an event, for the connection's event budget
    /// (`StreamSink.maxPendingEventBytes`; feeds have their own bound,
    /// `SubscriptionHub.maxPendingFeedBytes`).
    static func estimatedBytes(_ entry: WireEntry) -> Int {
        feedItemOverhead + entry.playerID.utf8.count + entry.metadata.count
    }

    static func estimatedBytes(_ change: RankEventChange) -> Int {
        func bytes(_ entry: WireEntry) -> Int { estimatedBytes(entry) }
        switch change {
        case .player(let state): return bytes(state.entry)
        case .window(let update): return update.entries.reduce(0) { $0 + bytes($1) } + update.changes.reduce(0) { $0 + bytes($1.entry) }
        case .feed(let items): return items.reduce(0) { $0 + bytes($1.entry) }
        }
    }
    private static let playerRefreshPlanID: UInt64 = (1 << 62) + 16

    private func playerPlanID(_ mode: RankMode) -> UInt64 { 1 + UInt64(mode.rawValue) }
    private func topPlanID(_ limit: UInt32, _ mode: RankMode) -> UInt64 { 10 + UInt64(limit) * 4 + UInt64(mode.rawValue) }
    private func windowPlanID(_ index: Int) -> UInt64 { (1 << 40) + UInt64(index) }

    func plans(shardCount: Int) -> [PlannedCall] {
        var plans: [PlannedCall] = []
        var playersByMode: [RankMode: (RankResolution, [String])] = [:]
        var tops: [UInt64: (RankResolution, UInt32)] = [:]
        for (index, subscription) in due.enumerated() {
            let ranking = subscription.ranking
            switch subscription.target {
            case .player where subscription.followsNotes:
                break  // the player refresh plan, or no query at all
            case .player(let player):
                playersByMode[ranking.mode, default: (ranking, [])].1.append(player)
            case .top(let limit):
                tops[topPlanID(limit, ranking.mode)] = (ranking, limit)
            case .around(let player, let before, let after):
                let id = windowPlanID(index)
                let request = AroundRequest(boardID: board.config.id, playerID: player, before: before, after: after)
                plans.append(PlannedCall(callID: id, plan: AroundPlan(callID: id, ranking: ranking, request: request), deadline: nil))
            case .feed:
                break
            }
        }
        for (mode, (ranking, players)) in playersByMode {
            let id = playerPlanID(mode)
            plans.append(PlannedCall(callID: id, plan: EntriesPlan(callID: id, ranking: ranking, playerIDs: players), deadline: nil))
        }
        for (id, (ranking, limit)) in tops {
            plans.append(PlannedCall(callID: id, plan: TopPlan(callID: id, ranking: ranking, limit: Int(limit), start: .offset(0), packsTop: false), deadline: nil))
        }
        for refresh in playerRefreshes {
            plans.append(PlannedCall(callID: refresh.plan.callID, plan: refresh.plan, deadline: nil))
        }
        if !feedNotes.isEmpty {
            let keys = feedNotes.flatMap { [$0.currentKey ?? .max, $0.previousKey ?? .max] }
            plans.append(PlannedCall(
                callID: Self.feedPlanID, plan: KeyRanksPlan(callID: Self.feedPlanID, board: board, keys: keys, shardCount: shardCount),
                deadline: nil))
        }
        return plans
    }

    /// Items in board-version order, cut into events of about `feedEventBytes`: a backlog of items
    /// with large metadata would not fit one frame (the stream would end over max_frame_bytes).
    /// Never empty: no items make one empty batch.
    static func feedBatches(_ items: [FeedItem], maxBytes: Int = feedEventBytes) -> [[FeedItem]] {
        var batches: [[FeedItem]] = [[]]
        var batchBytes = 0
        for item in items.sorted(by: { $0.boardVersion < $1.boardVersion }) {
            let bytes = estimatedBytes(item.entry)
            if batchBytes + bytes > maxBytes && !batches[batches.count - 1].isEmpty {
                batches.append([])
                batchBytes = 0
            }
            batches[batches.count - 1].append(item)
            batchBytes += bytes
        }
        return batches
    }

    /// Frames for one connection, and the event budget they took (`StreamSink.reserve`), which
    /// its `send` gives back once they are written.
    struct SinkFrames {
        let sink: StreamSink
        var frames: [StreamFrame] = []
        var reservedBytes = 0

        mutating func append(_ frame: StreamFrame, reserved: Int) {
            frames.append(frame)
            reservedBytes += reserved
        }
    }

    /// Compares fresh results with each subscriber's last state; returns the frames per sink and
    /// updates the subscribers (state, watched interval, dirty flags). A player or window event
    /// goes only if its connection's event budget takes it (`StreamSink.reserve`); one refused is
    /// held back for a snapshot when the budget frees (`Subscription.heldBack`, `missed`).
    /// `feeds`: the due feeds, each with the offset in `feedNotes` of its first item;
    /// `feedRanks`: `feedRanks(in: responses)`, or empty when it is nil.
    func frames(
        from responses: [UInt64: ResponseEnvelope], feeds: [(subscription: Subscription, offset: Int)], feedRanks: [Int],
        version: UInt64, now: NIODeadline
    ) -> [SinkFrames] {
        var bySink: [ObjectIdentifier: SinkFrames] = [:]
        var deferred: [Subscription] = []
        // Events that several top streams send alike, packed once (`SharedWindowEvent`).
        var packedEvents: [SharedWindowEvent: PackedResult] = [:]
        func emit(_ subscription: Subscription, _ change: RankEventChange, snapshot: Bool) {
            emit(subscription, change, snapshot: snapshot, shared: nil)
        }
        func emit(_ subscription: Subscription, _ change: RankEventChange, snapshot: Bool, shared: SharedWindowEvent?) {
            let sink = ObjectIdentifier(subscription.sink)
            var reserved = 0
            if !subscription.isFeed {
                let bytes = Self.estimatedBytes(change)
                guard subscription.sink.reserve(bytes) else {
                    deferred.append(subscription)
                    return
                }
                reserved = bytes
                subscription.heldBack = false
            }
            let event = RankEvent(boardVersion: version, snapshot: snapshot, change: change)
            let result: ResponseResult
            if let shared {
                let packed = packedEvents[shared] ?? PackedResult.event(event)
                packedEvents[shared] = packed
                result = .packed(packed)
            } else {
                result = .event(event)
            }
            let frame = StreamFrame(callID: subscription.callID, response: .ok(subscription.callID, result), isFinal: false)
            bySink[sink, default: SinkFrames(sink: subscription.sink)].append(frame, reserved: reserved)
        }
        let codec = board.config.codec
        func key(_ entry: WireEntry) -> RankKey {
            codec.key(score: entry.score, subscore: entry.subscore, sequence: UInt64(bitPattern: entry.reachedAtMicros))
        }

        // Player results by id, once per rank mode (a linear search per subscriber would make a
        // flush quadratic in the number of player subscriptions).
        var playersByMode: [RankMode: [String: WireEntry]] = [:]
        func playerEntries(_ mode: RankMode) -> [String: WireEntry]? {
            if let cached = playersByMode[mode] { return cached }
            guard case .entries(let found)? = responses[playerPlanID(mode)]?.result else { return nil }
            var byID: [String: WireEntry] = [:]
            byID.reserveCapacity(found.entries.count)
            for entry in found.entries { byID[entry.playerID] = entry }
            playersByMode[mode] = byID
            return byID
        }

        // Note-following player streams that were queried take their entry, rank, counting key
        // and cut from their plan; the others already hold their rank, shifted by the notes.
        var queriedEntries: [ObjectIdentifier: WireEntry?] = [:]
        for refresh in playerRefreshes where refresh.plan.completed {
            for (subscription, located) in zip(refresh.streams, refresh.plan.located) {
                subscription.betterCount = located?.better
                subscription.countingKey = located?.counting
                subscription.cut = located?.cut
                subscription.needsQuery = false
                queriedEntries[ObjectIdentifier(subscription)] = .some(located.map { WireEntry($0.entry, rank: UInt64($0.better + 1)) })
            }
        }

        for (index, subscription) in due.enumerated() {
            // Cancelled or ended while the refresh ran: its stream is over.
            guard subscription.position >= 0 else { continue }
            guard subscription.sink.isWritable else {
                // The reader is behind: send nothing now, a full snapshot once it drains.
                subscription.needsSnapshot = true
                subscription.needsQuery = true
                subscription.missed = true
                continue
            }
            subscription.dirty = false
            let snapshot = subscription.needsSnapshot
            switch subscription.target {
            case .player(let player) where subscription.followsNotes:
                let entry: WireEntry?
                if let queriedEntry = queriedEntries[ObjectIdentifier(subscription)] {
                    entry = queriedEntry
                } else if let last = subscription.lastPlayer, last.present, !subscription.needsQuery, let better = subscription.betterCount {
                    var shifted = last.entry
                    shifted.rank = UInt64(max(0, better) + 1)
                    entry = shifted
                } else {
                    // No query answered for it (a shard failed, or it needed one only after this
                    // refresh was planned): ask at the next flush.
                    subscription.dirty = true
                    subscription.needsQuery = true
                    continue
                }
                sendPlayer(subscription, player: player, entry: entry, snapshot: snapshot, key: key, emit: emit, now: now)
            case .player(let player):
                guard let found = playerEntries(subscription.ranking.mode) else {
                    subscription.dirty = true  // no answer (a shard failed): try again next flush
                    continue
                }
                sendPlayer(subscription, player: player, entry: found[player], snapshot: snapshot, key: key, emit: emit, now: now)
            case .top(let limit):
                guard case .top(let page) = responses[topPlanID(limit, subscription.ranking.mode)]?.result else {
                    subscription.dirty = true  // no answer (a shard failed): try again next flush
                    continue
                }
                let hi = page.entries.count == Int(limit) ? page.entries.last.map(key) ?? .max : .max
                subscription.watched = RankKey.min...hi
                sendWindow(subscription, page.entries, snapshot: snapshot, shares: true, emit: emit, now: now)
            case .around(_, let before, let after):
                let window: [WireEntry]
                var lo = RankKey.min
                var hi = RankKey.max
                let response = responses[windowPlanID(index)]
                if case .around(let result)? = response?.result {
                    window = result.entries
                    if let playerIndex = window.firstIndex(where: { if case .around(let p, _, _) = subscription.target { return $0.playerID == p }; return false }) {
                        if playerIndex == Int(before), let first = window.first {
                            lo = Self.lowestKeyAffecting(rankOf: key(first), mode: subscription.ranking.mode, codec: codec)
                        }
                        if window.count - playerIndex - 1 == Int(after), let last = window.last { hi = key(last) }
                    }
                } else if response?.status?.code == .notFound {
                    window = []  // the player left the board
                } else {
                    subscription.dirty = true  // no answer (a shard failed): try again next flush
                    continue
                }
                subscription.watched = lo...hi
                sendWindow(subscription, window, snapshot: snapshot, shares: false, emit: emit, now: now)
            case .feed:
                break
            }
        }

        if !feeds.isEmpty {
            // One item per note, in backlog order (`feedRanks(in:)`). Without ranks only feeds with
            // no items here are passed in (`SubscriptionHub` ends the others).
            let ranks = feedRanks
            // The ranks are counted on the board as the event is built, where each written
            // player stands at its latest key. A player never beats itself: its entry is taken
            // off a count it is in (moving up from #6, a player was #6, not #7; of several writes
            // in one interval, an earlier one is ranked among the other players).
            var latestKeys: [String: RankKey?] = [:]
            if !ranks.isEmpty { for note in feedNotes { latestKeys[note.playerID] = note.currentKey } }
            func feedRank(_ key: RankKey?, counted better: Int, of player: String) -> UInt64 {
                guard let key else { return 0 }
                guard case let latest?? = latestKeys[player], latest < key else { return UInt64(better + 1) }
                return UInt64(max(0, better - 1) + 1)
            }
            let items: [FeedItem] = ranks.isEmpty ? [] : feedNotes.enumerated().map { position, note in
                let rank = feedRank(note.currentKey, counted: ranks[position * 2], of: note.playerID)
                let previousRank = feedRank(note.previousKey, counted: ranks[position * 2 + 1], of: note.playerID)
                let entry = note.entry.map { WireEntry($0, rank: rank) } ?? WireEntry(playerID: note.playerID, score: 0)
                return FeedItem(
                    entry: entry, previousRank: previousRank, created: note.created, removed: note.currentKey == nil,
                    boardVersion: note.version)
            }
            // Feeds at the same backlog position (the usual case: all of them) share their events.
            var batchesFrom: [Int: [[FeedItem]]] = [:]
            // Not skipped when the reader's socket filled meanwhile (as the other streams are, to get
            // a snapshot on resume): the feed's position moved past these items, so they go now.
            for (subscription, rawOffset) in feeds where subscription.position >= 0 {
                let offset = min(max(0, rawOffset), items.count)
                let batches = batchesFrom[offset] ?? Self.feedBatches(Array(items[offset...]), maxBytes: feedEventLimit)
                batchesFrom[offset] = batches
                // The first event of a feed is its (empty or not) snapshot: "the feed starts here".
                guard subscription.needsSnapshot || !batches[0].isEmpty else { continue }
                for (index, batch) in batches.enumerated() {
                    emit(subscription, .feed(batch), snapshot: subscription.needsSnapshot && index == 0)
                }
                subscription.needsSnapshot = false
                subscription.dirty = false
                subscription.lastSent = now
            }
        }
        // Held back: the state this flush computed was recorded as sent, so the next event must
        // be a whole snapshot, computed afresh, once the budget's release resumes it.
        for subscription in deferred {
            subscription.heldBack = true
            subscription.missed = true
            subscription.dirty = true
            subscription.needsSnapshot = true
            subscription.needsQuery = true
            subscription.lastSent = nil
        }
        return Array(bySink.values)
    }

    /// The two ranks of every feed note (after and before its write), or nil when the shards did
    /// not answer: the feeds' items cannot be sent then (`SubscriptionHub` ends those feeds
    /// rather than skip items).
    func feedRanks(in responses: [UInt64: ResponseEnvelope]) -> [Int]? {
        if feedNotes.isEmpty { return [] }  // no items: nothing was asked
        guard case .counts(let ranks)? = responses[Self.feedPlanID].flatMap(KeyRanksPlan.decode),
            ranks.count == feedNotes.count * 2
        else { return nil }
        return ranks
    }

    /// The lowest (best) key a write must touch to change the rank of the entry at `key`, in
    /// `mode`: ordinal and competition ranks count the keys before their probe (`rankProbe`: the
    /// key, or its tie group's first key, so a tie-mate ahead leaving the group upward counts);
    /// dense ranks count the distinct scores before it, which any write before it can change
    /// (two scores merging or splitting).
    static func lowestKeyAffecting(rankOf key: RankKey, mode: RankMode, codec: KeyCodec) -> RankKey {
        mode == .dense ? RankKey.min : codec.rankProbe(for: key, mode: mode)
    }

    /// Sends a player stream its state if it changed (or a snapshot is due); `entry` nil = the
    /// player is not on the board.
    private func sendPlayer(
        _ subscription: Subscription, player: String, entry: WireEntry?, snapshot: Bool, key: (WireEntry) -> RankKey,
        emit: (Subscription, RankEventChange, Bool) -> Void, now: NIODeadline
    ) {
        let previousRank = subscription.lastPlayer?.entry.rank ?? 0
        let state = PlayerRankChange(
            entry: entry ?? WireEntry(playerID: player, score: 0), previousRank: snapshot ? 0 : previousRank,
            present: entry != nil)
        subscription.watched = entry.map { Self.lowestKeyAffecting(rankOf: key($0), mode: subscription.ranking.mode, codec: board.config.codec)...key($0) }
            ?? RankKey.max...RankKey.max
        let changed = subscription.lastPlayer.map { $0.entry != state.entry || $0.present != state.present } ?? true
        if snapshot || changed {
            emit(subscription, .player(state), snapshot)
            subscription.needsSnapshot = false
            subscription.lastPlayer = state
            subscription.lastSent = now
        }
    }

    /// `shares`: `window` is the one answer every stream of its kind gets in this flush (a top N
    /// in one rank mode), so streams that last sent the same window send the same event: it is
    /// made and packed once for them (`SharedWindowEvent`).
    private func sendWindow(
        _ subscription: Subscription, _ window: [WireEntry], snapshot: Bool, shares: Bool,
        emit: (Subscription, RankEventChange, Bool, SharedWindowEvent?) -> Void, now: NIODeadline
    ) {
        let next = shares ? SharedWindowEvent.Identity(window) : nil
        if snapshot {
            emit(subscription, .window(WindowUpdate(entries: window, changes: [], windowSize: UInt32(window.count))), true,
                 next.map { SharedWindowEvent(window: $0, from: nil) })
        } else {
            let shared = next.map { SharedWindowEvent(window: $0, from: SharedWindowEvent.Identity(subscription.lastWindow)) }
            let changes = WindowDiff.changes(from: subscription.lastWindow, to: window)
            guard !changes.isEmpty else { return }
            // A window that turned over lists every player that left and every one that entered,
            // with their metadata: up to twice the window, past the frame bound the window was
            // admitted under (`AnswerBound`), which would end the stream. The window itself is
            // then the smaller event, and the client replaces what it holds, as on a snapshot.
            let changeBytes = changes.reduce(0) { $0 + Self.estimatedBytes($1.entry) + Self.changeOverhead }
            let windowBytes = window.reduce(0) { $0 + Self.estimatedBytes($1) }
            if changeBytes > windowBytes {
                emit(subscription, .window(WindowUpdate(entries: window, changes: [], windowSize: UInt32(window.count))), true,
                     next.map { SharedWindowEvent(window: $0, from: nil) })
            } else {
                emit(subscription, .window(WindowUpdate(entries: [], changes: changes, windowSize: UInt32(window.count))), false, shared)
            }
        }
        subscription.needsSnapshot = false
        subscription.lastWindow = window
        subscription.lastSent = now
    }
}

/// Ranks of arbitrary keys: counts, on every shard of the board, the entries strictly better.
final class KeyRanksPlan: CallPlan {
    private let callID: UInt64
    private let board: BoardHandle
    private let keys: [RankKey]
    private let shardCount: Int

    init(callID: UInt64, board: BoardHandle, keys: [RankKey], shardCount: Int) {
        self.callID = callID
        self.board = board
        self.keys = keys
        self.shardCount = shardCount
    }

    func advance(_ results: ShardResults) -> PlanStep {
        if results.isEmpty {
            let countKeys = CountKeys(keys)
            return .run(board.shardRange(shardCount: shardCount).map {
                ShardCall(shard: $0, operation: .countBetter(BoardRef(board), keys: countKeys, orEqual: false))
            })
        }
        var sums = [Int](repeating: 0, count: keys.count)
        for case .counts(let counts) in results {
            for (index, count) in counts.enumerated() where index < sums.count { sums[index] += count }
        }
        // Carried back as a count response per key, in order.
        let entries = sums.map { WireEntry(playerID: "", score: 0, rank: UInt64($0)) }
        return .finished(.ok(callID, .entries(EntriesResponse(entries: entries, boardSize: 0))))
    }

    enum Decoded { case counts([Int]) }

    static func decode(_ response: ResponseEnvelope) -> Decoded? {
        guard case .entries(let result) = response.result else { return nil }
        return .counts(result.entries.map { Int($0.rank) })
    }
}

/// What makes two streams' window events the same in one flush: the window they are sent (the
/// same answer, by identity), and the window they last sent (by identity too: streams that were
/// sent the same events hold one array), or none for a whole window. Identities are compared
/// only within a flush, while every array compared is alive (held by the flush's answers or by
/// a subscription), so an address cannot stand for two arrays.
struct SharedWindowEvent: Hashable {
    struct Identity: Hashable {
        let address: UnsafeRawPointer?
        let count: Int

        init(_ window: [WireEntry]) {
            address = window.withUnsafeBufferPointer { $0.baseAddress.map(UnsafeRawPointer.init) }
            count = window.count
        }
    }

    let window: Identity
    /// nil: the event is the whole window (a snapshot, or a window that turned over).
    let from: Identity?
}
