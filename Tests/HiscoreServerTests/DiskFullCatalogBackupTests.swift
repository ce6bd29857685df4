import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreStorage
import HiscoreTestSupport
import HiscoreWire
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a server does when its data disk fills up, and what the operator sees: shard logs, the
/// board catalog, season resets and backups.
@Suite("A full disk under a running server", .serialized, .enabled(if: Tmpfs.available, "needs root and tmpfs mounts"))
struct DiskFullCatalogBackupTests {
    /// Runs `body` against a one-shard fsync-mode server on `data` and a connected client; both
    /// are closed again whatever `body` does (a server left running keeps the tmpfs busy).
    private func withServer(
        _ data: String, log: CapturedLog, clock: TestClock? = nil,
        _ body: (HiscoreServer, HiscoreClient) async throws -> Void
    ) async throws {
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.adminPort = 0
        config.shards = 1
        config.durability = .fsync
        config.dataDirectory = data
        if let clock { config.clock = { clock.read() } }
        let server = try await HiscoreServer.start(configuration: config, logger: log.logger)
        var failure: (any Error)?
        do {
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            do { try await body(server, client) } catch { failure = error }
            try? await client.close()
        } catch { failure = error }
        await server.shutdown()
        if let failure { throw failure }
    }

    /// One catalog append refused with ENOSPC poisoned `boards.log` for good: after space was
    /// freed every create/delete/reset still failed with the stale "No space left" until a
    /// restart, while /readyz said ready and nothing was logged.
    @Test("a catalog change refused for lack of space is logged; once space is freed create_board and delete_board work again without a restart, and the data dir restarts whole")
    func catalogRecoversFromTransientFullDisk() async throws {
        try await withTmpfs(bytes: 1 << 20) { disk in
            let data = disk.path + "/data"
            let log = CapturedLog()
            try await withServer(data, log: log) { server, client in
                await disk.fill()
                let full = await expectStatus(.unavailable) { _ = try await client.createBoard(BoardConfig(id: "while-full")) }
                #expect(full.contains("No space left"), "\(full)")
                #expect(log.contains("error board catalog"), "nothing was logged about the failed catalog append")
                // A write refused and cut back is no reason to take the server out of rotation.
                #expect(try await httpGet(port: server.adminPort!, path: "/readyz").status == 200)
                disk.free()

                var message = ""
                do {
                    _ = try await client.createBoard(BoardConfig(id: "after-free"))
                    _ = try await client.createBoard(BoardConfig(id: "doomed"))
                    _ = try await client.deleteBoard("doomed")
                } catch let error as HiscoreError {
                    message = error.message
                }
                #expect(message.isEmpty, "create/delete after space was freed: \(message)")
                #expect(log.contains("recorded again"))
                let ready = try await httpGet(port: server.adminPort!, path: "/readyz")
                #expect(ready.status == 200, "\(ready.body)")
                let metrics = try await httpGet(port: server.adminPort!, path: "/metrics")
                #expect(metrics.body.contains("hiscore_catalog_failed 0"))
            }
            // The refused board's half-written bytes were cut back: the catalog reopens with no torn
            // tail, without the refused board, with the later ones.
            let restartLog = CapturedLog()
            try await withServer(data, log: restartLog) { _, client in
                let boards = try await client.listBoards().boards.map(\.config.id)
                #expect(boards == ["after-free"])
                #expect(!restartLog.contains("torn tail"))
            }
        }
    }

    /// Creates boards until boards.log ends so close to a page boundary that an append of
    /// `bytes` more needs a new page (tmpfs charges whole pages): with the disk then filled,
    /// exactly that append gets ENOSPC, while the catalog was never refused before.
    private func padCatalog(_ client: HiscoreClient, path: String, before bytes: Int) async throws {
        func size() -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0 }
        let page = 4096
        var n = 0
        let before = size()
        try await client.createBoard(BoardConfig(id: "pad-a"))
        let overhead = size() - before - 5  // a created record's bytes besides its id
        while n < 1000 {
            let remaining = (page - size() % page) % page
            if remaining < bytes { return }
            let length = remaining - bytes / 2 - overhead
            let tag = "q\(n)"
            let id = (tag.count...Identifier.maxBytes).contains(length)
                ? tag + String(repeating: "x", count: length - tag.count) : "pad-\(n)"
            try await client.createBoard(BoardConfig(id: id))
            n += 1
        }
        Issue.record("could not pad the catalog")
    }

    @Test("a shard log that fails on a full disk says so in the server's log, with what to do")
    func shardLogFailureIsLogged() async throws {
        try await withTmpfs(bytes: 1 << 20) { disk in
            let log = CapturedLog()
            try await withServer(disk.path + "/data", log: log) { server, client in
                try await client.createBoard(BoardConfig(id: "b"))
                await disk.fill()
                // The segment's last page (its header's) takes a few records before a write needs
                // a page the disk does not have.
                var message = ""
                for index in 0..<64 where message.isEmpty {
                    do {
                        _ = try await client.submit(
                            board: "b", player: "p\(index)", score: 1, metadata: [UInt8](repeating: 1, count: 200))
                    } catch let error as HiscoreError {
                        #expect(error.code == .unavailable, "\(error)")
                        message = error.message
                    }
                }
                #expect(message.contains("No space left"), "\(message)")
                #expect(try await httpGet(port: server.adminPort!, path: "/readyz").status == 503)
                #expect(await log.waitFor("restart hiscored", seconds: 30), "no log line says the shard's log failed and what to do")
                disk.free()
            }
        }
    }

    /// A failed scheduled reset was dropped without a word until the next boundary (a day or a
    /// week of last season's scores live).
    @Test("a scheduled season reset that fails for lack of space is logged and runs once space is back, by the season timer")
    func scheduledResetAfterFullDisk() async throws {
        try await withTmpfs(bytes: 1 << 20) { disk in
            let log = CapturedLog()
            let t0 = ResetScheduleTestsDates.micros(2026, 11, 28, 23, 58)
            let clock = TestClock(t0)
            try await withServer(disk.path + "/data", log: log, clock: clock) { server, client in
                try await client.createBoard(BoardConfig(id: "daily", resetSchedule: ResetSchedule(period: .daily, minuteOfDay: 0)))
                _ = try await client.submit(board: "daily", player: "alice", score: 5)
                // The reset appends a season record and a created record for "daily" (~120 bytes).
                try await padCatalog(client, path: disk.path + "/data/boards.log", before: 100)
                await disk.fill()
                clock.set(t0 + 5 * 60_000_000)  // past midnight: the boundary is due
                #expect(await server.runDueResets().isEmpty, "precondition: the reset's own append must hit ENOSPC")
                #expect(log.contains("error board catalog"))
                #expect(log.contains("board daily: the scheduled season reset"), "the failed scheduled reset of board daily was not logged")
                disk.free()
                // Space is back: the season timer, armed to try again within seconds (not at the
                // next midnight), resets the board without a call from here.
                let deadline = ContinuousClock.now + .seconds(20)
                var period: UInt64 = 1
                while period != 2 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    period = try await client.describeBoard("daily").currentPeriodID
                }
                #expect(period == 2, "live period \(period): last season's scores are still live")
                #expect(try await client.top(board: "daily", period: 1).entries.map(\.playerID) == ["alice"])
            }
        }
    }

    @Test("a backup that fails for lack of space says so, removes what it had written, and the same destination works once there is room")
    func failedBackupLeavesNoPartialCopy() async throws {
        try await withTmpfs(bytes: 4 << 20) { disk in
            try await withTmpfs(bytes: 256 << 10) { target in
                let log = CapturedLog()
                try await withServer(disk.path + "/data", log: log) { _, client in
                    try await client.createBoard(BoardConfig(id: "b", limits: BoardLimits(maxMetadataBytes: 4096)))
                    let metadata = [UInt8](repeating: 7, count: 4000)
                    for batch in 0..<4 {
                        _ = try await client.submitBatch((0..<100).map {
                            SubmitRequest(boardID: "b", playerID: "p\(batch)-\($0)", score: Int64($0), metadata: metadata)
                        })
                    }
                    let destination = target.path + "/backup"
                    let message = await expectStatus(.failedPrecondition) { _ = try await client.backup(to: destination) }
                    #expect(message.contains("No space left"), "\(message)")
                    #expect(message.contains("free space"), "\(message)")
                    #expect(!FileManager.default.fileExists(atPath: destination), "the failed backup left its destination behind")
                    #expect(await target.resize(bytes: 8 << 20))
                    let summary = try await client.backup(to: destination)
                    #expect(summary.files >= 2)
                }
            }
        }
    }
}
