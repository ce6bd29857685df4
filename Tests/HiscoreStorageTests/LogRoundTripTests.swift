#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HiscoreStorage

@Suite struct LogRoundTripTests {
    @Test(arguments: [DurabilityMode.fsync, .async])
    func everyKindRoundTrips(mode: DurabilityMode) throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        do {
            let data = try DataDirectory.open(path: tmp.dataPath)
            let (log, recovered) = try openShard(data, shard: 3, mode: mode)
            #expect(recovered.records.isEmpty && recovered.snapshot.isEmpty)
            let done = Latch(1)
            log.append(everyKind) { result in
                #expect((try? result.get()) != nil)
                done.countDown()
            }
            for record in everyKind { log.append(record) }
            done.wait()
            log.close()
            data.close()
        }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let recovered = try ShardLog.recover(directory: data, shard: 3)
        #expect(recovered.records == everyKind + everyKind)
        #expect(recovered.warnings.isEmpty)
        #expect(recovered.report.lastSegment == 1)
        // Reopening continues in a new segment; both are replayed.
        let log = try ShardLog(directory: data, shard: 3, mode: mode, recovered: recovered.report)
        log.append(.clearBoard(board: 99))
        log.close()
        let again = try ShardLog.recover(directory: data, shard: 3)
        #expect(again.records == everyKind + everyKind + [.clearBoard(board: 99)])
        #expect(again.report.lastSegment == 2)
    }

    @Test func memoryModeWritesNoFile() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let (log, _) = try openShard(data, shard: 0, mode: .memory)
        let fired = Locked(0)
        for record in everyKind {
            log.whenDurable(log.append(record)) { _ in fired.withValue { $0 += 1 } }
        }
        #expect(fired.current == everyKind.count)  // synchronously
        #expect(log.beginSnapshot() == nil)
        log.close()
        #expect(!POSIX.exists(data.shardPath(0)))
        let standalone = ShardLog(memoryOnlyShard: 1)
        let position = standalone.append(everyKind)
        #expect(standalone.durablePosition == position)
        #expect(standalone.statistics.writes == 0)
    }

    @Test func asyncModeSyncsWithinTheIntervalWithoutFlush() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        var options = ShardLog.Options()
        options.asyncFlushInterval = 0.05
        let (log, _) = try openShard(data, mode: .async, options: options)
        let acknowledged = Locked(false)
        log.append(everyKind) { _ in acknowledged.withValue { $0 = true } }
        #expect(acknowledged.current)  // async: acknowledged at once
        // The interval elapses; the writer fsyncs by itself. (Wait on the durability, not a sleep.)
        try log.waitUntilDurable(log.appendedPosition.offset, segment: 0, requestSync: false)
        let first = log.statistics.syncs
        #expect(first >= 1)
        log.append(everyKind)
        try log.waitUntilDurable(log.appendedPosition.offset, segment: 0, requestSync: false)
        #expect(log.statistics.syncs > first)
        log.close()
    }

    @Test func flushForcesAsyncDataToDisk() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        var options = ShardLog.Options()
        options.asyncFlushInterval = 3600  // never by itself during the test
        let (log, _) = try openShard(data, mode: .async, options: options)
        log.append(everyKind)
        let done = Latch(1)
        log.flush { result in
            #expect((try? result.get()) != nil)
            done.countDown()
        }
        done.wait()
        #expect(log.durablePosition == log.appendedPosition)
        log.close()
    }
}
