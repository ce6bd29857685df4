import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreTestSupport
import HiscoreWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Durability with a real `hiscored` process: SIGKILL while clients write, restart on the same
/// data directory, and check that nothing acknowledged was lost.
@Suite("Durability: kill -9, restart, corrupt files", .serialized)
struct DurabilityTests {
    /// Acknowledged submits, as the clients saw them.
    final class Acknowledged: @unchecked Sendable {
        private let lock = NSLock()
        private var best: [String: Int64] = [:]
        func record(_ player: String, _ score: Int64) {
            lock.withLock { best[player] = max(best[player] ?? .min, score) }
        }
        var snapshot: [String: Int64] { lock.withLock { best } }
    }

    @Test("every acknowledged submit survives SIGKILL at random points, snapshots included", arguments: [1, 2, 3])
    func killDuringWrites(round: Int) async throws {
        let seed = UInt64.random(in: 1...UInt64.max)
        var random = SplitMix64(seed: seed)
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        // A tiny snapshot threshold so that kills also land during and between snapshots.
        let arguments = ["--data-dir", directory.path, "--shards", "2", "--durability", "fsync", "--snapshot-after", "64K"]
        let acknowledged = Acknowledged()
        var server = try await ServerProcess.start(arguments: arguments)
        let setup = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
        try await setup.createBoard(BoardConfig(id: "kill"))
        try await setup.close()
        for life in 0..<2 {
            let port = server.port
            let killAfter = Duration.milliseconds(Int64(200 + random.next(below: 600)))
            let writers = (0..<4).map { writer in
                Task {
                    let client = try await HiscoreClient.connect(host: "127.0.0.1", port: port)
                    var score = Int64(life * 1_000_000)
                    while !Task.isCancelled {
                        score += 1
                        let player = "p\(writer)-\(score % 50)"
                        do {
                            let result = try await client.submit(board: "kill", player: player, score: score)
                            acknowledged.record(player, result.entry.score)
                        } catch {
                            break  // the server died: this submit was not acknowledged
                        }
                    }
                    try? await client.close()
                }
            }
            try await Task.sleep(for: killAfter)  // a random kill point, not synchronization
            server.signal(SIGKILL)
            await server.waitForExit(timeout: .seconds(10))
            for writer in writers { _ = await writer.result }
            server = try await ServerProcess.start(arguments: arguments)
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            let top = try await client.top(board: "kill", limit: 1000)
            var stored: [String: Int64] = [:]
            for entry in top.entries { stored[entry.playerID] = entry.score }
            for (player, score) in acknowledged.snapshot {
                #expect((stored[player] ?? .min) >= score, "seed \(seed) life \(life): \(player) acknowledged \(score), stored \(String(describing: stored[player]))")
            }
            #expect(top.entries.map(\.rank) == (1...UInt64(max(1, top.entries.count))).map { $0 }.prefix(top.entries.count).map { $0 })
            _ = try await client.submit(board: "kill", player: "after-restart", score: 1)
            try await client.close()
        }
        await server.stop()
    }

    @Test("boards of every operator and order come back exactly after SIGKILL and after a snapshot, restart after restart (decrement boards came back negated)")
    func everyOperatorSurvivesRestarts() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let arguments = ["--data-dir", directory.path, "--shards", "2", "--durability", "fsync", "--snapshot-after", "16K"]
        var server = try await ServerProcess.start(arguments: arguments)
        let boards = [WriteOperator.best, .set, .increment, .decrement].flatMap { op in
            [SortOrder.descending, .ascending].map { order in BoardConfig(id: "b-\(op)-\(order)", scoreOrder: order, writeOperator: op) }
        }
        var client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
        for board in boards {
            try await client.createBoard(board)
            for round in 0..<3 {
                var submits: [SubmitRequest] = []
                for player in 0..<40 {
                    let score = Int64((player * 7) % 23 - 11 + round)
                    let metadata: [UInt8]? = player % 4 == 0 ? [UInt8(player), UInt8(round)] : nil
                    submits.append(SubmitRequest(
                        boardID: board.id, playerID: "p\(player)", score: score, subscore: Int64(player % 3 - 1), metadata: metadata))
                }
                _ = try await client.submitBatch(submits)
            }
        }
        func standings(_ client: HiscoreClient) async throws -> [String: [WireEntry]] {
            var all: [String: [WireEntry]] = [:]
            for board in boards { all[board.id] = try await client.top(board: board.id, limit: 100).entries }
            return all
        }
        let expected = try await standings(client)
        #expect(expected["b-decrement-descending"]?.contains { $0.score < 0 } == true)
        try await client.close()
        // SIGKILL: the log is replayed. Then a clean stop and more restarts: snapshots are loaded.
        for (life, signal) in [SIGKILL, SIGTERM, SIGTERM].enumerated() {
            server.signal(signal)
            await server.waitForExit(timeout: .seconds(15))
            server = try await ServerProcess.start(arguments: arguments)
            client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            let recovered = try await standings(client)
            for board in boards {
                #expect(recovered[board.id] == expected[board.id], "life \(life): \(board.id) differs after the restart")
            }
            try await client.close()
        }
        await server.stop()
    }

    /// A data dir of format 1 (no segment headers) starts, keeps its data, and is marked 2 once
    /// recovered (an older build then refuses it rather than cut the keyed segments as torn).
    @Test("a format-1 data dir is read, written in format 2 and marked so")
    func formatOneDataDir() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let data = directory.path + "/data"
        let arguments = ["--data-dir", data, "--durability", "fsync", "--shards", "1"]
        do {
            let server = try await ServerProcess.start(arguments: arguments)
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            _ = try await client.submit(board: "b", player: "before", score: 1)
            try await client.close()
            await server.stop()
        }
        // What a format-1 build leaves: FORMAT 1 and segments without a header. (The data
        // written above is in a keyed segment: format 2 reads both kinds alike.)
        try "hiscore-data 1\n".write(toFile: data + "/FORMAT", atomically: true, encoding: .utf8)
        try await withServerProcess(arguments: arguments) { server in
            #expect(try String(contentsOfFile: data + "/FORMAT", encoding: .utf8) == "hiscore-data 2\n")
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            #expect(try await client.top(board: "b").entries.map(\.playerID) == ["before"])
            try await client.close()
        }
    }

    @Test("board configs and deletions survive a restart; async mode flushes on SIGTERM")
    func boardsSurvive() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        for mode in ["fsync", "async"] {
            let arguments = ["--data-dir", directory.path + "/" + mode, "--durability", mode]
            var server = try await ServerProcess.start(arguments: arguments)
            var client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            let config = BoardConfig(id: "laps", scoreOrder: .ascending, writeOperator: .set, rankMode: .competition, clientWrites: true)
            try await client.createBoard(config)
            _ = try await client.submit(board: "laps", player: "a", score: 61_000, metadata: [1, 2])
            _ = try await client.submit(board: "gone", player: "a", score: 1)
            try await client.deleteBoard("gone")
            try await client.close()
            #expect(await server.stop() == 0)
            server = try await ServerProcess.start(arguments: arguments)
            client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            #expect(try await client.describeBoard("laps").config == config)
            let entry = try await client.rank(board: "laps", player: "a").entry
            #expect(entry.score == 61_000 && entry.metadata == [1, 2])
            await expectStatus(.notFound) { _ = try await client.describeBoard("gone") }
            // Ties keep their order across restarts: the arrival sequence is stored exactly.
            _ = try await client.submit(board: "laps", player: "b", score: 61_000)
            #expect(try await client.top(board: "laps").entries.map(\.playerID) == ["a", "b"])
            try await client.close()
            await server.stop()
        }
    }

    @Test("an online backup starts a server with the same boards; export writes every entry")
    func backupAndExport() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let live = directory.path + "/live"
        let copy = directory.path + "/backup"
        for mode in ["fsync", "async"] {
            let server = try await ServerProcess.start(arguments: ["--data-dir", live + mode, "--durability", mode, "--snapshot-after", "4K"])
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            try await client.createBoard(BoardConfig(id: "b", scoreOrder: .ascending))
            _ = try await client.submitBatch((0..<300).map { SubmitRequest(boardID: "b", playerID: "p\($0)", score: Int64($0)) })
            let result = try await client.backup(to: copy + mode)
            #expect(result.files >= 2)
            await expectStatus(.failedPrecondition) { try await client.backup(to: copy + mode) }  // not empty
            // Relative to what? The server's working directory is not the caller's.
            let relative = await expectStatus(.invalidArgument) { try await client.backup(to: "backup-here") }
            #expect(relative.contains("absolute path"), "\(relative)")
            // Export through the CLI.
            let export = Process()
            export.executableURL = ServerProcess.cliBinary
            export.arguments = ["export", "b", "--format", "csv", "--page-size", "64", "--addr", "127.0.0.1:\(server.port)"]
            let pipe = Pipe()
            export.standardOutput = pipe
            let output = try await offCooperativePool {
                try export.run()
                let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                export.waitUntilExit()
                return output
            }
            let lines = output.split(separator: "\n")
            #expect(export.terminationStatus == 0)
            #expect(lines.count == 301 && lines.first == "rank,player_id,score,subscore,reached_at_us,metadata_base64")
            #expect(lines.dropFirst().first?.hasPrefix("1,p0,0,0,") == true)
            try await client.close()
            await server.stop()

            let restored = try await ServerProcess.start(arguments: ["--data-dir", copy + mode])
            let reader = try await HiscoreClient.connect(host: "127.0.0.1", port: restored.port)
            #expect(try await reader.describeBoard("b").config.scoreOrder == .ascending)
            #expect(try await reader.top(board: "b", limit: 1000).entries.map(\.playerID) == (0..<300).map { "p\($0)" })
            try await reader.close()
            await restored.stop()
        }
    }

    @Test("a data dir keeps its shard count: another --shards is refused, no --shards follows the data dir")
    func shardCountFollowsDataDirectory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let first = try await ServerProcess.start(arguments: ["--data-dir", directory.path, "--shards", "3"])
        await first.stop()
        do {
            let other = try await ServerProcess.start(arguments: ["--data-dir", directory.path, "--shards", "2"], timeout: .seconds(10))
            await other.stop()
            Issue.record("a server with another shard count started")
        } catch ServerProcessError.didNotStart(let log) {
            #expect(log.contains("written with 3 shards"), "\(log)")
        }
        try await withServerProcess(arguments: ["--data-dir", directory.path]) { again in
            #expect(again.log.contains("with 3 shards"), "\(again.log)")
        }
    }

    @Test("a snapshot that cannot be written is logged as an error; the server goes on accepting writes")
    func failedSnapshotIsLogged() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let log = CapturedLog()
        try await withServer(shards: 1, configure: {
            $0.durability = .async
            $0.dataDirectory = directory.path
            $0.snapshotAfterLogBytes = 2048
        }, logger: log.logger) { server in
            let shardPath = directory.path + "/shard-000"
            let segments = try FileManager.default.contentsOfDirectory(atPath: shardPath).filter { $0.hasPrefix("wal-") }.sorted()
            let current = try #require(segments.last.flatMap { UInt64($0.dropFirst(4).prefix(16), radix: 16) })
            // A directory where each coming snapshot's temporary file would go: every attempt fails
            // (EISDIR, even for root), as on a full disk.
            for segment in (current + 1)...(current + 100) {
                let hex = String(segment, radix: 16)
                let name = "snapshot-" + String(repeating: "0", count: 16 - hex.count) + hex + ".snap.tmp"
                try FileManager.default.createDirectory(atPath: shardPath + "/" + name, withIntermediateDirectories: false)
            }
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            for n in 0..<100 { _ = try await client.submit(board: "snap", player: "p\(n)", score: Int64(n)) }
            #expect(await log.waitFor("snapshot failed", seconds: 10))
            #expect(try await client.count(board: "snap").boardSize == 100)
            try await client.close()
        }
    }

    @Test("a second hiscored on the same data dir refuses to start")
    func lockedDataDirectory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(arguments: ["--data-dir", directory.path]) { _ in
            do {
                let second = try await ServerProcess.start(arguments: ["--data-dir", directory.path], timeout: .seconds(10))
                await second.stop()
                Issue.record("the second server started")
            } catch ServerProcessError.didNotStart(let log) {
                #expect(log.contains("in use"), "\(log)")
            }
        }
    }

    @Test("a torn log tail is cut and logged; a corrupt record in the middle stops start-up naming the file")
    func damagedLog() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let arguments = ["--data-dir", directory.path, "--shards", "1"]
        var server = try await ServerProcess.start(arguments: arguments)
        var client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
        for index in 0..<20 { _ = try await client.submit(board: "d", player: "p\(index)", score: Int64(index)) }
        try await client.close()
        server.signal(SIGKILL)
        await server.waitForExit(timeout: .seconds(10))
        let shardDirectory = directory.path + "/shard-000"
        let segments = try FileManager.default.contentsOfDirectory(atPath: shardDirectory).filter { $0.hasSuffix(".log") }.sorted()
        let segment = shardDirectory + "/" + (segments.last ?? "")
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: segment)))
        #expect(bytes.count > 100)

        // Torn tail: cut 5 bytes off the last record.
        try Data(bytes.dropLast(5)).write(to: URL(fileURLWithPath: segment))
        server = try await ServerProcess.start(arguments: arguments)
        #expect(server.log.contains("torn") || server.log.contains("truncat"), "\(server.log)")
        client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
        #expect(try await client.describeBoard("d").size == 19)
        try await client.close()
        server.signal(SIGKILL)
        await server.waitForExit(timeout: .seconds(10))

        // Corrupt middle: flip a byte inside an early record of the first segment (after its
        // 16-byte header).
        bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: shardDirectory + "/" + segments[0])))
        bytes[16 + 12] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: shardDirectory + "/" + segments[0]))
        do {
            let refused = try await ServerProcess.start(arguments: arguments, timeout: .seconds(10))
            await refused.stop()
            Issue.record("started from a corrupt log")
        } catch ServerProcessError.didNotStart(let log) {
            #expect(log.contains(segments[0]), "\(log)")
        }
    }
}
