#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Testing
@testable import HiscoreStorage

/// Async mode: the syncs that are asked for (a snapshot's `waitUntilDurable`, a backup's
/// `flush`) are the syncer's too, so the writer keeps handing appends to the OS meanwhile: when
/// it made them itself, what was appended during one stayed in the process, and a kill -9 lost
/// it however long the disk took (found by a review). Snapshots start every 64 MiB of log.
@Suite("Async mode: requested syncs do not stop the writer", .serialized)
struct AsyncRequestedSyncTests {
    static func put(_ index: Int) -> LogRecord {
        .put(PutRecord(board: 1, playerID: "p\(index)", score: Int64(index), subscore: 0, sequence: UInt64(index + 1), metadata: []))
    }

    @Test("async mode: writes appended during a snapshot's (or a flush's) fdatasync are handed to the OS within the write interval",
          arguments: ["snapshot", "flush"])
    func writesGoOnDuringARequestedSync(trigger: String) throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let gate = SyncGate(armed: false)
        // A long interval: no periodic sync after the first one, so the held one is the requested.
        var options = ShardLog.Options(asyncFlushInterval: 60)
        options.beforeGroupSyncForTesting = { gate.hook() }
        let (log, _) = try openShard(data, mode: .async, options: options)
        let first = log.append(Self.put(0))
        // The first periodic fdatasync (the syncer's) covers record 0.
        let deadline = POSIX.monotonicNanoseconds() + 5_000_000_000
        while log.durablePosition.offset < first.offset && POSIX.monotonicNanoseconds() < deadline { usleep(1000) }
        #expect(log.durablePosition.offset >= first.offset)

        gate.arm()
        let finished = DispatchSemaphore(value: 0)
        if trigger == "snapshot" {
            let writer = try #require(log.beginSnapshot())
            log.append(Self.put(1))
            writer.add(board: 1, entries: [SnapshotEntry(playerID: "p0", score: 0, subscore: 0, sequence: 1, metadata: [])])
            writer.finish { _ in finished.signal() }  // waitUntilDurable: a requested sync, on the writer
        } else {
            log.append(Self.put(1))
            log.flush { _ in finished.signal() }  // what a backup does first
        }
        gate.waitUntilEntered()  // that fdatasync is held: a slow disk (the crash hunt's 200 ms)
        var last = LogPosition.zero
        for index in 2...10 { last = log.append(Self.put(index)) }
        // The promise: handed to the OS within asyncWriteInterval (10 ms); 1 s is generous.
        let written = log.waitUntilWritten(last, timeoutNanos: 1_000_000_000)
        // What a kill -9 now leaves: the segments' bytes in the page cache.
        let survivors = try ShardLog.recover(directory: data, shard: 0).records.count
        gate.release()
        finished.wait()
        log.close()
        #expect(written, "records appended during the writer's requested fdatasync were not written within 1 s")
        #expect(survivors == 11, "a kill -9 during the held fdatasync would keep \(survivors) of 11 acknowledged records")
    }
}
