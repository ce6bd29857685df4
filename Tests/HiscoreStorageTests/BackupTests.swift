#if canImport(Glibc)
import Glibc
#endif
import HiscoreCore
import Testing
@testable import HiscoreStorage
import HiscoreTestSupport

@Suite struct BackupTests {
    @Test(arguments: [true, false])
    func backupRecoversEveryAcknowledgedWrite(hardLinks: Bool) throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, catalog) = try Self.dataDirectoryWithBoard(tmp)
        var rng = SplitMix64(seed: 11)
        var sequence: UInt64 = 0
        var models: [ShardModel] = []
        var logs: [ShardLog] = []
        for shard in 0..<2 {
            let (log, _) = try openShard(data, shard: shard, mode: .async)
            var model = ShardModel()
            try Self.write(300, to: log, model: &model, rng: &rng, sequence: &sequence)
            try Self.snapshot(model, of: log)
            try Self.write(300, to: log, model: &model, rng: &rng, sequence: &sequence)
            try log.flushAndWait()  // async mode: what "acknowledged" must mean for the backup
            models.append(model)
            logs.append(log)
        }
        let destination = tmp.path + "/backup"
        let summary = try data.backup(to: destination, hardLinks: hardLinks)
        #expect(summary.files == 2 * 2 + 1)  // per shard: snapshot + active segment; + catalog
        #expect(summary.linkedFiles == (hardLinks ? 2 : 0))
        // The live server keeps writing; the backup is unaffected.
        for log in logs {
            log.append(.clearBoard(board: 1))
            log.close()
        }
        #expect(throws: StorageError.self) { try data.backup(to: destination) }  // not empty

        let restored = try DataDirectory.open(path: destination)
        for shard in 0..<2 {
            let recovered = try ShardLog.recover(directory: restored, shard: shard)
            #expect(ShardModel(recovered: recovered) == models[shard], "shard \(shard)")
        }
        #expect(try BoardCatalog.open(directory: restored).load() == catalog.load())
    }

    /// A data directory in `tmp` whose catalog holds board "b1" (incarnation 1).
    static func dataDirectoryWithBoard(_ tmp: TemporaryDirectory) throws -> (DataDirectory, BoardCatalog) {
        let data = try DataDirectory.open(path: tmp.dataPath)
        let catalog = try BoardCatalog.open(directory: data)
        try catalog.append(.created(incarnation: 1, config: .defaultConfig(id: "b1"), createdAt: 1))
        return (data, catalog)
    }

    /// Appends `count` random records to `log` and applies them to `model`.
    static func write(
        _ count: Int, to log: ShardLog, model: inout ShardModel, rng: inout SplitMix64, sequence: inout UInt64
    ) throws {
        for _ in 0..<count {
            let record = randomRecord(&rng, sequence: &sequence)
            model.apply(record)
            log.append(record)
        }
    }

    /// Writes `model` as `log`'s snapshot and waits for it.
    static func snapshot(_ model: ShardModel, of log: ShardLog) throws {
        let writer = try #require(log.beginSnapshot())
        for (board, players) in model.boards { writer.add(board: board, entries: Array(players.values)) }
        _ = try finishAndWait(writer).get()
    }

    /// /dev/shm when it is another file system than /tmp (where the tests' data dirs live).
    static let otherFileSystem: String? = {
        var tmp = stat()
        var shm = stat()
        guard stat("/tmp", &tmp) == 0, stat("/dev/shm", &shm) == 0, tmp.st_dev != shm.st_dev,
            access("/dev/shm", W_OK) == 0
        else { return nil }
        return "/dev/shm"
    }()

    @Test(
        "a backup to another file system copies what it cannot link, and says so",
        .enabled(if: otherFileSystem != nil, "needs /dev/shm on another file system than /tmp"))
    func backupAcrossFileSystems() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let (data, _) = try Self.dataDirectoryWithBoard(tmp)
        var rng = SplitMix64(seed: 12)
        var sequence: UInt64 = 0
        let (log, _) = try openShard(data, shard: 0, mode: .async)
        var model = ShardModel()
        try Self.write(200, to: log, model: &model, rng: &rng, sequence: &sequence)
        try Self.snapshot(model, of: log)
        try log.flushAndWait()
        defer { log.close() }
        let destination = try #require(Self.otherFileSystem) + "/hiscore-backup-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { TemporaryDirectory.removeTree(destination) }
        let summary = try data.backup(to: destination)
        // The snapshot would have been linked on the same file system; here every byte is copied.
        #expect(summary.linkedFiles == 0)
        var total: UInt64 = 0
        for file in try POSIX.listDirectory(destination + "/shard-000") {
            var info = stat()
            #expect(stat(destination + "/shard-000/" + file, &info) == 0)
            total += UInt64(info.st_size)
        }
        var catalogInfo = stat()
        #expect(stat(destination + "/boards.log", &catalogInfo) == 0)
        #expect(summary.copiedBytes == total + UInt64(catalogInfo.st_size))
        let recovered = try ShardLog.recover(directory: DataDirectory.open(path: destination), shard: 0)
        #expect(ShardModel(recovered: recovered) == model)
    }
}
