import HiscoreWire
import NIOCore
import NIOPosix

// `hiscore-bench streams`: the subscriber connections. Each one opens its share of the player
// subscriptions and top-N watchers (one Subscribe call each; the request is encoded with
// HiscoreWire's own encoder, it is sent once), then scans every event frame without decoding it:
// call id, status, `RankEvent.board_version` and `RankEvent.snapshot`, which change it carries.
// Every initial snapshot and every `verifyEvery`-th later event is also fully decoded with
// `WireCodec.decodeResponse` and checked. Once told the write phase's starting board version, it
// records (arrival time, board version, the stream's previous version) of every event.

enum StreamTargetKind: UInt8, Sendable {
    case player
    case top
}

struct StreamSubscriptionSpec: Sendable {
    var kind: StreamTargetKind
    /// Player index (player subscriptions).
    var player: Int
}

/// One recorded event. Versions are relative to the write phase's starting board version.
struct StreamEventRecord: Sendable {
    var arrivalNanos: UInt64
    var version: UInt32
    /// Version of this stream's previous event (relative; 0 = at or before the phase start).
    var previous: UInt32
}

struct StreamSubscriberCounters: Sendable {
    var eventFrames = 0
    var eventBytes = 0
    var playerEvents = 0
    var topEvents = 0
    var initialSnapshots = 0
    /// Snapshot events after the first one of a stream (the server resends state after the
    /// connection could not take bytes).
    var resnapshots = 0
    /// Recording: events whose version is not above the phase start or the stream's previous.
    var notNewer = 0
    /// Streams ended by the server (final status frame), including refused subscribes.
    var ended = 0
    var deepVerified = 0
    var lastEventNanos: UInt64 = 0
    var lastSnapshotNanos: UInt64 = 0
    var errors = LoadErrorCounts()

    mutating func merge(_ other: StreamSubscriberCounters) {
        eventFrames += other.eventFrames
        eventBytes += other.eventBytes
        playerEvents += other.playerEvents
        topEvents += other.topEvents
        initialSnapshots += other.initialSnapshots
        resnapshots += other.resnapshots
        notNewer += other.notNewer
        ended += other.ended
        deepVerified += other.deepVerified
        lastEventNanos = max(lastEventNanos, other.lastEventNanos)
        lastSnapshotNanos = max(lastSnapshotNanos, other.lastSnapshotNanos)
        errors.merge(other.errors)
    }
}

struct StreamSubscriberResult: Sendable {
    var counters: StreamSubscriberCounters
    var playerRecords: [StreamEventRecord]
    var topRecords: [StreamEventRecord]
    var topChanges: [TopChangeRecord] = []
}

/// A top-N event with the entries it says entered, moved (player index, new score) or left
/// (player index, score nil: the write that pushed it out set some lower score).
struct TopChangeRecord: Sendable {
    var record: StreamEventRecord
    var changed: [(player: Int32, score: Int64?)]
}

struct StreamSubscriberOptions: Sendable {
    var boardID: String
    var topN: UInt32
    var minIntervalMillis: UInt32
    var verifyEvery: Int
    var snapshotTimeout: TimeAmount
}

final class StreamSubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let specs: [StreamSubscriptionSpec]
    private let options: StreamSubscriberOptions
    private var lastVersion: [UInt64]
    private var snapshotted: [Bool]
    private var resolved: [Bool]
    private var pending: Int
    private let snapshotPromise: EventLoopPromise<StreamSubscriberCounters>
    private var snapshotsDone = false
    private var baseVersion: UInt64? = nil
    private var counters = StreamSubscriberCounters()
    private var playerRecords: [StreamEventRecord] = []
    private var topRecords: [StreamEventRecord] = []
    private var topChanges: [TopChangeRecord] = []
    private var inbound: ByteBuffer? = nil
    private var eventsUntilVerify: Int
    private var closedByUs = false
    private let maxFrameBytes = 16 << 20

    init(
        specs: [StreamSubscriptionSpec], options: StreamSubscriberOptions,
        snapshotPromise: EventLoopPromise<StreamSubscriberCounters>
    ) {
        self.specs = specs
        self.options = options
        lastVersion = [UInt64](repeating: 0, count: specs.count)
        snapshotted = [Bool](repeating: false, count: specs.count)
        resolved = [Bool](repeating: false, count: specs.count)
        pending = specs.count
        self.snapshotPromise = snapshotPromise
        eventsUntilVerify = max(options.verifyEvery, 1)
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64 + specs.count * 40)
        buffer.writeBytes(ConnectionPreface.bytes)
        for (index, spec) in specs.enumerated() {
            let target: SubscriptionTarget =
                switch spec.kind {
                case .player: .player(LoadPlayerID.string(spec.player))
                case .top: .top(options.topN)
                }
            let request = SubscribeRequest(
                boardID: options.boardID, target: target, minIntervalMillis: options.minIntervalMillis)
            FrameEncoding.encodeRequestFrame(
                RequestEnvelope(callID: UInt64(index + 1), method: .subscribe(request)), into: &buffer)
        }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        if specs.isEmpty { finishSnapshots() }
        let timeout = options.snapshotTimeout
        context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard !snapshotsDone else { return }
            snapshotsDone = true
            snapshotPromise.fail(
                LoadProtocolError("\(pending) of \(specs.count) subscriptions had no snapshot after \(timeout.nanoseconds / 1_000_000_000) s"))
        }
        context.fireChannelActive()
    }

    private func finishSnapshots() {
        guard !snapshotsDone else { return }
        snapshotsDone = true
        snapshotPromise.succeed(counters)
    }

    /// Starts recording events newer than `baseVersion` (the write phase's starting version).
    func recordFrom(baseVersion: UInt64) { self.baseVersion = baseVersion }

    var liveCounters: StreamSubscriberCounters { counters }

    /// Hands over the records (once).
    func takeResult() -> StreamSubscriberResult {
        let result = StreamSubscriberResult(
            counters: counters, playerRecords: playerRecords, topRecords: topRecords, topChanges: topChanges)
        playerRecords = []
        topRecords = []
        topChanges = []
        return result
    }

    func closing() { closedByUs = true }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let incoming = unwrapInboundIn(data)
        if var buffer = inbound, buffer.readableBytes > 0 {
            inbound = nil
            var incoming = incoming
            buffer.writeBuffer(&incoming)
            inbound = buffer
        } else {
            inbound = incoming
        }
        guard var buffer = inbound else { return }
        inbound = nil
        let now = loadNowNanos()
        do {
            while true {
                let start = buffer.readerIndex
                guard
                    let flag = buffer.getInteger(at: start, as: UInt8.self),
                    let declared = buffer.getInteger(at: start + 1, as: UInt32.self)
                else { break }
                guard flag == 0 else { throw LoadProtocolError("frame with flag byte \(flag)") }
                let length = Int(declared)
                guard length <= maxFrameBytes else { throw LoadProtocolError("frame of \(length) bytes") }
                guard buffer.readableBytes >= 5 + length else { break }
                let outcome = buffer.withUnsafeReadableBytes { raw in
                    Result { () throws(LoadProtocolError) in
                        try self.frame(UnsafeRawBufferPointer(rebasing: raw[5..<(5 + length)]), now: now)
                    }
                }
                buffer.moveReaderIndex(forwardBy: 5 + length)
                try outcome.get()
            }
        } catch {
            counters.errors.add("subscriber connection: \(error)")
            closedByUs = true
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 {
            if buffer.readerIndex > 65536 { buffer.discardReadBytes() }
            inbound = buffer
        }
    }

    /// One Response frame.
    private func frame(_ body: UnsafeRawBufferPointer, now: UInt64) throws(LoadProtocolError) {
        let scan = try LoadResponseScan(body)
        let (callID, statusCode, statusMessage, resultField, resultBody) =
            (scan.callID, scan.statusCode, scan.statusMessage, scan.resultField, scan.resultBody)
        func message() -> String {
            statusMessage.map { String(decoding: UnsafeRawBufferPointer(rebasing: body[$0]), as: UTF8.self) } ?? ""
        }
        if callID == 0 {
            if resultField == HiscoreResultField.hello, statusCode == 0 { return }
            throw LoadProtocolError("connection-level error \(HiscoreLoadWire.codeName(statusCode)): \(message())")
        }
        let index = Int(callID) - 1
        guard index >= 0, index < specs.count else { throw LoadProtocolError("frame for unknown call id \(callID)") }
        guard resultField == StreamTag.eventResult else {
            // The last frame of a stream: a status and no result (or a refused subscribe).
            counters.ended += 1
            counters.errors.add("stream ended: \(HiscoreLoadWire.codeName(statusCode)) \(message().prefix(80))")
            resolve(index, now: now)
            return
        }
        var event = LoadProtoReader(body, from: resultBody.lowerBound, to: resultBody.upperBound)
        var version: UInt64 = 0
        var snapshot = false
        var change = 0
        while !event.atEnd {
            guard let field = event.field() else { throw LoadProtocolError("undecodable RankEvent") }
            switch field.number {
            case 1 where field.wireType == 0: version = field.value
            case 2 where field.wireType == 0: snapshot = field.value != 0
            case 3...5 where field.wireType == 2: change = field.number
            default: break
            }
        }
        let spec = specs[index]
        counters.eventFrames += 1
        counters.eventBytes += body.count + 5
        counters.lastEventNanos = now
        let expectedChange = spec.kind == .player ? 3 : 4
        if change != expectedChange {
            counters.errors.add("event with change field \(change), expected \(expectedChange)")
        }
        var verify = false
        if !snapshotted[index] {
            guard snapshot else {
                counters.errors.add("first event of a stream is not a snapshot")
                return
            }
            snapshotted[index] = true
            counters.initialSnapshots += 1
            counters.lastSnapshotNanos = now
            lastVersion[index] = version
            verify = options.verifyEvery > 0
            resolve(index, now: now)
        } else {
            if snapshot { counters.resnapshots += 1 }
            if spec.kind == .player { counters.playerEvents += 1 } else { counters.topEvents += 1 }
            if let base = baseVersion {
                let previous = lastVersion[index]
                if version <= base || version <= previous {
                    counters.notNewer += 1
                } else {
                    let record = StreamEventRecord(
                        arrivalNanos: now, version: UInt32(clamping: version - base),
                        previous: previous > base ? UInt32(clamping: previous - base) : 0)
                    if spec.kind == .player {
                        playerRecords.append(record)
                    } else {
                        topRecords.append(record)
                        // Few (a top-N changes rarely): decode them whole to see who entered or moved.
                        if let changed = Self.windowChanges(body) { topChanges.append(TopChangeRecord(record: record, changed: changed)) }
                    }
                }
            }
            lastVersion[index] = max(lastVersion[index], version)
            if options.verifyEvery > 0 {
                eventsUntilVerify -= 1
                if eventsUntilVerify <= 0 {
                    eventsUntilVerify = options.verifyEvery
                    verify = true
                }
            }
        }
        if verify { deepVerify(body, spec: spec, callID: callID, version: version, snapshot: snapshot) }
    }

    /// The changes of a window event, as (player index, score; nil for a player that left).
    private static func windowChanges(_ body: UnsafeRawBufferPointer) -> [(player: Int32, score: Int64?)]? {
        guard let envelope = try? WireCodec.decodeResponse(body), case .event(let event)? = envelope.result,
            case .window(let update) = event.change
        else { return nil }
        return update.changes.compactMap { change in
            guard change.entry.playerID.hasPrefix("p:"), let player = Int32(change.entry.playerID.dropFirst(2)) else { return nil }
            return (player, change.kind == .left ? nil : change.entry.score)
        }
    }

    private func resolve(_ index: Int, now: UInt64) {
        guard !resolved[index] else { return }
        resolved[index] = true
        pending -= 1
        if pending == 0 { finishSnapshots() }
    }

    /// Decodes the whole frame with HiscoreWire and checks it against the subscription and the scan.
    private func deepVerify(
        _ body: UnsafeRawBufferPointer, spec: StreamSubscriptionSpec, callID: UInt64, version: UInt64, snapshot: Bool
    ) {
        counters.deepVerified += 1
        let envelope: ResponseEnvelope
        do {
            envelope = try WireCodec.decodeResponse(body)
        } catch {
            counters.errors.add("verify: HiscoreWire cannot decode an event: \(error)")
            return
        }
        guard envelope.callID == callID, envelope.status == nil || envelope.status?.code == .ok,
            case .event(let event)? = envelope.result
        else {
            counters.errors.add("verify: not an event frame for call \(callID)")
            return
        }
        guard event.boardVersion == version, event.snapshot == snapshot else {
            counters.errors.add("verify: decoded version/snapshot differ from the scan")
            return
        }
        switch (spec.kind, event.change) {
        case (.player, .player(let change)):
            let expected = LoadPlayerID.string(spec.player)
            if change.present, change.entry.playerID != expected {
                counters.errors.add("verify: player event for \(change.entry.playerID), subscribed \(expected)")
            } else if change.present, change.entry.rank == 0 {
                counters.errors.add("verify: present player without a rank")
            }
        case (.top, .window(let window)):
            if window.windowSize > options.topN {
                counters.errors.add("verify: top window of \(window.windowSize) > \(options.topN)")
            }
            if snapshot {
                for (offset, entry) in window.entries.enumerated() where entry.rank != UInt64(offset + 1) {
                    counters.errors.add("verify: top snapshot rank \(entry.rank) at position \(offset)")
                    break
                }
            }
        default:
            counters.errors.add("verify: event kind does not match the subscription")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !closedByUs { counters.errors.add("subscriber connection closed by the server") }
        if !snapshotsDone {
            snapshotsDone = true
            snapshotPromise.fail(LoadProtocolError("subscriber connection closed before every snapshot arrived"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        counters.errors.add("subscriber connection error: \(error)")
        closedByUs = true
        context.close(promise: nil)
    }
}

enum StreamTag {
    /// Response.result.event = 22.
    static let eventResult = 22
}

/// The subscriber connections of one run.
final class StreamSubscriberSet {
    private(set) var channels: [Channel] = []
    private var handlers: [NIOLoopBound<StreamSubscriberHandler>] = []
    let total: Int

    /// Connects `connections` connections and spreads `specs` over them round-robin (so every
    /// connection holds a mix of player subscriptions and top watchers); returns once every
    /// subscription's first event (the snapshot) arrived (or was refused).
    init(
        specs: [StreamSubscriptionSpec], connections: Int, host: String, port: Int, options: StreamSubscriberOptions,
        group: MultiThreadedEventLoopGroup
    ) throws {
        total = specs.count
        var perConnection = [[StreamSubscriptionSpec]](repeating: [], count: connections)
        for (index, spec) in specs.enumerated() { perConnection[index % connections].append(spec) }
        let loops = Array(group.makeIterator())
        var snapshotFutures: [EventLoopFuture<StreamSubscriberCounters>] = []
        for index in 0..<connections {
            let loop = loops[index % loops.count]
            let promise = loop.makePromise(of: StreamSubscriberCounters.self)
            let bound = loop.makePromise(of: NIOLoopBound<StreamSubscriberHandler>.self)
            snapshotFutures.append(promise.futureResult)
            let mine = perConnection[index]
            let bootstrap = ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = StreamSubscriberHandler(specs: mine, options: options, snapshotPromise: promise)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        bound.succeed(NIOLoopBound(handler, eventLoop: channel.eventLoop))
                    }
                }
            do {
                channels.append(try bootstrap.connect(host: host, port: port).wait())
                handlers.append(try bound.futureResult.wait())
            } catch {
                promise.fail(error)
                bound.fail(error)
                for channel in channels { channel.close(promise: nil) }
                throw LoadProtocolError("cannot connect to \(host):\(port): \(error)")
            }
        }
        var firstError: Error? = nil
        for future in snapshotFutures {
            do { _ = try future.wait() } catch { if firstError == nil { firstError = error } }
        }
        if let firstError {
            for channel in channels { channel.close(promise: nil) }
            throw firstError
        }
    }

    func recordFrom(baseVersion: UInt64) throws {
        let futures = handlers.map { handler in
            handler.eventLoop.submit { handler.value.recordFrom(baseVersion: baseVersion) }
        }
        for future in futures { try future.wait() }
    }

    func poll() throws -> StreamSubscriberCounters {
        var merged = StreamSubscriberCounters()
        let futures = handlers.map { handler in handler.eventLoop.submit { handler.value.liveCounters } }
        for future in futures { merged.merge(try future.wait()) }
        return merged
    }

    /// Takes every connection's records and closes the connections.
    func collect() throws -> StreamSubscriberResult {
        var merged = StreamSubscriberResult(counters: StreamSubscriberCounters(), playerRecords: [], topRecords: [])
        let futures = handlers.map { handler in
            handler.eventLoop.submit {
                handler.value.closing()
                return handler.value.takeResult()
            }
        }
        for future in futures {
            let one = try future.wait()
            merged.counters.merge(one.counters)
            merged.playerRecords += one.playerRecords
            merged.topRecords += one.topRecords
            merged.topChanges += one.topChanges
        }
        for channel in channels { try? channel.close().wait() }
        channels = []
        handlers = []
        return merged
    }

    deinit {
        for channel in channels { channel.close(promise: nil) }
    }
}
