import HiscoreCore
import HiscoreWire
import NIOCore

extension HiscoreClient {
    /// Opens a subscription. The sequence yields the snapshot first, then changes; it ends
    /// normally when the consumer stops iterating (the call is cancelled on the server) and throws
    /// `HiscoreError` when the server ends the stream: NOT_FOUND (the board was deleted), ABORTED
    /// (its season was reset: subscribe again for the new period), UNAUTHENTICATED (the player
    /// token it was opened with expired), RESOURCE_EXHAUSTED (a feed fell too far behind, an
    /// event would exceed max_frame_bytes, or past a subscription bound at subscribe time),
    /// ALREADY_EXISTS (a second feed on one board), INVALID_ARGUMENT and the like (a bad
    /// request), or UNAVAILABLE (the server is shutting down or the connection was lost):
    /// docs/protocol.md, "Ending a stream".
    ///
    /// At most `maxBufferedEvents` events wait for the consumer: the connection keeps being read
    /// for the other calls, so a consumer slower than the board would otherwise grow the client
    /// without bound. Past it the subscription is cancelled on the server and the sequence
    /// throws RESOURCE_EXHAUSTED after the events already buffered: subscribe again for a fresh
    /// snapshot (events cannot be skipped: window changes apply to the window before them).
    ///
    ///     var view = StandingsView()
    ///     for try await event in client.subscribe(board: "weekly", target: .top(10)) {
    ///         view.apply(event)
    ///         print(view.window.map { "\($0.rank) \($0.playerID)" })
    ///     }
    public func subscribe(
        board: String, target: SubscriptionTarget, minInterval: Duration = .zero, mode: RankMode? = nil,
        maxBufferedEvents: Int = HiscoreClient.defaultMaxBufferedEvents
    ) -> AsyncThrowingStream<RankEvent, any Error> {
        let millis = minInterval.components.seconds * 1000 + minInterval.components.attoseconds / 1_000_000_000_000_000
        let request = SubscribeRequest(
            boardID: board, target: target, minIntervalMillis: UInt32(clamping: millis), rankMode: mode)
        return subscribe(request, maxBufferedEvents: maxBufferedEvents)
    }

    /// Events a subscription buffers for a slow consumer by default (see `subscribe`).
    public static let defaultMaxBufferedEvents = 10_000

    public func subscribe(
        _ request: SubscribeRequest, maxBufferedEvents: Int = HiscoreClient.defaultMaxBufferedEvents
    ) -> AsyncThrowingStream<RankEvent, any Error> {
        let callID = makeCallID()
        let cancelCallID = makeCallID()
        let limit = max(1, maxBufferedEvents)
        let (stream, continuation) = AsyncThrowingStream<RankEvent, any Error>.makeStream(
            bufferingPolicy: .bufferingOldest(limit))
        let handler = self.handlerBox
        let started = execute {
            handler.value.start(
                RequestEnvelope(callID: callID, method: .subscribe(request)),
                as: .stream(onFrame: { response in
                    if case .event(let event) = response.result {
                        if case .dropped = continuation.yield(event) {
                            // Runs on the loop (a frame callback): stop the stream here and now.
                            handler.value.abandonStream(callID)
                            handler.value.send(RequestEnvelope(callID: cancelCallID, method: .cancel(callID: callID)))
                            continuation.finish(throwing: HiscoreError(
                                .resourceExhausted,
                                "the consumer fell behind: \(limit) events buffered (maxBufferedEvents); subscribe again for a fresh snapshot"))
                        }
                        return
                    }
                    let status = response.status ?? .ok
                    if status.code == .ok || status.code == .cancelled {
                        continuation.finish()
                    } else {
                        continuation.finish(throwing: HiscoreError(status))
                    }
                }))
        }
        guard started else {
            continuation.finish(throwing: HiscoreError(.unavailable, "the client is closed"))
            return stream
        }
        continuation.onTermination = { [self] termination in
            guard case .cancelled = termination else { return }
            execute {
                handler.value.abandonStream(callID)
                handler.value.send(RequestEnvelope(callID: cancelCallID, method: .cancel(callID: callID)))
            }
        }
        return stream
    }
}

/// A client-side copy of what a subscription watches, kept current by applying its events in
/// order: a player's entry, or a window (top N / around a player), or the last feed batch.
public struct StandingsView: Sendable, Equatable {
    /// For player subscriptions: the player's entry and whether it is on the board.
    public private(set) var player: PlayerRankChange?
    /// For top N and around subscriptions: the window, best first.
    public private(set) var window: [WireEntry] = []
    /// For feed subscriptions: the items of the last event.
    public private(set) var lastFeedItems: [FeedItem] = []
    /// The board version of the last event applied.
    public private(set) var boardVersion: UInt64 = 0

    public init() {}

    public mutating func apply(_ event: RankEvent) {
        boardVersion = event.boardVersion
        switch event.change {
        case .player(let change):
            player = change
        case .window(let update):
            window = event.snapshot ? update.entries : WindowDiff.apply(update.changes, to: window)
        case .feed(let items):
            lastFeedItems = items
        }
    }
}
