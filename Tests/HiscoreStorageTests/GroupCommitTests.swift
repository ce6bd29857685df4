#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HiscoreStorage

/// A gate the writer thread blocks on inside its first group fsync, so the test controls exactly
/// what is pending when the fsync ends (deterministic batching, no sleeps).
final class SyncGate: @unchecked Sendable {
    private let lock = ConditionLock()
    private let condition: Condition
    private var entered = false
    private var released = false
    private var armed: Bool

    /// `armed: false`: every fsync passes until `arm()`.
    init(armed: Bool = true) {
        self.armed = armed
        condition = Condition(lock)
    }

    func arm() { lock.withLock { armed = true } }

    /// The hook: the first call once armed blocks until `release()`; later calls pass.
    func hook() {
        lock.withLock {
            guard armed else { return }
            armed = false
            entered = true
            condition.broadcast()
            while !released { condition.wait() }
        }
    }

    func waitUntilEntered() { lock.withLock { while !entered { condition.wait() } } }
    func release() { lock.withLock { released = true; condition.broadcast() } }
}

@Suite struct GroupCommitTests {
    /// A crash hunt held the async fdatasync for 200 ms: the writer made that call itself, and
    /// the writes acknowledged meanwhile stayed in the process until it returned (a kill -9 lost
    /// them all). The syncer thread makes it now, and the writer goes on writing.
    @Test("async mode: what is appended during the periodic fdatasync is handed to the OS meanwhile")
    func asyncWritesGoOnDuringTheSync() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let gate = SyncGate()
        var options = ShardLog.Options()
        options.beforeGroupSyncForTesting = { gate.hook() }
        let (log, _) = try openShard(data, mode: .async, options: options)
        func put(_ index: Int) -> LogRecord {
            .put(PutRecord(board: 1, playerID: "p\(index)", score: Int64(index), subscore: 0, sequence: UInt64(index + 1), metadata: []))
        }
        log.append(put(0))
        gate.waitUntilEntered()  // the periodic fdatasync of record 0 is held: a slow disk
        var last = LogPosition.zero
        for index in 1...9 { last = log.append(put(index)) }
        // Within the write interval (10 ms), not after the fdatasync; 5 s bounds a failing run.
        #expect(log.waitUntilWritten(last, timeoutNanos: 5_000_000_000))
        // What a kill -9 now leaves: the segment's bytes in the page cache.
        #expect(try ShardLog.recover(directory: data, shard: 0).records.count == 10)
        gate.release()
        log.close()
        #expect(try ShardLog.recover(directory: data, shard: 0).records.count == 10)
    }

    @Test func appendsDuringAnFsyncShareTheNextOne() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let gate = SyncGate()
        var options = ShardLog.Options()
        options.beforeGroupSyncForTesting = { gate.hook() }
        let (log, _) = try openShard(data, mode: .fsync, options: options)

        let total = 10_000
        let order = Locked<[Int]>([])
        let violations = Locked(0)
        let done = Latch(total)
        func submit(_ index: Int) {
            let record = LogRecord.put(PutRecord(
                board: 1, playerID: "p\(index)", score: Int64(index), subscore: 0, sequence: UInt64(index), metadata: []))
            let position = log.append(record)
            log.whenDurable(position) { result in
                #expect((try? result.get()) != nil)
                // Fires only once the covering fsync is done.
                if log.durablePosition < position { violations.withValue { $0 += 1 } }
                order.withValue { $0.append(index) }
                done.countDown()
            }
        }
        submit(0)
        gate.waitUntilEntered()  // the writer is inside the fsync of record 0
        for index in 1..<total { submit(index) }
        #expect(order.current.isEmpty)  // nothing acknowledged before its fsync
        gate.release()
        done.wait()
        let syncs = log.statistics.syncs
        print("group commit: \(total) appends, \(syncs) fsyncs, \(log.statistics.writes) writes")
        #expect(syncs == 2)  // one for record 0, one for the 9,999 that queued behind it
        #expect(order.current == Array(0..<total))
        #expect(violations.current == 0)
        log.close()
        #expect(try ShardLog.recover(directory: data, shard: 0).records.count == total)
    }

    @Test func manyAppendsNeedFarFewerFsyncs() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let (log, _) = try openShard(data, mode: .fsync)
        let total = 20_000
        let done = Latch(total)
        let last = Locked<LogPosition>(.zero)
        let outOfOrder = Locked(0)
        for index in 0..<total {
            let position = log.append(.clearBoard(board: UInt64(index)))
            log.whenDurable(position) { _ in
                last.withValue {
                    if $0 > position { outOfOrder.withValue { $0 += 1 } }
                    $0 = position
                }
                done.countDown()
            }
        }
        done.wait()
        let stats = log.statistics
        print("unthrottled: \(total) appends, \(stats.syncs) fsyncs")
        #expect(stats.syncs < total / 4)
        #expect(outOfOrder.current == 0)
        log.close()
    }

    @Test func backPressureBlocksUntilTheWriterTakesTheBuffer() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        var options = ShardLog.Options()
        options.maxPendingBytes = 4096
        let (log, _) = try openShard(data, mode: .fsync, options: options)
        for index in 0..<5_000 { log.append(.clearBoard(board: UInt64(index))) }
        #expect(log.pendingBytes <= 4096 + 64)
        try log.flushAndWait()
        log.close()
        #expect(try ShardLog.recover(directory: data, shard: 0).records.count == 5_000)
    }

    @Test func completionsAfterCloseFail() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let (log, _) = try openShard(data, mode: .fsync)
        let durable = log.append(.clearBoard(board: 1))
        log.close()
        let results = Locked<[Bool]>([])
        log.whenDurable(durable) { result in results.withValue { $0.append((try? result.get()) != nil) } }
        let lost = log.append(.clearBoard(board: 2))
        log.whenDurable(lost) { result in results.withValue { $0.append((try? result.get()) != nil) } }
        #expect(results.current == [true, false])
    }
}
