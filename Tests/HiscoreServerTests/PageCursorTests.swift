import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreWire
import Testing

/// A page cursor names the entries it was cut from: it pages them across restarts of a server
/// that keeps them, and is refused by any other board.
@Suite("Page cursors: which board they page", .serialized)
struct PageCursorTests {
    @Test("a cursor from before a restart in memory mode is refused by the board created again after it, as by any other board")
    func cursorAcrossMemoryRestart() async throws {
        // First life of the server: board "lb" (the first board created: incarnation 1).
        let oldCursor: [UInt8] = try await withClient(shards: 2) { client, _ in
            _ = try await client.submitBatch((0..<30).map { SubmitRequest(boardID: "lb", playerID: "old\($0)", score: Int64(1000 + $0)) })
            let page = try await client.top(board: "lb", limit: 10)
            #expect(page.entries.last?.playerID == "old20")
            return page.nextCursor
        }
        // Second life (memory mode keeps nothing): the board is created again, with other players.
        try await withClient(shards: 2) { client, _ in
            _ = try await client.submitBatch((0..<30).map { SubmitRequest(boardID: "lb", playerID: "new\($0)", score: Int64($0)) })
            await expectStatus(.invalidArgument) {
                let page = try await client.top(board: "lb", limit: 10, after: oldCursor)
                Issue.record("accepted: \(page.entries.map(\.playerID)) ranks \(page.entries.map(\.rank))")
            }
        }
        // The same with another board id: the cursor names its board.
        try await withClient(shards: 2) { client, _ in
            _ = try await client.submitBatch((0..<30).map { SubmitRequest(boardID: "other", playerID: "o\($0)", score: Int64($0)) })
            await expectStatus(.invalidArgument) {
                let page = try await client.top(board: "other", limit: 10, after: oldCursor)
                Issue.record("accepted on another board: \(page.entries.map(\.playerID))")
            }
        }
    }

    @Test("a cursor pages on after a restart of a server with a data directory, live and archived periods alike")
    func cursorAcrossDurableRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-cursor-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configure: (inout ServerConfiguration) -> Void = {
            $0.durability = .fsync
            $0.dataDirectory = directory
        }
        let (live, archived): ([UInt8], [UInt8]) = try await withClient(shards: 2, configure: configure) { client, _ in
            _ = try await client.submitBatch((0..<30).map { SubmitRequest(boardID: "lb", playerID: "a\($0)", score: Int64($0)) })
            #expect(try await client.resetBoard("lb").archivedPeriodID == 1)
            _ = try await client.submitBatch((0..<30).map { SubmitRequest(boardID: "lb", playerID: "b\($0)", score: Int64($0)) })
            return (try await client.top(board: "lb", limit: 10).nextCursor, try await client.top(board: "lb", limit: 10, period: 1).nextCursor)
        }
        try await withClient(shards: 2, configure: configure) { client, _ in
            let next = try await client.top(board: "lb", limit: 10, after: live)
            #expect(next.entries.map(\.playerID) == (10..<20).map { "b\(29 - $0)" } && next.entries.first?.rank == 11)
            let nextArchived = try await client.top(board: "lb", limit: 10, after: archived, period: 1)
            #expect(nextArchived.entries.map(\.playerID) == (10..<20).map { "a\(29 - $0)" })
            // Each period's cursor is its own.
            await expectStatus(.invalidArgument) { _ = try await client.top(board: "lb", limit: 10, after: archived) }
        }
    }
}
