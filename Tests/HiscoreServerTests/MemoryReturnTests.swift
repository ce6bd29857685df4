import Foundation
import HiscoreClient
import HiscoreWire
import Testing

/// The engine's large blocks (node chunks, index tables, entry pages) live in a jemalloc arena
/// that returns freed pages at once (`PromptLargeBlocks`): deleting a board gives its memory back
/// to the system when the call is answered, not after jemalloc's decay, which on an idle server
/// (no background purging thread) never comes. Measured on a `hiscored` process of its own, from
/// /metrics.
@Suite("Memory returned to the system")
struct MemoryReturnTests {
    private static func metric(_ name: String, adminPort: Int) async throws -> Double {
        try await metricValue(name, adminPort: adminPort) ?? -1
    }

    @Test("deleting a board gives its pages back to the system at once")
    func deletedBoardLeavesTheResidentSet() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(
            arguments: ["--data-dir", directory.path, "--durability", "memory", "--shards", "2"], adminPort: true
        ) { server in
            let adminPort = try #require(server.adminPortNumber)
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            let players = 100_000
            for start in stride(from: 0, to: players, by: 1000) {
                _ = try await client.submitBatch((start..<(start + 1000)).map {
                    SubmitRequest(boardID: "big", playerID: "p:\($0)", score: Int64($0 &* 7919 % players))
                })
            }
            let allocatedBefore = try await Self.metric("hiscore_jemalloc_allocated_bytes", adminPort: adminPort)
            let residentBefore = try await Self.metric("process_resident_memory_bytes", adminPort: adminPort)
            let removed = try await client.deleteBoard("big")
            #expect(removed == UInt64(players))
            let allocatedAfter = try await Self.metric("hiscore_jemalloc_allocated_bytes", adminPort: adminPort)
            let residentAfter = try await Self.metric("process_resident_memory_bytes", adminPort: adminPort)
            let freed = allocatedBefore - allocatedAfter
            let returned = residentBefore - residentAfter
            // ~50 bytes a player in the engine; most of it in large blocks.
            #expect(freed > Double(players) * 30, "allocated \(allocatedBefore) -> \(allocatedAfter)")
            #expect(returned > freed / 2, "resident \(residentBefore) -> \(residentAfter) while \(freed) bytes were freed")
            try await client.close()
        }
    }
}
