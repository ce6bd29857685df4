import HiscoreCore
import HiscoreWire
import NIOCore

/// One shard: a partition of every board, owned by one event loop. The actor's executor *is* that
/// loop, so code already running there (a connection's handler on the same loop) enters it
/// synchronously with `assumeIsolated`, and other loops reach it with one `execute` per batch.
/// Nothing here blocks or allocates per call beyond what the engine returns.
actor Shard {
    nonisolated let index: Int
    nonisolated let loop: any EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    /// Partitions by board incarnation (not id), so a board deleted and re-created never sees the
    /// old partition.
    private var partitions: [UInt64: BoardPartition] = [:]
    private let memory: MemoryCeiling
    private var writesSinceMemoryRefresh = 0
    private let streams: StreamCoordinator?
    /// Write notes for subscription hubs, by the board's home shard; sent once per batch.
    private var outbox: [Int: [WriteNote]] = [:]

    init(index: Int, loop: any EventLoop, memory: MemoryCeiling, streams: StreamCoordinator? = nil) {
        self.index = index
        self.loop = loop
        self.memory = memory
        self.streams = streams
    }

    func execute(_ operations: [ShardOperation]) -> [ShardResult] {
        let results = operations.map(execute)
        if !outbox.isEmpty, let streams {
            for (home, notes) in outbox { streams.deliver(notes, toShard: home) }
            outbox.removeAll()
        }
        return results
    }

    private func note(_ board: BoardHandle, player: String, previous: LeaderboardEntry?, current: LeaderboardEntry?, created: Bool, version: UInt64) {
        guard board.subscriberCount > 0 else { return }
        let entry = board.feedSubscriberCount > 0 ? current : nil
        outbox[board.homeShard, default: []].append(WriteNote(
            board: board, playerID: player, previousKey: previous?.key, currentKey: current?.key, entry: entry,
            created: created, version: version))
    }

    func execute(_ operation: ShardOperation) -> ShardResult {
        switch operation {
        case .submit(let board, let request):
            return submit(board, request)
        case .lookup(let board, let playerIDs, let dense):
            guard let partition = partitions[board.incarnation] else {
                return .found(Array(repeating: nil, count: playerIDs.count))
            }
            return .found(playerIDs.map { id in
                partition.entry(for: id).map { entry in
                    LocatedEntry(
                        entry: entry, localBetter: partition.countBetter(than: entry.key),
                        localDistinctBetter: dense ? partition.distinctScoresBetter(than: entry.key) : 0)
                }
            })
        case .countBetter(let board, let keys, let orEqual):
            guard let partition = partitions[board.incarnation] else { return .counts(keys.map { _ in 0 }) }
            return .counts(keys.map { orEqual ? partition.countBetterOrEqual(than: $0) : partition.countBetter(than: $0) })
        case .entriesAtRanks(let board, let range):
            guard let partition = partitions[board.incarnation] else { return .entries([], partitionSize: 0) }
            return .entries(
                partition.entries(fromRank: range.lowerBound, limit: range.count), partitionSize: partition.count)
        case .entriesAfter(let board, let key, let limit):
            guard let partition = partitions[board.incarnation] else { return .entriesAfter([], countUpToKey: 0) }
            return .entriesAfter(
                partition.entries(after: key, limit: limit), countUpToKey: partition.countBetterOrEqual(than: key))
        case .neighbours(let board, let key, let before, let after):
            guard let partition = partitions[board.incarnation] else {
                return .neighbours(better: [], worse: [], betterCount: 0)
            }
            return .neighbours(
                better: partition.entries(before: key, limit: before), worse: partition.entries(after: key, limit: after),
                betterCount: partition.countBetter(than: key))
        case .countScores(let board, let min, let max):
            return .count(partitions[board.incarnation]?.countScores(min: min, max: max) ?? 0)
        case .distinctBetter(let board, let keys):
            guard let partition = partitions[board.incarnation] else { return .counts(keys.map { _ in 0 }) }
            return .counts(keys.map { partition.distinctScoresBetter(than: $0) })
        case .remove(let board, let playerID):
            guard let partition = partitions[board.incarnation], let entry = partition.entry(for: playerID) else {
                return .removed(nil)
            }
            let located = LocatedEntry(
                entry: entry, localBetter: partition.countBetter(than: entry.key), localDistinctBetter: 0)
            _ = partition.remove(playerID: playerID)
            board.releaseEntries(1)
            let version = board.bumpVersion()
            note(board, player: playerID, previous: entry, current: nil, created: false, version: version)
            noteWrite()
            return .removed(located)
        case .dropBoard(let board):
            let removed = partitions.removeValue(forKey: board.incarnation)?.count ?? 0
            memory.refresh()
            return .dropped(removed)
        }
    }

    private func submit(_ board: BoardHandle, _ request: SubmitRequest) -> ShardResult {
        guard !board.isDeleted else { return .refused(Status(.notFound, "board \(request.boardID) not found")) }
        let partition = partition(for: board)
        let existing = partition.entry(for: request.playerID)
        if existing == nil {
            if memory.isExceeded {
                noteWrite()
                return .refused(Status(.resourceExhausted, memory.refusalMessage))
            }
            guard board.reserveEntry() else {
                return .refused(Status(
                    .resourceExhausted,
                    "board \(request.boardID) is full: max_entries is \(board.config.limits.maxEntries)"))
            }
        }
        let previousLocalBetter = existing.map { partition.countBetter(than: $0.key) }
        let outcome: WriteOutcome
        do {
            outcome = try partition.write(
                playerID: request.playerID, score: request.score, subscore: request.subscore,
                metadata: request.metadata, sequence: board.nextSequence())
        } catch {
            if existing == nil { board.releaseEntries(1) }
            return .refused(Status(.invalidArgument, "\(error)"))
        }
        let changedAnything = outcome.created || outcome.keyChanged || outcome.previous != outcome.current
        let version = changedAnything ? board.bumpVersion() : board.version
        if changedAnything {
            note(board, player: request.playerID, previous: outcome.previous, current: outcome.current, created: outcome.created, version: version)
        }
        noteWrite()
        return .submitted(SubmitOnShard(
            outcome: outcome, previousLocalBetter: previousLocalBetter,
            currentLocalBetter: partition.countBetter(than: outcome.current.key), boardVersion: version))
    }

    /// Entries held by this shard over all boards (for /metrics).
    func entryCount() -> Int {
        partitions.values.reduce(0) { $0 + $1.count }
    }

    private func noteWrite() {
        writesSinceMemoryRefresh += 1
        if writesSinceMemoryRefresh >= memory.writesPerRefresh {
            writesSinceMemoryRefresh = 0
            memory.refresh()
        }
    }

    private func partition(for board: BoardHandle) -> BoardPartition {
        if let existing = partitions[board.incarnation] { return existing }
        let created = BoardPartition(config: board.config)
        partitions[board.incarnation] = created
        return created
    }
}
