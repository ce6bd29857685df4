import HiscoreCore
import HiscoreWire
import Atomics
import Logging
import NIOCore
import NIOPosix

/// A running Hiscore server: S shards on S event loops, a TCP listener, and the connections.
///
///     let server = try await HiscoreServer.start(configuration: config, logger: logger)
///     ...
///     try await server.shutdown()
public final class HiscoreServer: Sendable {
    public static let version = "0.1.0"

    public let configuration: ServerConfiguration
    /// The port actually bound (useful with port 0).
    public let localPort: Int

    private let group: MultiThreadedEventLoopGroup
    private let listener: any Channel
    private let registry: ConnectionRegistry
    private let logger: Logger

    private init(
        configuration: ServerConfiguration, localPort: Int, group: MultiThreadedEventLoopGroup,
        listener: any Channel, registry: ConnectionRegistry, logger: Logger
    ) {
        self.configuration = configuration
        self.localPort = localPort
        self.group = group
        self.listener = listener
        self.registry = registry
        self.logger = logger
    }

    public static func start(configuration: ServerConfiguration, logger: Logger = Logger(label: "hiscored")) async throws -> HiscoreServer {
        let shardCount = max(1, configuration.shards)
        let limits = configuration.limits
        let group = MultiThreadedEventLoopGroup(numberOfThreads: shardCount)
        let loops = Array(group.makeIterator())
        let memory = MemoryCeiling(limitBytes: configuration.maxMemoryBytes)
        memory.refresh()
        let streams = try await StreamCoordinator.make(loops: loops)
        let shards = loops.enumerated().map { Shard(index: $0.offset, loop: $0.element, memory: memory, streams: streams) }
        let directory = BoardDirectory(shardCount: shardCount, maxBoards: limits.maxBoards)
        let router = CallRouter(
            directory: directory, shardCount: shardCount, limits: limits, autoCreateBoards: configuration.autoCreateBoards,
            streams: streams)
        let executor = BatchExecutor(shards: shards)
        streams.attach(executor)
        let connectionIDs = ManagedAtomic<UInt64>(1)
        let registry = ConnectionRegistry(maxConnections: limits.maxConnections)
        let hello = ServerHello(
            protocolVersion: ConnectionPreface.protocolVersion, serverVersion: version,
            maxFrameBytes: UInt32(limits.maxFrameBytes), maxInflightCalls: UInt32(limits.maxInflightCalls),
            maxBatchSubmits: UInt32(limits.maxBatchSubmits), maxPageEntries: UInt32(limits.maxPageEntries),
            maxPlayersPerQuery: UInt32(limits.maxPlayersPerQuery), maxSubscriptions: UInt32(limits.maxSubscriptions),
            maxMetadataBytes: UInt32(limits.defaultMaxMetadataBytes))

        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                guard registry.admit(channel) else {
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(ServerInboundDecoder(maxFrameBytes: limits.maxFrameBytes)))
                    try channel.pipeline.syncOperations.addHandler(
                        CallHandler(
                            router: router, executor: executor, limits: limits, hello: hello, registry: registry,
                            streams: streams, connectionID: connectionIDs.loadThenWrappingIncrement(ordering: .relaxed)))
                }
            }
        let listener: any Channel
        do {
            listener = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        let port = listener.localAddress?.port ?? configuration.port
        logger.info("hiscored \(version) listening on \(configuration.host):\(port) with \(shardCount) shards")
        return HiscoreServer(
            configuration: configuration, localPort: port, group: group, listener: listener, registry: registry,
            logger: logger)
    }

    /// Stops accepting, lets in-flight calls finish (up to the grace period), closes every
    /// connection and stops the event loops.
    public func shutdown() async {
        try? await listener.close()
        let connections = registry.all
        for channel in connections {
            channel.pipeline.fireUserInboundEventTriggered(ServerDrainEvent())
        }
        let grace = TimeAmount.seconds(Int64(configuration.limits.shutdownGraceSeconds))
        let deadline = NIODeadline.now() + grace
        for channel in connections {
            let remaining = deadline - .now()
            if remaining <= .zero { break }
            let closed = channel.closeFuture
            let timeout = channel.eventLoop.scheduleTask(in: remaining) { channel.close(promise: nil) }
            try? await closed.get()
            timeout.cancel()
        }
        for channel in registry.all { try? await channel.close() }
        try? await group.shutdownGracefully()
        logger.info("hiscored stopped")
    }
}
