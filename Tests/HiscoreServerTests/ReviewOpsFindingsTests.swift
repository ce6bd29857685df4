import Foundation
import HiscoreClient
import HiscoreCore
@testable import HiscoreServer
import HiscoreWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Findings of the operations review (season timer, concurrent resets, heavy-load summary).
@Suite("Review: operations findings", .serialized)
struct ReviewOpsFindingsTests {
    private static func start(_ clock: TestClock, onRead: ClockReadLatch? = nil) async throws -> HiscoreServer {
        var config = testServerConfiguration(shards: 2)
        config.clock = {
            onRead?.noteRead()
            return clock.read()
        }
        var logger = Logger(label: "review-ops")
        logger.logLevel = .warning
        return try await HiscoreServer.start(configuration: config, logger: logger)
    }

    /// Creates 60 boards reset daily at midnight, keeping one archived period, each with one
    /// entry; their ids. From the second reset on, each reset prunes a period: a trip to the
    /// shards, which needs their loops running and makes a pass over the boards take a while.
    private static func createNightlyBoards(_ client: HiscoreClient) async throws -> [String] {
        let boards = (0..<60).map { "b\($0)" }
        let schedule = ResetSchedule(period: .daily, minuteOfDay: 0, keepPeriods: 1)
        for board in boards {
            try await client.createBoard(BoardConfig(id: board, resetSchedule: schedule))
            _ = try await client.submit(board: board, player: "p", score: 1)
        }
        return boards
    }

    /// Asks `describe_board` until the live period is `period` or `seconds` have passed; the
    /// period last seen. (The season timer runs on real time, at least a second after it is
    /// armed: there is nothing else to wait on.)
    private static func waitForPeriod(
        _ client: HiscoreClient, board: String, period: UInt64, seconds: Double
    ) async throws -> UInt64 {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var seen = try await client.describeBoard(board).currentPeriodID
        while seen != period && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            seen = try await client.describeBoard(board).currentPeriodID
        }
        return seen
    }

    /// SeasonKeeper.armTimer runs only at start-up and after each timer run: creating a board
    /// with a schedule does not arm it, so on a server that had no scheduled board (or whose
    /// next wake-up is later than the new board's boundary) the new board is not reset at its
    /// boundary — only at the next restart or the next unrelated timer run.
    @Test("a board created with a schedule is reset by the server's timer at its first boundary")
    func createdScheduledBoardArmsTheTimer() async throws {
        let boundary = ResetScheduleTestsDates.micros(2026, 11, 29)  // 00:00 UTC
        let clock = TestClock(boundary - 200_000)  // 0.2 s before it
        let server = try await Self.start(clock)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        try await client.createBoard(BoardConfig(id: "nightly", resetSchedule: ResetSchedule(period: .daily, minuteOfDay: 0)))
        _ = try await client.submit(board: "nightly", player: "alice", score: 5)
        clock.set(boundary + 60_000_000)  // 00:01: the boundary has passed
        // A timer armed at creation fires after its one-second minimum delay.
        let period = try await Self.waitForPeriod(client, board: "nightly", period: 2, seconds: 30)
        #expect(period == 2, "the boundary passed but no reset ran: the season timer was never armed for this board")
        try await client.close()
        await server.shutdown()
    }

    /// A run of due resets still going when the server shut down armed the season timer again
    /// afterwards, on a loop that had stopped: debug builds trapped on the promise NIO leaked
    /// there, taking the test process down (seen twice in full test runs).
    @Test("after shutdown, a run of due resets resets nothing and arms no timer")
    func noSeasonTimerAfterShutdown() async throws {
        let boundary = ResetScheduleTestsDates.micros(2026, 11, 29)
        let clock = TestClock(boundary - 60_000_000)
        let server = try await Self.start(clock)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        try await client.createBoard(BoardConfig(id: "nightly", resetSchedule: ResetSchedule(period: .daily, minuteOfDay: 0)))
        _ = try await client.submit(board: "nightly", player: "alice", score: 5)
        try await client.close()
        clock.set(boundary + 60_000_000)
        await server.shutdown()
        // Before the fix the run reset the board, waiting for shards whose loops had stopped:
        // it never returned. The race bounds the test (10 s) instead of leaving it hanging.
        let resets = await result(within: .seconds(10)) { await server.runDueResets() }
        #expect(resets == [], "after shutdown, a run of due resets \(resets == nil ? "did not return within 10 s" : "reset \(resets ?? [])")")
    }

    /// A run of due resets still going when shutdown began went on resetting board after board;
    /// a reset whose trip to the shards was handed to a loop shutdown had already stopped never
    /// finished (its promise leaked: debug builds trap on it), so the run never returned.
    @Test("shutdown during a run of due resets: the run stops after the board it is on, and both return")
    func shutdownDuringDueResets() async throws {
        let t0 = ResetScheduleTestsDates.micros(2026, 11, 28, 23, 58)
        let clock = TestClock(t0)
        let latch = ClockReadLatch()
        let server = try await Self.start(clock, onRead: latch)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        let boards = try await Self.createNightlyBoards(client)
        clock.set(t0 + 3 * 60_000_000)
        #expect(Set(await server.runDueResets()) == Set(boards))
        try await client.close()
        clock.set(t0 + 86_400_000_000 + 3 * 60_000_000)  // the next boundary passed
        latch.arm()
        let run = Task { await server.runDueResets() }
        await latch.waitForRead()  // the run has begun: it reads the clock once it has checked for shutdown
        await server.shutdown()
        let resets = await result(within: .seconds(10)) { await run.value }
        #expect(resets != nil, "a run of due resets did not return within 10 s of shutdown")
        #expect((resets?.count ?? 0) < boards.count, "the run reset all \(boards.count) boards after shutdown began")
    }

    /// runDueResets checks `due > board.periodStartedAt` on the handle it listed, then resets
    /// whatever board is live under that id by then (BoardDirectory.reset takes only the id). A
    /// reset made meanwhile (reset_board, or another runDueResets) is not seen: the board is
    /// reset a second time, its new period archived at `due` — before that period started.
    @Test("a boundary resets each board once even when resets overlap")
    func overlappingResetsResetOnce() async throws {
        let t0 = ResetScheduleTestsDates.micros(2026, 11, 28, 23, 58)
        let clock = TestClock(t0)
        let server = try await Self.start(clock)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
        let boards = try await Self.createNightlyBoards(client)
        clock.set(t0 + 3 * 60_000_000)
        #expect(Set(await server.runDueResets()) == Set(boards))
        for board in boards { _ = try await client.submit(board: board, player: "p", score: 2) }
        clock.set(t0 + 86_400_000_000 + 3 * 60_000_000)  // the next boundary passed
        async let first = server.runDueResets()
        async let second = server.runDueResets()
        let (a, b) = await (first, second)
        #expect(a.count + b.count == boards.count, "\(a.count) + \(b.count) resets for \(boards.count) boards")
        var periods: [String: UInt64] = [:]
        for board in boards {
            let info = try await client.describeBoard(board)
            if info.currentPeriodID != 3 { periods[board] = info.currentPeriodID }
        }
        #expect(periods.isEmpty, "boards reset more than once: \(periods)")
        try await client.close()
        await server.shutdown()
    }

    /// Telemetry.endOfBatch reports the calls of a loop's whole window as calls per second,
    /// however long the window was: a window closes only at the next read batch, so after a
    /// quiet spell a few calls read as a heavy load.
    @Test("the heavy-load line is not logged for 900 calls spread over ten seconds (capacity 1000)")
    func heavyLoadCountsPerSecond() async throws {
        let log = CapturedLog()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let telemetry = try await Telemetry.make(loops: [loop], capacityCallsPerSecond: 1000, logger: log.logger)
        try await loop.submit {
            let metrics = telemetry.local(loop)!
            let start = NIODeadline.now()
            metrics.windowStart = start
            for _ in 0..<900 { metrics.record(.ping, status: .ok, micros: 5) }  // 90 calls/s over 10 s
            telemetry.endOfBatch(metrics, now: start + .seconds(10))
        }.get()
        try await group.shutdownGracefully()
        #expect(!log.contains("heavy load"), "90 calls/s against a capacity of 1000 was logged as heavy load")
    }
}

/// `operation`'s result, or nil when it has not returned within `limit` (it is left running:
/// a call that hangs must fail its test, not stall the whole run). Not `within` (StreamTests):
/// its task group waits for every child, so a call that ignores cancellation hangs it too.
private func result<T: Sendable>(within limit: Duration, _ operation: @escaping @Sendable () async -> T) async -> T? {
    let first = FirstResult<T?>()
    return await withCheckedContinuation { continuation in
        first.set(continuation)
        Task { first.resume(await operation()) }
        Task {
            try? await sleepCountingRunTime(limit)
            first.resume(nil)
        }
    }
}

/// Lets a test wait until the server's clock is read: after `arm()`, the first read resumes
/// `waitForRead()` (at once if the read came first).
private final class ClockReadLatch: Sendable {
    private let state = NIOLockedValueBox<(armed: Bool, read: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, false, nil))

    func arm() { state.withLockedValue { $0 = (true, false, nil) } }

    func noteRead() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard state.armed, !state.read else { return nil }
            state.read = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func waitForRead() async {
        await withCheckedContinuation { continuation in
            let readAlready = state.withLockedValue { state -> Bool in
                guard !state.read else { return true }
                state.waiter = continuation
                return false
            }
            if readAlready { continuation.resume() }
        }
    }
}

/// Resumes its continuation once, with whichever value comes first.
private final class FirstResult<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?
    /// The first value, when it came before the continuation.
    private var early: [T] = []
    private var done = false

    func set(_ continuation: CheckedContinuation<T, Never>) {
        lock.lock()
        defer { lock.unlock() }
        if let value = early.first {
            continuation.resume(returning: value)
        } else {
            self.continuation = continuation
        }
    }

    func resume(_ value: T) {
        lock.lock()
        defer { lock.unlock() }
        guard !done else { return }
        done = true
        if let continuation {
            self.continuation = nil
            continuation.resume(returning: value)
        } else {
            early = [value]
        }
    }
}
