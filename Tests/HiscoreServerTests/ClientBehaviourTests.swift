import HiscoreClient
import HiscoreCore
import HiscoreWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// The Swift client's own rules: its connect timeout, what it closes when a connect fails, when
/// it sends a call it had to queue, and how much it buffers for a slow stream consumer.
@Suite("Swift client: timeouts, queued calls, slow stream consumers")
struct ClientBehaviourTests {
    @Test("a sub-second connect timeout is honoured as given (it was cut to whole seconds: 0)")
    func subSecondConnectTimeout() async throws {
        try await withServer { server in
            let client = try await HiscoreClient.connect(
                host: "127.0.0.1", port: server.localPort, connectTimeout: .milliseconds(900))
            try? await client.close()
        }
    }

    @Test("a server that never says hello: connect fails after its timeout and closes the socket")
    func helloTimeoutClosesTheSocket() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let fake = try await FakeServer.start(group: group, hello: nil)
        do {
            await expectStatus(.deadlineExceeded) {
                _ = try await HiscoreClient.connect(
                    host: "127.0.0.1", port: fake.port, group: group, connectTimeout: .milliseconds(300))
            }
            // The caller's group outlives the attempt: the client must close its socket itself.
            try await fake.waitForClose()
        } catch {
            try? await fake.stop()
            try? await group.shutdownGracefully()
            throw error
        }
        try? await fake.stop()
        try await group.shutdownGracefully()
    }

    @Test("a connection-level error fails the calls in flight UNAVAILABLE, with the server's error as the cause")
    func connectionLevelErrorIsUnavailable() async throws {
        try await withFakeServer(maxInflightCalls: 8) { fake, client in
            async let pending: HiscoreError? = {
                do {
                    // Only a bound: the test's own steps may be held up on a loaded machine.
                    _ = try await client.call(.ping(payload: [1]), deadline: .seconds(60))
                    return nil
                } catch let error as HiscoreError {
                    return error
                }
            }()
            _ = try await fake.nextRequest()
            try await fake.send(.failure(callID: 0, Status(.resourceExhausted, "frame of 2000000 bytes exceeds max_frame_bytes")))
            let error = try await pending
            #expect(error?.code == .unavailable, "\(String(describing: error))")
            #expect(error?.cause?.code == .resourceExhausted)
            #expect(error?.message.contains("max_frame_bytes") == true)
        }
    }

    @Test("a call that waited for an in-flight slot is sent with what is left of its deadline")
    func queuedCallSendsTheRestOfItsDeadline() async throws {
        try await withFakeServer(maxInflightCalls: 1) { fake, client in
            async let first = client.call(.ping(payload: [1]), deadline: .seconds(30))
            let sentA = try await fake.nextRequest()
            // B's task says when it calls (a child task can start late on a loaded machine, and
            // B must be queued before A is answered); the call queues B on the channel's loop.
            let (calling, signal) = AsyncStream.makeStream(of: Void.self)
            async let second = { () async throws -> ResponseResult in
                signal.yield()
                return try await client.call(.ping(payload: [2]), deadline: .seconds(5))
            }()
            var called = calling.makeAsyncIterator()
            _ = await called.next()
            // B waits behind A for at least this long: the time it must not be given again.
            try await Task.sleep(for: .milliseconds(1_000))
            try await fake.send(ResponseEnvelope(callID: sentA.callID, result: .ping(payload: [1])))
            let sentB = try await fake.nextRequest()
            #expect(sentB.method == .ping(payload: [2]))
            #expect(sentB.deadlineMillis <= 4_500 && sentB.deadlineMillis > 0, "sent with \(sentB.deadlineMillis) ms")
            try await fake.send(ResponseEnvelope(callID: sentB.callID, result: .ping(payload: [2])))
            _ = try await (first, second)
        }
    }

    @Test("a call given up on keeps its in-flight slot until the server answers it: a queued call waits")
    func abandonedCallHoldsItsSlot() async throws {
        try await withFakeServer(maxInflightCalls: 1) { fake, client in
            // A: held by the server (no answer); its local deadline gives up at 50 ms + 1 s.
            async let first = expectStatus(.deadlineExceeded) {
                _ = try await client.call(.ping(payload: [1]), deadline: .milliseconds(50))
            }
            let sentA = try await fake.nextRequest()
            #expect(sentA.method == .ping(payload: [1]))
            // B: queued behind A (max_inflight_calls 1).
            async let second = client.call(.ping(payload: [2]), deadline: .seconds(5))
            let cancel = try await fake.nextRequest()
            #expect(cancel.method == .cancel(callID: sentA.callID))
            _ = await first
            // Until the server answers A, B must not be sent: the server still counts A.
            try await fake.send(.failure(callID: sentA.callID, Status(.cancelled, "cancelled")))
            let sentB = try await fake.nextRequest()
            #expect(sentB.method == .ping(payload: [2]))
            #expect(fake.requestsBefore(sentB.callID) == [sentA.callID, cancel.callID])
            try await fake.send(ResponseEnvelope(callID: sentB.callID, result: .ping(payload: [2])))
            #expect(try await second == .ping(payload: [2]))
        }
    }

    @Test("a consumer past maxBufferedEvents: the subscription is cancelled on the server, the stream ends RESOURCE_EXHAUSTED")
    func slowConsumerOverflow() async throws {
        try await withClient(configure: { $0.limits.maxSubscriptions = 1 }) { client, _ in
            _ = try await client.createBoard(BoardConfig(id: "slow"))
            _ = try await client.submit(board: "slow", player: "p:1", score: 1)
            // Not read until the end: holds at most one event (the snapshot).
            let unread = client.subscribe(board: "slow", target: .player("p:1"), maxBufferedEvents: 1)
            // Its overflow cancels it on the server, which frees the connection's one subscription.
            try await within(.seconds(20), "the overflowing subscription is cancelled on the server") {
                var score: Int64 = 2
                while true {
                    _ = try await client.submit(board: "slow", player: "p:1", score: score)
                    score += 1
                    do {
                        for try await _ in client.subscribe(board: "slow", target: .player("p:1")) { break }
                        return
                    } catch let error as HiscoreError where error.code == .resourceExhausted {
                        continue  // the first subscription is still open
                    }
                }
            }
            var events = 0
            let message = await expectStatus(.resourceExhausted) {
                for try await _ in unread { events += 1 }
            }
            #expect(events == 1)
            #expect(message.contains("maxBufferedEvents"))
        }
    }
}

/// Runs `body` with a fake server saying hello with `maxInflightCalls` and a client connected to
/// it, then stops both and their event loop group (also when `body` throws).
func withFakeServer(
    maxInflightCalls: UInt32, _ body: (FakeServer, HiscoreClient) async throws -> Void
) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let fake = try await FakeServer.start(group: group, hello: FakeServer.hello(maxInflightCalls: maxInflightCalls))
    let client: HiscoreClient
    do {
        client = try await HiscoreClient.connect(host: "127.0.0.1", port: fake.port, group: group)
    } catch {
        try? await fake.stop()
        try? await group.shutdownGracefully()
        throw error
    }
    do {
        try await body(fake, client)
    } catch {
        try? await client.close()
        try? await fake.stop()
        try? await group.shutdownGracefully()
        throw error
    }
    try? await client.close()
    try? await fake.stop()
    try await group.shutdownGracefully()
}

/// A hand-driven server end for client tests: answers the preface with `hello` (or never), hands
/// each request frame to the test and sends what the test tells it to.
final class FakeServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let requests: AsyncStream<RequestEnvelope>
    private let connection: NIOLockedValueBox<(any Channel)?>
    private let received: NIOLockedValueBox<[UInt64]>
    /// An element each time a client connection closes.
    private let closedConnections: AsyncStream<Void>

    static func hello(maxInflightCalls: UInt32) -> ServerHello {
        ServerHello(
            protocolVersion: 1, serverVersion: "fake", maxFrameBytes: 1 << 20, maxInflightCalls: maxInflightCalls,
            maxBatchSubmits: 10, maxPageEntries: 10, maxPlayersPerQuery: 10, maxSubscriptions: 10, maxMetadataBytes: 16)
    }

    private init(
        port: Int, channel: any Channel, requests: AsyncStream<RequestEnvelope>,
        connection: NIOLockedValueBox<(any Channel)?>, received: NIOLockedValueBox<[UInt64]>,
        closedConnections: AsyncStream<Void>
    ) {
        self.port = port
        self.channel = channel
        self.requests = requests
        self.connection = connection
        self.received = received
        self.closedConnections = closedConnections
    }

    static func start(group: any EventLoopGroup, hello: ServerHello?) async throws -> FakeServer {
        let (requests, continuation) = AsyncStream<RequestEnvelope>.makeStream()
        let connection = NIOLockedValueBox<(any Channel)?>(nil)
        let received = NIOLockedValueBox<[UInt64]>([])
        let (closed, closedContinuation) = AsyncStream<Void>.makeStream()
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { child in
                connection.withLockedValue { $0 = child }
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(
                        Handler(hello: hello, onRequest: { request in
                            received.withLockedValue { $0.append(request.callID) }
                            continuation.yield(request)
                        }, onClose: { closedContinuation.yield() }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else { throw HiscoreError(.internal, "fake server has no port") }
        return FakeServer(
            port: port, channel: channel, requests: requests, connection: connection, received: received,
            closedConnections: closed)
    }

    /// The next request frame a client sent (bounded wait).
    func nextRequest() async throws -> RequestEnvelope {
        let requests = self.requests
        return try await within(.seconds(10), "a request reaches the fake server") {
            for await request in requests { return request }
            throw HiscoreError(.unavailable, "fake server stopped")
        }
    }

    /// Waits (bounded) until a client connection closes.
    func waitForClose() async throws {
        let closed = closedConnections
        try await within(.seconds(10), "the fake server sees the connection closed") {
            for await _ in closed { return }
        }
    }

    /// Call ids of the requests received before `callID`, in order.
    func requestsBefore(_ callID: UInt64) -> [UInt64] {
        received.withLockedValue { ids in Array(ids.prefix { $0 != callID }) }
    }

    func send(_ response: ResponseEnvelope) async throws {
        guard let child = connection.withLockedValue({ $0 }) else { throw HiscoreError(.internal, "no client connected") }
        var buffer = child.allocator.buffer(capacity: 64)
        FrameEncoding.encodeResponseFrame(response, into: &buffer)
        try await child.writeAndFlush(buffer)
    }

    func stop() async throws {
        try? await connection.withLockedValue({ $0 })?.close()
        try await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private let hello: ServerHello?
        private let onRequest: (RequestEnvelope) -> Void
        private let onClose: () -> Void
        private var pending = ByteBuffer()
        private var prefaceRead = false

        init(hello: ServerHello?, onRequest: @escaping (RequestEnvelope) -> Void, onClose: @escaping () -> Void) {
            self.hello = hello
            self.onRequest = onRequest
            self.onClose = onClose
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            pending.writeBuffer(&bytes)
            if !prefaceRead {
                guard pending.readableBytes >= ConnectionPreface.length else { return }
                pending.moveReaderIndex(forwardBy: ConnectionPreface.length)
                prefaceRead = true
                if let hello {
                    var buffer = context.channel.allocator.buffer(capacity: 64)
                    FrameEncoding.encodeResponseFrame(ResponseEnvelope(callID: 0, result: .hello(hello)), into: &buffer)
                    context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
                }
            }
            while pending.readableBytes >= 5,
                let length = pending.getInteger(at: pending.readerIndex + 1, as: UInt32.self),
                pending.readableBytes >= 5 + Int(length)
            {
                pending.moveReaderIndex(forwardBy: 5)
                guard let body = pending.readSlice(length: Int(length)),
                    let request = try? WireCodec.decodeRequest(body)
                else { continue }
                onRequest(request)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            onClose()
            context.fireChannelInactive()
        }
    }
}
