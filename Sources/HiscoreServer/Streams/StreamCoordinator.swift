import HiscoreCore
import HiscoreWire
import NIOConcurrencyHelpers
import NIOCore

/// Routes everything about subscriptions to the hub of the board, which lives on the board's home
/// shard loop: write notes from the shards, subscribe/cancel from connections, board deletion and
/// shutdown. Each shard loop owns a `HubRegistry` that no other thread touches.
final class StreamCoordinator: Sendable {
    private let registries: [NIOLoopBound<HubRegistry>]
    private let loops: [any EventLoop]
    private let executorBox = NIOLockedValueBox<BatchExecutor?>(nil)
    private let telemetryBox = NIOLockedValueBox<Telemetry?>(nil)
    /// Feed items per event, below the server's `max_frame_bytes`.
    private let feedEventBytes: Int

    /// Builds one registry on each loop. `maxFrameBytes`: the server's bound on a frame, which
    /// feed events must stay under.
    static func make(
        loops: [any EventLoop], maxFrameBytes: Int = ServerLimits().maxFrameBytes,
        maxFeedBacklogBytes: Int = ServerLimits().maxFeedBacklogBytes
    ) async throws -> StreamCoordinator {
        var registries: [NIOLoopBound<HubRegistry>] = []
        for loop in loops {
            registries.append(try await loop.submit { NIOLoopBound(HubRegistry(), eventLoop: loop) }.get())
        }
        let feedEventBytes = StreamRefresh.feedEventBytes(maxFrameBytes: maxFrameBytes)
        return StreamCoordinator(
            registries: registries, loops: loops, feedEventBytes: feedEventBytes,
            feedBudget: FeedBacklogBudget(limitBytes: maxFeedBacklogBytes, slackBytes: feedEventBytes))
    }

    /// What the server's feed backlogs hold, over every board.
    let feedBudget: FeedBacklogBudget

    private init(registries: [NIOLoopBound<HubRegistry>], loops: [any EventLoop], feedEventBytes: Int, feedBudget: FeedBacklogBudget) {
        self.registries = registries
        self.loops = loops
        self.feedEventBytes = feedEventBytes
        self.feedBudget = feedBudget
    }

    func attach(_ executor: BatchExecutor) {
        executorBox.withLockedValue { $0 = executor }
    }

    /// Hubs created from now on count their flushes in their loop's metrics.
    func attach(_ telemetry: Telemetry) {
        telemetryBox.withLockedValue { $0 = telemetry }
    }

    /// From a shard, once per operation batch: notes for boards homed on `shard`.
    func deliver(_ notes: [WriteNote], toShard shard: Int) {
        let registry = registries[shard]
        loops[shard].execute {
            var byBoard: [UInt64: [WriteNote]] = [:]
            for note in notes { byBoard[note.board.incarnation, default: []].append(note) }
            for (incarnation, boardNotes) in byBoard {
                // A feed backlog past its bound ends the slow feeds; a hub they leave empty
                // drops out of the registry (`whenEmptied`).
                registry.value.hubs[incarnation]?.receive(boardNotes)
            }
        }
    }

    func subscribe(
        board: BoardHandle, callID: UInt64, sink: StreamSink, target: SubscriptionTarget, ranking: RankResolution,
        interval: TimeAmount
    ) {
        let shard = board.homeShard
        let registry = registries[shard]
        let loop = loops[shard]
        guard let executor = executorBox.withLockedValue({ $0 }) else { return }
        let telemetry = telemetryBox.withLockedValue { $0 }
        let feedEventBytes = self.feedEventBytes
        let feedBudget = self.feedBudget
        board.addSubscriber(feed: target == .feed)
        loop.execute {
            guard !board.isDeleted else {
                board.removeSubscriber(feed: target == .feed)
                sink.send([StreamFrame(
                    callID: callID, response: .failure(callID: callID, CallValidation.boardNotFound(board.config.id)), isFinal: true)])
                return
            }
            // A season reset archived the board between routing and here: its `boardEnded` has
            // already run on this loop, so a hub made now would serve a frozen period forever.
            guard !board.isArchived else {
                board.removeSubscriber(feed: target == .feed)
                sink.send([StreamFrame(callID: callID, response: .failure(callID: callID, Status(
                    .aborted, "board \(board.config.id) was reset: period \(board.periodID) is archived; subscribe again")), isFinal: true)])
                return
            }
            let hub = registry.value.hub(
                for: board, loop: loop, executor: executor, metrics: telemetry?.local(loop), feedEventBytes: feedEventBytes,
                feedBudget: feedBudget)
            hub.add(Subscription(callID: callID, sink: sink, target: target, ranking: ranking, interval: interval))
        }
    }

    func unsubscribe(board: BoardHandle, connectionID: UInt64, callID: UInt64, feed: Bool) {
        let registry = registries[board.homeShard]
        loops[board.homeShard].execute {
            guard let hub = registry.value.hubs[board.incarnation] else { return }
            if hub.remove(connectionID: connectionID, callID: callID) { board.removeSubscriber(feed: feed) }
        }
    }

    func resume(board: BoardHandle, connectionID: UInt64) {
        let registry = registries[board.homeShard]
        loops[board.homeShard].execute { registry.value.hubs[board.incarnation]?.resume(connectionID: connectionID) }
    }

    /// Every hub's `diagnosis`, loop by loop: for failure messages in tests.
    func diagnosis(connectionID: UInt64? = nil) async -> [String] {
        var lines: [String] = []
        for (registry, loop) in zip(registries, loops) {
            let found = try? await loop.submit {
                registry.value.hubs.values.flatMap { $0.diagnosis(connectionID: connectionID) }
            }.get()
            lines += found ?? ["loop \(loop): no answer"]
        }
        return lines
    }

    /// The hubs registered, over every loop: for tests (a hub is registered while its board
    /// has a subscription).
    func hubCount() async -> Int {
        var count = 0
        for (registry, loop) in zip(registries, loops) {
            count += (try? await loop.submit { registry.value.hubs.count }.get()) ?? 0
        }
        return count
    }

    /// The board is gone: every stream on it ends with NOT_FOUND.
    func boardDeleted(_ board: BoardHandle) {
        boardEnded(board, Status(.notFound, "board \(board.config.id) was deleted"))
    }

    /// Every stream on this incarnation ends with `status` (deletion, season reset).
    func boardEnded(_ board: BoardHandle, _ status: Status) {
        let registry = registries[board.homeShard]
        loops[board.homeShard].execute {
            guard let hub = registry.value.hubs.removeValue(forKey: board.incarnation) else { return }
            hub.endAll(status)
        }
    }
}

/// The hubs of the boards homed on one shard loop.
final class HubRegistry {
    var hubs: [UInt64: SubscriptionHub] = [:]

    func hub(
        for board: BoardHandle, loop: any EventLoop, executor: BatchExecutor, metrics: LoopMetrics?,
        feedEventBytes: Int = StreamRefresh.feedEventBytes, feedBudget: FeedBacklogBudget? = nil
    ) -> SubscriptionHub {
        if let existing = hubs[board.incarnation] { return existing }
        let hub = SubscriptionHub(
            board: board, loop: loop, executor: executor, metrics: metrics, feedEventBytes: feedEventBytes, feedBudget: feedBudget)
        let incarnation = board.incarnation
        hub.whenEmptied = { [weak self, weak hub] in
            // Only this hub: a later one for the same incarnation is not dropped by the old one.
            guard let self, let hub, self.hubs[incarnation] === hub else { return }
            self.hubs[incarnation] = nil
        }
        hubs[incarnation] = hub
        return hub
    }
}
