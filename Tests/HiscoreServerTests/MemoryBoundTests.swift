import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreWire
import NIOCore
import Testing

/// What a client can make a server hold, measured in a process of its own through jemalloc's
/// `stats.allocated` on /metrics (in-process, other tests' allocations would count).
@Suite("Memory bounds against clients that do not read", .serialized)
struct MemoryBoundTests {
    private static func allocated(_ adminPort: Int) async throws -> Double {
        try await metricValue("hiscore_jemalloc_allocated_bytes", adminPort: adminPort) ?? -1
    }

    /// Polls the process's figure (bounded: `seconds`) until `condition` holds or it has settled
    /// (within 1 MiB over four reads 200 ms apart); returns the last one read.
    private static func waitForAllocated(_ adminPort: Int, seconds: Int, until condition: (Double) -> Bool) async throws -> Double {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var readings = [try await allocated(adminPort)]
        while let last = readings.last, !condition(last), ContinuousClock.now < deadline {
            if readings.count >= 4, let low = readings.suffix(4).min(), let high = readings.suffix(4).max(), high - low < Double(1 << 20) {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
            readings.append(try await allocated(adminPort))
        }
        return readings.last ?? 0
    }

    /// A two-shard memory-mode `hiscored` of its own with `flags`, its admin port and a client,
    /// for `body`; all stopped and removed again whatever `body` does.
    private static func withServer(
        _ flags: [String], _ body: (ServerProcess, _ adminPort: Int, HiscoreClient) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(
            arguments: ["--data-dir", directory.path, "--durability", "memory", "--shards", "2"] + flags, adminPort: true
        ) { server in
            let adminPort = try #require(server.adminPortNumber)
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            do {
                try await body(server, adminPort, client)
            } catch {
                try? await client.close()
                throw error
            }
            try await client.close()
        }
    }

    /// Creates `boards` boards `prefix0`, `prefix1`, … allowing `metadataBytes`, each with
    /// `players` players `p0`, `p1`, … scored by their number and carrying that many bytes of
    /// metadata (the player's number, truncated, in every byte).
    private static func fill(
        _ client: HiscoreClient, prefix: String, boards: Int, players: Int, metadataBytes: Int
    ) async throws {
        for board in 0..<boards {
            try await client.createBoard(BoardConfig(id: "\(prefix)\(board)", limits: BoardLimits(maxMetadataBytes: metadataBytes)))
            for start in stride(from: 0, to: players, by: 200) {
                _ = try await client.submitBatch((start..<min(players, start + 200)).map {
                    SubmitRequest(
                        boardID: "\(prefix)\(board)", playerID: "p\($0)", score: Int64($0),
                        metadata: [UInt8](repeating: UInt8(truncatingIfNeeded: $0), count: metadataBytes))
                })
            }
        }
    }

    /// hiscored's built-in jemalloc defaults (`CAllocatorDefaults`) reach jemalloc, and an
    /// operator's MALLOC_CONF still wins over them.
    @Test("hiscored starts jemalloc with its 128 KiB oversize threshold; MALLOC_CONF overrides it")
    func allocatorDefaults() async throws {
        // An empty MALLOC_CONF first: one set where the tests run must not decide the default.
        for (environment, expected) in [(["MALLOC_CONF": ""], 131_072.0), (["MALLOC_CONF": "oversize_threshold:1048576"], 1_048_576)] {
            let directory = try TemporaryDirectory()
            defer { directory.cleanup() }
            let threshold = try await withServerProcess(
                arguments: ["--data-dir", directory.path, "--durability", "memory"], adminPort: true, environment: environment
            ) { server in
                try await metricValue("hiscore_jemalloc_oversize_threshold_bytes", adminPort: try #require(server.adminPortNumber))
            }
            #expect(threshold == expected, "environment \(environment)")
        }
    }

    /// Foundation (with its ICU data) held ~8 MB of hiscored's resident set before any data, a
    /// sixth of the peak the memory targets count; the server links only FoundationEssentials
    /// (through swift-argument-parser). Any module bringing Foundation back fails here.
    @Test("hiscored does not load Foundation or ICU")
    func noFoundationInTheServer() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let mapped = try await withServerProcess(arguments: ["--data-dir", directory.path, "--durability", "memory"]) { server in
            // Read to the end: /proc files report size 0, and a read sized by it stops early.
            let file = try #require(FileHandle(forReadingAtPath: "/proc/\(server.process.processIdentifier)/maps"))
            defer { try? file.close() }
            return String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        }
        #expect(mapped.contains("libswiftCore"), "the maps were read")
        for library in ["libFoundation.so", "lib_FoundationICU.so", "libFoundationInternationalization.so"] {
            #expect(!mapped.contains(library), "hiscored maps \(library)")
        }
    }

    /// `list_boards` is answered on the connection's loop at once, so it is not counted in
    /// max_inflight_calls, and its answers gathered in one buffer for a whole read before the
    /// flush that lets writability hold reads: ~12-byte requests, ~150 KB answers, 516 MiB for
    /// 4000 of them (2 GiB for 12,000).
    @Test("pipelined list_boards from a client that does not read stay within inflight x frame bound")
    func listBoardsAmplification() async throws {
        try await Self.withServer(["--max-memory", "64M"]) { server, adminPort, client in
            // 1000 boards with 120-byte ids (a writer auto-creates them).
            let prefix = String(repeating: "b", count: 116)
            for start in stride(from: 0, to: 1000, by: 250) {
                _ = try await client.submitBatch((start..<(start + 250)).map {
                    SubmitRequest(boardID: prefix + String(format: "%04d", $0), playerID: "p", score: 1)
                })
            }
            let before = try await Self.allocated(adminPort)
            let reader = try RawConnection(port: server.port, timeoutSeconds: 10, receiveBufferBytes: 4096)
            _ = reader.handshake()
            // 4000 calls (~50 KB): far fewer than the rate limit's burst of 100,000.
            var burst = ByteBufferBuilder()
            for index in 0..<4000 {
                burst.append(RequestEnvelope(callID: UInt64(index + 1), method: .listBoards(ListBoardsRequest(limit: 1000))))
            }
            reader.send(burst.bytes)
            // max_inflight_calls (256) x max_frame_bytes (1 MiB) is what the limits imply per connection.
            let bound = Double(256 << 20)
            let after = try await Self.waitForAllocated(adminPort, seconds: 10) { $0 - before > bound }
            print("MemoryBoundTests.listBoardsAmplification: allocated \(Int(before) >> 20) -> \(Int(after) >> 20) MiB")
            #expect(
                after - before <= bound,
                "allocated \(Int(before) >> 20) MiB -> \(Int(after) >> 20) MiB for one connection that sent ~\(burst.bytes.count / 1024) KB and read nothing")
            // Frames held back are answered, in order, once a client reads: a second connection's
            // burst of answers several times its socket buffers, then a ping.
            let patient = try RawConnection(port: server.port, timeoutSeconds: 30, receiveBufferBytes: 4096)
            _ = patient.handshake()
            var second = ByteBufferBuilder()
            for index in 0..<30 {
                second.append(RequestEnvelope(callID: UInt64(index + 1), method: .listBoards(ListBoardsRequest(limit: 1000))))
            }
            second.append(RequestEnvelope(callID: 31, method: .ping(payload: [1, 2, 3])))
            patient.send(second.bytes)
            var answered: [UInt64] = []
            while answered.count < 31, let frame = patient.readFrame() {
                answered.append(frame.callID)
                if frame.callID <= 30, case .listBoards(let page)? = frame.result { #expect(page.boards.count == 1000) }
            }
            #expect(answered == Array(1...31))
        }
    }

    /// A feed's backlog is bounded per board (64 MiB of counted bytes), and updates go on above
    /// the memory ceiling (one that sends no metadata still copies the stored 4 KiB into its feed
    /// item): N boards held N x 64 MiB, 327 MiB for 4 under --max-memory 32M. The feeds'
    /// backlogs are bounded over all boards too (max_feed_backlog_bytes, 8 MiB here).
    @Test("feed backlogs of a few boards stay near the memory ceiling")
    func feedBacklogsPastTheCeiling() async throws {
        try await Self.withServer(["--max-memory", "32M", "--max-feed-backlog-bytes", "8388608"]) { server, adminPort, client in
            let boards = 4
            let feed = try RawConnection(port: server.port, timeoutSeconds: 30, receiveBufferBytes: 4096)
            _ = feed.handshake()
            for board in 0..<boards {
                try await client.createBoard(BoardConfig(id: "f\(board)", writeOperator: .set, limits: BoardLimits(maxMetadataBytes: 4096)))
                _ = try await client.submit(board: "f\(board)", player: "p", score: 0, metadata: [UInt8](repeating: 1, count: 4096))
                // A feed with a one-hour interval: its first event (the empty snapshot) goes at once,
                // the next in an hour.
                feed.send(RequestEnvelope(callID: UInt64(board + 1), method: .subscribe(SubscribeRequest(
                    boardID: "f\(board)", target: .feed, minIntervalMillis: 3_600_000))))
                guard case .event? = feed.readFrame()?.result else {
                    Issue.record("no feed snapshot")
                    return
                }
            }
            let before = try await Self.allocated(adminPort)
            // Updates without metadata (a few bytes each on the wire), 4,000 per board: ~17 MB counted
            // each (~4.3 KB an item), under the per-board bound (64 MiB), ~69 MB over the four.
            var score: Int64 = 1
            for board in 0..<boards {
                for _ in 0..<20 {
                    _ = try await client.submitBatch((0..<200).map { _ in
                        score += 1
                        return SubmitRequest(boardID: "f\(board)", playerID: "p", score: score)
                    })
                }
            }
            let after = try await Self.allocated(adminPort)
            #expect(
                after - before < Double(32 << 20),
                "allocated \(Int(before) >> 20) MiB -> \(Int(after) >> 20) MiB with --max-memory 32M after \(score) metadata-less updates to \(boards) boards with a feed")
            // The feeds held back past the bound were ended, saying why.
            var ended: [String] = []
            while ended.isEmpty, let frame = feed.readFrame() {
                if let status = frame.status { ended.append("\(status.code) \(status.message)") }
            }
            #expect(ended.first?.contains("max_feed_backlog_bytes") == true, "\(ended)")
        }
    }

    /// A top of 1000 entries of 4 KiB was refused (RESOURCE_EXHAUSTED) only once built, and the
    /// board's top cache had kept its snapshot and packed answer by then: ~9 MB per board. Such
    /// a page is now refused before it runs (`AnswerBound`).
    @Test("refused top pages leave nothing cached past the memory ceiling")
    func refusedTopPagesStayCached() async throws {
        try await Self.withServer(["--max-memory", "64M"]) { _, adminPort, client in
            let boards = 12
            try await Self.fill(client, prefix: "t", boards: boards, players: 1000, metadataBytes: 4096)
            let before = try await Self.allocated(adminPort)
            var refused = 0
            for board in 0..<boards {
                do {
                    _ = try await client.top(board: "t\(board)", limit: 1000)
                } catch let error as HiscoreError where error.code == .resourceExhausted {
                    refused += 1
                }
            }
            let after = try await Self.allocated(adminPort)
            #expect(refused == boards)
            #expect(
                after - before < Double(16 << 20),
                "allocated \(Int(before) >> 20) MiB -> \(Int(after) >> 20) MiB after \(refused) refused top-1000 reads (--max-memory 64M)")
        }
    }

    /// Each board keeps its last top (snapshot and packed answer, each up to about a frame):
    /// bounded per board, not over the server. 12 boards of 1 KiB metadata read top-800 kept
    /// ~20 MiB, and would keep ~20 GB over 10,000 boards (reads go on above --max-memory).
    @Test("the boards' cached tops stay within max_top_cache_bytes and answer alike when not cached")
    func topCacheBound() async throws {
        let bound = 2 << 20
        try await Self.withServer(["--max-top-cache-bytes", "\(bound)"]) { _, adminPort, client in
            let boards = 12
            try await Self.fill(client, prefix: "t", boards: boards, players: 800, metadataBytes: 1024)
            let before = try await Self.allocated(adminPort)
            var first: [[String]] = []
            for board in 0..<boards {
                first.append(try await client.top(board: "t\(board)", limit: 800).entries.map(\.playerID))
            }
            let after = try await Self.allocated(adminPort)
            let held = try #require(try await metricValue("hiscore_top_cache_bytes", adminPort: adminPort))
            #expect(held > 0 && held <= Double(bound), "hiscore_top_cache_bytes \(held) against a bound of \(bound)")
            #expect(
                after - before < Double(8 << 20),
                "allocated \(Int(before) >> 20) MiB -> \(Int(after) >> 20) MiB after top-800 reads of \(boards) boards")

            // The boards that found no room answer the same, computed again for each call.
            for board in 0..<boards {
                let again = try await client.top(board: "t\(board)", limit: 800)
                #expect(again.entries.map(\.playerID) == first[board], "board t\(board)")
                #expect(again.entries.first?.metadata.first == UInt8(truncatingIfNeeded: 799))
            }
            // Deleted boards give their room back.
            for board in 0..<boards { _ = try await client.deleteBoard("t\(board)") }
            #expect(try await metricValue("hiscore_top_cache_bytes", adminPort: adminPort) == 0)
        }
    }
}
