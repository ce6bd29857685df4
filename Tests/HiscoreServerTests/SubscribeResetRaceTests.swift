import HiscoreAuth
import HiscoreClient
import HiscoreCore
@testable import HiscoreServer
import HiscoreWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A subscribe is routed on its connection's loop (the board's handle is looked up there) and
/// then hops to the board's home loop, where its hub is made. A season reset archives the handle
/// and ends the board's hubs (`boardEnded`) on that same home loop. When the reset falls between
/// the two steps of the subscribe, the hop runs after `boardEnded`, on an archived handle.
///
/// The window is a few instructions wide on the connection's loop: with the fix removed, 3,000
/// subscribes sent together with a reset_board on another connection of a real server never
/// landed in it (measured 2026-11-30), so a loop through the public server could not catch the
/// regression. `SubscribeResetRig` builds the server from the same parts
/// (`HiscoreServer.start`'s) with its board directory in reach, and reproduces the interleaving
/// exactly: the reset's two steps on the old handle (`markArchived`, as `BoardDirectory.reset`
/// does, then `StreamCoordinator.boardEnded`, as `SeasonKeeper.reset` does) run first, while
/// the directory still routes the board to that handle (what the subscribe's routing saw).
@Suite("Subscribe racing a season reset")
struct SubscribeResetRaceTests {
    @Test("a subscribe routed before a reset and run on the home loop after it ends ABORTED instead of serving the archived period")
    func subscribeAfterBoardEnded() async throws {
        let rig = try await SubscribeResetRig.start(shards: 2)
        let client = try await HiscoreClient.connect(host: "127.0.0.1", port: rig.port)
        do {
            _ = try await client.submit(board: "season", player: "old-period", score: 7)
            let routed = try #require(rig.directory.board("season"))

            // The reset's steps on the old period, before the subscribe's hop reaches the loop.
            routed.markArchived(at: 1_000_000)
            rig.streams.boardEnded(routed, Status(.aborted, "board season was reset"))
            #expect(rig.directory.board("season") === routed, "the subscribe must be routed to the archived handle")

            let outcome = await firstOutcome(of: client.subscribe(board: "season", target: .top(5)))
            switch outcome {
            case .ended(let error as HiscoreError):
                #expect(error.code == .aborted, "\(error)")
                #expect(error.message.contains("archived"), "\(error.message)")
            case .ended(let error):
                Issue.record("the stream ended with \(String(describing: error)), not ABORTED")
            case .event(let event):
                Issue.record("the archived period was served: \(event)")
            case .timedOut:
                Issue.record("neither an event nor the end of the stream within the timeout")
            }
            // The refused subscription does not stay counted on the board (shards would keep
            // making write notes for it).
            #expect(routed.subscriberCount == 0)

            // Subscribing again (as the status asks) is served on the new period, which is empty.
            _ = try rig.directory.reset("season", at: 1_000_000)
            let live = try #require(rig.directory.board("season"))
            #expect(live !== routed && !live.isArchived)
            let again = await firstOutcome(of: client.subscribe(board: "season", target: .top(5)))
            guard case .event(let event) = again, case .window(let window) = event.change else {
                Issue.record("a subscribe to the new period was not served: \(again)")
                try? await client.close()
                await rig.stop()
                return
            }
            #expect(event.snapshot && window.entries.isEmpty)
        } catch {
            Issue.record("\(error)")
        }
        try? await client.close()
        await rig.stop()
    }
}

enum StreamOutcome: Sendable {
    case event(RankEvent)
    case ended((any Error)?)
    case timedOut
}

/// The first thing a stream does (an event, or its end) within `timeout`; the stream's consumer
/// is cancelled either way.
func firstOutcome(
    of stream: AsyncThrowingStream<RankEvent, any Error>, timeout: Duration = .seconds(10)
) async -> StreamOutcome {
    await withTaskGroup(of: StreamOutcome.self) { group in
        group.addTask {
            do {
                for try await event in stream { return .event(event) }
                return .ended(nil)
            } catch {
                return .ended(error)
            }
        }
        group.addTask {
            try? await sleepCountingRunTime(timeout)
            return .timedOut
        }
        let first = await group.next() ?? .timedOut
        group.cancelAll()
        return first
    }
}

/// A server put together from the parts `HiscoreServer.start` uses (memory durability, no
/// admin port, an ephemeral loopback port), keeping the board directory and the stream
/// coordinator in reach of the test.
struct SubscribeResetRig {
    let group: MultiThreadedEventLoopGroup
    let directory: BoardDirectory
    let streams: StreamCoordinator
    let listener: any Channel
    let registry: ConnectionRegistry

    var port: Int { listener.localAddress?.port ?? 0 }

    static func start(shards shardCount: Int, maxStreamWindowBytes: Int? = nil, maxStreamWindowEntries: Int? = nil) async throws -> SubscribeResetRig {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: shardCount)
        do {
            let loops = Array(group.makeIterator())
            let memory = MemoryCeiling(limitBytes: 0)
            let streams = try await StreamCoordinator.make(loops: loops)
            var quiet = Logger(label: "subscribe-reset-rig")
            quiet.logLevel = .critical
            let shards = loops.enumerated().map {
                Shard(index: $0.offset, loop: $0.element, memory: memory, streams: streams, logger: quiet)
            }
            let executor = BatchExecutor(shards: shards, writesWaitForDurability: false)
            streams.attach(executor)
            let directory = BoardDirectory(shardCount: shardCount, maxBoards: 10)
            let limits = {
                var limits = ServerLimits()
                if let maxStreamWindowBytes { limits.maxStreamWindowBytes = maxStreamWindowBytes }
                if let maxStreamWindowEntries { limits.maxStreamWindowEntries = maxStreamWindowEntries }
                return limits
            }()
            let router = CallRouter(
                directory: directory, shardCount: shardCount, limits: limits, autoCreateBoards: true, streams: streams,
                access: AccessControl(), backups: nil, seasons: nil)
            let hello = ServerHello(
                protocolVersion: ConnectionPreface.protocolVersion, serverVersion: HiscoreServer.version,
                maxFrameBytes: UInt32(clamping: limits.maxFrameBytes), maxInflightCalls: UInt32(clamping: limits.maxInflightCalls),
                maxBatchSubmits: UInt32(clamping: limits.maxBatchSubmits), maxPageEntries: UInt32(clamping: limits.maxPageEntries),
                maxPlayersPerQuery: UInt32(clamping: limits.maxPlayersPerQuery),
                maxSubscriptions: UInt32(clamping: limits.maxSubscriptions),
                maxMetadataBytes: UInt32(BoardLimits().maxMetadataBytes))
            let registry = ConnectionRegistry(maxConnections: limits.maxConnections)
            let connectionIDs = NIOLockedValueBox<UInt64>(0)
            let listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    guard registry.admit(channel) else { return channel.close() }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(CallHandler(
                            router: router, executor: executor, limits: limits, hello: hello, registry: registry,
                            streams: streams, connectionID: connectionIDs.withLockedValue { $0 += 1; return $0 }))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            return SubscribeResetRig(group: group, directory: directory, streams: streams, listener: listener, registry: registry)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    func stop() async {
        try? await listener.close()
        for channel in registry.all { try? await channel.close() }
        try? await group.shutdownGracefully()
    }
}
