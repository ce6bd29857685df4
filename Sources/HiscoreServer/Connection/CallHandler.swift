import HiscoreAuth
import HiscoreCore
import Glibc
import HiscoreWire
import NIOCore

/// The per-connection call multiplexer: decodes requests, enforces the in-flight bound, answers
/// what needs no shard, batches the rest per read burst for the executor, writes responses in
/// completion order, and applies backpressure (no reads while the socket cannot take writes, so
/// a client that does not read its responses cannot make the server buffer without bound).
final class CallHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let router: CallRouter
    private let executor: BatchExecutor
    private let limits: ServerLimits
    /// `limits`' list bounds, checked while decoding (before a list becomes Swift values).
    private let listLimits: RequestListLimits
    private let hello: ServerHello
    private let registry: ConnectionRegistry
    private let streams: StreamCoordinator?
    private let connectionID: UInt64
    private var context: ChannelHandlerContext?
    private var sink: StreamSink?
    /// Open subscriptions by the client's call id; they do not count as in-flight calls. The hub
    /// knows each by its `serial` (see `inflight`).
    private var subscriptions: [UInt64: (board: BoardHandle, feed: Bool, serial: UInt64, tokenExpiry: Int64?, windowBytes: Int, windowEntries: Int)] = [:]
    /// Ends the subscriptions opened with a player token once the token expires (armed only
    /// while such subscriptions are open, for the earliest expiry).
    private var tokenExpiryCheck: Scheduled<Void>?
    private var tokenExpiryCheckAt: Int64?
    /// The client's call id of each open subscription, by serial.
    private var subscriptionIDs: [UInt64: UInt64] = [:]

    private var prefaceDone = false
    private var prefaceTimeout: Scheduled<Void>?
    /// Calls answered neither by a response nor by a cancel yet, by *serial* and by the client's
    /// call id, with when and what they were.
    ///
    /// Why serials: a client may reuse a call id as soon as its cancel is answered (a cancelled
    /// one: a backup or a reset cannot be cancelled and keeps its id until answered), while the
    /// cancelled call's work may still be under way on a shard. Everything past this handler (plans,
    /// the executor, deferred work, the stream hubs) knows a call only by its serial, unique per
    /// connection, and the client's id is put back on the response here; a late answer to a
    /// cancelled call then finds no serial and is dropped instead of answering the new call.
    private var inflight = InflightCalls<CallStart>()
    private var nextSerial: UInt64 = 1
    private let telemetry: Telemetry?
    private var metrics: LoopMetrics?
    /// This connection's loop's finished plans, reused by its calls.
    private var plans: PlanPool?
    /// The server's keys and token verifier; replaced when the keys are reloaded (`replaceAccess`).
    private var access: AccessControl
    /// The API keys accepted on this connection (by `authenticate` or a call's own token, as
    /// digests: keys are not kept), with the role each had: a reload of the keys that removes
    /// one or changes its role closes the connection. At most the configured keys.
    private var acceptedKeys: [APIKeys.KeyID: Role] = [:]
    /// Which replacement of the server's keys `access` is (`AccessReplacedEvent`).
    private var accessGeneration: UInt64
    /// Set by a successful `authenticate`; per-call `auth_token`s override it for their call.
    private var connectionPrincipal: Principal?
    private var failedAuthentications = 0
    /// On a server with credentials, frames above this size from a connection that has not
    /// authenticated are decoded only if they carry a valid `auth_token` (read without decoding).
    /// Everything allowed without credentials (ping, authenticate with a token of at most
    /// `maxAuthTokenBytes`) fits well under it.
    static let maxFrameBytesWithoutCredentials = InboundFrames.gatedFrameBytes
    private let securityLog: SecurityEventLog?
    /// Until when the credentials accepted on this connection (`authenticate`, or a call's own
    /// token) hold, in unix seconds with the tokens' leeway: 0 = none yet, Int64.max = one that
    /// never expires (an API key, a token without a representable expiry).
    private var credentialsValidUntil: Int64 = 0
    private var authenticationDeadline: Scheduled<Void>?
    private var lastToken: (token: String, principal: Principal)?
    private var rateLimit: TokenBucket

    struct CallStart {
        let method: MetricMethod
        let at: NIODeadline
        var deferred = false
        /// Its items, for a submit batch (counted in `inflightBatchItems` while it is in flight).
        var batchItems = 0
    }
    /// Items of this connection's submit batches in flight (see `holdsForBatches`).
    private var inflightBatchItems = 0
    /// The submit-batch items in flight on this connection's loop, over its connections (nil
    /// off the shard loops: tests, tools).
    private var batchBudget: BatchItemBudget?
    /// Whether `batchBudget` will resume this connection once its loop is under its share.
    private var waitingForBudget = false
    /// Whether frames and reads are held (`holdsFrames`, `read`) for submit batches in flight:
    /// the connection's own are at `maxInflightBatchItems`, or it has one in flight and its loop
    /// is at its share of `maxServerInflightBatchItems` (`BatchItemBudget`). Answers to its
    /// batches, or the loop going under its share, bring it back.
    private var holdsForBatches: Bool {
        inflightBatchItems >= max(1, limits.maxInflightBatchItems)
            || (inflightBatchItems > 0 && batchBudget?.isFull == true)
    }
    /// The serial of this connection's `erase_player` call in flight, if any: the frames after
    /// it wait (`holdsForErase`) until it is answered. An erase over more boards than one phase
    /// holds (`ErasePlayerPlan`) reaches the later boards in later phases, and a write sent after
    /// it to such a board would otherwise be applied first and erased after, against the order a
    /// connection's writes keep (found by a race hunt: 300 boards, 20 of 20 pipelined submits lost).
    private var eraseInFlight: UInt64?
    private var holdsForErase: Bool { eraseInFlight.map { inflight.contains(serial: $0) } ?? false }
    private var batch: [PlannedCall] = []
    private var pendingFlush = false
    /// Response frames written since the last flush.
    private var outbound: ByteBuffer?
    /// The last flushed buffer, cleared and written again by the next batch once the channel has
    /// sent it (until then the channel shares it, and clearing it takes a fresh one).
    private var spareOutbound: ByteBuffer?
    /// Largest response buffer a connection keeps between batches (bigger ones are freed).
    static let keptOutboundCapacity = 8192
    /// How long a connection closed with a status of its own (revoked key, failed
    /// authentication, protocol fault) waits for the client to read that status, and the answers
    /// before it, when its socket is full: a close at once would drop them (`closeAfterWriting`).
    static let closingGrace = TimeAmount.seconds(5)
    /// Answers of one read gathered past this many bytes are flushed before the read's next
    /// frame (`holdsFrames`).
    static let burstFlushBytes = 256 << 10
    /// Frames of a read wait in `inbound` for the client to read its answers (`holdsFrames`).
    private var framesHeld = false
    /// Bytes in `outbound` (kept apart: looking into the buffer for each frame would retain it).
    private var outboundBytes = 0
    private var readHeld = false
    /// Since when reads have been held without the client reading its answers: from the hold's
    /// start or the last drain of the socket during it, whichever is later (`armFrameCheck`).
    private var readHeldSince: NIODeadline?
    /// Since when the socket has been full (the channel unwritable): the client has taken no
    /// answer byte since (nil while writable). The idle check closes a client gone this long.
    private var unwritableSince: NIODeadline?
    private var draining = false
    private var closed = false
    /// The preface, then frames, out of the connection's bytes.
    private let inbound: InboundFrames
    /// When the last bytes arrived (connection start until then): the time of the read batch.
    private var lastRead = NIODeadline.now()
    /// When the last complete frame (or the preface) arrived: what the idle timeout measures.
    /// Not `lastRead`: a byte of an unfinished frame now and then must not keep a connection
    /// (and the partial frame it holds, up to max_frame_bytes) alive.
    private var lastMessage = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?
    /// Since when the bytes held for an unfinished frame have been waiting for the rest of it.
    private var partialSince: NIODeadline?
    private var frameCheck: Scheduled<Void>?

    init(
        router: CallRouter, executor: BatchExecutor, limits: ServerLimits, hello: ServerHello, registry: ConnectionRegistry,
        streams: StreamCoordinator?, connectionID: UInt64, telemetry: Telemetry? = nil,
        access: AccessControl = AccessControl(), accessGeneration: UInt64 = 0, securityLog: SecurityEventLog? = nil
    ) {
        self.securityLog = securityLog
        self.telemetry = telemetry
        self.access = access
        self.accessGeneration = accessGeneration
        self.connectionPrincipal = access.isOpen ? .open : nil
        self.rateLimit = TokenBucket(rate: limits.maxCallsPerSecondPerConnection)
        self.router = router
        self.executor = executor
        self.limits = limits
        self.listLimits = RequestListLimits(maxBatchSubmits: limits.maxBatchSubmits, maxPlayerIDs: limits.maxPlayersPerQuery)
        self.hello = hello
        self.registry = registry
        self.streams = streams
        self.connectionID = connectionID
        self.inbound = InboundFrames(maxFrameBytes: limits.maxFrameBytes)
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        metrics = telemetry?.local(context.eventLoop)
        plans = executor.planPool(on: context.eventLoop)
        batchBudget = executor.batchItemBudget(on: context.eventLoop)
        if context.channel.isActive {
            armPrefaceTimeout(context)
            armIdleCheck(context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        metrics?.connectionsOpened += 1
        armPrefaceTimeout(context)
        armIdleCheck(context)
        armAuthenticationDeadline(context)
        context.fireChannelActive()
    }

    /// On a server with credentials, a connection that has not presented a valid one within
    /// `authenticationTimeoutSeconds` is closed: without credentials it can only ping, and pings
    /// would otherwise hold a connection slot (of `max_connections`) for as long as they come.
    /// The same holds once the player tokens it presented have expired: it gets the same time
    /// from their expiry to present a fresh one. One timer at a time, re-armed only for a token's
    /// expiry (never for API keys).
    private func armAuthenticationDeadline(_ context: ChannelHandlerContext, in seconds: Int64? = nil) {
        guard !access.isOpen else { return }
        let timeout = Int64(max(1, limits.authenticationTimeoutSeconds))
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        authenticationDeadline = context.eventLoop.scheduleTask(in: .seconds(seconds ?? timeout)) {
            let (handler, context) = loopBound.value
            handler.authenticationDeadline = nil
            let validUntil = handler.credentialsValidUntil
            guard !handler.closed, validUntil != .max else { return }
            let now = Int64(time(nil))
            let (deadline, overflow) = validUntil.addingReportingOverflow(timeout)
            if validUntil > 0, overflow || deadline > now {
                // At most a day ahead: a token may expire in a far year, and TimeAmount counts
                // nanoseconds in an Int64 (about 292 years).
                handler.armAuthenticationDeadline(context, in: overflow ? 86_400 : min(86_400, max(1, deadline - now)))
                return
            }
            let message = validUntil == 0
                ? "no valid credentials within \(handler.limits.authenticationTimeoutSeconds) s of connecting (authentication_timeout)"
                : "the player token of this connection expired and no valid credential followed within \(handler.limits.authenticationTimeoutSeconds) s (authentication_timeout)"
            handler.write(context, .failure(callID: 0, Status(.unauthenticated, message)))
            handler.closeAfterWriting(context)
        }
    }

    /// Records an accepted credential for the authentication deadline.
    private func noteAccepted(_ principal: Principal) {
        let validUntil: Int64 =
            if case .player(let claims) = principal {
                claims.lastValidSecond(leewaySeconds: PlayerTokenVerifier.leewaySeconds) ?? .max
            } else {
                .max
            }
        credentialsValidUntil = max(credentialsValidUntil, validUntil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        metrics?.connectionsClosed += 1
        metrics?.subscriptionsClosed += subscriptions.count
        prefaceTimeout?.cancel()
        idleCheck?.cancel()
        idleCheck = nil
        frameCheck?.cancel()
        frameCheck = nil
        tokenExpiryCheck?.cancel()
        tokenExpiryCheck = nil
        authenticationDeadline?.cancel()
        authenticationDeadline = nil
        inflight.removeAll()
        inflightBatchItems = 0
        batch.removeAll()
        sink?.markClosed()
        for subscription in subscriptions.values {
            streams?.unsubscribe(
                board: subscription.board, connectionID: connectionID, callID: subscription.serial, feed: subscription.feed)
        }
        subscriptions.removeAll()
        subscriptionIDs.removeAll()
        context.fireChannelInactive()
    }

    /// The idle timeout, kept here rather than by an `IdleStateHandler` in front (a pipeline
    /// stage and a clock read less per read): each complete frame stamps `lastMessage` with the
    /// time its read already took, and one timer per connection looks at it when the timeout could have passed,
    /// re-arming for the rest of it otherwise. A connection silent for `idleTimeoutSeconds` is
    /// closed unless it waits for answers or holds subscriptions (then it is looked at again a
    /// timeout later) — and those do not spare one whose client has not read for as long.
    private func armIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline? = nil) {
        guard idleCheck == nil || deadline != nil, !closed else { return }
        // At least a second: a zero timeout (an embedder's configuration) would re-arm at once
        // for as long as a call is open and spin the loop.
        let timeout = TimeAmount.seconds(Int64(max(1, limits.idleTimeoutSeconds)))
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(deadline: deadline ?? (lastMessage + timeout)) {
            let (handler, context) = loopBound.value
            handler.checkIdle(context, timeout: timeout)
        }
    }

    private func checkIdle(_ context: ChannelHandlerContext, timeout: TimeAmount) {
        guard !closed else { return }
        let now = NIODeadline.now()
        if now - lastMessage < timeout { return armIdleCheck(context, at: lastMessage + timeout) }
        // A frame on its way is governed by the frame timeout, not this one. A client that has
        // not taken an answer byte for the timeout (its socket full all along) is gone
        // whatever it has open: calls in flight or subscriptions would otherwise keep it, and
        // the answers queued for it (up to max_inflight_calls × max_frame_bytes), for as long
        // as its socket stays up.
        let notReading = !context.channel.isWritable && (unwritableSince.map { now - $0 >= timeout } ?? false)
        if (inflight.isEmpty && subscriptions.isEmpty && partialSince == nil) || notReading {
            closed = true
            idleCheck = nil
            context.close(promise: nil)
        } else {
            armIdleCheck(context, at: now + timeout)
        }
    }

    private func armPrefaceTimeout(_ context: ChannelHandlerContext) {
        guard prefaceTimeout == nil, !prefaceDone else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        prefaceTimeout = context.eventLoop.scheduleTask(in: .seconds(Int64(limits.prefaceTimeoutSeconds))) {
            let (handler, context) = loopBound.value
            guard !handler.prefaceDone else { return }
            context.close(promise: nil)
        }
    }

    // MARK: inbound

    /// Bytes are split into the preface and frames here (by `InboundFrames`, which keeps partial
    /// frames between reads) rather than by a `ByteToMessageHandler` in front: one pipeline
    /// stage, its `NIOAny` wrapping and its generic state machine less per frame (measured on one
    /// shard: 8% less server CPU per call at one call in flight per connection, 11-19% less at
    /// sixteen).
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        split(context, unwrapInboundIn(data))
    }

    /// Handles the frames of `bytes` (after any held back), holding the rest back when answers
    /// pile up for a client that does not read them (`holdsFrames`).
    private func split(_ context: ChannelHandlerContext, _ bytes: ByteBuffer) {
        var received = lastRead
        var messages = 0
        do {
            try inbound.feed(
                bytes,
                // A frame that ended the connection (a protocol fault) ends its read, too.
                stopped: { closed },
                held: { holdsFrames(context) },
                // A large frame from a connection without credentials is refused from its first
                // bytes, before the rest of it is buffered.
                admitsLargeFrame: { prefix, declared in
                    !refusesLargeFrameWithoutCredentials(context, prefix, length: declared, received: received)
                },
                // One clock read per read, not per frame: its frames arrived together.
                chunk: {
                    received = NIODeadline.now()
                    lastRead = received
                },
                message: { message in
                    messages += 1
                    lastMessage = received
                    switch message {
                    case .preface:
                        prefaceDone = true
                        prefaceTimeout?.cancel()
                        write(context, ResponseEnvelope(callID: 0, status: nil, result: .hello(hello)))
                    case .frame(let frame):
                        handleFrame(context, frame, received: received)
                    }
                })
        } catch {
            errorCaught(context: context, error: error)
            return
        }
        if inbound.heldBytes == 0 {
            partialSince = nil
        } else if messages > 0 || partialSince == nil {
            partialSince = received  // a frame started in this read
            armFrameCheck(context)
        }
    }

    /// Whether the frames left in this read wait (in `inbound`) until the client reads its
    /// answers. Calls answered on the spot (list_boards, describe_board, ping, refusals) take no
    /// in-flight slot, and their answers gather in `outbound` until the read's end: one read of
    /// 12-byte list_boards frames could pile up 2 GiB of 170 KB answers before the flush that
    /// lets writability hold reads. So past `burstFlushBytes` they are flushed at once, and once
    /// the channel is not writable the read's other frames wait for it, as further reads do.
    private func holdsFrames(_ context: ChannelHandlerContext) -> Bool {
        if framesHeld { return true }
        if holdsForErase {
            framesHeld = true
            return true
        }
        if holdsForBatches {
            framesHeld = true
            metrics?.batchItemHolds += 1
            waitForLoopBudget(context)
            return true
        }
        guard outboundBytes >= Self.burstFlushBytes else { return false }
        flushIfNeeded(context)
        if !context.channel.isWritable { framesHeld = true }
        return framesHeld
    }

    /// Closes a connection whose unfinished frame has waited `frameTimeoutSeconds` for the rest
    /// of its bytes: a client trickling a large frame in (or stalling in the middle of one) holds
    /// up to max_frame_bytes of buffer, and the idle timeout alone would let it for 300 s, longer
    /// while it has calls in flight. One timer per connection, armed only while a frame is
    /// unfinished.
    private func armFrameCheck(_ context: ChannelHandlerContext) {
        guard frameCheck == nil, let since = partialSince, !closed else { return }
        let timeout = TimeAmount.seconds(Int64(max(1, limits.frameTimeoutSeconds)))
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        frameCheck = context.eventLoop.scheduleTask(deadline: since + timeout) {
            let (handler, context) = loopBound.value
            handler.frameCheck = nil
            guard let since = handler.partialSince, !handler.closed else { return }
            // While the server holds reads (the client is not reading our answers) the frame
            // cannot finish: that time is not the client's, up to the idle timeout since it last
            // read (`readHeldSince`). A client that never reads again would otherwise keep the
            // connection (and the answers buffered for it) forever: the idle check leaves a
            // connection with a frame on its way to this one.
            let idleTimeout = TimeAmount.seconds(Int64(max(1, handler.limits.idleTimeoutSeconds)))
            // A hold while the channel is writable is the server's (the connection's own batches
            // in flight, `maxInflightBatchItems`), not the client's: it never counts.
            let heldTooLong = !context.channel.isWritable
                && (handler.readHeldSince.map { NIODeadline.now() - $0 >= idleTimeout } ?? false)
            if handler.readHeld && !heldTooLong { handler.partialSince = .now() }  // looked at again a timeout later
            if (handler.readHeld && !heldTooLong) || NIODeadline.now() - since < timeout { return handler.armFrameCheck(context) }
            handler.closed = true
            handler.metrics?.protocolFaults += 1
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        dispatchBatch(context)
        flushIfNeeded(context)
        #if !HISCORE_NO_TELEMETRY
        // The read's own time (taken as it arrived, microseconds ago) serves the one-second
        // window as well as a fresh clock read would.
        if let metrics, let telemetry { telemetry.endOfBatch(metrics, now: lastRead) }
        #endif
        context.fireChannelReadComplete()
    }

    private func handleFrame(_ context: ChannelHandlerContext, _ frame: ByteBuffer, received: NIODeadline) {
        #if !HISCORE_NO_TELEMETRY
        metrics?.bytesIn += frame.readableBytes + FrameParser.headerLength
        #endif
        // Before decoding: every frame costs a decode (up to max_frame_bytes of protobuf-c work),
        // so undecodable or method-less frames must spend the connection's budget too.
        guard rateLimit.take(now: received) else {
            let callID = frame.withUnsafeReadableBytes { WireCodec.peekCallID($0) } ?? 0
            answer(context, .failure(callID: callID, Status(
                .resourceExhausted,
                "more than \(limits.maxCallsPerSecondPerConnection) calls per second on this connection (max_calls_per_second)")),
                CallStart(method: .unknown, at: received))
            return
        }
        let refused = frame.withUnsafeReadableBytes {
            refusesLargeFrameWithoutCredentials(context, $0, length: $0.count, received: received)
        }
        if refused { return }
        let request: RequestEnvelope
        do {
            request = try frame.withUnsafeReadableBytes {
                try WireCodec.decodeRequestRecoveringCallID($0, limits: listLimits)
            }
        } catch let rejected as RejectedRequest {
            let status: Status = switch rejected.reason {
            case .tooManyElements: rejected.status
            case .malformed, .invalidField: Status(.invalidArgument, "undecodable request: \(rejected.reason)")
            }
            answer(context, .failure(callID: rejected.callID ?? 0, status), CallStart(method: .unknown, at: received))
            return
        } catch {
            let callID = frame.withUnsafeReadableBytes { WireCodec.peekCallID($0) } ?? 0
            answer(
                context, .failure(callID: callID, Status(.invalidArgument, "undecodable request: \(error)")),
                CallStart(method: .unknown, at: received))
            return
        }
        let start = CallStart(method: MetricMethod(request.method), at: received)
        let callID = request.callID
        guard callID != 0 else {
            answer(context, .failure(callID: 0, Status(.invalidArgument, "call_id 0 is reserved for connection frames")), start)
            return
        }
        guard let method = request.method else {
            answer(context, .failure(callID: callID, Status(.unimplemented, "the request names no method this server knows")), start)
            return
        }
        if draining {
            answer(context, .failure(callID: callID, Status(.unavailable, "server is shutting down")), start)
            return
        }
        // Every call, authenticate and cancel included, needs an id not in flight: answering one on
        // the id of a call still in flight would give that call a second answer.
        guard inflight.serial(forCallID: callID) == nil && subscriptions[callID] == nil else {
            answer(context, .failure(callID: callID, Status(.invalidArgument, "call_id \(callID) is already in flight on this connection")), start)
            return
        }
        if case .authenticate(let token) = method {
            authenticate(context, callID: callID, token: token, start: start)
            return
        }
        var principal = connectionPrincipal
        if !request.authToken.isEmpty {
            switch resolve(request.authToken) {
            case .success(let resolved):
                principal = resolved
                failedAuthentications = 0
                noteAccepted(resolved)
            case .failure(let status):
                answer(context, .failure(callID: callID, status), start)
                countFailedAuthentication(context)
                return
            }
        }
        if case .cancel(let target) = method {
            if let subscription = subscriptions.removeValue(forKey: target) {
                subscriptionIDs[subscription.serial] = nil
                metrics?.subscriptionsClosed += 1
                streams?.unsubscribe(
                    board: subscription.board, connectionID: connectionID, callID: subscription.serial, feed: subscription.feed)
                write(context, .failure(callID: target, Status(.cancelled, "cancelled by the client")))
                answer(context, .ok(callID, .cancel(cancelled: true)), start)
                return
            }
            // A backup or a season reset cannot be stopped once started: the call stays in flight
            // (its id and its max_inflight_calls slot) and is answered with what it did. Answering
            // it CANCELLED at once would tell the client a reset did not happen when it did, and
            // free a slot the work still holds.
            if let serial = inflight.serial(forCallID: target), inflight.call(serial: serial)?.deferred == true {
                answer(context, .ok(callID, .cancel(cancelled: false)), start)
                return
            }
            var cancelled = false
            if let (serial, cancelledCall) = inflight.remove(callID: target) {
                cancelled = true
                releaseBatchItems(context, cancelledCall.batchItems)
                if serial == eraseInFlight { eraseEnded(context) }
                batch.removeAll { $0.callID == serial }
                write(context, .failure(callID: target, Status(.cancelled, "cancelled by the client")))
            }
            answer(context, .ok(callID, .cancel(cancelled: cancelled)), start)
            return
        }
        let busy = inflight.count
        guard busy < limits.maxInflightCalls else {
            answer(context, .failure(callID: callID, Status(
                .resourceExhausted, "\(busy) calls already in flight; at most \(limits.maxInflightCalls) (max_inflight_calls)")), start)
            return
        }
        let serial = nextSerial
        nextSerial &+= 1
        var admitted = start
        switch router.route(callID: serial, method: method, principal: principal, now: Int64(time(nil)), plans: plans) {
        case .answer(var response):
            response.callID = callID
            answer(context, response, start)
        case .subscribe(let spec):
            record(start, response: nil)
            startSubscription(context, callID: callID, serial: serial, spec, principal: principal)
        case .deferred(let work):
            admitted.deferred = true
            inflight.insert(serial: serial, callID: callID, admitted)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            work(context.eventLoop).hop(to: context.eventLoop).whenComplete { result in
                let (handler, context) = loopBound.value
                // The connection is gone (a deferred call is never cancelled).
                guard let (callID, start) = handler.inflight.remove(serial: serial) else { return }
                var response: ResponseEnvelope
                switch result {
                case .success(let answer): response = answer
                case .failure(let error): response = .failure(callID: serial, Status(.internal, "\(error)"))
                }
                response.callID = callID
                handler.answer(context, response, start)
                handler.flushIfNeeded(context)
                handler.closeIfDrained(context)
            }
        case .plan(let plan):
            if case .submitBatch(let submits) = method {
                admitted.batchItems = submits.count
                inflightBatchItems += submits.count
                if let batchBudget, let batchPlan = plan as? SubmitBatchPlan {
                    batchPlan.budgetTicket = batchBudget.take(submits.count)
                }
            }
            if case .erasePlayer = method { eraseInFlight = serial }
            inflight.insert(serial: serial, callID: callID, admitted)
            let deadline = request.deadlineMillis == 0 ? nil
                : NIODeadline.now() + .milliseconds(Int64(clamping: request.deadlineMillis))
            batch.append(PlannedCall(callID: serial, plan: plan, deadline: deadline))
        }
    }

    private func resolve(_ token: String) -> Result<Principal, Status> {
        guard token.utf8.count <= limits.maxAuthTokenBytes else {
            return .failure(Status(.invalidArgument, "auth token longer than \(limits.maxAuthTokenBytes) bytes"))
        }
        let now = Int64(time(nil))
        if let lastToken, lastToken.token == token {
            // A player token accepted earlier may have expired since: verify it again then (it
            // fails as on a fresh connection).
            guard Self.isExpiredPlayer(lastToken.principal, now: now) else { return .success(lastToken.principal) }
            self.lastToken = nil
        }
        let result = access.authenticate(token, now: now)
        if case .success(let principal) = result {
            lastToken = (token, principal)
            if case .key(let role, _) = principal, let id = access.keys.match(token)?.id { acceptedKeys[id] = role }
        }
        return result
    }

    /// The server reloaded its keys (SIGHUP): calls from now on are checked against `new`. A
    /// connection that used a key `new` no longer has, or gives another role, is closed with a
    /// connection-level UNAUTHENTICATED: what it was allowed (its streams included) was decided
    /// with that key, and its client must connect again with a current one. Returns whether it
    /// was closed.
    private func replaceAccess(_ context: ChannelHandlerContext, with new: AccessControl) -> Bool {
        access = new
        lastToken = nil
        guard !closed else { return false }
        for (id, role) in acceptedKeys {
            if new.keys.entry(id)?.role == role { continue }
            write(context, .failure(callID: 0, Status(
                .unauthenticated,
                "an API key this connection used was removed, or its role changed, when the server reloaded its keys: connect again with a current key")))
            closeAfterWriting(context)
            return true
        }
        return false
    }

    /// Whether the connection's credentials still hold: a player token that expired since it was
    /// accepted counts as none (its calls are refused, so its frames must not cost more than a
    /// stranger's). Asked for large frames only.
    /// A frame over `maxFrameBytesWithoutCredentials` from a connection without credentials must
    /// carry a valid token of its own before it costs a decode (up to max_frame_bytes of
    /// protobuf-c and Swift work) or, unfinished, the buffering of the rest of it: what may be
    /// sent without credentials (ping, authenticate) is small. `body` is the frame's body, or
    /// its first bytes (the token comes before the method in field order, as encoders write
    /// it); a refused frame is answered UNAUTHENTICATED here. Whether it was refused.
    private func refusesLargeFrameWithoutCredentials(
        _ context: ChannelHandlerContext, _ body: UnsafeRawBufferPointer, length: Int, received: NIODeadline
    ) -> Bool {
        guard length > Self.maxFrameBytesWithoutCredentials, !access.isOpen, !holdsCurrentCredentials() else { return false }
        let peeked = WireCodec.peekAuthTokenField(body, maxBytes: limits.maxAuthTokenBytes)
        let token = if case .token(let text) = peeked { text } else { "" }
        if !token.isEmpty, case .success = resolve(token) { return false }
        answer(context, .failure(callID: WireCodec.peekCallID(body) ?? 0, Status(
            .unauthenticated,
            "a frame of \(length) bytes on a connection without credentials: send authenticate {token} first, or set auth_token on the call (before its method)")),
            CallStart(method: .unknown, at: received))
        // An oversized or non-UTF-8 token is a credential that failed, as an invalid one is.
        if peeked != .absent { countFailedAuthentication(context) }
        return true
    }

    private func holdsCurrentCredentials() -> Bool {
        guard let principal = connectionPrincipal else { return false }
        return !Self.isExpiredPlayer(principal, now: Int64(time(nil)))
    }

    /// Whether `principal` is a player token past its expiry (with the verifier's leeway).
    private static func isExpiredPlayer(_ principal: Principal, now: Int64) -> Bool {
        guard case .player(let claims) = principal else { return false }
        return claims.isExpired(at: now, leewaySeconds: PlayerTokenVerifier.leewaySeconds)
    }

    private func authenticate(_ context: ChannelHandlerContext, callID: UInt64, token: String, start: CallStart) {
        switch resolve(token) {
        case .success(let principal):
            connectionPrincipal = principal
            failedAuthentications = 0
            noteAccepted(principal)
            let response: AuthenticateResponse
            switch principal {
            case .open: response = AuthenticateResponse(role: .admin)
            case .key(let role, _): response = AuthenticateResponse(role: role)
            case .player(let claims):
                response = AuthenticateResponse(
                    role: .player, playerID: claims.playerID, boards: claims.boards.map { $0.sorted() } ?? ["*"],
                    expiresAt: claims.expiresAt)
            }
            answer(context, .ok(callID, .authenticate(response)), start)
        case .failure(let status):
            connectionPrincipal = access.isOpen ? .open : nil
            answer(context, .failure(callID: callID, status), start)
            countFailedAuthentication(context)
        }
    }

    /// A rejected credential, from `authenticate` or a call's own `auth_token`: after
    /// `maxFailedAuthentications` in a row the connection is closed (no guessing at line rate).
    private func countFailedAuthentication(_ context: ChannelHandlerContext) {
        failedAuthentications += 1
        if failedAuthentications >= limits.maxFailedAuthentications {
            // Said at connection level, after the last refusal, as the authentication timeout is.
            write(context, .failure(callID: 0, Status(
                .unauthenticated,
                "\(failedAuthentications) failed authentications in a row on this connection (max_failed_authentications): closing it")))
            if !closed { securityLog?.closedForFailedAuthentications(peer: context.channel.remoteAddress, failures: failedAuthentications) }
            closeAfterWriting(context)
        }
    }

    private func startSubscription(
        _ context: ChannelHandlerContext, callID: UInt64, serial: UInt64, _ spec: CallRouter.SubscriptionSpec,
        principal: Principal?
    ) {
        guard let streams else {
            write(context, .failure(callID: callID, Status(.unimplemented, "subscriptions are disabled on this server")))
            return
        }
        guard subscriptions.count < limits.maxSubscriptions else {
            write(context, .failure(callID: callID, Status(
                .resourceExhausted, "\(subscriptions.count) subscriptions open; at most \(limits.maxSubscriptions) per connection (max_subscriptions)")))
            return
        }
        let sink = self.sink ?? {
            let made = StreamSink(
                connectionID: connectionID, loop: context.eventLoop, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
            made.setWritable(context.channel.isWritable)
            self.sink = made
            return made
        }()
        let feed = spec.target == .feed
        // A board's feed backlog is encoded for each of its feed subscriptions: a second one on
        // the same connection would only double its bytes (and a stalled reader's memory).
        if feed, subscriptions.values.contains(where: { $0.feed && $0.board === spec.board }) {
            write(context, .failure(callID: callID, Status(
                .alreadyExists, "this connection already has a feed of board \(spec.board.config.id); one feed per board per connection")))
            return
        }
        let windowBytes = Self.windowBytes(spec.target, board: spec.board.config, maxFrameBytes: limits.maxFrameBytes)
        let windowEntries = spec.target.windowEntries
        if let refusal = windowBoundRefusal(bytes: windowBytes, entries: windowEntries) {
            write(context, .failure(callID: callID, refusal))
            return
        }
        var tokenExpiry: Int64?
        if case .player(let claims) = principal { tokenExpiry = claims.lastValidSecond(leewaySeconds: PlayerTokenVerifier.leewaySeconds) }
        subscriptions[callID] = (spec.board, feed, serial, tokenExpiry, windowBytes, windowEntries)
        subscriptionIDs[serial] = callID
        if let tokenExpiry { armTokenExpiryCheck(context, at: tokenExpiry) }
        metrics?.subscriptionsOpened += 1
        streams.subscribe(
            board: spec.board, callID: serial, sink: sink, target: spec.target, ranking: spec.ranking, interval: spec.interval)
    }

    /// Why a new stream whose window could hold `bytes` and watches `entries` would take this
    /// connection's streams past their bounds, or nil. Each stream keeps the last window it sent
    /// (up to a frame of entries), so its bytes are bounded per connection, not only the streams'
    /// number; and its entries too, for what its events cost to make and encode.
    private func windowBoundRefusal(bytes: Int, entries: Int) -> Status? {
        var (heldBytes, heldEntries) = (0, 0)
        for subscription in subscriptions.values {
            heldBytes += subscription.windowBytes
            heldEntries += subscription.windowEntries
        }
        let advice = "close streams, ask for smaller windows, or use another connection"
        if heldBytes + bytes > limits.maxStreamWindowBytes {
            return Status(
                .resourceExhausted,
                "this stream's window could hold \(bytes) bytes of entries and the connection's streams already \(heldBytes); at most \(limits.maxStreamWindowBytes) per connection (max_stream_window_bytes): \(advice)")
        }
        if heldEntries + entries > limits.maxStreamWindowEntries {
            return Status(
                .resourceExhausted,
                "this stream watches \(entries) entries and the connection's streams already \(heldEntries); at most \(limits.maxStreamWindowEntries) per connection (max_stream_window_entries): \(advice)")
        }
        return nil
    }

    /// The most bytes of entries a stream of `target` keeps (its last window), as `AnswerBound`
    /// counts an entry of `board`.
    static func windowBytes(_ target: SubscriptionTarget, board: BoardConfig, maxFrameBytes: Int) -> Int {
        target.windowEntries * AnswerBound(maxFrameBytes: maxFrameBytes).entryBytes(board.limits)
    }

    /// Schedules the check that ends token-bound subscriptions, for `lastValidSecond` if that is
    /// earlier than the one scheduled. A player token is checked on every call, but a
    /// subscription is one call that lasts: without this it would outlive its token for as long
    /// as the connection stays up.
    private func armTokenExpiryCheck(_ context: ChannelHandlerContext, at lastValidSecond: Int64) {
        if let scheduled = tokenExpiryCheckAt, scheduled <= lastValidSecond { return }
        tokenExpiryCheck?.cancel()
        tokenExpiryCheckAt = lastValidSecond
        let delay = max(0, min(lastValidSecond - Int64(time(nil)), Int64(Int32.max))) + 1
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        tokenExpiryCheck = context.eventLoop.scheduleTask(in: .seconds(delay)) {
            let (handler, context) = loopBound.value
            handler.endExpiredSubscriptions(context)
        }
    }

    private func endExpiredSubscriptions(_ context: ChannelHandlerContext) {
        tokenExpiryCheck = nil
        tokenExpiryCheckAt = nil
        guard !closed else { return }
        let now = Int64(time(nil))
        var next: Int64?
        for (callID, subscription) in subscriptions {
            guard let expiry = subscription.tokenExpiry else { continue }
            guard expiry < now else {
                next = min(next ?? expiry, expiry)
                continue
            }
            subscriptions[callID] = nil
            subscriptionIDs[subscription.serial] = nil
            metrics?.subscriptionsClosed += 1
            streams?.unsubscribe(board: subscription.board, connectionID: connectionID, callID: subscription.serial, feed: subscription.feed)
            write(context, .failure(callID: callID, Status(
                .unauthenticated, "the player token of this subscription expired; authenticate with a fresh token and subscribe again")))
        }
        flushIfNeeded(context)
        if let next { armTokenExpiryCheck(context, at: next) }
    }

    /// Frames from subscription hubs (addressed by serial), on this connection's loop. A frame
    /// too big for `max_frame_bytes` ends its stream with RESOURCE_EXHAUSTED: the hub counted it
    /// as sent, so later diffs would apply to a window the client never got. Once written, the
    /// frames give back the event budget they held (`StreamSink`; the channel's writability
    /// bounds them from here), and a release that follows a refusal resumes the connection's
    /// streams, unless the socket is full (its drain resumes them then).
    func deliverStreamFrames(_ frames: [StreamFrame], releasing reservedBytes: Int = 0) {
        defer {
            if let sink, sink.release(reservedBytes), let context, !closed, context.channel.isWritable {
                resumeStreams()
            }
        }
        guard let context, !closed else { return }
        for frame in frames {
            guard let callID = subscriptionIDs[frame.callID], let subscription = subscriptions[callID] else { continue }
            var response = frame.response
            response.callID = callID
            let fitted = write(context, response)
            if frame.isFinal || !fitted {
                subscriptions[callID] = nil
                subscriptionIDs[frame.callID] = nil
                metrics?.subscriptionsClosed += 1
                if !frame.isFinal {
                    streams?.unsubscribe(
                        board: subscription.board, connectionID: connectionID, callID: frame.callID, feed: subscription.feed)
                }
            }
        }
        flushIfNeeded(context)
        closeIfDrained(context)
    }

    private func dispatchBatch(_ context: ChannelHandlerContext) {
        guard !batch.isEmpty else { return }
        // Hand the array over and take it back afterwards: the executor keeps no reference once
        // `run` returns, so its storage serves the next batch without a copy.
        var calls = batch
        batch = []
        executor.run(calls, on: context.eventLoop, receiver: self)
        calls.removeAll(keepingCapacity: true)
        if batch.isEmpty { batch = calls }
    }

    // MARK: outbound

    /// Writes the answer to a call and records it.
    private func answer(_ context: ChannelHandlerContext, _ response: ResponseEnvelope, _ start: CallStart) {
        record(start, response: response)
        write(context, response)
    }

    @inline(__always)
    private func record(_ start: CallStart, response: ResponseEnvelope?) {
        #if !HISCORE_NO_TELEMETRY
        guard let metrics else { return }
        let micros = Int((NIODeadline.now() - start.at).nanoseconds / 1000)
        metrics.record(start.method, status: response?.status?.code ?? .ok, micros: micros)
        #endif
    }

    /// Appends a response frame to the batch's outbound buffer: one buffer and one channel write
    /// per flush, not per response. Returns false when the frame would exceed `max_frame_bytes`
    /// and a RESOURCE_EXHAUSTED status went out in its place.
    @discardableResult
    private func write(_ context: ChannelHandlerContext, _ response: ResponseEnvelope) -> Bool {
        guard !closed else { return true }
        var buffer: ByteBuffer
        if let pending = outbound {
            buffer = pending
            outbound = nil  // keep the buffer uniquely referenced: no copy on write
        } else if var spare = spareOutbound {
            spareOutbound = nil
            spare.clear()
            buffer = spare
        } else {
            buffer = context.channel.allocator.buffer(capacity: 4096)
        }
        let start = buffer.writerIndex
        FrameEncoding.encodeResponseFrame(response, into: &buffer)
        let fitted = buffer.writerIndex - start - FrameParser.headerLength <= limits.maxFrameBytes
        if !fitted {
            buffer.moveWriterIndex(to: start)
            FrameEncoding.encodeResponseFrame(.failure(callID: response.callID, Status(
                .resourceExhausted,
                "the response would exceed max_frame_bytes (\(limits.maxFrameBytes)); ask for fewer entries")), into: &buffer)
        }
        #if !HISCORE_NO_TELEMETRY
        metrics?.bytesOut += buffer.writerIndex - start
        #endif
        outboundBytes = buffer.readableBytes
        outbound = buffer
        pendingFlush = true
        return fitted
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        guard pendingFlush, !closed else { return }
        pendingFlush = false
        outboundBytes = 0
        if let buffer = outbound {
            outbound = nil
            context.write(wrapOutboundOut(buffer), promise: nil)
            if buffer.capacity <= Self.keptOutboundCapacity { spareOutbound = buffer }
        }
        context.flush()
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable && !framesHeld && !holdsForBatches && !holdsForErase {
            context.read()
        } else {
            if !readHeld {
                readHeldSince = .now()
                if holdsForBatches && !framesHeld { metrics?.batchItemHolds += 1 }
            }
            readHeld = true
            if holdsForBatches { waitForLoopBudget(context) }
        }
    }

    /// Asks the hub of every board this connection watches to send the streams it left out.
    private func resumeStreams() {
        var boards: [UInt64: BoardHandle] = [:]
        for subscription in subscriptions.values { boards[subscription.board.incarnation] = subscription.board }
        for board in boards.values { streams?.resume(board: board, connectionID: connectionID) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        unwritableSince = writable ? nil : (unwritableSince ?? .now())
        sink?.setWritable(writable)
        if writable {
            // Subscribers skipped while the socket was full now get the latest state.
            resumeStreams()
        }
        if writable { resumeHeld(context) }
        context.fireChannelWritabilityChanged()
    }

    /// Frames and reads held back go on once the client reads its answers (the channel is
    /// writable) and its submit batches in flight are under `maxInflightBatchItems`.
    private func resumeHeld(_ context: ChannelHandlerContext) {
        guard context.channel.isWritable, !closed, !holdsForErase else { return }
        guard !holdsForBatches else {
            // The client reads its answers; the wait for its batches is the server's, so the
            // client's time without reading starts again from here (see `armFrameCheck`).
            if readHeld { readHeldSince = .now() }
            waitForLoopBudget(context)
            return
        }
        if framesHeld {
            // The frames held back go first, in order; they may hold the rest back again.
            framesHeld = false
            split(context, context.channel.allocator.buffer(capacity: 0))
            dispatchBatch(context)
            flushIfNeeded(context)
        }
        if readHeld && !framesHeld {
            readHeld = false
            readHeldSince = nil
            // The unfinished frame could not progress while reads were held: its time starts
            // again (see `armFrameCheck`).
            if partialSince != nil { partialSince = .now() }
            context.read()
        } else if readHeld {
            // The client read its answers, but the frames dispatched above filled the socket
            // again: the hold goes on, yet only time without the client reading counts towards
            // the idle timeout, or a client reading slowly but steadily through a long burst
            // would be closed once its holds added up to it.
            readHeldSince = .now()
        }
    }

    /// A submit batch of `items` left flight. A connection held for its batches resumes once
    /// they are back under the bound, on the loop's next turn: after the delivery that released
    /// them has answered the rest of its round (a resume dispatches the held frames as a new
    /// batch).
    private func releaseBatchItems(_ context: ChannelHandlerContext, _ items: Int) {
        guard items > 0 else { return }
        let wasHeld = holdsForBatches
        inflightBatchItems -= items
        assert(inflightBatchItems >= 0, "batch items released twice")
        guard wasHeld, framesHeld || readHeld else { return }
        guard !holdsForBatches else {
            // Under its own bound now, but its loop is still at its share.
            waitForLoopBudget(context)
            return
        }
        resumeHeldNextTurn(context)
    }

    /// The erase the frames after it waited for was answered or cancelled: they go on, as after
    /// a batch hold.
    private func eraseEnded(_ context: ChannelHandlerContext) {
        eraseInFlight = nil
        guard framesHeld || readHeld else { return }
        resumeHeldNextTurn(context)
    }

    /// `resumeHeld` on the loop's next turn: after the round that lifted the hold has answered
    /// the rest of its calls (a resume dispatches the held frames as a new batch).
    private func resumeHeldNextTurn(_ context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.resumeHeld(context)
        }
    }

    /// When what holds the connection is its loop's share of the batch items (not its own
    /// bound, which its own answers lift), asks the loop's budget to resume it once under.
    private func waitForLoopBudget(_ context: ChannelHandlerContext) {
        guard !waitingForBudget, !closed, let budget = batchBudget, budget.isFull, inflightBatchItems > 0,
            inflightBatchItems < max(1, limits.maxInflightBatchItems)
        else { return }
        waitingForBudget = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        budget.resumeWhenUnder {
            let (handler, context) = loopBound.value
            handler.waitingForBudget = false
            handler.resumeHeld(context)
        }
    }

    // MARK: faults and shutdown

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let status: Status
        switch error {
        case FramingError.frameTooLarge(let declared, let max):
            status = Status(.resourceExhausted, "frame of \(declared) bytes exceeds max_frame_bytes \(max)")
        case FramingError.compressedFrameNotSupported:
            status = Status(.unimplemented, "compressed frames are not supported (flag byte must be 0)")
        case ConnectionFault.badPreface(let reason):
            status = Status(.invalidArgument, "bad connection preface: \(reason); expected the 8 bytes \"HISCORE\" 0x01")
        default:
            context.close(promise: nil)
            return
        }
        metrics?.protocolFaults += 1
        write(context, .failure(callID: 0, status))
        closeAfterWriting(context)
    }

    /// Writes what is buffered (a connection-level status, and the answers before it) and closes
    /// the connection once the socket has taken it, or after `closingGrace` when the client does
    /// not read: `close` at once would drop what the socket could not take yet. Nothing is read
    /// or answered meanwhile.
    private func closeAfterWriting(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        let written = context.eventLoop.makePromise(of: Void.self)
        if let buffer = outbound {
            outbound = nil
            pendingFlush = false
            outboundBytes = 0
            context.writeAndFlush(wrapOutboundOut(buffer), promise: written)
        } else {
            context.flush()
            written.succeed(())
        }
        closed = true
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let grace = context.eventLoop.scheduleTask(in: Self.closingGrace) { bound.value.close(promise: nil) }
        written.futureResult.whenComplete { _ in
            grace.cancel()
            bound.value.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let replaced = event as? AccessReplacedEvent {
            guard replaced.generation > accessGeneration else { return replaced.closed.succeed(false) }
            accessGeneration = replaced.generation
            replaced.closed.succeed(replaceAccess(context, with: replaced.access))
        } else if event is ServerDrainEvent {
            draining = true
            for (callID, subscription) in subscriptions {
                streams?.unsubscribe(
                    board: subscription.board, connectionID: connectionID, callID: subscription.serial, feed: subscription.feed)
                write(context, .failure(callID: callID, Status(.unavailable, "server is shutting down")))
            }
            metrics?.subscriptionsClosed += subscriptions.count
            subscriptions.removeAll()
            subscriptionIDs.removeAll()
            flushIfNeeded(context)
            closeIfDrained(context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func closeIfDrained(_ context: ChannelHandlerContext) {
        guard draining, inflight.isEmpty, !closed else { return }
        closed = true
        context.close(promise: nil)
    }
}

/// Sent to every connection when the server reloads its keys: `closed` says whether the
/// connection was closed for a key it used that the reload removed or changed.
struct AccessReplacedEvent {
    let access: AccessControl
    /// Newer replacements have higher numbers (`HiscoreServer.Credentials.generation`).
    let generation: UInt64
    let closed: EventLoopPromise<Bool>
}

/// Sent to every connection when the server shuts down gracefully: finish in-flight calls, refuse
/// new ones with UNAVAILABLE, then close.
struct ServerDrainEvent: Sendable {}

extension CallHandler: BatchReceiver {
    /// `serial`: batches carry serials, not the client's call ids (see `inflight`).
    func isLive(_ serial: UInt64) -> Bool { !closed && inflight.contains(serial: serial) }

    func deliver(_ response: ResponseEnvelope) {
        guard let (callID, start) = inflight.remove(serial: response.callID), let context else { return }
        var answered = response
        answered.callID = callID
        answer(context, answered, start)
        releaseBatchItems(context, start.batchItems)
        if response.callID == eraseInFlight { eraseEnded(context) }
    }

    func finished(_ plan: any CallPlan) {
        if let plans { plan.recycle(into: plans) }
    }

    func finishedBatch() {
        guard let context else { return }
        flushIfNeeded(context)
        closeIfDrained(context)
    }
}
