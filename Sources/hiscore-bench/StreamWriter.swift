import Histogram
import NIOCore
import NIOPosix

// `hiscore-bench streams`: the writers. Each writer connection submits at a fixed rate (open loop)
// to the board "lb" with the server bench's own request encoding and reply scanning
// (`HiscoreLoadWire`, `LoadOpSource` with the `submit` workload: a random score in [0, players)
// for a random player), and records the monotonic time of every successful acknowledgement. The
// event-delay computation maps board versions to those ack times (StreamDelay.swift).

/// What one writer connection reports.
struct StreamWriterResult: Sendable {
    /// Monotonic ns of each successful acknowledgement, in arrival order on this connection.
    var ackNanos: [UInt64]
    /// The same acknowledgements with what each write set (for the top watchers' staleness).
    var ackedWrites: [AckedWrite] = []
    /// Latency from the intended start (coordinated-omission corrected), microseconds.
    var histogram: Histogram<UInt64>
    var completed = 0
    var failed = 0
    var lateStarts = 0
    /// Writes never sent: not started by the stop time (the server fell behind).
    var unsent = 0
    /// Acknowledged writes that set the score the player already had (no new board version).
    var unchanged = 0
    var errors = LoadErrorCounts()
    var deepVerified = 0
}

struct StreamWriterPlan: Sendable {
    var host: String
    var port: Int
    var connections: Int
    var rate: Double
    /// Total writes over all connections.
    var writes: Int
    var maxInflight: Int
    var wire: LoadWireOptions
    var seed: UInt64
    /// Distinguishes the PRNG streams of the baseline and the measured phase.
    var phase: Int
    /// Timer granularity: a writer wakes up at most once per `paceNanos` and then sends every
    /// write whose intended time has come (latency still counts from the intended time).
    var paceNanos: UInt64
    /// After this long from the start no write is started any more (the rest count as unsent);
    /// the writes in flight are still awaited.
    var stopAfterNanos: UInt64
}

final class StreamWriterHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var wire: HiscoreLoadWire
    private var source: LoadOpSource
    private var slots: [LoadSlot]
    private var freeSlots: [Int]
    private var toStart: Int
    private var total: Int
    private let stopAfterNanos: UInt64
    private var stopAt: UInt64 = .max
    private var result: StreamWriterResult
    private var inbound: ByteBuffer? = nil
    private var outbound: ByteBuffer
    private var started = false
    private let completion: ConnectionCompletion<StreamWriterResult>
    private let intervalNanos: UInt64
    private let phaseNanos: UInt64
    private var nextIntended: UInt64 = 0
    private var timerArmed = false
    private let paceNanos: UInt64
    private weak var channel: Channel?

    init(plan: StreamWriterPlan, connectionIndex: Int, promise: EventLoopPromise<StreamWriterResult>) {
        wire = HiscoreLoadWire(options: plan.wire)
        source = LoadOpSource(
            workload: .submit, players: plan.wire.players, seed: plan.seed,
            connectionIndex: connectionIndex + 1000 * plan.phase)
        total = plan.writes / plan.connections + (connectionIndex < plan.writes % plan.connections ? 1 : 0)
        toStart = total
        let perConnection = plan.rate / Double(plan.connections)
        let interval = UInt64(max(1, (1e9 / perConnection).rounded()))
        intervalNanos = interval
        phaseNanos = interval * UInt64(connectionIndex) / UInt64(plan.connections)
        paceNanos = plan.paceNanos
        stopAfterNanos = plan.stopAfterNanos
        slots = [LoadSlot](repeating: LoadSlot(), count: plan.maxInflight)
        freeSlots = Array((0..<plan.maxInflight).reversed())
        var histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        var acks: [UInt64] = []
        acks.reserveCapacity(total)
        result = StreamWriterResult(ackNanos: acks, histogram: histogram)
        outbound = ByteBufferAllocator().buffer(capacity: 4096)
        self.completion = ConnectionCompletion(promise)
    }

    func channelActive(context: ChannelHandlerContext) {
        channel = context.channel
        var preface = context.channel.allocator.buffer(capacity: 16)
        wire.writePreface(into: &preface)
        context.writeAndFlush(wrapOutboundOut(preface), promise: nil)
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
        stopAt = start.startNanos + stopAfterNanos
        if total == 0 {
            finish(context: context)
            return
        }
        context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(stopAt)) { [self] in
            guard !completion.isDone, channel?.isActive == true else { return }
            stopStarting()
            if result.completed == total { finish(context: context) }
        }
        pump(context: context, now: loadNowNanos())
        flush(context: context)
    }

    /// No more new writes: what was not started counts as unsent.
    private func stopStarting() {
        guard toStart > 0 else { return }
        result.unsent += toStart
        total -= toStart
        toStart = 0
    }

    private func pump(context: ChannelHandlerContext, now: UInt64) {
        guard started, !completion.isDone else { return }
        if now >= stopAt { stopStarting() }
        while toStart > 0, nextIntended <= now, let slot = freeSlots.popLast() {
            if now - nextIntended > paceNanos + 1_000_000 { result.lateStarts += 1 }
            toStart -= 1
            let op = source.next()
            slots[slot] = LoadSlot(startNanos: nextIntended, kind: op.kind, phase: 0, player: op.player, aux: op.score)
            wire.encode(op, slot: slot, slots: &slots, into: &outbound)
            nextIntended += intervalNanos
        }
        // One timer at a time: deadlines only move forward, so a pending timer is never too late.
        if toStart > 0, nextIntended > now, !timerArmed {
            timerArmed = true
            let deadline = max(nextIntended, now + paceNanos)
            context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) { [self] in
                timerArmed = false
                guard !completion.isDone, channel?.isActive == true else { return }
                pump(context: context, now: loadNowNanos())
                flush(context: context)
            }
        }
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
            inbound = nil
            var incoming = incoming
            buffer.writeBuffer(&incoming)
            inbound = buffer
        } else {
            inbound = incoming
        }
        guard var buffer = inbound else { return }
        inbound = nil
        // One timestamp per read: every reply in this read arrived by now.
        let now = loadNowNanos()
        var any = false
        do {
            readLoop: while buffer.readableBytes > 0 {
                let reply = try wire.nextReply(from: &buffer, slots: &slots, outbound: &outbound, errors: &result.errors)
                switch reply {
                case .incomplete:
                    break readLoop
                case .ignored, .followUp:
                    continue
                case .done(let slot, let failures):
                    any = true
                    let startNanos = slots[slot].startNanos
                    slots[slot].startNanos = 0
                    freeSlots.append(slot)
                    result.completed += 1
                    if failures > 0 {
                        result.failed += failures
                    } else if slots[slot].changed {
                        // Only a write that changed the stored score moves the board version:
                        // a `set` of the score the player already has must not shift the mapping.
                        result.ackNanos.append(now)
                        result.ackedWrites.append(AckedWrite(
                            player: Int32(truncatingIfNeeded: slots[slot].player), score: Int64(slots[slot].aux), ackNanos: now))
                    } else {
                        result.unchanged += 1
                    }
                    let micros = now > startNanos ? (now - startNanos + 500) / 1000 : 0
                    _ = result.histogram.record(max(micros, 1))
                }
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
            finish(context: context)
            return
        }
        if any { pump(context: context, now: now) }
        flush(context: context)
    }

    private func finish(context: ChannelHandlerContext) {
        guard !completion.isDone else { return }
        result.deepVerified = wire.stats.deepVerified
        completion.succeed(result, closing: context)
    }

    private func fail(context: ChannelHandlerContext, _ error: Error) {
        completion.fail(error, closing: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context: context, LoadProtocolError("writer connection closed after \(result.completed) of \(total) writes"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(context: context, error)
    }
}

/// One acknowledged `set` write: the player (index in `p:%012d`), the score it set, when acked.
struct AckedWrite: Sendable {
    var player: Int32
    var score: Int64
    var ackNanos: UInt64
}

/// The merged outcome of a write phase.
struct StreamWritePhase: Sendable {
    /// Every successful ack time, sorted (index k-1 = the k-th ack of the phase).
    var ackNanos: [UInt64]
    /// Every acknowledged write, sorted by ack time (index k-1 = the k-th ack, as `ackNanos`).
    var ackedWrites: [AckedWrite]
    var histogram: Histogram<UInt64>
    var completed: Int
    var failed: Int
    var lateStarts: Int
    var unsent: Int
    var unchanged: Int
    var errors: LoadErrorCounts
    var deepVerified: Int
    var startNanos: UInt64
    var endNanos: UInt64
    var wallSeconds: Double { Double(endNanos - startNanos) / 1e9 }
}

/// Connects the writers, calls `beforeStart`, runs `plan.writes` writes at `plan.rate`, waits for
/// every acknowledgement.
func runStreamWriters(
    plan: StreamWriterPlan, group: MultiThreadedEventLoopGroup, beforeStart: () -> Void
) throws -> StreamWritePhase {
    let outcome: FleetOutcome<StreamWriterResult> = try runConnections(
        count: plan.connections, host: plan.host, port: plan.port, group: group, beforeStart: beforeStart
    ) { index, promise in
        StreamWriterHandler(plan: plan, connectionIndex: index, promise: promise)
    }
    guard let first = outcome.results.first else { throw LoadProtocolError("no writer connections") }
    var phase = StreamWritePhase(
        ackNanos: first.ackNanos, ackedWrites: first.ackedWrites, histogram: first.histogram, completed: first.completed, failed: first.failed,
        lateStarts: first.lateStarts, unsent: first.unsent, unchanged: first.unchanged, errors: first.errors, deepVerified: first.deepVerified,
        startNanos: outcome.startNanos, endNanos: outcome.endNanos)
    for one in outcome.results.dropFirst() {
        phase.ackNanos += one.ackNanos
        phase.ackedWrites += one.ackedWrites
        phase.histogram.add(one.histogram)
        phase.completed += one.completed
        phase.failed += one.failed
        phase.lateStarts += one.lateStarts
        phase.unsent += one.unsent
        phase.unchanged += one.unchanged
        phase.errors.merge(one.errors)
        phase.deepVerified += one.deepVerified
    }
    phase.ackNanos.sort()
    phase.ackedWrites.sort { $0.ackNanos < $1.ackNanos }
    return phase
}
