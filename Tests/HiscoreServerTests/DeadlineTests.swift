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
        let fixture = try ExecutorFixture(shardCount: 2)
        let board = fixture.board
        let responses = try await Self.runBatch(fixture.executor, on: fixture.loop) {
            let expired = PlannedCall(
                callID: 1, plan: CountPlan(callID: 1, board: board, request: CountRequest(boardID: "b"), shardCount: 2),
                deadline: .now() - .milliseconds(5))
            let live = PlannedCall(
                callID: 2, plan: CountPlan(callID: 2, board: board, request: CountRequest(boardID: "b"), shardCount: 2),
                deadline: .now() + .seconds(60))
            return [expired, live]
        }
        try await fixture.shutdown()
        // The expired call is answered before the live one's shard trips come back.
        #expect(responses.map(\.callID) == [1, 2])
        #expect(responses.first?.status?.code == .deadlineExceeded)
        #expect(responses.last?.status == nil)
    }

    @Test("a call answered without a shard (an empty id list) is DEADLINE_EXCEEDED too once its deadline passed")
    func expiredDeadlineOfAnInstantAnswer() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let board = fixture.board
        let responses = try await Self.runBatch(fixture.executor, on: fixture.loop) {
            guard case .success(let ranking) = RankResolution.make(board: board, requested: nil, shardCount: 2) else { return [] }
            return [
                PlannedCall(callID: 1, plan: EntriesPlan(callID: 1, ranking: ranking, playerIDs: []), deadline: .now() - .milliseconds(5)),
                PlannedCall(callID: 2, plan: EntriesPlan(callID: 2, ranking: ranking, playerIDs: []), deadline: .now() + .seconds(60)),
            ]
        }
        try await fixture.shutdown()
        #expect(responses.map(\.callID) == [1, 2])
        #expect(responses.first?.status?.code == .deadlineExceeded)
        #expect(responses.last?.status == nil)
    }

    @Test("a cancelled call is dropped: no response is delivered for it")
    func cancelledCall() async throws {
        let fixture = try ExecutorFixture(shardCount: 1)
        let board = fixture.board
        let delivered = try await Self.runBatch(fixture.executor, on: fixture.loop, isLive: { $0 != 2 }) {
            (1...3).map { id in
                PlannedCall(
                    callID: UInt64(id),
                    plan: CountPlan(callID: UInt64(id), board: board, request: CountRequest(boardID: "b"), shardCount: 1),
                    deadline: nil)
            }
        }
        try await fixture.shutdown()
        #expect(delivered.map(\.callID) == [1, 3])
    }

    @Test("a write the log can no longer make durable is answered UNAVAILABLE, and the next batch still runs")
    func durabilityFailure() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let board = fixture.board
        // Fsync-mode logs, closed at once: every later durability promise fails.
        let logs = try await fixture.openFsyncLogs(failing: { _ in true })
        defer { logs.remove() }
        let (executor, loop) = (fixture.executor, fixture.loop)
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
        try await fixture.shutdown()
    }
}

/// Responses collected on one loop (by a test's receiver).
private final class ResponseList {
    var responses: [ResponseEnvelope] = []
}
