#if canImport(Glibc)
import Glibc
#endif

/// A fuzzy checkpoint of one shard, fed in chunks by the shard and written by a background thread.
///
/// Why the result is exact (the correctness argument):
/// 1. `beginSnapshot` rotates the log: every record appended from then on goes to segment N (the
///    snapshot's segment) or later. It runs on the shard's thread, so every mutation applied
///    before it has its record in a segment < N, and every later one in a segment ≥ N.
/// 2. The shard then reads its boards over several turns while writes continue. Each player's
///    state in the snapshot is therefore its state at the rotation point *or later*.
/// 3. Recovery loads the snapshot, then replays every record of segments ≥ N in order. Records
///    are resulting states (put/remove/clear), so replaying a record whose effect the snapshot
///    already holds rewrites the same value, and each later record redoes the later state. A
///    player's final value is the last record for it in segments ≥ N if there is one — exactly
///    its live value — and otherwise its value at the rotation point, which is what the snapshot
///    holds (it did not change afterwards). So snapshot + replay = the exact final state.
/// 4. The snapshot may contain states newer than the durable log. `finish` therefore waits until
///    the log is fsynced up to the point `finish` was called (every state in the snapshot was
///    appended before that) and until segment N exists, and only then renames the file into
///    place: a published snapshot never holds a write the log could still lose, so recovery
///    never resurrects half of an unacknowledged batch.
/// 5. Only after the rename (and directory fsync) are segments < N and older snapshots deleted.
///
/// Calls: `add` and `finish` on the shard's thread; exactly one of `finish` or `abandon` must be
/// called (the background thread lives until then).
public final class SnapshotWriter: @unchecked Sendable {
    public struct Summary: Sendable, Equatable {
        public var segment: UInt64
        public var entries: UInt64
        public var bytes: UInt64
        public var path: String
    }

    private enum Job {
        case chunk(board: UInt64, entries: [SnapshotEntry])
        case finish(position: UInt64, completion: @Sendable (Result<Summary, StorageError>) -> Void)
        case abandon
    }

    /// The snapshot's segment: replay after loading it starts here.
    public let segment: UInt64
    private let log: ShardLog
    private let lock = ConditionLock()
    private let wake: Condition
    private var jobs: [Job] = []
    /// Chunks queued and not yet encoded (see `queuedChunks`).
    private var chunksQueued = 0
    /// Set (under the lock) once the background thread has failed the snapshot.
    private var failedEarly = false
    private var ended = false
    /// No background thread could be started: jobs are answered at once, as failed.
    private var threadless: StorageError?

    // Background-thread state.
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []
    private var checksum: UInt32 = 0
    private var entryCount: UInt64 = 0
    private var chunkCount: UInt64 = 0
    private var bytesWritten: UInt64 = 0
    private var failure: StorageError?
    private let temporaryPath: String
    private let finalPath: String

    init(log: ShardLog, segment: UInt64) {
        self.log = log
        self.segment = segment
        wake = Condition(lock)
        temporaryPath = log.shardPath + "/" + ShardFiles.snapshotTempName(segment)
        finalPath = log.shardPath + "/" + ShardFiles.snapshotName(segment)
        do throws(StorageError) {
            let name = "hiscore-snap-\(log.shard)"
            let thread = try WorkerThread(name: name, refusal: log.options.refuseThreadForTesting?(name)) { [self] in run() }
            thread.detach()
        } catch {
            threadless = error
        }
    }

    /// The snapshot has failed already (its file could not be written): the shard stops feeding
    /// it and calls `finish`, which reports the failure.
    public var hasFailed: Bool { lock.withLock { failedEarly } }

    /// Background thread: records the snapshot's failure, for `complete` and for `hasFailed`.
    private func fail(_ error: StorageError) {
        failure = error
        lock.withLock { failedEarly = true }
    }

    /// Chunks handed to `add` that the background thread has not encoded yet. The shard waits
    /// while this is high, so a disk slower than the copy never queues most of a shard here.
    public var queuedChunks: Int { lock.withLock { chunksQueued } }

    /// Queues entries of board `board` (an incarnation); encoding and I/O happen on the
    /// background thread. A board may be added in several calls.
    public func add(board: UInt64, entries: [SnapshotEntry]) {
        guard !entries.isEmpty else { return }
        enqueue(.chunk(board: board, entries: entries))
    }

    /// Completes the snapshot: trailer, fsync, wait for the log to cover every state in it,
    /// rename into place, fsync the directory, delete older segments and snapshots. `completion`
    /// runs on the background thread.
    public func finish(_ completion: @escaping @Sendable (Result<Summary, StorageError>) -> Void) {
        let position = log.appendedPosition.offset
        enqueue(.finish(position: position, completion: completion))
    }

    /// Drops the snapshot (deletes the temporary file); the log keeps every segment.
    public func abandon() {
        enqueue(.abandon)
    }

    private func enqueue(_ job: Job) {
        lock.lock()
        precondition(!ended, "SnapshotWriter used after finish/abandon")
        if case .chunk = job {} else { ended = true }
        if let threadless {
            lock.unlock()
            switch job {
            case .chunk: break
            case .finish(_, let completion):
                cleanUp(published: .failure(threadless))
                completion(.failure(threadless))
            case .abandon:
                cleanUp(published: .failure(.closed))
            }
            return
        }
        if case .chunk = job { chunksQueued += 1 }
        jobs.append(job)
        lock.unlock()
        wake.signal()
    }

    private func run() {
        do throws(StorageError) {
            fd = try POSIX.open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC)
            buffer = SnapshotFormat.header(shard: log.shard, segment: segment)
            checksum = CRC32C.checksum(buffer)
        } catch {
            fail(error)
        }
        while true {
            lock.lock()
            while jobs.isEmpty { wake.wait() }
            let batch = jobs
            jobs = []
            lock.unlock()
            for job in batch {
                switch job {
                case .chunk(let board, let entries):
                    if failure == nil { encode(board: board, entries: entries) }
                    lock.withLock { chunksQueued -= 1 }
                case .finish(let position, let completion):
                    let result = complete(position: position)
                    cleanUp(published: result)
                    completion(result)
                    return
                case .abandon:
                    cleanUp(published: .failure(.closed))
                    return
                }
            }
        }
    }

    private func encode(board: UInt64, entries: [SnapshotEntry]) {
        var index = 0
        while index < entries.count {
            let frameStart = buffer.count
            var count = 0
            Frame.append(to: &buffer) { payload in
                payload.append(SnapshotFormat.chunkType)
                payload.appendLE(board)
                // Decide how many entries fit the target frame size first: the count precedes them.
                var end = index
                var size = 0
                while end < entries.count && (size < SnapshotFormat.chunkPayloadTarget || end == index) {
                    size += 48 + entries[end].playerID.utf8.count + entries[end].metadata.count
                    end += 1
                }
                count = end - index
                payload.appendVarint(UInt64(count))
                for entry in entries[index..<end] { SnapshotFormat.encode(entry, into: &payload) }
            }
            checksum = buffer.withUnsafeBytes {
                CRC32C.update(checksum, UnsafeRawBufferPointer(rebasing: $0[frameStart..<frameStart + Frame.headerSize]))
            }
            entryCount += UInt64(count)
            chunkCount += 1
            index += count
            if buffer.count >= 1 << 20 { flushBuffer() }
        }
    }

    private func flushBuffer() {
        guard failure == nil, !buffer.isEmpty else { return }
        do throws(StorageError) {
            try POSIX.writeAll(fd, buffer, path: temporaryPath)
            bytesWritten += UInt64(buffer.count)
        } catch {
            // A full disk, most likely: the bytes written so far go at once, not when the shard
            // has fed the rest of its entries (seconds on a big shard), so that the log, which
            // shares the disk, is not refused space by a snapshot that has already failed.
            try? POSIX.truncate(fd, to: 0, path: temporaryPath)
            fail(error)
        }
        buffer.removeAll(keepingCapacity: true)
    }

    private func complete(position: UInt64) -> Result<Summary, StorageError> {
        Frame.append(to: &buffer) { payload in
            payload.append(SnapshotFormat.trailerType)
            payload.appendLE(entryCount)
            payload.appendLE(chunkCount)
            payload.appendLE(checksum)
        }
        flushBuffer()
        do throws(StorageError) {
            if let failure { throw failure }
            try POSIX.fsync(fd, path: temporaryPath)
            POSIX.close(fd)
            fd = -1
            // Every state in the snapshot has its record durable, and segment N exists.
            try log.waitUntilDurable(position, segment: segment)
            try POSIX.rename(temporaryPath, finalPath)
            try POSIX.fsyncDirectory(log.shardPath)
            try deleteObsoleteFiles()
            return .success(Summary(segment: segment, entries: entryCount, bytes: bytesWritten, path: finalPath))
        } catch {
            return .failure(error)
        }
    }

    /// Segments and snapshots older than this snapshot are no longer needed by recovery.
    private func deleteObsoleteFiles() throws(StorageError) {
        guard let directory = log.directory else { return }
        // Serialized with backups, which must not see files vanish mid-copy.
        try directory.maintenanceLock.withLock { () throws(StorageError) in
            let listing = try ShardFiles.list(log.shardPath)
            for old in listing.segments where old < segment {
                try POSIX.unlink(log.shardPath + "/" + ShardFiles.segmentName(old))
            }
            for old in listing.snapshots where old < segment {
                try POSIX.unlink(log.shardPath + "/" + ShardFiles.snapshotName(old))
            }
            for old in listing.temporaries where old < segment {
                try POSIX.unlink(log.shardPath + "/" + ShardFiles.snapshotTempName(old))
            }
        }
    }

    private func cleanUp(published result: Result<Summary, StorageError>) {
        if fd >= 0 {
            POSIX.close(fd)
            fd = -1
        }
        if case .failure = result { try? POSIX.unlink(temporaryPath) }
        log.snapshotEnded(published: result)
    }
}

extension ShardLog {
    /// Starts a fuzzy snapshot: rotates the log to a new segment (appends from now on go there)
    /// and returns the writer to feed. Shard thread only. nil when a snapshot is already in
    /// progress, in `.memory` mode, or after the log failed or closed.
    public func beginSnapshot() -> SnapshotWriter? {
        lock.lock()
        guard mode != .memory, !snapshotInProgress, failureState == nil, !closing, thread != nil else {
            lock.unlock()
            return nil
        }
        snapshotInProgress = true
        currentSegment += 1
        let segment = currentSegment
        pendingRotations.append((offset: pending.count, segment: segment))
        snapshotBase = appendedEnd
        carriedBytesSinceSnapshot = 0
        let wake = writerSleeping
        lock.unlock()
        if wake { workAvailable.signal() }
        return SnapshotWriter(log: self, segment: segment)
    }

    func snapshotEnded(published: Result<SnapshotWriter.Summary, StorageError>) {
        lock.withLock { snapshotInProgress = false }
    }
}
