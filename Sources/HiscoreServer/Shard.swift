import Atomics
import HiscoreCore
import HiscoreStorage
import HiscoreWire
import Logging
import NIOConcurrencyHelpers
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
    /// Numbers this shard's write notes per board (by incarnation), in the order they are made
    /// and so in the order the board's hub receives them: the hub compares a query's
    /// `noteSequence` with them to know which notes the query's counts already reflect.
    private var noteSequences: [UInt64: UInt64] = [:]
    /// This shard's write-ahead log (nil in memory mode), set after recovery.
    private var log: ShardLog? {
        didSet { openedLog.withLockedValue { $0 = log } }
    }
    /// `log`, readable from any thread (readiness, metrics).
    private nonisolated let openedLog = NIOLockedValueBox<ShardLog?>(nil)
    private var snapshotThreshold: UInt64 = .max
    /// Records of the batch being executed, appended to the log in one go when it ends.
    private var pendingRecords: [LogRecord] = []
    private var snapshot: SnapshotProgress?
    /// An erasure asked for a snapshot: the next one starts whatever the log's size, so that the
    /// erased player's bytes leave the data directory (the segments and the snapshot holding them
    /// are deleted once it is published). Read by a finished snapshot on its writer's thread.
    private nonisolated let snapshotRequested = ManagedAtomic<Bool>(false)
    /// This trip asked for a snapshot (`requestSnapshot`): start it even if the trip wrote nothing.
    private var snapshotAskedThisTrip = false
    /// For /metrics, from any thread: snapshots published and failed, and whether one runs.
    nonisolated let snapshotCounts = SnapshotCounts()
    private nonisolated let logger: Logger
    /// The log's failure was logged (once per shard: every later write fails alike).
    private nonisolated let logFailureLogged = ManagedAtomic<Bool>(false)

    init(
        index: Int, loop: any EventLoop, memory: MemoryCeiling, streams: StreamCoordinator? = nil,
        logger: Logger = Logger(label: "hiscored")
    ) {
        self.index = index
        self.loop = loop
        self.memory = memory
        self.streams = streams
        self.logger = logger
    }

    /// Executes a batch, appending one result per operation to `results`.
    func execute(_ operations: [ShardOperation], into results: inout [ShardResult]) {
        prepareSubmitRuns(operations)
        prepareCountRuns(operations)
        prepareLookupRuns(operations)
        results.reserveCapacity(results.count + operations.count)
        // Through the buffer: its elements are read in place, where a for-in or the array's
        // subscript copies each one (an outlined copy of the whole enum per operation).
        operations.withUnsafeBufferPointer { operations in
            for index in operations.indices { results.append(execute(operations[index])) }
        }
        if !outbox.isEmpty, let streams {
            for (home, notes) in outbox { streams.deliver(notes, toShard: home) }
            outbox.removeAll()
        }
    }

    /// Hands each run of consecutive submits to one board to its partition's `prepareWrites`, so
    /// that their cache misses overlap (a pipelined connection's read batch is mostly such runs).
    /// Only a prefetch: what the submits do is decided when they execute.
    private func prepareSubmitRuns(_ operations: [ShardOperation]) {
        Self.forEachRun(of: operations, board: { if case .submit(let board, _) = $0 { board } else { nil } }) { run, board in
            guard run.count > 1, let partition = partitions[board.incarnation] else { return }
            partition.prepareWrites(count: run.count, countingBetter: true) { offset in
                guard case .submit(_, let request) = operations[run.lowerBound + offset] else {
                    preconditionFailure("a run holds only submits")
                }
                // A new entry's sequence is above every stored one: any such guess walks
                // to where the write will land.
                return BoardPartition.UpcomingWrite(
                    playerID: request.playerID, score: request.score, subscore: request.subscore, sequence: .max)
            }
        }
    }

    /// Hands the keys of each run of consecutive counts on one board to its partition's
    /// `prepareCounts`: the counts another shard asks for each submit of a pipelined batch
    /// arrive as such a run, and their descents are cold. Only a prefetch.
    private func prepareCountRuns(_ operations: [ShardOperation]) {
        Self.forEachRun(of: operations, board: { if case .countBetter(let board, _, _) = $0 { board } else { nil } }) { run, board in
            var keyCount = 0
            for case .countBetter(_, let keys, _) in operations[run] { keyCount += keys.count }
            guard keyCount > 1, let partition = partitions[board.incarnation] else { return }
            withUnsafeTemporaryAllocation(of: RankKey.self, capacity: keyCount) { runKeys in
                var filled = 0
                for case .countBetter(_, let keys, _) in operations[run] {
                    for index in 0..<keys.count {
                        runKeys[filled] = keys[index]
                        filled += 1
                    }
                }
                partition.prepareCounts(count: filled) { runKeys[$0] }
            }
        }
    }

    /// Hands the player ids of each run of consecutive lookups on one board (a pipelined batch of
    /// `get_rank` calls, or one `entries` call's ids) to its partition's `prepareLookups`: each is
    /// a bucket, a record and a path to count, all cold. Only a prefetch.
    private func prepareLookupRuns(_ operations: [ShardOperation]) {
        Self.forEachRun(of: operations, board: { operation in
            switch operation {
            case .lookupOne(let board, _, _), .lookup(let board, _, _), .lookupCounted(let board, _, _): board
            default: nil
            }
        }) { run, board in
            var idCount = 0
            for operation in operations[run] { idCount += Self.lookupIDCount(operation) }
            guard idCount > 1, let partition = partitions[board.incarnation] else { return }
            // The run's ids in order, without copying them into an array: position -> (operation, id).
            var operationIndex = run.lowerBound
            var idInOperation = 0
            var expected = 0
            partition.prepareLookups(count: idCount) { position in
                assert(position == expected, "prepareLookups asks for the ids in order")
                expected += 1
                while idInOperation >= Self.lookupIDCount(operations[operationIndex]) {
                    operationIndex += 1
                    idInOperation = 0
                }
                defer { idInOperation += 1 }
                switch operations[operationIndex] {
                case .lookupOne(_, let playerID, _): return playerID
                case .lookup(_, let playerIDs, _), .lookupCounted(_, let playerIDs, _): return playerIDs[idInOperation]
                default: preconditionFailure("a lookup run holds only lookups")
                }
            }
        }
    }

    private static func lookupIDCount(_ operation: ShardOperation) -> Int {
        switch operation {
        case .lookupOne: 1
        case .lookup(_, let playerIDs, _), .lookupCounted(_, let playerIDs, _): playerIDs.count
        default: 0
        }
    }

    /// Calls `body` with each maximal run of consecutive operations that `board` maps to one
    /// board (operations it maps to nil belong to no run).
    private static func forEachRun(
        of operations: [ShardOperation], board: (ShardOperation) -> BoardRef?, _ body: (Range<Int>, BoardRef) -> Void
    ) {
        // Through the buffer, read in place: the array's subscript would copy each operation
        // for each of the three kinds of run looked for.
        operations.withUnsafeBufferPointer { operations in
            var runStart = 0
            while runStart < operations.count {
                guard let first = board(operations[runStart]) else {
                    runStart += 1
                    continue
                }
                var runEnd = runStart + 1
                while runEnd < operations.count, let next = board(operations[runEnd]), next.same(as: first) { runEnd += 1 }
                body(runStart..<runEnd, first)
                runStart = runEnd
            }
        }
    }

    /// Runs `executeDurably(trip)` from the shard's own loop, outside the actor's isolation.
    ///
    /// What `assumeIsolated` does, without its cost: that one passes the body through
    /// `withoutActuallyEscaping` and a reabstraction, two heap boxes per call, which was most of
    /// what a single call allocated (measured with a uprobe on malloc). Here the body is a
    /// function without captures, so nothing is boxed. Same check: trap unless on the loop,
    /// which is this actor's executor (a programming error, never reachable from input).
    nonisolated func execute(_ trip: ShardTrip) {
        loop.preconditionInEventLoop()
        typealias Isolated = (isolated Shard, ShardTrip) -> Void
        typealias Unchecked = (Shard, ShardTrip) -> Void
        let body: Isolated = { shard, trip in shard.executeDurably(trip) }
        unsafeBitCast(body, to: Unchecked.self)(self, trip)
    }

    /// Executes a trip's operations into its results and completes it (on this shard's loop)
    /// once its writes are as durable as the mode promises: in `fsync` mode after the group fsync
    /// covering them (the batch's records go to the log in one append), otherwise at once.
    func executeDurably(_ trip: ShardTrip) {
        execute(trip.operations, into: &trip.results)
        guard let log, !pendingRecords.isEmpty else {
            pendingRecords.removeAll(keepingCapacity: true)
            if snapshotAskedThisTrip { maybeStartSnapshot() }
            snapshotAskedThisTrip = false
            // No record of its own, but a write that changed nothing reports the state earlier
            // writes made, whose records may still wait for their group fsync (or in the pending
            // buffer while the writer is inside one): acknowledged now, a crash could take back
            // what it said. Reads are answered at once.
            if let log, log.mode == .fsync, trip.operations.contains(where: \.answersAfterEarlierWrites) {
                log.whenAppendedDurable(trip.durable)
                return
            }
            trip.complete(failure: nil)
            return
        }
        let position = log.append(pendingRecords)
        pendingRecords.removeAll(keepingCapacity: true)
        maybeStartSnapshot()
        snapshotAskedThisTrip = false
        guard log.mode == .fsync else {
            // Async mode acknowledges before the disk has the writes, but never writes the log
            // has dropped: after a failed write or fsync (a full disk) every later record is
            // dropped, and acknowledging them would lose all of them at the next restart.
            trip.complete(failure: log.appendFailure)
            return
        }
        log.whenDurable(position, trip.durable)
    }

    /// A write could not be made durable: the log has failed (a full disk, an I/O error) and
    /// refuses every later write until a restart. Clients get UNAVAILABLE saying so and /readyz
    /// turns 503, but the server's own log said nothing: the operator reading it must learn
    /// what happened and what to do. Any thread (the log's writer completes fsync-mode trips).
    nonisolated func noteLogFailure(_ failure: any Error) {
        // A shutdown closes the logs under writes still arriving: no news.
        if let storage = failure as? StorageError, storage == .closed { return }
        guard logFailureLogged.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        logger.error("shard \(index): \(failure); writes to this shard are refused from now on (reads go on); free space or fix the disk, then restart hiscored, which recovers every acknowledged write")
    }

    private func note(_ board: BoardHandle, player: String, previous: LeaderboardEntry?, current: LeaderboardEntry?, created: Bool, version: UInt64) {
        guard board.subscriberCount > 0 else { return }
        let entry = board.feedSubscriberCount > 0 ? current : nil
        let sequence = (noteSequences[board.incarnation] ?? 0) + 1
        noteSequences[board.incarnation] = sequence
        outbox[board.homeShard, default: []].append(WriteNote(
            board: board, playerID: player, previousKey: previous?.key, currentKey: current?.key, entry: entry,
            created: created, version: version, shard: index, sequence: sequence))
    }

    func execute(_ operation: ShardOperation) -> ShardResult {
        switch operation {
        case .submit(let board, let request):
            return board.with { submit($0, request) }
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
        case .lookupCounted(let board, let playerIDs, let competition):
            guard let partition = partitions[board.incarnation] else {
                return .found(Array(repeating: nil, count: playerIDs.count))
            }
            let codec = board.with { $0.config.codec }
            return .found(playerIDs.map { id in
                partition.entry(for: id).map { entry in
                    let counting = competition ? codec.firstKey(score: entry.score, subscore: entry.subscore) : entry.key
                    return LocatedEntry(entry: entry, localBetter: partition.countBetter(than: counting), localDistinctBetter: 0)
                }
            })
        case .lookupOne(let board, let playerID, let counting):
            guard let partition = partitions[board.incarnation], let entry = partition.entry(for: playerID) else {
                return .foundOne(nil)
            }
            let localBetter = counting ? partition.countBetter(than: entry.key) : 0
            return .foundOne(LocatedEntry(entry: entry, localBetter: localBetter, localDistinctBetter: 0))
        case .countBetter(let board, let keys, let orEqual):
            guard let partition = partitions[board.incarnation] else { return .counts(CountList(count: keys.count) { _ in 0 }) }
            // These keys are mostly other shards' entries (a rank's or a submit's second phase)
            // or tie groups' first keys: absent here, which `thanAbsent` settles without a leaf.
            return .counts(CountList(count: keys.count) {
                orEqual ? partition.countBetterOrEqual(than: keys[$0]) : partition.countBetter(thanAbsent: keys[$0])
            })
        case .entriesAtRanks(let board, let range):
            guard let partition = partitions[board.incarnation] else { return .entries([], partitionSize: 0) }
            return .entries(
                partition.entries(fromRank: range.lowerBound, limit: range.count), partitionSize: partition.count)
        case .keysAtRanks(let board, let range):
            guard let partition = partitions[board.incarnation] else { return .keys([], partitionSize: 0) }
            return .keys(partition.keys(fromRank: range.lowerBound, limit: range.count), partitionSize: partition.count)
        case .entriesAfter(let board, let key, let limit):
            guard let partition = partitions[board.incarnation] else { return .entriesAfter([], countUpToKey: 0) }
            return .entriesAfter(
                partition.entries(after: key, limit: limit), countUpToKey: partition.countBetterOrEqual(than: key))
        case .entryRun(let board, let key, let before, let count):
            guard let partition = partitions[board.incarnation] else {
                return .entryRun(EntryRun(localStart: 0, entries: [], partitionSize: 0))
            }
            return .entryRun(partition.entryRun(around: key, before: before, count: count))
        case .neighbours(let board, let key, let before, let after, let centre):
            guard let partition = partitions[board.incarnation] else {
                return .neighbours(better: [], worse: [], betterCount: 0)
            }
            // The centre player's key was read in an earlier step; a write since moved it off
            // `key`, and its new entry would show up as its own neighbour (and count as better).
            if let centre, let moved = partition.key(for: centre), moved != key {
                let better = partition.entries(before: key, limit: before + 1).filter { $0.playerID != centre }
                let worse = partition.entries(after: key, limit: after + 1).filter { $0.playerID != centre }
                return .neighbours(
                    better: Array(better.suffix(before)), worse: Array(worse.prefix(after)),
                    betterCount: partition.countBetter(than: key) - (moved < key ? 1 : 0))
            }
            return .neighbours(
                better: partition.entries(before: key, limit: before), worse: partition.entries(after: key, limit: after),
                betterCount: partition.countBetter(than: key))
        case .countScores(let board, let min, let max):
            return .count(partitions[board.incarnation]?.countScores(min: min, max: max) ?? 0)
        case .distinctBetter(let board, let keys):
            guard let partition = partitions[board.incarnation] else { return .counts(CountList(count: keys.count) { _ in 0 }) }
            return .counts(CountList(count: keys.count) { partition.distinctScoresBetter(than: keys[$0]) })
        case .remove(let board, let playerID):
            // As a submit: a board deleted, or reset (archived), since the call was routed is not
            // the board the caller meant, and an archived period must not change.
            guard !board.isDeleted else { return .refused(Status(.notFound, "board \(board.config.id) not found")) }
            guard !board.isArchived else {
                return .refused(Status(.aborted, "board \(board.config.id) was reset while this removal was in flight; remove again"))
            }
            guard let partition = partitions[board.incarnation], let entry = partition.entry(for: playerID) else {
                return .removed(nil)
            }
            let located = LocatedEntry(
                entry: entry, localBetter: partition.countBetter(than: entry.key), localDistinctBetter: 0)
            _ = partition.remove(playerID: playerID)
            board.releaseEntries(1)
            let version = board.bumpVersion()
            if log != nil { pendingRecords.append(.remove(board: board.incarnation, playerID: playerID)) }
            note(board, player: playerID, previous: entry, current: nil, created: false, version: version)
            board.topCache.noteWrite(previous: entry.key, current: nil)
            noteWrite()
            return .removed(located)
        case .noteSequence(let board):
            return .noteSequence(noteSequences[board.incarnation] ?? 0)
        case .writesDurable:
            return .writesDurable
        case .dropBoard(let board):
            noteSequences[board.incarnation] = nil
            let removed = partitions.removeValue(forKey: board.incarnation)?.count ?? 0
            memory.refresh()
            return .dropped(removed)
        case .erase(let playerID, let boards):
            return .erased(erase(playerID, from: boards))
        case .requestSnapshot:
            if log != nil {
                snapshotRequested.store(true, ordering: .relaxed)
                snapshotAskedThisTrip = true
            }
            return .erased(0)
        }
    }

    /// Removes the player from each board's partition here, live or archived, logging each
    /// removal as `remove_player` does (recovery replays removals from archived periods too). An
    /// archived period has no streams and no version; its size and cached top change all the same.
    private func erase(_ playerID: String, from boards: [BoardHandle]) -> Int {
        var removed = 0
        for board in boards where !board.isDeleted {
            guard let entry = partitions[board.incarnation]?.remove(playerID: playerID) else { continue }
            removed += 1
            if log != nil { pendingRecords.append(.remove(board: board.incarnation, playerID: playerID)) }
            board.topCache.noteWrite(previous: entry.key, current: nil)
            board.releaseEntries(1)
            guard !board.isArchived else { continue }
            let version = board.bumpVersion()
            note(board, player: playerID, previous: entry, current: nil, created: false, version: version)
        }
        if removed > 0 { noteWrite() }
        return removed
    }

    /// Above the memory ceiling, an update may not make a player's metadata longer: updates go on
    /// so that a full server keeps its standings current, but a blob growing (up to
    /// `BoardLimits.metadataCeiling` bytes for each existing player) would take the process past
    /// its ceiling as surely as new players would. New players are refused by the write itself.
    /// Costs a lookup only while the ceiling is exceeded.
    private func metadataGrowthRefusal(_ partition: BoardPartition, _ request: SubmitRequest) -> Status? {
        guard let metadata = request.metadata, !metadata.isEmpty,
            let stored = partition.replacedMetadataCount(for: request.playerID, score: request.score, subscore: request.subscore),
            metadata.count > stored
        else { return nil }
        return Status(
            .resourceExhausted,
            memory.refusalMessage + "; metadata may not grow meanwhile (player \(request.playerID) holds \(stored) bytes, this write sends \(metadata.count)): send at most \(stored) bytes, or none to keep what is stored")
    }

    private func submit(_ board: BoardHandle, _ request: SubmitRequest) -> ShardResult {
        guard !board.isDeleted else { return .refused(Status(.notFound, "board \(request.boardID) not found")) }
        guard !board.isArchived else {
            return .refused(Status(.aborted, "board \(request.boardID) was reset while this submit was in flight; submit again"))
        }
        let partition = partition(for: board)
        if memory.isExceeded, let refusal = metadataGrowthRefusal(partition, request) {
            // Counted as a write, as the ceiling's other refusals are: how it notices freed memory.
            noteWrite()
            return .refused(refusal)
        }
        let outcome: WriteOutcome
        var better = BetterCounts()
        // A new player is admitted by the write itself, once its lookup finds no entry: above the
        // memory ceiling, or on a full board, it is refused and nothing changes.
        var refusal: Status?
        var refusedByMemory = false
        var reserved = false
        do {
            outcome = try partition.write(
                playerID: request.playerID, score: request.score, subscore: request.subscore,
                metadata: request.metadata, sequence: board.nextSequence(), countingBetter: &better,
                admittingNew: {
                    if memory.isExceeded {
                        refusal = Status(.resourceExhausted, memory.refusalMessage)
                        refusedByMemory = true
                        return false
                    }
                    guard board.reserveEntry() else {
                        refusal = Status(
                            .resourceExhausted,
                            "board \(request.boardID) is full: max_entries is \(board.config.limits.maxEntries)")
                        return false
                    }
                    reserved = true
                    return true
                })
        } catch {
            if reserved { board.releaseEntries(1) }
            if let refusal {
                // Refusals count as writes for the ceiling's refresh, which is how it notices
                // memory freed by a deleted board while only refusals arrive.
                if refusedByMemory { noteWrite() }
                return .refused(refusal)
            }
            // A full partition is a capacity limit, not a bad request.
            if case WriteError.partitionFull = error {
                return .refused(Status(.resourceExhausted, "board \(board.config.id): \(error) (the engine's structural limit; spread the players over more shards)"))
            }
            return .refused(Status(.invalidArgument, "\(error)"))
        }
        let changedAnything = outcome.created || outcome.keyChanged || outcome.previous != outcome.current
        let version = changedAnything ? board.bumpVersion() : board.version
        if changedAnything {
            if log != nil {
                let current = outcome.current
                pendingRecords.append(.put(PutRecord(
                    board: board.incarnation, playerID: current.playerID, score: current.score, subscore: current.subscore,
                    sequence: current.sequence, metadata: current.metadata)))
            }
            note(board, player: request.playerID, previous: outcome.previous, current: outcome.current, created: outcome.created, version: version)
            board.topCache.noteWrite(previous: outcome.previous?.key, current: outcome.current.key)
        }
        noteWrite()
        // The write's own descents counted (at almost no cost); what an unmoved entry would cost
        // on top, a descent, is skipped when the caller wants no ranks.
        guard !request.skipRanks else {
            return .submitted(SubmitOnShard(
                current: outcome.current, previousKey: outcome.previous?.key, keyChanged: outcome.keyChanged,
                created: outcome.created, previousLocalBetter: nil, currentLocalBetter: 0, boardVersion: version))
        }
        // A moved entry's counts come from the write's own descents (removal and insertion); an
        // unchanged key (a worse `best` submit) costs one descent here, and it is both counts.
        let currentLocalBetter = better.current ?? partition.countBetter(than: outcome.current.key)
        let previousLocalBetter = outcome.previous.map { previous in
            guard outcome.keyChanged else { return currentLocalBetter }
            return better.previous ?? (partition.countBetter(than: previous.key) - (outcome.current.key < previous.key ? 1 : 0))
        }
        assert(better.current == nil || better.current == partition.countBetter(than: outcome.current.key))
        return .submitted(SubmitOnShard(
            current: outcome.current, previousKey: outcome.previous?.key, keyChanged: outcome.keyChanged,
            created: outcome.created, previousLocalBetter: previousLocalBetter,
            currentLocalBetter: currentLocalBetter, boardVersion: version))
    }

    // MARK: recovery and snapshots

    /// Rebuilds this shard from its snapshot and log, ignoring boards no longer in the catalog,
    /// then opens the log for appending. Runs on the shard's loop before the server listens.
    func recover(
        directory: DataDirectory, boards: [UInt64: BoardHandle], mode: DurabilityMode, snapshotAfterLogBytes: UInt64,
        logOptions: ShardLog.Options = ShardLog.Options()
    ) throws(StorageError) -> RecoveryReport {
        // Streamed: each snapshot entry and log record goes into the partitions as it is read,
        // so start-up never holds a second copy of the shard (a collected snapshot and log
        // would: several times the shard's memory, for a server sized near its limit).
        var applier = RecoveryApplier(boards: boards, partitions: partitions)
        let report = try ShardLog.recover(directory: directory, shard: index, visitor: &applier)
        partitions = applier.partitions
        for (incarnation, partition) in partitions {
            boards[incarnation]?.restored(entries: partition.count, highestSequence: applier.highest[incarnation] ?? 0)
        }
        log = try ShardLog(directory: directory, shard: index, mode: mode, recovered: report, options: logOptions)
        snapshotThreshold = snapshotAfterLogBytes
        if report.removalRecords > 0 {
            // Removed players' bytes are still in the log replayed: an erasure answered before a
            // crash asked for a snapshot that only memory knew of, and a removal's bytes would
            // otherwise stay until the log grew by `snapshotAfterLogBytes`, which a quiet server
            // may never do. One snapshot now, in the background, as an erasure starts one.
            snapshotRequested.store(true, ordering: .relaxed)
            maybeStartSnapshot()
        }
        return report
    }

    /// Why this shard's log refuses writes, once a write or fsync failed (disk full, I/O error):
    /// it stays so until a restart, and every write to the shard gets UNAVAILABLE meanwhile.
    nonisolated var logFailure: StorageError? { openedLog.withLockedValue { $0 }?.failure }

    /// Makes everything appended so far durable (shutdown, backups).
    func flushLog() -> ShardLog? { log }

    /// Shutdown: drops a snapshot still being copied, then closes the log (which makes every
    /// append durable). The snapshot's thread waits for its next chunk or `finish`, which a
    /// stopped loop would never send: dropped, it ends and deletes its temporary file, and the
    /// log keeps every segment the snapshot would have replaced.
    func closeLog() {
        if let progress = snapshot {
            snapshot = nil
            progress.writer.abandon()
            snapshotCounts.running.store(false, ordering: .relaxed)
        }
        log?.close()
    }

    /// Snapshot counters of one shard, readable from any thread (/metrics).
    final class SnapshotCounts: Sendable {
        let published = ManagedAtomic<Int>(0)
        let failed = ManagedAtomic<Int>(0)
        let running = ManagedAtomic<Bool>(false)
    }

    private struct SnapshotProgress {
        let writer: SnapshotWriter
        var cursor: SnapshotCursor
    }

    /// Entries copied into the snapshot per loop turn: the writes of other calls wait at most one
    /// chunk (about a millisecond), never the whole snapshot.
    static let snapshotChunkEntries = 4096

    /// Starts a snapshot when the log has grown past the threshold, or an erasure asked for one
    /// (never on a timer).
    private func maybeStartSnapshot() {
        guard snapshot == nil, let log,
            snapshotRequested.load(ordering: .relaxed) || log.bytesSinceSnapshot >= snapshotThreshold,
            let writer = log.beginSnapshot()
        else {
            return
        }
        // It starts after every removal made so far, so it holds none of those players.
        _ = snapshotRequested.exchange(false, ordering: .relaxed)
        snapshotCounts.running.store(true, ordering: .relaxed)
        snapshot = SnapshotProgress(writer: writer, cursor: SnapshotCursor(boards: partitions.map { ($0.key, $0.value) }))
        scheduleSnapshotChunk()
    }

    /// Chunks the snapshot's writer may hold unencoded before the shard waits for its disk: the
    /// copy runs at memory speed and the file at disk speed, and without this most of the shard
    /// could sit queued in the writer (here at most 16K entries: a few MB with small metadata,
    /// up to ~65 MB with 4 KiB each).
    static let maxQueuedSnapshotChunks = 4

    private func scheduleSnapshotChunk() {
        loop.execute { [self] in self.assumeIsolated { $0.snapshotChunk() } }
    }

    private func snapshotChunk() {
        guard var progress = snapshot else { return }
        if progress.writer.queuedChunks >= Self.maxQueuedSnapshotChunks {
            // Only while a snapshot runs and its disk is behind: look again in a millisecond.
            loop.scheduleTask(in: .milliseconds(1)) { [self] in self.assumeIsolated { $0.snapshotChunk() } }
            return
        }
        // A snapshot that failed already (a full disk) is finished at once, which reports it.
        guard !progress.writer.hasFailed,
            let chunk = progress.cursor.nextChunk(limit: Self.snapshotChunkEntries, isLive: { partitions[$0] === $1 })
        else {
            snapshot = nil
            // Reported from the writer's thread: a shutdown may already have stopped this loop
            // (and closing the log fails a running snapshot with `.closed`, which is no news).
            let (logger, shard, threshold) = (logger, index, snapshotThreshold)
            let (loop, requested, counts) = (loop, snapshotRequested, snapshotCounts)
            progress.writer.finish { [self] result in
                counts.running.store(false, ordering: .relaxed)
                switch result {
                case .success:
                    counts.published.wrappingIncrement(ordering: .relaxed)
                    // Erasures made while this one ran may be in it: the next starts now (the
                    // log is open, so the loop still runs), not at the shard's next write.
                    if requested.load(ordering: .relaxed) {
                        loop.execute { self.assumeIsolated { $0.maybeStartSnapshot() } }
                    }
                case .failure(let error):
                    // Not retried for erasures (a full disk would fail it again and again): the
                    // erased players' bytes stay until a snapshot succeeds, which the log says.
                    guard error != .closed else { return }
                    counts.failed.wrappingIncrement(ordering: .relaxed)
                    Self.logSnapshotFailure(error, logger: logger, shard: shard, threshold: threshold)
                }
            }
            return
        }
        if !chunk.entries.isEmpty {
            progress.writer.add(board: chunk.incarnation, entries: chunk.entries.map {
                SnapshotEntry(playerID: $0.playerID, score: $0.score, subscore: $0.subscore, sequence: $0.sequence, metadata: $0.metadata)
            })
        }
        snapshot = progress
        scheduleSnapshotChunk()
    }

    /// A snapshot could not be written (a full disk, say): its temporary file was dropped and the
    /// log it would have replaced stays whole, so nothing is lost, but the log keeps growing
    /// until one succeeds (the next is tried after another threshold of log). Until 2026-11-30
    /// the failure was dropped without a word.
    private static func logSnapshotFailure(_ error: StorageError, logger: Logger, shard: Int, threshold: UInt64) {
        logger.error("shard \(shard): snapshot failed: \(error); the log keeps every write and grows until a snapshot succeeds (the next is tried after \(threshold) more bytes of log); players erased meanwhile stay in its files until then")
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

/// Applies recovery's stream of snapshot entries and log records to a shard's partitions as
/// they are read, noting each board's highest sequence (`Shard.recover`, on the shard's loop).
private struct RecoveryApplier: RecoveryVisitor {
    let boards: [UInt64: BoardHandle]
    var partitions: [UInt64: BoardPartition]
    var highest: [UInt64: UInt64] = [:]

    mutating func snapshotEntry(board: UInt64, _ entry: SnapshotEntry) {
        restore(board, entry.playerID, entry.score, entry.subscore, entry.metadata, entry.sequence)
    }

    mutating func logRecord(_ record: LogRecord) {
        switch record {
        case .put(let put):
            restore(put.board, put.playerID, put.score, put.subscore, put.metadata, put.sequence)
        case .remove(let incarnation, let playerID):
            _ = partitions[incarnation]?.remove(playerID: playerID)
        case .clearBoard(let incarnation):
            partitions[incarnation]?.removeAll()
        }
    }

    /// Boards no longer in the catalog are skipped; a record the engine refuses (it cannot be,
    /// as the server wrote it) is skipped too, not fatal.
    private mutating func restore(
        _ incarnation: UInt64, _ playerID: String, _ score: Int64, _ subscore: Int64, _ metadata: [UInt8], _ sequence: UInt64
    ) {
        guard let board = boards[incarnation] else { return }
        let partition: BoardPartition
        if let existing = partitions[incarnation] {
            partition = existing
        } else {
            partition = BoardPartition(config: board.config)
            partitions[incarnation] = partition
        }
        try? partition.restore(playerID: playerID, score: score, subscore: subscore, metadata: metadata, sequence: sequence)
        highest[incarnation] = max(highest[incarnation] ?? 0, sequence)
    }
}
