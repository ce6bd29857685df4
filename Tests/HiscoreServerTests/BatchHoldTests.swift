import Foundation
import HiscoreTestSupport
import HiscoreWire
import Testing

/// `max_inflight_batch_items` and `max_server_inflight_batch_items`: a writer pipelining more
/// submit batches than the bounds has the rest wait in its socket (the server stops reading), and
/// every batch is still answered.
@Suite("Submit batches in flight", .timeLimit(.minutes(2)))
struct BatchHoldTests {
    /// Starts a thread sending `batches` batches of 1,000 new players (call ids 1...) on
    /// `connection`; the caller's thread only reads (RawConnection keeps no state for sends).
    private static func startSending(batches: Int, board: String, on connection: RawConnection) -> Thread {
        nonisolated(unsafe) let sending = connection
        let sender = Thread {
            for batch in 0..<batches {
                let submits = (0..<1000).map {
                    SubmitRequest(boardID: board, playerID: "p:\(batch * 1000 + $0)", score: Int64($0), skipRanks: true)
                }
                sending.send(RequestEnvelope(callID: UInt64(batch + 1), method: .submitBatch(submits)))
            }
        }
        sender.start()
        return sender
    }

    /// A server (`--durability memory`, admin port) started with `flags`, in a directory of its own.
    private static func withServer(_ flags: [String], _ body: (ServerProcess, _ adminPort: Int) async throws -> Void)
        async throws
    {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(
            arguments: ["--data-dir", directory.path, "--durability", "memory"] + flags, adminPort: true
        ) { server in
            try await body(server, try #require(server.adminPortNumber))
        }
    }

    /// Pipelines `batches` batches of 1,000 new players on one connection (sent from another
    /// thread while this one reads), and returns the item statuses of every answer in order.
    private static func pipeline(batches: Int, port: Int, board: String = "hold", readAnswers: Bool = true) async throws
        -> [[StatusCode]]
    {
        try await offCooperativePool { () throws -> [[StatusCode]] in
            let connection = try RawConnection(port: port, timeoutSeconds: 20)
            guard connection.handshake() != nil else { throw RawConnectionError.system("no hello") }
            let sender = startSending(batches: batches, board: board, on: connection)
            var answers: [[StatusCode]] = []
            guard readAnswers else {
                // A writer that goes away with its batches in flight: this thread waits for the
                // sender (whose sends block while the server holds reads), then closes.
                var reads = 0
                while !sender.isFinished && reads < batches + 1 {
                    guard connection.readFrame() != nil else { break }
                    reads += 1
                }
                connection.disconnect()
                return []
            }
            while answers.count < batches, let frame = connection.readFrame() {
                guard case .submitBatch(let results)? = frame.result else {
                    answers.append([frame.status?.code ?? .unknown])
                    continue
                }
                answers.append(results.map(\.status.code))
            }
            return answers
        }
    }

    @Test("over the bound the connection waits, and all 20 batches are answered in full")
    func heldThenAnswered() async throws {
        try await Self.withServer(
            ["--max-inflight-batch-items", "2000", "--max-server-inflight-batch-items", "1000000"]
        ) { server, adminPort in
            let answers = try await Self.pipeline(batches: 20, port: server.port)
            #expect(answers.count == 20)
            #expect(answers.allSatisfy { $0.count == 1000 && $0.allSatisfy { $0 == .ok } }, "\(answers.map(\.count))")
            let holds = try await metricValue("hiscore_batch_item_holds_total", adminPort: adminPort)
            #expect((holds ?? 0) > 0, "the connection was never held")
        }
    }

    @Test("under the bound nothing is held")
    func underTheBound() async throws {
        try await Self.withServer(
            ["--max-inflight-batch-items", "16384", "--max-server-inflight-batch-items", "32768"]
        ) { server, adminPort in
            let answers = try await Self.pipeline(batches: 8, port: server.port)
            #expect(answers.count == 8 && answers.allSatisfy { $0.count == 1000 && $0.allSatisfy { $0 == .ok } })
            #expect(try await metricValue("hiscore_batch_item_holds_total", adminPort: adminPort) == 0)
        }
    }

    /// Polls (bounded) until the server counts no batch item in flight: items go back when a
    /// batch's plan is freed, as its round ends, a moment after its answer was written.
    static func inflightItemsReachZero(adminPort: Int) async throws -> Bool {
        for _ in 0..<200 {
            if try await metricValue("hiscore_inflight_batch_items", adminPort: adminPort) == 0 { return true }
            try await Task.sleep(for: .milliseconds(25))  // poll interval, not synchronization
        }
        return false
    }

    @Test("writers on one loop share its bound: each is held while the loop is full, and all are answered")
    func loopShareHoldsWriters() async throws {
        try await Self.withServer(
            ["--shards", "1", "--max-inflight-batch-items", "100000", "--max-server-inflight-batch-items", "1500"]
        ) { server, adminPort in
            let answers = try await withThrowingTaskGroup(of: [[StatusCode]].self) { group in
                for writer in 0..<3 {
                    group.addTask { try await Self.pipeline(batches: 10, port: server.port, board: "share\(writer)") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.count == 3)
            for writer in answers {
                #expect(writer.count == 10 && writer.allSatisfy { $0.count == 1000 && $0.allSatisfy { $0 == .ok } }, "\(writer.map(\.count))")
            }
            // Only the loop's share could hold them: each writer's own bound is 100 batches.
            let holds = try await metricValue("hiscore_batch_item_holds_total", adminPort: adminPort)
            #expect((holds ?? 0) > 0, "no writer was ever held")
            #expect(try await Self.inflightItemsReachZero(adminPort: adminPort))
        }
    }

    @Test("a writer that disconnects with batches in flight gives the loop its share back")
    func disconnectedWriterReleasesTheLoop() async throws {
        try await Self.withServer(
            ["--shards", "1", "--max-inflight-batch-items", "100000", "--max-server-inflight-batch-items", "1500"]
        ) { server, adminPort in
            _ = try await Self.pipeline(batches: 10, port: server.port, board: "gone", readAnswers: false)
            let answers = try await Self.pipeline(batches: 10, port: server.port, board: "after")
            #expect(answers.count == 10)
            #expect(answers.allSatisfy { $0.count == 1000 && $0.allSatisfy { $0 == .ok } }, "\(answers.map(\.count))")
            // The gone writer's items were given back when its batches' work ended, not kept
            // (with them kept, the loop would stay full: one batch at a time per writer).
            #expect(try await Self.inflightItemsReachZero(adminPort: adminPort))
        }
    }

    @Test("a server shut down while a writer is held answers the batches it admitted and stops at once")
    func shutdownWhileHeld() async throws {
        try await Self.withServer(
            ["--shards", "1", "--max-inflight-batch-items", "1000", "--max-server-inflight-batch-items", "1000"]
        ) { server, adminPort in
            let batches = 30
            let answers = try await offCooperativePool { () throws -> [StatusCode] in
                let connection = try RawConnection(port: server.port, timeoutSeconds: 20)
                guard connection.handshake() != nil else { throw RawConnectionError.system("no hello") }
                _ = Self.startSending(batches: batches, board: "stop", on: connection)
                var answers: [StatusCode] = []
                // One batch in flight at a time: once the first is answered the connection is
                // held for the next, and the shutdown begins.
                while let frame = connection.readFrame() {
                    if case .submitBatch(let results)? = frame.result {
                        answers.append(results.allSatisfy { $0.status.code == .ok } ? .ok : .unknown)
                    } else {
                        answers.append(frame.status?.code ?? .unknown)
                    }
                    if answers.count == 1 { server.signal(SIGTERM) }
                }
                return answers
            }
            // Had the held connection been left waiting, the server would stop only when its
            // grace (10 s) ran out, saying so.
            #expect(await server.waitForExit(timeout: .seconds(30)) == 0)
            #expect(await server.waitForLog("hiscored stopped", timeout: .seconds(5)))
            #expect(!server.log.contains("grace"), "\(server.log)")
            #expect(!answers.isEmpty && answers.count < batches, "\(answers)")
            // Batches admitted before the shutdown are answered in full; frames read after it
            // began are refused as the server goes.
            #expect(answers.allSatisfy { $0 == .ok || $0 == .unavailable }, "\(answers)")
        }
    }

    /// With no grace, a writer still working is cut off: the warning says so, and how many.
    @Test("a shutdown whose grace runs out closes the connections still working, saying how many")
    func shutdownGraceRunsOut() async throws {
        try await Self.withServer([
            "--shards", "1", "--max-inflight-batch-items", "1000", "--max-server-inflight-batch-items", "1000",
            "--shutdown-grace", "0",
        ]) { server, _ in
            let batches = 30
            let answered = try await offCooperativePool { () throws -> Int in
                let connection = try RawConnection(port: server.port, timeoutSeconds: 20)
                guard connection.handshake() != nil else { throw RawConnectionError.system("no hello") }
                _ = Self.startSending(batches: batches, board: "cut", on: connection)
                var answered = 0
                // One batch in flight at a time: after the first answer the next is being
                // applied when the stop begins.
                while connection.readFrame() != nil {
                    answered += 1
                    if answered == 1 { server.signal(SIGTERM) }
                }
                return answered
            }
            #expect(await server.waitForExit(timeout: .seconds(30)) == 0)
            #expect(await server.waitForLog("hiscored stopped", timeout: .seconds(5)))
            #expect(server.log.contains("shutdown grace of 0 s expired: closing 1 connections with calls still in flight"), "\(server.log)")
            #expect(answered >= 1 && answered < batches, "\(answered)")
        }
    }
}
