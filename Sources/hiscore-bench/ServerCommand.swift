import ArgumentParser
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `hiscore-bench server`: drives a running hiscored or redis-server over TCP with the same
/// client code, key distribution and workloads, and reports throughput, latency percentiles,
/// server CPU per operation and server memory.
struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Load-test a running hiscored or redis-server (same workloads and keys for both).",
        discussion: """
            Workloads (board / key "lb", players p:%012d with ids in [0, players), seeded PRNG):
              submit  keep-best write of a random score in [0, players) for a random player
                      (Redis: ZADD lb GT score member)
              rank    rank of a random player                 (Redis: ZREVRANK lb member)
              top10   the 10 best                             (Redis: ZREVRANGE lb 0 9 WITHSCORES)
              page    50 entries at offset 5000 (ranks 5001-5050)
                                                              (Redis: ZREVRANGE lb 5000 5049 WITHSCORES)
              around  a random player and 5 either side       (Redis: ZREVRANK, then
                      ZREVRANGE lb r-5 r+5 WITHSCORES: 2 round trips, counted as one operation)
              mixed   70% rank, 20% submit, 5% top10, 5% around
            --preload first loads `players` entries (Hiscore: SubmitBatch of 1000; Redis: ZADD with
            1000 members), scores random in [0, players); --requests 0 --preload only preloads.
            Closed loop by default (each connection keeps --pipeline operations in flight); --rate R
            is an open loop at R operations/s in total, latency measured from each operation's
            intended start (coordinated-omission corrected), at most --max-inflight per connection.
            Human-readable text goes to stderr; with --json one JSON object per line to stdout.
            Exit status 3 when any reply was an error or failed a check.
            """)

    @Option(help: "hiscore or redis.") var target: LoadTarget = .hiscore
    @Option(help: "Server address HOST:PORT (IPv4).") var addr: String = "127.0.0.1:7450"
    @Option(help: "submit, submit_unranked (no ranks in the reply; the same ZADD GT on Redis), rank, top10, page, around or mixed.") var workload: LoadWorkload = .rank
    @Option(help: "Connections.") var connections: Int = 50
    @Option(help: "Operations in flight per connection (closed loop).") var pipeline: Int = 16
    @Option(help: "Operations to run (0 = none, e.g. with --preload).") var requests: Int = 100_000
    @Option(help: "Players on the board (key space of every workload).") var players: Int = 1_000_000
    @Flag(help: "Load `players` entries before the run.") var preload = false
    @Option(help: "Open loop: total operations per second (default: closed loop).") var rate: Double?
    @Option(help: "Open loop: most operations in flight per connection.") var maxInflight: Int = 256
    @Flag(help: "One JSON object per line on stdout.") var json = false
    @Option(help: "Server process id: CPU (/proc/PID/stat utime+stime) and memory (VmHWM, VmRSS).")
    var serverPid: Int32?
    @Option(help: "hiscored admin metrics URL (http://HOST:PORT/metrics), optional.") var metricsUrl: String?
    @Option(help: "Event loop threads of the load generator.") var threads: Int = 1
    @Option(help: "PRNG seed.") var seed: UInt64 = 42
    @Option(help: "Hiscore: fully decode and check every N-th reply with HiscoreWire (0 = never).")
    var verifyEvery: Int = 1000
    @Option(help: "Connections used by --preload.") var preloadConnections: Int = 4
    @Option(help: "Batches in flight per preload connection.") var preloadPipeline: Int = 4
    @Option(help: "Free text copied into the JSON objects (\"label\").") var label: String?

    func validate() throws {
        guard connections > 0, pipeline > 0, threads > 0, players > 0, requests >= 0, maxInflight > 0 else {
            throw ValidationError("--connections, --pipeline, --threads, --players, --max-inflight must be positive")
        }
        guard pipeline <= 65535, maxInflight <= 65535 else { throw ValidationError("at most 65535 in flight") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
        guard requests > 0 || preload else { throw ValidationError("nothing to do: --requests 0 without --preload") }
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
        if target == .hiscore { try LoadHiscoreEncodingCheck.run(players: players, seed: seed) }
        if let pid = serverPid, !ServerProc.exists(pid: pid) {
            throw ValidationError("--server-pid \(pid): no such process")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        defer { try? group.syncShutdownGracefully() }
        let wire = LoadWireOptions(players: players, seed: seed, verifyEvery: target == .hiscore ? verifyEvery : 0)
        let report = ServerReport(command: self)
        var failed = false

        if preload {
            let plan = LoadRunPlan(
                target: target, host: host, port: port, connections: preloadConnections, pipeline: preloadPipeline,
                workload: nil, operations: players, rate: nil, maxInflight: preloadPipeline, wire: wire, seed: seed)
            let before = ServerSample.take(self, host: host, port: port, memory: true)
            var start = ServerSample()
            var end = ServerSample()
            serverPrintError("preloading \(players) players into \(target) \(addr) (batches of \(LoadShape.preloadBatchSize))")
            let result = try runLoad(
                plan: plan, group: group,
                beforeStart: { start = ServerSample.take(self, host: host, port: port, memory: false) },
                afterEnd: { end = ServerSample.take(self, host: host, port: port, memory: false) })
            let after = ServerSample.take(self, host: host, port: port, memory: true)
            let size = target == .redis
                ? try RedisControl.zcard(host: host, port: port)
                : try HiscoreControl.boardSize(host: host, port: port)
            failed = failed || result.failedOperations > 0 || size < players
            report.preload(result: result, start: start, end: end, before: before, after: after, boardSize: size)
        }
        if requests > 0 {
            let plan = LoadRunPlan(
                target: target, host: host, port: port, connections: connections, pipeline: pipeline,
                workload: workload, operations: requests, rate: rate, maxInflight: maxInflight, wire: wire, seed: seed)
            var start = ServerSample()
            var end = ServerSample()
            let mode = rate.map { "open loop at \(Int($0)) ops/s" } ?? "closed loop, pipeline \(pipeline)"
            serverPrintError("\(workload) against \(target) \(addr): \(requests) operations, \(connections) connections, \(mode)")
            let result = try runLoad(
                plan: plan, group: group,
                beforeStart: { start = ServerSample.take(self, host: host, port: port, memory: false) },
                afterEnd: { end = ServerSample.take(self, host: host, port: port, memory: false) })
            failed = failed || result.failedOperations > 0
            report.workload(result: result, start: start, end: end)
        }
        if failed { throw ExitCode(3) }
    }
}

/// Server (and client) counters at one moment.
struct ServerSample {
    var monotonicNanos: UInt64 = 0
    var cpuTicks: Int?
    var schedNanos: Int?
    var clientCPUMicros = 0
    var machineBusyTicks: Int?
    var metrics: [String: Double]?
    var rssKB: Int?
    var peakRSSKB: Int?
    var redisUsedMemory: Int?
    var redisChanges: Int?

    static func take(_ command: ServerCommand, host: String, port: Int, memory: Bool) -> ServerSample {
        var sample = ServerSample()
        if let pid = command.serverPid {
            sample.cpuTicks = ServerProc.cpuTicks(pid: pid)
            sample.schedNanos = ServerProc.schedNanos(pid: pid)
            sample.rssKB = ServerProc.statusKB(pid: pid, "VmRSS")
            sample.peakRSSKB = ServerProc.statusKB(pid: pid, "VmHWM")
        }
        if let url = command.metricsUrl {
            do { sample.metrics = try ServerMetrics.fetch(url) } catch {
                serverPrintError("warning: \(error)")
            }
        }
        if memory, command.target == .redis {
            do { sample.redisUsedMemory = try RedisControl.usedMemory(host: host, port: port) } catch {
                serverPrintError("warning: INFO memory: \(error)")
            }
        }
        if !memory, command.target == .redis {
            do { sample.redisChanges = try RedisControl.changes(host: host, port: port) } catch {
                serverPrintError("warning: INFO persistence: \(error)")
            }
        }
        sample.clientCPUMicros = ServerProc.selfCPUMicros()
        sample.machineBusyTicks = ServerProc.machineBusyTicks()
        sample.monotonicNanos = loadNowNanos()
        return sample
    }
}

/// Formats and prints the results (text on stderr, JSON lines on stdout).
struct ServerReport {
    let command: ServerCommand

    init(command: ServerCommand) { self.command = command }

    private func common() -> [(String, JSONValue)] {
        var fields: [(String, JSONValue)] = [
            ("bench", .string("server")), ("target", .string(command.target.rawValue)),
        ]
        if let label = command.label { fields.append(("label", .string(label))) }
        return fields
    }

    func preload(
        result: LoadRunResult, start: ServerSample, end: ServerSample, before: ServerSample, after: ServerSample,
        boardSize: Int
    ) {
        let players = Double(command.players)
        var fields = common()
        fields += [
            ("phase", .string("preload")), ("players", .int(command.players)),
            ("batch", .int(LoadShape.preloadBatchSize)), ("board_size", .int(boardSize)),
            ("wall_s", .double(result.wallSeconds, 3)),
            ("entries_per_s", .double(players / result.wallSeconds, 0)),
            ("errors", .int(result.failedOperations)), ("error_detail", .string(result.errors.summary)),
        ]
        if let a = start.cpuTicks, let b = end.cpuTicks {
            let seconds = Double(b - a) / Double(ServerProc.clockTicksPerSecond)
            fields += [("server_cpu_s", .double(seconds, 2)), ("server_cpu_us_per_entry", .double(seconds * 1e6 / players, 3))]
        }
        var bytesPerEntry: Double? = nil
        var source = ""
        if let a = before.redisUsedMemory, let b = after.redisUsedMemory {
            bytesPerEntry = Double(b - a) / players
            source = "redis_used_memory"
            fields += [("used_memory_before", .int(a)), ("used_memory_after", .int(b))]
        }
        if let a = before.metrics?["hiscore_jemalloc_allocated_bytes"], let b = after.metrics?["hiscore_jemalloc_allocated_bytes"] {
            bytesPerEntry = (b - a) / players
            source = "hiscore_jemalloc_allocated_bytes"
            fields += [("jemalloc_allocated_before", .double(a, 0)), ("jemalloc_allocated_after", .double(b, 0))]
        }
        var rssPerEntry: Double? = nil
        if let a = before.rssKB, let b = after.rssKB {
            rssPerEntry = Double(b - a) * 1024 / players
            fields += [("rss_kb_before", .int(a)), ("rss_kb_after", .int(b)), ("rss_bytes_per_entry", .double(rssPerEntry!, 1))]
            if bytesPerEntry == nil {
                bytesPerEntry = rssPerEntry
                source = "rss_delta"
            }
        }
        if let bytesPerEntry {
            fields += [("bytes_per_entry", .double(bytesPerEntry, 1)), ("bytes_per_entry_source", .string(source))]
        }
        if let peak = after.peakRSSKB { fields.append(("peak_rss_kb", .int(peak))) }
        emit(fields)
        var text = "preload: \(command.players) players in \(serverFormat(result.wallSeconds, 2)) s"
        text += " (\(serverFormat(players / result.wallSeconds / 1000, 1))k/s), board size \(boardSize)"
        if let a = start.cpuTicks, let b = end.cpuTicks {
            text += ", server CPU \(serverFormat(Double(b - a) / Double(ServerProc.clockTicksPerSecond), 2)) s"
        }
        if let bytesPerEntry { text += ", \(serverFormat(bytesPerEntry, 1)) B/entry (\(source))" }
        if let rssPerEntry, source != "rss_delta" { text += ", RSS delta \(serverFormat(rssPerEntry, 1)) B/entry" }
        if result.failedOperations > 0 { text += "\n  ERRORS: \(result.failedOperations): \(result.errors.summary)" }
        if boardSize < command.players { text += "\n  ERROR: board holds \(boardSize) < \(command.players) players" }
        serverPrintError(text)
    }

    func workload(result: LoadRunResult, start: ServerSample, end: ServerSample) {
        let ops = Double(max(result.completed, 1))
        let h = result.histogram
        let rps = Double(result.completed) / result.wallSeconds
        var fields = common()
        fields += [
            ("workload", .string(command.workload.rawValue)),
            ("mode", .string(command.rate == nil ? "closed" : "open")),
            ("pipeline", command.rate == nil ? .int(command.pipeline) : .int(command.maxInflight)),
            ("connections", .int(command.connections)), ("threads", .int(command.threads)),
            ("players", .int(command.players)), ("requests", .int(result.completed)),
            ("commands", .int(result.stats.commands)),
            ("wall_s", .double(result.wallSeconds, 3)), ("rps", .double(rps, 0)),
            ("mean_us", .double(h.mean, 1)), ("p50_us", .int(Int(h.valueAtPercentile(50)))),
            ("p90_us", .int(Int(h.valueAtPercentile(90)))), ("p99_us", .int(Int(h.valueAtPercentile(99)))),
            ("p999_us", .int(Int(h.valueAtPercentile(99.9)))), ("max_us", .int(Int(h.max))),
            ("errors", .int(result.failedOperations)), ("error_detail", .string(result.errors.summary)),
        ]
        if let rate = command.rate { fields += [("rate", .double(rate, 0)), ("late_starts", .int(result.lateStarts))] }
        var cpuPerOp: Double? = nil
        if let a = start.cpuTicks, let b = end.cpuTicks {
            cpuPerOp = Double(b - a) * 1e6 / Double(ServerProc.clockTicksPerSecond) / ops
            fields += [("server_cpu_ticks", .int(b - a)), ("server_cpu_us_per_op", .double(cpuPerOp!, 3))]
        } else {
            fields.append(("server_cpu_us_per_op", .null))
        }
        if let a = start.schedNanos, let b = end.schedNanos {
            fields.append(("server_sched_us_per_op", .double(Double(b - a) / 1000 / ops, 3)))
        }
        if let a = start.metrics?["process_cpu_seconds_total"], let b = end.metrics?["process_cpu_seconds_total"] {
            fields.append(("metrics_cpu_us_per_op", .double((b - a) * 1e6 / ops, 3)))
        }
        fields.append(("client_cpu_us_per_op", .double(Double(end.clientCPUMicros - start.clientCPUMicros) / ops, 3)))
        var allocationsPerOp: Double? = nil
        if let a = start.metrics?["hiscore_allocations_total"], let b = end.metrics?["hiscore_allocations_total"] {
            // Includes the run's connection set-up (about a hundred allocations per connection).
            allocationsPerOp = (b - a) / ops
            fields.append(("allocations_per_op", .double(allocationsPerOp!, 3)))
        }
        var otherPercent: Double? = nil
        if let a = start.machineBusyTicks, let b = end.machineBusyTicks, let c = start.cpuTicks, let d = end.cpuTicks {
            // CPU used by anything but the server and this generator, in % of one core.
            let hz = Double(ServerProc.clockTicksPerSecond)
            let client = Double(end.clientCPUMicros - start.clientCPUMicros) / 1e6 * hz
            otherPercent = 100 * (Double(b - a) - Double(d - c) - client) / (result.wallSeconds * hz)
            fields.append(("other_cpu_pct", .double(otherPercent!, 1)))
        }
        if let peak = end.peakRSSKB { fields.append(("peak_rss_kb", .int(peak))) } else { fields.append(("peak_rss_kb", .null)) }
        if let rss = end.rssKB { fields.append(("rss_kb", .int(rss))) }
        if command.target == .hiscore, result.stats.submitReplies > 0 {
            fields.append(("submit_changed_fraction", .double(Double(result.stats.submitChanged) / Double(result.stats.submitReplies), 4)))
        }
        if command.target == .redis, result.stats.submitReplies > 0, let a = start.redisChanges, let b = end.redisChanges {
            fields.append(("submit_changed_fraction", .double(Double(b - a) / Double(result.stats.submitReplies), 4)))
        }
        if result.stats.deepVerified > 0 { fields.append(("deep_verified", .int(result.stats.deepVerified))) }
        emit(fields)

        var text = "  \(result.completed) ops in \(serverFormat(result.wallSeconds, 2)) s = \(serverFormat(rps, 0)) ops/s"
        if result.stats.commands != result.completed { text += " (\(result.stats.commands) commands)" }
        text += "\n  latency us: p50 \(h.valueAtPercentile(50))  p90 \(h.valueAtPercentile(90))"
        text += "  p99 \(h.valueAtPercentile(99))  p99.9 \(h.valueAtPercentile(99.9))  max \(h.max)  mean \(serverFormat(h.mean, 1))"
        if let cpuPerOp, let a = start.cpuTicks, let b = end.cpuTicks {
            text += "\n  server CPU \(serverFormat(cpuPerOp, 2)) us/op (\(b - a) ticks)"
        }
        if let a = start.schedNanos, let b = end.schedNanos { text += ", schedstat \(serverFormat(Double(b - a) / 1000 / ops, 2)) us/op" }
        text += "; client CPU \(serverFormat(Double(end.clientCPUMicros - start.clientCPUMicros) / ops, 2)) us/op"
        if let peak = end.peakRSSKB { text += "; server peak RSS \(peak) kB" }
        if let allocationsPerOp { text += "; server allocations \(serverFormat(allocationsPerOp, 2))/op" }
        if let otherPercent { text += "; other processes \(serverFormat(otherPercent, 0))% of a core" }
        if result.stats.deepVerified > 0 { text += "\n  \(result.stats.deepVerified) replies fully decoded and checked" }
        if let rate = command.rate, result.lateStarts > 0 {
            text += "\n  \(result.lateStarts) operations started > 1 ms after their intended time (target \(serverFormat(rate, 0))/s)"
        }
        text += result.failedOperations > 0
            ? "\n  ERRORS: \(result.failedOperations) failed: \(result.errors.summary)" : "\n  errors: 0"
        serverPrintError(text)
    }

    private func emit(_ fields: [(String, JSONValue)]) {
        guard command.json else { return }
        let body = fields.map { "\"\($0.0)\":\($0.1.text)" }.joined(separator: ",")
        var line = "{\(body)}\n"
        line.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
    }
}

enum JSONValue {
    case string(String)
    case int(Int)
    case double(Double, Int)
    case null

    var text: String {
        switch self {
        case .string(let value):
            var out = "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case _ where scalar.value < 0x20: out += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        case .int(let value): return String(value)
        case .double(let value, let digits): return value.isFinite ? serverFormat(value, digits) : "null"
        case .null: return "null"
        }
    }
}

/// Fixed-point decimal text without Foundation.
func serverFormat(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "nan" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e18 else { return String(value) }
    let integer = Int(scaled)
    let sign = value < 0 && integer != 0 ? "-" : ""
    if digits == 0 { return sign + String(integer) }
    let divisor = Int(scale)
    let fraction = String(integer % divisor)
    return sign + String(integer / divisor) + "." + String(repeating: "0", count: digits - fraction.count) + fraction
}

func serverPrintError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}
