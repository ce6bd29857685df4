import Dispatch
@testable import HiscoreServer
import HiscoreCore
import HiscoreWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// `PhaseRun`'s local-first phases: calls that need only the shard on their own loop run before
/// the calls that wait for another loop, so that their next steps share the other calls' trip;
/// never ahead of an earlier call with an operation on that shard, and never writes that wait for
/// a group fsync.
@Suite("Local-first phases", .timeLimit(.minutes(1)))
struct LocalFirstTests {
    /// A player id of `board` owned by `shard` (of two).
    private static func player(on shard: Int, of board: BoardHandle, _ prefix: String) -> String {
        for index in 0... {
            let id = "\(prefix)\(index)"
            if board.shard(for: id, shardCount: 2) == shard { return id }
        }
        return ""
    }

    private static func submit(_ id: UInt64, _ player: String, _ score: Int64, board: BoardHandle, skipRanks: Bool = true) -> PlannedCall {
        PlannedCall(
            callID: id,
            plan: SubmitPlan(
                callID: id, board: board,
                request: SubmitRequest(boardID: "b", playerID: player, score: score, skipRanks: skipRanks), shardCount: 2),
            deadline: nil)
    }

    private static func entries(_ id: UInt64, _ players: [String], board: BoardHandle) throws -> PlannedCall {
        let ranking = try RankResolution.make(board: board, requested: nil, shardCount: 2).get()
        return PlannedCall(callID: id, plan: EntriesPlan(callID: id, ranking: ranking, playerIDs: players), deadline: nil)
    }

    /// Holds `loop` busy until the returned semaphore is signalled (or 20 s pass: a failing test
    /// must not hang the suite); returns once the hold has begun.
    private static func hold(_ loop: any EventLoop, reportingOn origin: any EventLoop) async throws -> DispatchSemaphore {
        let release = DispatchSemaphore(value: 0)
        // A promise of the held loop would tell its waiters through that loop.
        let held = origin.makePromise(of: Void.self)
        loop.execute {
            held.succeed(())
            _ = release.wait(timeout: .now() + 20)
        }
        try await held.futureResult.get()
        return release
    }

    @Test("while the other loop is held, a call that needs only this loop's shard is answered; one that needs the other waits")
    func localCallsDoNotWaitForTheOtherLoop() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let (board, loop) = (fixture.board, fixture.loop)
        let local = Self.player(on: 0, of: board, "l")
        let remote = Self.player(on: 1, of: board, "r")
        let release = try await Self.hold(fixture.loops[1], reportingOn: loop)
        let seenAtLocalAnswer = NIOLockedValueBox<[UInt64]>([])
        let answers = try await fixture.runRound(
            [[Self.submit(1, remote, 5, board: board)], [Self.submit(2, local, 7, board: board)]],
            watch: 2
        ) { answered in
            seenAtLocalAnswer.withLockedValue { $0 = answered.keys.sorted() }
            release.signal()
        }
        try await fixture.shutdown()
        // Answered while the other loop was still held: the remote submit was not.
        #expect(seenAtLocalAnswer.withLockedValue { $0 } == [2])
        #expect(answers[1]?.status == nil && answers[2]?.status == nil, "\(answers)")
    }

    @Test("a call that sits the local pass out keeps its place: a later write on this loop's shard does not overtake it")
    func earlierCallOnThisShardKeepsItsPlace() async throws {
        let fixture = try ExecutorFixture(shardCount: 2)
        let board = fixture.board
        let local = Self.player(on: 0, of: board, "l")
        let remote = Self.player(on: 1, of: board, "r")
        _ = try await fixture.runRound(
            [[Self.submit(1, local, 10, board: board), Self.submit(2, remote, 20, board: board)]])
        // One round: an entries call reading both players (on both shards, so it waits for the
        // other loop), then a write raising the local player (this loop's shard only).
        let answers = try await fixture.runRound(
            [[try Self.entries(3, [local, remote], board: board)], [Self.submit(4, local, 99, board: board)]])
        try await fixture.shutdown()
        guard case .entries(let read)? = answers[3]?.result else {
            Issue.record("no entries answer: \(answers)")
            return
        }
        #expect(read.entries.first { $0.playerID == local }?.score == 10, "\(read.entries)")
        guard case .submit(let written)? = answers[4]?.result else {
            Issue.record("no submit answer: \(answers)")
            return
        }
        #expect(written.entry.score == 99)
    }

    /// The rule itself, on steps as plans make them: which calls sit the local pass out.
    @Test("which calls go first: only this shard's, none after an earlier waiting call with an operation here, no fsync writes, and only when another call waits for another loop")
    func whoGoesFirst() throws {
        let board = try BoardDirectory(shardCount: 2, maxBoards: 10).boardCreatingDefault("b")
        let ref = BoardRef(board)
        let plan = CountPlan(callID: 0, board: board, request: CountRequest(boardID: "b"), shardCount: 2)
        func call(_ step: PlanStep) -> PendingCall {
            PendingCall(call: PlannedCall(callID: 0, plan: plan, deadline: nil), step: step, receiver: 0)
        }
        let readHere = PlanStep.runOne(ShardCall(shard: 0, operation: .lookupOne(ref, playerID: "a", counting: true)))
        let readThere = PlanStep.runOne(ShardCall(shard: 1, operation: .lookupOne(ref, playerID: "b", counting: true)))
        let writeHere = PlanStep.runOne(ShardCall(shard: 0, operation: .submit(ref, SubmitRequest(boardID: "b", playerID: "a", score: 1))))
        let countHereToo = PlanStep.runOnEach(.countBetter(ref, keys: CountKeys(RankKey(word0: 0, word1: 0, word2: 0)), orEqual: false), shards: 0..<2, skipping: nil)
        let countElsewhere = PlanStep.runOnEach(.countBetter(ref, keys: CountKeys(RankKey(word0: 0, word1: 0, word2: 0)), orEqual: false), shards: 0..<2, skipping: 0)
        func waits(_ steps: [PlanStep], fsync: Bool = false) -> [Bool] {
            var calls = steps.map(call)
            PhaseRun.markLocalFirst(&calls, localShard: 0, writesWaitForDurability: fsync)
            return calls.map(\.waits)
        }
        // This shard's reads and writes go first while others wait for the other loop.
        #expect(waits([readThere, readHere, writeHere, countElsewhere]) == [true, false, false, true])
        // A call reaching both shards waits, and every call after it with an operation here too.
        #expect(waits([readHere, countHereToo, readHere, readThere]) == [false, true, true, true])
        // fsync mode: a write here waits (the others would wait for its fsync), and so do the
        // calls after it here; a read before it still goes first.
        #expect(waits([readHere, writeHere, readHere, readThere], fsync: true) == [false, true, true, true])
        #expect(waits([readHere, writeHere, readThere]) == [false, false, true])
        // Nobody waits for the other loop, or nobody goes first: one ordinary phase.
        #expect(waits([readHere, writeHere]) == [false, false])
        #expect(waits([readThere, countHereToo]) == [false, false])
        #expect(waits([writeHere, readThere], fsync: true) == [false, false])
    }
}
