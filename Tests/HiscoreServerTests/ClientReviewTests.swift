import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreTestSupport
import HiscoreWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Review findings on the clients: each test failed on the client it was written against.
@Suite("Client review findings: calls after close, already-cancelled tasks, oversized requests, CLI page limits")
struct ClientReviewTests {
    @Test("a call or subscription made after close() fails UNAVAILABLE (it hung: its task went to a shut-down event loop)")
    func callAfterCloseFails() async throws {
        try await withServer { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            #expect(try await client.ping([1]) == [1])
            try await client.close()
            // Even a deadline cannot end it: its timer would run on the same, stopped loop.
            let call = await outcome(within: .seconds(5)) { try await client.ping([2], deadline: .milliseconds(200)) }
            #expect(call != nil, "ping after close() did not return within 5 s")
            if case .failure(let error as HiscoreError)? = call { #expect(error.code == .unavailable) }
            if case .success? = call { Issue.record("ping after close() succeeded") }

            let stream = await outcome(within: .seconds(5)) { () async throws -> Int in
                var events = 0
                for try await _ in client.subscribe(board: "closed", target: .top(1)) { events += 1 }
                return events
            }
            #expect(stream != nil, "a subscription after close() neither ended nor threw within 5 s")
            if case .failure(let error as HiscoreError)? = stream { #expect(error.code == .unavailable) }
        }
    }

    @Test("a call made from an already-cancelled task throws CANCELLED (it was sent and waited for its answer)")
    func callFromCancelledTask() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let fake = try await FakeServer.start(group: group, hello: FakeServer.hello(maxInflightCalls: 4))
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: fake.port, group: group)
        // The fake server never answers: only the client's own cancellation can end the call.
        let task = Task { () async throws -> ResponseResult in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await client.call(.ping(payload: [7]))
        }
        let result = await outcome(within: .seconds(3)) { try await task.value }
        try? await client.close()  // ends the call if it is still waiting (UNAVAILABLE)
        _ = try? await task.value
        try? await fake.stop()
        try await group.shutdownGracefully()
        #expect(result != nil, "a call from a cancelled task still waited for its answer after 3 s")
        if case .failure(let error as HiscoreError)? = result { #expect(error.code == .cancelled) }
        if case .success? = result { Issue.record("the fake server never answers; the call cannot succeed") }
    }

    @Test("a request over the server's max_frame_bytes fails alone, locally; the connection and its other calls go on")
    func oversizedRequestFailsLocally() async throws {
        try await withClient { client, _ in
            try await client.createBoard(BoardConfig(id: "big-meta", limits: BoardLimits(maxMetadataBytes: 4096)))
            _ = try await client.submit(board: "big-meta", player: "watched", score: 1)
            let stream = client.subscribe(board: "big-meta", target: .player("watched"))
            #expect(try await client.ping([0]) == [0])  // the subscribe went out before it
            // 300 items x 4000 bytes of metadata: a 1.2 MB request, over the 1 MiB max_frame_bytes
            // (every item valid; the batch is under max_batch_submits).
            let metadata = [UInt8](repeating: 0x61, count: 4000)
            let batch = (0..<300).map { SubmitRequest(boardID: "big-meta", playerID: "p\($0)", score: Int64($0), metadata: metadata) }
            await expectStatus(.resourceExhausted) { _ = try await client.submitBatch(batch) }
            // The connection is still usable and the subscription still open.
            #expect(try await client.ping([9]) == [9])
            _ = try await client.submit(board: "big-meta", player: "watched", score: 2)
            let updated = try await within(.seconds(10), "the subscription sees the next write") { () async throws -> Bool in
                for try await event in stream {
                    if case .player(let change) = event.change, change.entry.score == 2 { return true }
                }
                return false
            }
            #expect(updated)
        }
    }

    @Test("hiscore boards and hiscore export work against a server whose max_page_entries is below 1000")
    func cliPagesWithinTheServersLimit() async throws {
        try await withServer(configure: { $0.limits.maxPageEntries = 100 }) { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            for id in ["alpha", "beta"] { try await client.createBoard(BoardConfig(id: id)) }
            _ = try await client.submitBatch((0..<150).map { SubmitRequest(boardID: "alpha", playerID: "p\($0)", score: Int64($0)) })
            try? await client.close()
            let addr = "127.0.0.1:\(server.localPort)"

            let boards = try await runCLI(["boards", "--addr", addr])
            #expect(boards.status == 0, "hiscore boards: \(boards.stderr)")
            #expect(boards.stdout.contains("alpha") && boards.stdout.contains("beta"))

            let export = try await runCLI(["export", "alpha", "--format", "csv", "--addr", addr])
            #expect(export.status == 0, "hiscore export: \(export.stderr)")
            #expect(export.stdout.split(separator: "\n").count == 151)
        }
    }

    @Test("hiscore --addr takes an IPv6 address in brackets")
    func cliIPv6Address() async throws {
        try await withServer(configure: { $0.host = "::1" }) { server in
            let submitted = try await runCLI(["submit", "v6", "alice", "42", "--addr", "[::1]:\(server.localPort)"])
            #expect(submitted.status == 0, "hiscore submit: \(submitted.stderr)")
            let rank = try await runCLI(["rank", "v6", "alice", "--addr", "[::1]:\(server.localPort)"])
            #expect(rank.status == 0 && rank.stdout.contains("42"), "hiscore rank: \(rank.stdout) \(rank.stderr)")
        }
    }

    @Test("hiscore rank and around read an archived season with --period, as reset-board tells the operator")
    func cliQueriesArchivedPeriods() async throws {
        try await withServer { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            for (player, score) in [("alice", "30"), ("bob", "20"), ("carol", "10")] {
                #expect(try await runCLI(["submit", "s", player, score] + addr).status == 0)
            }
            let reset = try await runCLI(["reset-board", "s"] + addr)
            #expect(reset.status == 0 && reset.stdout.contains("--period 1"), "reset-board: \(reset.stdout) \(reset.stderr)")
            #expect(try await runCLI(["submit", "s", "bob", "99"] + addr).status == 0)
            let rank = try await runCLI(["rank", "s", "bob", "--period", "1", "--json"] + addr)
            #expect(rank.status == 0 && rank.stdout.contains(#""score":20"#) && rank.stdout.contains(#""rank":2"#),
                    "rank --period: \(rank.stdout) \(rank.stderr)")
            let around = try await runCLI(["around", "s", "bob", "--before", "1", "--after", "0", "--period", "1", "--json"] + addr)
            let lines = around.stdout.split(separator: "\n")
            #expect(around.status == 0 && lines.count == 2 && lines.first?.contains("alice") == true,
                    "around --period: \(around.stdout) \(around.stderr)")
            let live = try await runCLI(["rank", "s", "bob", "--json"] + addr)
            #expect(live.stdout.contains(#""score":99"#) && live.stdout.contains(#""rank":1"#), "live rank: \(live.stdout)")
        }
    }

    @Test("hiscore describe lists a board's config and archived periods; submit takes negative scores and subscores")
    func cliDescribeAndNegativeScores() async throws {
        try await withServer { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            #expect(try await runCLI(["create-board", "golf", "--order", "asc", "--reset", "weekly@3@01:30", "--keep-periods", "4"] + addr).status == 0)
            let negative = try await runCLI(["submit", "golf", "alice", "--subscore", "-2"] + addr + ["--", "-5"])
            #expect(negative.status == 0 && negative.stdout.contains("with -5"), "submit -- -5: \(negative.stdout) \(negative.stderr)")
            #expect(try await runCLI(["reset-board", "golf"] + addr).status == 0)
            let text = try await runCLI(["describe", "golf"] + addr)
            #expect(text.status == 0, "describe: \(text.stderr)")
            #expect(text.stdout.contains("order ascending") && text.stdout.contains("weekly@3@01:30, keeping 4 periods"), "\(text.stdout)")
            #expect(text.stdout.contains("live period 2") && text.stdout.contains("archived periods"), "\(text.stdout)")
            let json = try await runCLI(["describe", "golf", "--json"] + addr)
            #expect(json.stdout.contains(#""current_period_id":2"#) && json.stdout.contains(#""period_id":1,"#) && json.stdout.contains(#""size":1}"#), "\(json.stdout)")
            let archived = try await runCLI(["rank", "golf", "alice", "--period", "1", "--json"] + addr)
            #expect(archived.stdout.contains(#""score":-5"#) && archived.stdout.contains(#""subscore":-2"#), "\(archived.stdout)")
            let missing = try await runCLI(["describe", "nope"] + addr)
            #expect(missing.status == 1 && missing.stderr.contains("NOT_FOUND"))
        }
    }

    @Test("createBoard refuses max_metadata_bytes 0, which the wire would turn into the default 256")
    func createBoardRefusesZeroMetadataLimit() async throws {
        try await withServer { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            var config = BoardConfig(id: "nometa")
            config.limits.maxMetadataBytes = 0
            await expectStatus(.invalidArgument) { try await client.createBoard(config) }
            if let info = try? await client.describeBoard("nometa") {
                Issue.record("board nometa exists allowing \(info.config.limits.maxMetadataBytes) metadata bytes (asked: 0)")
            }
            config.limits.maxMetadataBytes = 1
            #expect(try await client.createBoard(config).config.limits.maxMetadataBytes == 1)
            try? await client.close()
        }
    }

    @Test("create-board refuses a negative --max-entries and a --keep-periods outside 1...100 (they became unlimited and 10)")
    func createBoardRefusesOutOfRangeLimits() async throws {
        try await withServer { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let negative = try await runCLI(["create-board", "neg", "--max-entries=-1"] + addr)
            #expect(negative.status != 0, "create-board --max-entries -1 succeeded: \(negative.stdout)")
            let keepNone = try await runCLI(["create-board", "keep0", "--reset", "daily@00:00", "--keep-periods", "0"] + addr)
            #expect(keepNone.status != 0, "create-board --keep-periods 0 succeeded: \(keepNone.stdout)")
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            if let info = try? await client.describeBoard("neg") {
                Issue.record("board neg exists with max_entries \(info.config.limits.maxEntries) (asked: -1)")
            }
            if let info = try? await client.describeBoard("keep0") {
                Issue.record("board keep0 exists keeping \(info.config.resetSchedule?.keepPeriods ?? -1) periods (asked: 0)")
            }
            try? await client.close()
        }
    }

    @Test("hiscore watch --json writes each event as it comes when its output is a pipe (it sat in a 4 KiB stdio buffer)")
    func watchFlushesEachEvent() async throws {
        try await withServer { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await client.submit(board: "live", player: "alice", score: 10)
            let process = Process()
            process.executableURL = ServerProcess.cliBinary
            process.arguments = ["watch", "live", "--player", "alice", "--json", "--addr", "127.0.0.1:\(server.localPort)"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            let (chunks, continuation) = AsyncStream<Data>.makeStream()
            out.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty { continuation.finish() } else { continuation.yield(data) }
            }
            try process.run()
            // The snapshot event is one JSON line: it must reach the pipe while watch runs.
            let firstLine = try? await within(.seconds(10), "watch prints the snapshot") { () async -> String in
                var text = ""
                for await chunk in chunks {
                    text += String(decoding: chunk, as: UTF8.self)
                    if text.contains("\n") { break }
                }
                return text
            }
            process.terminate()
            await offCooperativePool { process.waitUntilExit() }
            out.fileHandleForReading.readabilityHandler = nil
            continuation.finish()
            try? await client.close()
            #expect(firstLine?.hasPrefix(#"{"rank":1,"player_id":"alice","score":10"#) == true, "watch printed \(String(describing: firstLine))")
        }
    }

    @Test("hiscore watch goes on across a season reset: the new period's standings follow, and stderr says why")
    func watchFollowsASeasonReset() async throws {
        try await withServer { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await client.submit(board: "daily", player: "alice", score: 10)
            let process = Process()
            process.executableURL = ServerProcess.cliBinary
            process.arguments = ["watch", "daily", "--player", "alice", "--json", "--addr", "127.0.0.1:\(server.localPort)"]
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            let (lines, continuation) = AsyncStream<String>.makeStream()
            let pending = NIOLockedValueBox("")
            out.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty { continuation.finish(); return }
                let complete: [String] = pending.withLockedValue { text in
                    text += String(decoding: data, as: UTF8.self)
                    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                    text = lines.removeLast()
                    return lines
                }
                for line in complete { continuation.yield(line) }
            }
            try process.run()
            // Snapshot of period 1 → reset → the new period's snapshot (alice not on it) →
            // alice's first score in it.
            let seen = try? await within(.seconds(20), "watch follows the reset") { () async throws -> [String] in
                var seen: [String] = []
                for await line in lines {
                    seen.append(line)
                    if seen.count == 1 { _ = try await client.resetBoard("daily") }
                    if line.contains(#""present":false"#) { _ = try await client.submit(board: "daily", player: "alice", score: 20) }
                    if line.contains(#""score":20"#) { break }
                }
                return seen
            }
            let running = process.isRunning
            process.terminate()
            await offCooperativePool { process.waitUntilExit() }
            out.fileHandleForReading.readabilityHandler = nil
            continuation.finish()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            try? await client.close()
            #expect(seen?.first?.hasPrefix(#"{"rank":1,"player_id":"alice","score":10"#) == true, "\(String(describing: seen))")
            #expect(seen?.last?.hasPrefix(#"{"rank":1,"player_id":"alice","score":20"#) == true, "\(String(describing: seen))")
            #expect(running, "watch ended at the reset")
            #expect(stderr.contains("daily: season reset (") && stderr.contains("watching the new period"), "\(stderr)")
        }
    }

    @Test("the README's CLI commands work against a running server")
    func readmeCommands() async throws {
        try await withServer { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            #expect(try await runCLI(["submit", "weekly", "alice", "4200"] + addr).stdout == "alice is #1 on weekly with 4200 (new)\n")
            #expect(try await runCLI(["submit", "weekly", "bob", "5100"] + addr).stdout == "bob is #1 on weekly with 5100 (new)\n")
            let top = try await runCLI(["top", "weekly", "-n", "10"] + addr)
            #expect(top.status == 0)
            #expect(top.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
                == [["1", "bob", "5100", "0"], ["2", "alice", "4200", "0"]])
            let around = try await runCLI(["around", "weekly", "alice", "--before", "2", "--after", "2"] + addr)
            #expect(around.status == 0 && around.stdout.contains("> 2  alice"), "\(around.stdout)")
            let rank = try await runCLI(["rank", "weekly", "alice", "--json"] + addr)
            #expect(rank.status == 0 && rank.stdout.hasPrefix(#"{"rank":2,"player_id":"alice","score":4200"#), "\(rank.stdout)")
            let boards = try await runCLI(["boards"] + addr)
            #expect(boards.status == 0 && boards.stdout.contains("weekly"))
            let missing = try await runCLI(["rank", "weekly", "nobody"] + addr)  // a failure exits non-zero
            #expect(missing.status == 1 && missing.stderr.contains("NOT_FOUND"), "\(missing)")
        }
    }
}

/// The outcome of `body` if it finishes within `timeout`, else nil. Unlike `within`, it does not
/// wait for a body that ignores cancellation (that is what some of these tests look for).
func outcome<T: Sendable>(
    within timeout: Duration, _ body: @escaping @Sendable () async throws -> T
) async -> Result<T, any Error>? {
    let box = NIOLockedValueBox<(done: Bool, continuation: CheckedContinuation<Result<T, any Error>?, Never>?)>((false, nil))
    @Sendable func finish(_ value: Result<T, any Error>?) {
        let continuation: CheckedContinuation<Result<T, any Error>?, Never>? = box.withLockedValue { state in
            guard !state.done, let continuation = state.continuation else { return nil }
            state.done = true
            return continuation
        }
        continuation?.resume(returning: value)
    }
    return await withCheckedContinuation { continuation in
        box.withLockedValue { $0.continuation = continuation }
        let work = Task {
            do { finish(.success(try await body())) } catch { finish(.failure(error)) }
        }
        Task {
            try? await sleepCountingRunTime(timeout)
            finish(nil)
            work.cancel()
        }
    }
}

/// Runs the debug `hiscore` CLI (built next to `hiscored` by `swift build --build-tests`), bounded,
/// off the cooperative pool.
func runCLI(_ arguments: [String], timeout: TimeInterval = 30) async throws -> (status: Int32, stdout: String, stderr: String) {
    try await offCooperativePool {
        let process = Process()
        process.executableURL = ServerProcess.cliBinary
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        killer.cancel()
        return (process.terminationStatus, stdout, stderr)
    }
}

