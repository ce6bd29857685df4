import HiscoreCore
import HiscoreStorage
import HiscoreWire
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
    private let timer = NIOLockedValueBox<Scheduled<Void>?>(nil)

    init(
        directory: BoardDirectory, executor: BatchExecutor, streams: StreamCoordinator?, loop: any EventLoop,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.directory = directory
        self.executor = executor
        self.streams = streams
        self.loop = loop
        self.clock = clock
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
        let response = ResponseEnvelope.ok(callID, .resetBoard(ResetBoardResponse(
            archivedPeriodID: outcome.archived.periodID, archivedEntries: UInt64(max(0, outcome.archived.size)))))
        guard !outcome.pruned.isEmpty else { return loop.makeSucceededFuture(response) }
        let promise = loop.makePromise(of: ResponseEnvelope.self)
        loop.execute { [executor, loop] in
            let calls = outcome.pruned.map {
                PlannedCall(callID: 0, plan: DeleteBoardPlan(callID: 0, boards: [$0], shardCount: executor.shards.count), deadline: nil)
            }
            executor.run(calls, on: loop, receiver: ClosureBatchReceiver(finished: { promise.succeed(response) }))
        }
        return promise.futureResult
    }

    /// Resets every board whose schedule has a boundary after its live period started; returns the
    /// ids reset. Then arms the timer for the next boundary.
    @discardableResult
    func runDueResets() async -> [String] {
        let now = clock()
        var reset: [String] = []
        for board in directory.scheduledBoards() {
            guard let schedule = board.config.resetSchedule else { continue }
            let due = schedule.lastBoundary(atOrBefore: now)
            guard due > board.periodStartedAt else { continue }
            // Under the directory's lock the live period must still be one that started before
            // `due`: a reset made since the list was taken (reset_board, another run) ended it.
            let response = try? await self.reset(callID: 0, boardID: board.config.id, at: due, onlyIfStartedBefore: due).get()
            if let response, response.status == nil {
                reset.append(board.config.id)
            }
        }
        armTimer()
        return reset
    }

    /// Schedules one wake-up at the earliest next boundary (none when no board has a schedule).
    func armTimer() {
        let now = clock()
        let next = directory.scheduledBoards().compactMap { board in
            board.config.resetSchedule?.nextBoundary(after: max(now, board.periodStartedAt))
        }.min()
        timer.withLockedValue { scheduled in
            scheduled?.cancel()
            scheduled = nil
            guard let next else { return }
            let delay = TimeAmount.microseconds(max(1_000_000, next - now))
            scheduled = loop.scheduleTask(in: delay) { [self] in
                Task { await self.runDueResets() }
            }
        }
    }

    func stop() {
        timer.withLockedValue { $0?.cancel() }
    }
}

typealias DirectoryReset = BoardDirectory.Reset
