#if canImport(Glibc)
import Glibc
#endif
import HiscoreCore
import Testing
@testable import HiscoreStorage

/// The system can refuse a thread (`pthread_create` fails with EAGAIN at the process's or user's
/// thread limit, or when memory is short). The storage threads report it as a `StorageError`:
/// the log fails to open, a snapshot fails; nothing traps. `ShardLog.Options.refuseThreadForTesting`
/// stands in for the refusal (the thread is never started).
@Suite("Refused storage threads")
struct ThreadRefusalTests {
    static func refused(_ name: String) -> StorageError {
        .io(operation: "pthread_create (\(name))", path: "", errno: EAGAIN)
    }

    static func put(_ player: String, _ score: Int64, sequence: UInt64) -> LogRecord {
        .put(PutRecord(board: 1, playerID: player, score: score, subscore: 0, sequence: sequence, metadata: []))
    }

    @Test("a log whose writer thread is refused fails to open with a StorageError; the shard opens once threads start again")
    func refusedWriterThread() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        defer { data.close() }
        var options = ShardLog.Options()
        options.refuseThreadForTesting = { $0 == "hiscore-wal-0" ? EAGAIN : nil }
        #expect(throws: Self.refused("hiscore-wal-0")) {
            _ = try openShard(data, mode: .fsync, options: options)
        }
        let (log, _) = try openShard(data, mode: .fsync)
        log.append(Self.put("a", 5, sequence: 1))
        log.close()
        let recovered = try ShardLog.recover(directory: data, shard: 0)
        #expect(recovered.records == [Self.put("a", 5, sequence: 1)])
    }

    @Test("async mode: a refused syncer or writer thread fails the open (a started syncer is stopped); the log opens once threads start again",
          arguments: ["hiscore-wal-sync-0", "hiscore-wal-0"])
    func refusedAsyncThreads(refused name: String) throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        defer { data.close() }
        var options = ShardLog.Options()
        options.refuseThreadForTesting = { $0 == name ? EAGAIN : nil }
        #expect(throws: Self.refused(name)) {
            _ = try openShard(data, mode: .async, options: options)
        }
        let (log, _) = try openShard(data, mode: .async)
        log.append(Self.put("a", 5, sequence: 1))
        log.close()
        let recovered = try ShardLog.recover(directory: data, shard: 0)
        #expect(recovered.records == [Self.put("a", 5, sequence: 1)])
    }

    @Test("a snapshot whose thread is refused fails with a StorageError; the log goes on and the next snapshot is published")
    func refusedSnapshotThread() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        defer { data.close() }
        let refuse = Locked(true)
        var options = ShardLog.Options()
        options.refuseThreadForTesting = { name in name == "hiscore-snap-0" && refuse.current ? EAGAIN : nil }
        let (log, _) = try openShard(data, mode: .fsync, options: options)
        defer { log.close() }
        log.append(Self.put("a", 5, sequence: 1))

        let refusedWriter = try #require(log.beginSnapshot())
        refusedWriter.add(board: 1, entries: [SnapshotEntry(playerID: "a", score: 5, subscore: 0, sequence: 1, metadata: [])])
        let result = Self.finish(refusedWriter)
        #expect(result != nil, "the refused snapshot's finish was never answered")
        #expect(result == .failure(Self.refused("hiscore-snap-0")))
        let listing = try ShardFiles.list(data.shardPath(0))
        #expect(listing.snapshots.isEmpty && listing.temporaries.isEmpty)

        // The failed snapshot does not hold the log's one snapshot slot, and appends go on.
        refuse.withValue { $0 = false }
        log.append(Self.put("b", 6, sequence: 2))
        let writer = try #require(log.beginSnapshot())
        writer.add(board: 1, entries: [
            SnapshotEntry(playerID: "a", score: 5, subscore: 0, sequence: 1, metadata: []),
            SnapshotEntry(playerID: "b", score: 6, subscore: 0, sequence: 2, metadata: []),
        ])
        let published = Self.finish(writer)
        #expect(published != nil, "the second snapshot never finished")
        let summary = try #require(try published?.get())
        #expect(summary.entries == 2)
    }

    /// The writer's outcome, waited for at most 10 s (nil if it never came).
    private static func finish(_ writer: SnapshotWriter) -> Result<SnapshotWriter.Summary, StorageError>? {
        let outcome = Locked<Result<SnapshotWriter.Summary, StorageError>?>(nil)
        let done = Latch(1)
        writer.finish { result in
            outcome.withValue { $0 = result }
            done.countDown()
        }
        guard done.wait(seconds: 10) else { return nil }
        return outcome.current
    }
}
