import Foundation
@testable import HiscoreServer
import HiscoreStorage
import HiscoreCore
import HiscoreWire
import NIOCore
import NIOPosix
import Testing

/// Deadlines are checked by the batch executor when a call starts a phase and before it answers.
/// Driving the executor directly makes an expired deadline deterministic.
@Suite("Deadlines and cancellation in the executor")
struct DeadlineTests {
    /// Two shards on two loops, their executor, and a board "b" split over both.
    private static func twoShards() throws -> (
        group: MultiThreadedEventLoopGroup, loops: [any EventLoop], shards: [Shard], executor: BatchExecutor, board: BoardHandle
    ) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let memory = MemoryCeiling(limitBytes: 0)
        let shards = loops.enumerated().map { Shard(index: $0.offset, loop: $0.element, memory: memory) }
        let directory = BoardDirectory(shardCount: 2, maxBoards: 10)
        return (group, loops, shards, BatchExecutor(shards: shards), try directory.boardCreatingDefault("b"))
    }

    /// Runs the calls `makeCalls` builds (on the loop: plans are not Sendable) as one batch and
    /// returns what was delivered once the executor says the batch is done.
    private static func runBatch(
        _ executor: BatchExecutor, on loop: any EventLoop, isLive: @escaping @Sendable (UInt64) -> Bool = { _ in true },
        _ makeCalls: @escaping @Sendable () -> [PlannedCall]
    ) async throws -> [ResponseEnvelope] {
        let promise = loop.makePromise(of: [ResponseEnvelope].self)
        loop.execute {
            let collected = NIOLoopBound(ResponseList(), eventLoop: loop)
            executor.run(makeCalls(), on: loop, receiver: ClosureBatchReceiver(
                isLive: isLive, deliver: { collected.value.responses.append($0) },
                finished: { promise.succeed(collected.value.responses) }))
        }
        return try await promise.futureResult.get()
    }

    @Test("a call whose deadline has passed is answered DEADLINE_EXCEEDED without touching a shard")
    func expiredDeadline() async throws {
        let (group, loops, _, executor, board) = try Self.twoShards()
        let responses = try await Self.runBatch(executor, on: loops[0]) {
            let expired = PlannedCall(
                callID: 1, plan: CountPlan(callID: 1, board: board, request: CountRequest(boardID: "b"), shardCount: 2),
                deadline: .now() - .milliseconds(5))
            let live = PlannedCall(
                callID: 2, plan: CountPlan(callID: 2, board: board, request: CountRequest(boardID: "b"), shardCount: 2),
                deadline: .now() + .seconds(60))
            return [expired, live]
        }
        try await group.shutdownGracefully()
        // The expired call is answered before the live one's shard trips come back.
        #expect(responses.map(\.callID) == [1, 2])
        #expect(responses.first?.status?.code == .deadlineExceeded)
        #expect(responses.last?.status == nil)
    }

    @Test("a cancelled call is dropped: no response is delivered for it")
    func cancelledCall() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let shards = [Shard(index: 0, loop: loop, memory: MemoryCeiling(limitBytes: 0))]
        let executor = BatchExecutor(shards: shards)
        let directory = BoardDirectory(shardCount: 1, maxBoards: 10)
        let board = try directory.boardCreatingDefault("b")
        let delivered = try await Self.runBatch(executor, on: loop, isLive: { $0 != 2 }) {
            (1...3).map { id in
                PlannedCall(
                    callID: UInt64(id),
                    plan: CountPlan(callID: UInt64(id), board: board, request: CountRequest(boardID: "b"), shardCount: 1),
                    deadline: nil)
            }
        }
        try await group.shutdownGracefully()
        #expect(delivered.map(\.callID) == [1, 3])
    }

    @Test("a write the log can no longer make durable is answered UNAVAILABLE, and the next batch still runs")
    func durabilityFailure() async throws {
        let (group, loops, shards, executor, board) = try Self.twoShards()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-executor-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let data = try DataDirectory.open(path: path)
        defer { data.close() }
        for shard in shards {
            // An fsync-mode log, closed at once: every later durability promise fails.
            try await shard.loop.submit {
                try shard.assumeIsolated { shard in
                    _ = try shard.recover(directory: data, boards: [board.incarnation: board], mode: .fsync, snapshotAfterLogBytes: .max)
                    shard.flushLog()?.close()
                }
            }.get()
        }
        let loop = loops[0]
        /// Runs the plans `makePlans` builds as one batch.
        func runBatch(_ makePlans: @escaping @Sendable () -> [any CallPlan]) async throws -> [ResponseEnvelope] {
            try await Self.runBatch(executor, on: loop) {
                makePlans().enumerated().map { PlannedCall(callID: UInt64($0.offset + 1), plan: $0.element, deadline: nil) }
            }
        }
        // Players on both shards: one trip stays on the connection's loop, one hops.
        let players = ["p1", "p2", "p3", "p4"]
        #expect(Set(players.map { board.shard(for: $0, shardCount: 2) }).count == 2)
        let failed = try await runBatch {
            players.enumerated().map { index, player in
                SubmitPlan(
                    callID: UInt64(index + 1), board: board, request: SubmitRequest(boardID: "b", playerID: player, score: 10),
                    shardCount: 2)
            }
        }
        #expect(failed.count == 4)
        for response in failed {
            #expect(response.status?.code == .unavailable)
            #expect(response.status?.message.contains("durably") == true)
        }
        // Reads need no durability: the executor's pooled phase and trips serve the next batch.
        let counted = try await runBatch { [CountPlan(callID: 1, board: board, request: CountRequest(boardID: "b"), shardCount: 2)] }
        #expect(counted.count == 1 && counted.first?.status == nil)
        try await group.shutdownGracefully()
    }
}

/// Responses collected on one loop (by a test's receiver).
private final class ResponseList {
    var responses: [ResponseEnvelope] = []
}
