import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreStorage
import HiscoreWire
import Testing

@Suite("Connections: multiplexing, limits, cancel, shutdown, memory ceiling")
struct ConnectionBehaviourTests {
    @Test("hundreds of concurrent calls on one connection all get their own answer")
    func pipelining() async throws {
        try await withClient(shards: 3) { client, _ in
            let ranks = try await withThrowingTaskGroup(of: (Int, UInt64).self) { group in
                for index in 0..<400 {
                    group.addTask {
                        let response = try await client.submit(board: "pipe", player: "p\(index)", score: Int64(index))
                        return (index, response.entry.rank)
                    }
                }
                var collected: [Int: UInt64] = [:]
                for try await (index, rank) in group { collected[index] = rank }
                return collected
            }
            #expect(ranks.count == 400)
            let top = try await client.top(board: "pipe", limit: 1000)
            #expect(top.entries.count == 400)
            #expect(top.entries.first?.playerID == "p399")
            // Reads and writes interleaved, answers matched by call id.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let rank = try await client.rank(board: "pipe", player: "p\(index)")
                        #expect(rank.entry.rank == UInt64(400 - index))
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("calls beyond max_inflight_calls get RESOURCE_EXHAUSTED and the connection stays open")
    func inflightLimit() async throws {
        try await withServer(configure: { $0.limits.maxInflightCalls = 4 }) { server in
            let connection = try RawConnection(port: server.localPort)
            #expect(connection.handshake()?.maxInflightCalls == 4)
            var burst = ByteBufferBuilder()
            for callID in 1...64 {
                burst.append(RequestEnvelope(callID: UInt64(callID), method: .submit(SubmitRequest(boardID: "b", playerID: "p\(callID)", score: 1))))
            }
            connection.send(burst.bytes)
            var codes: [StatusCodeAlias] = []
            for _ in 1...64 {
                guard let frame = connection.readFrame() else { break }
                codes.append(frame.status?.code ?? .ok)
            }
            #expect(codes.count == 64)
            #expect(codes.contains(.resourceExhausted))
            #expect(codes.allSatisfy { $0 == .ok || $0 == .resourceExhausted })
            connection.send(RequestEnvelope(callID: 100, method: .ping(payload: [])))
            #expect(connection.readFrame()?.callID == 100)
        }
    }

    @Test("a duplicate in-flight call id and call id 0 are refused")
    func callIDRules() async throws {
        try await withServer { server in
            let connection = try RawConnection(port: server.localPort)
            _ = connection.handshake()
            connection.send(RequestEnvelope(callID: 0, method: .ping(payload: [])))
            let zero = connection.readFrame()
            #expect(zero?.status?.code == .invalidArgument)
        }
    }

    @Test("cancel of a call that is not in flight answers cancelled = false")
    func cancelUnknown() async throws {
        try await withClient { client, _ in
            let result = try await client.call(.cancel(callID: 987_654))
            #expect(result == .cancel(cancelled: false))
        }
    }


    @Test("graceful shutdown lets the server stop while a client is connected")
    func gracefulShutdown() async throws {
        var config = ServerConfiguration()
        config.port = 0
        config.adminPort = nil
        config.durability = .memory
        config.shards = 2
        let server = try await HiscoreServer.start(configuration: config)
        let client: HiscoreClient
        do {
            client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await client.submit(board: "s", player: "p", score: 1)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
        await expectStatus(.unavailable) { _ = try await client.ping() }
        try? await client.close()
    }

    @Test("hiscored exits 0 on SIGTERM and SIGINT with clients connected, creating its data dir")
    func signals() async throws {
        for signal in [SIGTERM, SIGINT] {
            let directory = try TemporaryDirectory()
            defer { directory.cleanup() }
            let dataDirectory = directory.path + "/nested/data"
            let server = try await ServerProcess.start(arguments: ["--data-dir", dataDirectory])
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            _ = try await client.submit(board: "b", player: "p", score: 1)
            #expect(FileManager.default.fileExists(atPath: dataDirectory))
            server.signal(signal)
            #expect(await server.waitForExit(timeout: .seconds(10)) == 0)
            try? await client.close()
        }
    }

    @Test("a client pointed at the admin HTTP port is told so, not only that a flag byte is wrong")
    func clientAtTheAdminPort() async throws {
        try await withServerProcess(arguments: ["--durability", "memory"], adminPort: true) { server in
            let adminPort = try #require(server.adminPortNumber)
            do {
                let client = try await HiscoreClient.connect(host: "127.0.0.1", port: adminPort, connectTimeout: .seconds(5))
                try? await client.close()
                Issue.record("connected to the admin port as if it were hiscored's")
            } catch {
                #expect("\(error)".contains("admin port"), "\(error)")
            }
        }
    }

    @Test("--durability memory writes nothing: the data dir is not created")
    func memoryModeCreatesNoDataDir() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let dataDirectory = directory.path + "/never"
        try await withServerProcess(arguments: ["--data-dir", dataDirectory, "--durability", "memory"]) { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            _ = try await client.submit(board: "b", player: "p", score: 1)
            try? await client.close()
        }
        #expect(!FileManager.default.fileExists(atPath: dataDirectory))
    }

    /// Measured in a server process of its own: in-process, other tests' allocations would count.
    @Test("the memory ceiling refuses new players, keeps updates, and lifts after a board is deleted")
    func memoryCeiling() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(arguments: ["--data-dir", directory.path, "--shards", "2", "--max-memory", "24M"]) { server in
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.port)
            try await client.createBoard(BoardConfig(id: "fill", limits: BoardLimits(maxMetadataBytes: 4096)))
            _ = try await client.submit(board: "fill", player: "small", score: 1, metadata: [UInt8](repeating: 2, count: 10))
            var refused = false
            var batch = 0
            // 4 KiB of metadata per player: the ceiling is reached after a few thousand players.
            while !refused && batch < 100 {
                let submits = (0..<200).map { SubmitRequest(boardID: "fill", playerID: "p\(batch)-\($0)", score: Int64($0), metadata: [UInt8](repeating: 1, count: 4096)) }
                let results = try await client.submitBatch(submits)
                refused = results.contains { $0.status.code == .resourceExhausted }
                batch += 1
            }
            #expect(refused, "the ceiling was never reached")
            let message = await expectStatus(.resourceExhausted) { _ = try await client.submit(board: "fill", player: "newcomer", score: 1) }
            #expect(message.contains("memory ceiling"))
            let update = try await client.submit(board: "fill", player: "p0-5", score: 1_000_000)
            #expect(update.changed)
            #expect(try await client.rank(board: "fill", player: "p0-5").entry.rank == 1)
            // Metadata may not grow above the ceiling (4 KiB for every player would double the heap);
            // updates that keep or shrink it, or send none, go on.
            let growth = await expectStatus(.resourceExhausted) {
                _ = try await client.submit(board: "fill", player: "small", score: 2, metadata: [UInt8](repeating: 3, count: 4096))
            }
            #expect(growth.contains("metadata may not grow") && growth.contains("10 bytes"), "\(growth)")
            // A keep-best write that does not improve stores nothing: answered as usual, not refused.
            let notBetter = try await client.submit(board: "fill", player: "small", score: 0, metadata: [UInt8](repeating: 3, count: 4096))
            #expect(!notBetter.changed)
            #expect(try await client.submit(board: "fill", player: "small", score: 3, metadata: [UInt8](repeating: 4, count: 10)).changed)
            #expect(try await client.submit(board: "fill", player: "small", score: 4, metadata: [5]).changed)
            #expect(try await client.submit(board: "fill", player: "small", score: 5).changed)
            #expect(try await client.entries(board: "fill", players: ["small"]).entries.first?.metadata == [5])
            try await client.deleteBoard("fill")
            let accepted = try await client.submit(board: "fresh", player: "newcomer", score: 1)
            #expect(accepted.created)
            try await client.close()
        }
    }

    @Test("a memory ceiling below what the server already uses at start-up is logged, not silent")
    func ceilingBelowStartingMemory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServerProcess(arguments: ["--data-dir", directory.path, "--max-memory", "1K"]) { server in
            #expect(server.log.contains("is below what the process already holds"), "\(server.log)")
        }
    }

    /// A season reset cannot be cancelled either: a CANCELLED answer would say the board was not
    /// reset while it was.
    @Test("a cancel of a running reset_board says it was not cancelled, and the reset's result arrives")
    func resetIsNotCancelled() async throws {
        try await withServer { server in
            let connection = try RawConnection(port: server.localPort, timeoutSeconds: 30)
            _ = connection.handshake()
            connection.send(RequestEnvelope(callID: 1, method: .submit(SubmitRequest(boardID: "season", playerID: "p", score: 1))))
            #expect(connection.readFrame()?.status == nil)
            var burst = ByteBufferBuilder()
            burst.append(RequestEnvelope(callID: 2, method: .resetBoard(boardID: "season")))
            burst.append(RequestEnvelope(callID: 3, method: .cancel(callID: 2)))
            connection.send(burst.bytes)
            var answers: [UInt64: ResponseEnvelope] = [:]
            while answers[2] == nil || answers[3] == nil {
                guard let frame = connection.readFrame() else { break }
                answers[frame.callID] = frame
            }
            #expect(answers[3]?.result == .cancel(cancelled: false))
            guard case .resetBoard(let reset)? = answers[2]?.result else {
                Issue.record("the reset was not answered with its result: \(String(describing: answers[2]))")
                return
            }
            #expect(reset.archivedPeriodID == 1 && reset.archivedEntries == 1)
        }
    }

    /// Frames sent in one write are handled in one read, before any deferred work can finish (its
    /// completion runs on the same loop): the backup is still running when the cancel and the
    /// reuse of its call id arrive.
    @Test("a backup cannot be cancelled: the cancel says so, the call keeps its id and slot, and its result arrives")
    func backupIsNotCancelled() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try await withServer(configure: {
            $0.durability = .fsync
            $0.dataDirectory = directory.path + "/data"
            $0.limits.maxInflightCalls = 1
        }) { server in
            // Backups wait for an fsync, which a machine busy with other I/O can hold for seconds.
            let connection = try RawConnection(port: server.localPort, timeoutSeconds: 30)
            _ = connection.handshake()
            connection.send(RequestEnvelope(callID: 1, method: .submit(SubmitRequest(boardID: "b", playerID: "p", score: 1))))
            #expect(connection.readFrame()?.status == nil)
            var burst = ByteBufferBuilder()
            burst.append(RequestEnvelope(callID: 7, method: .backup(destination: directory.path + "/first")))
            burst.append(RequestEnvelope(callID: 8, method: .cancel(callID: 7)))
            burst.append(RequestEnvelope(callID: 7, method: .backup(destination: directory.path + "/second")))
            burst.append(RequestEnvelope(callID: 9, method: .ping(payload: [])))
            connection.send(burst.bytes)
            var answers: [UInt64: [ResponseEnvelope]] = [:]
            while answers[7, default: []].count < 2 || answers[8] == nil || answers[9] == nil {
                guard let frame = connection.readFrame() else { break }
                answers[frame.callID, default: []].append(frame)
            }
            #expect(answers[8]?.first?.result == .cancel(cancelled: false))
            let seven = answers[7] ?? []
            #expect(seven.count == 2)
            // The reused id is refused while the backup holds it; then the backup's own answer.
            #expect(seven.first?.status?.code == .invalidArgument)
            #expect(seven.first?.status?.message.contains("already in flight") == true)
            guard case .backup(let report)? = seven.last?.result else {
                Issue.record("the backup was not answered with its report: \(String(describing: seven.last))")
                return
            }
            #expect(report.files > 0)
            #expect(FileManager.default.fileExists(atPath: directory.path + "/first"))
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/second"))
            // Its slot was held until then: the ping, sent while the backup ran, was refused.
            #expect(answers[9]?.first?.status?.code == .resourceExhausted)
        }
    }
}

/// Concatenates request frames so a test can send a burst in one write.
struct ByteBufferBuilder {
    var bytes: [UInt8] = []

    mutating func append(_ request: RequestEnvelope) {
        var buffer = ByteBuffer()
        FrameEncoding.encodeRequestFrame(request, into: &buffer)
        bytes += Array(buffer.readableBytesView)
    }
}

import NIOCore
