import HiscoreCore
import HiscoreStorage
import HiscoreWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Season resets: by hand (`reset_board`) or on a board's schedule. A reset is a catalog change
/// (the live incarnation becomes archived period N; an empty incarnation takes over), so it costs
/// the same whatever the board's size: no entry is copied or moved.
///
/// Exactly once: a scheduled reset starts the new period *at the boundary* it was due for, so a
/// boundary is due only while the live period started before it. After a restart, boundaries missed
/// while the server was down collapse into one reset (at the latest of them), and none repeats.
/// One timer (for the earliest next boundary of any board) runs only while some board has a
/// schedule; `clock` is injectable so tests never wait for real days.
final class SeasonKeeper: Sendable {
    private let directory: BoardDirectory
    private let executor: BatchExecutor
    private let streams: StreamCoordinator?
    private let loop: any EventLoop
    let clock: @Sendable () -> Int64
    private let logger: Logger
    /// The wake-up, whether `stop()` was called, and the runs of due resets going now. A run
    /// still going when the server shuts down must neither arm a timer nor hand a reset's trip to
    /// a loop that has stopped (the trip's promise would never complete, and NIO traps on it in
    /// debug builds): it stops before its next board, and `stop()` waits until it has.
    private let schedule = NIOLockedValueBox<ScheduleState>(ScheduleState())

    private struct ScheduleState {
        var scheduled: Scheduled<Void>?
        var stopped = false
        var runsGoing = 0
        /// `stop()` calls waiting for the runs going to end.
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }
    /// The wait before trying again a due reset that failed (the catalog could not be written:
    /// a full disk), doubled per failed run up to `maxRetryDelay`; nil while none failed.
    private let retryDelay = NIOLockedValueBox<TimeAmount?>(nil)
    static let firstRetryDelay = TimeAmount.seconds(1)
    static let maxRetryDelay = TimeAmount.seconds(60)

    init(
        directory: BoardDirectory, executor: BatchExecutor, streams: StreamCoordinator?, loop: any EventLoop,
        clock: @escaping @Sendable () -> Int64, logger: Logger = Logger(label: "hiscored")
    ) {
        self.directory = directory
        self.executor = executor
        self.streams = streams
        self.loop = loop
        self.clock = clock
        self.logger = logger
    }

    /// Resets `boardID` at `at` (µs), ending its streams with ABORTED and dropping pruned periods.
    func reset(callID: UInt64, boardID: String, at: Int64, onlyIfStartedBefore: Int64? = nil) -> EventLoopFuture<ResponseEnvelope> {
        let outcome: DirectoryReset
        do {
            guard let reset = try directory.reset(boardID, at: at, onlyIfStartedBefore: onlyIfStartedBefore) else {
                return loop.makeSucceededFuture(.failure(callID: callID, CallValidation.boardNotFound(boardID)))
            }
            outcome = reset
        } catch {
            return loop.makeSucceededFuture(.failure(callID: callID, Status(.unavailable, "cannot record the reset durably: \(error)")))
        }
        streams?.boardEnded(outcome.archived, Status(
            .aborted, "board \(boardID) was reset: period \(outcome.archived.periodID) is archived; subscribe again for period \(outcome.live.periodID)"))
        // The answer counts the archived period once the shards have finished the writes they
        // had begun on it (`ResetAnswerPlan`); pruned periods are deleted in the same round.
        let promise = loop.makePromise(of: ResponseEnvelope.self)
        let origin = callID == 0 ? "at its scheduled boundary" : "by reset_board"
        let pruned = outcome.pruned.count
        promise.futureResult.whenSuccess { [logger] answer in
            guard case .resetBoard(let result)? = answer.result else { return }
            logger.info(
                "board \(boardID): season reset \(origin): period \(result.archivedPeriodID) archived with \(result.archivedEntries) \(result.archivedEntries == 1 ? "entry" : "entries"), period \(outcome.live.periodID) live\(pruned > 0 ? ", \(pruned) oldest \(pruned == 1 ? "period" : "periods") deleted (keep_periods)" : "")")
        }
        loop.execute { [executor, loop] in
            let shardCount = executor.shards.count
            var calls = [
                PlannedCall(
                    callID: callID, plan: ResetAnswerPlan(callID: callID, archived: outcome.archived, shardCount: shardCount),
                    deadline: nil)
            ]
            // The deletions' answers are not the reset's: another call id than its own.
            let pruneID = callID &+ 1
            calls += outcome.pruned.map {
                PlannedCall(callID: pruneID, plan: DeleteBoardPlan(callID: pruneID, boards: [$0], shardCount: shardCount), deadline: nil)
            }
            var answer: ResponseEnvelope?
            executor.run(calls, on: loop, receiver: ClosureBatchReceiver(
                deliver: { response in
                    if response.callID == callID { answer = response }
                },
                finished: {
                    promise.succeed(answer ?? .failure(callID: callID, Status(.internal, "the reset's count did not complete")))
                }))
        }
        return promise.futureResult
    }

    /// Resets every board whose schedule has a boundary after its live period started; returns the
    /// ids reset. Then arms the timer for the next boundary, or sooner to try again a reset that
    /// failed: a season that stayed live past its boundary (a full disk) is logged and retried
    /// every few seconds, up to a minute apart, rather than left live until the next boundary.
    /// The reset, once it goes through, still starts the new period at the boundary it was due
    /// for, so a late reset archives the same season an on-time one would have.
    @discardableResult
    func runDueResets() async -> [String] {
        let started = schedule.withLockedValue { state -> Bool in
            guard !state.stopped else { return false }
            state.runsGoing += 1
            return true
        }
        guard started else { return [] }
        let reset = await resetDueBoards()
        armTimer()
        let waiters = schedule.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.runsGoing -= 1
            assert(state.runsGoing >= 0, "a run of due resets ended twice")
            guard state.runsGoing == 0 else { return [] }
            defer { state.stopWaiters = [] }
            return state.stopWaiters
        }
        for waiter in waiters { waiter.resume() }
        return reset
    }

    /// The body of `runDueResets`: stops before the next board once `stop()` was called.
    private func resetDueBoards() async -> [String] {
        let now = clock()
        var reset: [String] = []
        var failed = false
        for board in directory.scheduledBoards() {
            guard !schedule.withLockedValue({ $0.stopped }) else { break }
            guard let resets = board.config.resetSchedule else { continue }
            let due = resets.lastBoundary(atOrBefore: now)
            guard due > board.periodStartedAt else { continue }
            // Under the directory's lock the live period must still be one that started before
            // `due`: a reset made since the list was taken (reset_board, another run) ended it.
            let response = try? await self.reset(callID: 0, boardID: board.config.id, at: due, onlyIfStartedBefore: due).get()
            if let response, response.status == nil {
                reset.append(board.config.id)
            } else if let status = response?.status, status.code == .unavailable {
                failed = true
                logger.error("board \(board.config.id): the scheduled season reset due at \(due) µs failed: \(status.message); its season stays live and the reset is tried again (it still ends the season at that boundary)")
            }
        }
        retryDelay.withLockedValue { delay in
            guard failed else { return delay = nil }
            delay = delay.map { min($0 * 2, Self.maxRetryDelay) } ?? Self.firstRetryDelay
        }
        return reset
    }

    /// Schedules one wake-up at the earliest next boundary (none when no board has a schedule).
    func armTimer() {
        let now = clock()
        let next = directory.scheduledBoards().compactMap { board in
            board.config.resetSchedule?.nextBoundary(after: max(now, board.periodStartedAt))
        }.min()
        let retry = retryDelay.withLockedValue { $0 }
        schedule.withLockedValue { state in
            state.scheduled?.cancel()
            state.scheduled = nil
            guard !state.stopped, next != nil || retry != nil else { return }
            var delay = next.map { TimeAmount.microseconds(max(1_000_000, $0 - now)) } ?? Self.maxRetryDelay
            if let retry { delay = min(delay, retry) }
            state.scheduled = loop.scheduleTask(in: delay) { [self] in
                Task { await self.runDueResets() }
            }
        }
    }

    /// Cancels the timer, and returns once no run of due resets is going: a run stops before its
    /// next board, so this waits for at most one board's reset (which needs the shard loops still
    /// running: call it before they stop).
    func stop() async {
        await withCheckedContinuation { continuation in
            let idle = schedule.withLockedValue { state -> Bool in
                state.stopped = true
                state.scheduled?.cancel()
                state.scheduled = nil
                guard state.runsGoing > 0 else { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}

typealias DirectoryReset = BoardDirectory.Reset
