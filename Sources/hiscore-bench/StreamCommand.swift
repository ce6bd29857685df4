import ArgumentParser
import HiscoreCore
import HiscoreWire
import Histogram
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `hiscore-bench streams`: what subscriptions cost the server and how late their events are.
struct StreamsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "Subscriptions (rank-change streams) under a write load: server CPU per write and event delay.",
        discussion: """
            Board "lb", which must be a `set` board (every accepted write changes the board, so its
            version counts writes); --preload creates it (WRITE_OPERATOR_SET) when missing and loads
            `players` players p:%012d with random scores in [0, players) by SubmitBatch.
            Phases:
              baseline    writers submit at --write-rate for --duration with no subscription open
                          (skip with --no-baseline); server CPU per write.
              subscribe   --player-subscriptions players (spread uniformly over the ids) and
                          --top-watchers top-N watchers, round-robin over --subscription-connections
                          connections (raised when needed to stay under the server's
                          max_subscriptions); waits for every snapshot.
              subscribed  the same writes with every subscription open; server CPU per write, events
                          received, event delay (see docs/benchmarks-streams.md), then waits until
                          no event arrived for --quiet-ms (at most --drain-timeout s).
            Writes: open loop, `set` of a random score in [0, players) for a random player, spread
            over --writers connections. Human-readable text goes to stderr; with --json one JSON
            object per phase on stdout ({"bench":"streams","phase":...}). Exit status 3 when any
            write failed, any stream ended or any check failed.
            """)

    @Option(help: "Server address HOST:PORT (IPv4).") var addr: String = "127.0.0.1:7450"
    @Option(help: "Players on the board (ids p:%012d in [0, players)).") var players: Int = 1_000_000
    @Flag(help: "Create the set board if missing and load `players` entries first.") var preload = false
    @Option(help: "Player subscriptions (one player each).") var playerSubscriptions: Int = 50_000
    @Option(help: "Top-N watchers.") var topWatchers: Int = 1000
    @Option(help: "N of the top-N watchers.") var top: Int = 10
    @Option(help: "Connections carrying the subscriptions.") var subscriptionConnections: Int = 50
    @Option(help: "Writes per second, in total (open loop).") var writeRate: Double = 50_000
    @Option(help: "Writer connections.") var writers: Int = 8
    @Option(help: "Seconds of writes per phase.") var duration: Double = 20
    @Option(help: "min_interval_ms of every subscription (0 = the server default, 100 ms).") var minIntervalMs: Int = 100
    @Option(help: "Server process id: CPU from /proc/PID/stat (utime+stime) and schedstat, RSS.") var serverPid: Int32?
    @Flag(help: "One JSON object per phase on stdout.") var json = false
    @Flag(inversion: .prefixedNo, help: "Run the baseline phase (writes with no subscription).") var baseline = true
    @Option(help: "Writes in flight per writer connection at most.") var maxInflight: Int = 256
    @Option(help: "Writes not started by --duration + this many seconds are dropped (reported as unsent).")
    var stopGrace: Double = 1
    @Option(help: "Writer timer granularity in microseconds (a writer sends what is due at most this late).")
    var paceUs: Int = 1000
    @Option(help: "Event loop threads of the subscriber connections.") var threads: Int = 1
    @Option(help: "Event loop threads of the writer connections.") var writerThreads: Int = 1
    @Option(help: "Seconds to wait for every subscription's snapshot.") var snapshotTimeout: Int = 300
    @Option(help: "After the writes: the stream is drained when no event came for this long (ms).") var quietMs: Int = 2000
    @Option(help: "After the writes: wait at most this long for the streams to go quiet (s).") var drainTimeout: Double = 20
    @Option(help: "Fully decode and check every N-th event and write reply (0 = never).") var verifyEvery: Int = 1000
    @Option(help: "Connections used by --preload.") var preloadConnections: Int = 4
    @Option(help: "Batches in flight per preload connection.") var preloadPipeline: Int = 4
    @Option(help: "PRNG seed.") var seed: UInt64 = 42
    @Option(help: "Free text copied into the JSON objects (\"label\").") var label: String?

    func validate() throws {
        guard players > 0, writers > 0, subscriptionConnections > 0, threads > 0, writerThreads > 0 else {
            throw ValidationError("--players, --writers, --subscription-connections, --threads must be positive")
        }
        guard playerSubscriptions >= 0, topWatchers >= 0 else { throw ValidationError("negative subscription count") }
        guard playerSubscriptions <= players else { throw ValidationError("--player-subscriptions above --players") }
        guard writeRate > 0, duration > 0 else { throw ValidationError("--write-rate and --duration must be positive") }
        guard Int(writeRate * duration) >= writers else { throw ValidationError("fewer writes than writers") }
        guard Int(writeRate * duration) < Int(UInt32.max) else { throw ValidationError("too many writes per phase") }
        guard (1...1000).contains(top) else { throw ValidationError("--top must be in 1...1000") }
        guard (0...3_600_000).contains(minIntervalMs) else { throw ValidationError("--min-interval-ms out of range") }
        guard paceUs >= 0, paceUs <= 100_000 else { throw ValidationError("--pace-us must be in 0...100000") }
        guard maxInflight > 0, maxInflight <= 65535 else { throw ValidationError("--max-inflight must be in 1...65535") }
        _ = try parseAddress()
    }

    private func parseAddress() throws -> (String, Int) {
        guard let colon = addr.lastIndex(of: ":"), let port = Int(addr[addr.index(after: colon)...]),
            port > 0, port < 65536
        else { throw ValidationError("--addr must be HOST:PORT") }
        return (String(addr[..<colon]), port)
    }

    func run() throws {
        let (host, port) = try parseAddress()
        try LoadHiscoreEncodingCheck.run(players: players, seed: seed)
        if let pid = serverPid, !ServerProc.exists(pid: pid) {
            throw ValidationError("--server-pid \(pid): no such process")
        }
        let report = StreamReport(command: self)
        var failed = false
        let hello = try StreamControl.hello(host: host, port: port)
        let subscriptions = playerSubscriptions + topWatchers
        var connections = min(subscriptionConnections, max(subscriptions, 1))
        let maxPerConnection = Int(hello.maxSubscriptions)
        if maxPerConnection > 0, (subscriptions + connections - 1) / connections > maxPerConnection {
            let needed = (subscriptions + maxPerConnection - 1) / maxPerConnection
            serverPrintError(
                "note: \(subscriptions) subscriptions over \(connections) connections is above the server's "
                    + "max_subscriptions (\(maxPerConnection) per connection): using \(needed) connections")
            connections = needed
        }
        let writerGroup = MultiThreadedEventLoopGroup(numberOfThreads: writerThreads)
        let subscriberGroup = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        defer {
            try? writerGroup.syncShutdownGracefully()
            try? subscriberGroup.syncShutdownGracefully()
        }
        let wire = LoadWireOptions(players: players, seed: seed, verifyEvery: verifyEvery)

        // Board.
        var info = try StreamControl.describe(host: host, port: port)
        if let existing = info, existing.config.writeOperator != .set {
            throw ValidationError(
                "board \(loadBoardID) exists with operator \(existing.config.writeOperator), streams needs a `set` "
                    + "board (board_version = accepted writes): use a fresh server (e.g. --durability memory)")
        }
        if preload {
            if info == nil {
                _ = try StreamControl.createSetBoard(host: host, port: port)
                serverPrintError("created board \(loadBoardID) (write_operator SET)")
            }
            let plan = LoadRunPlan(
                target: .hiscore, host: host, port: port, connections: preloadConnections, pipeline: preloadPipeline,
                workload: nil, operations: players, rate: nil, maxInflight: preloadPipeline, wire: wire, seed: seed)
            var start = StreamSample()
            var end = StreamSample()
            serverPrintError("preloading \(players) players (batches of \(LoadShape.preloadBatchSize))")
            let result = try runLoad(
                plan: plan, group: writerGroup, beforeStart: { start = StreamSample.take(serverPid) },
                afterEnd: { end = StreamSample.take(serverPid) })
            info = try StreamControl.describe(host: host, port: port)
            let size = Int(info?.size ?? 0)
            failed = failed || result.failedOperations > 0 || size < players
            report.preload(result: result, start: start, end: end, boardSize: size)
        }
        guard let board = info else {
            throw ValidationError("no board \(loadBoardID) on \(addr): run with --preload")
        }
        if board.size < UInt64(players) {
            serverPrintError("warning: board \(loadBoardID) holds \(board.size) players, fewer than --players \(players)")
        }
        let writes = Int(writeRate * duration)
        func writerPlan(phase: Int) -> StreamWriterPlan {
            StreamWriterPlan(
                host: host, port: port, connections: writers, rate: writeRate, writes: writes,
                maxInflight: maxInflight, wire: wire, seed: seed, phase: phase, paceNanos: UInt64(paceUs) * 1000,
                stopAfterNanos: UInt64((duration + stopGrace) * 1e9))
        }

        // Baseline: the same writes, no subscription.
        var baselinePerWrite: Double? = nil
        if baseline {
            serverPrintError("baseline: \(writes) writes at \(Int(writeRate))/s over \(writers) connections, no subscriptions")
            var start = StreamSample()
            let phase = try runStreamWriters(
                plan: writerPlan(phase: 0), group: writerGroup, beforeStart: { start = StreamSample.take(serverPid) })
            let end = StreamSample.take(serverPid)
            failed = failed || phase.failed > 0
            baselinePerWrite = report.baseline(phase: phase, start: start, end: end)
        }

        // Subscribe.
        var specs: [StreamSubscriptionSpec] = []
        specs.reserveCapacity(subscriptions)
        for index in 0..<playerSubscriptions {
            // Evenly spaced ids, centred in their share of the id space.
            let player = Int((Double(index) + 0.5) * Double(players) / Double(playerSubscriptions))
            specs.append(StreamSubscriptionSpec(kind: .player, player: min(player, players - 1)))
        }
        for _ in 0..<topWatchers { specs.append(StreamSubscriptionSpec(kind: .top, player: 0)) }
        serverPrintError(
            "subscribing: \(playerSubscriptions) players + \(topWatchers) top-\(top) watchers over \(connections) connections, "
                + "min_interval_ms \(minIntervalMs)")
        let options = StreamSubscriberOptions(
            boardID: loadBoardID, topN: UInt32(top), minIntervalMillis: UInt32(minIntervalMs), verifyEvery: verifyEvery,
            snapshotTimeout: .seconds(Int64(snapshotTimeout)))
        let subscribeStart = StreamSample.take(serverPid)
        let subscribers = try StreamSubscriberSet(
            specs: specs, connections: connections, host: host, port: port, options: options, group: subscriberGroup)
        let subscribeEnd = StreamSample.take(serverPid)
        let afterSubscribe = try subscribers.poll()
        failed = failed || afterSubscribe.ended > 0 || afterSubscribe.errors.total > 0
        report.subscribe(
            counters: afterSubscribe, connections: connections, start: subscribeStart, end: subscribeEnd)

        // Subscribed writes.
        guard let before = try StreamControl.describe(host: host, port: port) else {
            throw LoadProtocolError("board \(loadBoardID) vanished")
        }
        try subscribers.recordFrom(baseVersion: before.version)
        serverPrintError("subscribed: \(writes) writes at \(Int(writeRate))/s with \(subscriptions) subscriptions open")
        var start = StreamSample()
        let phase = try runStreamWriters(
            plan: writerPlan(phase: 1), group: writerGroup, beforeStart: { start = StreamSample.take(serverPid) })
        let afterWrites = StreamSample.take(serverPid)
        // Drain: the last (widened) interval's events.
        var drained = false
        while true {
            usleep(100_000)
            let now = loadNowNanos()
            let counters = try subscribers.poll()
            let lastActivity = max(counters.lastEventNanos, phase.endNanos)
            if now - lastActivity >= UInt64(quietMs) * 1_000_000 {
                drained = true
                break
            }
            if Double(now - phase.endNanos) / 1e9 >= drainTimeout { break }
        }
        let end = StreamSample.take(serverPid)
        let after = try StreamControl.describe(host: host, port: port)
        let result = try subscribers.collect()
        var player = StreamDelayStats()
        player.add(result.playerRecords, acks: phase.ackNanos)
        var topStats = StreamDelayStats()
        topStats.add(result.topRecords, acks: phase.ackNanos)
        var windowStaleness = WindowStalenessStats()
        windowStaleness.add(result.topChanges, writes: phase.ackedWrites)
        let versionAdvance = Int((after?.version ?? before.version) - before.version)
        failed = failed || phase.failed > 0 || result.counters.ended > 0 || result.counters.errors.total > 0
        report.subscribed(
            phase: phase, start: start, afterWrites: afterWrites, end: end, drained: drained,
            counters: result.counters, player: player, top: topStats, changed: windowStaleness, subscriptions: subscriptions,
            connections: connections, versionAdvance: versionAdvance, baselinePerWrite: baselinePerWrite)
        if failed { throw ExitCode(3) }
    }
}

/// Server and client counters at one moment.
struct StreamSample {
    var nanos: UInt64 = 0
    var cpuTicks: Int?
    var schedNanos: Int?
    var rssKB: Int?
    var clientCPUMicros = 0
    var machineBusyTicks: Int?

    static func take(_ pid: Int32?) -> StreamSample {
        var sample = StreamSample()
        if let pid {
            sample.cpuTicks = ServerProc.cpuTicks(pid: pid)
            sample.schedNanos = ServerProc.schedNanos(pid: pid)
            sample.rssKB = ServerProc.statusKB(pid: pid, "VmRSS")
        }
        sample.clientCPUMicros = ServerProc.selfCPUMicros()
        sample.machineBusyTicks = ServerProc.machineBusyTicks()
        sample.nanos = loadNowNanos()
        return sample
    }

    /// Server CPU seconds between two samples: schedstat (ns) when available, else ticks.
    static func serverCPUSeconds(_ a: StreamSample, _ b: StreamSample) -> Double? {
        if let x = a.schedNanos, let y = b.schedNanos, y > x { return Double(y - x) / 1e9 }
        if let x = a.cpuTicks, let y = b.cpuTicks { return Double(y - x) / Double(ServerProc.clockTicksPerSecond) }
        return nil
    }

    static func tickSeconds(_ a: StreamSample, _ b: StreamSample) -> Double? {
        guard let x = a.cpuTicks, let y = b.cpuTicks else { return nil }
        return Double(y - x) / Double(ServerProc.clockTicksPerSecond)
    }

    /// CPU used by anything but the server and this process, in % of one core.
    static func otherPercent(_ a: StreamSample, _ b: StreamSample) -> Double? {
        guard let x = a.machineBusyTicks, let y = b.machineBusyTicks, b.nanos > a.nanos else { return nil }
        let hz = Double(ServerProc.clockTicksPerSecond)
        let server = (tickSeconds(a, b) ?? 0) * hz
        let client = Double(b.clientCPUMicros - a.clientCPUMicros) / 1e6 * hz
        return 100 * (Double(y - x) - server - client) / (Double(b.nanos - a.nanos) / 1e9 * hz)
    }
}

/// One-off control calls (not on the measured path).
enum StreamControl {
    /// The server's hello (limits), read from a fresh connection.
    static func hello(host: String, port: Int) throws -> ServerHello {
        let socket = try ServerControlSocket(host: host, port: port)
        try socket.send(ConnectionPreface.bytes)
        let frame = try socket.receive { bytes in
            guard bytes.count >= 5 else { return nil }
            let length = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
            return bytes.count >= 5 + length ? 5 + length : nil
        }
        let envelope = try frame[5...].withUnsafeBytes { try WireCodec.decodeResponse($0) }
        guard case .hello(let hello)? = envelope.result else {
            throw LoadProtocolError("the server's first frame is not a hello: \(envelope.status.map { "\($0)" } ?? "")")
        }
        return hello
    }

    /// The board "lb", nil when it does not exist.
    static func describe(host: String, port: Int) throws -> BoardInfo? {
        let reply = try HiscoreControl.call(host: host, port: port, .describeBoard(boardID: loadBoardID))
        if let status = reply.status, status.code != .ok {
            if status.code == .notFound { return nil }
            throw LoadProtocolError("describe_board: \(status)")
        }
        guard case .describeBoard(let info)? = reply.result else { throw LoadProtocolError("describe_board: no result") }
        return info
    }

    static func createSetBoard(host: String, port: Int) throws -> BoardInfo {
        let reply = try HiscoreControl.call(
            host: host, port: port, .createBoard(BoardConfig(id: loadBoardID, writeOperator: .set)))
        if let status = reply.status, status.code != .ok { throw LoadProtocolError("create_board: \(status)") }
        guard case .createBoard(let info)? = reply.result else { throw LoadProtocolError("create_board: no result") }
        return info
    }
}

/// Text on stderr, JSON lines on stdout.
struct StreamReport {
    let command: StreamsCommand

    private func common(_ phase: String) -> [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [("bench", .string("streams")), ("phase", .string(phase))]
        if let label = command.label { fields.append(("label", .string(label))) }
        return fields
    }

    private func emit(_ fields: [(String, JSONValue)]) {
        guard command.json else { return }
        let body = fields.map { "\"\($0.0)\":\($0.1.text)" }.joined(separator: ",")
        var line = "{\(body)}\n"
        line.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
    }

    private func optional(_ value: Double?, _ digits: Int) -> JSONValue { value.map { .double($0, digits) } ?? .null }

    func preload(result: LoadRunResult, start: StreamSample, end: StreamSample, boardSize: Int) {
        var fields = common("preload")
        let cpu = StreamSample.serverCPUSeconds(start, end)
        fields += [
            ("players", .int(command.players)), ("board_size", .int(boardSize)),
            ("wall_s", .double(result.wallSeconds, 3)),
            ("entries_per_s", .double(Double(command.players) / result.wallSeconds, 0)),
            ("server_cpu_s", optional(cpu, 2)), ("rss_kb", end.rssKB.map { .int($0) } ?? .null),
            ("errors", .int(result.failedOperations)), ("error_detail", .string(result.errors.summary)),
        ]
        emit(fields)
        var text = "preload: \(command.players) players in \(serverFormat(result.wallSeconds, 2)) s, board size \(boardSize)"
        if let cpu { text += ", server CPU \(serverFormat(cpu, 2)) s" }
        if let rss = end.rssKB { text += ", server RSS \(rss / 1024) MB" }
        if result.failedOperations > 0 { text += "\n  ERRORS: \(result.failedOperations): \(result.errors.summary)" }
        serverPrintError(text)
    }

    private func writeFields(_ phase: StreamWritePhase, start: StreamSample, end: StreamSample) -> (
        [(String, JSONValue)], String, Double?
    ) {
        let acked = phase.ackNanos.count + phase.unchanged
        let h = phase.histogram
        let cpu = StreamSample.serverCPUSeconds(start, end)
        let perWrite = cpu.map { $0 * 1e6 / Double(max(acked, 1)) }
        let client = Double(end.clientCPUMicros - start.clientCPUMicros) / 1e6
        let other = StreamSample.otherPercent(start, end)
        let fields: [(String, JSONValue)] = [
            ("write_rate", .double(command.writeRate, 0)), ("writers", .int(command.writers)),
            ("writes", .int(phase.completed)), ("writes_acked", .int(acked)), ("write_errors", .int(phase.failed)),
            ("write_wall_s", .double(phase.wallSeconds, 3)),
            ("writes_per_s", .double(Double(acked) / phase.wallSeconds, 0)), ("late_starts", .int(phase.lateStarts)),
            ("unsent", .int(phase.unsent)),
            ("write_p50_us", .int(Int(h.valueAtPercentile(50)))), ("write_p99_us", .int(Int(h.valueAtPercentile(99)))),
            ("write_max_us", .int(Int(h.max))),
            ("server_cpu_s", optional(cpu, 3)), ("server_cpu_ticks_s", optional(StreamSample.tickSeconds(start, end), 2)),
            ("server_cpu_us_per_write", optional(perWrite, 3)),
            ("client_cpu_s", .double(client, 2)), ("other_cpu_pct", optional(other, 1)),
            ("rss_kb", end.rssKB.map { .int($0) } ?? .null),
        ]
        var text = "  \(acked) writes acked in \(serverFormat(phase.wallSeconds, 2)) s = "
        text += "\(serverFormat(Double(acked) / phase.wallSeconds, 0)) writes/s (target \(serverFormat(command.writeRate, 0)))"
        text += ", write latency us p50 \(h.valueAtPercentile(50)) p99 \(h.valueAtPercentile(99)) max \(h.max)"
        if phase.lateStarts > 0 { text += ", \(phase.lateStarts) late starts" }
        if phase.unchanged > 0 { text += ", \(phase.unchanged) set an unchanged score (no new board version)" }
        if phase.unsent > 0 { text += "\n  \(phase.unsent) writes not started by duration + \(serverFormat(command.stopGrace, 1)) s (server behind)" }
        if let cpu, let perWrite {
            text += "\n  server CPU \(serverFormat(cpu, 2)) s = \(serverFormat(perWrite, 2)) us/write"
        }
        text += "; client CPU \(serverFormat(client, 2)) s"
        if let other { text += "; other processes \(serverFormat(other, 0))% of a core" }
        if phase.failed > 0 { text += "\n  WRITE ERRORS: \(phase.failed): \(phase.errors.summary)" }
        return (fields, text, perWrite)
    }

    func baseline(phase: StreamWritePhase, start: StreamSample, end: StreamSample) -> Double? {
        let (fields, text, perWrite) = writeFields(phase, start: start, end: end)
        emit(common("baseline") + [("players", .int(command.players)), ("duration_s", .double(command.duration, 1))] + fields)
        serverPrintError(text)
        return perWrite
    }

    func subscribe(counters: StreamSubscriberCounters, connections: Int, start: StreamSample, end: StreamSample) {
        let seconds = Double(end.nanos - start.nanos) / 1e9
        let cpu = StreamSample.serverCPUSeconds(start, end)
        var fields = common("subscribe")
        fields += [
            ("player_subscriptions", .int(command.playerSubscriptions)), ("top_watchers", .int(command.topWatchers)),
            ("top_n", .int(command.top)), ("subscription_connections", .int(connections)),
            ("snapshots", .int(counters.initialSnapshots)), ("refused", .int(counters.ended)),
            ("all_snapshots_s", .double(seconds, 3)), ("snapshot_bytes", .int(counters.eventBytes)),
            ("server_cpu_s", optional(cpu, 3)), ("rss_kb", end.rssKB.map { .int($0) } ?? .null),
            ("errors", .int(counters.errors.total)), ("error_detail", .string(counters.errors.summary)),
        ]
        emit(fields)
        var text = "  \(counters.initialSnapshots) snapshots in \(serverFormat(seconds, 2)) s"
        text += " (\(counters.eventBytes / 1024) KiB) over \(connections) connections"
        if let cpu { text += ", server CPU \(serverFormat(cpu, 2)) s" }
        if let rss = end.rssKB { text += ", server RSS \(rss / 1024) MB" }
        if counters.errors.total > 0 { text += "\n  ERRORS: \(counters.errors.summary)" }
        serverPrintError(text)
    }

    func subscribed(
        phase: StreamWritePhase, start: StreamSample, afterWrites: StreamSample, end: StreamSample, drained: Bool,
        counters: StreamSubscriberCounters, player: StreamDelayStats, top: StreamDelayStats, changed: WindowStalenessStats,
        subscriptions: Int,
        connections: Int, versionAdvance: Int, baselinePerWrite: Double?
    ) {
        var (fields, text, perWrite) = writeFields(phase, start: start, end: end)
        let writesOnlyCPU = StreamSample.serverCPUSeconds(start, afterWrites)
        let ratio: Double? = if let perWrite, let baselinePerWrite, baselinePerWrite > 0 { perWrite / baselinePerWrite } else { nil }
        // From the first write to the last event (the drain's quiet wait excluded).
        let window = Double(max(counters.lastEventNanos, phase.endNanos) - phase.startNanos) / 1e9
        let events = counters.playerEvents + counters.topEvents
        var all = player
        all.merge(top)
        // Mean time between two events of one stream over the write phase (+ drain).
        let playerInterval: Double? = counters.playerEvents > 0
            ? Double(command.playerSubscriptions) * window * 1000 / Double(counters.playerEvents) : nil
        let topInterval: Double? = counters.topEvents > 0
            ? Double(command.topWatchers) * window * 1000 / Double(counters.topEvents) : nil
        func delayFields(_ name: String, _ stats: StreamDelayStats) -> [(String, JSONValue)] {
            [
                ("\(name)_delay_events", .int(stats.events)),
                ("\(name)_delay_p50_ms", .double(StreamDelayStats.ms(stats.latest.valueAtPercentile(50)), 1)),
                ("\(name)_delay_p99_ms", .double(StreamDelayStats.ms(stats.latest.valueAtPercentile(99)), 1)),
                ("\(name)_delay_max_ms", .double(StreamDelayStats.ms(stats.latest.max), 1)),
                ("\(name)_staleness_p50_ms", .double(StreamDelayStats.ms(stats.oldest.valueAtPercentile(50)), 1)),
                ("\(name)_staleness_p99_ms", .double(StreamDelayStats.ms(stats.oldest.valueAtPercentile(99)), 1)),
                ("\(name)_staleness_max_ms", .double(StreamDelayStats.ms(stats.oldest.max), 1)),
            ]
        }
        fields = common("subscribed") + [
            ("players", .int(command.players)), ("player_subscriptions", .int(command.playerSubscriptions)),
            ("top_watchers", .int(command.topWatchers)), ("top_n", .int(command.top)),
            ("subscription_connections", .int(connections)), ("min_interval_ms", .int(command.minIntervalMs)),
            ("duration_s", .double(command.duration, 1)),
        ] + fields + [
            ("server_cpu_writes_only_s", optional(writesOnlyCPU, 3)),
            ("baseline_server_cpu_us_per_write", optional(baselinePerWrite, 3)), ("cpu_ratio", optional(ratio, 2)),
            ("board_version_advance", .int(versionAdvance)), ("drained", .string(drained ? "yes" : "no")),
            ("events", .int(events)), ("player_events", .int(counters.playerEvents)), ("top_events", .int(counters.topEvents)),
            ("events_per_s", .double(Double(events) / window, 0)), ("event_bytes", .int(counters.eventBytes)),
            ("player_mean_interval_ms", optional(playerInterval, 0)), ("top_mean_interval_ms", optional(topInterval, 0)),
            ("resnapshots", .int(counters.resnapshots)), ("streams_ended", .int(counters.ended)),
            ("not_newer_events", .int(counters.notNewer)),
            ("negative_delays", .int(all.negative)), ("unmatched_events", .int(all.unmatched)),
            ("ahead_of_ack_p50_ms", .double(StreamDelayStats.ms(all.ahead.valueAtPercentile(50)), 1)),
            ("ahead_of_ack_max_ms", .double(StreamDelayStats.ms(all.ahead.max), 1)),
        ] + delayFields("player", player) + delayFields("top", top) + delayFields("all", all) + [
            ("top_changed_staleness_p50_ms", .double(StreamDelayStats.ms(changed.oldest.valueAtPercentile(50)), 1)),
            ("top_changed_staleness_p99_ms", .double(StreamDelayStats.ms(changed.oldest.valueAtPercentile(99)), 1)),
            ("top_changed_staleness_max_ms", .double(StreamDelayStats.ms(changed.oldest.max), 1)),
            ("top_changed_newest_p50_ms", .double(StreamDelayStats.ms(changed.newest.valueAtPercentile(50)), 1)),
            ("top_changed_newest_p99_ms", .double(StreamDelayStats.ms(changed.newest.valueAtPercentile(99)), 1)),
            ("top_changed_newest_max_ms", .double(StreamDelayStats.ms(changed.newest.max), 1)),
            ("top_changed_events", .int(changed.events)), ("top_unattributed_events", .int(changed.unattributed)),
            ("deep_verified", .int(counters.deepVerified + phase.deepVerified)),
            ("errors", .int(counters.errors.total)), ("error_detail", .string(counters.errors.summary)),
        ]
        emit(fields)
        if let ratio, let baselinePerWrite {
            text += "\n  vs baseline \(serverFormat(baselinePerWrite, 2)) us/write: x\(serverFormat(ratio, 2))"
        }
        if let writesOnlyCPU { text += " (server CPU until the last ack: \(serverFormat(writesOnlyCPU, 2)) s)" }
        text += "\n  board version +\(versionAdvance); \(events) events (\(counters.playerEvents) player, \(counters.topEvents) top)"
        text += " = \(serverFormat(Double(events) / window, 0))/s, \(counters.eventBytes / 1024) KiB"
        if let playerInterval { text += "; one event per player stream every \(serverFormat(playerInterval, 0)) ms" }
        if let topInterval { text += ", per top watcher every \(serverFormat(topInterval, 0)) ms" }
        text += drained ? "" : "\n  WARNING: streams still busy after --drain-timeout"
        if counters.resnapshots > 0 { text += "\n  \(counters.resnapshots) re-sent snapshots (the client fell behind)" }
        func line(_ name: String, _ stats: StreamDelayStats) -> String {
            guard stats.events > 0 else { return "\n  \(name): no events" }
            return "\n  \(name) delay ms (since the ack of the newest write in it): \(StreamDelayStats.summary(stats.latest))"
                + "; staleness (since the oldest): \(StreamDelayStats.summary(stats.oldest)) (\(stats.events) events)"
        }
        text += line("player", player) + line("top", top)
        if changed.events > 0 {
            text += "\n  top staleness from the writes matched to its changes, newest (lower bound): "
                + "\(StreamDelayStats.summary(changed.newest)); oldest (upper bound): \(StreamDelayStats.summary(changed.oldest))"
                + " (\(changed.events) events; \(changed.unattributed) matched no write of the phase)"
        }
        text += "\n  configured min_interval_ms \(command.minIntervalMs == 0 ? 100 : max(command.minIntervalMs, 20))"
        text += " (compare staleness with interval + 50 ms)"
        if all.negative > 0 || all.unmatched > 0 {
            text += "\n  \(all.negative) events arrived before the ack of the write of their board_version (counted as 0;"
            text += " by p50 \(serverFormat(StreamDelayStats.ms(all.ahead.valueAtPercentile(50)), 1)) ms,"
            text += " max \(serverFormat(StreamDelayStats.ms(all.ahead.max), 1)) ms), \(all.unmatched) unmatched"
        }
        if counters.errors.total > 0 || counters.ended > 0 { text += "\n  ERRORS: \(counters.errors.summary)" } else { text += "\n  errors: 0" }
        serverPrintError(text)
    }
}
