import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import HiscoreServer

/// The admin port's defences against clients that hold it: requests that never finish arriving,
/// answers never read; and what `/readyz` says when the server cannot take writes.
@Suite("Admin HTTP port: request deadline, write backpressure, readiness")
struct AdminHTTPTests {
    /// Counts the `read` requests that get past the handlers after it (toward the socket).
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var reads = 0

        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// After a request answered in time: the connection outlives its deadline, and a next
    /// request left unfinished is closed at its own.
    static func expectOnlyUnfinishedRequestsBounded(_ channel: EmbeddedChannel, _ loop: EmbeddedEventLoop) throws {
        loop.advanceTime(by: AdminHTTPServer.requestTimeout * 2)
        #expect(channel.isActive)
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\n"))
        loop.advanceTime(by: AdminHTTPServer.requestTimeout)
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    /// A connected channel with the deadline handler alone, on a loop whose time the test moves.
    static func deadlineChannel() throws -> (EmbeddedChannel, EmbeddedEventLoop) {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: AdminRequestDeadline(), loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, loop)
    }

    @Test("a connection that sends nothing is closed requestTimeout after connecting (it held its slot for the idle timeout)")
    func silentConnectionDeadline() throws {
        let (channel, loop) = try Self.deadlineChannel()
        loop.advanceTime(by: AdminHTTPServer.requestTimeout - .seconds(1))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    @Test("a request not complete within requestTimeout of its first byte closes the connection")
    func requestDeadline() throws {
        let (channel, loop) = try Self.deadlineChannel()
        // A first request answered; then silence is the idle timeout's business.
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\n\r\n"))
        channel.pipeline.triggerUserOutboundEvent(AdminRequestDeadline.RequestComplete(), promise: nil)
        channel.pipeline.triggerUserOutboundEvent(AdminRequestDeadline.ResponseSent(), promise: nil)
        loop.advanceTime(by: AdminHTTPServer.requestTimeout * 3)
        #expect(channel.isActive)
        // A header trickling in, a byte now and then: closed at the deadline from its first byte.
        try channel.writeInbound(ByteBuffer(string: "GET /metr"))
        loop.advanceTime(by: AdminHTTPServer.requestTimeout - .seconds(1))
        try channel.writeInbound(ByteBuffer(string: "ics HTTP/1.1\r\n"))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    @Test("a request read whole in time ends its deadline; the next request gets a new one")
    func completedRequestEndsItsDeadline() throws {
        let (channel, loop) = try Self.deadlineChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\n\r\n"))
        channel.pipeline.triggerUserOutboundEvent(AdminRequestDeadline.RequestComplete(), promise: nil)
        channel.pipeline.triggerUserOutboundEvent(AdminRequestDeadline.ResponseSent(), promise: nil)
        try Self.expectOnlyUnfinishedRequestsBounded(channel, loop)
    }

    @Test("a pipelined request waiting behind a slow answer is not timed until that answer is sent")
    func pipelinedRequestWaitsUntimed() throws {
        let (channel, loop) = try Self.deadlineChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\n\r\n"))
        channel.pipeline.triggerUserOutboundEvent(AdminRequestDeadline.RequestComplete(), promise: nil)
        // The next request arrives while /metrics renders, slowly.
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\n\r\n"))
        loop.advanceTime(by: AdminHTTPServer.requestTimeout * 3)
        #expect(channel.isActive)
        // Answered: the waiting request's clock starts now.
        channel.pipeline.triggerUserOutboundEvent(AdminRequestDeadline.ResponseSent(), promise: nil)
        loop.advanceTime(by: AdminHTTPServer.requestTimeout)
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    @Test("in the admin pipeline, answering a request ends its deadline (the end reaches the deadline handler)")
    func pipelineEndsDeadlines() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        try AdminHTTPServer.configure(channel.pipeline.syncOperations, metrics: { { "" } }, notReadyReason: { nil })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // Two pipelined requests in one read: both answered, neither leaves a clock running.
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"))
        var answers = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { answers += String(buffer: part) }
        #expect(answers.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "\(answers)")
        try Self.expectOnlyUnfinishedRequestsBounded(channel, loop)
    }

    /// The "starting" 503 for /metrics waited for a task like a real scrape does; in a test run
    /// whose cooperative threads were all blocked for over 10 s, a scrape during start-up went
    /// unanswered. It is answered on the connection's loop, in the read that asked.
    @Test("while starting, /metrics is answered 503 at once, without waiting for a task")
    func startingMetricsAnsweredInPlace() throws {
        let channel = EmbeddedChannel()
        try AdminHTTPServer.configure(channel.pipeline.syncOperations, metrics: { nil }, notReadyReason: { "starting" })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
        var answer = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { answer += String(buffer: part) }
        #expect(answer.hasPrefix("HTTP/1.1 503 Service Unavailable"), "\(answer)")
        #expect(answer.hasSuffix("not ready: \(AdminEndpoints.startingReason)\n"), "\(answer)")
        _ = try? channel.finish()
    }

    @Test("reading pauses while the answers are not taken (channel not writable) and resumes after")
    func writeBackpressure() throws {
        let counter = ReadCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(AdminWriteBackpressure())
        channel.read()
        #expect(counter.reads == 1)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        channel.read()
        #expect(counter.reads == 1)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == 2)
        channel.read()
        #expect(counter.reads == 3)
        _ = try? channel.finish()
    }

    @Test("full admin slots: a new connection takes the oldest slot not being answered; none while all are answered")
    func fullSlotsEvictTheOldestIdle() throws {
        let slots = AdminConnectionSlots(capacity: 2)
        let first = EmbeddedChannel()
        let second = EmbeddedChannel()
        let third = EmbeddedChannel()
        let fourth = EmbeddedChannel()
        for channel in [first, second, third, fourth] { try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait() }
        let firstSlot = try #require(slots.admit(first))
        _ = try #require(slots.admit(second))
        firstSlot.answering = true
        // The oldest idle one is the second: it gives way, the first (being answered) stays.
        let thirdSlot = try #require(slots.admit(third))
        #expect(first.isActive && !second.isActive && slots.count == 2)
        thirdSlot.answering = true
        #expect(slots.admit(fourth) == nil, "every slot is being answered")
        #expect(first.isActive && third.isActive && slots.count == 2)
        // A closed connection frees its slot.
        _ = try? first.finish()
        #expect(slots.count == 1)
        _ = try? third.finish()
    }

    @Test("64 silent connections do not keep /healthz out")
    func silentConnectionsGiveWay() async throws {
        let endpoints = AdminEndpoints()
        try await Self.withAdminPort(endpoints) { port in
            var silent: [RawConnection] = []
            for _ in 0..<AdminHTTPServer.maxConnections { silent.append(try RawConnection(port: port)) }
            let answer = try await httpGet(port: port, path: "/healthz")
            #expect(answer.status == 200)
            withExtendedLifetime(silent) {}
        }
    }

    /// An admin port on 127.0.0.1 (its own loop) serving `endpoints`, for `body`; always closed.
    static func withAdminPort(_ endpoints: AdminEndpoints, _ body: (Int) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let admin: any Channel
        do {
            admin = try await AdminHTTPServer.bind(
                group: group, host: "127.0.0.1", port: 0, metrics: { endpoints.metricsRenderer() },
                notReadyReason: { endpoints.notReadyReason() })
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        do {
            try await body(try #require(admin.localAddress?.port))
        } catch {
            try? await admin.close()
            try? await group.shutdownGracefully()
            throw error
        }
        try await admin.close()
        try await group.shutdownGracefully()
    }

    @Test("while the server starts: /healthz 200, /readyz and /metrics 503 'starting'; then they serve")
    func startingEndpoints() async throws {
        let endpoints = AdminEndpoints()
        try await Self.withAdminPort(endpoints) { port in
            #expect(try await httpGet(port: port, path: "/healthz").status == 200)
            for path in ["/readyz", "/metrics"] {
                let starting = try await httpGet(port: port, path: path)
                #expect(starting.status == 503 && starting.body == "not ready: starting (recovering the data directory)\n", "\(path)")
            }
            endpoints.serve(AdminEndpoints.Serving(metrics: { "hiscore_up 1\n" }, notReadyReason: { nil }))
            #expect(try await httpGet(port: port, path: "/readyz").status == 200)
            let metrics = try await httpGet(port: port, path: "/metrics")
            #expect(metrics.status == 200 && metrics.body == "hiscore_up 1\n")
        }
    }

    @Test("/readyz answers 503 with the reason while the server is not ready; /healthz still 200")
    func readinessReason() async throws {
        let endpoints = AdminEndpoints()
        let reason = NIOLockedValueBox<String?>("shard 1's log failed (disk full); its writes are refused until a restart")
        endpoints.serve(AdminEndpoints.Serving(metrics: { "" }, notReadyReason: { reason.withLockedValue { $0 } }))
        try await Self.withAdminPort(endpoints) { port in
            let notReady = try await httpGet(port: port, path: "/readyz")
            #expect(notReady.status == 503)
            #expect(notReady.body == "not ready: shard 1's log failed (disk full); its writes are refused until a restart\n")
            #expect(try await httpGet(port: port, path: "/healthz").status == 200)
            reason.withLockedValue { $0 = nil }
            let ready = try await httpGet(port: port, path: "/readyz")
            #expect(ready.status == 200 && ready.body == "ready\n")
        }
    }
}
