import HiscoreClient
import HiscoreCore
@testable import HiscoreServer
import HiscoreWire
import NIOCore
import Testing
import HiscoreTestSupport

/// Latest view of each named stream, fed by the stream readers.
actor ReviewViews {
    private(set) var views: [String: StandingsView] = [:]
    private(set) var ended: [String: String] = [:]
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func apply(_ name: String, _ event: RankEvent) {
        views[name, default: StandingsView()].apply(event)
        wakeAll()
    }

    func end(_ name: String, _ why: String) {
        ended[name] = why
        wakeAll()
    }

    func waitUntil(_ condition: @Sendable ([String: StandingsView]) -> Bool) async -> Bool {
        while !condition(views) {
            if Task.isCancelled { return false }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    if Task.isCancelled { continuation.resume() } else { waiters.append(continuation) }
                }
            } onCancel: {
                Task { await self.wakeAll() }
            }
        }
        return true
    }

    private func wakeAll() {
        let current = waiters
        waiters = []
        for waiter in current { waiter.resume() }
    }
}

@Suite("Rank-change streams: review")
struct StreamReviewTests {
    enum Kind: Sendable {
        case top(UInt32, RankMode)
        case around(String, UInt32, UInt32, RankMode)
        case player(String, RankMode)
    }

    static func expected(_ client: HiscoreClient, board: String, _ kind: Kind) async throws -> (window: [WireEntry], player: WireEntry?) {
        switch kind {
        case .top(let n, let mode):
            return (try await client.top(board: board, limit: n, mode: mode).entries, nil)
        case .around(let p, let b, let a, let mode):
            do {
                return (try await client.around(board: board, player: p, before: b, after: a, mode: mode).entries, nil)
            } catch let error as HiscoreError where error.code == .notFound {
                return ([], nil)
            }
        case .player(let p, let mode):
            let response = try await client.entries(board: board, players: [p], mode: mode)
            return ([], response.entries.first)
        }
    }

    static func matches(_ view: StandingsView?, _ kind: Kind, _ expected: (window: [WireEntry], player: WireEntry?)) -> Bool {
        guard let view else { return false }
        switch kind {
        case .top, .around:
            return view.window == expected.window
        case .player:
            guard let state = view.player else { return false }
            guard let entry = expected.player else { return !state.present }
            return state.present && state.entry.rank == entry.rank && state.entry.score == entry.score
                && state.entry.subscore == entry.subscore && state.entry.metadata == entry.metadata
        }
    }

    static func describe(_ view: StandingsView?, _ kind: Kind) -> String {
        guard let view else { return "no event" }
        switch kind {
        case .top, .around: return view.window.map { "\($0.playerID):\($0.score)#\($0.rank)" }.joined(separator: ",")
        case .player:
            guard let p = view.player else { return "no player" }
            return p.present ? "#\(p.entry.rank) score \(p.entry.score)" : "absent"
        }
    }

    /// Random writes (many ties, removals) on boards of every rank mode and operator; every kind of
    /// stream must end each round on what the board answers.
    @Test(
        "every stream kind converges to the board after random writes",
        arguments: [
            (1, BoardConfig(id: "b", rankMode: .ordinal)),
            (3, BoardConfig(id: "b", rankMode: .ordinal)),
            (3, BoardConfig(id: "b", rankMode: .competition)),
            (1, BoardConfig(id: "b", rankMode: .dense)),
            (3, BoardConfig(id: "b", scoreOrder: .ascending, writeOperator: .set, rankMode: .competition)),
            (2, BoardConfig(id: "b", writeOperator: .increment, rankMode: .ordinal)),
        ])
    func converge(shards: Int, config: BoardConfig) async throws {
        let seed = DifferentialServerTests.seed()
        var random = SplitMix64(seed: seed)
        try await withServer(shards: shards) { server in
            let writer = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            let watcher = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await writer.createBoard(config)
            _ = try await writer.submitBatch((0..<40).map {
                SubmitRequest(boardID: "b", playerID: "p\($0)", score: Int64($0 % 7), subscore: Int64($0 % 2))
            })
            var modes: [RankMode] = [.ordinal, .competition]
            if config.rankMode == .dense { modes.append(.dense) }
            var kinds: [String: Kind] = [:]
            for mode in modes {
                kinds["top3-\(mode)"] = .top(3, mode)
                kinds["top12-\(mode)"] = .top(12, mode)
                kinds["around-p5-\(mode)"] = .around("p5", 2, 2, mode)
                kinds["around-p20-\(mode)"] = .around("p20", 0, 3, mode)
                for p in ["p1", "p9", "p33", "new1"] { kinds["player-\(p)-\(mode)"] = .player(p, mode) }
            }
            let views = ReviewViews()
            try await withThrowingTaskGroup(of: Void.self) { readers in
                for (name, kind) in kinds {
                    let target: SubscriptionTarget
                    let mode: RankMode
                    switch kind {
                    case .top(let n, let m): target = .top(n); mode = m
                    case .around(let p, let b, let a, let m): target = .around(playerID: p, before: b, after: a); mode = m
                    case .player(let p, let m): target = .player(p); mode = m
                    }
                    readers.addTask {
                        do {
                            for try await event in watcher.subscribe(board: "b", target: target, minInterval: .milliseconds(20), mode: mode) {
                                await views.apply(name, event)
                            }
                            await views.end(name, "ended")
                        } catch {
                            await views.end(name, "\(error)")
                        }
                    }
                }
                for round in 0..<80 {
                    var submits: [SubmitRequest] = []
                    for _ in 0..<Int(1 + random.next(below: 12)) {
                        let player = random.next(below: 10) == 0 ? "new\(random.next(below: 3))" : "p\(random.next(below: 45))"
                        submits.append(SubmitRequest(
                            boardID: "b", playerID: player, score: Int64(random.next(below: 9)) - 1, subscore: Int64(random.next(below: 2)),
                            metadata: random.next(below: 3) == 0 ? [UInt8(random.next(below: 200))] : nil))
                    }
                    _ = try await writer.submitBatch(submits)
                    for _ in 0..<Int(random.next(below: 3)) {
                        let player = random.next(below: 5) == 0 ? "new\(random.next(below: 3))" : "p\(random.next(below: 45))"
                        _ = try? await writer.removePlayer(board: "b", player: player)
                    }
                    var expected: [String: (window: [WireEntry], player: WireEntry?)] = [:]
                    for (name, kind) in kinds { expected[name] = try await Self.expected(writer, board: "b", kind) }
                    let frozen = expected
                    let names = kinds
                    let matched = try? await within(.seconds(8), "round \(round)") {
                        guard await views.waitUntil({ views in names.allSatisfy { Self.matches(views[$0.key], $0.value, frozen[$0.key]!) } })
                        else { throw CancellationError() }
                        return true
                    }
                    if matched == nil {
                        let current = await views.views
                        let ended = await views.ended
                        let hubs = await server.streams.diagnosis()
                        let wrong = kinds.filter { !Self.matches(current[$0.key], $0.value, expected[$0.key]!) }.map { name, kind in
                            let want: String
                            switch kind {
                            case .top, .around: want = expected[name]!.window.map { "\($0.playerID):\($0.score)#\($0.rank)" }.joined(separator: ",")
                            case .player: want = expected[name]!.player.map { "#\($0.rank) score \($0.score)" } ?? "absent"
                            }
                            return "\(name): stream [\(Self.describe(current[name], kind))] board [\(want)] \(ended[name] ?? "")"
                        }
                        Issue.record(
                            "seed \(seed) shards \(shards) \(config.rankMode) round \(round): \(wrong.sorted().joined(separator: "\n"))\nthe server's hubs then:\n\(hubs.joined(separator: "\n"))")
                        break
                    }
                }
                readers.cancelAll()
            }
            try? await watcher.close()
            try? await writer.close()
        }
    }
}

@Suite("Rank-change streams: per-connection bounds")
struct StreamConnectionBoundTests {
    /// `StreamSink.maxPendingEventBytes` bounds what a connection that does not read can have
    /// queued from its streams. It was once counted per board's hub: a client that spread the
    /// same subscriptions over several boards got the budget once per board, all handed over
    /// while its socket still counted as writable (7-29 MiB here against ~6). (The rig allows 10
    /// boards.)
    @Test("a reader that does not read gets at most the per-connection event budget queued, however many boards it watches", arguments: [1, 10])
    func budgetAcrossBoards(boards: Int) async throws {
        // 160 top-1000 windows exceed the default max_stream_window_bytes: lifted here, as this
        // is about the event budget.
        let rig = try await SubscribeResetRig.start(shards: 2, maxStreamWindowBytes: 1 << 30, maxStreamWindowEntries: 1 << 30)
        do {
            let writer = try await HiscoreClient.connect(host: "127.0.0.1", port: rig.port)
            let metadata = [UInt8](repeating: 7, count: 200)
            for board in 0..<boards {
                _ = try await writer.submitBatch((0..<1000).map {
                    SubmitRequest(boardID: "m\(board)", playerID: "p\($0)", score: Int64($0), metadata: metadata)
                })
            }
            let reader = try RawConnection(port: rig.port, timeoutSeconds: 10, receiveBufferBytes: 4096)
            _ = reader.handshake()
            // 16 top-1000 windows per board (~270 KB each): each board's first flush alone fills the budget.
            var burst = ByteBufferBuilder()
            var callID: UInt64 = 1
            for board in 0..<boards {
                for _ in 0..<16 {
                    burst.append(RequestEnvelope(callID: callID, method: .subscribe(SubscribeRequest(
                        boardID: "m\(board)", target: .top(1000), minIntervalMillis: 20))))
                    callID += 1
                }
            }
            reader.send(burst.bytes)
            // The reader reads nothing. Watch what the server holds for it for a bounded time.
            let bound = StreamSink.maxPendingEventBytes + 2 << 20  // + one event, + slack
            var largest = 0
            let clock = ContinuousClock()
            let end = clock.now + .seconds(5)
            while clock.now < end && largest <= bound {
                for channel in rig.registry.all {
                    let buffered = (try? await channel.getOption(ChannelOptions.bufferedWritableBytes).get()) ?? 0
                    largest = max(largest, buffered)
                }
                try await Task.sleep(for: .milliseconds(10))  // poll interval, not synchronisation
            }
            #expect(largest <= bound, "\(largest >> 20) MiB of stream events queued for one connection that does not read (bound ~\(bound >> 20) MiB)")
            // Once it reads, every stream gets its snapshot (events held back are not lost).
            var snapshots = Set<UInt64>()
            while snapshots.count < boards * 16, let frame = reader.readFrame() {
                guard case .event(let event)? = frame.result else {
                    Issue.record("unexpected frame \(frame.callID): \(String(describing: frame.status))")
                    break
                }
                if event.snapshot { snapshots.insert(frame.callID) }
            }
            #expect(snapshots.count == boards * 16)
            try? await writer.close()
        } catch {
            Issue.record("\(error)")
        }
        await rig.stop()
    }
}

extension StreamConnectionBoundTests {
    /// Each stream keeps the last window it sent: 1000 subscriptions of ~1 MB windows made one
    /// connection hold ~1 GB. The windows' bytes are bounded per connection at subscribe time.
    @Test("a connection's streams may keep at most max_stream_window_bytes of windows; closing one makes room")
    func windowBytesPerConnection() async throws {
        // The entries bound lifted: this is about bytes.
        let rig = try await SubscribeResetRig.start(shards: 2, maxStreamWindowEntries: 1 << 30)
        do {
            let writer = try await HiscoreClient.connect(host: "127.0.0.1", port: rig.port)
            _ = try await writer.submit(board: "w", player: "p", score: 1)
            try? await writer.close()
            let reader = try RawConnection(port: rig.port, timeoutSeconds: 10)
            _ = reader.handshake()
            // A default board's entry counts 64 + 128 + 256 = 448 bytes: a top-1000 window
            // 448,000, and 64 MiB holds 149 of them.
            var burst = ByteBufferBuilder()
            for callID in UInt64(1)...150 {
                burst.append(RequestEnvelope(callID: callID, method: .subscribe(SubscribeRequest(
                    boardID: "w", target: .top(1000), minIntervalMillis: 20))))
            }
            reader.send(burst.bytes)
            let (opened, refused) = Self.subscribeOutcomes(reader, count: 150)
            #expect(opened == Set(1...149) && refused.keys.sorted() == [150], "\(refused)")
            #expect(refused[150]?.contains("max_stream_window_bytes") == true)
            // Ending a stream makes room for another.
            reader.send(RequestEnvelope(callID: 151, method: .cancel(callID: 1)))
            var cancelled = false
            while !cancelled, let frame = reader.readFrame() {
                if frame.callID == 151 { cancelled = true }
            }
            reader.send(RequestEnvelope(callID: 152, method: .subscribe(SubscribeRequest(boardID: "w", target: .top(1000), minIntervalMillis: 20))))
            var answer: ResponseEnvelope?
            while answer == nil, let frame = reader.readFrame() {
                if frame.callID == 152 { answer = frame }
            }
            #expect(answer?.status == nil, "\(String(describing: answer?.status))")
        } catch {
            Issue.record("\(error)")
        }
        await rig.stop()
    }

    /// The first answer to each of `count` subscribe calls: the streams opened (their snapshot
    /// came) and those refused (RESOURCE_EXHAUSTED), with the refusals' messages.
    static func subscribeOutcomes(_ reader: RawConnection, count: Int) -> (opened: Set<UInt64>, refused: [UInt64: String]) {
        var opened = Set<UInt64>()
        var refused: [UInt64: String] = [:]
        while opened.count + refused.count < count, let frame = reader.readFrame() {
            if case .event? = frame.result { opened.insert(frame.callID) } else if let status = frame.status {
                #expect(status.code == .resourceExhausted)
                refused[frame.callID] = status.message
            }
        }
        return (opened, refused)
    }

    /// 149 top-1000 streams fit the bytes bound, and one connection holding them cut a writer's
    /// throughput 6x (each event of each stream made and encoded on its own). The entries they
    /// watch are bounded per connection too.
    @Test("a connection's streams may watch at most max_stream_window_entries entries; closing one makes room")
    func windowEntriesPerConnection() async throws {
        let rig = try await SubscribeResetRig.start(shards: 2)
        do {
            let writer = try await HiscoreClient.connect(host: "127.0.0.1", port: rig.port)
            _ = try await writer.submit(board: "w", player: "p", score: 1)
            try? await writer.close()
            let reader = try RawConnection(port: rig.port, timeoutSeconds: 10)
            _ = reader.handshake()
            // 16,384 entries: 16 top-1000 windows and a top-384 one; the next top-1 is refused.
            var burst = ByteBufferBuilder()
            for callID in UInt64(1)...16 {
                burst.append(RequestEnvelope(callID: callID, method: .subscribe(SubscribeRequest(boardID: "w", target: .top(1000)))))
            }
            burst.append(RequestEnvelope(callID: 17, method: .subscribe(SubscribeRequest(boardID: "w", target: .top(384)))))
            burst.append(RequestEnvelope(callID: 18, method: .subscribe(SubscribeRequest(boardID: "w", target: .top(1)))))
            reader.send(burst.bytes)
            let (opened, refused) = Self.subscribeOutcomes(reader, count: 18)
            #expect(opened == Set(1...17) && refused.keys.sorted() == [18], "\(refused)")
            #expect(refused[18]?.contains("max_stream_window_entries") == true, "\(refused)")
            reader.send(RequestEnvelope(callID: 19, method: .cancel(callID: 17)))
            reader.send(RequestEnvelope(callID: 20, method: .subscribe(SubscribeRequest(boardID: "w", target: .top(10)))))
            var answer: ResponseEnvelope?
            while answer == nil, let frame = reader.readFrame() {
                if frame.callID == 20 { answer = frame }
            }
            #expect(answer?.status == nil, "\(String(describing: answer?.status))")
        } catch {
            Issue.record("\(error)")
        }
        await rig.stop()
    }
}

@Suite("Rank-change streams: feeds and max_frame_bytes")
struct FeedFrameBoundTests {
    /// `--max-frame-bytes` may be set as low as 1,024 (protocol.md even advises lowering it where
    /// untrusted clients connect), but feed events are cut at `StreamRefresh.feedEventBytes`
    /// (256 KiB) whatever it is. A feed that reads everything is then ended with
    /// RESOURCE_EXHAUSTED, and the items of that event are lost, as soon as one interval's items
    /// pass the frame bound. A feed client cannot ask for less.
    @Test("a feed that keeps reading gets every item on a server with a small max_frame_bytes")
    func feedUnderSmallFrames() async throws {
        try await withClient(configure: { $0.limits.maxFrameBytes = 4096 }) { writer, server in
            _ = try await writer.createBoard(BoardConfig(id: "small"))
            let reader = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            let writes = 100
            let outcome: Result<Int, any Error> = try await within(.seconds(20), "the feed's items") {
                var feed = reader.subscribe(board: "small", target: .feed, minInterval: .milliseconds(1_000)).makeAsyncIterator()
                guard try await feed.next()?.snapshot == true else { return .success(-1) }
                // 10 batches of 10 writes with 200 bytes of metadata (each batch's answers fit 4 KiB),
                // well inside one feed interval: ~27 KB of items for the feed's next event.
                let metadata = [UInt8](repeating: 1, count: 200)
                for batch in 0..<(writes / 10) {
                    _ = try await writer.submitBatch((0..<10).map {
                        SubmitRequest(boardID: "small", playerID: "p\(batch)-\($0)", score: Int64($0), metadata: metadata)
                    })
                }
                var received = 0
                do {
                    while received < writes {
                        guard case .feed(let items)? = try await feed.next()?.change else { break }
                        received += items.count
                    }
                } catch {
                    return .failure(error)
                }
                return .success(received)
            }
            switch outcome {
            case .success(let received): #expect(received == writes)
            case .failure(let error): Issue.record("the feed ended: \(error)")
            }
            try? await reader.close()
        }
    }

}
