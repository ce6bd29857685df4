import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreStorage
import HiscoreWire
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A small tmpfs mounted for one test (root only; the tests are skipped where `mount` is refused).
/// `fill()` takes every free byte with a filler file, `free()` deletes it again.
private final class ServerTmpfs: @unchecked Sendable {
    let path: String
    private var filler: String { path + "/filler" }

    static let available: Bool = {
        guard geteuid() == 0 else { return false }
        guard let probe = try? ServerTmpfs(bytes: 64 << 10) else { return false }
        probe.unmount()
        return true
    }()

    init(bytes: Int) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-srvtmpfs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", path]) == 0 else {
            try? FileManager.default.removeItem(atPath: path)
            throw CocoaError(.fileWriteNoPermission)
        }
    }

    /// Writes zeros until the file system says ENOSPC.
    func fill() {
        let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        precondition(fd >= 0)
        let chunk = [UInt8](repeating: 0, count: 4096)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        // The last page may be partly free: fill it byte by byte.
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, 1) }) > 0 {}
        close(fd)
    }

    func free() { unlink(filler) }

    func unmount() {
        _ = Self.run("/bin/umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// What the operator sees, and what comes back, when the data directory's disk fills up (a tmpfs
/// per test: needs root, skipped otherwise).
@Suite("A running server on a full disk", .serialized, .enabled(if: ServerTmpfs.available, "needs root and tmpfs mounts"))
struct ServerDiskFullTests {
    private func start(_ data: String, log: CapturedLog, clock: TestClock? = nil) async throws -> HiscoreServer {
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.adminPort = 0
        config.shards = 1
        config.durability = .fsync
        config.dataDirectory = data
        if let clock { config.clock = { clock.read() } }
        return try await HiscoreServer.start(configuration: config, logger: log.logger)
    }

    @Test("a shard log that fails on a full disk logs an error line (the operator's log shows nothing today)")
    func shardLogFailureIsLogged() async throws {
        let disk = try ServerTmpfs(bytes: 1 << 20)
        defer { disk.unmount() }
        let log = CapturedLog()
        let server = try await start(disk.path + "/data", log: log)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        try await client.createBoard(BoardConfig(id: "b"))
        disk.fill()
        let message = await expectStatus(.unavailable) { _ = try await client.submit(board: "b", player: "p", score: 1) }
        #expect(message.contains("No space left"))
        #expect(try await httpGet(port: server.adminPort!, path: "/readyz").status == 503)
        #expect(log.waitFor("restart hiscored", seconds: 5), "no log line says the shard's log failed and what to do")
        try await client.close()
        await server.shutdown()
        disk.free()
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

    @Test("a scheduled season reset that fails on a full disk is logged, and runs once space is back (without a restart)")
    func scheduledResetFailureOnFullDisk() async throws {
        let disk = try ServerTmpfs(bytes: 1 << 20)
        defer { disk.unmount() }
        let log = CapturedLog()
        let t0 = ResetScheduleTestsDates.micros(2026, 11, 28, 23, 58)
        let clock = TestClock(t0)
        let server = try await start(disk.path + "/data", log: log, clock: clock)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        try await client.createBoard(BoardConfig(id: "daily", resetSchedule: ResetSchedule(period: .daily, minuteOfDay: 0)))
        _ = try await client.submit(board: "daily", player: "alice", score: 5)
        // The reset appends a season record (33 bytes) and a created record for "daily" (~90 bytes).
        try await padCatalog(client, path: disk.path + "/data/boards.log", before: 100)
        disk.fill()
        clock.set(t0 + 5 * 60_000_000)  // past midnight: the boundary is due
        #expect(await server.runDueResets().isEmpty, "precondition: the reset's own append must hit ENOSPC")
        #expect(log.contains("board daily: the scheduled season reset"), "the failed scheduled reset of board daily was not logged")
        disk.free()
        // Space is back: the season timer, armed to try again within seconds (not at the next
        // midnight), resets the board without a call from here.
        let deadline = ContinuousClock.now + .seconds(20)
        var period: UInt64 = 1
        while period != 2 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            period = try await client.describeBoard("daily").currentPeriodID
        }
        #expect(period == 2, "live period \(period): last season's scores are still live")
        let archived = try await client.top(board: "daily", period: 1)
        #expect(archived.entries.map(\.playerID) == ["alice"])
        try await client.close()
        await server.shutdown()
    }
}
