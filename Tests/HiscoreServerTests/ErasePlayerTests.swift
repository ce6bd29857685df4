import Foundation
import HiscoreClient
import HiscoreCore
@testable import HiscoreServer
import HiscoreTestSupport
import HiscoreWire
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Erase a player from every board and archived period", .serialized)
struct ErasePlayerTests {
    /// Boards of every placement: "split" over the shards, "dense" kept on one shard (dense rank
    /// mode), "season" reset once so that the player is in its archived period and, submitted
    /// again, in its live one; "other" never saw the player.
    private static func fill(_ client: HiscoreClient) async throws {
        try await client.createBoard(BoardConfig(id: "dense", rankMode: .dense))
        for board in ["split", "dense", "season"] {
            _ = try await client.submit(board: board, player: "gone", score: 50)
            _ = try await client.submit(board: board, player: "kept", score: 40)
        }
        _ = try await client.submit(board: "other", player: "kept", score: 1)
        #expect(try await client.resetBoard("season").archivedEntries == 2)
        _ = try await client.submit(board: "season", player: "gone", score: 70, metadata: [1, 2, 3])
        _ = try await client.submit(board: "season", player: "kept", score: 60)
    }

    /// The state `fill` leaves once "gone" is erased: nothing of it anywhere, "kept" first
    /// everywhere it was.
    private static func expectErased(_ client: HiscoreClient) async throws {
        for board in ["split", "dense", "season", "other"] {
            await expectStatus(.notFound) { _ = try await client.rank(board: board, player: "gone") }
            let top = try await client.top(board: board)
            #expect(top.entries.map(\.playerID) == ["kept"], "\(board)")
            #expect(top.entries.first?.rank == 1 && top.boardSize == 1, "\(board)")
        }
        await expectStatus(.notFound) { _ = try await client.rank(board: "season", player: "gone", period: 1) }
        let archived = try await client.top(board: "season", period: 1)
        #expect(archived.entries.map(\.playerID) == ["kept"] && archived.boardSize == 1)
        #expect(try await client.describeBoard("season").periods.first?.size == 1)
    }

    @Test("erasure removes the player from boards on every shard and from archived periods, and only the player", arguments: [1, 2])
    func erasesEverywhere(shards: Int) async throws {
        try await withClient(shards: shards) { client, _ in
            try await Self.fill(client)
            // Cached tops (boards and the archived period) must not keep serving the player.
            for board in ["split", "dense", "season"] { _ = try await client.top(board: board) }
            _ = try await client.top(board: "season", period: 1)
            #expect(try await client.erasePlayer("gone") == 4)
            try await Self.expectErased(client)
            #expect(try await client.erasePlayer("gone") == 0, "erasing again finds nothing")
            #expect(try await client.erasePlayer("nobody") == 0)
            await expectStatus(.invalidArgument) { try await client.erasePlayer("") }
            // The board goes on: the player may come back as a new entry.
            let back = try await client.submit(board: "split", player: "gone", score: 1)
            #expect(back.created && back.entry.rank == 2)
        }
    }

    @Test("more boards than one phase covers are all erased")
    func manyBoards() async throws {
        try await withClient { client, _ in
            let boards = ErasePlayerPlan.boardsPerPhase * 2 + 3
            let submits = (0..<boards).map { SubmitRequest(boardID: "b\($0)", playerID: "gone", score: Int64($0)) }
            for start in stride(from: 0, to: boards, by: 500) {
                let results = try await client.submitBatch(Array(submits[start..<min(start + 500, boards)]))
                #expect(results.allSatisfy { $0.status.code == .ok })
            }
            #expect(try await client.erasePlayer("gone") == UInt64(boards))
            for board in ["b0", "b\(ErasePlayerPlan.boardsPerPhase)", "b\(boards - 1)"] {
                await expectStatus(.notFound) { _ = try await client.rank(board: board, player: "gone") }
            }
        }
    }

    @Test("a subscriber sees the erased player leave")
    func streamsSeeTheErasure() async throws {
        try await withClient { client, _ in
            _ = try await client.submit(board: "live", player: "gone", score: 10)
            var events = client.subscribe(board: "live", target: .player("gone"), minInterval: .milliseconds(20))
                .makeAsyncIterator()
            let snapshot = try #require(try await events.next())
            guard case .player(let first) = snapshot.change else {
                Issue.record("not a player event: \(snapshot)")
                return
            }
            #expect(first.present && first.entry.rank == 1)
            #expect(try await client.erasePlayer("gone") == 1)
            let change = try #require(try await events.next())
            guard case .player(let gone) = change.change else {
                Issue.record("not a player event: \(change)")
                return
            }
            #expect(!gone.present)
        }
    }

    static let bulkBatches = 150

    /// Whether any file under `path` holds `bytes`.
    private static func directoryHolds(_ bytes: [UInt8], under path: String) -> Bool {
        guard let files = FileManager.default.enumerator(atPath: path) else { return false }
        for case let file as String in files {
            guard let data = FileManager.default.contents(atPath: path + "/" + file) else { continue }
            if data.range(of: Data(bytes)) != nil { return true }
        }
        return false
    }

    /// A player removed earlier by `remove_player`, whose bytes only old log segments still hold
    /// (the erasure finds no entry but still deletes those files), and a player written and
    /// erased while the first erasure's snapshot still copies a large board: its records land in
    /// the segments that snapshot keeps, so a second snapshot must follow it.
    @Test("erasures start snapshots on every shard: the players' bytes leave the data directory")
    func bytesLeaveTheDisk() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let player = "erase-me-4d2b9"
        try await withServerProcess(
            arguments: ["--data-dir", directory.path, "--shards", "2", "--durability", "fsync"], adminPort: true
        ) { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            try await client.createBoard(BoardConfig(id: "dense", rankMode: .dense))
            for board in ["split", "dense", "season"] {
                _ = try await client.submit(board: board, player: player, score: 5, metadata: [7])
                _ = try await client.submit(board: board, player: "kept-player", score: 4)
            }
            _ = try await client.resetBoard("season")
            _ = try await client.submit(board: "season", player: player, score: 9)
            let removedBefore = "removed-before-7c1e0"
            _ = try await client.submit(board: "split", player: removedBefore, score: 3, metadata: [9, 9])
            _ = try await client.removePlayer(board: "split", player: removedBefore)
            // Enough entries that a snapshot takes a while: the next player's writes and erasure
            // land while the first erasure's snapshot runs.
            for batch in 0..<Self.bulkBatches {
                let results = try await client.submitBatch((0..<1000).map {
                    SubmitRequest(boardID: "bulk", playerID: "bulk-\(batch)-\($0)", score: Int64($0), metadata: [UInt8](repeating: 1, count: 256))
                })
                #expect(results.allSatisfy { $0.status.code == .ok })
            }
            let onDisk = { (id: String) in Self.directoryHolds(Array(id.utf8), under: directory.path) }
            #expect(onDisk(player) && onDisk(removedBefore))
            #expect(try await client.erasePlayer(player) == 4)
            let late = "late-player-31f8a"
            _ = try await client.submit(board: "split", player: late, score: 2)
            _ = try await client.submit(board: "dense", player: late, score: 2)
            #expect(try await client.erasePlayer(late) == 2)
            #expect(try await client.erasePlayer(removedBefore) == 0)
            // The snapshots run in the background after the answers: wait for their effect, bounded.
            let deadline = ContinuousClock.now + .seconds(60)
            while onDisk(player) || onDisk(removedBefore) || onDisk(late), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(!onDisk(player), "the erased player is still on disk")
            #expect(!onDisk(removedBefore), "the player removed before its erasure is still on disk")
            #expect(!onDisk(late), "the player erased while a snapshot ran is still on disk")
            // What an operator watches for it: every shard published snapshots, none failed.
            let adminPort = try #require(server.adminPortNumber)
            let metrics = try await httpGet(port: adminPort, path: "/metrics").body
            func sample(_ name: String) -> Double? { metricValue(name, in: metrics) }
            for shard in 0..<2 {
                #expect((sample("hiscore_snapshots_total{shard=\"\(shard)\",result=\"published\"}") ?? 0) >= 1, "\(metrics)")
                #expect(sample("hiscore_snapshots_total{shard=\"\(shard)\",result=\"failed\"}") == 0)
                #expect(sample("hiscore_snapshot_running{shard=\"\(shard)\"}") != nil)
            }
            #expect(Self.directoryHolds(Array("kept-player".utf8), under: directory.path))
            #expect(try await client.rank(board: "season", player: "kept-player", period: 1).entry.rank == 1)
            try? await client.close()
        }
    }

    /// An erasure answers once its removals are durable and then asks for a snapshot, which only
    /// memory knew of: a crash before it was published left the player's bytes in the log until
    /// it grew by --snapshot-after (64 MiB), forever on a quiet server. Removals replayed at
    /// start-up now start one. A `remove_player` (which asks for none) then SIGKILL makes the
    /// same data dir every time.
    @Test("removals replayed at start-up start a snapshot: a removed or erased player's bytes leave the disk after a crash")
    func replayedRemovalsStartASnapshot() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let arguments = ["--data-dir", directory.path, "--shards", "2", "--durability", "fsync"]
        let player = "removed-then-crash-5e21c"
        let onDisk = { Self.directoryHolds(Array(player.utf8), under: directory.path) }
        var server = try await ServerProcess.start(arguments: arguments)
        do {
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            _ = try await client.submit(board: "split", player: player, score: 5, metadata: [7, 7])
            _ = try await client.submit(board: "split", player: "kept-player", score: 4)
            _ = try await client.removePlayer(board: "split", player: player)
            #expect(onDisk(), "the removal's log holds the player until a snapshot replaces it")
            server.signal(SIGKILL)
            await server.waitForExit(timeout: .seconds(10))
            try? await client.close()

            server = try await ServerProcess.start(arguments: arguments, adminPort: true)
            let deadline = ContinuousClock.now + .seconds(30)
            while onDisk(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(!onDisk(), "the removed player's bytes stayed in the log after a restart")
            let restarted = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            await expectStatus(.notFound) { _ = try await restarted.rank(board: "split", player: player) }
            #expect(try await restarted.top(board: "split").entries.map(\.playerID) == ["kept-player"])
            let adminPort = try #require(server.adminPortNumber)
            // Counted once the files are gone (the publication deletes them first): read again, bounded.
            var total = 0.0
            while total < 1, ContinuousClock.now < deadline {
                let metrics = try await httpGet(port: adminPort, path: "/metrics").body
                total = (0..<2).reduce(0.0) {
                    $0 + (metricValue("hiscore_snapshots_total{shard=\"\($1)\",result=\"published\"}", in: metrics) ?? 0)
                }
                if total < 1 { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(total == 1, "one snapshot, on the shard that replayed the removal: \(total)")
            try? await restarted.close()
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test("an acknowledged erasure survives SIGKILL, archived periods included")
    func survivesKill() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let arguments = ["--data-dir", directory.path, "--shards", "2", "--durability", "fsync"]
        var server = try await ServerProcess.start(arguments: arguments)
        do {
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            try await Self.fill(client)
            // A shard large enough that the snapshot the erasure starts is most likely still
            // being written when the kill lands: recovery then replays the removals, archived
            // period included, from the log (and from that snapshot otherwise; both must hold).
            for batch in 0..<Self.bulkBatches / 3 {
                _ = try await client.submitBatch((0..<1000).map {
                    SubmitRequest(boardID: "bulk", playerID: "bulk-\(batch)-\($0)", score: Int64($0), metadata: [UInt8](repeating: 1, count: 256))
                })
            }
            #expect(try await client.erasePlayer("gone") == 4)
            server.signal(SIGKILL)
            await server.waitForExit(timeout: .seconds(10))
            try? await client.close()
            server = try await ServerProcess.start(arguments: arguments)
            let restarted = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            try await Self.expectErased(restarted)
            try? await restarted.close()
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    /// A connection's writes to a player keep the order sent, an erasure included: an erase over
    /// more boards than one phase takes must not reach a later board after a submit sent behind
    /// it (found by a race hunt: the submit was answered OK, then erased, 20 of 20 times).
    @Test("a submit pipelined after erase_player survives it, on a board of the erase's first or a later phase")
    func submitPipelinedAfterEraseSurvives() async throws {
        try await withServer { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            let boards = ErasePlayerPlan.boardsPerPhase + 44
            for first in stride(from: 0, to: boards, by: 100) {
                _ = try await client.submitBatch((first..<min(first + 100, boards)).map {
                    SubmitRequest(boardID: String(format: "b%03d", $0), playerID: "filler", score: 1)
                })
            }
            let late = String(format: "b%03d", boards - 1)  // ids sorted: in the erase's second phase
            let early = "b050"
            try await offCooperativePool {
                let raw = try RawConnection(port: server.localPort, timeoutSeconds: 20)
                guard raw.handshake() != nil else { throw RawConnectionError.system("no hello") }
                for round in 0..<20 {
                    let player = "pipelined\(round)"
                    var bytes: [UInt8] = []
                    for request in [
                        RequestEnvelope(callID: 1, method: .erasePlayer(playerID: player)),
                        RequestEnvelope(callID: 2, method: .submit(SubmitRequest(boardID: late, playerID: player, score: 7))),
                        RequestEnvelope(callID: 3, method: .submit(SubmitRequest(boardID: early, playerID: player, score: 7))),
                    ] {
                        var buffer = ByteBuffer()
                        FrameEncoding.encodeRequestFrame(request, into: &buffer)
                        bytes += Array(buffer.readableBytesView)
                    }
                    raw.send(bytes)  // one write: the three frames arrive in one read
                    var answered: [UInt64: ResponseEnvelope] = [:]
                    while answered.count < 3, let frame = raw.readFrame() { answered[frame.callID] = frame }
                    #expect(answered.count == 3 && answered.values.allSatisfy { $0.status == nil }, "\(answered)")
                    for board in [late, early] {
                        raw.send(RequestEnvelope(callID: 4, method: .getRank(GetRankRequest(boardID: board, playerID: player))))
                        let rank = raw.readFrame()
                        #expect(rank?.status == nil, "round \(round): \(player) on \(board), submitted after its erase: \(String(describing: rank))")
                    }
                }
            }
            try await client.close()
        }
    }
}
