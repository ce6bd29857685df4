import Foundation
import HiscoreClient
import HiscoreCore
import HiscoreServer
import HiscoreWire
import Testing
import HiscoreTestSupport

/// `hiscore import`: loading a board from an export's CSV or from a Redis ZRANGE dump.
@Suite("hiscore import: export round trip, Redis dumps, refused and unreadable rows")
struct CLIImportTests {
    private static func temporaryFile(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hiscore-import-\(UUID().uuidString).txt")
        try Data(text.utf8).write(to: url)
        return url
    }

    /// Every entry of a board, best first.
    private static func everything(_ client: HiscoreClient, _ board: String) async throws -> [WireEntry] {
        var entries: [WireEntry] = []
        var page = try await client.top(board: board, limit: 100)
        while true {
            entries += page.entries
            guard !page.nextCursor.isEmpty else { return entries }
            page = try await client.top(board: board, limit: 100, after: page.nextCursor)
        }
    }

    @Test("hiscore submit stores --metadata (text or base64url) within create-board's --max-metadata-bytes, and asks for no ranks with --skip-ranks")
    func submitMetadataAndSkipRanks() async throws {
        try await withServer(shards: 2) { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let created = try await runCLI(["create-board", "md", "--max-metadata-bytes", "8"] + addr)
            #expect(created.status == 0, "\(created)")
            let tooLong = try await runCLI(["submit", "md", "carl", "1", "--metadata", "nine bytes"] + addr)
            #expect(tooLong.status != 0 && tooLong.stderr.contains("INVALID_ARGUMENT"), "\(tooLong)")
            let text = try await runCLI(["submit", "md", "alice", "5", "--metadata", "hat=red"] + addr)
            #expect(text.status == 0, "\(text)")
            let binary = try await runCLI(["submit", "md", "bob", "7", "--metadata-base64", "AP8", "--skip-ranks", "--json"] + addr)
            #expect(binary.status == 0 && binary.stdout.contains("\"rank\":0"), "\(binary)")
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            #expect(try await client.rank(board: "md", player: "alice").entry.metadata == Array("hat=red".utf8))
            #expect(try await client.rank(board: "md", player: "bob").entry.metadata == [0, 255])
            try? await client.close()
        }
    }

    /// Refused before connecting, with the usage exit status (64) and the reason; no server runs.
    @Test("the CLI refuses bad arguments before connecting", arguments: [
        (["top", "b", "--addr", "127.0.0.1:99999"], "port 99999 is not in 1...65535"),
        (["top", "b", "--addr", "nonsense"], "--addr must be HOST:PORT"),
        (["top", "b", "--after", "!!"], "is not a cursor this command printed"),
        (["top", "b", "--after", "AAAA", "--offset", "5"], "give --offset or --after, not both"),
        (["create-board", "b", "--keep-periods", "5"], "a board without a schedule keeps the last 10 periods its reset-board calls archive"),
        (["create-board", "b", "--reset", "daily@00:00", "--keep-periods", "0"], "--keep-periods must be in 1...100, got 0"),
        (["create-board", "b", "--reset", "monthly@29@00:00"], "the day of the month must be 1...28"),
        (["create-board", "b", "--reset", "weekly@0@00:00"], "the weekday must be 1 (Monday)...7 (Sunday)"),
        (["import", "b", "-", "--format", "xml"], "--format must be auto, jsonl, csv or redis"),
        (["create-board", "b", "--reset", "daily@25:00"], "'25:00' is not HH:MM"),
        (["submit", "b", "p", "1", "--metadata", "x", "--metadata-base64", "eA"], "give --metadata or --metadata-base64"),
        (["submit", "b", "p", "1", "--metadata-base64", "!!"], "is not base64url"),
        (["mint-token", "--secret", "0123456789abcdef0123456789abcdef", "--player", "bad id"], "--player: ' ' at offset 3"),
    ])
    func refusedBeforeConnecting(arguments: [String], message: String) async throws {
        let result = try await runCLI(arguments)
        #expect(result.status == 64, "\(result)")
        #expect(result.stderr.contains(message), "\(result)")
    }

    @Test("a refused connection is said in a line, with the usual cause")
    func connectionRefusedInALine() async throws {
        // A port held by a socket bound but not listening: connections to it are refused, and
        // no other test can take it meanwhile.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let result = try await runCLI(["top", "b", "--addr", "127.0.0.1:\(port)"])
        #expect(result.status == 2, "\(result)")
        #expect(result.stderr == "hiscore: cannot connect to 127.0.0.1:\(port): connection refused (is hiscored running on that address?)\n", "\(result)")
    }

    @Test("hiscore top pages with --after: the cursor it prints on stderr continues where the page ended")
    func topPagesWithCursor() async throws {
        try await withServer(shards: 2) { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await client.submitBatch((1...15).map { SubmitRequest(boardID: "pg", playerID: "p\($0)", score: Int64($0)) })
            try? await client.close()
            let first = try await runCLI(["top", "pg", "-n", "10", "--json"] + addr)
            #expect(first.stdout.split(separator: "\n").count == 10, "\(first)")
            let cursor = try #require(first.stderr.split(separator: "\n").first { $0.hasPrefix("next page: --after ") })
                .dropFirst("next page: --after ".count)
            let second = try await runCLI(["top", "pg", "-n", "10", "--json", "--after", String(cursor)] + addr)
            let ranks = second.stdout.split(separator: "\n").compactMap { line in
                line.split(separator: ",").first.flatMap { Int($0.dropFirst("{\"rank\":".count)) }
            }
            #expect(ranks == Array(11...15), "\(second)")
            #expect(!second.stderr.contains("next page"), "\(second)")
        }
    }

    @Test("tables: ids left-aligned, numbers right-aligned, no trailing spaces")
    func tablesAlignWordsLeftAndNumbersRight() async throws {
        try await withServer(shards: 2) { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await client.submitBatch((1...12).map { SubmitRequest(boardID: "a-long-board-name", playerID: "p\($0)", score: Int64($0 * 100)) })
            _ = try await client.submit(board: "b", player: "alice", score: 7)
            try? await client.close()
            let boards = try await runCLI(["boards"] + addr)
            #expect(boards.stdout == """
                BOARD              PLAYERS  ORDER       OPERATOR  RANKS    VERSION
                a-long-board-name       12  descending  best      ordinal       12
                b                        1  descending  best      ordinal        1

                """, "\(boards)")
            let top = try await runCLI(["top", "a-long-board-name", "-n", "10"] + addr)
            let lines = top.stdout.split(separator: "\n")
            #expect(lines.first == "RANK  PLAYER  SCORE  SUBSCORE", "\(top)")
            #expect(lines.dropFirst().first == "   1  p12      1200         0", "\(top)")
            #expect(lines.last == "  10  p3        300         0", "\(top)")
        }
    }

    @Test("describe --json gives a season schedule as fields (its --reset spec among them), null without one")
    func describeScheduleAsJSON() async throws {
        try await withServer(shards: 2) { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            #expect(try await runCLI(["create-board", "weekly", "--reset", "weekly@3@02:00", "--keep-periods", "2"] + addr).status == 0)
            #expect(try await runCLI(["create-board", "plain"] + addr).status == 0)
            let weekly = try await runCLI(["describe", "weekly", "--json"] + addr)
            #expect(weekly.stdout.contains(#""reset":{"spec":"weekly@3@02:00","period":"weekly","minute_of_day":120,"weekday":3,"day_of_month":1,"keep_periods":2}"#), "\(weekly)")
            let plain = try await runCLI(["describe", "plain", "--json"] + addr)
            #expect(plain.stdout.contains(#""reset":null"#), "\(plain)")
        }
    }

    @Test("--json: create-board, reset-board, erase-player and delete-board print one JSON object each")
    func adminCommandsPrintJSON() async throws {
        try await withServer(shards: 2) { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)", "--json"]
            let created = try await runCLI(["create-board", "jb"] + addr)
            #expect(created.stdout == "{\"board_id\":\"jb\",\"size\":0}\n", "\(created)")
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            _ = try await client.submit(board: "jb", player: "alice", score: 5)
            try? await client.close()
            let reset = try await runCLI(["reset-board", "jb"] + addr)
            #expect(reset.stdout == "{\"board_id\":\"jb\",\"archived_period_id\":1,\"archived_entries\":1}\n", "\(reset)")
            let erased = try await runCLI(["erase-player", "alice"] + addr)
            #expect(erased.stdout == "{\"player_id\":\"alice\",\"removed_entries\":1}\n", "\(erased)")
            let deleted = try await runCLI(["delete-board", "jb"] + addr)
            #expect(deleted.stdout == "{\"board_id\":\"jb\",\"removed_entries\":0}\n", "\(deleted)")
        }
    }

    @Test("an exported board (JSON lines or CSV) imported into another ranks the same, ties, subscores and metadata included, whatever the batch size")
    func exportRoundTrip() async throws {
        let seed = DifferentialServerTests.seed()
        print("CLIImportTests.exportRoundTrip seed \(seed) (HISCORE_TEST_SEED)")
        var random = SplitMix64(seed: seed)
        try await withServer(shards: 2) { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            // Few distinct scores: most entries are ties, ranked by who reached them first.
            let submits = (0..<300).map { index in
                SubmitRequest(
                    boardID: "source", playerID: "p\(random.next() % 1000)", score: Int64(random.next() % 7) - 3,
                    subscore: Int64(random.next() % 2), metadata: index % 5 == 0 ? [UInt8(index % 256), 0, 255] : nil)
            }
            for chunk in stride(from: 0, to: submits.count, by: 50) {
                for submit in submits[chunk..<min(chunk + 50, submits.count)] {
                    _ = try await client.submit(
                        board: submit.boardID, player: submit.playerID, score: submit.score, subscore: submit.subscore,
                        metadata: submit.metadata)
                }
            }
            let source = try await Self.everything(client, "source")
            // The export's default (JSON lines) and CSV, each read by import's default (auto).
            for (format, exportFlags) in [("jsonl", [String]()), ("csv", ["--format", "csv"])] {
                let export = try await runCLI(["export", "source"] + exportFlags + addr)
                #expect(export.status == 0, "export: \(export.stderr)")
                #expect(export.stdout.hasPrefix(format == "csv" ? "rank,player_id," : "{\"rank\":1,"), "\(export.stdout.prefix(80))")
                let file = try Self.temporaryFile(export.stdout)
                defer { try? FileManager.default.removeItem(at: file) }
                for batchSize in ["1", "7", "500"] {
                    let board = "copy-\(format)-\(batchSize)"
                    let result = try await runCLI(["import", board, file.path, "--batch-size", batchSize] + addr)
                    #expect(result.status == 0, "import: \(result.stdout) \(result.stderr)")
                    #expect(result.stdout.contains("\(source.count) rows applied (\(source.count) new players), 0 refused"), "\(result.stdout)")
                    let copy = try await Self.everything(client, board)
                    #expect(copy.map(\.playerID) == source.map(\.playerID), "\(format), batch size \(batchSize): tie order differs")
                    #expect(copy.map(\.rank) == source.map(\.rank))
                    #expect(copy.map(\.score) == source.map(\.score) && copy.map(\.subscore) == source.map(\.subscore))
                    #expect(copy.map(\.metadata) == source.map(\.metadata))
                }
            }
            // A JSON line read as CSV is named for what it is; a fraction is not an integer.
            let asCSV = try Self.temporaryFile("{\"player_id\":\"a\",\"score\":1}\n")
            defer { try? FileManager.default.removeItem(at: asCSV) }
            let refused = try await runCLI(["import", "x", asCSV.path, "--format", "csv"] + addr)
            #expect(refused.status == 1 && refused.stderr.contains("this looks like JSON lines: pass --format jsonl"), "\(refused)")
            let fraction = try Self.temporaryFile("\n{\"player_id\":\"a\",\"score\":1}\n{\"player_id\":\"b\",\"score\":1.5}\n")
            defer { try? FileManager.default.removeItem(at: fraction) }
            let stopped = try await runCLI(["import", "y", fraction.path] + addr)
            #expect(stopped.status == 1 && stopped.stderr.contains("line 3: score is not an int64 integer; stopped there"), "\(stopped)")
            #expect(stopped.stdout.contains("1 row applied"), "\(stopped)")
            // --json shows an entry's metadata (export's encoding); without any, none.
            let withMetadata = try #require(source.first { !$0.metadata.isEmpty })
            let rank = try await runCLI(["rank", "source", withMetadata.playerID, "--json"] + addr)
            #expect(rank.stdout.contains("\"metadata_base64\":\"\(Data(withMetadata.metadata).base64EncodedString())\""), "\(rank)")
            let without = try #require(source.first { $0.metadata.isEmpty })
            let plain = try await runCLI(["rank", "source", without.playerID, "--json"] + addr)
            #expect(plain.status == 0 && !plain.stdout.contains("metadata_base64"), "\(plain)")
            try? await client.close()
        }
    }

    @Test("a JSON line that cannot be imported stops the import at its line, saying why", arguments: [
        (#"[1, 2]"#, "not a JSON object"),
        (#"{"score": 1}"#, "no player_id string"),
        (#"{"player_id": "a"}"#, "no score"),
        (#"{"player_id": "a", "score": 1, "subscore": "2"}"#, "subscore is not an int64 integer"),
        (#"{"player_id": "a", "score": 1e3}"#, "score is not an int64 integer"),
        (#"{"player_id": "a", "score": 1, "metadata_base64": "!!"}"#, "metadata_base64 is not a base64 string"),
    ])
    func badJSONLines(line: String, reason: String) async throws {
        try await withServer(shards: 1) { server in
            let file = try Self.temporaryFile("{\"player_id\":\"ok\",\"score\":5}\n" + line + "\n")
            defer { try? FileManager.default.removeItem(at: file) }
            let result = try await runCLI(["import", "j", file.path, "--format", "jsonl", "--addr", "127.0.0.1:\(server.localPort)"])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("line 2: \(reason); stopped there"), "\(result)")
            #expect(result.stdout.contains("1 row applied"), "\(result)")
        }
    }

    @Test("export pages a board allowing 4 KiB of metadata within one answer's bound, and import loads it back")
    func largeMetadataBoard() async throws {
        try await withServer(shards: 2) { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            try await client.createBoard(BoardConfig(id: "fat", limits: BoardLimits(maxMetadataBytes: 4096)))
            try await client.createBoard(BoardConfig(id: "copy", limits: BoardLimits(maxMetadataBytes: 4096)))
            for first in stride(from: 0, to: 300, by: 100) {
                _ = try await client.submitBatch((first..<(first + 100)).map {
                    SubmitRequest(boardID: "fat", playerID: "p\($0)", score: Int64($0), metadata: [UInt8](repeating: UInt8($0 % 256), count: 4096))
                })
            }
            let export = try await runCLI(["export", "fat", "--format", "csv"] + addr)
            #expect(export.status == 0, "export: \(export.stderr)")
            #expect(export.stdout.split(separator: "\n").count == 301)  // header + 300 rows
            let file = try Self.temporaryFile(export.stdout)
            defer { try? FileManager.default.removeItem(at: file) }
            let result = try await runCLI(["import", "copy", file.path] + addr)
            #expect(result.status == 0, "import: \(result.stdout) \(result.stderr)")
            let copy = try await Self.everything(client, "copy")
            #expect(copy.count == 300 && copy.first?.metadata == [UInt8](repeating: 43, count: 4096))  // p299: 299 % 256
            try? await client.close()
        }
    }

    @Test("a Redis ZRANGE WITHSCORES dump imports its integral scores; a fractional score stops the import at its line")
    func redisDump() async throws {
        try await withServer { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            let dump = try Self.temporaryFile("alice\n-5\nbob\n7\ncarol\n1e3\ndave\n9223372036854775807\n")
            defer { try? FileManager.default.removeItem(at: dump) }
            let result = try await runCLI(["import", "lb", dump.path, "--format", "redis", "--json"] + addr)
            #expect(result.status == 0, "import: \(result.stdout) \(result.stderr)")
            #expect(result.stdout.contains(#""applied":4,"created":4,"refused":0"#), "\(result.stdout)")
            let top = try await client.top(board: "lb")
            #expect(top.entries.map(\.playerID) == ["dave", "carol", "bob", "alice"])
            #expect(top.entries.map(\.score) == [Int64.max, 1000, 7, -5])

            let fractional = try Self.temporaryFile("erin\n1\nfrank\n2.5\ngina\n3\n")
            defer { try? FileManager.default.removeItem(at: fractional) }
            let stopped = try await runCLI(["import", "lb2", fractional.path, "--format", "redis"] + addr)
            #expect(stopped.status == 1)
            #expect(stopped.stderr.contains("line 4") && stopped.stderr.contains("2.5"), "\(stopped.stderr)")
            #expect(try await client.top(board: "lb2").entries.map(\.playerID) == ["erin"], "rows before the bad line are applied")
            try? await client.close()
        }
    }

    @Test("rows that cannot be written are reported by line and the rest is imported; the exit status says so")
    func refusedRows() async throws {
        try await withServer { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            try await client.createBoard(BoardConfig(id: "small", limits: BoardLimits(maxMetadataBytes: 2)))
            let csv = try Self.temporaryFile("""
                player_id,score,metadata_base64
                ok1,10,
                bad id!,20,
                big,30,AAAAAA==
                ok2,40,AAE=

                """)
            defer { try? FileManager.default.removeItem(at: csv) }
            let result = try await runCLI(["import", "small", csv.path] + addr)
            #expect(result.status == 1)
            #expect(result.stdout.contains("2 rows applied (2 new players), 2 refused"), "\(result.stdout)")
            #expect(result.stderr.contains(":3: bad id!: player_id") && result.stderr.contains(":4: big: metadata of 4 bytes, the board allows 2"), "\(result.stderr)")
            let top = try await client.top(board: "small")
            #expect(top.entries.map(\.playerID) == ["ok2", "ok1"] && top.entries.first?.metadata == [0, 1])

            let headerless = try Self.temporaryFile("ok3,50\n")
            defer { try? FileManager.default.removeItem(at: headerless) }
            let refused = try await runCLI(["import", "small", headerless.path] + addr)
            #expect(refused.status == 1 && refused.stderr.contains("player_id and score"), "\(refused.stderr)")
            let missing = try await runCLI(["import", "small", "/nonexistent/file.csv"] + addr)
            #expect(missing.status == 2 && missing.stderr.contains("cannot open"), "\(missing.stderr)")
            try? await client.close()
        }
    }

    @Test("batches fit a server with small frames and a board with little metadata; rows over the board's limits are refused by line, the rest imported")
    func batchesWithinTheServersBounds() async throws {
        try await withServer(configure: { $0.limits.maxFrameBytes = 65_536 }) { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            try await client.createBoard(BoardConfig(id: "tiny", limits: BoardLimits(maxMetadataBytes: 2)))
            var rows = ["player_id,score,metadata_base64"]
            for index in 0..<600 { rows.append("p\(index),\(index),AAE=") }
            rows.append("huge,1,\(Data(repeating: 7, count: 70_000).base64EncodedString())")  // over the limit and the frame
            rows.append("bad id!,2,")
            rows.append("last,3")  // optional columns left out
            let csv = try Self.temporaryFile(rows.joined(separator: "\r\n") + "\r\n")
            defer { try? FileManager.default.removeItem(at: csv) }
            let result = try await runCLI(["import", "tiny", csv.path] + addr)
            #expect(result.status == 1)
            #expect(result.stdout.contains("601 rows applied (601 new players), 2 refused"), "\(result.stdout) \(result.stderr)")
            #expect(result.stderr.contains(":602: huge: metadata of 70000 bytes, the board allows 2"), "\(result.stderr)")
            #expect(result.stderr.contains(":603: bad id!: "), "\(result.stderr)")
            #expect(try await client.describeBoard("tiny").size == 601)
            try? await client.close()
        }
    }

    @Test("a byte order mark, trailing blank lines and a header-only file are fine; empty input, a directory and an over-long line are errors")
    func inputShapes() async throws {
        try await withServer { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let bom = try Self.temporaryFile("\u{FEFF}player_id,score\r\nalice,10\r\n")
            let redis = try Self.temporaryFile("bob\n7\n\n\n\n")
            let headerOnly = try Self.temporaryFile("rank,player_id,score,subscore,reached_at_us,metadata_base64\n")
            let empty = try Self.temporaryFile("")
            let long = try Self.temporaryFile("player_id,score\nok,1\n" + String(repeating: "x", count: (1 << 20) + 10) + ",2\nafter,3\n")
            defer { for file in [bom, redis, headerOnly, empty, long] { try? FileManager.default.removeItem(at: file) } }

            #expect(try await runCLI(["import", "shapes", bom.path] + addr).status == 0)
            #expect(try await runCLI(["import", "shapes", redis.path, "--format", "redis"] + addr).status == 0)
            #expect(try await runCLI(["import", "shapes", headerOnly.path] + addr).status == 0)
            let emptyRun = try await runCLI(["import", "shapes", empty.path] + addr)
            #expect(emptyRun.status == 1 && emptyRun.stderr.contains("empty"), "\(emptyRun.stderr)")
            let directory = try await runCLI(["import", "shapes", FileManager.default.temporaryDirectory.path] + addr)
            #expect(directory.status == 2 && directory.stderr.contains("directory"), "\(directory.stderr)")
            let longRun = try await runCLI(["import", "shapes", long.path] + addr)
            #expect(longRun.status == 1 && longRun.stderr.contains("line 3: longer than"), "\(longRun.stderr)")
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            #expect(try await client.top(board: "shapes").entries.map(\.playerID) == ["alice", "bob", "ok"])
            try? await client.close()
        }
    }

    @Test("a decrement board moved by export and import keeps its scores (they came back negated); an archived season exports with --period")
    func decrementBoardAndArchivedSeason() async throws {
        try await withServer(shards: 2) { server in
            let addr = ["--addr", "127.0.0.1:\(server.localPort)"]
            let client = try await HiscoreClient.connect(host: "127.0.0.1", port: server.localPort)
            for id in ["src", "dst"] { try await client.createBoard(BoardConfig(id: id, writeOperator: .decrement)) }
            for (player, score) in [("alice", Int64(10)), ("bob", 3), ("carol", -7), ("dave", .max)] {
                _ = try await client.submit(board: "src", player: player, score: score)
            }
            let source = try await Self.everything(client, "src")
            let export = try await runCLI(["export", "src", "--format", "csv"] + addr)
            let file = try Self.temporaryFile(export.stdout)
            defer { try? FileManager.default.removeItem(at: file) }
            let result = try await runCLI(["import", "dst", file.path] + addr)
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
            let copy = try await Self.everything(client, "dst")
            #expect(copy.map(\.playerID) == source.map(\.playerID) && copy.map(\.score) == source.map(\.score),
                    "source \(source.map(\.score)), copy \(copy.map(\.score))")
            // Int64.min cannot be one decrement's result: refused by line, not stored wrong.
            let minimum = try Self.temporaryFile("player_id,score\nlow,\(Int64.min)\n")
            defer { try? FileManager.default.removeItem(at: minimum) }
            let refused = try await runCLI(["import", "dst", minimum.path] + addr)
            #expect(refused.status == 1 && refused.stderr.contains(":2: low: a decrement board cannot"), "\(refused.stderr)")

            let reset = try await client.resetBoard("src")
            _ = try await client.submit(board: "src", player: "new", score: 1)
            let archived = try await runCLI(["export", "src", "--format", "csv", "--period", "\(reset.archivedPeriodID)"] + addr)
            let rows = archived.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: ",")[1] }
            #expect(rows == source.map { Substring($0.playerID) }, "\(archived.stdout)")
            try? await client.close()
        }
    }
}
