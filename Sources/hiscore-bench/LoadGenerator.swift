import Histogram
import NIOCore
import NIOPosix

// The load generator: N connections on a small NIO event loop group, each a `LoadHandler` that
// keeps `pipeline` operations in flight (closed loop) or starts them at fixed intended times
// (open loop, `--rate`), records every operation's latency in an HdrHistogram (microseconds) and
// counts every failed reply. The protocol is a `LoadWire` (Hiscore frames or Redis RESP).

/// What one run of connections does.
struct LoadRunPlan: Sendable {
    var target: LoadTarget
    var host: String
    var port: Int
    var connections: Int
    /// Closed loop: operations each connection keeps in flight. Open loop: ignored (see maxInflight).
    var pipeline: Int
    /// nil = preload.
    var workload: LoadWorkload?
    /// Total operations (split evenly over the connections). Preload: the players.
    var operations: Int
    /// Open loop: total operations per second over all connections; nil = closed loop.
    var rate: Double?
    /// Open loop: most operations in flight per connection (later ones wait, and their latency
    /// still counts from their intended time).
    var maxInflight: Int
    var wire: LoadWireOptions
    var seed: UInt64
}

/// What one connection reports when it is done.
struct LoadConnectionResult: Sendable {
    var histogram: Histogram<UInt64>
    var completed = 0
    var failedOperations = 0
    var errors = LoadErrorCounts()
    var stats = LoadWireStats()
    /// Open loop: operations that could not start at their intended time (in-flight cap).
    var lateStarts = 0
}

/// Tells every handler to start sending.
struct LoadStartEvent: Sendable {
    var startNanos: UInt64
}

@inline(__always)
func loadNowNanos() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

final class LoadHandler<Wire: LoadWire>: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var wire: Wire
    private var source: LoadOpSource
    private var slots: [LoadSlot]
    private var freeSlots: [Int]
    private let inflightLimit: Int
    private var toStart: Int
    private let total: Int
    private var result: LoadConnectionResult
    private var inbound: ByteBuffer? = nil
    private var outbound: ByteBuffer
    private var started = false
    private let completion: ConnectionCompletion<LoadConnectionResult>
    // Open loop.
    private let intervalNanos: UInt64?
    private let phaseNanos: UInt64
    private var nextIntended: UInt64 = 0
    private var timerArmedFor: UInt64 = 0
    private weak var channel: Channel?

    init(plan: LoadRunPlan, connectionIndex: Int, promise: EventLoopPromise<LoadConnectionResult>) {
        self.wire = Wire(options: plan.wire)
        if let workload = plan.workload {
            source = LoadOpSource(
                workload: workload, players: plan.wire.players, seed: plan.seed, connectionIndex: connectionIndex)
            let share = plan.operations / plan.connections + (connectionIndex < plan.operations % plan.connections ? 1 : 0)
            total = share
        } else {
            source = LoadOpSource(
                preloadPlayers: plan.wire.players, connectionIndex: connectionIndex, connections: plan.connections)
            total = LoadOpSource.preloadBatches(
                players: plan.wire.players, connectionIndex: connectionIndex, connections: plan.connections)
        }
        toStart = total
        if let rate = plan.rate {
            let perConnection = rate / Double(plan.connections)
            let interval = UInt64(max(1, (1e9 / perConnection).rounded()))
            intervalNanos = interval
            phaseNanos = interval * UInt64(connectionIndex) / UInt64(plan.connections)
            inflightLimit = plan.maxInflight
        } else {
            intervalNanos = nil
            phaseNanos = 0
            inflightLimit = plan.pipeline
        }
        slots = [LoadSlot](repeating: LoadSlot(), count: inflightLimit)
        freeSlots = Array((0..<inflightLimit).reversed())
        var histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        result = LoadConnectionResult(histogram: histogram)
        outbound = ByteBufferAllocator().buffer(capacity: 4096)
        self.completion = ConnectionCompletion(promise)
    }

    func channelActive(context: ChannelHandlerContext) {
        channel = context.channel
        var preface = context.channel.allocator.buffer(capacity: 16)
        wire.writePreface(into: &preface)
        if preface.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(preface), promise: nil) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let start = event as? LoadStartEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard !started else { return }
        started = true
        nextIntended = start.startNanos + phaseNanos
        if total == 0 {
            finish(context: context)
            return
        }
        pump(context: context, now: loadNowNanos())
        flush(context: context)
    }

    /// Starts every operation that may start now.
    @inline(__always)
    private func pump(context: ChannelHandlerContext, now: UInt64) {
        guard started, !completion.isDone else { return }
        if let interval = intervalNanos {
            while toStart > 0, nextIntended <= now, let slot = freeSlots.popLast() {
                if now - nextIntended > 1_000_000 { result.lateStarts += 1 }
                start(slot: slot, at: nextIntended)
                nextIntended += interval
            }
            if toStart > 0, nextIntended > now, timerArmedFor != nextIntended {
                timerArmedFor = nextIntended
                context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(nextIntended)) {
                    [self] in
                    timerArmedFor = 0  // re-arm below even if the timer fired early
                    guard !completion.isDone, let ctx = channelContext(of: context) else { return }
                    pump(context: ctx, now: loadNowNanos())
                    flush(context: ctx)
                }
            }
        } else {
            while toStart > 0, let slot = freeSlots.popLast() {
                start(slot: slot, at: now)
            }
        }
    }

    /// The context, if the handler is still in a live pipeline.
    private func channelContext(of context: ChannelHandlerContext) -> ChannelHandlerContext? {
        channel?.isActive == true ? context : nil
    }

    @inline(__always)
    private func start(slot: Int, at startNanos: UInt64) {
        toStart -= 1
        let op = source.next()
        slots[slot] = LoadSlot(startNanos: startNanos, kind: op.kind, phase: 0, player: op.player, aux: op.score)
        wire.encode(op, slot: slot, slots: &slots, into: &outbound)
    }

    private func flush(context: ChannelHandlerContext) {
        guard outbound.readableBytes > 0 else { return }
        let chunk = outbound
        outbound = context.channel.allocator.buffer(capacity: max(4096, chunk.readableBytes))
        context.writeAndFlush(wrapOutboundOut(chunk), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let incoming = unwrapInboundIn(data)
        if var buffer = inbound, buffer.readableBytes > 0 {
            inbound = nil  // keep the buffer uniquely referenced while appending
            var incoming = incoming
            buffer.writeBuffer(&incoming)
            inbound = buffer
        } else {
            inbound = incoming
        }
        guard var buffer = inbound else { return }
        inbound = nil
        var now: UInt64 = 0
        do {
            while buffer.readableBytes > 0 {
                let reply = try wire.nextReply(from: &buffer, slots: &slots, outbound: &outbound, errors: &result.errors)
                switch reply {
                case .incomplete:
                    break
                case .ignored, .followUp:
                    continue
                case .done(let slot, let failures):
                    if now == 0 { now = loadNowNanos() }
                    let startNanos = slots[slot].startNanos
                    slots[slot].startNanos = 0
                    freeSlots.append(slot)
                    result.completed += 1
                    if failures > 0 { result.failedOperations += failures }
                    let micros = now > startNanos ? (now - startNanos + 500) / 1000 : 0
                    _ = result.histogram.record(max(micros, 1))
                    continue
                }
                break
            }
        } catch {
            fail(context: context, error)
            return
        }
        if buffer.readableBytes > 0 {
            if buffer.readerIndex > 65536 { buffer.discardReadBytes() }
            inbound = buffer
        }
        if result.completed == total {
            flush(context: context)
            finish(context: context)
            return
        }
        if now != 0 { pump(context: context, now: now) }
        flush(context: context)
    }

    private func finish(context: ChannelHandlerContext) {
        guard !completion.isDone else { return }
        result.stats = wire.stats
        completion.succeed(result, closing: context)
    }

    private func fail(context: ChannelHandlerContext, _ error: Error) {
        completion.fail(error, closing: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(
            context: context,
            LoadProtocolError("connection closed by the server after \(result.completed) of \(total) operations"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(context: context, error)
    }
}

/// The merged outcome of a run.
struct LoadRunResult: Sendable {
    var histogram: Histogram<UInt64>
    var completed: Int
    var failedOperations: Int
    var errors: LoadErrorCounts
    var stats: LoadWireStats
    var lateStarts: Int
    var wallSeconds: Double
}

/// Runs `plan`: connects every connection, calls `beforeStart` (to sample server CPU), starts them
/// all, waits for all to finish, then calls `afterEnd`.
func runLoad(
    plan: LoadRunPlan, group: MultiThreadedEventLoopGroup, beforeStart: () -> Void, afterEnd: () -> Void
) throws -> LoadRunResult {
    let outcome: FleetOutcome<LoadConnectionResult>
    do {
        outcome = try runConnections(
            count: plan.connections, host: plan.host, port: plan.port, group: group, beforeStart: beforeStart
        ) { index, promise -> any ChannelHandler in
            switch plan.target {
            case .hiscore: LoadHandler<HiscoreLoadWire>(plan: plan, connectionIndex: index, promise: promise)
            case .redis: LoadHandler<RespLoadWire>(plan: plan, connectionIndex: index, promise: promise)
            }
        }
    } catch {
        afterEnd()
        throw error
    }
    afterEnd()
    guard let first = outcome.results.first else { throw LoadProtocolError("no connections") }
    var result = LoadRunResult(
        histogram: first.histogram, completed: first.completed, failedOperations: first.failedOperations,
        errors: first.errors, stats: first.stats, lateStarts: first.lateStarts,
        wallSeconds: Double(outcome.endNanos - outcome.startNanos) / 1e9)
    for one in outcome.results.dropFirst() {
        result.histogram.add(one.histogram)
        result.completed += one.completed
        result.failedOperations += one.failedOperations
        result.errors.merge(one.errors)
        result.stats.merge(one.stats)
        result.lateStarts += one.lateStarts
    }
    return result
}
