#if canImport(Glibc)
import Glibc
#endif
import HiscoreCore
import Testing
@testable import HiscoreStorage

@Suite struct BackupTests {
    @Test(arguments: [true, false])
    func backupRecoversEveryAcknowledgedWrite(hardLinks: Bool) throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let catalog = try BoardCatalog.open(directory: data)
        try catalog.append(.created(incarnation: 1, config: .defaultConfig(id: "b1"), createdAt: 1))
        var rng = SplitMix64(seed: 11)
        var sequence: UInt64 = 0
        var models: [ShardModel] = []
        var logs: [ShardLog] = []
        for shard in 0..<2 {
            let (log, _) = try openShard(data, shard: shard, mode: .async)
            var model = ShardModel()
            for round in 0..<2 {
                for _ in 0..<300 {
                    let record = randomRecord(&rng, sequence: &sequence)
                    model.apply(record)
                    log.append(record)
                }
                if round == 0 {
                    let writer = try #require(log.beginSnapshot())
                    for (board, players) in model.boards { writer.add(board: board, entries: Array(players.values)) }
                    _ = try finishAndWait(writer).get()
                }
            }
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
}
