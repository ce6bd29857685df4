import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The operators' HTTP port: `GET /metrics` (Prometheus text), `/healthz` (the process serves),
/// `/readyz` (accepting calls with every shard's log writable; 503 with the reason otherwise,
/// also while starting).
/// Loopback by default. Each request is answered and the connection kept alive; anything else
/// is 404/405.
final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// nil while the server starts (`AdminEndpoints`): answered 503.
    private let metrics: @Sendable () -> (@Sendable () async -> String)?
    private let notReadyReason: @Sendable () -> String?
    private var head: HTTPRequestHead?

    init(metrics: @escaping @Sendable () -> (@Sendable () async -> String)?, notReadyReason: @escaping @Sendable () -> String?) {
        self.metrics = metrics
        self.notReadyReason = notReadyReason
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            // The request is complete: its deadline (AdminRequestDeadline) no longer applies.
            context.triggerUserOutboundEvent(AdminRequestDeadline.RequestComplete(), promise: nil)
            guard let head else { return }
            self.head = nil
            respond(context, head)
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            write(context, head, .methodNotAllowed, "only GET\n")
            return
        }
        switch path {
        case "/healthz":
            write(context, head, .ok, "ok\n")
        case "/readyz":
            if let reason = notReadyReason() {
                write(context, head, .serviceUnavailable, "not ready: \(reason)\n")
            } else {
                write(context, head, .ok, "ready\n")
            }
        case "/metrics":
            guard let render = metrics() else {
                write(context, head, .serviceUnavailable, "not ready: \(AdminEndpoints.startingReason)\n")
                return
            }
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let promise = context.eventLoop.makePromise(of: String.self)
            promise.completeWithTask { await render() }
            promise.futureResult.whenSuccess { text in
                let (handler, context) = loopBound.value
                handler.write(context, head, .ok, text, contentType: "text/plain; version=0.0.4")
            }
        default:
            write(context, head, .notFound, "not found; try /metrics, /healthz or /readyz\n")
        }
    }

    private func write(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ body: String,
        contentType: String = "text/plain"
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        let keepAlive = request.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        context.triggerUserOutboundEvent(AdminRequestDeadline.ResponseSent(), promise: nil)
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// Closes an admin connection that sent nothing for `AdminHTTPServer.idleTimeout`.
final class AdminIdleCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Bounds the time a request may take to arrive: from its first byte (the first request: from
/// the connection) to its end, at most `AdminHTTPServer.requestTimeout`, else the connection is
/// closed. The idle timeout alone
/// restarts with every byte, so a client sending a header byte now and then (or an endless
/// chunked body) could hold a connection slot forever, and 64 of them lock out the health checks.
/// While an answer is being made, a pipelined request's bytes wait (NIO's pipelining holds them)
/// and its clock waits too: a slow `/metrics` must not close the connection it answers on.
final class AdminRequestDeadline: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = NIOAny

    /// Sent by `AdminHTTPHandler` (a user outbound event) when a request has been read whole.
    struct RequestComplete {}
    /// Sent by `AdminHTTPHandler` when a request's answer has been written.
    struct ResponseSent {}

    private var deadline: Scheduled<Void>?
    private var answering = false {
        didSet { slot?.answering = answering }
    }
    /// The connection's admin slot, told when it is being answered (not to be taken then).
    private let slot: AdminConnectionSlots.Slot?

    init(slot: AdminConnectionSlots.Slot? = nil) {
        self.slot = slot
    }
    /// Bytes arrived while an answer was being made: the next request has begun.
    private var nextRequestBegun = false

    /// A new connection's first request is timed from the connection itself: one that sends
    /// nothing would otherwise hold its slot for the idle timeout, and 64 silent ones, renewed
    /// once a minute, kept the health checks out.
    func channelActive(context: ChannelHandlerContext) {
        if deadline == nil { startClock(context) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if answering {
            nextRequestBegun = true
        } else if deadline == nil {
            startClock(context)
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        switch event {
        case is RequestComplete:
            deadline?.cancel()
            deadline = nil
            answering = true
            // The bytes that began a request while the last answer was made were this one.
            nextRequestBegun = false
        case is ResponseSent:
            answering = false
            if nextRequestBegun {
                nextRequestBegun = false
                startClock(context)
            }
        default:
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed(())
    }

    private func startClock(_ context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: AdminHTTPServer.requestTimeout) { channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }
}

/// Reads an admin connection only while its answers are being taken: a client that sends
/// requests and never reads the answers would otherwise get each one rendered and queued in
/// memory without bound. Past the channel's write buffer mark (64 KiB) reading pauses until the
/// peer has taken the answers.
final class AdminWriteBackpressure: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    private var readHeld = false

    func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            readHeld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, readHeld {
            readHeld = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }
}

enum AdminHTTPServer {
    /// Open admin connections at once (a scraper and a few health checks need a handful; the
    /// port must not become a way to hold file descriptors); past it a new connection takes the
    /// slot of the oldest one not being answered (`AdminConnectionSlots`).
    static let maxConnections = 64
    /// An admin connection silent this long is closed.
    static let idleTimeout = TimeAmount.seconds(60)
    /// A request must arrive whole (head, headers and any body) within this long of its first
    /// byte, and a connection's first request within this long of the connection, else the
    /// connection is closed.
    static let requestTimeout = TimeAmount.seconds(10)

    static func bind(
        group: any EventLoopGroup, host: String, port: Int,
        metrics: @escaping @Sendable () -> (@Sendable () async -> String)?,
        notReadyReason: @escaping @Sendable () -> String?,
        acceptFailures: AcceptBackoff = AcceptBackoff(socketName: "admin port", logger: Logger(label: "hiscored"))
    ) async throws -> any Channel {
        let slots = AdminConnectionSlots(capacity: Self.maxConnections)
        return try await ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(acceptFailures) }
            }
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard let slot = slots.admit(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try configure(channel.pipeline.syncOperations, metrics: metrics, notReadyReason: notReadyReason, slot: slot)
                }
            }
            .bind(host: host, port: port).get()
    }

    /// An admin connection's handlers, socket side first.
    static func configure(
        _ pipeline: ChannelPipeline.SynchronousOperations,
        metrics: @escaping @Sendable () -> (@Sendable () async -> String)?,
        notReadyReason: @escaping @Sendable () -> String?,
        slot: AdminConnectionSlots.Slot? = nil
    ) throws {
        try pipeline.addHandler(AdminWriteBackpressure())
        try pipeline.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
        try pipeline.addHandler(AdminIdleCloser())
        try pipeline.addHandler(AdminRequestDeadline(slot: slot))
        try pipeline.configureHTTPServerPipeline()
        try pipeline.addHandler(AdminHTTPHandler(metrics: metrics, notReadyReason: notReadyReason))
    }
}
