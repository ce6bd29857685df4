import Foundation
import HiscoreClient
import HiscoreWire
import Testing

/// Submits, ranks and cached tops allocate nothing on the server once it is warm (the load generator's
/// `allocations/op`, here as a test). Measured in a server process of its own, from jemalloc's
/// allocation count in /metrics: in-process, the test's own allocations would count. The server
/// is the release build: unoptimized code boxes and copies what optimized code keeps on the
/// stack (a debug server allocates 8-20 times per call). `make test` builds it before the
/// suites run; a bare `swift test` without one skips this suite.
@Suite(
    "Steady-state allocations",
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: ServerProcess.releaseBinary.path),
        "needs .build/release/hiscored (make test builds it)"))
struct SteadyStateAllocationTests {
    private static func allocationCount(_ adminPort: Int) async throws -> Double {
        try await metricValue("hiscore_allocations_total", adminPort: adminPort) ?? -1
    }

    /// Runs `rounds` rounds in which each client has `inFlight` submits and as many ranks out at
    /// once (the client pipelines them on its connection).
    private static func load(_ clients: [HiscoreClient], rounds: Int, inFlight: Int, players: Int, seed: Int) async throws {
        for round in 0..<rounds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, client) in clients.enumerated() {
                    group.addTask {
                        try await withThrowingTaskGroup(of: Void.self) { calls in
                            for call in 0..<inFlight {
                                let player = "p:\((seed + round * 7919 + index * 104_729 + call * 31) % players)"
                                calls.addTask {
                                    _ = try await client.submit(board: "lb", player: player, score: Int64((round * 31 + call) % 10_000))
                                }
                                calls.addTask { _ = try await client.rank(board: "lb", player: player) }
                            }
                            try await calls.waitForAll()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// Runs `rounds` rounds in which each client has `inFlight` top-10 calls out at once; with no
    /// write between them, each is answered from the board's top cache.
    private static func loadTops(_ clients: [HiscoreClient], rounds: Int, inFlight: Int) async throws {
        for _ in 0..<rounds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients {
                    group.addTask {
                        try await withThrowingTaskGroup(of: Void.self) { calls in
                            for _ in 0..<inFlight {
                                calls.addTask { _ = try await client.top(board: "lb", limit: 10) }
                            }
                            try await calls.waitForAll()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// A cached top cost its plan object per call (0.98-1.02 allocations per top-10 call in
    /// every `make bench` run until the plans were pooled).
    @Test("warm top-10 calls answered from the top cache make no heap allocation", arguments: [1, 2])
    func noAllocationsForCachedTops(shards: Int) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(
            arguments: ["--data-dir", directory.path, "--durability", "memory", "--shards", "\(shards)"], adminPort: true,
            binary: ServerProcess.releaseBinary
        ) { server in
            let adminPort = try #require(server.adminPortNumber)
            var clients: [HiscoreClient] = []
            for _ in 0..<32 { clients.append(try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)) }
            _ = try await clients[0].submitBatch((0..<1_000).map { SubmitRequest(boardID: "lb", playerID: "p:\($0)", score: Int64($0)) })
            // 16 out per connection, as `make bench` pipelines them: their answers (~6 KB) fit the
            // response buffer a connection keeps between reads (`keptOutboundCapacity`, 8 KiB);
            // a larger burst takes a new buffer, by design (10,000 connections keep ~80 MB).
            try await Self.loadTops(clients, rounds: 40, inFlight: 16)
            let idleBefore = try await Self.allocationCount(adminPort)
            let idleAfter = try await Self.allocationCount(adminPort)
            let measuredRounds = 200
            let before = try await Self.allocationCount(adminPort)
            try await Self.loadTops(clients, rounds: measuredRounds, inFlight: 16)
            let after = try await Self.allocationCount(adminPort)
            let calls = Double(measuredRounds * 32 * 16)
            #expect(idleBefore >= 0 && idleAfter >= idleBefore && after >= before)
            // As above: what is left is warm-up allocations landing in the window (32 connections:
            // enough calls, ~100,000, that those few thousand stay well under the bound).
            let perCall = (after - before - (idleAfter - idleBefore)) / calls
            #expect(perCall < 0.1, "\(after - before) allocations over \(Int(calls)) calls (\(perCall) per call)")
            for client in clients { try await client.close() }
        }
    }

    /// Rounds of more than `ExecutorPool.maxRoundCalls` calls per event loop pass (8 connections
    /// with 64 calls each out) are the case that once grew the executor's pooled arrays on every
    /// round.
    @Test("warm submits and ranks, pipelined over several connections, make no heap allocation", arguments: [1, 2])
    func noAllocationsWhenWarm(shards: Int) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(
            arguments: ["--data-dir", directory.path, "--durability", "memory", "--shards", "\(shards)"], adminPort: true,
            binary: ServerProcess.releaseBinary
        ) { server in
            let adminPort = try #require(server.adminPortNumber)
            var clients: [HiscoreClient] = []
            for _ in 0..<8 { clients.append(try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)) }
            let players = 2_000
            for start in stride(from: 0, to: players, by: 500) {
                _ = try await clients[0].submitBatch((start..<(start + 500)).map {
                    SubmitRequest(boardID: "lb", playerID: "p:\($0)", score: Int64($0))
                })
            }
            // Warm-up: pools, arenas and buffers reach their working sizes.
            try await Self.load(clients, rounds: 40, inFlight: 32, players: players, seed: 1)
            // A scrape allocates (it renders text): two scrapes with nothing between measure what
            // the scrapes themselves add to a before/after pair.
            let idleBefore = try await Self.allocationCount(adminPort)
            let idleAfter = try await Self.allocationCount(adminPort)
            let measuredRounds = 200
            let before = try await Self.allocationCount(adminPort)
            try await Self.load(clients, rounds: measuredRounds, inFlight: 32, players: players, seed: 2)
            let after = try await Self.allocationCount(adminPort)
            let calls = Double(measuredRounds * 8 * 32 * 2)
            #expect(idleBefore >= 0 && idleAfter >= idleBefore && after >= before)
            // What is left is pooled executor state still growing to the largest rounds (a few
            // hundred allocations) and jemalloc's count itself, which merges a thread's cached
            // allocations only when its cache flushes: warm-up allocations can land in the window
            // (a few thousand, measured under a busy machine). An allocation per submit or rank
            // would be 0.5 per call; per round of the executor, 0.1 to 0.3 (seen once, and fixed).
            let perCall = (after - before - (idleAfter - idleBefore)) / calls
            #expect(perCall < 0.1, "\(after - before) allocations over \(Int(calls)) calls (\(perCall) per call)")
            for client in clients { try await client.close() }
        }
    }
}
