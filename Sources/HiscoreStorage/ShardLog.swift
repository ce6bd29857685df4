#if canImport(Glibc)
import Glibc
#endif

/// One shard's write-ahead log: redo records, group-committed by a dedicated writer thread.
///
/// Threading contract:
/// - `append`, `beginSnapshot` and `SnapshotWriter.add/finish` are called from the shard's own
///   thread only (they are ordered with the shard's in-memory mutations: a mutation and its
///   record must be appended in the same turn, before any snapshot chunk is taken).
/// - `append` only encodes into the pending buffer under a mutex: no system call on the shard's
///   thread except, when the writer is asleep, one futex wake.
/// - The writer thread takes the *whole* pending buffer, writes it with one `write`, and in
///   `.fsync` mode `fdatasync`s it, then runs the completions it covered, in registration order.
///
/// Group-commit window: a record appended while the writer is inside an fsync waits for that
/// fsync to end and then for its own batch's write + fsync, so an acknowledgement waits at most
/// two fsyncs; everything appended meanwhile shares the second fsync, so under load the number
/// of fsyncs per second stays near 1 / fsync latency however many writes arrive.
///
/// Back-pressure: when the pending buffer holds more than `Options.maxPendingBytes` (64 MiB),
/// `append` blocks the caller until the writer has taken the buffer (at most one write + fsync).
/// The server should stop reading from clients well before that by watching `pendingBytes`.
///
/// Failure: if a write or fsync fails the log is poisoned (after a failed fsync the kernel may
/// have dropped the dirty pages, so retrying could falsely succeed). Every waiting and future
/// completion past the durable point gets `.failure`, appends are dropped, and `failure` is set:
/// the server should stop accepting writes and exit; a restart recovers what reached the disk.
///
/// `close()` must be called (it drains, syncs and joins the writer thread, which keeps the log alive).
public final class ShardLog: @unchecked Sendable {
    public struct Options: Sendable {
        /// `.async` mode: the longest time written data stays without fdatasync.
        public var asyncFlushInterval: Double
        /// Pending (not yet written) bytes above which `append` blocks.
        public var maxPendingBytes: Int
        /// Test hook: called on the writer thread just before each group fsync.
        var beforeGroupSyncForTesting: (@Sendable () -> Void)?
        /// Test hook: asked with the name of each thread this log starts (its writer, a
        /// snapshot's); an error number makes the start fail as a refused `pthread_create` would.
        var refuseThreadForTesting: (@Sendable (String) -> Int32?)?

        public init(asyncFlushInterval: Double = 1.0, maxPendingBytes: Int = 64 << 20) {
            self.asyncFlushInterval = asyncFlushInterval
            self.maxPendingBytes = maxPendingBytes
        }
    }

    /// Counters, for telemetry and for tests that prove batching.
    public struct Statistics: Sendable, Equatable {
        /// `fdatasync` calls on segment files.
        public var syncs: Int = 0
        /// `write` batches.
        public var writes: Int = 0
        public var bytesWritten: UInt64 = 0
    }

    public typealias Completion = @Sendable (Result<Void, StorageError>) -> Void

    struct Waiter {
        let position: UInt64
        let completion: Completion
    }

    public let mode: DurabilityMode
    public let shard: Int
    let directory: DataDirectory?
    let shardPath: String
    let options: Options

    // MARK: State shared with the writer thread (guarded by `lock`)

    let lock = ConditionLock()
    /// The writer waits on this for work.
    let workAvailable: Condition
    /// Broadcast after every batch and sync: back-pressure and durability waiters.
    let progress: Condition

    var pending: [UInt8] = []
    var spare: [UInt8] = []
    /// Segment switches inside `pending`: bytes from `offset` on go to `segment`.
    var pendingRotations: [(offset: Int, segment: UInt64)] = []
    var appendedEnd: UInt64 = 0
    var writtenEnd: UInt64 = 0
    var durableEnd: UInt64 = 0
    /// The newest segment file the writer has created (and made durable in the directory).
    var openedSegment: UInt64 = 0
    /// Someone (flush, snapshot) wants everything up to here fsynced now, whatever the mode.
    var syncRequested: UInt64 = 0
    var waiters: [Waiter] = []
    /// The waiters one firing completes, kept between firings so that a group commit allocates
    /// no list (a firing takes it out under the lock and puts it back emptied). Waiters, not
    /// (completion, result) pairs: a closure stored in a generic tuple is re-boxed per element.
    var readyWaiters: [Waiter] = []
    var waitersHead = 0
    var firing = false
    var writerSleeping = false
    /// The writer sleeps with a deadline (async mode, unsynced data): it will write what is pending
    /// by then anyway, so appends need not wake it.
    var writerTimedWait = false
    var closing = false
    var failureState: StorageError?
    var stats = Statistics()

    // MARK: Caller-thread state (also under `lock`, for readers on other threads)

    /// The segment new appends go to.
    var currentSegment: UInt64
    var snapshotBase: UInt64 = 0
    var carriedBytesSinceSnapshot: UInt64
    var snapshotInProgress = false

    // MARK: Writer-thread state

    var fd: Int32 = -1
    var fdPath = ""
    /// Bytes written to the open segment (each is new: `openSegment` creates it), where a failed
    /// write is cut back to.
    var segmentBytes = 0
    /// The open segment's key (`SegmentHeader`).
    var segmentKey: UInt32 = 0
    var lastSyncNanos: UInt64 = 0
    var thread: WorkerThread?

    // MARK: Async mode's syncer (state under `lock`)

    /// Async mode: the thread that makes the periodic fdatasync, so that the writer goes on
    /// handing appended data to the OS meanwhile. When the writer made that call itself, what
    /// was appended during it stayed in `pending` for as long as it took: a process crash lost
    /// all of it, not only the last `asyncWriteIntervalNanos` (a crash hunt held a 200 ms
    /// fdatasync and lost the 20 writes acknowledged during it). nil in the other modes.
    var syncer: WorkerThread?
    /// The periodic fdatasync handed to the syncer and not yet taken: a duplicate of the
    /// segment's descriptor (the writer may close its own at a rotation meanwhile), its path,
    /// and the logical end it makes durable (what was written when it was handed over).
    var syncerJob: (fd: Int32, path: String, end: UInt64)?
    /// A periodic fdatasync is handed over or running: the writer hands over no other.
    var syncerBusy = false
    var syncerStopping = false
    let syncerWork: Condition

    /// Opens the log for appending after `recovered` (the proof that this shard's files were
    /// recovered and any torn tail cut): creates a new segment after the newest one and starts
    /// the writer thread. `.memory` mode touches no file.
    public init(
        directory: DataDirectory, shard: Int, mode: DurabilityMode, recovered: RecoveryReport,
        options: Options = Options()
    ) throws(StorageError) {
        precondition(recovered.shard == shard, "recovery report of shard \(recovered.shard) used for shard \(shard)")
        self.mode = mode
        self.shard = shard
        self.directory = directory
        self.shardPath = directory.shardPath(shard)
        self.options = options
        workAvailable = Condition(lock)
        progress = Condition(lock)
        syncerWork = Condition(lock)
        currentSegment = recovered.lastSegment + 1
        carriedBytesSinceSnapshot = recovered.logBytesSinceSnapshot
        guard mode != .memory else { return }
        try POSIX.makeDirectory(shardPath)
        try POSIX.fsyncDirectory(directory.path)
        try openSegment(currentSegment)
        openedSegment = currentSegment
        if mode == .async {
            let syncerName = "hiscore-wal-sync-\(shard)"
            syncer = try WorkerThread(name: syncerName, refusal: options.refuseThreadForTesting?(syncerName)) { [self] in syncerLoop() }
        }
        let name = "hiscore-wal-\(shard)"
        do {
            thread = try WorkerThread(name: name, refusal: options.refuseThreadForTesting?(name)) { [self] in writerLoop() }
        } catch {
            stopSyncer()
            throw error
        }
    }

    /// A `.memory` log: positions advance, nothing is stored, completions run at once.
    public init(memoryOnlyShard shard: Int = 0) {
        mode = .memory
        self.shard = shard
        directory = nil
        shardPath = ""
        options = Options()
        workAvailable = Condition(lock)
        progress = Condition(lock)
        syncerWork = Condition(lock)
        currentSegment = 1
        carriedBytesSinceSnapshot = 0
    }

    // MARK: - Appending

    /// Queues `records` and returns the position just after the last one. Shard thread only.
    /// An array, not any collection: called across modules, a generic runs unspecialized, and
    /// its iteration allocated per record.
    @discardableResult
    public func append(_ records: [LogRecord]) -> LogPosition {
        lock.lock()
        if mode == .memory || failureState != nil || closing {
            // Nothing is stored; positions still advance so no later one looks durable.
            appendedEnd += UInt64(records.count)
            if mode == .memory { durableEnd = appendedEnd }
            let position = LogPosition(offset: appendedEnd)
            lock.unlock()
            return position
        }
        while pending.count > options.maxPendingBytes && failureState == nil {
            progress.wait()
        }
        let before = pending.count
        for record in records {
            Frame.append(to: &pending) { record.encode(into: &$0) }
        }
        appendedEnd += UInt64(pending.count - before)
        let position = LogPosition(offset: appendedEnd)
        // In async mode a writer already waiting on a deadline picks the data up within
        // `asyncWriteInterval`: waking it per batch would cost a context switch per batch.
        let wake = writerSleeping && (mode == .fsync || !writerTimedWait || pending.count >= Self.asyncWakeBytes)
        lock.unlock()
        if wake { workAvailable.signal() }
        return position
    }

    /// Async mode: pending bytes that wake the writer at once, and the longest time written-but-not-
    /// yet-handed-to-the-OS data waits otherwise.
    static let asyncWakeBytes = 1 << 20
    static let asyncWriteIntervalNanos: UInt64 = 10_000_000

    /// One record (wraps it in an array: for tools and tests, not the shard's batches).
    @discardableResult
    public func append(_ record: LogRecord) -> LogPosition {
        append([record])
    }

    /// Runs `completion` once everything up to `position` is durable for this mode:
    /// - `.fsync`: after the covering fdatasync, on the writer thread — or at once on the calling
    ///   thread when it already is durable and no earlier completion is still pending;
    /// - `.async`: at once (the write is queued; the writer fsyncs within `asyncFlushInterval`);
    /// - `.memory`: at once.
    /// Completions run in registration order. `.failure` if the log failed before covering it.
    public func whenDurable(_ position: LogPosition, _ completion: @escaping Completion) {
        lock.lock()
        if mode != .fsync {
            let failure = position.offset > durableEnd ? failureState : nil
            lock.unlock()
            completion(failure.map { .failure($0) } ?? .success(()))
            return
        }
        let idle = waitersHead == waiters.count && !firing
        if idle && position.offset <= durableEnd {
            lock.unlock()
            completion(.success(()))
            return
        }
        if idle, let failure = failureState ?? (thread == nil || closing ? StorageError.closed : nil) {
            lock.unlock()
            completion(.failure(failure))
            return
        }
        waiters.append(Waiter(position: position.offset, completion: completion))
        let wake = writerSleeping && position.offset <= durableEnd
        lock.unlock()
        if wake { workAvailable.signal() }
    }

    /// `whenDurable` of everything appended so far: for an answer that reflects earlier writes
    /// without adding a record of its own (a write that changed nothing, a count a reset answers).
    public func whenAppendedDurable(_ completion: @escaping Completion) {
        lock.lock()
        let end = appendedEnd
        lock.unlock()
        whenDurable(LogPosition(offset: end), completion)
    }

    /// Tests: waits until everything up to `position` was handed to the OS (`write`), for at most
    /// `timeoutNanos`; whether it was.
    func waitUntilWritten(_ position: LogPosition, timeoutNanos: UInt64) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let deadline = POSIX.monotonicNanoseconds() &+ timeoutNanos
        while writtenEnd < position.offset {
            if POSIX.monotonicNanoseconds() >= deadline { return false }
            progress.wait(untilMonotonic: deadline)
        }
        return true
    }

    /// Appends and registers `completion` for the batch: the usual call of a shard.
    public func append(_ records: [LogRecord], whenDurable completion: @escaping Completion) {
        whenDurable(append(records), completion)
    }

    /// Makes everything appended so far durable now, in any mode (the async interval is skipped),
    /// then runs `completion` on the writer thread (at once in `.memory` mode).
    public func flush(_ completion: @escaping Completion) {
        lock.lock()
        if mode == .memory || thread == nil {
            lock.unlock()
            completion(mode == .memory ? .success(()) : .failure(.closed))
            return
        }
        let target = appendedEnd
        syncRequested = max(syncRequested, target)
        waiters.append(Waiter(position: target, completion: completion))
        let wake = writerSleeping
        lock.unlock()
        if wake { workAvailable.signal() }
    }

    /// `flush`, blocking the calling thread (not for event-loop threads).
    public func flushAndWait() throws(StorageError) {
        if mode == .memory { return }
        lock.lock()
        let target = appendedEnd
        lock.unlock()
        try waitUntilDurable(target, segment: 0)
    }

    /// Blocks until everything up to `position` is fsynced and segment `segment` exists;
    /// `requestSync` skips the async interval.
    func waitUntilDurable(_ position: UInt64, segment: UInt64, requestSync: Bool = true) throws(StorageError) {
        lock.lock()
        defer { lock.unlock() }
        if requestSync {
            syncRequested = max(syncRequested, position)
            workAvailable.signal()
        }
        while true {
            if let failureState { throw failureState }
            if durableEnd >= position && openedSegment >= segment { return }
            if thread == nil { throw .closed }
            progress.wait()
        }
    }

    // MARK: - Introspection

    /// Log bytes appended since the last snapshot began (including those found at recovery):
    /// the server starts a snapshot when this exceeds its threshold, not on a timer.
    public var bytesSinceSnapshot: UInt64 {
        lock.withLock { carriedBytesSinceSnapshot + appendedEnd - snapshotBase }
    }

    public var appendedPosition: LogPosition { lock.withLock { LogPosition(offset: appendedEnd) } }
    public var durablePosition: LogPosition { lock.withLock { LogPosition(offset: durableEnd) } }
    /// Encoded bytes waiting for the writer.
    public var pendingBytes: Int { lock.withLock { pending.count } }
    public var statistics: Statistics { lock.withLock { stats } }
    /// Set once a write or fsync failed; the log then refuses every further durability promise.
    public var failure: StorageError? { lock.withLock { failureState } }

    /// Why records appended now are not stored (a write or fsync failed earlier, or the log is
    /// closing), or nil. `append` drops such records without a word; in `async` mode, where
    /// nothing waits for `whenDurable`, the caller must ask this before acknowledging.
    public var appendFailure: StorageError? {
        lock.withLock { failureState ?? (closing && mode != .memory ? .closed : nil) }
    }

    // MARK: - Closing

    /// Writes and fsyncs everything pending (in every mode), runs the remaining completions and
    /// stops the writer thread. Idempotent. Appends after `close` are dropped.
    public func close() {
        lock.lock()
        guard let thread, !closing else {
            lock.unlock()
            return
        }
        closing = true
        lock.unlock()
        workAvailable.signal()
        thread.join()
        // The writer's last act was a sync of everything written: the syncer has nothing left.
        stopSyncer()
        lock.lock()
        self.thread = nil
        progress.broadcast()
        let leftovers = Array(waiters[waitersHead...])
        waiters = []
        waitersHead = 0
        let failure = failureState ?? .closed
        let durable = durableEnd
        lock.unlock()
        for waiter in leftovers {
            waiter.completion(waiter.position <= durable ? .success(()) : .failure(failure))
        }
        if fd >= 0 {
            POSIX.close(fd)
            fd = -1
        }
    }

    deinit {
        if fd >= 0 { POSIX.close(fd) }
    }
}
