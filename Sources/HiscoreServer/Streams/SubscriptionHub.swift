import HiscoreCore
import HiscoreWire
import NIOCore

/// All subscriptions of one board, on the board's home shard loop.
///
/// The fan-out, and why it costs what it costs (in the spirit of Redis's t_zset.c notes):
///
/// * Per write — O(1), whatever the number of subscribers. The shard that applied the write adds
///   a `WriteNote` (old key, new key) to a per-batch outbox, and the outbox reaches the hub in one
///   loop hop per batch. The hub appends the note to `pendingNotes`. Nothing
///   is looked up per subscriber, nothing is sent. (Boards without subscribers skip even this: the
///   shard checks an atomic counter.)
/// * Per flush — O((w + m) log w) to find who is affected, for w writes and m subscriptions: a
///   write moving a player from key A to key B changes exactly the ranks of keys between A and B,
///   so a subscriber watching the key interval [lo, hi] (its own key; a window's first..last key;
///   the top N's best..N-th key) is affected iff some write interval intersects [lo, hi]. The
///   write intervals are sorted once by their low end with a running maximum of their high end;
///   each subscriber then needs one binary search. Only affected subscribers are recomputed, with
///   the ordinary query plans batched together (one hop per shard per phase for the whole
///   flush): one Top per distinct N, one Around per window, one Entries call for the player
///   subscribers of dense ranks. Each recomputed state is compared with the last
///   one sent and only differences leave. Top streams that were sent the same window last
///   and get the same answer now send the same event: it is packed once per flush and each
///   frame only wraps its envelope around it (`SharedWindowEvent`), so n identical top-N
///   streams cost one encoding of the event, not n — the copies into each connection's
///   buffer remain, O(event bytes) per stream.
/// * Ordinal and competition player streams (the common case, and the many) are not recomputed at
///   all: with K their counting key (their key; for competition ranks the first key of their
///   score), their rank shift is [B < K] - [A < K] summed over the writes, one binary search in `KeyMoves` per
///   stream, O(m log w) per flush with no shard involved. Only a snapshot, or a stream whose own
///   player was written, asks the shards (`PlayerRefreshPlan`), and that query returns with each
///   shard's note number (`StreamCut`) so the notes its counts already include are skipped.
/// * Coalescing, not queuing: a subscriber holds its last sent state and a dirty flag, never a
///   backlog. Many writes inside one interval produce one event with the final state. If its
///   connection cannot take more bytes, nothing is sent and the subscriber is marked for a fresh
///   snapshot when the connection drains.
/// * No timer runs while nothing changes: a flush is scheduled only when a write note arrives for
///   a board with subscribers (one shortest interval after the last flush) or a new subscription
///   needs its snapshot (at once); each flush then plans the next from its own pass (the earliest
///   time a waiting dirty subscriber falls due). Under load (a flush keeping the loop busy for more than a third of
///   the interval: its own work, not the time it waits for other shards) the hub widens every
///   interval, up to 16x, and narrows it again when flushes get cheap. The loop also serves
///   connections and its shard, so the other two thirds stay theirs.
final class SubscriptionHub {
    let board: BoardHandle
    private let loop: any EventLoop
    private let executor: BatchExecutor
    /// The loop's metrics (nil in tests that build a hub without telemetry); this hub runs on
    /// that loop, so it writes them directly.
    private let metrics: LoopMetrics?
    private var subscriptions: [SubscriptionKey: Subscription] = [:]
    /// The same subscriptions in one array, in the order they were added (a removal moves the
    /// last one into the gap): the flush pass walks it, touching the objects roughly in the
    /// order they were allocated, which the hardware prefetches; the dictionary's hash order
    /// made every object a cache miss.
    private var inOrder: [Subscription] = []
    /// Player streams by player, to find those whose own player was written without hashing
    /// every stream's player on every flush.
    private var playerStreams: [String: [Subscription]] = [:]
    /// The subscriptions of each connection (for `resume`).
    private var byConnection: [UInt64: [Subscription]] = [:]
    /// The writes noted since the last flush.
    private var pendingNotes: [WriteNote] = []
    /// Per shard, the number of the last note received from it.
    private var receivedSequence: [UInt64]
    private var writtenPlayers = Set<String>()
    private var everythingDirty = false
    /// The board's feed items not yet sent to every feed: from the oldest feed position
    /// (`Subscription.feedCursor`) on. Kept once for all feeds; each takes the part after its
    /// own position when its interval has passed and its reader can take bytes.
    private var feedNotes: [WriteNote] = []
    /// The position of `feedNotes[0]` (items before it went to every feed).
    private var feedBase = 0
    /// What `feedNotes` holds, in bytes (ids and metadata, plus `feedNoteOverhead` each).
    private var feedBytes = 0
    /// The server-wide bound on feed backlogs, which `feedBytes` counts toward (reported after
    /// each change, `reportFeedBytes`).
    private let feedBudget: FeedBacklogBudget?
    /// How the budget asks this hub, from any loop, to end its lagging feeds.
    private lazy var relieveFromBudget: @Sendable () -> Void = { [loop, hub = WeakHub(self)] in
        loop.execute { hub.hub?.relieveForBudget() }
    }
    /// The feed subscriptions (a few per board: one per connection at most).
    private var feeds: [Subscription] = []
    private var scheduledFlush: Scheduled<Void>?
    private var scheduledAt: NIODeadline?
    private var flushing = false
    /// The earliest flush asked for while one was running (a new subscription, a drained
    /// reader): the running flush's pass did not see what asked, so it is honoured at its end.
    private var requestedDuringFlush: NIODeadline?
    /// The shortest interval of the subscriptions: lowered when one is added, recomputed by each
    /// flush's pass (so a short-interval subscriber that left stops setting the pace).
    private var shortestInterval = TimeAmount.hours(1)
    private var lastFlush = NIODeadline.uptimeNanoseconds(0)
    /// 1 = as requested; doubled under load.
    private(set) var widening: Int64 = 1
    /// The most the hub stretches its subscribers' intervals under load: a flush pass
    /// that costs more than a third of the (widened) shortest interval doubles the widening up
    /// to this, one that costs under a twelfth halves it (the gap keeps it from flapping).
    static let maxWidening: Int64 = 16
    static let widenAboveIntervalDivisor: Int64 = 3
    static let narrowBelowIntervalDivisor: Int64 = 12

    /// Beyond this many pending write notes the hub stops keeping them and treats every
    /// subscriber as affected (bounded memory under write floods).
    static let maxPendingNotes = 65_536
    /// Feed items held between two flushes; a feed consumer falling further behind is ended.
    static let maxPendingFeedItems = 100_000
    /// The same bound in bytes: items carry their entry's metadata (up to 4 KiB each).
    static let maxPendingFeedBytes = 64 << 20
    /// Bytes counted per feed item besides its id and metadata (the note, the entry's fields).
    static let feedNoteOverhead = 160

    /// Feed items per event (`StreamRefresh.feedEventBytes(maxFrameBytes:)`).
    private let feedEventBytes: Int

    init(
        board: BoardHandle, loop: any EventLoop, executor: BatchExecutor, metrics: LoopMetrics? = nil,
        feedEventBytes: Int = StreamRefresh.feedEventBytes, feedBudget: FeedBacklogBudget? = nil
    ) {
        self.feedBudget = feedBudget
        self.board = board
        self.loop = loop
        self.executor = executor
        self.metrics = metrics
        self.feedEventBytes = feedEventBytes
        self.receivedSequence = Array(repeating: 0, count: executor.shards.count)
    }

    deinit {
        if feedBytes > 0 { _ = feedBudget?.update(ObjectIdentifier(self), bytes: 0, relieve: {}) }
    }

    var isEmpty: Bool { subscriptions.isEmpty }

    /// Called when the last subscription leaves by any path (cancelled, its connection gone, a
    /// feed ended for its backlog or for want of ranks): the registry drops the hub then, so an
    /// emptied hub neither stays registered nor keeps receiving the board's notes. Not called by
    /// `endAll`, whose caller has already dropped the hub.
    var whenEmptied: (() -> Void)?

    func add(_ subscription: Subscription) {
        shortestInterval = min(shortestInterval, subscription.interval)
        let key = SubscriptionKey(connectionID: subscription.sink.connectionID, callID: subscription.callID)
        if let replaced = subscriptions.updateValue(subscription, forKey: key) { forget(replaced) }
        subscription.position = inOrder.count
        inOrder.append(subscription)
        if let player = subscription.player { playerStreams[player, default: []].append(subscription) }
        byConnection[key.connectionID, default: []].append(subscription)
        if subscription.isFeed {
            // A feed starts here: the items already held are older than it.
            subscription.feedCursor = feedBase + feedNotes.count
            feeds.append(subscription)
        }
        scheduleFlush(at: .now())
    }

    func remove(connectionID: UInt64, callID: UInt64) -> Bool {
        discard(SubscriptionKey(connectionID: connectionID, callID: callID))
    }

    @discardableResult
    private func discard(_ key: SubscriptionKey) -> Bool {
        guard let removed = subscriptions.removeValue(forKey: key) else { return false }
        forget(removed)
        // It may have held the oldest items.
        if removed.isFeed { trimFeedBacklog() }
        if subscriptions.isEmpty { whenEmptied?() }
        return true
    }

    /// Drops a subscription that left the dictionary from the other two indexes.
    private func forget(_ subscription: Subscription) {
        let position = subscription.position
        if position >= 0 && position < inOrder.count && inOrder[position] === subscription {
            let last = inOrder.removeLast()
            if position < inOrder.count {
                inOrder[position] = last
                last.position = position
            }
        } else {
            assertionFailure("hub order index out of step")
        }
        subscription.position = -1
        if subscription.isFeed { feeds.removeAll { $0 === subscription } }
        let connectionID = subscription.sink.connectionID
        if var ofConnection = byConnection[connectionID] {
            ofConnection.removeAll { $0 === subscription }
            byConnection[connectionID] = ofConnection.isEmpty ? nil : ofConnection
        }
        guard let player = subscription.player, var streams = playerStreams[player] else { return }
        streams.removeAll { $0 === subscription }
        playerStreams[player] = streams.isEmpty ? nil : streams
    }

    /// The connection can take bytes again: its subscribers get a fresh snapshot. O(its
    /// subscriptions on this board), not O(the board's): many connections draining at once on a
    /// board with many streams would otherwise cost their product.
    func resume(connectionID: UInt64) {
        // Only the streams left out while they had something to send: the others' events went
        // out (into the channel, which does not drop them), and resending them all would spend the
        // freed budget on what the client has, flush after flush, while the missed ones wait.
        for subscription in byConnection[connectionID] ?? [] where subscription.missed {
            subscription.missed = false
            subscription.dirty = true
            subscription.needsSnapshot = true
            subscription.needsQuery = true
        }
        scheduleFlush(at: .now())
    }

    func receive(_ notes: [WriteNote]) {
        // Note numbers count even while nobody listens: a later query's cut compares with them.
        for note in notes where note.shard < receivedSequence.count {
            receivedSequence[note.shard] = max(receivedSequence[note.shard], note.sequence)
        }
        guard !subscriptions.isEmpty else { return }
        for note in notes {
            if !everythingDirty {
                if pendingNotes.count < Self.maxPendingNotes {
                    pendingNotes.append(note.withoutEntry)
                    writtenPlayers.insert(note.playerID)
                } else {
                    everythingDirty = true
                    pendingNotes.removeAll()
                    writtenPlayers.removeAll()
                }
            }
        }
        if board.feedSubscriberCount > 0 {
            for note in notes where Self.isFeedItem(note) {
                feedNotes.append(note)
                feedBytes += Self.feedNoteBytes(note)
            }
            if feedNotes.count > Self.maxPendingFeedItems || feedBytes > Self.maxPendingFeedBytes { relieveFeedBacklog() }
            reportFeedBytes()
        }
        // O(1): the next flush is one shortest interval after the last one. (Scanning every
        // subscription here would make each write batch cost O(subscribers).) Writes arriving
        // while a flush runs ask for that time too — already past, so a flush follows at once and
        // refreshes the streams that were not due in the running one. Under steady writes this
        // splits the streams into two cohorts flushed alternately: each flush sends half the
        // events, so it holds the loop half as long and its last events leave sooner (measured:
        // 14 ms per flush and player staleness p99 ~140 ms, against 23 ms, some widened
        // flushes and p99 ~240 ms when writes during a flush waited for its end).
        scheduleFlush(at: max(.now(), lastFlush + shortestInterval * widening))
    }

    /// Ends every subscription with a final status (board deleted: NOT_FOUND; shutdown).
    func endAll(_ status: Status) {
        var bySink: [ObjectIdentifier: (StreamSink, [StreamFrame])] = [:]
        for subscription in subscriptions.values {
            let frame = StreamFrame(callID: subscription.callID, response: .failure(callID: subscription.callID, status), isFinal: true)
            bySink[ObjectIdentifier(subscription.sink), default: (subscription.sink, [])].1.append(frame)
        }
        for (sink, frames) in bySink.values { sink.send(frames) }
        subscriptions.removeAll()
        inOrder.removeAll()
        playerStreams.removeAll()
        byConnection.removeAll()
        feeds.removeAll()
        trimFeedBacklog()
        scheduledFlush?.cancel()
        scheduledFlush = nil
    }

    /// What the hub holds, one line for the hub and one per subscription (optionally only those
    /// of one connection): for failure messages in tests, when a stream stops following its
    /// board. On the hub's loop.
    func diagnosis(connectionID: UInt64? = nil) -> [String] {
        let now = NIODeadline.now()
        func age(_ deadline: NIODeadline?) -> String {
            deadline.map { "\((now - $0).nanoseconds / 1_000_000) ms ago" } ?? "never"
        }
        var lines = [
            "hub of \(board.config.id): \(subscriptions.count) subscriptions, flushing \(flushing), "
                + "scheduled \(scheduledAt.map { "in \(($0 - now).nanoseconds / 1_000_000) ms" } ?? "no"), "
                + "requested during flush \(requestedDuringFlush != nil), pending notes \(pendingNotes.count), "
                + "everything dirty \(everythingDirty), widening \(widening), last flush \(age(lastFlush))"
        ]
        var sinks: [ObjectIdentifier: StreamSink] = [:]
        for subscription in inOrder where connectionID == nil || subscription.sink.connectionID == connectionID {
            sinks[ObjectIdentifier(subscription.sink)] = subscription.sink
            let last = subscription.player == nil
                ? "window of \(subscription.lastWindow.count) from \(subscription.lastWindow.first.map { "\($0.playerID) #\($0.rank)" } ?? "none")"
                : subscription.lastPlayer.map { $0.present ? "rank \($0.entry.rank) score \($0.entry.score)" : "absent" } ?? "none"
            lines.append(
                "  \(subscription.player ?? "\(subscription.target)") conn \(subscription.sink.connectionID) call \(subscription.callID): "
                    + "dirty \(subscription.dirty) query \(subscription.needsQuery) snapshot \(subscription.needsSnapshot) "
                    + "missed \(subscription.missed) held \(subscription.heldBack) position \(subscription.position) "
                    + "sent \(age(subscription.lastSent)) last \(last) better \(subscription.betterCount.map(String.init) ?? "nil")")
        }
        for sink in sinks.values { lines.append("  " + sink.diagnosis) }
        return lines
    }

    // MARK: flushing

    private func scheduleFlush(at deadline: NIODeadline) {
        guard !subscriptions.isEmpty else { return }
        if flushing {
            requestedDuringFlush = min(requestedDuringFlush ?? deadline, deadline)
            return
        }
        if let scheduledAt, scheduledAt <= deadline { return }
        scheduledFlush?.cancel()
        scheduledAt = deadline
        let hub = NIOLoopBound(self, eventLoop: loop)
        scheduledFlush = loop.scheduleTask(deadline: deadline) {
            hub.value.scheduledFlush = nil
            hub.value.scheduledAt = nil
            hub.value.flush()
        }
    }

    /// Takes the writes noted since the last flush: marks the streams whose own player was
    /// written (their key moved: the shards must answer) and returns the marking for the rest,
    /// or nil when nothing was written.
    private func takeMarking() -> AffectMarking? {
        guard everythingDirty || !pendingNotes.isEmpty else { return nil }
        for player in writtenPlayers {
            for subscription in playerStreams[player] ?? [] {
                subscription.dirty = true
                subscription.needsQuery = true
            }
        }
        let marking = AffectMarking(everything: everythingDirty, notes: pendingNotes, received: receivedSequence)
        pendingNotes.removeAll(keepingCapacity: true)
        writtenPlayers.removeAll(keepingCapacity: true)
        everythingDirty = false
        return marking
    }

    /// One flush: mark who the writes since the last one affected, then refresh every dirty
    /// subscriber whose interval has passed, all in one batch of shard calls.
    ///
    /// Cost: one pass over the subscriptions (marking each, then sorting it into due / waiting /
    /// feeds: touching each subscription object once matters more than the binary search), the
    /// refresh of the due ones, and O(1) to schedule the next flush: at the earliest
    /// due time among the waiting ones (known from the pass), or one shortest interval after this
    /// flush when writes arrive meanwhile. Subscribers refreshed together share their last-sent
    /// time and so fall due together again: flushes stay few and large instead of many and small.
    private func flush() {
        guard !subscriptions.isEmpty, !board.isDeleted else { return }
        let started = NIODeadline.now()
        let marking = takeMarking()
        var due: [Subscription] = []
        var heldBackDue: [Subscription] = []
        var feedSubscriptions: [Subscription] = []
        var earliestWaiting = NIODeadline.distantFuture
        var shortest = TimeAmount.hours(1)
        for subscription in inOrder {
            shortest = min(shortest, subscription.interval)
            if subscription.isFeed {
                if subscription.sink.isOpen { feedSubscriptions.append(subscription) }
                continue
            }
            marking?.mark(subscription)
            // A reader whose socket is full is left out until it drains (`resume` marks it for a
            // snapshot then): recomputing for it now would be wasted, and waiting for it would
            // keep the hub rescheduling itself for as long as the reader stalls.
            guard subscription.dirty else { continue }
            guard subscription.sink.isWritable else {
                subscription.missed = true
                continue
            }
            if subscription.isDue(at: started, widenedBy: widening) {
                if subscription.heldBack { heldBackDue.append(subscription) } else { due.append(subscription) }
            } else {
                earliestWaiting = min(earliestWaiting, subscription.nextDue(widenedBy: widening))
            }
        }
        shortestInterval = shortest
        if !heldBackDue.isEmpty { due = heldBackDue + due }
        // A feed must not lose items: each takes those after its position once its interval has
        // passed and its reader can take bytes; until then they wait here (bounded by
        // maxPendingFeedItems / maxPendingFeedBytes per feed, beyond which the feed is ended).
        let feedEnd = feedBase + feedNotes.count
        var feeds: [Subscription] = []
        for feed in feedSubscriptions where feed.sink.isWritable && (feed.needsSnapshot || feed.feedCursor < feedEnd) {
            if feed.needsSnapshot || feed.isDue(at: started, widenedBy: widening) {
                feeds.append(feed)
            } else {
                earliestWaiting = min(earliestWaiting, feed.nextDue(widenedBy: widening))
            }
        }
        let notesStart = feeds.map(\.feedCursor).min().map { max($0, feedBase) } ?? feedEnd
        let notes = Array(feedNotes[(notesStart - feedBase)...])
        // Each due feed's items are this flush's from here on (it holds its own copy of them): the
        // feeds' positions move now, so what arrives meanwhile is all the backlog bound counts.
        let feedsWithOffsets = feeds.map { feed in
            defer { feed.feedCursor = feedEnd }
            return (subscription: feed, offset: max(0, feed.feedCursor - notesStart))
        }
        guard !due.isEmpty || !feeds.isEmpty else {
            // Writes arriving now wait for one interval from here, not from an older flush: a
            // pass that found nothing due must not let every write batch start another pass.
            lastFlush = started
            scheduleNext(earliestWaiting: earliestWaiting)
            return
        }
        flushing = true
        let passCost = NIODeadline.now() - started
        let refresh = StreamRefresh(board: board, due: due, feedNotes: notes, feedEventBytes: feedEventBytes)
        var responses: [UInt64: ResponseEnvelope] = [:]
        let receiver = ClosureBatchReceiver(
            deliver: { responses[$0.callID] = $0 },
            finished: { [self] in
                let framesStarted = NIODeadline.now()
                var answeredFeeds = feedsWithOffsets
                let feedRanks = feedsWithOffsets.isEmpty ? [] : refresh.feedRanks(in: responses)
                if feedRanks == nil {
                    // The positions of the feeds with items in this flush moved past them, and
                    // they cannot be sent without ranks: ending those feeds says so, where
                    // skipping the items would not. Feeds cancelled meanwhile are already over;
                    // feeds without items here go on.
                    let unranked = feedsWithOffsets.filter { $0.subscription.position >= 0 && $0.offset < notes.count }
                    endFeeds(unranked.map(\.subscription), Status(
                        .unavailable,
                        "the feed's items could not be ranked (a shard did not answer); subscribe again to follow the board from its current state"))
                    answeredFeeds = feedsWithOffsets.filter { $0.subscription.position >= 0 && $0.offset >= notes.count }
                }
                let frames = refresh.frames(
                    from: responses, feeds: answeredFeeds, feedRanks: feedRanks ?? [], version: board.version, now: .now())
                var events = 0
                // Sent even if the socket filled during the refresh: feed items must not be
                // dropped (they left the backlog; the backlog bound limits them), and the other
                // events hold the connection's event budget, which bounds them.
                for sinkFrames in frames {
                    events += sinkFrames.frames.count
                    sinkFrames.sink.send(sinkFrames.frames, reservedBytes: sinkFrames.reservedBytes)
                }
                trimFeedBacklog()
                lastFlush = .now()
                let cost = passCost + (lastFlush - framesStarted)
                if let metrics {
                    metrics.streamFlushes += 1
                    metrics.streamEvents += events
                    metrics.streamFlushBusyMicros += Int(cost.nanoseconds / 1000)
                    if widening > 1 { metrics.streamWidenedFlushes += 1 }
                }
                adjustWidening(cost: cost)
                flushing = false
                // Events held back by a connection's event budget go once it frees: the release
                // that frees it resumes the connection (`StreamSink.release`). Streams whose query
                // went unanswered are tried again one interval on, not left until the next write.
                let unanswered = due.contains { $0.dirty && !$0.heldBack && $0.position >= 0 && $0.sink.isWritable }
                let retry = unanswered ? lastFlush + shortestInterval * widening : .distantFuture
                scheduleNext(earliestWaiting: min(earliestWaiting, retry))
            })
        executor.run(refresh.plans(shardCount: executor.shards.count), on: loop, receiver: receiver)
    }

    /// Whether a note belongs in the feed. A shard attaches the written entry to its notes only
    /// while the board has a feed subscriber, so a write noted before the first feed subscribed
    /// arrives without one: it happened before the feed's start and is not an item (it went out
    /// as an item with score 0). Removals carry no entry and are items (one noted just before the
    /// first feed subscribed cannot be told apart, and is reported: harmless).
    static func isFeedItem(_ note: WriteNote) -> Bool {
        note.entry != nil || note.currentKey == nil
    }

    /// Schedules the next flush when something may become due: a waiting dirty subscriber, a
    /// request made while the flush ran, or writes (and feed items) that arrived since the pass;
    /// nothing when all is quiet.
    private func scheduleNext(earliestWaiting: NIODeadline) {
        var next = earliestWaiting
        if let requested = requestedDuringFlush {
            next = min(next, requested)
            requestedDuringFlush = nil
        }
        if !pendingNotes.isEmpty || everythingDirty {
            next = min(next, lastFlush + shortestInterval * widening)
        }
        // Feeds with items waiting, when their interval passes. Not those whose reader cannot take
        // bytes: its drain (`resume`) flushes; counting them here would re-arm a flush every
        // interval with nothing to do.
        let feedEnd = feedBase + feedNotes.count
        for feed in feeds where feed.feedCursor < feedEnd && feed.sink.isOpen && feed.sink.isWritable {
            next = min(next, max(feed.nextDue(widenedBy: widening), lastFlush + shortestInterval * widening))
        }
        guard next < .distantFuture else { return }
        scheduleFlush(at: max(next, .now()))
    }

    private func adjustWidening(cost: TimeAmount) {
        let shortest = shortestInterval
        if cost * Self.widenAboveIntervalDivisor > shortest * widening {
            widening = min(widening * 2, Self.maxWidening)
        } else if cost * Self.narrowBelowIntervalDivisor < shortest * widening && widening > 1 {
            widening /= 2
        }
    }

    /// The board's feed backlog passed its bound: the feeds that far behind (their reader stopped
    /// reading, or their interval is long for the board's write rate) end with RESOURCE_EXHAUSTED;
    /// the others, each within the bound by then, go on. O(backlog), once per time the bound is
    /// passed.
    /// Tells the server-wide budget what this board's feeds hold; past the bound it asks the
    /// board holding the most (maybe this one) to end its lagging feeds.
    private func reportFeedBytes() {
        guard let feedBudget else { return }
        feedBudget.update(ObjectIdentifier(self), bytes: feedBytes, relieve: relieveFromBudget)?()
    }

    /// The budget's request: this board holds the most of the server's feed backlogs, which
    /// are over `max_feed_backlog_bytes`. Its feeds holding back more than an event's worth end.
    func relieveForBudget() {
        defer { feedBudget?.reliefDone(ObjectIdentifier(self)) }
        guard !feeds.isEmpty else { return }
        relieveFeedBacklog(overBudget: true)
        reportFeedBytes()
    }

    private func relieveFeedBacklog(overBudget: Bool = false) {
        // Bytes from each position to the end of the backlog.
        var bytesFrom = [Int](repeating: 0, count: feedNotes.count + 1)
        for index in stride(from: feedNotes.count - 1, through: 0, by: -1) {
            bytesFrom[index] = bytesFrom[index + 1] + Self.feedNoteBytes(feedNotes[index])
        }
        let end = feedBase + feedNotes.count
        let behind = feeds.filter { feed in
            let offset = min(max(0, feed.feedCursor - feedBase), feedNotes.count)
            return end - feed.feedCursor > Self.maxPendingFeedItems || bytesFrom[offset] > Self.maxPendingFeedBytes
                || (overBudget && bytesFrom[offset] > feedEventBytes)
        }
        let serverWide = overBudget ? "; or, the server's feeds together holding more than max_feed_backlog_bytes (\(feedBudget?.limitBytes ?? 0) bytes), by more than an event on the board holding the most" : ""
        let status = Status(
            .resourceExhausted,
            "feed consumer fell more than \(Self.maxPendingFeedItems) writes or \(Self.maxPendingFeedBytes >> 20) MiB behind\(serverWide) (its reader is not reading, or its min_interval_ms is long for this board's write rate)")
        endFeeds(behind, status)
        trimFeedBacklog()
        if !feeds.isEmpty { scheduleFlush(at: .now()) }
    }

    /// Ends these feeds with `status` as their final frame.
    private func endFeeds(_ feeds: [Subscription], _ status: Status) {
        for feed in feeds {
            feed.sink.send([StreamFrame(callID: feed.callID, response: .failure(callID: feed.callID, status), isFinal: true)])
            discard(SubscriptionKey(connectionID: feed.sink.connectionID, callID: feed.callID))
            board.removeSubscriber(feed: true)
        }
    }

    /// Drops the items every feed has been sent (all of them once no feed is left).
    private func trimFeedBacklog() {
        let oldest = feeds.map(\.feedCursor).min() ?? (feedBase + feedNotes.count)
        let sent = min(max(0, oldest - feedBase), feedNotes.count)
        guard sent > 0 else { return }
        if sent == feedNotes.count {
            feedNotes.removeAll(keepingCapacity: true)
            feedBytes = 0
        } else {
            for note in feedNotes[..<sent] { feedBytes -= Self.feedNoteBytes(note) }
            feedNotes.removeFirst(sent)
        }
        feedBase += sent
        reportFeedBytes()
    }

    /// What a held item counts toward `maxPendingFeedBytes`.
    private static func feedNoteBytes(_ note: WriteNote) -> Int {
        feedNoteOverhead + note.playerID.utf8.count + (note.entry?.metadata.count ?? 0)
    }
}

/// A hub the feed budget can reach from another loop without keeping it alive; read on the
/// hub's own loop only.
private final class WeakHub: @unchecked Sendable {
    weak var hub: SubscriptionHub?

    init(_ hub: SubscriptionHub) { self.hub = hub }
}
