import Foundation
import HiscoreClient
import HiscoreCore
@testable import HiscoreServer
import HiscoreWire
import NIOCore
import Testing

/// Streams against the answer bound and the server-wide feed budget (a review's findings).
@Suite("Streams: the answer bound and the feed budget")
struct StreamBoundTests {
    /// `AnswerBound` admits a top stream of as many entries as one answer can carry, and the
    /// docs promise that "a page size that works in testing keeps working once players fill
    /// their metadata". But a window's change event names every player that entered *and* every
    /// one that left, each with its full entry (metadata included): up to 2 x the window, plus
    /// a WindowChange's own fields per entry. When the whole window turns over between two
    /// events, the event exceeds max_frame_bytes and the stream is ended with
    /// RESOURCE_EXHAUSTED.
    @Test("a top stream admitted by AnswerBound survives its whole window turning over")
    func windowTurnoverFitsTheFrame() async throws {
        let frame = 16_384
        try await withClient(configure: { $0.limits.maxFrameBytes = frame }) { writer, server in
            _ = try await writer.createBoard(BoardConfig(id: "turn"))
            let fits = AnswerBound(maxFrameBytes: frame).entriesPerAnswer(BoardLimits())  // 36
            let metadata = [UInt8](repeating: 9, count: BoardLimits().maxMetadataBytes)
            @Sendable func id(_ prefix: String, _ index: Int) -> String {
                prefix + String(repeating: "x", count: 124) + String(format: "%03d", index)
            }
            for start in stride(from: 0, to: fits, by: 12) {
                _ = try await writer.submitBatch((start..<min(fits, start + 12)).map {
                    SubmitRequest(boardID: "turn", playerID: id("o", $0), score: Int64($0 + 1), metadata: metadata)
                })
            }
            let reader = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            let outcome: Result<Int, any Error> = try await within(.seconds(30), "the window's change event") {
                var events = reader.subscribe(board: "turn", target: .top(UInt32(fits)), minInterval: .milliseconds(3_000))
                    .makeAsyncIterator()
                guard case .window(let first)? = try await events.next()?.change, first.entries.count == fits else {
                    return .success(-1)
                }
                // A whole new top, well inside one interval: one change event of `fits` ENTERED
                // and `fits` LEFT changes.
                for start in stride(from: 0, to: fits, by: 12) {
                    _ = try await writer.submitBatch((start..<min(fits, start + 12)).map {
                        SubmitRequest(boardID: "turn", playerID: id("n", $0), score: Int64(1_000 + $0), metadata: metadata)
                    })
                }
                do {
                    guard let event = try await events.next(), case .window(let update) = event.change else { return .success(-2) }
                    // The new window whole (a snapshot): smaller than its 2 x `fits` changes.
                    let newTop = update.entries.map(\.playerID)
                    return .success(event.snapshot && newTop == (0..<fits).reversed().map { id("n", $0) } ? fits : -3)
                } catch {
                    return .failure(error)
                }
            }
            switch outcome {
            case .success(let entries): #expect(entries == fits)
            case .failure(let error): Issue.record("the top-\(fits) stream (admitted by AnswerBound) was ended: \(error)")
            }
            try? await reader.close()
        }
    }

    /// Past `max_feed_backlog_bytes`, the hub that adds the next item ends *its own* feeds
    /// holding more than an event's worth; the feed that holds the budget (a stalled consumer
    /// on a board that no longer gets writes) is never looked at. A healthy feed on a busy board
    /// (2 s interval, a few hundred KB per interval) is ended, while the stalled one keeps its
    /// megabytes for as long as its board stays quiet.
    @Test("the server-wide feed budget ends the feed that holds it, not a healthy one on another board")
    func feedBudgetEndsTheHolder() async throws {
        try await withClient(configure: { $0.limits.maxFeedBacklogBytes = 4 << 20 }) { writer, server in
            let metadata = [UInt8](repeating: 5, count: 256)
            for board in ["quiet", "busy"] { _ = try await writer.submit(board: board, player: "seed", score: 0) }
            let stalled = try RawConnection(port: server.localPort, timeoutSeconds: 10)
            _ = stalled.handshake()
            stalled.send(RequestEnvelope(callID: 1, method: .subscribe(SubscribeRequest(
                boardID: "quiet", target: .feed, minIntervalMillis: 3_600_000))))
            guard case .event? = stalled.readFrame()?.result else { Issue.record("no feed snapshot"); return }
            // 8,000 items of ~421 counted bytes: ~3.4 MB held by the stalled feed, under 4 MiB.
            for start in stride(from: 0, to: 8_000, by: 200) {
                _ = try await writer.submitBatch((start..<(start + 200)).map {
                    SubmitRequest(boardID: "quiet", playerID: String(format: "q%04d", $0), score: Int64($0), metadata: metadata)
                })
            }
            let reader = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            let outcome: Result<Int, any Error> = try await within(.seconds(30), "the healthy feed's items") {
                var feed = reader.subscribe(board: "busy", target: .feed, minInterval: .milliseconds(2_000)).makeAsyncIterator()
                guard try await feed.next()?.snapshot == true else { return .success(-1) }
                // ~840 KB of items within one 2 s interval, which the feed then reads.
                for start in stride(from: 0, to: 2_000, by: 200) {
                    _ = try await writer.submitBatch((start..<(start + 200)).map {
                        SubmitRequest(boardID: "busy", playerID: String(format: "b%04d", $0), score: Int64($0), metadata: metadata)
                    })
                }
                var received = 0
                do {
                    while received < 2_000 {
                        guard case .feed(let items)? = try await feed.next()?.change else { break }
                        received += items.count
                    }
                } catch {
                    return .failure(error)
                }
                return .success(received)
            }
            switch outcome {
            case .success(let received): #expect(received == 2_000)
            case .failure(let error):
                Issue.record("the healthy feed of board busy was ended while the stalled feed of board quiet kept its backlog: \(error)")
            }
            try? await reader.close()
        }
    }

    /// A feed the server-wide budget ends was its board's last subscription: the board's hub
    /// goes with it, as it does when the last subscriber cancels. Before, it stayed registered
    /// (receiving every note of the board) until the board was deleted or another of its
    /// subscriptions ended.
    @Test("a hub emptied by the feed budget leaves the registry")
    func hubEmptiedByTheBudgetIsDropped() async throws {
        try await withClient(configure: { $0.limits.maxFeedBacklogBytes = 1 << 20 }) { writer, server in
            let metadata = [UInt8](repeating: 5, count: 256)
            _ = try await writer.submit(board: "quiet", player: "seed", score: 0)
            let stalled = try RawConnection(port: server.localPort, timeoutSeconds: 10)
            _ = stalled.handshake()
            stalled.send(RequestEnvelope(callID: 1, method: .subscribe(SubscribeRequest(
                boardID: "quiet", target: .feed, minIntervalMillis: 3_600_000))))
            guard case .event? = stalled.readFrame()?.result else { Issue.record("no feed snapshot"); return }
            #expect(await server.streams.hubCount() == 1)
            // 4,000 items of ~421 counted bytes: ~1.7 MB, past the 1 MiB budget, which asks
            // this board (the only holder) to end its lagging feed.
            for start in stride(from: 0, to: 4_000, by: 200) {
                _ = try await writer.submitBatch((start..<(start + 200)).map {
                    SubmitRequest(boardID: "quiet", playerID: String(format: "q%04d", $0), score: Int64($0), metadata: metadata)
                })
            }
            var final: Status?
            while let frame = stalled.readFrame() {
                if let status = frame.status { final = status; break }
            }
            #expect(final?.code == .resourceExhausted, "\(String(describing: final))")
            // The hub left in the task that sent the final frame; this count runs after it.
            let hubsLeft = await server.streams.hubCount()
            let hubs = await server.streams.diagnosis()
            #expect(hubsLeft == 0, "\(hubs)")
        }
    }
}
