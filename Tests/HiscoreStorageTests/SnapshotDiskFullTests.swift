#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HiscoreCore
import HiscoreTestSupport
import Testing
@testable import HiscoreStorage

/// Snapshots on a disk that fills up (a tmpfs per test: needs root, skipped otherwise).
@Suite("Snapshots on a full disk", .serialized, .enabled(if: Tmpfs.available, "needs root and tmpfs mounts"), .offCooperativePool)
struct SnapshotDiskFullTests {
    /// A failed snapshot is meant to cost nothing but the log's growth. Its temporary file kept
    /// the space it had taken while the shard went on feeding it (seconds on a big shard), and a
    /// log write in that window failed for lack of space, which poisons the log for good.
    @Test("a snapshot failing for lack of space does not make the healthy log fail")
    func failedSnapshotPoisonsTheLog() async throws {
        try await withTmpfs(bytes: 1 << 20) { disk in
            let data = try DataDirectory.open(path: disk.path + "/data")
            defer { data.close() }
            let (log, _) = try openShard(data, mode: .fsync)
            defer { log.close() }
            log.append(.put(PutRecord(board: 1, playerID: "before", score: 1, subscore: 0, sequence: 1, metadata: [])))
            try log.flushAndWait()

            let writer = try #require(log.beginSnapshot())
            // The shard's live data is bigger than the free space: 2 MiB of entries.
            let metadata = [UInt8](repeating: 1, count: 4000)
            writer.add(board: 1, entries: (0..<512).map {
                SnapshotEntry(playerID: "p\($0)", score: Int64($0), subscore: 0, sequence: UInt64($0 + 2), metadata: metadata)
            })
            // Wait (bounded) until the background thread has encoded and tried to write the chunk.
            let deadline = ContinuousClock.now + .seconds(10)
            while writer.queuedChunks > 0 && ContinuousClock.now < deadline { usleep(1000) }
            #expect(writer.queuedChunks == 0)
            #expect(writer.hasFailed, "the shard is told to stop feeding a snapshot that failed")

            // A write while the shard is still feeding the snapshot (more chunks would follow).
            log.append(.put(PutRecord(board: 1, playerID: "during", score: 2, subscore: 0, sequence: 999, metadata: [])))
            var during: StorageError?
            do throws(StorageError) { try log.flushAndWait() } catch { during = error }

            let result = finishAndWait(writer)
            #expect(throws: StorageError.self) { try result.get() }  // the snapshot itself fails: fine
            #expect(during == nil, "a write made while the failing snapshot held the disk: \(String(describing: during))")
            #expect(log.failure == nil, "the log stays poisoned after the snapshot freed its space: \(String(describing: log.failure))")
            log.append(.put(PutRecord(board: 1, playerID: "after", score: 3, subscore: 0, sequence: 1000, metadata: [])))
            #expect(throws: Never.self) { try log.flushAndWait() }
        }
    }
}
