import Foundation
@testable import HiscoreServer
import HiscoreCore
import HiscoreStorage
import HiscoreWire
import NIOCore
import NIOPosix
import Testing

/// The batches a shard's loop hands the executor during one pass run as one round.
@Suite("Executor rounds", .timeLimit(.minutes(1)))
struct ExecutorRoundTests {
    /// What happened, in order, on the loop.
    private final class EventLog {
        var events: [String] = []
        var receiversDone = 0
    }

    /// A receiver that logs each answer (`describe`) and its own end, and fulfils `done` with the
    /// log once `receivers` receivers sharing `log` have ended.
    private static func loggingReceiver(
        _ name: String, log: NIOLoopBound<EventLog>, receivers: Int, done: EventLoopPromise<[String]>,
        describe: @escaping (ResponseEnvelope) -> String
    ) -> ClosureBatchReceiver {
        ClosureBatchReceiver(
            deliver: { log.value.events.append("\(name) \(describe($0))") },
            finished: {
                log.value.events.append("\(name) done")
                log.value.receiversDone += 1
                if log.value.receiversDone == receivers { done.succeed(log.value.events) }
            })
    }

    private static func countCall(_ id: UInt64, board: BoardHandle, shardCount: Int) -> PlannedCall {
        PlannedCall(
            callID: id, plan: CountPlan(callID: id, board: board, request: CountRequest(boardID: "b"), shardCount: shardCount),
            deadline: nil)
    }

    @Test("batches handed over in one pass are answered after the pass, each receiver told once, after its own calls", arguments: [1, 2])
    func oneRoundPerPass(shardCount: Int) async throws {
        let fixture = try ExecutorFixture(shardCount: shardCount)
        let (executor, board, loop) = (fixture.executor, fixture.board, fixture.loop)
        let done = loop.makePromise(of: [String].self)
        loop.execute {
            let log = NIOLoopBound(EventLog(), eventLoop: loop)
            func receiver(_ name: String) -> ClosureBatchReceiver {
                Self.loggingReceiver(name, log: log, receivers: 3, done: done) { "answer \($0.callID)" }
            }
            executor.run(
                [Self.countCall(1, board: board, shardCount: shardCount), Self.countCall(2, board: board, shardCount: shardCount)],
                on: loop, receiver: receiver("a"))
            log.value.events.append("a handed over")
            executor.run([], on: loop, receiver: receiver("empty"))
            log.value.events.append("empty handed over")
            executor.run([Self.countCall(3, board: board, shardCount: shardCount)], on: loop, receiver: receiver("b"))
            log.value.events.append("b handed over")
            // All three batches wait in one round, none started yet.
            if let state = executor.poolState(on: loop) {
                log.value.events.append("gathered \(state.gatheredCalls) out \(state.roundsOut)")
            }
        }
        let events = try await done.futureResult.get()
        try await fixture.shutdown()
        #expect(Array(events.prefix(4)) == ["a handed over", "empty handed over", "b handed over", "gathered 3 out 0"])
        // Every answer once, and each receiver's "done" after its own answers.
        #expect(events.filter { $0.contains("answer") }.sorted() == ["a answer 1", "a answer 2", "b answer 3"])
        for name in ["a", "b"] {
            let lastAnswer = events.lastIndex { $0.hasPrefix("\(name) answer") }
            let doneAt = events.firstIndex(of: "\(name) done")
            #expect(lastAnswer != nil && doneAt != nil && lastAnswer! < doneAt!, "\(events)")
            #expect(events.filter { $0 == "\(name) done" }.count == 1)
        }
        #expect(events.filter { $0 == "empty done" }.count == 1)
    }

    /// Hands over, in one pass on `loop`, a submit of `player` ("writer") and then a count of the
    /// board ("reader"); returns what each was answered ("writer UNAVAILABLE", "reader ok", ...).
    private static func writerThenReader(
        executor: BatchExecutor, board: BoardHandle, loop: any EventLoop, player: String, shardCount: Int
    ) async throws -> [String] {
        let done = loop.makePromise(of: [String].self)
        loop.execute {
            let log = NIOLoopBound(EventLog(), eventLoop: loop)
            func receiver(_ name: String) -> ClosureBatchReceiver {
                Self.loggingReceiver(name, log: log, receivers: 2, done: done) { $0.status?.code.description ?? "ok" }
            }
            let write = SubmitPlan(
                callID: 1, board: board, request: SubmitRequest(boardID: "b", playerID: player, score: 5), shardCount: shardCount)
            executor.run([PlannedCall(callID: 1, plan: write, deadline: nil)], on: loop, receiver: receiver("writer"))
            executor.run([Self.countCall(2, board: board, shardCount: shardCount)], on: loop, receiver: receiver("reader"))
        }
        return try await done.futureResult.get()
    }

    @Test("fsync mode: a read-only batch does not share a round with another connection's writes (nor their fsync, nor its failure)")
    func readsApartFromWrites() async throws {
        let fixture = try ExecutorFixture(shardCount: 1, writesWaitForDurability: true)
        let (executor, board, loop) = (fixture.executor, fixture.board, fixture.loop)
        // An fsync-mode log, closed at once: every later durability promise fails, so a read
        // that shared a trip with a write would fail with it.
        let logs = try await fixture.openFsyncLogs(failing: { _ in true })
        defer { logs.remove() }
        let events = try await Self.writerThenReader(executor: executor, board: board, loop: loop, player: "p", shardCount: 1)
        try await fixture.shutdown()
        #expect(events.contains("reader ok"), "\(events)")
        #expect(events.contains { $0.hasPrefix("writer") && $0 != "writer ok" && $0 != "writer done" }, "\(events)")
    }

    /// Gives two shards logs in `mode` (shard 1's closed: its writes can no longer be stored),
    /// submits a player of each shard in one round, and returns what each call was answered
    /// ("healthy ok", "failed UNAVAILABLE", ...).
    private static func submitToHealthyAndFailedShard(mode: DurabilityMode) async throws -> [String] {
        let fixture = try ExecutorFixture(shardCount: 2, writesWaitForDurability: mode == .fsync)
        let (executor, board) = (fixture.executor, fixture.board)
        let logs = try await fixture.openFsyncLogs(mode: mode, failing: { $0 == 1 })
        defer { logs.remove() }
        let players = (0..<64).map { "p\($0)" }
        let onHealthy = try #require(players.first { board.shard(for: $0, shardCount: 2) == 0 })
        let onFailed = try #require(players.first { board.shard(for: $0, shardCount: 2) == 1 })
        let loop = fixture.loop
        let done = loop.makePromise(of: [String].self)
        loop.execute {
            let log = NIOLoopBound(EventLog(), eventLoop: loop)
            for (name, player) in [("healthy", onHealthy), ("failed", onFailed)] {
                let plan = SubmitPlan(
                    callID: 1, board: board, request: SubmitRequest(boardID: "b", playerID: player, score: 5), shardCount: 2)
                executor.run(
                    [PlannedCall(callID: 1, plan: plan, deadline: nil)], on: loop,
                    receiver: Self.loggingReceiver(name, log: log, receivers: 2, done: done) { $0.status?.code.description ?? "ok" })
            }
        }
        let events = try await done.futureResult.get()
        try await fixture.shutdown()
        return events
    }

    @Test("a shard whose log fails fails the round's calls that wrote there, not the others")
    func failureStaysWithItsShard() async throws {
        let events = try await Self.submitToHealthyAndFailedShard(mode: .fsync)
        #expect(events.contains("healthy ok"), "\(events)")
        #expect(events.contains { $0.hasPrefix("failed ") && $0 != "failed ok" && $0 != "failed done" }, "\(events)")
    }

    @Test("async mode: writes to a shard whose log has failed are refused, not acknowledged and lost")
    func asyncFailureIsNotAcknowledged() async throws {
        let events = try await Self.submitToHealthyAndFailedShard(mode: .async)
        #expect(events.contains("healthy ok"), "\(events)")
        #expect(events.contains("failed UNAVAILABLE"), "\(events)")
    }

    @Test("async mode: a read that shares a trip with a write the failed log refuses keeps its answer; the write fails")
    func readsSurviveAFailedTrip() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let (executor, board, loop) = (fixture.executor, fixture.board, fixture.loop)
        let logs = try await fixture.openFsyncLogs(mode: .async, failing: { $0 == 1 })
        defer { logs.remove() }
        let players = (0..<64).map { "p\($0)" }
        let onFailed = try #require(players.first { board.shard(for: $0, shardCount: 2) == 1 })
        // Handed over in one pass: one round, so the count's trip to shard 1 carries the write.
        let events = try await Self.writerThenReader(executor: executor, board: board, loop: loop, player: onFailed, shardCount: 2)
        try await fixture.shutdown()
        #expect(events.contains("writer UNAVAILABLE"), "\(events)")
        #expect(events.contains("reader ok"), "\(events)")
    }

    @Test("a submit batch across a healthy and a failed shard answers item by item: applied items OK, refused ones UNAVAILABLE",
          arguments: [DurabilityMode.fsync, .async])
    func batchAnswersRefusedItems(mode: DurabilityMode) async throws {
        let fixture = try ExecutorFixture(shardCount: 2, writesWaitForDurability: mode == .fsync)
        let (executor, board, loop) = (fixture.executor, fixture.board, fixture.loop)
        let logs = try await fixture.openFsyncLogs(mode: mode, failing: { $0 == 1 })
        defer { logs.remove() }
        let players = (0..<64).map { "p\($0)" }
        let onHealthy = try #require(players.first { board.shard(for: $0, shardCount: 2) == 0 })
        let onFailed = try #require(players.first { board.shard(for: $0, shardCount: 2) == 1 })
        let done = loop.makePromise(of: ResponseEnvelope.self)
        loop.execute {
            let items = [onHealthy, onFailed].map { player -> Result<SubmitPlan, Status> in
                .success(SubmitPlan(
                    callID: 1, board: board, request: SubmitRequest(boardID: "b", playerID: player, score: 5), shardCount: 2))
            }
            executor.run(
                [PlannedCall(callID: 1, plan: SubmitBatchPlan(callID: 1, items: items), deadline: nil)], on: loop,
                receiver: ClosureBatchReceiver(deliver: { done.succeed($0) }, finished: {}))
        }
        let answer = try await done.futureResult.get()
        try await fixture.shutdown()
        guard case .submitBatch(let results)? = answer.result else {
            Issue.record("the batch failed as a whole: \(answer)")
            return
        }
        #expect(results.map(\.status.code) == [.ok, .unavailable], "\(results)")
        #expect(results.first?.response?.entry.playerID == onHealthy)
    }

    @Test("at most maxRoundsOut rounds wait for another loop at once; batches read meanwhile gather and run when one ends")
    func roundsOutAreBounded() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let (executor, board) = (fixture.executor, fixture.board)
        let (loop, other) = (fixture.loops[0], fixture.loops[1])
        // The other shard's loop is held busy, so every round (a count needs both shards) waits.
        let release = DispatchSemaphore(value: 0)
        // A promise of the other loop would tell its waiters through that (held) loop.
        let held = loop.makePromise(of: Void.self)
        other.execute {
            held.succeed(())
            // Bounded: a failing test must not hang the suite.
            _ = release.wait(timeout: .now() + 20)
        }
        try await held.futureResult.get()
        let batches = ExecutorPool.maxRoundsOut + 5
        let finished = loop.makePromise(of: Int.self)
        let stateAfterAll = loop.makePromise(of: (roundsOut: Int, gatheredCalls: Int).self)
        loop.execute {
            var done = 0
            var answered = 0
            func pass(_ index: Int) {
                guard index < batches else {
                    // Each pass's batch was handed over in a loop pass of its own.
                    loop.assumeIsolated().execute {
                        stateAfterAll.succeed(executor.poolState(on: loop) ?? (-1, -1))
                        release.signal()
                    }
                    return
                }
                executor.run(
                    [Self.countCall(UInt64(index + 1), board: board, shardCount: 2)], on: loop,
                    receiver: ClosureBatchReceiver(
                        deliver: { if $0.status == nil { answered += 1 } },
                        finished: {
                            done += 1
                            if done == batches { finished.succeed(answered) }
                        }))
                loop.assumeIsolated().execute { pass(index + 1) }
            }
            pass(0)
        }
        let state = try await stateAfterAll.futureResult.get()
        let answered = try await finished.futureResult.get()
        try await fixture.shutdown()
        #expect(state.roundsOut == ExecutorPool.maxRoundsOut)
        #expect(state.gatheredCalls == batches - ExecutorPool.maxRoundsOut)
        #expect(answered == batches)
    }

    @Test("a round that reaches maxRoundCalls runs at once (one shard: answered before run returns)")
    func fullRoundStartsAtOnce() async throws {
        let fixture = try ExecutorFixture(shardCount: 1)
        let (executor, board, loop) = (fixture.executor, fixture.board, fixture.loop)
        let counts: (small: Int, full: Int) = try await loop.submit {
            var answered = 0
            let receiver = ClosureBatchReceiver(deliver: { _ in answered += 1 }, finished: {})
            executor.run([Self.countCall(1, board: board, shardCount: 1)], on: loop, receiver: receiver)
            let small = answered
            let rest = (2...UInt64(ExecutorPool.maxRoundCalls)).map { Self.countCall($0, board: board, shardCount: 1) }
            executor.run(rest, on: loop, receiver: receiver)
            return (small, answered)
        }.get()
        try await fixture.shutdown()
        #expect(counts.small == 0)
        #expect(counts.full == ExecutorPool.maxRoundCalls)
    }
}
