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

    /// One call of a load: made with a client, in a round, by the client's index, for the n-th
    /// call it has out.
    typealias LoadCall = @Sendable (_ client: HiscoreClient, _ round: Int, _ index: Int, _ call: Int) async throws -> Void

    /// Runs `rounds` in which each client has `inFlight` of each of `calls` out at once (the
    /// client pipelines them on its connection).
    private static func load(_ clients: [HiscoreClient], rounds: Range<Int>, inFlight: Int, _ calls: [LoadCall]) async throws {
        for round in rounds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, client) in clients.enumerated() {
                    group.addTask {
                        try await withThrowingTaskGroup(of: Void.self) { out in
                            for call in 0..<inFlight {
                                for make in calls { out.addTask { try await make(client, round, index, call) } }
                            }
                            try await out.waitForAll()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// Starts a release server with `shards`, connects `connections` clients, lets `prepare` fill
    /// it, warms it with 40 rounds of `calls` (`inFlight` of each per client), then expects under
    /// 0.1 allocations per call over 200 more.
    ///
    /// What is left in the window besides the calls is pooled executor state still growing to the
    /// largest rounds (a few hundred allocations) and jemalloc's count itself, which merges a
    /// thread's cached allocations only when its cache flushes: warm-up allocations can land in
    /// the window (a few thousand, measured under a busy machine). Hence ~100,000 calls: an
    /// allocation per call would be 0.5 or more; per round of the executor, 0.1 to 0.3 (seen once,
    /// and fixed).
    private static func expectNoAllocationsWhenWarm(
        shards: Int, connections: Int, inFlight: Int, _ calls: [LoadCall],
        prepare: @escaping @Sendable (HiscoreClient) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(
            arguments: ["--data-dir", directory.path, "--durability", "memory", "--shards", "\(shards)"], adminPort: true,
            binary: ServerProcess.releaseBinary
        ) { server in
            let adminPort = try #require(server.adminPortNumber)
            var clients: [HiscoreClient] = []
            for _ in 0..<connections { clients.append(try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)) }
            try await prepare(clients[0])
            // Warm-up: pools, arenas and buffers reach their working sizes.
            try await load(clients, rounds: 0..<40, inFlight: inFlight, calls)
            // A scrape allocates (it renders text): two scrapes with nothing between measure what
            // the scrapes themselves add to a before/after pair.
            let idleBefore = try await allocationCount(adminPort)
            let idleAfter = try await allocationCount(adminPort)
            let measuredRounds = 200
            let before = try await allocationCount(adminPort)
            // Rounds numbered on from the warm-up's: calls made from the round differ from its.
            try await load(clients, rounds: 40..<(40 + measuredRounds), inFlight: inFlight, calls)
            let after = try await allocationCount(adminPort)
            let callCount = Double(measuredRounds * connections * inFlight * calls.count)
            #expect(idleBefore >= 0 && idleAfter >= idleBefore && after >= before)
            let perCall = (after - before - (idleAfter - idleBefore)) / callCount
            #expect(perCall < 0.1, "\(after - before) allocations over \(Int(callCount)) calls (\(perCall) per call)")
            for client in clients { try await client.close() }
        }
    }

    /// A cached top cost its plan object per call (0.98-1.02 allocations per top-10 call in
    /// every `make bench` run until the plans were pooled). 16 out per connection, as `make
    /// bench` pipelines them: their answers (~6 KB) fit the response buffer a connection keeps
    /// between reads (`keptOutboundCapacity`, 8 KiB); a larger burst takes a new buffer, by
    /// design (10,000 connections keep ~80 MB). With no write between them, every call is
    /// answered from the board's top cache.
    @Test("warm top-10 calls answered from the top cache make no heap allocation", arguments: [1, 2])
    func noAllocationsForCachedTops(shards: Int) async throws {
        try await Self.expectNoAllocationsWhenWarm(
            shards: shards, connections: 32, inFlight: 16, [{ client, _, _, _ in _ = try await client.top(board: "lb", limit: 10) }]
        ) { client in
            _ = try await client.submitBatch((0..<1_000).map { SubmitRequest(boardID: "lb", playerID: "p:\($0)", score: Int64($0)) })
        }
    }

    /// Rounds of more than `ExecutorPool.maxRoundCalls` calls per event loop pass (8 connections
    /// with 64 calls each out) are the case that once grew the executor's pooled arrays on every
    /// round.
    @Test("warm submits and ranks, pipelined over several connections, make no heap allocation", arguments: [1, 2])
    func noAllocationsWhenWarm(shards: Int) async throws {
        let players = 2_000
        @Sendable func player(_ round: Int, _ index: Int, _ call: Int) -> String {
            "p:\((round * 7919 + index * 104_729 + call * 31) % players)"
        }
        try await Self.expectNoAllocationsWhenWarm(
            shards: shards, connections: 8, inFlight: 32,
            [
                { client, round, index, call in
                    _ = try await client.submit(board: "lb", player: player(round, index, call), score: Int64((round * 31 + call) % 10_000))
                },
                { client, round, index, call in _ = try await client.rank(board: "lb", player: player(round, index, call)) },
            ]
        ) { client in
            for start in stride(from: 0, to: players, by: 500) {
                _ = try await client.submitBatch((start..<(start + 500)).map {
                    SubmitRequest(boardID: "lb", playerID: "p:\($0)", score: Int64($0))
                })
            }
        }
    }
}
