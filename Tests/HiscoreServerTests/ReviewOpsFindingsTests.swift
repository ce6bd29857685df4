import Foundation
import HiscoreClient
import HiscoreCore
@testable import HiscoreServer
import HiscoreWire
import Logging
import NIOCore
import NIOPosix
import Testing

/// Findings of the operations review (season timer, concurrent resets, heavy-load summary).
@Suite("Review: operations findings", .serialized)
struct ReviewOpsFindingsTests {
    private static func start(_ clock: TestClock) async throws -> HiscoreServer {
        var config = testServerConfiguration(shards: 2)
        config.clock = { clock.read() }
        var logger = Logger(label: "review-ops")
        logger.logLevel = .warning
        return try await HiscoreServer.start(configuration: config, logger: logger)
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
        let boards = (0..<60).map { "b\($0)" }
        // keep_periods 1: from the second reset on, each reset prunes a period (a trip to the
        // shards), so a pass over the boards takes a while.
        let schedule = ResetSchedule(period: .daily, minuteOfDay: 0, keepPeriods: 1)
        for board in boards {
            try await client.createBoard(BoardConfig(id: board, resetSchedule: schedule))
            _ = try await client.submit(board: board, player: "p", score: 1)
        }
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
