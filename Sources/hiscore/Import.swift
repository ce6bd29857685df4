import ArgumentParser
import Foundation
import HiscoreAuth
import HiscoreClient
import HiscoreCore
import HiscoreWire

#if canImport(Glibc)
import Glibc
#endif

/// `hiscore import BOARD FILE`: loads entries into a board, from what `hiscore export` writes
/// (JSON lines, its default, or CSV: moving a board between servers) or from a Redis sorted set
/// dumped with `redis-cli --raw ZRANGE KEY 0 -1 WITHSCORES` (migrating from Redis).
///
/// Rows become submits in batches (skip_ranks: nobody reads the ranks), applied with the board's
/// operator in the file's order (a new player gets the row's score whatever the operator: on a
/// decrement board the score is sent negated, since the operator negates a new player's first
/// decrement), so tied scores rank in that order (an export lists them best
/// first, which keeps their order). A batch's items for different players may be applied in any
/// order (docs/protocol.md), so a row tied with one already in the batch starts the next batch:
/// a board of few distinct scores imports in more, smaller calls. The file is read as it is sent,
/// in constant memory (lines are bounded). A row that cannot be read stops the import at that
/// line (the batches before it are applied); a row that cannot be written (an invalid id,
/// metadata over the board's limit: checked here, or refused by the server) is reported and the
/// rest goes on. Exit status 0 only when every row was applied.
struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load entries into a board: hiscore import BOARD FILE [--format auto|jsonl|csv|redis]",
        discussion: """
            auto (the default): jsonl when the first line is a JSON object, else csv. jsonl: one \
            JSON object per line with player_id and score, subscore and metadata_base64 optional, \
            other fields (rank, reached_at_us) ignored: what `hiscore export` writes. csv: the \
            header names the same columns: what `hiscore export --format csv` writes. redis: \
            member and score lines alternating, as printed by \
            `redis-cli --raw ZRANGE KEY 0 -1 WITHSCORES` (scores must be integers). FILE - reads \
            standard input. Writes go through the board's operator (create the board first for \
            one other than the default: descending, best).
            """)
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String
    @Argument(help: "The file to read; - for standard input.") var file: String
    @Option(help: "auto (jsonl or csv, by the first line), jsonl, csv or redis.") var format: String = "auto"
    @Option(help: "Rows per submit_batch call (at most the server's max_batch_submits).") var batchSize: Int = 500

    func validate() throws {
        guard ["auto", "jsonl", "csv", "redis"].contains(format) else {
            throw ArgumentParser.ValidationError("--format must be auto, jsonl, csv or redis")
        }
        guard batchSize >= 1 else { throw ArgumentParser.ValidationError("--batch-size must be at least 1") }
    }

    func run() async throws {
        let input: LineReader
        do {
            input = try LineReader(path: file)
        } catch {
            printError("hiscore: \(error)")
            throw ExitCode(2)
        }
        var rows: any ImportRows
        do {
            switch format == "auto" ? try input.firstLineIsJSONObject() ? "jsonl" : "csv" : format {
            case "jsonl": rows = JSONLRows(input)
            case "redis": rows = RedisRows(input)
            default: rows = CSVRows(input)
            }
        } catch {
            printError("hiscore: \(file): \(error)")
            throw ExitCode(1)
        }
        var tally = ImportTally()
        try await withClient(connection) { client in
            // One look at the board (none yet: a submit creates it with the defaults).
            let config = (try? await client.describeBoard(board))?.config
            // Rows over the metadata limit are refused here: the server would refuse them too,
            // but one far over it could make the whole batch's frame too large to send.
            let metadataLimit = config?.limits.maxMetadataBytes ?? BoardLimits().maxMetadataBytes
            // A decrement board stores a new player's first decrement negated: sending the row's
            // score negated stores the row's score (a player already there gains it).
            let negates = config?.writeOperator == .decrement
            let perBatch = batchLimit(client.hello, metadataLimit: metadataLimit)
            var batch: [SubmitRequest] = []
            var lines: [Int] = []
            var tiesInBatch = Set<TieKey>()
            func flush() async throws {
                try await send(batch, lines, client, &tally)
                batch.removeAll(keepingCapacity: true)
                lines.removeAll(keepingCapacity: true)
                tiesInBatch.removeAll(keepingCapacity: true)
            }
            while true {
                let row: ImportRow?
                do {
                    row = try rows.next()
                } catch {
                    try await flush()
                    printError("hiscore: \(file): \(error); stopped there")
                    tally.report(board: board, json: connection.json)
                    throw ExitCode(1)
                }
                guard let row else { break }
                if let problem = Self.problem(with: row, metadataLimit: metadataLimit) {
                    tally.refuse(file: file, line: row.line, player: row.playerID, reason: problem)
                    continue
                }
                if negates, row.score == .min {
                    // 0 - x is Int64.min for no x: one decrement cannot store it.
                    tally.refuse(file: file, line: row.line, player: row.playerID, reason: "a decrement board cannot be given the score \(Int64.min) by one submit")
                    continue
                }
                let tie = TieKey(score: row.score, subscore: row.subscore)
                if tiesInBatch.contains(tie) { try await flush() }
                tiesInBatch.insert(tie)
                batch.append(SubmitRequest(
                    boardID: board, playerID: row.playerID, score: negates ? -row.score : row.score, subscore: row.subscore,
                    metadata: row.metadata, skipRanks: true))
                lines.append(row.line)
                if batch.count == perBatch { try await flush() }
            }
            try await flush()
        }
        tally.report(board: board, json: connection.json)
        if tally.refused > 0 { throw ExitCode(1) }
    }

    /// Why `row` cannot be written, checked before it is sent; nil when it can.
    static func problem(with row: ImportRow, metadataLimit: Int) -> String? {
        do throws(HiscoreCore.ValidationError) {
            try Identifier.validate(row.playerID, field: "player_id")
        } catch {
            return "\(error)"
        }
        if let metadata = row.metadata, metadata.count > metadataLimit {
            return "metadata of \(metadata.count) bytes, the board allows \(metadataLimit)"
        }
        return nil
    }

    /// Rows per call: what was asked, within the server's max_batch_submits and within the bound
    /// it puts on a batch's answer: each item counts max(96 + metadata limit, 256) bytes + its
    /// ids against max_frame_bytes (docs/protocol.md; 256 is room for a refusal's message).
    private func batchLimit(_ hello: ServerHello, metadataLimit: Int) -> Int {
        let perAnswer = max(96 + metadataLimit, 256) + board.utf8.count + Identifier.maxBytes
        let byFrame = max(1, Int(hello.maxFrameBytes) / perAnswer)
        return max(1, min(batchSize, Int(max(1, hello.maxBatchSubmits)), byFrame))
    }

    private func send(_ batch: [SubmitRequest], _ lines: [Int], _ client: HiscoreClient, _ tally: inout ImportTally) async throws {
        guard !batch.isEmpty else { return }
        let results: [SubmitResult]
        do {
            results = try await client.submitBatch(batch)
        } catch let error as HiscoreError {
            // The whole call failed (a lost connection, a refused batch): what was applied so far
            // is still worth knowing.
            printError("hiscore: \(file): the batch of lines \(lines.first ?? 0)...\(lines.last ?? 0) failed: \(error.code): \(error.message); stopped there")
            tally.report(board: board, json: connection.json)
            throw ExitCode(1)
        }
        for (index, result) in results.enumerated() {
            if let response = result.response, result.status.code == .ok {
                tally.applied += 1
                if response.created { tally.created += 1 }
            } else {
                tally.refuse(file: file, line: lines[index], player: batch[index].playerID, reason: "\(result.status.code): \(result.status.message)")
            }
        }
    }
}

/// What an import did, printed at its end.
struct ImportTally {
    var applied = 0
    var created = 0
    var refused = 0

    /// Counts a row that was not written, listing the first 20 on stderr.
    mutating func refuse(file: String, line: Int, player: String, reason: String) {
        refused += 1
        if refused <= 20 {
            // An over-long id is cut: it is quoted to find its line, not to be read in full.
            let shown = player.utf8.count > 160 ? String(player.prefix(160)) + "..." : player
            printError("hiscore: \(file):\(line): \(shown): \(reason)")
        } else if refused == 21 {
            printError("hiscore: more rows refused; only the first 20 are listed")
        }
    }

    func report(board: String, json: Bool) {
        if json {
            print(#"{"board_id":\#(EntryFormatting.quoted(board)),"applied":\#(applied),"created":\#(created),"refused":\#(refused)}"#)
        } else {
            print("imported into \(board): \(applied) \(applied == 1 ? "row" : "rows") applied (\(created) new \(created == 1 ? "player" : "players")), \(refused) refused")
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
    var description: String { line > 0 ? "line \(line): \(reason)" : reason }
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
        while let (number, line) = try input.nextLine() {
            // Spreadsheets start a UTF-8 file with a byte order mark.
            let text = number == 1 && line.hasPrefix("\u{FEFF}") ? String(line.dropFirst()) : line
            if text.isEmpty { continue }
            let fields = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard let columns else {
                columns = try Self.header(fields, line: number)
                continue
            }
            if text.contains("\"") { throw ImportError(line: number, reason: "quoted fields are not supported") }
            guard fields.count > max(columns.player, columns.score) else {
                throw ImportError(line: number, reason: "\(fields.count) fields: no \(columns.player > columns.score ? "player_id" : "score") column")
            }
            // Optional columns a row leaves out are empty.
            func optional(_ index: Int?) -> String { index.flatMap { $0 < fields.count ? fields[$0] : nil } ?? "" }
            let score = try integer(fields[columns.score], "score", line: number)
            let subscoreText = optional(columns.subscore)
            let subscore = subscoreText.isEmpty ? 0 : try integer(subscoreText, "subscore", line: number)
            var metadata: [UInt8]?
            let metadataText = optional(columns.metadata)
            if !metadataText.isEmpty {
                guard let bytes = Data(base64Encoded: metadataText) else {
                    throw ImportError(line: number, reason: "metadata_base64 is not base64")
                }
                metadata = [UInt8](bytes)
            }
            return ImportRow(line: number, playerID: fields[columns.player], score: score, subscore: subscore, metadata: metadata)
        }
        // A header-only file is an empty board's export; an empty one is a failed export.
        guard columns != nil else {
            throw ImportError(line: 0, reason: "the input is empty: a CSV import needs at least its header line")
        }
        return nil
    }

    private static func header(_ names: [String], line: Int) throws(ImportError) -> (Int, Int, Int?, Int?) {
        let trimmed = names.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let player = trimmed.firstIndex(of: "player_id"), let score = trimmed.firstIndex(of: "score") else {
            let hint = names.first?.hasPrefix("{") == true ? "; this looks like JSON lines: pass --format jsonl" : ""
            throw ImportError(line: line, reason: "the header must name the columns player_id and score (got \(trimmed.joined(separator: ",")))\(hint)")
        }
        return (player, score, trimmed.firstIndex(of: "subscore"), trimmed.firstIndex(of: "metadata_base64"))
    }
}

/// What `hiscore export` writes by default: a JSON object per line, read for `player_id`,
/// `score` and the optional `subscore` and `metadata_base64` (other fields are ignored).
struct JSONLRows: ImportRows {
    private let input: LineReader

    init(_ input: LineReader) { self.input = input }

    mutating func next() throws(ImportError) -> ImportRow? {
        while let (number, line) = try input.nextLine() {
            let text = number == 1 && line.hasPrefix("\u{FEFF}") ? String(line.dropFirst()) : line
            if text.allSatisfy(\.isWhitespace) { continue }
            guard let object = JSONValue.parse(Array(text.utf8)), case .object = object else {
                throw ImportError(line: number, reason: "not a JSON object")
            }
            guard let player = object["player_id"]?.string else {
                throw ImportError(line: number, reason: "no player_id string")
            }
            guard let score = try Self.integer(object["score"], "score", line: number) else {
                throw ImportError(line: number, reason: "no score")
            }
            let subscore = try Self.integer(object["subscore"], "subscore", line: number) ?? 0
            var metadata: [UInt8]?
            if let encoded = object["metadata_base64"] {
                guard let text = encoded.string, let bytes = Data(base64Encoded: text) else {
                    throw ImportError(line: number, reason: "metadata_base64 is not a base64 string")
                }
                if !bytes.isEmpty { metadata = [UInt8](bytes) }
            }
            return ImportRow(line: number, playerID: player, score: score, subscore: subscore, metadata: metadata)
        }
        return nil
    }

    /// An int64 JSON number, read from its text (a fraction, an exponent or one beyond int64 is
    /// refused, not rounded); nil when absent.
    private static func integer(_ value: JSONValue?, _ field: String, line: Int) throws(ImportError) -> Int64? {
        guard let value else { return nil }
        guard case .number(let text) = value, let exact = Int64(text) else {
            throw ImportError(line: line, reason: "\(field) is not an int64 integer")
        }
        return exact
    }
}

/// `redis-cli --raw ZRANGE KEY 0 -1 WITHSCORES`: a member line, then its score line.
struct RedisRows: ImportRows {
    private let input: LineReader

    init(_ input: LineReader) { self.input = input }

    mutating func next() throws(ImportError) -> ImportRow? {
        guard let (number, member) = try input.nextLine() else { return nil }
        if member.isEmpty {
            // Blank lines may end the file; anywhere else an empty member (no player id can be
            // empty) would pair every later score with the wrong member.
            while let (_, next) = try input.nextLine() {
                guard next.isEmpty else { throw ImportError(line: number, reason: "empty member line (ids cannot be empty)") }
            }
            return nil
        }
        guard let (scoreLine, score) = try input.nextLine() else {
            throw ImportError(line: number, reason: "member \(member) has no score line after it")
        }
        // Redis scores are doubles; Hiscore's are int64: only integral values within range come over.
        let value: Int64
        if let exact = Int64(score) {
            value = exact
        } else if !score.lowercased().contains("x"), let double = Double(score), double.rounded() == double,
            double >= -0x1p63, double < 0x1p63
        {
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

/// Lines of a file or of standard input, read one at a time without their line ends ("\r\n"
/// too), in constant memory: a line longer than `maxLineBytes` is an error at its number (an
/// export's lines are under 6 KiB: 128-byte ids, 4 KiB of metadata in base64).
final class LineReader {
    static let maxLineBytes = 1 << 20

    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let path: String
    private var chunk = [UInt8](repeating: 0, count: 64 << 10)
    private var chunkStart = 0
    private var chunkEnd = 0
    private var atEnd = false
    private var number = 0

    init(path: String) throws {
        self.path = path == "-" ? "standard input" : path
        if path == "-" {
            descriptor = STDIN_FILENO
            ownsDescriptor = false
        } else {
            let opened = open(path, O_RDONLY)
            guard opened >= 0 else { throw ArgumentParser.ValidationError("cannot open \(path): \(String(cString: strerror(errno)))") }
            descriptor = opened
            ownsDescriptor = true
        }
        // A directory opens, and then reads fail: say so instead of importing nothing.
        var status = stat()
        if fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR {
            if ownsDescriptor { close(descriptor) }
            throw ArgumentParser.ValidationError("cannot import \(path): it is a directory")
        }
    }

    deinit {
        if ownsDescriptor { close(descriptor) }
    }

    /// Whether the first line that is not blank starts a JSON object (it is read again by the
    /// next `nextLine`, as are the blank ones before it).
    func firstLineIsJSONObject() throws(ImportError) -> Bool {
        var seen: [(Int, String)] = []
        while let line = try nextLine() {
            seen.append(line)
            let text = line.1.drop { $0 == "\u{FEFF}" || $0.isWhitespace }
            if !text.isEmpty { break }
        }
        unread = seen + unread
        return seen.last?.1.drop { $0 == "\u{FEFF}" || $0.isWhitespace }.first == "{"
    }

    /// Lines read ahead by `firstLineIsJSONObject`, handed out first.
    private var unread: [(Int, String)] = []

    /// The next line and its 1-based number, nil at the end of the input.
    func nextLine() throws(ImportError) -> (Int, String)? {
        if !unread.isEmpty { return unread.removeFirst() }
        var line: [UInt8] = []
        var sawAnything = false
        while true {
            if chunkStart == chunkEnd {
                if atEnd { break }
                try refill()
                if chunkStart == chunkEnd { break }
            }
            sawAnything = true
            let available = chunk[chunkStart..<chunkEnd]
            if let newline = available.firstIndex(of: 0x0A) {
                try append(chunk[chunkStart..<newline], to: &line)
                chunkStart = newline + 1
                return finish(line)
            }
            try append(available, to: &line)
            chunkStart = chunkEnd
        }
        return sawAnything ? finish(line) : nil  // a last line without its line end
    }

    private func finish(_ bytes: [UInt8]) -> (Int, String) {
        number += 1
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0D { end -= 1 }
        return (number, String(decoding: bytes[..<end], as: UTF8.self))
    }

    private func append(_ bytes: ArraySlice<UInt8>, to line: inout [UInt8]) throws(ImportError) {
        guard line.count + bytes.count <= Self.maxLineBytes else {
            throw ImportError(line: number + 1, reason: "longer than \(Self.maxLineBytes) bytes")
        }
        line.append(contentsOf: bytes)
    }

    private func refill() throws(ImportError) {
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                chunkStart = 0
                chunkEnd = count
                return
            }
            if count == 0 {
                atEnd = true
                return
            }
            if errno == EINTR { continue }
            throw ImportError(line: number + 1, reason: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
    }
}
