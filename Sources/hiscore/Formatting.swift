import Foundation
import HiscoreWire

enum EntryFormatting {
    static func table(_ entries: [WireEntry], highlight: String? = nil) -> String {
        let rows = entries.map { entry in
            [(entry.playerID == highlight ? "> " : "") + "\(entry.rank)", entry.playerID, "\(entry.score)", "\(entry.subscore)"]
        }
        return TextTable.render(header: ["RANK", "PLAYER", "SCORE", "SUBSCORE"], rows: rows)
    }

    static func jsonLines(_ entries: [WireEntry]) -> String {
        entries.map { json($0) }.joined(separator: "\n")
    }

    /// One entry as a JSON object; `metadata_base64` when it has metadata (always, with
    /// `alwaysMetadata`: an export's lines keep one shape).
    static func json(_ entry: WireEntry, extra: [(String, String)] = [], alwaysMetadata: Bool = false) -> String {
        var fields = [
            ("rank", "\(entry.rank)"), ("player_id", quoted(entry.playerID)), ("score", "\(entry.score)"),
            ("subscore", "\(entry.subscore)"), ("reached_at_us", "\(entry.reachedAtMicros)"),
        ]
        if alwaysMetadata || !entry.metadata.isEmpty {
            fields.append(("metadata_base64", quoted(Data(entry.metadata).base64EncodedString())))
        }
        fields.append(contentsOf: extra)
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// Ids are restricted to [A-Za-z0-9_.:-], so quoting needs no escapes beyond the quotes.
    static func quoted(_ text: String) -> String { "\"\(text)\"" }

    /// One JSON object from fields whose values are already JSON.
    static func jsonObject(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }
}

/// Columns of plain text under a header: numbers right-aligned (a rank, a size), words left-aligned
/// (a board or player id), no trailing spaces.
enum TextTable {
    static func render(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        let numeric = header.indices.map { column in
            !rows.isEmpty && rows.allSatisfy { column < $0.count && isNumber($0[column]) }
        }
        func line(_ cells: [String]) -> String {
            let padded = cells.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: max(0, widths[index] - cell.count))
                return numeric[index] ? pad + cell : cell + pad
            }.joined(separator: "  ")
            return String(padded.reversed().drop { $0 == " " }.reversed())
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// An integer, or the highlighted row's rank ("> 3").
    private static func isNumber(_ cell: Substring) -> Bool {
        let digits = cell.hasPrefix("> ") ? cell.dropFirst(2) : cell
        let unsigned = digits.hasPrefix("-") ? digits.dropFirst() : digits
        return !unsigned.isEmpty && unsigned.allSatisfy { $0.isASCII && $0.isNumber }
    }

    private static func isNumber(_ cell: String) -> Bool { isNumber(cell[...]) }
}
