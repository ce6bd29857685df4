import ArgumentParser
import Foundation
import HiscoreClient
import HiscoreWire

#if canImport(Glibc)
import Glibc
#endif

/// `hiscore import BOARD FILE`: loads entries into a board, from the CSV `hiscore export --format
/// csv` writes (moving a board between servers) or from a Redis sorted set dumped with
/// `redis-cli --raw ZRANGE KEY 0 -1 WITHSCORES` (migrating from Redis).
///
/// Rows become submits in batches (skip_ranks: nobody reads the ranks), applied with the board's
/// operator in the file's order, so tied scores rank in that order (an export lists them best
/// first, which keeps their order). A batch's items for different players may be applied in any
/// order (docs/protocol.md), so a row tied with one already in the batch starts the next batch:
/// a board of few distinct scores imports in more, smaller calls. The file is read as it is sent, in constant memory. A row that
/// cannot be read stops the import at that line (the batches before it are applied); a row the
/// server refuses (an invalid id, metadata over the board's limit) is reported and the rest goes
/// on. Exit status 0 only when every row was applied.
struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load entries into a board: hiscore import BOARD FILE [--format csv|redis]",
        discussion: """
            csv: the header names the columns; player_id and score are required, subscore and \
            metadata_base64 optional, others (rank, reached_at_us) ignored: what `hiscore export \
            --format csv` writes. redis: member and score lines alternating, as printed by \
            `redis-cli --raw ZRANGE KEY 0 -1 WITHSCORES` (scores must be integers). FILE - reads \
            standard input. Writes go through the board's operator (create the board first for \
            one other than the default: descending, best).
            """)
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String
    @Argument(help: "The file to read; - for standard input.") var file: String
    @Option(help: "csv or redis.") var format: String = "csv"
    @Option(help: "Rows per submit_batch call (at most the server's max_batch_submits).") var batchSize: Int = 500

    func validate() throws {
        guard format == "csv" || format == "redis" else { throw ValidationError("--format must be csv or redis") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() async throws {
        let input: LineReader
        do {
            input = try LineReader(path: file)
        } catch {
            printError("hiscore: \(error)")
            throw ExitCode(2)
        }
        var rows: any ImportRows = format == "csv" ? CSVRows(input) : RedisRows(input)
        var tally = ImportTally()
        try await withClient(connection) { client in
            let perBatch = try await batchLimit(client)
            var batch: [SubmitRequest] = []
            var lines: [Int] = []
            var tiesInBatch = Set<TieKey>()
            while true {
                let row: ImportRow?
                do {
                    row = try rows.next()
                } catch {
                    try await send(batch, lines, client, &tally)
                    printError("hiscore: \(file): \(error); stopped there")
                    tally.report(board: board, json: connection.json)
                    throw ExitCode(1)
                }
                guard let row else { break }
                if !tiesInBatch.insert(TieKey(score: row.score, subscore: row.subscore)).inserted {
                    try await send(batch, lines, client, &tally)
                    batch.removeAll(keepingCapacity: true)
                    lines.removeAll(keepingCapacity: true)
                    tiesInBatch = [TieKey(score: row.score, subscore: row.subscore)]
                }
                batch.append(SubmitRequest(
                    boardID: board, playerID: row.playerID, score: row.score, subscore: row.subscore,
                    metadata: row.metadata, skipRanks: true))
                lines.append(row.line)
                if batch.count == perBatch {
                    try await send(batch, lines, client, &tally)
                    batch.removeAll(keepingCapacity: true)
                    lines.removeAll(keepingCapacity: true)
                    tiesInBatch.removeAll(keepingCapacity: true)
                }
            }
            try await send(batch, lines, client, &tally)
        }
        tally.report(board: board, json: connection.json)
        if tally.refused > 0 { throw ExitCode(1) }
    }

    /// Rows per call: what was asked, within the server's max_batch_submits and within what its
    /// answer bound lets through (each answer counts 96 bytes + ids + the board's metadata limit
    /// against max_frame_bytes, docs/protocol.md).
    private func batchLimit(_ client: HiscoreClient) async throws -> Int {
        let hello = client.hello
        var metadataLimit = Int(hello.maxMetadataBytes)
        if let info = try? await client.describeBoard(board) { metadataLimit = info.config.limits.maxMetadataBytes }
        let perAnswer = 96 + board.utf8.count + 128 + metadataLimit
        let byFrame = max(1, (Int(hello.maxFrameBytes) - 1024) / perAnswer)
        return max(1, min(batchSize, Int(max(1, hello.maxBatchSubmits)), byFrame))
    }

    private func send(_ batch: [SubmitRequest], _ lines: [Int], _ client: HiscoreClient, _ tally: inout ImportTally) async throws {
        guard !batch.isEmpty else { return }
        let results = try await client.submitBatch(batch)
        for (index, result) in results.enumerated() {
            if let response = result.response, result.status.code == .ok {
                tally.applied += 1
                if response.created { tally.created += 1 }
            } else {
                tally.refused += 1
                if tally.refused <= 20 {
                    printError("hiscore: \(file):\(lines[index]): \(batch[index].playerID): \(result.status.code): \(result.status.message)")
                } else if tally.refused == 21 {
                    printError("hiscore: more rows refused; only the first 20 are listed")
                }
            }
        }
    }
}

/// What an import did, printed at its end.
struct ImportTally {
    var applied = 0
    var created = 0
    var refused = 0

    func report(board: String, json: Bool) {
        if json {
            print(#"{"board_id":\#(EntryFormatting.quoted(board)),"applied":\#(applied),"created":\#(created),"refused":\#(refused)}"#)
        } else {
            print("imported into \(board): \(applied) rows applied (\(created) new players), \(refused) refused")
        }
    }
}

/// A (score, subscore): rows sharing one are applied in separate calls, in the file's order.
struct TieKey: Hashable {
    var score: Int64
    var subscore: Int64
}

struct ImportRow {
    var line: Int
    var playerID: String
    var score: Int64
    var subscore: Int64
    var metadata: [UInt8]?
}

struct ImportError: Error, CustomStringConvertible {
    var line: Int
    var reason: String
    var description: String { "line \(line): \(reason)" }
}

protocol ImportRows {
    /// The next row, nil at the end of the input.
    mutating func next() throws(ImportError) -> ImportRow?
}

/// The CSV of `hiscore export --format csv`: a header naming the columns, no quoting (ids are
/// [A-Za-z0-9_.:-] and base64 has no comma).
struct CSVRows: ImportRows {
    private let input: LineReader
    private var columns: (player: Int, score: Int, subscore: Int?, metadata: Int?)?

    init(_ input: LineReader) { self.input = input }

    mutating func next() throws(ImportError) -> ImportRow? {
        while let (number, text) = input.nextLine() {
            if text.isEmpty { continue }
            let fields = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard let columns else {
                columns = try Self.header(fields, line: number)
                continue
            }
            if text.contains("\"") { throw ImportError(line: number, reason: "quoted fields are not supported") }
            let needed = [columns.player, columns.score, columns.subscore ?? 0, columns.metadata ?? 0].max() ?? 0
            guard fields.count > needed else {
                throw ImportError(line: number, reason: "\(fields.count) fields, the header has more columns")
            }
            let score = try integer(fields[columns.score], "score", line: number)
            let subscore = try columns.subscore.map { (index) throws(ImportError) in
                fields[index].isEmpty ? 0 : try integer(fields[index], "subscore", line: number)
            } ?? 0
            var metadata: [UInt8]?
            if let index = columns.metadata, !fields[index].isEmpty {
                guard let bytes = Data(base64Encoded: fields[index]) else {
                    throw ImportError(line: number, reason: "metadata_base64 is not base64")
                }
                metadata = [UInt8](bytes)
            }
            return ImportRow(line: number, playerID: fields[columns.player], score: score, subscore: subscore, metadata: metadata)
        }
        return nil
    }

    private static func header(_ names: [String], line: Int) throws(ImportError) -> (Int, Int, Int?, Int?) {
        let trimmed = names.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let player = trimmed.firstIndex(of: "player_id"), let score = trimmed.firstIndex(of: "score") else {
            throw ImportError(line: line, reason: "the header must name the columns player_id and score (got \(trimmed.joined(separator: ",")))")
        }
        return (player, score, trimmed.firstIndex(of: "subscore"), trimmed.firstIndex(of: "metadata_base64"))
    }
}

/// `redis-cli --raw ZRANGE KEY 0 -1 WITHSCORES`: a member line, then its score line.
struct RedisRows: ImportRows {
    private let input: LineReader

    init(_ input: LineReader) { self.input = input }

    mutating func next() throws(ImportError) -> ImportRow? {
        guard let (number, member) = input.nextLine() else { return nil }
        guard let (scoreLine, score) = input.nextLine() else {
            if member.isEmpty { return nil }  // the file's last line end
            throw ImportError(line: number, reason: "member \(member) has no score line after it")
        }
        // Redis scores are doubles; Hiscore's are int64: only integral values within range come over.
        let value: Int64
        if let exact = Int64(score) {
            value = exact
        } else if let double = Double(score), double.rounded() == double, double >= -0x1p63, double < 0x1p63 {
            value = Int64(double)
        } else {
            throw ImportError(line: scoreLine, reason: "score \(score) of \(member) is not an int64 integer")
        }
        return ImportRow(line: number, playerID: member, score: value, subscore: 0, metadata: nil)
    }
}

private func integer(_ text: String, _ field: String, line: Int) throws(ImportError) -> Int64 {
    guard let value = Int64(text.trimmingCharacters(in: .whitespaces)) else {
        throw ImportError(line: line, reason: "\(field) '\(text)' is not an int64 integer")
    }
    return value
}

/// Lines of a file or of standard input, read one at a time (constant memory), without their
/// line ends ("\r\n" too).
final class LineReader {
    private let stream: UnsafeMutablePointer<FILE>
    private let ownsStream: Bool
    private var buffer: UnsafeMutablePointer<CChar>?
    private var capacity = 0
    private var number = 0

    init(path: String) throws {
        if path == "-" {
            // A stream of its own on descriptor 0 (the global `stdin` is not concurrency-safe to name).
            guard let input = fdopen(STDIN_FILENO, "r") else {
                throw ValidationError("cannot read standard input: \(String(cString: strerror(errno)))")
            }
            stream = input
            ownsStream = false
        } else {
            guard let opened = fopen(path, "r") else {
                throw ValidationError("cannot open \(path): \(String(cString: strerror(errno)))")
            }
            stream = opened
            ownsStream = true
        }
    }

    deinit {
        free(buffer)
        if ownsStream { fclose(stream) }
    }

    /// The next line and its 1-based number, nil at the end.
    func nextLine() -> (Int, String)? {
        let length = getline(&buffer, &capacity, stream)
        guard length >= 0, let buffer else { return nil }
        number += 1
        var end = length
        while end > 0, buffer[end - 1] == 0x0A || buffer[end - 1] == 0x0D { end -= 1 }
        let text = buffer.withMemoryRebound(to: UInt8.self, capacity: end) {
            String(decoding: UnsafeBufferPointer(start: $0, count: end), as: UTF8.self)
        }
        return (number, text)
    }
}
