import HiscoreClient
import HiscoreWire
import Synchronization

/// Set until cleared, across tasks.
final class TestFlag: Sendable {
    private let value = Atomic<Bool>(true)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func clear() { value.store(false, ordering: .relaxed) }
}

/// Runs `body` while `writers` connections to the server on `port` keep submitting batches of
/// `batch` new players to `board` (ids "w<writer>-<n>", scores `score(n)`; their answers,
/// refusals included, are not looked at), then stops the writers and waits for them: the
/// background load of the stress tests that race a call against writes.
func whileWritingNewPlayers<T>(
    port: Int, board: String, writers: Int, batch: Int, score: @escaping @Sendable (Int) -> Int64 = { Int64($0) },
    _ body: () async throws -> T
) async throws -> T {
    let writing = TestFlag()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        for writer in 0..<writers {
            group.addTask {
                let client = try await HiscoreClient.connect(host: "127.0.0.1", port: port)
                var next = 0
                while writing.isSet {
                    _ = try await client.submitBatch((next..<(next + batch)).map {
                        SubmitRequest(boardID: board, playerID: "w\(writer)-\($0)", score: score($0))
                    })
                    next += batch
                }
                try await client.close()
            }
        }
        let result: T
        do {
            result = try await body()
        } catch {
            writing.clear()
            throw error
        }
        writing.clear()
        try await group.waitForAll()
        return result
    }
}
