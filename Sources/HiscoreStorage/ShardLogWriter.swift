#if canImport(Glibc)
import Glibc
#endif

/// The writer thread: group commit, segment rotation and the async flush interval.
extension ShardLog {
    /// Creates the segment and writes its header (`SegmentHeader`: the key its frames' CRCs are
    /// XORed with). The header reaches the disk with the segment's first synced batch; a crash
    /// before leaves it torn or empty, which recovery cuts like a torn tail.
    func openSegment(_ segment: UInt64) throws(StorageError) {
        let path = shardPath + "/" + ShardFiles.segmentName(segment)
        // O_EXCL: a segment is written by exactly one log instance, once.
        let newFD = try POSIX.open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND)
        let key = SegmentHeader.newKey()
        do throws(StorageError) {
            try POSIX.fsyncDirectory(shardPath)
            try POSIX.writeAll(newFD, SegmentHeader.make(key: key), path: path)
        } catch {
            POSIX.close(newFD)
            throw error
        }
        fd = newFD
        fdPath = path
        segmentKey = key
        segmentBytes = SegmentHeader.size
    }

    /// The writer's loop. Blocks without timeout when there is nothing to do (an idle server does
    /// no periodic work); waits with a timeout only while `.async` data awaits its fsync.
    func writerLoop() {
        lock.lock()
        while true {
            if failureState == nil && (!pending.isEmpty || !pendingRotations.isEmpty) {
                // A rotation fdatasyncs the old segment here: not beside the syncer's fdatasync
                // of the same file (`waitForSyncer`).
                if !pendingRotations.isEmpty && syncerBusy {
                    waitForSyncer()
                    continue
                }
                writeBatch()
                continue
            }
            if failureState == nil && durableEnd < writtenEnd {
                let deadline = lastSyncNanos &+ UInt64(options.asyncFlushInterval * 1e9)
                let now = POSIX.monotonicNanoseconds()
                // Closing: the last one, here, once the syncer's is over (`waitForSyncer`).
                if closing {
                    if syncerBusy {
                        waitForSyncer()
                        continue
                    }
                    syncWritten()
                    continue
                }
                // Asked for (a flush, a snapshot's end) or periodic: the syncer's, so that this
                // thread keeps handing appends to the OS meanwhile (here without a syncer).
                if (syncRequested > durableEnd || now >= deadline) && !syncerBusy {
                    if !handToSyncer() { syncWritten() }
                    continue
                }
                // Completions a syncer's fdatasync covered run here, not after the next one.
                if hasReadyWaiters {
                    fireReadyWaiters()
                    continue
                }
                // Wake for the fsync deadline, and meanwhile every asyncWriteInterval to hand
                // appended data to the OS (appends do not wake a writer waiting here).
                writerSleeping = true
                writerTimedWait = true
                // While the syncer runs, a sync may be due: wake for the write interval only.
                workAvailable.wait(untilMonotonic: syncerBusy ? now &+ Self.asyncWriteIntervalNanos : min(deadline, now &+ Self.asyncWriteIntervalNanos))
                writerTimedWait = false
                writerSleeping = false
                continue
            }
            if hasReadyWaiters {
                fireReadyWaiters()
                continue
            }
            if closing { break }
            writerSleeping = true
            workAvailable.wait()
            writerSleeping = false
        }
        lock.unlock()
    }

    /// Takes the whole pending buffer, writes it (switching segments where snapshots rotated the
    /// log) and, in `.fsync` mode or when a sync was requested, fdatasyncs it. Lock held on entry
    /// and exit, released for the I/O.
    private func writeBatch() {
        var batch = pending
        pending = spare
        spare = []
        let rotations = pendingRotations
        pendingRotations = []
        let end = appendedEnd
        // A requested sync in async mode is the syncer's, after this write (`writerLoop`).
        let mustSync = mode == .fsync || closing || (syncer == nil && syncRequested > durableEnd)
        progress.broadcast()  // the buffer is empty again: release back-pressured appenders
        lock.unlock()

        var syncs = 0
        var opened: UInt64?  // the newest segment actually opened by this batch
        var result: Result<Void, StorageError> = .success(())
        do throws(StorageError) {
            var start = 0
            for rotation in rotations {
                try writeSlice(&batch, start..<rotation.offset)
                start = rotation.offset
                // A segment is complete and durable before its successor exists, so recovery
                // can treat any damage in a non-last segment as corruption, never a torn tail.
                try POSIX.fdatasync(fd, path: fdPath)
                syncs += 1
                POSIX.close(fd)
                fd = -1
                try openSegment(rotation.segment)
                opened = rotation.segment
            }
            try writeSlice(&batch, start..<batch.count)
            if mustSync {
                options.beforeGroupSyncForTesting?()
                try POSIX.fdatasync(fd, path: fdPath)
                syncs += 1
            }
        } catch {
            result = .failure(error)
        }
        let now = mustSync ? POSIX.monotonicNanoseconds() : 0
        // Recycle the buffer's capacity unless a burst made it huge.
        if batch.capacity <= 4 << 20 {
            batch.removeAll(keepingCapacity: true)
        } else {
            batch = []
        }

        lock.lock()
        spare = batch
        stats.writes += 1
        stats.syncs += syncs
        // Only a segment that exists counts: a snapshot waiting for it must not go on (and delete
        // the segments below it) when opening it failed.
        if let opened { openedSegment = opened }
        switch result {
        case .success:
            stats.bytesWritten += end - writtenEnd
            writtenEnd = end
            if mustSync {
                durableEnd = end
                lastSyncNanos = now
            }
        case .failure(let error):
            failureState = .logFailed(reason: error.description)
            pending = []
            pendingRotations = []
        }
        progress.broadcast()
        fireReadyWaiters()
    }

    /// Writes `batch[range]` at the segment's end. A write that fails part way (a full disk) is
    /// cut back to where it began: the segment then ends with its last whole record instead of a
    /// torn one, which recovery would have to tell from corruption (and cannot, when a cut
    /// record's metadata, client bytes, holds a frame of its own: docs/durability.md). The log
    /// fails either way; if the cut back fails too, recovery cuts the torn tail as after a crash.
    /// The frames' CRCs are XORed with the open segment's key first (`SegmentHeader`).
    private func writeSlice(_ batch: inout [UInt8], _ range: Range<Int>) throws(StorageError) {
        guard !range.isEmpty else { return }
        let path = fdPath
        let descriptor = fd
        let start = segmentBytes
        Self.maskCRCs(&batch, range, key: segmentKey)
        let result: Result<Void, StorageError> = batch.withUnsafeBytes { raw in
            do throws(StorageError) {
                try POSIX.writeAll(descriptor, UnsafeRawBufferPointer(rebasing: raw[range]), path: path)
            } catch {
                return .failure(error)
            }
            return .success(())
        }
        if case .failure = result { try? POSIX.truncate(descriptor, to: start, path: path) }
        try result.get()
        segmentBytes += range.count
    }

    /// XORs the stored CRC of every frame in `batch[range]` (whole frames, back to back) with
    /// `key`. One load and one store per record.
    static func maskCRCs(_ batch: inout [UInt8], _ range: Range<Int>, key: UInt32) {
        guard key != 0 else { return }
        batch.withUnsafeMutableBytes { raw in
            var offset = range.lowerBound
            while offset + Frame.headerSize <= range.upperBound {
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let crc = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                raw.storeBytes(of: (crc ^ key).littleEndian, toByteOffset: offset + 4, as: UInt32.self)
                offset += Frame.headerSize + length
            }
            assert(offset == range.upperBound, "a slice of the log that is not whole frames")
        }
    }

    /// `.async` mode (or a requested sync): fdatasync what was written. Lock held on entry/exit.
    private func syncWritten() {
        let end = writtenEnd
        lock.unlock()
        var result: Result<Void, StorageError> = .success(())
        do throws(StorageError) {
            options.beforeGroupSyncForTesting?()
            try POSIX.fdatasync(fd, path: fdPath)
        } catch {
            result = .failure(error)
        }
        let now = POSIX.monotonicNanoseconds()
        lock.lock()
        stats.syncs += 1
        switch result {
        case .success:
            durableEnd = max(durableEnd, end)
            lastSyncNanos = now
        case .failure(let error):
            failureState = .logFailed(reason: error.description)
            pending = []
            pendingRotations = []
        }
        progress.broadcast()
        fireReadyWaiters()
    }

    /// Async mode: hands the periodic fdatasync of what is written to the syncer. False when
    /// there is no syncer or the descriptor cannot be duplicated (the caller syncs itself). Lock
    /// held.
    private func handToSyncer() -> Bool {
        guard syncer != nil, !syncerStopping else { return false }
        let copy = dup(fd)
        guard copy >= 0 else { return false }
        syncerJob = (copy, fdPath, writtenEnd)
        syncerBusy = true
        syncerWork.signal()
        return true
    }

    /// The syncer thread's loop: one handed-over fdatasync at a time, then what it made durable
    /// (or the failure) recorded as the writer's own syncs are, and the writer woken to run the
    /// completions it covers. Blocks without timeout between jobs.
    func syncerLoop() {
        lock.lock()
        while true {
            guard let job = syncerJob else {
                if syncerStopping { break }
                syncerWork.wait()
                continue
            }
            syncerJob = nil
            lock.unlock()
            var result: Result<Void, StorageError> = .success(())
            do throws(StorageError) {
                options.beforeGroupSyncForTesting?()
                try POSIX.fdatasync(job.fd, path: job.path)
            } catch {
                result = .failure(error)
            }
            POSIX.close(job.fd)
            let now = POSIX.monotonicNanoseconds()
            lock.lock()
            syncerBusy = false
            stats.syncs += 1
            switch result {
            case .success:
                durableEnd = max(durableEnd, job.end)
                lastSyncNanos = now
            case .failure(let error):
                if failureState == nil { failureState = .logFailed(reason: error.description) }
                pending = []
                pendingRotations = []
            }
            progress.broadcast()
            workAvailable.signal()
        }
        lock.unlock()
    }

    /// Waits (lock held, released while waiting) for the syncer's fdatasync to end, or 10 ms.
    /// The writer's own fdatasyncs (a rotation's, closing's) do not run beside the syncer's: the
    /// syncer's descriptor is a duplicate sharing the file's open description, and Linux reports
    /// a write-back error to one of two concurrent calls only, so the other could take data for
    /// durable that is not (from a review).
    private func waitForSyncer() {
        writerSleeping = true
        workAvailable.wait(untilMonotonic: POSIX.monotonicNanoseconds() &+ Self.asyncWriteIntervalNanos)
        writerSleeping = false
    }

    /// Stops and joins the syncer (after the writer's last sync, or when the writer could not
    /// start); a job it had not taken is dropped with its descriptor.
    func stopSyncer() {
        lock.lock()
        guard let syncer else {
            lock.unlock()
            return
        }
        syncerStopping = true
        lock.unlock()
        syncerWork.signal()
        syncer.join()
        lock.lock()
        if let job = syncerJob {
            POSIX.close(job.fd)
            syncerJob = nil
        }
        self.syncer = nil
        lock.unlock()
    }

    private var hasReadyWaiters: Bool {
        guard waitersHead < waiters.count else { return false }
        return waiters[waitersHead].position <= durableEnd || failureState != nil
    }

    /// Runs, in order, the completions whose position is durable (or all, with the failure, once
    /// the log failed). Lock held on entry and exit, released while the completions run.
    private func fireReadyWaiters() {
        var ready = readyWaiters
        readyWaiters = []
        let durable = durableEnd
        let failure = failureState
        while waitersHead < waiters.count {
            let waiter = waiters[waitersHead]
            guard waiter.position <= durable || failure != nil else { break }
            ready.append(waiter)
            waitersHead += 1
        }
        if waitersHead == waiters.count {
            waiters.removeAll(keepingCapacity: waiters.capacity <= 1 << 16)
            waitersHead = 0
        } else if waitersHead > 4096 && waitersHead * 2 > waiters.count {
            waiters.removeFirst(waitersHead)
            waitersHead = 0
        }
        guard !ready.isEmpty else {
            readyWaiters = ready
            return
        }
        firing = true
        lock.unlock()
        for waiter in ready {
            if waiter.position <= durable {
                waiter.completion(.success(()))
            } else if let failure {
                waiter.completion(.failure(failure))
            }
        }
        ready.removeAll(keepingCapacity: ready.capacity <= 1 << 12)
        lock.lock()
        firing = false
        if readyWaiters.isEmpty { readyWaiters = ready }
    }
}
