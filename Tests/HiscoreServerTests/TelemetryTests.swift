import Foundation
import HiscoreClient
import HiscoreCore
@testable import HiscoreServer
import HiscoreTestSupport
import HiscoreWire
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The value of the sample `name` (with its labels, if any) in a Prometheus text body.
func metricValue(_ name: String, in body: String) -> Double? {
    body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
}

/// The value of the sample `name`, scraped from the admin port's /metrics.
func metricValue(_ name: String, adminPort: Int) async throws -> Double? {
    metricValue(name, in: try await httpGet(port: adminPort, path: "/metrics").body)
}

/// Fetches `path` from the admin port with a plain HTTP/1.1 request over loopback. The socket
/// calls block, so they run on a thread of their own: on the test's task they would hold one of
/// the few cooperative threads that the server's own tasks may be waiting for. The 30 s bound
/// is for `/metrics`, whose rendering waits for a cooperative thread: in a parallel test run
/// on two cores, tests that block theirs (mounts, compilers, processes) held both for over
/// 10 s, and a scrape timed out as if unanswered.
func httpGet(port: Int, path: String) async throws -> (status: Int, body: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result {
                let connection = try RawConnection(port: port, timeoutSeconds: 30)
                connection.send(Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
                let text = connection.readAll()
                let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
                let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
                return (status, body)
            })
        }
    }
}

/// The lines a server logs, kept for a test to read.
final class CapturedLog: @unchecked Sendable {
    private let lock = NSCondition()
    private var lines: [String] = []

    func append(_ line: String) {
        lock.withLock {
            lines.append(line)
            lock.broadcast()
        }
    }

    func contains(_ text: String) -> Bool { lock.withLock { lines.contains { $0.contains(text) } } }

    /// Lines that contain `text`.
    func count(_ text: String) -> Int { lock.withLock { lines.filter { $0.contains(text) }.count } }

    /// Waits (on a condition, woken by each new line; off the cooperative pool) until a line
    /// contains `text`, at most `seconds`; whether one does.
    func waitFor(_ text: String, seconds: Double) async -> Bool {
        await offCooperativePool {
            let deadline = Date(timeIntervalSinceNow: seconds)
            return lock.withLock {
                while !lines.contains(where: { $0.contains(text) }) {
                    if !lock.wait(until: deadline) { return lines.contains { $0.contains(text) } }
                }
                return true
            }
        }
    }

    var logger: Logger {
        Logger(label: "captured") { _ in CapturingLogHandler(log: self) }
    }
}

struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        log.append("\(event.level) \(event.message)")
    }
}

@Suite("Admin HTTP: /metrics, /healthz, /readyz")
struct TelemetryTests {
    @Test("above 80% of the configured capacity a summary line is logged each second; below it, none",
          arguments: [(100, true), (100_000_000, false)])
    func heavyLoadSummary(capacity: Int, expectsSummary: Bool) async throws {
        let log = CapturedLog()
        let calls = try await withServer(shards: 1, configure: { $0.capacityCallsPerSecond = capacity }, logger: log.logger) { server in
            try await Self.pingLoad(port: server.localPort, until: expectsSummary ? log : nil)
        }
        #expect(calls > 250, "too few calls to load a 100-calls/s capacity")
        #expect(log.contains("heavy load") == expectsSummary, "capacity \(capacity), \(calls) calls")
    }

    /// Bursts of 100 pings for a bit over two one-second windows, or until `log` shows the
    /// summary line; returns the calls answered.
    private static func pingLoad(port: Int, until log: CapturedLog?) async throws -> Int {
        // The load is what the test is about, and its length bounds the wait. On a thread of its
        // own with a blocking socket, so the load does not depend on the cooperative pool, which
        // other tests may hold.
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    let connection = try RawConnection(port: port, timeoutSeconds: 10)
                    _ = connection.handshake()
                    var burst = ByteBufferBuilder()
                    for call in UInt64(1)...100 { burst.append(RequestEnvelope(callID: call, method: .ping(payload: []))) }
                    var calls = 0
                    let start = ContinuousClock.now
                    while ContinuousClock.now - start < .milliseconds(2_300) {
                        connection.send(burst.bytes)
                        for _ in 0..<100 where connection.readFrame() != nil { calls += 1 }
                        if let log, log.contains("heavy load") { break }
                    }
                    return calls
                })
            }
        }
    }

    @Test("an admin port already taken fails the start with an error naming the admin port, and frees the rest")
    func adminPortTaken() async throws {
        try await withServer(configure: { $0.adminPort = 0 }) { first in
            let taken = try #require(first.adminPort)
            let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-admin-taken-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
            var config = testServerConfiguration(shards: 1)
            config.adminPort = taken
            config.durability = .fsync
            config.dataDirectory = dataDirectory
            do {
                let second = try await HiscoreServer.start(configuration: config, logger: Logger(label: "admin-taken"))
                await second.shutdown()
                Issue.record("a second server bound the taken admin port \(taken)")
            } catch let error as ListenError {
                #expect(error.socket == .admin)
                #expect(error.port == taken)
                #expect(error.description == "cannot listen on the admin HTTP port 127.0.0.1:\(taken): address already in use", "\(error)")
            }
            // What the failed start opened is closed: the data directory can be used again at once.
            config.adminPort = nil
            let third = try await HiscoreServer.start(configuration: config, logger: Logger(label: "admin-taken"))
            await third.shutdown()
        }
    }

    @Test("the admin port holds at most maxConnections connections; one more is closed at once")
    func adminConnectionLimit() async throws {
        try await withServer(configure: { $0.adminPort = 0 }) { server in
            let port = try #require(server.adminPort)
            let (closed, served): (Int, Int) = try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result {
                        // Which one is over the limit is not the 65th to connect: connections are
                        // set up on the event loops in parallel. One of them is closed at once.
                        let connections = try (0...AdminHTTPServer.maxConnections).map { _ in
                            try RawConnection(port: port, timeoutSeconds: 10)
                        }
                        let deadline = ContinuousClock.now + .seconds(10)
                        var open = connections
                        while open.count == connections.count && ContinuousClock.now < deadline {
                            open.removeAll { $0.isClosedNow() }
                            usleep(1_000)  // a polling interval; the condition above ends the wait
                        }
                        // The others are held and served.
                        var served = 0
                        for connection in open {
                            connection.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                            if connection.readLine()?.hasPrefix("HTTP/1.1 200") == true { served += 1 }
                        }
                        return (connections.count - open.count, served)
                    })
                }
            }
            #expect(closed == 1)
            #expect(served == AdminHTTPServer.maxConnections)
        }
    }

    @Test("metrics count calls by method and status, and report memory, CPU and entries")
    func metrics() async throws {
        try await withClient(configure: { $0.adminPort = 0 }) { client, server in
            let port = try #require(server.adminPort)
            for index in 0..<3 { _ = try await client.submit(board: "m", player: "p\(index)", score: 1) }
            _ = try? await client.rank(board: "m", player: "ghost")
            let (status, body) = try await httpGet(port: port, path: "/metrics")
            #expect(status == 200)
            #expect(body.contains(#"hiscore_calls_total{method="submit"} 3"#))
            #expect(body.contains(#"hiscore_call_status_total{code="NOT_FOUND"} 1"#))
            #expect(body.contains(#"hiscore_call_latency_seconds_count{method="submit"} 3"#))
            #expect(body.contains("hiscore_connections 1"))
            #expect(body.contains("process_cpu_seconds_total"))
            #expect(body.contains("hiscore_jemalloc_allocated_bytes"))
            let entries = body.split(separator: "\n").filter { $0.hasPrefix("hiscore_entries{") }
            #expect(entries.count == 2)
            #expect(entries.compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +) == 3)
        }
    }

    @Test("stream flushes and events are counted")
    func streamMetrics() async throws {
        try await withClient(configure: { $0.adminPort = 0 }) { client, server in
            let port = try #require(server.adminPort)
            _ = try await client.submit(board: "sm", player: "me", score: 10)
            var iterator = client.subscribe(board: "sm", target: .player("me"), minInterval: .milliseconds(20)).makeAsyncIterator()
            _ = try await iterator.next()  // snapshot
            _ = try await client.submit(board: "sm", player: "rival", score: 20)
            _ = try await iterator.next()  // rank 1 -> 2
            let body = try await httpGet(port: port, path: "/metrics").body
            func value(_ name: String) -> Double? { metricValue(name, in: body) }
            #expect((value("hiscore_stream_events_total") ?? 0) >= 2)
            #expect((value("hiscore_stream_flushes_total") ?? 0) >= 2)
            #expect(value("hiscore_stream_flush_busy_seconds_total") != nil)
            #expect(value("hiscore_stream_widened_flushes_total") == 0)
        }
    }

    @Test("a connection is handed at most about 4 MiB of stream events at a time; the rest follow in later flushes as it reads")
    func streamBytesPerFlush() async throws {
        try await withClient(shards: 1, configure: { $0.adminPort = 0 }) { client, server in
            let port = try #require(server.adminPort)
            try await client.createBoard(BoardConfig(id: "big", limits: BoardLimits(maxMetadataBytes: 4000)))
            // 200 players with 4000 bytes of metadata: a top-200 window event is ~0.8 MB.
            let metadata = [UInt8](repeating: 65, count: 4000)
            let results = try await client.submitBatch((0..<200).map {
                SubmitRequest(boardID: "big", playerID: "p\($0)", score: Int64($0), metadata: metadata)
            })
            #expect(results.allSatisfy { $0.status.code == .ok })
            // 30 such subscriptions sent in one write: read together, they are due in one flush,
            // ~25 MB of snapshots for one connection.
            let raw = try RawConnection(port: server.localPort, timeoutSeconds: 20)
            _ = raw.handshake()
            var burst = ByteBufferBuilder()
            for callID in 1...30 {
                burst.append(RequestEnvelope(callID: UInt64(callID), method: .subscribe(SubscribeRequest(
                    boardID: "big", target: .top(200), minIntervalMillis: 20))))
            }
            raw.send(burst.bytes)
            var snapshots = Set<UInt64>()
            while snapshots.count < 30, let frame = raw.readFrame() {
                guard case .event(let event) = frame.result, event.snapshot else { continue }
                if case .window(let window) = event.change { #expect(window.entries.count == 200) }
                snapshots.insert(frame.callID)
            }
            #expect(snapshots.count == 30)
            let flushes = try await metricValue("hiscore_stream_flushes_total", adminPort: port) ?? 0
            #expect(flushes >= 6, "\(flushes) flushes for ~25 MB of events")
        }
    }

    @Test("healthz and readyz answer; unknown paths are 404")
    func probes() async throws {
        try await withServer(configure: { $0.adminPort = 0 }) { server in
            let port = try #require(server.adminPort)
            #expect(try await httpGet(port: port, path: "/healthz") == (200, "ok\n"))
            #expect(try await httpGet(port: port, path: "/readyz") == (200, "ready\n"))
            #expect(try await httpGet(port: port, path: "/nope").status == 404)
        }
    }
}
