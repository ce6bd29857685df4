import HiscoreCore
import HiscoreWire
import NIOConcurrencyHelpers

/// The last answered top of a board (offset 0), kept until a write could change it.
///
/// Lobby screens and leaderboard pages ask for the same top N over and over, while most writes
/// to a large board land far below it. A top-N answer costs a phase on every shard (a hop to
/// each other event loop) and a k-way merge; served from here it costs neither.
///
/// Invalidation: the snapshot's `threshold` is the key of its last entry. A write (from any
/// shard) whose previous or new key is at or better than the threshold can change the top N —
/// a player entered, left, moved or changed its metadata — and drops the snapshot; any other
/// write cannot. A snapshot holding fewer entries than it asked for (a small board) has no
/// threshold: every write drops it.
///
/// Filling races writes: a top plan reads `writes` when it starts and stores its result only if
/// no write was noted since, so a result that may miss a write is never kept. Every operation,
/// a write's note included, is one short lock (~20 ns uncontended, next to ~10 µs per call):
/// simple, and exact whatever the interleaving across event loops.
///
/// The answer itself is kept too, packed (`PackedResult`), for the last limit and mode asked
/// with the board size it was packed at: a repeated top then costs its envelope, not the packing
/// of every entry again (protobuf-c was ~22% of a top-10's server CPU). It goes with the
/// snapshot, and a call whose board size differs packs anew (a player joined or left below the
/// top).
///
/// Size: one snapshot per board, at most `max_page_entries` entries (and at most about a frame:
/// `AnswerBound`), and one packed answer; over every board, `max_top_cache_bytes`
/// (`TopCacheBudget`), past which the tops least recently read give way.
final class TopCache: Sendable {
    struct Snapshot {
        var mode: RankMode
        /// The limit it was computed for; it answers any limit up to this.
        var limit: Int
        var entries: [LeaderboardEntry]
        var ranks: [UInt64]
        /// nil: fewer entries than `limit` (the whole board), so every write invalidates.
        var threshold: RankKey?
    }

    private struct PackedAnswer {
        var mode: RankMode
        var limit: Int
        var boardSize: UInt64
        var result: PackedResult
    }

    private struct State {
        private(set) var snapshot: Snapshot?
        private(set) var packed: PackedAnswer?
        /// What `snapshot` and `packed` are counted as in the budget.
        private var snapshotBytes = 0
        private var packedBytes = 0
        /// Writes noted so far (wrapping); a fill started at a different count is discarded.
        var writes: UInt64 = 0
        /// Set by `clear` (the board was deleted): nothing is kept any more, whatever a fill
        /// still in flight brings.
        var retired = false
        /// Answered a call (or was kept) since the budget's hand last passed: not dropped
        /// for another board's top this time round (`TopCacheBudget`).
        var read = false
        /// In the budget's ring (once, for the cache's life).
        var enlisted = false

        var heldBytes: Int { snapshotBytes + packedBytes }

        /// What a snapshot filled since `token` would replace (all it holds), or nil when it
        /// may not be kept: a write was noted since, or the board was deleted.
        func heldBytesIfFillable(token: UInt64) -> Int? {
            guard !retired, writes == token else { return nil }
            return heldBytes
        }

        /// What a packed answer for `mode` and `limit` would replace (the packed answer held),
        /// or nil when it may not be kept: no snapshot it belongs to, or as above.
        func packedBytesIfKept(mode: RankMode, limit: Int, token: UInt64) -> Int? {
            guard !retired, writes == token, let snapshot, snapshot.mode == mode, limit <= snapshot.limit else { return nil }
            return packedBytes
        }

        /// Replaces the snapshot (and the packed answer of the old one); the budget was asked
        /// for the difference already.
        mutating func setSnapshot(_ new: Snapshot, bytes: Int) {
            snapshot = new
            snapshotBytes = bytes
            packed = nil
            packedBytes = 0
            read = true
        }

        mutating func setPacked(_ new: PackedAnswer, bytes: Int) {
            packed = new
            packedBytes = bytes
        }

        mutating func drop(budget: TopCacheBudget) {
            budget.give(heldBytes)
            snapshot = nil
            packed = nil
            snapshotBytes = 0
            packedBytes = 0
        }
    }

    private let state = NIOLockedValueBox(State())
    private let budget: TopCacheBudget

    init(budget: TopCacheBudget) {
        self.budget = budget
    }

    deinit {
        let budget = self.budget
        state.withLockedValue { $0.drop(budget: budget) }
    }

    /// Bytes this board's cache is counted as in the server's budget.
    var heldBytes: Int { state.withLockedValue { $0.heldBytes } }

    /// The write count a fill must still see when it stores its result.
    var fillToken: UInt64 { state.withLockedValue { $0.writes } }

    /// The snapshot's first `limit` entries and ranks, if it holds them for `mode`.
    func lookup(mode: RankMode, limit: Int) -> (entries: ArraySlice<LeaderboardEntry>, ranks: ArraySlice<UInt64>)? {
        state.withLockedValue { state in
            guard let snapshot = state.snapshot, snapshot.mode == mode, limit <= snapshot.limit else { return nil }
            state.read = true
            let count = min(limit, snapshot.entries.count)
            return (snapshot.entries[..<count], snapshot.ranks[..<count])
        }
    }

    /// The packed answer for `limit` and `mode` at `boardSize`, if kept.
    func packed(mode: RankMode, limit: Int, boardSize: UInt64) -> PackedResult? {
        state.withLockedValue { state in
            guard let packed = state.packed, packed.mode == mode, packed.limit == limit, packed.boardSize == boardSize else {
                return nil
            }
            state.read = true
            return packed.result
        }
    }

    /// Keeps `result` as the answer for `limit` and `mode` at `boardSize`, unless a write was
    /// noted since `token` was read (it may not be the current top any more) or the budget has
    /// no room for it.
    func keep(_ result: PackedResult, mode: RankMode, limit: Int, boardSize: UInt64, token: UInt64) {
        let bytes = result.encodedByteCount + 64
        let answer = PackedAnswer(mode: mode, limit: limit, boardSize: boardSize, result: result)
        reserveThenApply(bytes: bytes, replacing: { $0.packedBytesIfKept(mode: mode, limit: limit, token: token) }) { state in
            state.setPacked(answer, bytes: bytes)
        }
    }

    /// Keeps `snapshot` unless a write was noted since `token` was read or the budget has no
    /// room for it.
    func store(_ snapshot: Snapshot, token: UInt64) {
        assert(snapshot.entries.count == snapshot.ranks.count && snapshot.entries.count <= snapshot.limit)
        let bytes = TopCacheBudget.bytes(of: snapshot.entries)
        reserveThenApply(bytes: bytes, replacing: { $0.heldBytesIfFillable(token: token) }) { state in
            state.setSnapshot(snapshot, bytes: bytes)
        }
    }

    /// Asks the budget for what `bytes` adds to what `replacing` says the change would replace
    /// (nil: nothing to do), with no lock held (asking may drop another board's top), then
    /// applies the change if nothing moved meanwhile; else gives the bytes back.
    private func reserveThenApply(
        bytes: Int, replacing: (State) -> Int?, apply: (inout State) -> Void
    ) {
        guard let replaced = state.withLockedValue({ replacing($0) }) else { return }
        let added = bytes - replaced
        if added > 0 && !budget.take(added, for: self) { return }
        let budget = self.budget
        let enlist = state.withLockedValue { state -> Bool? in
            guard replacing(state) == replaced else { return nil }
            apply(&state)
            defer { state.enlisted = true }
            return !state.enlisted
        }
        switch enlist {
        case nil: if added > 0 { budget.give(added) }
        case true?:
            if added < 0 { budget.give(-added) }
            budget.enlist(self)
        case false?: if added < 0 { budget.give(-added) }
        }
    }

    /// The budget's hand reached this cache with no room for another board's top: a cache
    /// read since the hand last came by is passed over (its mark cleared), else it lets its
    /// top go.
    func giveWayUnlessRead() {
        let budget = self.budget
        state.withLockedValue { state in
            if state.read {
                state.read = false
            } else if state.heldBytes > 0 {
                state.drop(budget: budget)
            }
        }
    }

    /// Lets go of everything kept (the board was deleted: its handle may live on a while in
    /// streams and calls in flight).
    func clear() {
        let budget = self.budget
        state.withLockedValue { state in
            state.retired = true
            state.drop(budget: budget)
        }
    }

    /// A write changed the board: `previous` is the player's key before (nil: new player),
    /// `current` after (nil: removed).
    func noteWrite(previous: RankKey?, current: RankKey?) {
        let budget = self.budget
        state.withLockedValue { state in
            state.writes &+= 1
            guard let snapshot = state.snapshot else { return }
            guard let threshold = snapshot.threshold else {
                state.drop(budget: budget)
                return
            }
            if previous.map({ $0 <= threshold }) ?? false || current.map({ $0 <= threshold }) ?? false {
                state.drop(budget: budget)
            }
        }
    }
}
