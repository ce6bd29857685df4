import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreStorage
import HiscoreWire
import Logging
import Synchronization
import Testing

/// A clock the test moves by hand (microseconds since the epoch).
final class TestClock: Sendable {
    private let now: Mutex<Int64>
    init(_ start: Int64) { now = Mutex(start) }
    func read() -> Int64 { now.withLock { $0 } }
    func set(_ value: Int64) { now.withLock { $0 = value } }
}

@Suite("Seasons: resets, archived periods, schedules", .serialized)
struct SeasonTests {
    static let t0 = ResetScheduleTestsDates.micros(2026, 11, 28, 23, 58)

    private func start(_ clock: TestClock, dataDirectory: String? = nil) async throws -> HiscoreServer {
        var config = ServerConfiguration()
        config.port = 0
        config.adminPort = nil
        config.shards = 2
        config.durability = dataDirectory == nil ? .memory : .fsync
        config.dataDirectory = dataDirectory ?? "unused"
        config.clock = { clock.read() }
        var logger = Logger(label: "season-test")
        logger.logLevel = .warning
        return try await HiscoreServer.start(configuration: config, logger: logger)
    }

    /// A write that a shard had begun to apply when the reset archived its board lands in the
    /// archived period (the shard checked the board was live just before): the reset's count
    /// must include it, so the reset answers once every shard has finished what it had begun.
    @Test("a season reset of a running server is logged: what was archived, what is live")
    func resetIsLogged() async throws {
        let log = CapturedLog()
        try await withServer(logger: log.logger) { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await client.submit(board: "logged", player: "alice", score: 5)
            _ = try await client.submit(board: "logged", player: "bob", score: 7)
            _ = try await client.resetBoard("logged")
            try await client.close()
            #expect(await log.waitFor("board logged: season reset by reset_board: period 1 archived with 2 entries, period 2 live", seconds: 10))
        }
    }

    @Test("a reset amid writes reports as many archived entries as its period holds")
    func resetCountsWritesInFlight() async throws {
        let clock = TestClock(Self.t0)
        let server = try await start(clock)
        let resetter = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        // The writers' items refused by a reset (ABORTED) are fine.
        try await whileWritingNewPlayers(port: server.localPort, board: "race", writers: 4, batch: 20) {
            _ = try await resetter.submit(board: "race", player: "first", score: 0)
            for _ in 0..<400 {
                let reset = try await resetter.resetBoard("race")
                let archived = try await resetter.top(board: "race", limit: 1, period: reset.archivedPeriodID)
                #expect(reset.archivedEntries == archived.boardSize, "period \(reset.archivedPeriodID)")
            }
        }
        try await resetter.close()
        await server.shutdown()
    }

    /// Concurrent resets of a board keeping one period: each prunes the period the one before
    /// archived, possibly before that one's answer was made (from the review that found it).
    @Test("concurrent resets, each pruning the last one's period, report every archived entry once")
    func concurrentResetsCountOnce() async throws {
        let clock = TestClock(Self.t0)
        let server = try await start(clock)
        var clients: [HiscoreClient] = []
        for _ in 0..<4 { clients.append(try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)) }
        try await clients[0].createBoard(BoardConfig(id: "k1", resetSchedule: ResetSchedule(period: .daily, keepPeriods: 1)))
        for round in 0..<400 {
            _ = try await clients[0].submitBatch((0..<5).map { SubmitRequest(boardID: "k1", playerID: "p\(round)-\($0)", score: Int64($0)) })
            let answers = try await withThrowingTaskGroup(of: ResetBoardResponse.self) { group in
                for client in clients { group.addTask { try await client.resetBoard("k1") } }
                var all: [ResetBoardResponse] = []
                for try await answer in group { all.append(answer) }
                return all
            }
            let total = answers.reduce(0) { $0 + $1.archivedEntries }
            #expect(total == 5, "round \(round): \(answers.map { ($0.archivedPeriodID, $0.archivedEntries) })")
            if total != 5 { break }
        }
        for client in clients { try await client.close() }
        await server.shutdown()
    }

    @Test("a manual reset archives the standings as a period queryable with the same calls")
    func manualReset() async throws {
        let clock = TestClock(Self.t0)
        let server = try await start(clock)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        _ = try await client.submitBatch((0..<10).map { SubmitRequest(boardID: "s", playerID: "p\($0)", score: Int64($0)) })
        let reset = try await client.resetBoard("s")
        #expect(reset.archivedPeriodID == 1 && reset.archivedEntries == 10)
        #expect(try await client.top(board: "s").entries.isEmpty)
        #expect(try await client.top(board: "s", period: 1).entries.first?.playerID == "p9")
        #expect(try await client.rank(board: "s", player: "p0", period: 1).entry.rank == 10)
        #expect(try await client.around(board: "s", player: "p5", before: 1, after: 1, period: 1).entries.map(\.playerID) == ["p6", "p5", "p4"])
        let friends = try await client.entries(board: "s", players: ["p2", "p7", "new"], period: 1)
        #expect(friends.entries.map(\.playerID) == ["p7", "p2"] && friends.entries.map(\.rank) == [3, 8])
        #expect(try await client.count(board: "s", minScore: 3, maxScore: 5, period: 1).count == 3)
        _ = try await client.submit(board: "s", player: "new", score: 1)
        #expect(try await client.count(board: "s", minScore: 0, maxScore: 5).count == 1)
        let info = try await client.describeBoard("s")
        #expect(info.currentPeriodID == 2 && info.size == 1)
        #expect(info.periods.map(\.periodID) == [1] && info.periods.first?.size == 10)
        await expectStatus(.notFound) { _ = try await client.top(board: "s", period: 7) }
        try await client.close()
        await server.shutdown()
    }

    /// Cuts the last frame (a catalog record) off the data dir's boards.log: what a crash in the
    /// middle of a multi-record append can leave.
    private func dropLastCatalogRecord(_ dataDirectory: String) throws {
        let path = dataDirectory + "/boards.log"
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var offset = 0
        var lastStart = 0
        while offset + 8 <= bytes.count {
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
            lastStart = offset
            offset += 8 + length
        }
        #expect(offset == bytes.count)
        try Data(bytes[..<lastStart]).write(to: URL(fileURLWithPath: path))
    }

    /// Starts a server on `dataDirectory`, runs `body` with a client connected to it, then
    /// closes both (also when `body` throws): one life of the server between two restarts.
    private func session(
        _ clock: TestClock, _ dataDirectory: String, _ body: (HiscoreClient) async throws -> Void
    ) async throws {
        let server = try await start(clock, dataDirectory: dataDirectory)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        do {
            try await body(client)
        } catch {
            try? await client.close()
            await server.shutdown()
            throw error
        }
        try await client.close()
        await server.shutdown()
    }

    @Test("a season reset cut short by a crash (its new period never recorded) leaves the board live with its entries")
    func resetCutShort() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = TestClock(Self.t0)
        try await session(clock, directory.path) { client in
            _ = try await client.submit(board: "cut", player: "alice", score: 5)
            _ = try await client.resetBoard("cut")
        }
        try dropLastCatalogRecord(directory.path)  // the reset's `created` record
        try await session(clock, directory.path) { client in
            let info = try await client.describeBoard("cut")
            #expect(info.currentPeriodID == 1 && info.periods.isEmpty)
            #expect(try await client.rank(board: "cut", player: "alice").entry.score == 5)
            // It resets and deletes as any board does.
            #expect(try await client.resetBoard("cut").archivedPeriodID == 1)
            _ = try await client.deleteBoard("cut")
            await expectStatus(.notFound) { _ = try await client.describeBoard("cut") }
        }
    }

    @Test("a season reset cut short revives its board also when boards were created after it")
    func resetCutShortOlderBoard() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = TestClock(Self.t0)
        try await session(clock, directory.path) { client in
            _ = try await client.submit(board: "cut", player: "alice", score: 5)
            _ = try await client.submit(board: "later", player: "bob", score: 1)  // a newer incarnation
            _ = try await client.resetBoard("cut")
        }
        try dropLastCatalogRecord(directory.path)  // the reset's `created` record
        try await session(clock, directory.path) { client in
            // The reset was never acknowledged: "cut" must be live with its entries, as in
            // resetCutShort, whether or not it holds the catalog's highest incarnation.
            let info = try await client.describeBoard("cut")
            #expect(info.currentPeriodID == 1 && info.periods.isEmpty)
            #expect(try await client.rank(board: "cut", player: "alice").entry.score == 5)
        }
    }

    /// The catalog is compacted on open above 1 MiB; a compaction before the revival's append
    /// left the cut `season` record no longer last, and a crash between the two took the board
    /// for an orphaned archive at the next start (found by a crash hunt).
    @Test("a reset cut short is still revived after a crash between the catalog's compaction on open and the revival")
    func revivalSurvivesACrashAfterCompactionOnOpen() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = TestClock(Self.t0)
        try await session(clock, directory.path) { client in
            _ = try await client.submit(board: "cut", player: "alice", score: 5)
            _ = try await client.submit(board: "later", player: "bob", score: 1)  // a newer incarnation
            _ = try await client.resetBoard("cut")
        }
        try dropLastCatalogRecord(directory.path)  // the reset's `created` record
        /// Opens the catalog as a start-up does (compacting at any size here) and closes it:
        /// whether its last record was a `season` one.
        func openCatalogEndsWithSeason() throws -> Bool {
            let data = try DataDirectory.open(path: directory.path)
            defer { data.close() }
            let catalog = try BoardCatalog.open(directory: data, compactAboveBytes: 0)
            defer { catalog.close() }
            if case .season? = catalog.lastLoadedRecord { return true }
            return false
        }
        // The start-up that crashes: the catalog is opened, then the process dies before the
        // revival is appended.
        #expect(try openCatalogEndsWithSeason())
        try await session(clock, directory.path) { client in
            let info = try await client.describeBoard("cut")
            #expect(info.currentPeriodID == 1 && info.periods.isEmpty)
            #expect(try await client.rank(board: "cut", player: "alice").entry.score == 5)
        }
        // Once revived, the catalog compacts again on open, and the board stays live.
        #expect(try !openCatalogEndsWithSeason())
        try await session(clock, directory.path) { client in
            let period = try await client.describeBoard("cut").currentPeriodID
            #expect(period == 1)
        }
    }

    @Test("a board revived after a cut reset stays live at the next restart, also after another board was created")
    func revivedBoardStaysLive() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = TestClock(Self.t0)
        try await session(clock, directory.path) { client in
            _ = try await client.submit(board: "cut", player: "alice", score: 5)
            _ = try await client.resetBoard("cut")
        }
        try dropLastCatalogRecord(directory.path)  // the reset's `created` record
        try await session(clock, directory.path) { client in
            #expect(try await client.describeBoard("cut").currentPeriodID == 1)  // revived
            _ = try await client.submit(board: "cut", player: "bob", score: 7)  // acknowledged on the revived board
            _ = try await client.submit(board: "other", player: "carol", score: 1)  // a new, higher incarnation
        }
        try await session(clock, directory.path) { client in
            let info = try await client.describeBoard("cut")
            #expect(info.currentPeriodID == 1 && info.periods.isEmpty)
            #expect(try await client.rank(board: "cut", player: "bob").entry.score == 7)
            #expect(try await client.rank(board: "cut", player: "alice").entry.score == 5)
        }
    }

    @Test("deleting a board with archived periods is one catalog write: a crash in it never leaves periods without their board")
    func deletionCutShort() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = TestClock(Self.t0)
        var server = try await start(clock, dataDirectory: directory.path)
        var client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        _ = try await client.submit(board: "del", player: "alice", score: 5)
        _ = try await client.resetBoard("del")
        _ = try await client.submit(board: "del", player: "bob", score: 6)
        _ = try await client.deleteBoard("del")
        try await client.close()
        await server.shutdown()
        try dropLastCatalogRecord(directory.path)  // the deletion's last record: the live period's
        server = try await start(clock, dataDirectory: directory.path)
        client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        // The live period survived the cut deletion (its archived one did not): the board is
        // there, and can be deleted again.
        let info = try await client.describeBoard("del")
        #expect(info.periods.isEmpty && info.size == 1)
        #expect(try await client.rank(board: "del", player: "bob").entry.score == 6)
        _ = try await client.deleteBoard("del")
        await expectStatus(.notFound) { _ = try await client.describeBoard("del") }
        try await client.close()
        await server.shutdown()
    }

    @Test("archived periods left without their board by an older version's cut deletion stay archived and can be deleted")
    func orphanedPeriods() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = TestClock(Self.t0)
        var server = try await start(clock, dataDirectory: directory.path)
        var client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        _ = try await client.submit(board: "orphan", player: "alice", score: 5)
        _ = try await client.resetBoard("orphan")
        _ = try await client.submit(board: "later", player: "bob", score: 1)  // a newer incarnation
        try await client.close()
        await server.shutdown()
        // What an older version's deletion left when cut after its first record: the live
        // incarnation deleted, the archived one not.
        let data = try DataDirectory.open(path: directory.path)
        let catalog = try BoardCatalog.open(directory: data)
        let live = try #require(catalog.load().boards.values.first { $0.config.id == "orphan" && $0.seasons.isEmpty })
        try catalog.append(.deleted(incarnation: live.incarnation, at: 0))
        catalog.close()
        data.close()
        server = try await start(clock, dataDirectory: directory.path)
        client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        await expectStatus(.notFound) { _ = try await client.describeBoard("orphan") }  // not revived
        _ = try await client.deleteBoard("orphan")  // removes the orphaned period
        await expectStatus(.notFound) { _ = try await client.deleteBoard("orphan") }
        #expect(try await client.rank(board: "later", player: "bob").entry.score == 1)
        try await client.close()
        await server.shutdown()
    }

    @Test("a daily schedule resets exactly once per boundary, also across a restart; old periods are pruned")
    func scheduledResets() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = TestClock(Self.t0)
        var server = try await start(clock, dataDirectory: directory.path)
        var client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        let schedule = ResetSchedule(period: .daily, minuteOfDay: 0, keepPeriods: 2)
        try await client.createBoard(BoardConfig(id: "daily", resetSchedule: schedule))
        _ = try await client.submit(board: "daily", player: "alice", score: 5)
        #expect(await server.runDueResets() == [])
        clock.set(Self.t0 + 3 * 60_000_000)  // 00:01 on the 29th: the boundary passed
        #expect(await server.runDueResets() == ["daily"])
        #expect(await server.runDueResets() == [])  // exactly once
        #expect(try await client.rank(board: "daily", player: "alice", period: 1).entry.score == 5)
        _ = try await client.submit(board: "daily", player: "bob", score: 7)
        try await client.close()
        await server.shutdown()

        // Restart on the same data dir at the same time: nothing is due again.
        server = try await start(clock, dataDirectory: directory.path)
        client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        var info = try await client.describeBoard("daily")
        #expect(info.currentPeriodID == 2 && info.periods.map(\.periodID) == [1])
        #expect(try await client.rank(board: "daily", player: "bob").entry.score == 7)
        #expect(try await client.top(board: "daily", period: 1).entries.map(\.playerID) == ["alice"])
        try await client.close()
        await server.shutdown()

        // Three days later, after a long stop: one reset at start-up (missed boundaries collapse).
        clock.set(Self.t0 + 3 * 86_400_000_000)
        server = try await start(clock, dataDirectory: directory.path)
        client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        info = try await client.describeBoard("daily")
        #expect(info.currentPeriodID == 3 && info.periods.map(\.periodID) == [1, 2])
        #expect(try await client.top(board: "daily", period: 2).entries.map(\.playerID) == ["bob"])
        // One more day: period 1 falls out (keep_periods 2).
        clock.set(Self.t0 + 4 * 86_400_000_000)
        #expect(await server.runDueResets() == ["daily"])
        info = try await client.describeBoard("daily")
        #expect(info.periods.map(\.periodID) == [2, 3])
        await expectStatus(.notFound) { _ = try await client.top(board: "daily", period: 1) }
        try await client.close()
        await server.shutdown()
    }

    @Test("streams on a board end with ABORTED when its season resets")
    func streamsEndOnReset() async throws {
        let clock = TestClock(Self.t0)
        let server = try await start(clock)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        _ = try await client.submit(board: "r", player: "p", score: 1)
        var iterator = client.subscribe(board: "r", target: .top(5)).makeAsyncIterator()
        _ = try await iterator.next()
        try await client.resetBoard("r")
        await expectStatus(.aborted) { while try await iterator.next() != nil {} }
        try await client.close()
        await server.shutdown()
    }
}

enum ResetScheduleTestsDates {
    static func micros(_ year: Int64, _ month: Int64, _ day: Int64, _ hour: Int64 = 0, _ minute: Int64 = 0) -> Int64 {
        var days: Int64 = 0
        func leap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
        for y in 1970..<year { days += leap(y) ? 366 : 365 }
        let lengths: [Int64] = [31, leap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for m in 0..<Int(month - 1) { days += lengths[m] }
        days += day - 1
        return ((days * 24 + hour) * 60 + minute) * 60_000_000
    }
}
