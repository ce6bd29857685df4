import ArgumentParser
import CJemalloc
import Dispatch
import Glibc
import HiscoreAuth
import HiscoreServer
import HiscoreStorage
import HiscoreWire
import Logging

/// `hiscored`: the Hiscore server. Runs in the foreground; SIGINT/SIGTERM stop it gracefully
/// (stop accepting, drain in-flight calls, exit 0 within the grace period); SIGHUP reads the
/// keys file and the TLS files again (`reload`).
@main
struct Hiscored: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hiscored",
        abstract: "The Hiscore real-time leaderboard server.",
        discussion: """
            Every option can also be set with an environment variable: HISCORE_ + the option name in \
            upper case with dashes as underscores (e.g. HISCORE_PORT=7450). A flag on the command line wins.

            SIGHUP reads --keys-file and the TLS files again (rotation without a restart); SIGINT/SIGTERM stop \
            it gracefully.
            """,
        version: HiscoreVersion.current)

    @Option(help: "Address to listen on (HISCORE_HOST). Default 127.0.0.1.")
    var host: String?

    // .unconditional: a negative value is refused by the range check with its message, not
    // taken for an option ("Missing value for '--port'").
    @Option(parsing: .unconditional, help: "TCP port (HISCORE_PORT); 0 picks a free one. Default 7450.")
    var port: Int?

    @Option(help: "Shards = event loop threads (HISCORE_SHARDS). Default: the count the data dir was written with, else the number of cores.")
    var shards: Int?

    @Option(help: "Data directory, created when missing (HISCORE_DATA_DIR). Default ./hiscore-data.")
    var dataDir: String?

    @Option(help: "fsync (ack after the group fsync, default), async (ack before; fsync at least every second) or memory (no disk) (HISCORE_DURABILITY).")
    var durability: String?

    @Option(help: "Snapshot a shard once its log grew by this many bytes, K/M/G suffixes allowed (HISCORE_SNAPSHOT_AFTER). Default 64M.")
    var snapshotAfter: String?

    @Flag(help: "Refuse submits to unknown boards instead of creating them (HISCORE_NO_AUTO_CREATE=1).")
    var noAutoCreate = false

    // .unconditional here and below: "-1" reaches the check that explains it, not "Missing value".
    @Option(parsing: .unconditional, help: "Memory ceiling in bytes, with optional K/M/G suffix (HISCORE_MAX_MEMORY); 0 = none.")
    var maxMemory: String?

    @Option(help: "Largest frame body in bytes (HISCORE_MAX_FRAME_BYTES). Default 1048576.")
    var maxFrameBytes: Int?

    @Option(help: "Calls in flight per connection (HISCORE_MAX_INFLIGHT_CALLS). Default 256.")
    var maxInflightCalls: Int?

    @Option(help: "Submits per batch (HISCORE_MAX_BATCH_SUBMITS). Default 1000.")
    var maxBatchSubmits: Int?

    @Option(help: "Submit-batch items in flight per connection; past it the connection reads nothing more until answers bring it under (HISCORE_MAX_INFLIGHT_BATCH_ITEMS). Default 4096.")
    var maxInflightBatchItems: Int?

    @Option(help: "Submit-batch items in flight over the server, shared evenly by the shards' event loops; a connection with a batch in flight reads nothing more while its loop is at its share (HISCORE_MAX_SERVER_INFLIGHT_BATCH_ITEMS). Default 4096.")
    var maxServerInflightBatchItems: Int?

    @Option(help: "Entries per page / around side / list page (HISCORE_MAX_PAGE_ENTRIES). Default 1000.")
    var maxPageEntries: Int?

    @Option(help: "Player ids per Entries call (HISCORE_MAX_PLAYERS_PER_QUERY). Default 1000.")
    var maxPlayersPerQuery: Int?

    @Option(help: "Bytes of entries one connection's top/around/player streams may keep, counted as the most their windows can hold (HISCORE_MAX_STREAM_WINDOW_BYTES). Default 67108864.")
    var maxStreamWindowBytes: Int?

    @Option(help: "Entries one connection's top/around/player streams may watch (a top N counts N) (HISCORE_MAX_STREAM_WINDOW_ENTRIES). Default 16384.")
    var maxStreamWindowEntries: Int?

    @Option(help: "Bytes all feeds' backlogs may hold over every board; past it, lagging feeds are ended (HISCORE_MAX_FEED_BACKLOG_BYTES). Default 268435456.")
    var maxFeedBacklogBytes: Int?

    @Option(parsing: .unconditional, help: "Bytes the boards' cached tops may keep over the server; past it the least recently read give way, and above --max-memory none is kept; 0 = no cache (HISCORE_MAX_TOP_CACHE_BYTES). Default 67108864.")
    var maxTopCacheBytes: Int?

    @Option(help: "Concurrent connections (HISCORE_MAX_CONNECTIONS). Default 10000.")
    var maxConnections: Int?

    @Option(help: "Boards on the server (HISCORE_MAX_BOARDS). Default 10000.")
    var maxBoards: Int?

    @Option(help: "Seconds to wait for a new connection's preface (HISCORE_PREFACE_TIMEOUT). Default 10.")
    var prefaceTimeout: Int?

    @Option(help: "Admin HTTP address for /metrics, /healthz, /readyz (HISCORE_ADMIN_HOST). Default 127.0.0.1.")
    var adminHost: String?

    // .unconditional: "-1" is the value, not an option.
    @Option(parsing: .unconditional, help: "Admin HTTP port (HISCORE_ADMIN_PORT); 0 picks a free one, -1 disables it. Default 7451.")
    var adminPort: Int?

    @Option(help: "Calls per second this server is sized for (HISCORE_CAPACITY); above 80% of it a one-line summary is logged each second. Default 200000.")
    var capacity: Int?

    @Option(help: "API keys file: lines 'ROLE KEY [NAME]', ROLE admin|writer|reader (HISCORE_KEYS_FILE). Keys may also come from HISCORE_API_KEYS=ROLE:KEY,...")
    var keysFile: String?

    @Option(help: "Secret (>= 32 chars) that verifies player tokens, JWT HS256 (HISCORE_TOKEN_SECRET). Prefer the variable: flags show up in ps.")
    var tokenSecret: String?

    @Option(parsing: .unconditional, help: "Calls per second per connection, bursts of twice that; 0 = unlimited (HISCORE_MAX_CALLS_PER_SECOND). Default 50000.")
    var maxCallsPerSecond: Int?

    @Option(help: "Seconds before a silent connection (nothing in flight, no subscription) is closed (HISCORE_IDLE_TIMEOUT). Default 300.")
    var idleTimeout: Int?

    @Option(help: "Seconds a frame may take to arrive once its first bytes have; a connection holding an unfinished frame longer is closed (HISCORE_FRAME_TIMEOUT). Default 60.")
    var frameTimeout: Int?

    @Option(help: "Seconds a graceful stop (SIGINT/SIGTERM) waits for calls in flight before it closes the connections still open, 0...3600 (HISCORE_SHUTDOWN_GRACE). Default 10.")
    var shutdownGrace: Int?

    @Option(help: "With API keys or a token secret: seconds a connection may take to present a valid credential before it is closed (HISCORE_AUTHENTICATION_TIMEOUT). Default 60 (as PostgreSQL's authentication_timeout).")
    var authenticationTimeout: Int?

    @Option(help: "PEM certificate chain (server certificate first) to serve TLS on the client port (HISCORE_TLS_CERT); needs --tls-key. The admin HTTP port stays plain.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert, unencrypted (HISCORE_TLS_KEY).")
    var tlsKey: String?

    @Option(help: "PEM CA certificates; when set, clients must present a certificate they issued (mutual TLS) (HISCORE_TLS_CLIENT_CA).")
    var tlsClientCa: String?

    @Flag(help: "Stop (as on SIGTERM) once the process that started hiscored exits: for test harnesses and supervisors (HISCORE_EXIT_WITH_PARENT=1). Linux 5.3 or later.")
    var exitWithParent = false

    @Option(help: ArgumentHelp(
        "Stop (as on SIGTERM) once process PID exits; refuse to start if it already has (HISCORE_EXIT_WITH_PROCESS). A harness passes its own PID. Linux 5.3 or later.",
        valueName: "pid"))
    var exitWithProcess: Int32?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (HISCORE_LOG_LEVEL). Default info.")
    var logLevel: String?

    @Option(help: "Log lines as text or as one JSON object each (time, level, label, source, message, then the entry's metadata) (HISCORE_LOG_FORMAT). Default text.")
    var logFormat: String?

    func run() async throws {
        let env = EnvironmentOptions()
        var config = ServerConfiguration()
        config.host = host ?? env.string("HOST") ?? config.host
        config.port = try port ?? env.int("PORT") ?? config.port
        config.dataDirectory = dataDir ?? env.string("DATA_DIR") ?? config.dataDirectory
        config.autoCreateBoards = !(noAutoCreate || env.bool("NO_AUTO_CREATE"))
        let durabilityText = durability ?? env.string("DURABILITY") ?? "fsync"
        guard let mode = DurabilityMode(rawValue: durabilityText) else {
            throw ValidationError("--durability must be fsync, async or memory, got '\(durabilityText)'")
        }
        config.durability = mode
        // Without --shards, a data dir written before keeps its shard count (another count
        // cannot read it); a new one gets one shard per core.
        let recordedShards = mode == .memory ? nil : (try? DataDirectory.recordedShardCount(path: config.dataDirectory)) ?? nil
        config.shards = try shards ?? env.int("SHARDS") ?? recordedShards ?? config.shards
        if let text = snapshotAfter ?? env.string("SNAPSHOT_AFTER") {
            guard let bytes = ByteSize.parse(text) else {
                throw ValidationError("\(snapshotAfter == nil ? "HISCORE_SNAPSHOT_AFTER" : "--snapshot-after"): '\(text)' is not a byte size")
            }
            guard bytes > 0 else { throw ValidationError("--snapshot-after must be more than 0 bytes (it is how much log a snapshot waits for)") }
            config.snapshotAfterLogBytes = UInt64(bytes)
        }
        if let text = maxMemory ?? env.string("MAX_MEMORY") {
            guard let bytes = ByteSize.parse(text) else {
                throw ValidationError("\(maxMemory == nil ? "HISCORE_MAX_MEMORY" : "--max-memory"): '\(text)' is not a byte size (examples: 0, 41943040, 40M, 2G)")
            }
            config.maxMemoryBytes = bytes
        }
        var limits = config.limits
        limits.maxFrameBytes = try maxFrameBytes ?? env.int("MAX_FRAME_BYTES") ?? limits.maxFrameBytes
        limits.maxInflightCalls = try maxInflightCalls ?? env.int("MAX_INFLIGHT_CALLS") ?? limits.maxInflightCalls
        limits.maxBatchSubmits = try maxBatchSubmits ?? env.int("MAX_BATCH_SUBMITS") ?? limits.maxBatchSubmits
        limits.maxInflightBatchItems =
            try maxInflightBatchItems ?? env.int("MAX_INFLIGHT_BATCH_ITEMS") ?? limits.maxInflightBatchItems
        limits.maxServerInflightBatchItems =
            try maxServerInflightBatchItems ?? env.int("MAX_SERVER_INFLIGHT_BATCH_ITEMS") ?? limits.maxServerInflightBatchItems
        limits.maxPageEntries = try maxPageEntries ?? env.int("MAX_PAGE_ENTRIES") ?? limits.maxPageEntries
        limits.maxPlayersPerQuery = try maxPlayersPerQuery ?? env.int("MAX_PLAYERS_PER_QUERY") ?? limits.maxPlayersPerQuery
        limits.maxStreamWindowBytes = try maxStreamWindowBytes ?? env.int("MAX_STREAM_WINDOW_BYTES") ?? limits.maxStreamWindowBytes
        limits.maxStreamWindowEntries =
            try maxStreamWindowEntries ?? env.int("MAX_STREAM_WINDOW_ENTRIES") ?? limits.maxStreamWindowEntries
        limits.maxFeedBacklogBytes = try maxFeedBacklogBytes ?? env.int("MAX_FEED_BACKLOG_BYTES") ?? limits.maxFeedBacklogBytes
        limits.maxTopCacheBytes = try maxTopCacheBytes ?? env.int("MAX_TOP_CACHE_BYTES") ?? limits.maxTopCacheBytes
        limits.maxConnections = try maxConnections ?? env.int("MAX_CONNECTIONS") ?? limits.maxConnections
        limits.maxBoards = try maxBoards ?? env.int("MAX_BOARDS") ?? limits.maxBoards
        limits.prefaceTimeoutSeconds = try prefaceTimeout ?? env.int("PREFACE_TIMEOUT") ?? limits.prefaceTimeoutSeconds
        limits.maxCallsPerSecondPerConnection = try maxCallsPerSecond ?? env.int("MAX_CALLS_PER_SECOND") ?? limits.maxCallsPerSecondPerConnection
        limits.idleTimeoutSeconds = try idleTimeout ?? env.int("IDLE_TIMEOUT") ?? limits.idleTimeoutSeconds
        limits.frameTimeoutSeconds = try frameTimeout ?? env.int("FRAME_TIMEOUT") ?? limits.frameTimeoutSeconds
        limits.authenticationTimeoutSeconds =
            try authenticationTimeout ?? env.int("AUTHENTICATION_TIMEOUT") ?? limits.authenticationTimeoutSeconds
        limits.shutdownGraceSeconds = try shutdownGrace ?? env.int("SHUTDOWN_GRACE") ?? limits.shutdownGraceSeconds
        config.limits = limits
        config.access = try Self.accessControl(keysFile: keysFile ?? env.string("KEYS_FILE"), env: env, secret: tokenSecret ?? env.string("TOKEN_SECRET"))
        config.adminHost = adminHost ?? env.string("ADMIN_HOST") ?? config.adminHost
        let admin = try adminPort ?? env.int("ADMIN_PORT") ?? 7451
        // -1 turns it off; anything else outside 0...65535 is a mistake (getaddrinfo would wrap it).
        guard admin == -1 || (0...65535).contains(admin) else {
            throw ValidationError("--admin-port must be 0...65535, or -1 for none")
        }
        config.adminPort = admin < 0 ? nil : admin
        config.capacityCallsPerSecond = try capacity ?? env.int("CAPACITY") ?? config.capacityCallsPerSecond
        config.tls = try Self.tls(
            cert: tlsCert ?? env.string("TLS_CERT"), key: tlsKey ?? env.string("TLS_KEY"),
            clientCA: tlsClientCa ?? env.string("TLS_CLIENT_CA"))
        try Self.check(config)

        let level = logLevel ?? env.string("LOG_LEVEL") ?? "info"
        guard let parsedLevel = Logger.Level(rawValue: level) else {
            throw ValidationError("--log-level: '\(level)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        switch logFormat ?? env.string("LOG_FORMAT") ?? "text" {
        case "text": LoggingSystem.bootstrap(StreamLogHandler.standardError)
        case "json": LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
        case let other: throw ValidationError("--log-format: '\(other)' is not text or json")
        }
        var logger = Logger(label: "hiscored")
        logger.logLevel = parsedLevel

        if !config.access.isOpen {
            logger.info("authentication on: \(config.access.keys.entries.count) API keys, player tokens \(config.access.tokens == nil ? "off" : "on")")
        }
        // Memory mode writes nothing: it does not create (or need) the data directory.
        if config.durability != .memory {
            do {
                try LocalFiles.makeDirectories(config.dataDirectory)
            } catch {
                logger.error("cannot create data directory \(config.dataDirectory): \(error)")
                throw ExitCode.failure
            }
        }

        if !PromptLargeBlocks.install() {
            logger.warning("the engine's large blocks use the default allocator (jemalloc is not the process's allocator, or refused an arena): their freed pages stay resident until the allocator returns them")
        }
        let signals = SignalWaiter(signals: [SIGINT, SIGTERM])
        let reloads = SignalWaiter(signals: [SIGHUP])
        var parentWatch: (any DispatchSourceRead)?
        let watchedProcess = try exitWithProcess ?? env.int("EXIT_WITH_PROCESS").map { Int32(clamping: $0) }
        if watchedProcess != nil || exitWithParent || env.bool("EXIT_WITH_PARENT") {
            let watchLogger = logger
            do {
                if let pid = watchedProcess {
                    guard pid > 0 else { throw ValidationError("--exit-with-process: \(pid) is not a process id") }
                    parentWatch = try ParentWatch.watch(pid: pid) {
                        watchLogger.info("process \(pid) exited (--exit-with-process)")
                        kill(getpid(), SIGTERM)
                    }
                } else {
                    parentWatch = try ParentWatch.watchParent {
                        watchLogger.info("the parent process exited (--exit-with-parent)")
                        kill(getpid(), SIGTERM)
                    }
                }
            } catch let failure as ParentWatch.Failure {
                logger.error("\(failure)")
                throw ExitCode.failure
            }
        }
        defer { parentWatch?.cancel() }
        let server: HiscoreServer
        do {
            server = try await HiscoreServer.start(configuration: config, logger: logger)
        } catch let refusal as ProtectedMode.Refusal {
            logger.error("\(refusal.description)")
            throw ExitCode.failure
        } catch let tls as TLSSetupError {
            logger.error("cannot start: \(tls)")
            throw ExitCode.failure
        } catch let storage as StorageError {
            logger.error("cannot start from data dir \(config.dataDirectory): \(storage)")
            throw ExitCode.failure
        } catch let listen as ListenError {
            logger.error("\(listen)")
            throw ExitCode.failure
        } catch {
            logger.error("cannot start: \(error)")
            throw ExitCode.failure
        }
        let keys = keysFile ?? env.string("KEYS_FILE")
        let secret = tokenSecret ?? env.string("TOKEN_SECRET")
        let reloader = Task {
            while await reloads.nextSignal() != nil {
                await Self.reload(server, keysFile: keys, secret: secret, logger: logger)
            }
        }
        let signal = await signals.next()
        reloader.cancel()
        logger.info("received signal \(signal), shutting down")
        await server.shutdown()
    }

    /// SIGHUP: the keys (`--keys-file` and HISCORE_API_KEYS, with the token secret) and the TLS
    /// files are read again and replace what the server uses; a file that cannot be read or
    /// parsed leaves what was in use, and the log says so. Certificates and keys rotate without
    /// a restart; connections that used a removed key are closed (`HiscoreServer.replaceAccess`).
    static func reload(_ server: HiscoreServer, keysFile: String?, secret: String?, logger: Logger) async {
        var reloaded = false
        if keysFile != nil {
            reloaded = true
            do {
                let access = try accessControl(keysFile: keysFile, env: EnvironmentOptions(), secret: secret)
                let closed = try await server.replaceAccess(access)
                logger.info("SIGHUP: keys reloaded from \(keysFile ?? ""): \(access.keys.entries.count) keys; \(closed) connections closed (a key they used was removed or changed role)")
            } catch {
                logger.error("SIGHUP: keys not reloaded, the ones in use stay: \(error)")
            }
        }
        if let tls = server.configuration.tls {
            reloaded = true
            do {
                try server.reloadTLS()
                logger.info("SIGHUP: TLS certificate reloaded from \(tls.certificateChainPath); new connections use it")
            } catch {
                logger.error("SIGHUP: TLS files not reloaded, the certificate in use stays: \(error)")
            }
        }
        if !reloaded { logger.info("SIGHUP: nothing to reload (no --keys-file, no TLS)") }
    }

    static func accessControl(keysFile: String?, env: EnvironmentOptions, secret: String?) throws -> AccessControl {
        do {
            var keys = APIKeys()
            if let keysFile {
                let read: String?
                do { read = try LocalFiles.readText(keysFile, limit: 16 << 20) } catch {
                    throw ValidationError("--keys-file: cannot read \(keysFile): \(error)")
                }
                guard let text = read else { throw ValidationError("--keys-file: \(keysFile) is not UTF-8 text") }
                keys = try APIKeys.parse(file: text, source: keysFile)
            }
            if let fromEnvironment = env.string("API_KEYS") {
                for entry in try APIKeys.parse(environment: fromEnvironment).entries {
                    try keys.append(entry)
                }
            }
            let tokens = try secret.map { (secret: String) throws(KeyConfigurationError) in try PlayerTokenVerifier(secret: secret) }
            return AccessControl(keys: keys, tokens: tokens)
        } catch let error as KeyConfigurationError {
            throw ValidationError("\(error)")
        }
    }

    /// nil without a certificate; a certificate needs its key, a client CA needs both.
    static func tls(cert: String?, key: String?, clientCA: String?) throws -> ServerTLS? {
        switch (cert, key) {
        case (let cert?, let key?):
            return ServerTLS(certificateChainPath: cert, privateKeyPath: key, clientCAPath: clientCA)
        case (nil, nil):
            guard clientCA == nil else { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
            return nil
        default:
            throw ValidationError("--tls-cert and --tls-key go together")
        }
    }

    static func check(_ config: ServerConfiguration) throws {
        guard (1...ServerConfiguration.maxShards).contains(config.shards) else {
            throw ValidationError("--shards must be 1...\(ServerConfiguration.maxShards)")
        }
        guard (0...65535).contains(config.port) else { throw ValidationError("--port must be 0...65535") }
        let limits = config.limits
        guard limits.maxFrameBytes >= 1024 && limits.maxFrameBytes <= 64 << 20 else {
            throw ValidationError("--max-frame-bytes must be 1024...67108864")
        }
        for (name, value) in [
            ("--max-inflight-calls", limits.maxInflightCalls), ("--max-batch-submits", limits.maxBatchSubmits),
            ("--max-inflight-batch-items", limits.maxInflightBatchItems),
            ("--max-server-inflight-batch-items", limits.maxServerInflightBatchItems),
            ("--max-page-entries", limits.maxPageEntries), ("--max-players-per-query", limits.maxPlayersPerQuery),
            ("--max-stream-window-bytes", limits.maxStreamWindowBytes), ("--max-stream-window-entries", limits.maxStreamWindowEntries),
            ("--max-feed-backlog-bytes", limits.maxFeedBacklogBytes),
            ("--max-connections", limits.maxConnections), ("--max-boards", limits.maxBoards),
            ("--preface-timeout", limits.prefaceTimeoutSeconds), ("--idle-timeout", limits.idleTimeoutSeconds),
            ("--frame-timeout", limits.frameTimeoutSeconds), ("--authentication-timeout", limits.authenticationTimeoutSeconds),
        ] where value < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        guard (0...3600).contains(limits.shutdownGraceSeconds) else { throw ValidationError("--shutdown-grace must be 0...3600") }
        guard limits.maxTopCacheBytes >= 0 else { throw ValidationError("--max-top-cache-bytes must be at least 0") }
        // The server announces these in its hello as 32-bit counts.
        for (name, value) in [
            ("--max-inflight-calls", limits.maxInflightCalls), ("--max-batch-submits", limits.maxBatchSubmits),
            ("--max-page-entries", limits.maxPageEntries), ("--max-players-per-query", limits.maxPlayersPerQuery),
        ] where value > Int(UInt32.max) {
            throw ValidationError("\(name) must be at most \(UInt32.max)")
        }
        guard limits.maxCallsPerSecondPerConnection >= 0 else {
            throw ValidationError("--max-calls-per-second must be 0 (no limit) or more")
        }
        guard config.capacityCallsPerSecond >= 1 else { throw ValidationError("--capacity must be at least 1 call per second") }
        guard config.maxMemoryBytes >= 0 else { throw ValidationError("--max-memory must be 0 (no ceiling) or more") }
    }
}

/// `HISCORE_*` environment variables.
struct EnvironmentOptions {
    func string(_ name: String) -> String? {
        guard let value = getenv("HISCORE_" + name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    func int(_ name: String) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text) else { throw ValidationError("HISCORE_\(name): '\(text)' is not an integer") }
        return value
    }

    func bool(_ name: String) -> Bool {
        guard let text = string(name)?.lowercased() else { return false }
        return ["1", "true", "yes", "on"].contains(text)
    }
}

/// "40M" -> 41943040.
enum ByteSize {
    static func parse(_ text: String) -> Int? {
        let trimmed = String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()).uppercased()
        let multipliers: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let last = trimmed.last, let multiplier = multipliers[last] {
            guard let number = Int(trimmed.dropLast()), number >= 0 else { return nil }
            let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
            return overflow ? nil : product
        }
        guard let number = Int(trimmed), number >= 0 else { return nil }
        return number
    }
}

/// Turns signals (SIGINT/SIGTERM, SIGHUP) into awaitable events (the default handlers are replaced so the
/// process can drain before exiting).
final class SignalWaiter {
    private let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.stream = stream
        self.sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    func next() async -> Int32 {
        await nextSignal() ?? SIGTERM
    }

    /// The next signal; nil once the waiting task is cancelled.
    func nextSignal() async -> Int32? {
        for await number in stream { return number }
        return nil
    }
}
