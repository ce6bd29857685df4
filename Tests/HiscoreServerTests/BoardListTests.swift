import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreWire
import Testing

@testable import HiscoreServer
import HiscoreTestSupport

/// `list_boards` pages come from an ordered index of the live ids that the directory keeps beside
/// its boards (`BoardDirectory.State.sortedIDs`), not from a sort of every board per call: the
/// pages must be exactly the sorted ids, through creations, deletions and season resets.
@Suite("Board lists")
struct BoardListTests {
    @Test("pages of list_boards are the live ids in order, through random creations, deletions and resets")
    func pagesMatchTheSortedIDs() throws {
        let seed = DifferentialServerTests.seed()
        var random = SplitMix64(seed: seed)
        let directory = BoardDirectory(shardCount: 2, maxBoards: 1_000)
        var live = Set<String>()
        let names = (0..<60).map { "b\($0 % 7)-\($0)" }
        for step in 0..<400 {
            let id = names[Int(random.next() % UInt64(names.count))]
            switch random.next() % 4 {
            case 0, 1:
                _ = try directory.create(BoardConfig(id: id))
                live.insert(id)
            case 2:
                _ = try directory.remove(id)
                live.remove(id)
            default:
                if live.contains(id) { _ = try directory.reset(id, at: Int64(step)) }
            }
            // Page through with a random page size, from the start or from any string.
            let limit = 1 + Int(random.next() % 7)
            let from = random.next() % 3 == 0 ? names[Int(random.next() % UInt64(names.count))] : ""
            let expected = live.filter { $0 > from }.sorted()
            var listed: [String] = []
            var after = from
            while true {
                let page = directory.list(after: after, limit: limit)
                #expect(page.boards.count <= limit, "seed \(seed) step \(step)")
                listed += page.boards.map(\.config.id)
                guard page.more, let last = page.boards.last else { break }
                after = last.config.id
            }
            #expect(listed == expected, "seed \(seed) step \(step): listed \(listed), expected \(expected)")
            #expect(directory.count == live.count, "seed \(seed) step \(step)")
        }
    }

    @Test("a limit of 0 asks for the default page, capped by a smaller max_page_entries")
    func defaultLimitsUnderSmallPages() async throws {
        try await withClient(configure: { $0.limits.maxPageEntries = 5 }) { client, _ in
            for index in 0..<8 {
                _ = try await client.submit(board: "board-\(index)", player: "p\(index)", score: Int64(index))
                _ = try await client.submit(board: "board-0", player: "q\(index)", score: Int64(index))
            }
            #expect(try await client.top(board: "board-0", limit: 0).entries.count == 5)
            let page = try await client.listBoards(limit: 0)
            #expect(page.boards.count == 5 && page.more)
        }
    }
}
