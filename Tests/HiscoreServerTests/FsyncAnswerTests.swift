import Dispatch
@testable import HiscoreServer
import HiscoreCore
@testable import HiscoreStorage
import HiscoreWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// fsync mode: an answer never reports state a crash could take back. Calls that add no record
/// of their own but report what earlier writes made (a keep-best submit below the stored score,
/// a reset's count of the archived period) wait for those writes' group fsync too.
@Suite("fsync mode: answers after earlier writes", .timeLimit(.minutes(1)))
struct FsyncAnswerTests {
    /// Holds the log writer's first group fsync until released (20 s at most: a failing test
    /// must not hang the suite); later ones pass.
    private final class FirstSyncGate: Sendable {
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        private let first = NIOLockedValueBox(true)

        func hook() {
            let isFirst = first.withLockedValue { value in
                defer { value = false }
                return value
            }
            guard isFirst else { return }
            entered.signal()
            _ = release.wait(timeout: .now() + 20)
        }

        /// Waits (off the test's threads) until the writer is inside the held fsync.
        func waitUntilEntered() async -> Bool {
            await withCheckedContinuation { continuation in
                DispatchQueue(label: "fsync-gate").async {
                    continuation.resume(returning: self.entered.wait(timeout: .now() + 10) == .success)
                }
            }
        }
    }

    private static func submit(_ id: UInt64, _ player: String, _ score: Int64, board: BoardHandle) -> PlannedCall {
        PlannedCall(
            callID: id,
            plan: SubmitPlan(callID: id, board: board, request: SubmitRequest(boardID: "b", playerID: player, score: score), shardCount: 1),
            deadline: nil)
    }

    /// With the first fsync held over `first`'s write, runs `second` and reports whether it was
    /// answered by the end of its round's loop task; then releases the fsync and returns every
    /// answer.
    private static func secondAnsweredWhileFirstWaits(
        first: PlannedCall, second: PlannedCall
    ) async throws -> (answeredEarly: Bool, answers: [UInt64: ResponseEnvelope]) {
        let gate = FirstSyncGate()
        var options = ShardLog.Options()
        options.beforeGroupSyncForTesting = { gate.hook() }
        let fixture = try ExecutorFixture(shardCount: 1, writesWaitForDurability: true)
        let logs = try await fixture.openFsyncLogs(options: options, failing: { _ in false })
        let (executor, loop) = (fixture.executor, fixture.loop)
        let answers = NIOLockedValueBox([UInt64: ResponseEnvelope]())
        let bothDone = loop.makePromise(of: Void.self)
        let finished = NIOLockedValueBox(0)
        let receiver = ClosureBatchReceiver(
            deliver: { answer in answers.withLockedValue { $0[answer.callID] = answer } },
            finished: { if finished.withLockedValue({ $0 += 1; return $0 }) == 2 { bothDone.succeed(()) } })
        loop.execute { executor.run([first], on: loop, receiver: receiver) }
        let entered = await gate.waitUntilEntered()
        // The second round starts in the task `run` schedules; the check runs in the task after it.
        let answeredEarly = try await loop.submit {
            executor.run([second], on: loop, receiver: receiver)
        }.flatMap {
            loop.submit { answers.withLockedValue { $0[second.callID] != nil } }
        }.get()
        gate.release.signal()
        try await bothDone.futureResult.get()
        try await fixture.shutdown()
        logs.remove()
        #expect(entered, "the writer never reached the first group fsync")
        return (answeredEarly, answers.withLockedValue { $0 })
    }

    @Test("a keep-best submit below the stored score waits for the fsync of the write that stored it")
    func noOpSubmitWaitsForTheEarlierWrite() async throws {
        let board = try BoardDirectory(shardCount: 1, maxBoards: 10).boardCreatingDefault("b")
        let (answeredEarly, answers) = try await Self.secondAnsweredWhileFirstWaits(
            first: Self.submit(1, "p", 100, board: board), second: Self.submit(2, "p", 50, board: board))
        // Answered before the 100 was durable, its OK (entry 100) could be taken back by a crash:
        // the player would come back absent, though a keep-best write of 50 was acknowledged.
        #expect(!answeredEarly)
        guard case .submit(let response)? = answers[2]?.result else {
            Issue.record("no submit answer: \(answers)")
            return
        }
        #expect(response.entry.score == 100 && !response.changed)
        #expect(answers[1]?.status == nil)
    }

    @Test("a reset's count of the archived period waits for the fsync of the writes it counts")
    func resetCountWaitsForTheWritesItCounts() async throws {
        let board = try BoardDirectory(shardCount: 1, maxBoards: 10).boardCreatingDefault("b")
        let count = PlannedCall(callID: 2, plan: ResetAnswerPlan(callID: 2, archived: board, shardCount: 1), deadline: nil)
        let (answeredEarly, answers) = try await Self.secondAnsweredWhileFirstWaits(
            first: Self.submit(1, "p", 100, board: board), second: count)
        #expect(!answeredEarly)
        guard case .resetBoard(let response)? = answers[2]?.result else {
            Issue.record("no reset answer: \(answers)")
            return
        }
        #expect(response.archivedEntries == 1)
    }

    /// Found by a review: the count's trips failing (the shard's log failed) was ignored, and the
    /// reset answered OK counting a write the log had refused.
    @Test("fsync mode: a reset whose shard cannot make its writes durable does not count them as archived")
    func resetDoesNotCountWritesTheLogRefused() async throws {
        let fixture = try ExecutorFixture(shardCount: 1, writesWaitForDurability: true)
        // Shard 0's log refuses every durability promise from now on (as a failed log does).
        let logs = try await fixture.openFsyncLogs(failing: { _ in true })
        let board = fixture.board
        let submit = PlannedCall(
            callID: 1,
            plan: SubmitPlan(callID: 1, board: board, request: SubmitRequest(boardID: "b", playerID: "p", score: 100), shardCount: 1),
            deadline: nil)
        let written = try await fixture.runRound([[submit]])
        let count = PlannedCall(callID: 2, plan: ResetAnswerPlan(callID: 2, archived: board, shardCount: 1), deadline: nil)
        let reset = try await fixture.runRound([[count]])
        try await fixture.shutdown()
        logs.remove()
        // The write was refused: not durable, gone at the next start.
        #expect(written[1]?.status?.code == .unavailable, "\(written)")
        // ...so the reset, whose writesDurable trip failed, does not count it as archived.
        if case .resetBoard(let response)? = reset[2]?.result {
            Issue.record("reset answered OK with archived_entries \(response.archivedEntries) though its shard's writesDurable trip failed")
        }
        #expect(reset[2]?.status?.code == .unavailable)
        #expect(reset[2]?.status?.message.contains("do not repeat the reset") == true, "\(String(describing: reset[2]))")
    }
}
