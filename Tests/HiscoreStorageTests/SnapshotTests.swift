#if canImport(Glibc)
import Glibc
#endif
import HiscoreCore
import Testing
@testable import HiscoreStorage
import HiscoreTestSupport

/// Runs `finish` and waits for its result.
func finishAndWait(_ writer: SnapshotWriter) -> Result<SnapshotWriter.Summary, StorageError> {
    let result = Locked<Result<SnapshotWriter.Summary, StorageError>?>(nil)
    let done = Latch(1)
    writer.finish { outcome in
        result.withValue { $0 = outcome }
        done.countDown()
    }
    done.wait()
    return result.current!
}

@Suite struct SnapshotTests {
    @Test func snapshotPlusSegmentsRecoverTheExactState() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let (log, _) = try openShard(data, mode: .fsync)
        var model = ShardModel()
        var rng = SplitMix64(seed: 7)
        var sequence: UInt64 = 0
        for _ in 0..<500 {
            let record = randomRecord(&rng, sequence: &sequence)
            model.apply(record)
            log.append(record)
        }
        #expect(log.bytesSinceSnapshot > 0)
        let writer = try #require(log.beginSnapshot())
        #expect(log.beginSnapshot() == nil)  // one at a time
        #expect(log.bytesSinceSnapshot == 0)
        for (board, players) in model.boards {
            writer.add(board: board, entries: players.values.sorted { $0.playerID < $1.playerID })
        }
        let summary = try finishAndWait(writer).get()
        #expect(summary.segment == 2)
        #expect(summary.entries == UInt64(model.boards.values.map(\.count).reduce(0, +)))
        for _ in 0..<100 {
            let record = randomRecord(&rng, sequence: &sequence)
            model.apply(record)
            log.append(record)
        }
        log.close()
        // The segment before the snapshot is gone; the snapshot and segment 2 remain.
        let listing = try ShardFiles.list(data.shardPath(0))
        #expect(listing.segments == [2] && listing.snapshots == [2] && listing.temporaries.isEmpty)
        let recovered = try ShardLog.recover(directory: data, shard: 0)
        #expect(recovered.report.snapshotSegment == 2)
        #expect(recovered.records.count == 100)
        #expect(ShardModel(recovered: recovered) == model)
    }

    /// Fuzzy snapshots: writes continue between chunks, several snapshots in a row, random modes.
    @Test(arguments: testSeeds([1, 2, 3, 4, 5, 6]))
    func fuzzySnapshotsMatchTheModel(seed: UInt64) throws {
        print("fuzzySnapshotsMatchTheModel seed \(seed)")
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        var rng = SplitMix64(seed: seed)
        var model = ShardModel()
        var sequence: UInt64 = 0
        let mode: DurabilityMode = seed % 2 == 0 ? .fsync : .async
        let data = try DataDirectory.open(path: tmp.dataPath)
        for restart in 0..<3 {
            let (log, recovered) = try openShard(data, mode: mode)
            #expect(ShardModel(recovered: recovered) == model, "seed \(seed) restart \(restart)")
            for _ in 0..<(1 + rng.below(3)) {
                for _ in 0..<rng.below(300) {
                    let record = randomRecord(&rng, sequence: &sequence)
                    model.apply(record)
                    log.append(record)
                }
                let writer = try #require(log.beginSnapshot())
                // The shard walks its boards with a cursor over several turns; between turns,
                // more writes land (some before the cursor, some after).
                let boards = model.boards.keys.sorted()
                for board in boards {
                    var cursor = ""
                    while true {
                        let chunk = (model.boards[board] ?? [:]).values
                            .filter { $0.playerID > cursor }.sorted { $0.playerID < $1.playerID }.prefix(1 + rng.below(20))
                        if chunk.isEmpty { break }
                        writer.add(board: board, entries: Array(chunk))
                        cursor = chunk.last!.playerID
                        for _ in 0..<rng.below(15) {
                            let record = randomRecord(&rng, sequence: &sequence)
                            model.apply(record)
                            log.append(record)
                        }
                    }
                }
                _ = try finishAndWait(writer).get()
            }
            for _ in 0..<rng.below(200) {
                let record = randomRecord(&rng, sequence: &sequence)
                model.apply(record)
                log.append(record)
            }
            log.close()
        }
        let final = try ShardLog.recover(directory: data, shard: 0)
        #expect(ShardModel(recovered: final) == model, "seed \(seed)")
    }

    /// A small snapshot on disk, and the data dir.
    func makeSnapshot(_ tmp: TemporaryDirectory) throws -> (DataDirectory, String) {
        let data = try DataDirectory.open(path: tmp.dataPath)
        let (log, _) = try openShard(data, mode: .fsync)
        log.append(.clearBoard(board: 1))
        let writer = try #require(log.beginSnapshot())
        writer.add(board: 1, entries: [
            SnapshotEntry(playerID: "a", score: 1, subscore: 2, sequence: 3, metadata: [4]),
            SnapshotEntry(playerID: "bb", score: -1, subscore: 0, sequence: 9, metadata: []),
        ])
        writer.add(board: 2, entries: [SnapshotEntry(playerID: "c", score: 5, subscore: 5, sequence: 5, metadata: [])])
        let summary = try finishAndWait(writer).get()
        log.close()
        return (data, summary.path)
    }

    @Test func everyTruncationOfASnapshotIsAnError() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, path) = try makeSnapshot(tmp)
        let original = readBytes(path)
        let recovered = try ShardLog.recover(directory: data, shard: 0)
        #expect(recovered.snapshot[1]?.count == 2 && recovered.snapshot[2]?.count == 1)
        for length in 0..<original.count {
            writeBytes(path, Array(original[..<length]))
            #expect(throws: StorageError.self, "length \(length)") { try ShardLog.recover(directory: data, shard: 0) }
        }
        writeBytes(path, original + [0])
        #expect(throws: StorageError.self) { try ShardLog.recover(directory: data, shard: 0) }
    }

    @Test func everyFlippedByteOfASnapshotIsAnError() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, path) = try makeSnapshot(tmp)
        let original = readBytes(path)
        for position in 0..<original.count {
            var damaged = original
            damaged[position] ^= 0x10
            writeBytes(path, damaged)
            do {
                _ = try ShardLog.recover(directory: data, shard: 0)
                Issue.record("flip at \(position) not detected")
            } catch {
                guard case .corruptSnapshot(let file, _) = error else {
                    Issue.record("flip at \(position): unexpected \(error)")
                    continue
                }
                #expect(file == path)
                #expect(error.description.contains("move the file away"))
            }
        }
    }

    @Test func missingSegmentsAreReported() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, _) = try makeSnapshot(tmp)
        // Segments now: 2 (snapshot) ; add 3 and 4 by reopening twice.
        for _ in 0..<2 {
            let (log, _) = try openShard(data, mode: .fsync)
            log.append(.clearBoard(board: 3))
            log.close()
        }
        #expect(try ShardFiles.list(data.shardPath(0)).segments == [2, 3, 4])
        unlink(segmentPath(data, 3))
        #expect(throws: StorageError.self) { try ShardLog.recover(directory: data, shard: 0) }
        unlink(segmentPath(data, 2))
        #expect(throws: StorageError.self) { try ShardLog.recover(directory: data, shard: 0) }
        // Without the snapshot, the log alone must start at segment 1.
        unlink(data.shardPath(0) + "/" + ShardFiles.snapshotName(2))
        do {
            _ = try ShardLog.recover(directory: data, shard: 0)
            Issue.record("expected missingFiles")
        } catch {
            guard case .missingFiles = error else { Issue.record("unexpected \(error)"); return }
        }
    }

    @Test func abandonedSnapshotKeepsEverything() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let (log, _) = try openShard(data, mode: .fsync)
        log.append(everyKind)
        let writer = try #require(log.beginSnapshot())
        writer.add(board: 1, entries: [SnapshotEntry(playerID: "x", score: 1, subscore: 1, sequence: 1, metadata: [])])
        writer.abandon()
        log.append(.clearBoard(board: 42))
        log.close()
        let recovered = try ShardLog.recover(directory: data, shard: 0)
        #expect(recovered.snapshot.isEmpty)
        #expect(recovered.records == everyKind + [.clearBoard(board: 42)])
    }
}
