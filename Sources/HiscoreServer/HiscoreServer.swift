import HiscoreAuth
import HiscoreCore
import HiscoreWire
import Atomics
import HiscoreStorage
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A running Hiscore server: S shards on S event loops, a TCP listener, and the connections.
///
///     let server = try await HiscoreServer.start(configuration: config, logger: logger)
///     ...
///     try await server.shutdown()
public final class HiscoreServer: Sendable {
    public static let version = HiscoreVersion.current

    /// As the server was started (`configuration.access` keeps the keys it started with; a
    /// reload replaces what is in use: `replaceAccess`).
    public let configuration: ServerConfiguration
    /// The port actually bound (useful with port 0).
    public let localPort: Int
    /// The admin HTTP port actually bound, if any.
    public let adminPort: Int?

    private let group: MultiThreadedEventLoopGroup
    /// The admin port's own loop: the shards' loops are busy recovering while it answers
    /// `/healthz` at start-up (nil without an admin port).
    private let adminGroup: MultiThreadedEventLoopGroup?
    private let persistence: Persistence
    private let shards: [Shard]
    private let seasons: SeasonKeeper
    /// The subscription hubs (tests read their `diagnosis`).
    let streams: StreamCoordinator
    private let listener: any Channel
    private let admin: (any Channel)?
    private let ready: ManagedAtomic<Bool>
    private let registry: ConnectionRegistry
    private let logger: Logger
    /// What new connections are given: the keys and token verifier, and the TLS context
    /// (replaced by `replaceAccess` and `reloadTLS`).
    private let credentials: NIOLockedValueBox<Credentials>

    struct Credentials {
        var access: AccessControl
        var tls: NIOSSLContext?
        /// Counts the replacements of `access`: a connection applies a replacement only if it
        /// is newer than the access it has (two reloads may reach it in either order).
        var generation: UInt64 = 0
    }

    private init(
        configuration: ServerConfiguration, localPort: Int, group: MultiThreadedEventLoopGroup,
        adminGroup: MultiThreadedEventLoopGroup?, listener: any Channel, registry: ConnectionRegistry, logger: Logger, admin: (any Channel)?,
        ready: ManagedAtomic<Bool>, persistence: Persistence, shards: [Shard], seasons: SeasonKeeper, streams: StreamCoordinator,
        credentials: NIOLockedValueBox<Credentials>
    ) {
        self.credentials = credentials
        self.seasons = seasons
        self.streams = streams
        self.persistence = persistence
        self.shards = shards
        self.configuration = configuration
        self.localPort = localPort
        self.admin = admin
        self.adminPort = admin?.localAddress?.port
        self.ready = ready
        self.group = group
        self.adminGroup = adminGroup
        self.listener = listener
        self.registry = registry
        self.logger = logger
    }

    /// Raises the open-file limit as far as `--max-connections` needs (the usual soft limit is
    /// 1024), and warns when the hard limit stops short: connections past it wait in the listen
    /// backlog (the accept failures are logged, and accepting backs off: `AcceptBackoff`).
    static func checkOpenFileLimit(maxConnections: Int, shards: Int, logger: Logger) {
        let needed = UInt64(max(0, maxConnections)) + FileDescriptorLimit.reserve(shards: shards)
        guard let limit = FileDescriptorLimit.raise(toCover: needed), limit.soft < needed else { return }
        let fits = limit.soft > FileDescriptorLimit.reserve(shards: shards) ? limit.soft - FileDescriptorLimit.reserve(shards: shards) : 0
        logger.warning(
            "the open-file limit (\(limit.soft), hard \(limit.hard)) allows about \(fits) connections, fewer than --max-connections \(maxConnections): raise it (ulimit -n, systemd's LimitNOFILE) or lower --max-connections")
    }

    public static func start(configuration: ServerConfiguration, logger: Logger = Logger(label: "hiscored")) async throws -> HiscoreServer {
        try ProtectedMode.check(host: configuration.host, access: configuration.access)
        // Bad TLS files fail here, before anything is opened or bound.
        let tlsContext = try configuration.tls?.makeContext()
        let credentials = NIOLockedValueBox(Credentials(access: configuration.access, tls: tlsContext))
        let shardCount = max(1, configuration.shards)
        let limits = configuration.limits
        checkOpenFileLimit(maxConnections: limits.maxConnections, shards: shardCount, logger: logger)
        let (persistence, catalog, catalogWarnings) = try Persistence.open(
            path: configuration.dataDirectory, mode: configuration.durability, shards: shardCount, logger: logger)
        for warning in catalogWarnings { logger.warning("\(warning)") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: shardCount)
        let loops = Array(group.makeIterator())
        let memory = MemoryCeiling(limitBytes: configuration.maxMemoryBytes)
        memory.refresh()
        // Everything opened from here on is closed again if the start fails.
        var shards: [Shard] = []
        var opened: [any Channel] = []
        let registry = ConnectionRegistry(maxConnections: limits.maxConnections)
        let endpoints = AdminEndpoints()
        let adminGroup = configuration.adminPort == nil ? nil : MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            // The admin port first: /healthz answers while the data loads (see AdminEndpoints).
            var admin: (any Channel)?
            if let adminPort = configuration.adminPort, let adminGroup {
                do {
                    admin = try await AdminHTTPServer.bind(
                        group: adminGroup, host: configuration.adminHost, port: adminPort,
                        metrics: { endpoints.metricsRenderer() }, notReadyReason: { endpoints.notReadyReason() },
                        acceptFailures: AcceptBackoff(socketName: "admin port", logger: logger))
                } catch {
                    throw ListenError(socket: .admin, host: configuration.adminHost, port: adminPort, reason: ListenError.reason(error))
                }
                admin.map { opened.append($0) }
            }
            if configuration.maxMemoryBytes > 0 && JemallocStats.allocatedBytes() == nil {
                throw MemoryCeiling.StatisticsUnavailable()
            }
            let streams = try await StreamCoordinator.make(
                loops: loops, maxFrameBytes: limits.maxFrameBytes, maxFeedBacklogBytes: limits.maxFeedBacklogBytes)
            shards = loops.enumerated().map { Shard(index: $0.offset, loop: $0.element, memory: memory, streams: streams, logger: logger) }
            let directory = BoardDirectory(
                shardCount: shardCount, maxBoards: limits.maxBoards, persistence: persistence,
                firstIncarnation: catalog.highestIncarnation + 1, clock: configuration.clock,
                topCacheBudget: TopCacheBudget(limitBytes: limits.maxTopCacheBytes, ceiling: memory))
            let (boardsByIncarnation, revived) = Self.restoreBoards(
                catalog, lastRecord: persistence.lastCatalogRecord, into: directory) { logger.warning("\($0)") }
            for board in revived { try persistence.boardRevived(board) }
            try await Self.recover(
                shards: shards, persistence: persistence, boards: boardsByIncarnation, configuration: configuration,
                logger: logger)
            // Before the first write: from it on the data dir holds what only this format reads.
            try persistence.directory?.markCurrentFormat()
            memory.refresh()
            if memory.isExceeded {
                logger.warning(
                    "the memory ceiling (--max-memory \(memory.limitBytes) bytes) is below what the process already holds (\(memory.allocatedBytes) bytes allocated: the server's own ~2 MB and any recovered data): new players are refused until boards are deleted or the ceiling is raised")
            }
            let executor = BatchExecutor(
                shards: shards, writesWaitForDurability: configuration.durability == .fsync,
                maxInflightBatchItems: limits.maxServerInflightBatchItems)
            streams.attach(executor)
            let seasons = SeasonKeeper(
                directory: directory, executor: executor, streams: streams, loop: loops[0], clock: configuration.clock,
                logger: logger)
            let router = CallRouter(
                directory: directory, shardCount: shardCount, limits: limits, autoCreateBoards: configuration.autoCreateBoards,
                streams: streams, access: configuration.access,
                backups: BackupService(persistence: persistence, shards: shards), seasons: seasons)
            // Seasons whose boundary passed while the server was down end now (once each).
            for id in await seasons.runDueResets() { logger.info("board \(id): season reset on start-up (boundary passed while stopped)") }
            let connectionIDs = ManagedAtomic<UInt64>(1)
            let telemetry = try await Telemetry.make(
                loops: loops, capacityCallsPerSecond: configuration.capacityCallsPerSecond, logger: logger)
            streams.attach(telemetry)
            let ready = ManagedAtomic<Bool>(false)
            let hello = ServerHello(
                protocolVersion: ConnectionPreface.protocolVersion, serverVersion: version,
                maxFrameBytes: UInt32(clamping: limits.maxFrameBytes), maxInflightCalls: UInt32(clamping: limits.maxInflightCalls),
                maxBatchSubmits: UInt32(clamping: limits.maxBatchSubmits), maxPageEntries: UInt32(clamping: limits.maxPageEntries),
                maxPlayersPerQuery: UInt32(clamping: limits.maxPlayersPerQuery), maxSubscriptions: UInt32(clamping: limits.maxSubscriptions),
                // What a board that sets no limit of its own allows (the wire's 0 means this default).
                maxMetadataBytes: UInt32(BoardLimits().maxMetadataBytes))

            let acceptFailures = AcceptBackoff(socketName: "calls port", logger: logger)
            let securityLog = SecurityEventLog(logger: logger)
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(acceptFailures) }
                }
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .childChannelInitializer { channel in
                    guard registry.admit(channel) else {
                        return channel.close()
                    }
                    let current = credentials.withLockedValue { $0 }
                    return channel.eventLoop.makeCompletedFuture {
                        if let tls = current.tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            CallHandler(
                                router: router, executor: executor, limits: limits, hello: hello, registry: registry,
                                streams: streams, connectionID: connectionIDs.loadThenWrappingIncrement(ordering: .relaxed),
                                telemetry: telemetry, access: current.access, accessGeneration: current.generation,
                                securityLog: securityLog))
                    }
                }
            let listener: any Channel
            do {
                listener = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
            } catch {
                throw ListenError(socket: .calls, host: configuration.host, port: configuration.port, reason: ListenError.reason(error))
            }
            opened.append(listener)
            let port = listener.localAddress?.port ?? configuration.port
            endpoints.serve(AdminEndpoints.Serving(
                metrics: { [shards] in
                    await Self.scrape(
                        telemetry: telemetry, shards: shards, executor: executor, registry: registry, directory: directory,
                        memory: memory, persistence: persistence, feedBudget: streams.feedBudget)
                },
                notReadyReason: { [shards] in
                    guard ready.load(ordering: .relaxed) else { return "not accepting calls (shutting down)" }
                    for shard in shards {
                        if let failure = shard.logFailure {
                            return "shard \(shard.index)'s log failed (\(failure)); its writes are refused until a restart"
                        }
                    }
                    if let failure = persistence.catalogFailure {
                        return "the board catalog failed (\(failure)); board creations, deletions and season resets are refused until a restart"
                    }
                    return nil
                }))
            ready.store(true, ordering: .relaxed)
            // An IPv6 address in brackets, as clients' --addr takes it: "[::1]:7450".
            let listenHost = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
            logger.info(
                "hiscored \(version) listening on \(listenHost):\(port) with \(shardCount) \(shardCount == 1 ? "shard" : "shards")\(tlsContext == nil ? "" : " (TLS)")")
            if let adminAddress = admin?.localAddress {
                logger.info("admin HTTP on \(configuration.adminHost):\(adminAddress.port ?? 0) (/metrics /healthz /readyz)")
            }
            return HiscoreServer(
                configuration: configuration, localPort: port, group: group, adminGroup: adminGroup, listener: listener,
                registry: registry,
                logger: logger, admin: admin, ready: ready, persistence: persistence, shards: shards, seasons: seasons, streams: streams,
                credentials: credentials)
        } catch {
            // The listener first, then what it accepted meanwhile, then the logs those
            // connections would write to.
            for channel in opened { try? await channel.close() }
            for connection in registry.all { try? await connection.close() }
            await Self.abandon(shards: shards, group: group, persistence: persistence)
            try? await adminGroup?.shutdownGracefully()
            throw error
        }
    }

    /// Why a reload was refused; the server goes on with what it had.
    public struct ReloadRefusal: Error, CustomStringConvertible {
        public let description: String
    }

    /// Replaces the API keys and player-token verifier (`hiscored` does it on SIGHUP, after
    /// reading `--keys-file` again): new connections and every call from now on are checked
    /// against `access`. A connection that used a key `access` no longer has, or gives another
    /// role, is closed (with a connection-level UNAUTHENTICATED saying why); the others go on,
    /// streams included. Returns how many were closed. A server cannot go from keys to none or
    /// back this way (no keys means protected mode: loopback only, everything allowed): that
    /// needs a restart, and is refused.
    @discardableResult
    public func replaceAccess(_ access: AccessControl) async throws -> Int {
        guard ready.load(ordering: .relaxed) else { throw ReloadRefusal(description: "the server is shutting down") }
        let previous = credentials.withLockedValue { $0.access }
        guard access.isOpen == previous.isOpen else {
            throw ReloadRefusal(description: previous.isOpen
                ? "the server was started without API keys or a token secret (protected mode, everything allowed); adding credentials needs a restart"
                : "the reload would leave the server without any API key or token secret (protected mode, everything allowed); that needs a restart")
        }
        switch (previous.tokens, access.tokens) {
        case (nil, nil): break
        case (let before?, let after?) where before.hasSameSecret(as: after): break
        default:
            // Connections that presented a player token keep what it granted: a new secret
            // would have to close every one of them at once. A restart decides that.
            throw ReloadRefusal(description: "the player token secret cannot change by a reload (every token signed with the old one would stop at once): restart to change it")
        }
        let generation = credentials.withLockedValue { credentials in
            credentials.access = access
            credentials.generation += 1
            return credentials.generation
        }
        // Every connection is told at once (each on its own loop), then their answers counted.
        let answers = registry.all.map { channel in
            let promise = channel.eventLoop.makePromise(of: Bool.self)
            channel.pipeline.fireUserInboundEventTriggered(AccessReplacedEvent(access: access, generation: generation, closed: promise))
            // A connection closing meanwhile never sees the event (it needs no new keys), and
            // one too busy to answer within seconds is not waited for: its loop applies the keys
            // when it gets to them.
            channel.closeFuture.whenComplete { _ in promise.succeed(false) }
            let late = channel.eventLoop.scheduleTask(in: .seconds(5)) { promise.succeed(false) }
            promise.futureResult.whenComplete { _ in late.cancel() }
            return promise.futureResult
        }
        var closed = 0
        for answer in answers where (try? await answer.get()) == true { closed += 1 }
        return closed
    }

    /// Reads the TLS certificate chain and key (and client CA) files again, as at start-up;
    /// connections accepted from now on use them, open ones keep the session they have. Bad
    /// files throw (`TLSSetupError`) and the certificate in use stays. Blocking file I/O: call
    /// it off the event loops.
    public func reloadTLS() throws {
        guard let tls = configuration.tls else {
            throw ReloadRefusal(description: "the server was started without TLS; turning it on needs a restart")
        }
        let context = try tls.makeContext()
        credentials.withLockedValue { $0.tls = context }
    }

    /// Ends every season whose boundary has passed (by the configured clock); returns the boards
    /// reset. The server does this itself at start-up and when a boundary comes; tests with an
    /// injected clock call it after moving the clock.
    @discardableResult
    public func runDueResets() async -> [String] {
        await seasons.runDueResets()
    }

    /// Registers the catalog's boards: for each id the live incarnation (no season record) and the
    /// archived periods (a season record each). Returns all of them by incarnation.
    ///
    /// An id with archived periods and no live incarnation is a season reset cut short: a reset
    /// appends the old period's `season` record and the new period's `created` record in one
    /// write, and a crash can keep only the first. The reset was never acknowledged, so its
    /// newest period becomes live again (its last season record ignored) and `warn` says so;
    /// left archived, the board would answer "not found" and could not even be deleted.
    static func restoreBoards(
        _ catalog: CatalogState, lastRecord: CatalogRecord? = nil, into directory: BoardDirectory,
        warn: (String) -> Void = { _ in }
    ) -> (handles: [UInt64: BoardHandle], revived: [BoardHandle]) {
        var byID: [String: [CatalogBoard]] = [:]
        for board in catalog.boards.values { byID[board.config.id, default: []].append(board) }
        var handles: [UInt64: BoardHandle] = [:]
        var revived: [BoardHandle] = []
        for (id, var incarnations) in byID {
            var revivedPeriod: UInt64?
            if !incarnations.contains(where: { $0.seasons.isEmpty }),
                let newest = incarnations.indices.max(by: { incarnations[$0].incarnation < incarnations[$1].incarnation })
            {
                // A reset appends its records at the end of the catalog, so a cut one leaves its
                // `season` record last, whichever incarnation it archived (boards created after
                // this one have higher incarnations). The highest-incarnation rule is kept for
                // data dirs whose revival an older build did not record. Anything else (archived
                // periods left by an older build's deletion, cut between its records) stays
                // archived. A revival is written to the catalog at once (`boardRevived`).
                var cutLast = false
                if case .season(let incarnation, _, _)? = lastRecord, incarnation == incarnations[newest].incarnation {
                    cutLast = true
                }
                if cutLast || incarnations[newest].incarnation == catalog.highestIncarnation {
                    let cut = incarnations[newest].seasons.removeLast()
                    revivedPeriod = cut.periodID
                    warn("board \(id): a season reset did not complete before a crash (the new period was never recorded); period \(cut.periodID) is live again")
                } else {
                    warn("board \(id): archived periods without a live board (a deletion cut short by a crash in an older version); delete the board again to remove them")
                }
            }
            let archived = incarnations.filter { !$0.seasons.isEmpty }
            let live = incarnations.filter { $0.seasons.isEmpty }.max { $0.incarnation < $1.incarnation }
            for board in archived {
                guard let season = board.seasons.last else { continue }
                handles[board.incarnation] = directory.restore(
                    board.config, incarnation: board.incarnation, periodID: season.periodID,
                    startedAt: Int64(board.createdAt), archivedAt: Int64(season.at))
            }
            if let live {
                let periodID = revivedPeriod ?? (archived.compactMap { $0.seasons.last?.periodID }.max() ?? 0) + 1
                let handle = directory.restore(
                    live.config, incarnation: live.incarnation, periodID: periodID, startedAt: Int64(live.createdAt),
                    archivedAt: nil)
                handles[live.incarnation] = handle
                if revivedPeriod != nil { revived.append(handle) }
            }
        }
        return (handles, revived)
    }

    /// Closes what a start that failed after recovery had opened: the shards' logs, the loops,
    /// the data directory (and its lock).
    private static func abandon(shards: [Shard], group: MultiThreadedEventLoopGroup, persistence: Persistence) async {
        for shard in shards { try? await shard.loop.submit { shard.assumeIsolated { $0.closeLog() } }.get() }
        try? await group.shutdownGracefully()
        persistence.close()
    }

    /// Rebuilds every shard from disk, all shards at once (one per loop, so one per core).
    private static func recover(
        shards: [Shard], persistence: Persistence, boards: [UInt64: BoardHandle], configuration: ServerConfiguration,
        logger: Logger
    ) async throws {
        guard let directory = persistence.directory else { return }
        let started = ContinuousClock.now
        let reports = try await withThrowingTaskGroup(of: RecoveryReport.self) { group in
            for shard in shards {
                group.addTask {
                    try await shard.loop.submit {
                        try shard.assumeIsolated { shard throws in
                            try shard.recover(
                                directory: directory, boards: boards, mode: configuration.durability,
                                snapshotAfterLogBytes: configuration.snapshotAfterLogBytes)
                        }
                    }.get()
                }
            }
            var all: [RecoveryReport] = []
            for try await report in group { all.append(report) }
            return all
        }
        for report in reports {
            for warning in report.warnings { logger.warning("shard \(report.shard): \(warning)") }
        }
        let entries = reports.reduce(UInt64(0)) { $0 + $1.snapshotEntries }
        let records = reports.reduce(UInt64(0)) { $0 + $1.logRecords }
        if entries + records > 0 {
            let live = boards.values.filter { !$0.isArchived }.count
            let archived = boards.count - live
            logger.info(
                "recovered \(live) \(live == 1 ? "board" : "boards")\(archived > 0 ? " and \(archived) archived \(archived == 1 ? "period" : "periods")" : ""): \(entries) snapshot entries and \(records) log records in \(ContinuousClock.now - started)")
        }
    }

    private static func scrape(
        telemetry: Telemetry, shards: [Shard], executor: BatchExecutor, registry: ConnectionRegistry,
        directory: BoardDirectory, memory: MemoryCeiling, persistence: Persistence, feedBudget: FeedBacklogBudget
    ) async -> String {
        let snapshot = await telemetry.merged()
        var entries: [Int] = []
        var batchItems = 0
        for shard in shards {
            entries.append((try? await shard.loop.submit { shard.assumeIsolated { $0.entryCount() } }.get()) ?? 0)
            batchItems += (try? await shard.loop.submit { executor.batchItemsInFlight(on: shard.loop) }.get()) ?? 0
        }
        memory.refresh()
        var gauges = ServerGauges(
            connections: registry.count, boards: directory.count, entriesPerShard: entries,
            allocated: JemallocStats.allocatedBytes() ?? 0, resident: JemallocStats.residentBytes() ?? 0,
            retained: JemallocStats.retainedBytes() ?? 0, allocations: JemallocStats.allocationCount() ?? 0,
            memoryCeiling: memory.limitBytes, memoryCeilingExceeded: memory.isExceeded,
            cpuSeconds: ProcessStats.cpuSeconds(), residentBytes: ProcessStats.residentBytes())
        gauges.oversizeThreshold = JemallocStats.option("opt.oversize_threshold") ?? 0
        gauges.logFailedPerShard = shards.map { $0.logFailure != nil }
        gauges.catalogFailed = persistence.catalogFailure != nil
        gauges.topCacheBytes = directory.topCacheBudget.held
        gauges.feedBacklogBytes = feedBudget.held
        gauges.inflightBatchItems = batchItems
        gauges.snapshotsPerShard = shards.map { shard in
            let counts = shard.snapshotCounts
            return (
                published: counts.published.load(ordering: .relaxed), failed: counts.failed.load(ordering: .relaxed),
                running: counts.running.load(ordering: .relaxed))
        }
        return MetricsRenderer.render(snapshot, gauges: gauges)
    }

    /// Stops accepting, lets in-flight calls finish (up to the grace period), closes every
    /// connection and stops the event loops.
    public func shutdown() async {
        ready.store(false, ordering: .relaxed)
        await seasons.stop()
        try? await listener.close()
        let connections = registry.all
        for channel in connections {
            channel.pipeline.fireUserInboundEventTriggered(ServerDrainEvent())
        }
        let grace = TimeAmount.seconds(Int64(configuration.limits.shutdownGraceSeconds))
        let deadline = NIODeadline.now() + grace
        let cutShort = NIOLockedValueBox(0)
        for channel in connections {
            let remaining = deadline - .now()
            if remaining <= .zero { break }
            let closed = channel.closeFuture
            let timeout = channel.eventLoop.scheduleTask(in: remaining) {
                if channel.isActive { cutShort.withLockedValue { $0 += 1 } }
                channel.close(promise: nil)
            }
            try? await closed.get()
            timeout.cancel()
        }
        let open = registry.all
        let forced = cutShort.withLockedValue { $0 } + open.filter(\.isActive).count
        if forced > 0 {
            // A connection still open here had calls that did not finish within the grace (or
            // a client that never read their answers): they are cut off unanswered.
            logger.warning(
                "shutdown grace of \(configuration.limits.shutdownGraceSeconds) s expired: closing \(forced) connections with calls still in flight")
        }
        for channel in open { try? await channel.close() }
        try? await admin?.close()
        try? await adminGroup?.shutdownGracefully()
        // Every acknowledged write is already durable in fsync mode; close() also flushes what
        // async mode had not synced yet.
        for shard in shards { try? await shard.loop.submit { shard.assumeIsolated { $0.closeLog() } }.get() }
        try? await group.shutdownGracefully()
        persistence.close()
        logger.info("hiscored stopped")
    }
}
