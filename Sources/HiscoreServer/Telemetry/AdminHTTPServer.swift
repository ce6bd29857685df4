import Atomics
import NIOCore
import NIOHTTP1
import NIOPosix

/// The operators' HTTP port: `GET /metrics` (Prometheus text), `/healthz` (the process serves),
/// `/readyz` (accepting calls; 503 while starting or draining). Loopback by default. Each
/// request is answered and the connection kept alive; anything else is 404/405.
final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: @Sendable () async -> String
    private let isReady: @Sendable () -> Bool
    private var head: HTTPRequestHead?

    init(metrics: @escaping @Sendable () async -> String, isReady: @escaping @Sendable () -> Bool) {
        self.metrics = metrics
        self.isReady = isReady
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
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
            isReady() ? write(context, head, .ok, "ready\n") : write(context, head, .serviceUnavailable, "not ready\n")
        case "/metrics":
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let render = metrics
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

enum AdminHTTPServer {
    /// Open admin connections at once; more are closed as they arrive (a scraper and a few health
    /// checks need a handful; the port must not become a way to hold file descriptors).
    static let maxConnections = 64
    /// An admin connection silent this long is closed.
    static let idleTimeout = TimeAmount.seconds(60)

    static func bind(
        group: any EventLoopGroup, host: String, port: Int, metrics: @escaping @Sendable () async -> String,
        isReady: @escaping @Sendable () -> Bool
    ) async throws -> any Channel {
        let open = ManagedAtomic(0)
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard open.loadThenWrappingIncrement(ordering: .relaxed) < Self.maxConnections else {
                    open.wrappingDecrement(ordering: .relaxed)
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in open.wrappingDecrement(ordering: .relaxed) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(AdminIdleCloser())
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(metrics: metrics, isReady: isReady))
                }
            }
            .bind(host: host, port: port).get()
    }
}
