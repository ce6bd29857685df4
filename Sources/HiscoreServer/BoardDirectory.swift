import HiscoreCore
import HiscoreStorage
import NIOConcurrencyHelpers

/// The boards of the server, by id. Lookups happen on every call from every event loop, creation
/// and deletion rarely, so one lock around a dictionary is enough (uncontended: tens of ns).
final class BoardDirectory: Sendable {
    enum CreateOutcome {
        case created(BoardHandle)
        case existing(BoardHandle)
    }

    enum CreateError: Error {
        case alreadyExistsWithOtherConfig(BoardConfig)
        case tooManyBoards(limit: Int)
        case storage(StorageError)
    }

    private struct State {
        /// Live boards by id; changed only through `setLive` and `removeLive`.
        private(set) var boards: [String: BoardHandle] = [:]
        /// The ids of `boards` in order, for `list`: boards are created and deleted rarely and
        /// listed often, so a page costs a binary search and its own entries rather than a sort
        /// of every board (10,000 at the default `max_boards`) per call.
        private(set) var sortedIDs: [String] = []
        /// Archived seasons by board id, then period id.
        var periods: [String: [UInt64: BoardHandle]] = [:]
        var nextIncarnation: UInt64 = 1

        /// Makes `handle` the live board of its id. O(boards) when the id is new (an insertion
        /// into `sortedIDs`).
        mutating func setLive(_ handle: BoardHandle) {
            let id = handle.config.id
            guard boards.updateValue(handle, forKey: id) == nil else { return }
            sortedIDs.insert(id, at: firstIndex(after: id, orEqual: false))
            assert(sortedIDs.count == boards.count, "board index out of step")
        }

        /// Removes the live board of `id`, if any. O(boards).
        mutating func removeLive(_ id: String) {
            guard boards.removeValue(forKey: id) != nil else { return }
            let index = firstIndex(after: id, orEqual: false)
            assert(index < sortedIDs.count && sortedIDs[index] == id, "board index out of step")
            sortedIDs.remove(at: index)
        }

        /// The position of the first id above `id` (at or above it unless `orEqual` is false:
        /// then the first one not below it).
        func firstIndex(after id: String, orEqual: Bool) -> Int {
            var low = 0
            var high = sortedIDs.count
            while low < high {
                let middle = (low + high) / 2
                if sortedIDs[middle] < id || (orEqual && sortedIDs[middle] == id) { low = middle + 1 } else { high = middle }
            }
            return low
        }
    }

    private let state = NIOLockedValueBox(State())
    private let shardCount: Int
    private let maxBoards: Int
    private let persistence: Persistence?
    /// Wall clock (µs since the epoch) stamping the start of each board's first period.
    private let clock: @Sendable () -> Int64
    /// What the boards' top caches may keep together.
    let topCacheBudget: TopCacheBudget

    init(
        shardCount: Int, maxBoards: Int, persistence: Persistence? = nil, firstIncarnation: UInt64 = 1,
        clock: @escaping @Sendable () -> Int64 = { Persistence.nowMicros() },
        topCacheBudget: TopCacheBudget = TopCacheBudget(limitBytes: ServerLimits().maxTopCacheBytes)
    ) {
        self.topCacheBudget = topCacheBudget
        self.shardCount = shardCount
        self.maxBoards = maxBoards
        self.persistence = persistence
        self.clock = clock
        state.withLockedValue { $0.nextIncarnation = max(1, firstIncarnation) }
    }

    /// Registers a board read back from the catalog at start-up: the live period, or an archived
    /// one when `archivedAt` is set.
    func restore(
        _ config: BoardConfig, incarnation: UInt64, periodID: UInt64, startedAt: Int64, archivedAt: Int64?
    ) -> BoardHandle {
        state.withLockedValue { state in
            let handle = makeHandle(config, incarnation: incarnation, periodID: periodID, startedAt: startedAt)
            if let archivedAt {
                handle.markArchived(at: archivedAt)
                state.periods[config.id, default: [:]][periodID] = handle
            } else {
                state.setLive(handle)
            }
            state.nextIncarnation = max(state.nextIncarnation, incarnation + 1)
            return handle
        }
    }

    /// An archived period of a board.
    func period(_ id: String, _ periodID: UInt64) -> BoardHandle? {
        state.withLockedValue { $0.periods[id]?[periodID] }
    }

    /// Archived periods of a board, oldest first.
    func periods(_ id: String) -> [BoardHandle] {
        state.withLockedValue { ($0.periods[id] ?? [:]).values.sorted { $0.periodID < $1.periodID } }
    }

    /// What a season reset changed.
    struct Reset {
        let archived: BoardHandle
        let live: BoardHandle
        /// Archived periods beyond the board's `keep_periods`, now deleted.
        let pruned: [BoardHandle]
    }

    /// Ends the board's current season at `at` (µs): the live incarnation becomes archived period N,
    /// a new empty incarnation (period N + 1, starting at `at`) takes its place, and the oldest
    /// archived periods beyond `keep_periods` are deleted. Durable before it is visible.
    /// With `onlyIfStartedBefore`, a live period that started at or after it is left alone (nil):
    /// a scheduled reset checks, under the lock, that no other reset ended the period meanwhile.
    func reset(_ id: String, at: Int64, onlyIfStartedBefore: Int64? = nil) throws(StorageError) -> Reset? {
        let result: Result<Reset?, StorageError> = state.withLockedValue { state in
            guard let current = state.boards[id] else { return .success(nil) }
            if let onlyIfStartedBefore, current.periodStartedAt >= onlyIfStartedBefore { return .success(nil) }
            let live = makeHandle(
                current.config, incarnation: state.nextIncarnation, periodID: current.periodID + 1, startedAt: at)
            let keep = current.config.resetSchedule?.keepPeriods ?? ResetSchedule.defaultKeepPeriods
            var archived = state.periods[id] ?? [:]
            archived[current.periodID] = current
            let pruned = archived.values.sorted { $0.periodID < $1.periodID }.dropLast(keep)
            do throws(StorageError) {
                try persistence?.boardReset(live: live, current: current, periodID: current.periodID, pruned: Array(pruned), at: at)
            } catch {
                return .failure(error)
            }
            state.nextIncarnation += 1
            current.markArchived(at: at)
            for old in pruned {
                archived[old.periodID] = nil
                old.markDeleted()
            }
            state.periods[id] = archived
            state.setLive(live)
            return .success(Reset(archived: current, live: live, pruned: Array(pruned)))
        }
        return try result.get()
    }

    /// Boards with a reset schedule (live periods).
    func scheduledBoards() -> [BoardHandle] {
        state.withLockedValue { $0.boards.values.filter { $0.config.resetSchedule != nil } }
    }

    func board(_ id: String) -> BoardHandle? {
        state.withLockedValue { $0.boards[id] }
    }

    /// The ids of every board, live or with archived periods only (what an older version's cut
    /// deletion can leave), sorted.
    func boardIDs() -> [String] {
        state.withLockedValue { Set($0.boards.keys).union($0.periods.keys) }.sorted()
    }

    /// A board's archived periods and its live incarnation, read together: a reset between two
    /// reads would move the live one into the periods after the first had been read.
    func incarnations(_ id: String) -> [BoardHandle] {
        state.withLockedValue { state in
            var handles = Array((state.periods[id] ?? [:]).values)
            if let live = state.boards[id] { handles.append(live) }
            return handles
        }
    }

    /// Creates the board, or returns the existing one when its config is identical (creation is
    /// idempotent so that game servers can "ensure" a board at start-up).
    func create(_ config: BoardConfig) throws(CreateError) -> CreateOutcome {
        let result: Result<CreateOutcome, CreateError> = state.withLockedValue { state in
            if let existing = state.boards[config.id] {
                return existing.config == config ? .success(.existing(existing))
                    : .failure(.alreadyExistsWithOtherConfig(existing.config))
            }
            guard state.boards.count < maxBoards else { return .failure(.tooManyBoards(limit: maxBoards)) }
            let handle = makeHandle(config, incarnation: state.nextIncarnation, periodID: 1, startedAt: clock())
            // Durable before anyone can write to it (a rare fsync, under the lock on purpose).
            do throws(StorageError) {
                try persistence?.boardCreated(handle, at: handle.periodStartedAt)
            } catch {
                return .failure(.storage(error))
            }
            state.nextIncarnation += 1
            state.setLive(handle)
            return .success(.created(handle))
        }
        return try result.get()
    }

    /// The board, auto-created with the default config when missing.
    func boardCreatingDefault(_ id: String) throws(CreateError) -> BoardHandle {
        if let handle = board(id) { return handle }
        switch try create(BoardConfig.defaultConfig(id: id)) {
        case .created(let handle), .existing(let handle): return handle
        }
    }

    /// Deletes the board and its archived periods; returns every incarnation removed (live first).
    /// An id with archived periods and no live board (left by a deletion an older version cut
    /// short) has its periods deleted.
    func remove(_ id: String) throws(StorageError) -> [BoardHandle] {
        let result: Result<[BoardHandle], StorageError> = state.withLockedValue { state in
            let live = state.boards[id].map { [$0] } ?? []
            let archived = (state.periods[id] ?? [:]).values.sorted { $0.periodID < $1.periodID }
            guard !live.isEmpty || !archived.isEmpty else { return .success([]) }
            do throws(StorageError) {
                try persistence?.boardsDeleted(archived + live)
            } catch {
                return .failure(error)
            }
            state.removeLive(id)
            state.periods[id] = nil
            for handle in live + archived { handle.markDeleted() }
            return .success(live + archived)
        }
        return try result.get()
    }

    /// Boards sorted by id, after `afterID`, at most `limit`; `more` when others follow.
    /// O(log boards + limit).
    func list(after afterID: String, limit: Int) -> (boards: [BoardHandle], more: Bool) {
        state.withLockedValue { state in
            let start = state.firstIndex(after: afterID, orEqual: true)
            let end = min(state.sortedIDs.count, start + max(0, limit))
            return (state.sortedIDs[start..<end].compactMap { state.boards[$0] }, end < state.sortedIDs.count)
        }
    }

    var count: Int { state.withLockedValue { $0.boards.count } }

    private func makeHandle(_ config: BoardConfig, incarnation: UInt64, periodID: UInt64, startedAt: Int64) -> BoardHandle {
        // Dense ranks count distinct scores, which cannot be summed across partitions: such a
        // board lives in one partition, on a shard chosen by its id.
        let single = config.rankMode == .dense || shardCount == 1
        let home = Int(PlayerHash.hash(config.id) % UInt64(shardCount))
        return BoardHandle(
            config: config, incarnation: incarnation, partitionCount: single ? 1 : shardCount, homeShard: home,
            periodID: periodID, periodStartedAt: startedAt, topCacheBudget: topCacheBudget)
    }
}
