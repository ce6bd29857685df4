import NIOCore
import NIOPosix

/// What `runConnections` returns: every connection's result, in connection order, and the
/// instants the connections were started and the last one finished.
struct FleetOutcome<ConnectionResult> {
    var results: [ConnectionResult]
    var startNanos: UInt64
    var endNanos: UInt64
}

/// Connects `count` client connections to `host:port`, round-robin over `group`'s loops, each
/// with the handler `makeHandler` builds around its result promise; calls `beforeStart` (to
/// sample the server's CPU), starts every connection at one instant (`LoadStartEvent`) and waits
/// for every result. The first failure is thrown after all have finished; the channels are
/// closed on return. Shared by the request load (`runLoad`) and the stream writers.
func runConnections<ConnectionResult: Sendable>(
    count: Int, host: String, port: Int, group: MultiThreadedEventLoopGroup, beforeStart: () -> Void,
    makeHandler: @escaping @Sendable (_ index: Int, _ promise: EventLoopPromise<ConnectionResult>) -> any ChannelHandler
) throws -> FleetOutcome<ConnectionResult> {
    var channels: [Channel] = []
    var futures: [EventLoopFuture<ConnectionResult>] = []
    defer {
        for channel in channels { channel.close(promise: nil) }
    }
    let loops = Array(group.makeIterator())
    for index in 0..<count {
        let loop = loops[index % loops.count]
        let promise = loop.makePromise(of: ConnectionResult.self)
        futures.append(promise.futureResult)
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(makeHandler(index, promise))
                }
            }
        do {
            channels.append(try bootstrap.connect(host: host, port: port).wait())
        } catch {
            promise.fail(error)
            throw LoadProtocolError("cannot connect to \(host):\(port): \(error)")
        }
    }
    beforeStart()
    let startNanos = loadNowNanos()
    for channel in channels {
        channel.pipeline.fireUserInboundEventTriggered(LoadStartEvent(startNanos: startNanos))
    }
    var results: [ConnectionResult] = []
    var firstError: Error? = nil
    for future in futures {
        do {
            results.append(try future.wait())
        } catch {
            if firstError == nil { firstError = error }
        }
    }
    let endNanos = loadNowNanos()
    if let firstError { throw firstError }
    return FleetOutcome(results: results, startNanos: startNanos, endNanos: endNanos)
}

/// A fleet connection's result promise, completed once: the first outcome wins and the
/// connection is closed; later ones (the close itself, a late error) are ignored. A class:
/// closing re-enters the handler (`channelInactive` reports a failure) while `succeed` runs.
final class ConnectionCompletion<ConnectionResult: Sendable> {
    private let promise: EventLoopPromise<ConnectionResult>
    private(set) var isDone = false

    init(_ promise: EventLoopPromise<ConnectionResult>) {
        self.promise = promise
    }

    func succeed(_ result: ConnectionResult, closing context: ChannelHandlerContext) {
        guard !isDone else { return }
        isDone = true
        promise.succeed(result)
        context.close(promise: nil)
    }

    func fail(_ error: Error, closing context: ChannelHandlerContext) {
        guard !isDone else { return }
        isDone = true
        promise.fail(error)
        context.close(promise: nil)
    }
}
