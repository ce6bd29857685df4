import ArgumentParser
import HiscoreAuth
import Foundation
import HiscoreClient
import HiscoreWire

/// `hiscore export BOARD`: every entry, best first, as JSON lines or CSV (paged by cursor, so a
/// large board streams out in constant memory and the pages stay consistent under writes).
struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Export a board: hiscore export BOARD [--format jsonl|csv]")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String
    @Option(help: "jsonl or csv.") var format: String = "jsonl"
    @Option(help: "Entries per page (at most what the server and board allow).") var pageSize: UInt32 = 1000
    @Option(help: "An archived period (see describe); 0 = live.") var period: UInt64 = 0

    func validate() throws {
        guard format == "jsonl" || format == "csv" else { throw ValidationError("--format must be jsonl or csv") }
        if connection.json && format == "csv" { throw ValidationError("--json asks for JSON lines: give --format jsonl (the default), not csv") }
    }

    func run() async throws {
        try await withClient(connection) { client in
            if format == "csv" { print("rank,player_id,score,subscore,reached_at_us,metadata_base64") }
            // Within the server's max_page_entries (the default 1000 is over a smaller one), and
            // within what one answer can carry on this board (large-metadata boards fit fewer).
            let fits = AnswerBound(maxFrameBytes: Int(client.hello.maxFrameBytes))
                .entriesPerAnswer(try await client.describeBoard(board).config.limits)
            let pageSize = min(pageSize, max(1, client.hello.maxPageEntries), UInt32(clamping: fits))
            var page = try await client.top(board: board, limit: pageSize, period: period)
            while true {
                for entry in page.entries {
                    if format == "csv" {
                        // Ids are [A-Za-z0-9_.:-] and base64 has no comma: no quoting needed.
                        let metadata = Data(entry.metadata).base64EncodedString()
                        print("\(entry.rank),\(entry.playerID),\(entry.score),\(entry.subscore),\(entry.reachedAtMicros),\(metadata)")
                    } else {
                        print(EntryFormatting.json(entry, alwaysMetadata: true))
                    }
                }
                guard !page.nextCursor.isEmpty else { break }
                page = try await client.top(board: board, limit: pageSize, after: page.nextCursor, period: period)
            }
        }
    }
}

/// `hiscore backup DIR`: an online backup of the server's data dir into DIR on the server's machine.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Back up the server's data dir: hiscore backup DIR (admin)")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "A new or empty directory on the server's machine (a relative path is taken from this directory).")
    var destination: String

    func run() async throws {
        // The server takes absolute paths only: its working directory is not this one.
        var absolute = destination
        if !destination.hasPrefix("/"), let cwd = getcwd(nil, 0) {
            absolute = String(cString: cwd) + "/" + destination
            free(cwd)
        }
        try await withClient(connection) { client in
            let result = try await client.backup(to: absolute)
            if connection.json {
                print(EntryFormatting.jsonObject([
                    ("destination", JSONValue.quoted(result.destination)), ("files", "\(result.files)"),
                    ("linked_files", "\(result.linkedFiles)"), ("copied_bytes", "\(result.copiedBytes)"),
                ]))
            } else {
                print("backup in \(result.destination): \(result.files) files (\(result.linkedFiles) hard-linked, \(result.copiedBytes) bytes copied)")
                print("start a server from it with: hiscored --data-dir \(result.destination)")
            }
        }
    }
}
