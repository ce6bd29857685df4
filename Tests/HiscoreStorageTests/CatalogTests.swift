#if canImport(Glibc)
import Glibc
#endif
import HiscoreCore
import Testing
@testable import HiscoreStorage

@Suite struct CatalogTests {
    static let weekly = BoardConfig(
        id: "weekly", scoreOrder: .ascending, subscoreOrder: .descending, writeOperator: .increment,
        rankMode: .dense, limits: BoardLimits(maxEntries: 1000, maxMetadataBytes: 64))

    @Test func recordsSurviveReopen() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let catalog = try BoardCatalog.open(directory: data)
        #expect(catalog.load() == CatalogState())
        try catalog.append(.created(incarnation: 1, config: Self.weekly, createdAt: 100))
        try catalog.append(.created(incarnation: 2, config: .defaultConfig(id: "gone"), createdAt: 101))
        try catalog.append(.season(incarnation: 1, periodID: 7, at: 200))
        try catalog.append(.season(incarnation: 1, periodID: 8, at: 400))
        try catalog.append(.deleted(incarnation: 2, at: 300))
        let expected = catalog.load()
        #expect(expected.boards.count == 1)
        #expect(expected.boards[1]?.config == Self.weekly)
        #expect(expected.boards[1]?.seasons == [CatalogSeason(periodID: 7, at: 200), CatalogSeason(periodID: 8, at: 400)])
        #expect(expected.highestIncarnation == 2)
        catalog.close()
        let reopened = try BoardCatalog.open(directory: data)
        #expect(reopened.load() == expected)
        #expect(reopened.warnings.isEmpty)
        reopened.close()
        // Compaction keeps the live state and the incarnation high-water mark, and shrinks the file.
        let before = fileSize(data.catalogPath)
        let compacted = try BoardCatalog.open(directory: data, compactAboveBytes: 0)
        #expect(compacted.load() == expected)
        #expect(fileSize(data.catalogPath) < before)
        try compacted.append(.created(incarnation: 3, config: .defaultConfig(id: "new"), createdAt: 500))
        compacted.close()
        let afterCompaction = try BoardCatalog.open(directory: data)
        #expect(afterCompaction.load().boards.count == 2)
        #expect(afterCompaction.load().highestIncarnation == 3)
        // A `season` record last (a reset whose `created` record a crash cut off), here of a board
        // older than the last one created, is left last: start-up revives the board from it, and
        // the next open compacts.
        try afterCompaction.append(.season(incarnation: 1, periodID: 9, at: 600))
        afterCompaction.close()
        let notCompacted = try BoardCatalog.open(directory: data, compactAboveBytes: 0)
        #expect(notCompacted.lastLoadedRecord == .season(incarnation: 1, periodID: 9, at: 600))
        notCompacted.close()
        let reread = try BoardCatalog.open(directory: data)
        #expect(reread.lastLoadedRecord == .season(incarnation: 1, periodID: 9, at: 600))
        reread.close()
    }

    @Test("boards created and deleted while the catalog is open keep its file near its live size")
    func churnWhileOpenIsCompacted() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let threshold = 4096
        let catalog = try BoardCatalog.open(directory: data, compactAboveBytes: threshold)
        try catalog.append(.created(incarnation: 1, config: Self.weekly, createdAt: 1))
        let firstFile = inodeNumber(data.catalogPath)
        var largest = 0
        var rewritten = false
        for incarnation in UInt64(2)...2001 {
            // A board per match: ~40 KB of records over the loop, two live at most.
            try catalog.append(.created(incarnation: incarnation, config: .defaultConfig(id: "match-\(incarnation)"), createdAt: incarnation))
            try catalog.append(.deleted(incarnation: incarnation, at: incarnation))
            largest = max(largest, fileSize(data.catalogPath))
            // Looked at after every append: a later rewrite may get the first file's freed inode.
            if inodeNumber(data.catalogPath) != firstFile { rewritten = true }
        }
        #expect(rewritten, "never rewritten while open")
        #expect(largest <= threshold + 256, "the file grew to \(largest) bytes")
        // Appends after a rewrite go to the new file, and deleted incarnations stay used.
        try catalog.append(.created(incarnation: 2002, config: .defaultConfig(id: "kept"), createdAt: 2002))
        try catalog.append(.created(incarnation: 2003, config: .defaultConfig(id: "dropped"), createdAt: 2003))
        try catalog.append(.deleted(incarnation: 2003, at: 2003))
        let expected = catalog.load()
        catalog.close()
        let reopened = try BoardCatalog.open(directory: data, compactAboveBytes: threshold)
        #expect(reopened.load() == expected)
        #expect(reopened.load().boards.keys.sorted() == [1, 2002])
        #expect(reopened.load().highestIncarnation == 2003)
        #expect(reopened.warnings.isEmpty)
        reopened.close()
    }

    @Test("a catalog of live boards past the threshold is not rewritten at every append")
    func liveCatalogIsNotRewritten() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let catalog = try BoardCatalog.open(directory: data, compactAboveBytes: 1024)
        try catalog.append(.created(incarnation: 1, config: Self.weekly, createdAt: 1))
        let firstFile = inodeNumber(data.catalogPath)
        var rewritten = false
        for incarnation in UInt64(2)...300 {
            try catalog.append(.created(incarnation: incarnation, config: .defaultConfig(id: "board-\(incarnation)"), createdAt: incarnation))
            if inodeNumber(data.catalogPath) != firstFile { rewritten = true }
        }
        // Nothing is dead: a rewrite would only copy the file.
        #expect(fileSize(data.catalogPath) > 8 * 1024)
        #expect(!rewritten)
        catalog.close()
        #expect(try BoardCatalog.open(directory: data).load().boards.count == 300)
    }

    @Test("a board config read back from the catalog equals the one written, whatever a schedule's unused fields held")
    func scheduledConfigRoundTrips() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        // A daily schedule sent with a weekday no byte holds (the catalog keeps one byte for it).
        let config = BoardConfig(id: "daily", resetSchedule: ResetSchedule(period: .daily, minuteOfDay: 90, weekday: 300, dayOfMonth: 400))
        let catalog = try BoardCatalog.open(directory: data)
        try catalog.append(.created(incarnation: 1, config: config, createdAt: 1))
        catalog.close()
        #expect(try BoardCatalog.open(directory: data).load().boards[1]?.config == config)
    }

    @Test func tornTailOfTheCatalogIsCut() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let catalog = try BoardCatalog.open(directory: data)
        try catalog.append(.created(incarnation: 1, config: Self.weekly, createdAt: 100))
        let goodEnd = fileSize(data.catalogPath)
        try catalog.append(.created(incarnation: 2, config: .defaultConfig(id: "second"), createdAt: 101))
        catalog.close()
        let original = readBytes(data.catalogPath)
        for cut in 1..<(original.count - goodEnd) {
            writeBytes(data.catalogPath, Array(original.dropLast(cut)))
            let reopened = try BoardCatalog.open(directory: data)
            #expect(Array(reopened.load().boards.keys) == [1], "cut \(cut)")
            #expect(reopened.warnings.count == 1, "cut \(cut)")
            #expect(fileSize(data.catalogPath) == goodEnd, "cut \(cut)")
            reopened.close()
        }
        // A flipped byte in the first record, with a valid one after it, is corruption.
        var damaged = original
        damaged[10] ^= 1
        writeBytes(data.catalogPath, damaged)
        #expect(throws: StorageError.self) { try BoardCatalog.open(directory: data) }
    }

    /// `append` writes what it is given; a record the server could not have created (a weekly
    /// reset on weekday 0, which would make the season keeper loop) must stop start-up instead.
    @Test func aRecordWithAnInvalidConfigIsCorruption() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let data = try DataDirectory.open(path: tmp.dataPath)
        let catalog = try BoardCatalog.open(directory: data)
        var broken = BoardConfig.defaultConfig(id: "broken")
        broken.resetSchedule = ResetSchedule(period: .weekly, weekday: 0)
        #expect(throws: ValidationError.self) { try broken.validate() }
        try catalog.append(.created(incarnation: 1, config: broken, createdAt: 100))
        try catalog.append(.created(incarnation: 2, config: .defaultConfig(id: "fine"), createdAt: 101))
        catalog.close()
        #expect(throws: StorageError.self) { try BoardCatalog.open(directory: data) }
    }

    @Test func segmentNumbersZeroAndMaxAreNotOurs() {
        #expect(ShardFiles.classify("wal-0000000000000000.log") == nil)
        #expect(ShardFiles.classify("wal-ffffffffffffffff.log") == nil)
        #expect(ShardFiles.classify("snapshot-0000000000000000.snap") == nil)
        #expect(ShardFiles.classify("wal-0000000000000001.log") == .segment(1))
        // Names the server never writes are not its files, even when they parse as hex.
        #expect(ShardFiles.classify("wal-+000000000000001.log") == nil)
        #expect(ShardFiles.classify("wal-000000000000000A.log") == nil)
        #expect(ShardFiles.classify("snapshot-+000000000000002.snap") == nil)
        #expect(ShardFiles.classify("wal-000000000000000a.log") == .segment(10))
    }
}
