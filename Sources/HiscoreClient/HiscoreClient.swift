import Atomics
import HiscoreCore
import HiscoreWire
import NIOCore
import NIOPosix

/// An async client for one connection to a Hiscore server. Calls are multiplexed: any number of
/// tasks may call concurrently (up to the server's `maxInflightCalls`), and each gets its own
/// answer whatever order the server completes them in.
///
///     let client = try await HiscoreClient.connect(host: "127.0.0.1", port: 7450)
///     let result = try await client.submit(board: "weekly", player: "alice", score: 4200)
///     print(result.entry.rank)
///     let top = try await client.top(board: "weekly", limit: 10)
///     try await client.close()
public final class HiscoreClient: Sendable {
    /// What the server announced in its preface (limits included).
    public let hello: ServerHello

    private let channel: any Channel
    private let handler: NIOLoopBound<ClientChannelHandler>
    private let nextCallID = ManagedAtomic<UInt64>(1)
    private let ownedGroup: MultiThreadedEventLoopGroup?
    /// Set by `close()` before it shuts the owned group down: a task handed to a shut-down event
    /// loop is dropped, so a call or subscription made after `close()` would wait forever.
    private let closed = NIOLockedValueBox(false)

    private init(hello: ServerHello, channel: any Channel, handler: NIOLoopBound<ClientChannelHandler>, ownedGroup: MultiThreadedEventLoopGroup?) {
        self.hello = hello
        self.channel = channel
        self.handler = handler
        self.ownedGroup = ownedGroup
    }

    /// Connects and completes the preface exchange. `group` defaults to a private one-thread group
    /// that `close()` shuts down. With `tls`, the connection is TLS (1.2 or later) and the server's
    /// certificate is verified; TLS failures throw UNAVAILABLE with the reason.
    public static func connect(
        host: String, port: Int, group: (any EventLoopGroup)? = nil, connectTimeout: Duration = .seconds(10),
        tls: ClientTLS? = nil
    ) async throws -> HiscoreClient {
        let tlsContext = try tls?.makeContext()
        let ownedGroup = group == nil ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
        let eventLoop = (group ?? ownedGroup ?? MultiThreadedEventLoopGroup.singleton).next()
        let helloPromise = eventLoop.makePromise(of: ServerHello.self)
        let handlerBox = NIOLockedHandlerBox()
        let timeoutAmount = TimeAmount(connectTimeout)
        var connected: (any Channel)?
        do {
            let channel = try await ClientBootstrap(group: eventLoop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(timeoutAmount)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls, let tlsContext {
                            try channel.pipeline.syncOperations.addHandler(tls.makeHandler(context: tlsContext, host: host))
                            try channel.pipeline.syncOperations.addHandler(
                                TLSFailureHandler(peer: "\(host):\(port)", helloPromise: helloPromise))
                        }
                        let handler = ClientChannelHandler(helloPromise: helloPromise)
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(LengthPrefixedFrameDecoder(maxFrameBytes: 64 << 20)))
                        try channel.pipeline.syncOperations.addHandler(handler)
                        handlerBox.set(NIOLoopBound(handler, eventLoop: channel.eventLoop))
                    }
                }
                .connect(host: host, port: port).get()
            connected = channel
            let timeout = eventLoop.scheduleTask(in: timeoutAmount) {
                helloPromise.fail(HiscoreError(.deadlineExceeded, "no server hello within \(connectTimeout)"))
            }
            defer { timeout.cancel() }
            let hello = try await helloPromise.futureResult.get()
            guard let handler = handlerBox.get() else { throw HiscoreError(.internal, "client pipeline not set up") }
            return HiscoreClient(hello: hello, channel: channel, handler: handler, ownedGroup: ownedGroup)
        } catch {
            helloPromise.fail(error)
            // Connected but no usable hello (timeout, TLS or preface failure): the socket is ours
            // to close, also on a caller's group, which outlives this attempt.
            try? await connected?.close()
            try? await ownedGroup?.shutdownGracefully()
            throw error
        }
    }

    /// Closes the connection; calls still pending fail with UNAVAILABLE.
    public func close() async throws {
        closed.withLockedValue { $0 = true }
        try? await channel.close()
        try await ownedGroup?.shutdownGracefully()
    }

    // MARK: raw calls

    /// Sends one request and waits for its response. A `deadline` is sent to the server and also
    /// enforced here; cancelling the calling task cancels the call on the server.
    public func call(_ method: RequestMethod, deadline: Duration? = nil, authToken: String = "") async throws -> ResponseResult {
        let callID = nextCallID.loadThenWrappingIncrement(ordering: .relaxed)
        let deadlineMillis = deadline.map { UInt64(max(1, $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000)) } ?? 0
        let request = RequestEnvelope(callID: callID, deadlineMillis: deadlineMillis, authToken: authToken, method: method)
        let loop = channel.eventLoop
        let handler = self.handler
        let cancelCallID = makeCallID()
        if Task.isCancelled { throw HiscoreError(.cancelled, "the calling task was cancelled") }
        let response: ResponseEnvelope = try await withTaskCancellationHandler {
            // The promise is made only while the loop still runs: one completed from elsewhere
            // is completed on its loop, and a stopped loop would leave it unfulfilled.
            let started = whileOpen { () -> (EventLoopPromise<ResponseEnvelope>, Scheduled<Void>?) in
                let promise = loop.makePromise(of: ResponseEnvelope.self)
                loop.execute { handler.value.start(request, as: .unary(promise)) }
                // The server answers DEADLINE_EXCEEDED itself; this covers a server that cannot.
                let timeout = deadlineMillis == 0 ? nil : loop.scheduleTask(in: .milliseconds(Int64(deadlineMillis) + 1000)) {
                    handler.value.abandon(
                        callID, with: HiscoreError(.deadlineExceeded, "deadline exceeded"), cancelCallID: cancelCallID)
                }
                return (promise, timeout)
            }
            guard let (promise, timeout) = started else { throw HiscoreError(.unavailable, "the client is closed") }
            // Cancelled before the start was queued: the cancellation handler's abandon ran
            // first and found nothing; abandon again behind the start.
            if Task.isCancelled {
                execute {
                    handler.value.abandon(
                        callID, with: HiscoreError(.cancelled, "the calling task was cancelled"), cancelCallID: cancelCallID)
                }
            }
            defer { timeout?.cancel() }
            return try await promise.futureResult.get()
        } onCancel: {
            execute {
                handler.value.abandon(
                    callID, with: HiscoreError(.cancelled, "the calling task was cancelled"), cancelCallID: cancelCallID)
            }
        }
        if let status = response.status, status.code != .ok { throw HiscoreError(status) }
        guard let result = response.result else { throw HiscoreError(.internal, "response without result") }
        return result
    }

    /// Runs `task` on the connection's event loop; false (and not run) once `close()` began.
    @discardableResult
    func execute(_ task: @escaping @Sendable () -> Void) -> Bool {
        let loop = channel.eventLoop
        return whileOpen { loop.execute(task) } != nil
    }

    /// `body` (which hands work to the event loop), unless `close()` began: nil then. `close()`
    /// waits for it, so what it queued runs before the owned loop stops.
    func whileOpen<T>(_ body: () -> T) -> T? {
        closed.withLockedValue { closed in closed ? nil : body() }
    }

    var handlerBox: NIOLoopBound<ClientChannelHandler> { handler }
    var eventLoop: any EventLoop { channel.eventLoop }

    /// Reserves a call id (for cancel by id).
    func makeCallID() -> UInt64 { nextCallID.loadThenWrappingIncrement(ordering: .relaxed) }
}

/// Hands the handler created inside the channel initializer back to `connect`.
private final class NIOLockedHandlerBox: @unchecked Sendable {
    private let lock = NIOLock()
    private var handler: NIOLoopBound<ClientChannelHandler>?
    func set(_ value: NIOLoopBound<ClientChannelHandler>) { lock.withLock { handler = value } }
    func get() -> NIOLoopBound<ClientChannelHandler>? { lock.withLock { handler } }
}

import NIOConcurrencyHelpers
