import ArgumentParser
import class Foundation.ISO8601DateFormatter
import struct Foundation.Date
import struct Foundation.TimeZone
import HiscoreAuth
import HiscoreClient
import HiscoreCore
import HiscoreWire
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// `hiscore`: a command-line client for scripts and humans.
@main
struct HiscoreCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hiscore",
        abstract: "Command-line client for a Hiscore server.",
        version: HiscoreVersion.current,
        subcommands: [
            Submit.self, Rank.self, Top.self, Around.self, Boards.self, Describe.self, CreateBoard.self, DeleteBoard.self, Watch.self,
            ResetBoard.self, ErasePlayer.self, Export.self, Import.self, Backup.self, MintToken.self,
        ])
}

struct ConnectionOptions: ParsableArguments {
    @Option(help: "Server address HOST:PORT, an IPv6 host in brackets ([::1]:7450) (HISCORE_ADDR). Default 127.0.0.1:7450.")
    var addr: String?

    @Flag(help: "Print JSON instead of text: one object per line (JSON Lines), one per entry for lists; watch --top prints each window as an array.")
    var json = false

    @Option(help: "API key or player token (HISCORE_TOKEN); needed when the server has keys configured.")
    var token: String?

    @Flag(help: "Connect with TLS, trusting the system's CAs (HISCORE_TLS=1).")
    var tls = false

    @Option(help: "Connect with TLS, trusting only the CA certificates in this PEM file (HISCORE_TLS_CA).")
    var tlsCa: String?

    /// nil = plain TCP.
    var clientTLS: ClientTLS? {
        if let file = tlsCa ?? getenvString("HISCORE_TLS_CA") { return ClientTLS(trust: .caFile(file)) }
        let fromEnvironment = ["1", "true", "yes", "on"].contains(getenvString("HISCORE_TLS")?.lowercased() ?? "")
        return tls || fromEnvironment ? ClientTLS() : nil
    }

    /// The address connected to, as given (--addr, HISCORE_ADDR or the default).
    var address: String { addr ?? getenvString("HISCORE_ADDR") ?? "127.0.0.1:7450" }

    func connect() async throws -> HiscoreClient {
        let text = address
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            throw ValidationError("--addr must be HOST:PORT, got '\(text)'")
        }
        // Out of range, the port would wrap (99999 connects to 34463).
        guard (1...65535).contains(port) else {
            throw ValidationError("--addr: port \(port) is not in 1...65535, got '\(text)'")
        }
        var host = text[..<colon]
        // An IPv6 address is written in brackets ("[::1]:7450"), as in URLs.
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        let client = try await HiscoreClient.connect(host: String(host), port: port, tls: clientTLS)
        if let token = token ?? getenvString("HISCORE_TOKEN") {
            do {
                try await client.authenticate(token: token)
            } catch {
                try? await client.close()
                throw error
            }
        }
        return client
    }

    private func getenvString(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}

/// Runs `body` with a connected client and turns a server error into a one-line message and a
/// non-zero exit code.
func withClient(_ options: ConnectionOptions, _ body: (HiscoreClient) async throws -> Void) async throws {
    let client: HiscoreClient
    do {
        client = try await options.connect()
    } catch let error as ArgumentParser.ValidationError {
        printError("hiscore: \(error)")
        throw ExitCode(64)
    } catch let error as HiscoreError where error.code == .unauthenticated {
        // Connected; the token was refused (the only UNAUTHENTICATED a connect can bring).
        printError("hiscore: \(error.code): \(error.message) (the token given by --token or HISCORE_TOKEN)")
        throw ExitCode(1)
    } catch {
        printError("hiscore: cannot connect to \(options.address): \(connectFailure(error))")
        throw ExitCode(2)
    }
    do {
        try await body(client)
        try? await client.close()
    } catch let error as HiscoreError {
        try? await client.close()
        printError("hiscore: \(error.code): \(error.message)\(options.credentialHint(for: error))")
        throw ExitCode(1)
    }
}

extension ConnectionOptions {
    /// What a CLI user can do about a missing credential; the server's message speaks of the
    /// protocol ("send authenticate {token}"), which a command line does not show.
    func credentialHint(for error: HiscoreError) -> String {
        guard error.code == .unauthenticated, token == nil, getenv("HISCORE_TOKEN") == nil else { return "" }
        return " (hiscore: pass --token KEY or set HISCORE_TOKEN)"
    }
}

/// A connection failure in a line: the system's reason where NIO wraps one (refused, reset,
/// unreachable), with a hint for the usual cause.
func connectFailure(_ error: any Error) -> String {
    var errno: Int32?
    if let failure = error as? NIOConnectionError {
        errno = failure.connectionErrors.lazy.compactMap { ($0.error as? IOError)?.errnoCode }.first
    } else if let failure = error as? IOError {
        errno = failure.errnoCode
    }
    guard let errno, let reason = strerror(errno).map({ String(cString: $0) }) else { return "\(error)" }
    return errno == ECONNREFUSED ? "\(reason.lowercased()) (is hiscored running on that address?)" : reason.lowercased()
}

func printError(_ text: String) {
    var stderr = StandardError()
    print(text, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        bytes.withUnsafeMutableBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

extension RankMode: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "ordinal": self = .ordinal
        case "competition": self = .competition
        case "dense": self = .dense
        default: return nil
        }
    }

    /// How `--help` shows a default: the word the option takes, not the raw value.
    public var defaultValueDescription: String {
        switch self {
        case .ordinal: "ordinal"
        case .competition: "competition"
        case .dense: "dense"
        }
    }
}

extension SortOrder: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "desc", "descending": self = .descending
        case "asc", "ascending": self = .ascending
        default: return nil
        }
    }

    public var defaultValueDescription: String { self == .descending ? "desc" : "asc" }
}

extension WriteOperator: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "best": self = .best
        case "set": self = .set
        case "incr", "increment": self = .increment
        case "decr", "decrement": self = .decrement
        default: return nil
        }
    }

    public var defaultValueDescription: String {
        switch self {
        case .best: "best"
        case .set: "set"
        case .increment: "incr"
        case .decrement: "decr"
        }
    }
}

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a score: hiscore submit BOARD PLAYER SCORE",
        discussion: "A negative score goes after --, which ends the options (so they come before it): hiscore submit golf alice --json -- -5")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String
    @Argument var player: String
    @Argument(help: "Score (int64; a negative one after --).") var score: Int64
    @Option(parsing: .unconditional, help: "Subscore (int64).") var subscore: Int64 = 0
    @Option(help: "Metadata to store with the entry, as text (its UTF-8 bytes); without it the stored metadata is kept.")
    var metadata: String?
    @Option(help: "Metadata as base64url bytes (for binary metadata).") var metadataBase64: String?
    @Flag(help: "Ask for no ranks in the answer (cheaper on a board split over shards).") var skipRanks = false

    func validate() throws {
        if metadata != nil && metadataBase64 != nil { throw ValidationError("give --metadata or --metadata-base64, not both") }
        if let metadataBase64, Base64URL.decode(metadataBase64) == nil {
            throw ValidationError("--metadata-base64: '\(metadataBase64)' is not base64url")
        }
    }

    func run() async throws {
        let bytes = metadata.map { Array($0.utf8) } ?? metadataBase64.flatMap { Base64URL.decode($0) }
        try await withClient(connection) { client in
            let result = try await client.submit(
                board: board, player: player, score: score, subscore: subscore, metadata: bytes, skipRanks: skipRanks)
            if skipRanks && !connection.json {
                print("\(result.entry.playerID) on \(board) with \(result.entry.score) (\(result.created ? "new" : result.changed ? "changed" : "score unchanged"); ranks not asked)")
            } else if connection.json {
                print(EntryFormatting.json(result.entry, extra: [
                    ("previous_rank", "\(result.previousRank)"), ("changed", "\(result.changed)"), ("created", "\(result.created)"),
                ]))
            } else {
                let movement = result.previousRank == 0 ? "new" : "was #\(result.previousRank)"
                print("\(result.entry.playerID) is #\(result.entry.rank) on \(board) with \(result.entry.score) (\(movement)\(result.changed ? "" : ", score unchanged"))")
            }
        }
    }
}

struct Rank: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A player's rank: hiscore rank BOARD PLAYER")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String
    @Argument var player: String
    @Option(help: "ordinal, competition or dense.") var mode: RankMode?
    @Option(help: "An archived period (see describe); 0 = live.") var period: UInt64 = 0

    func run() async throws {
        try await withClient(connection) { client in
            let result = try await client.rank(board: board, player: player, mode: mode, period: period)
            if connection.json {
                print(EntryFormatting.json(result.entry, extra: [("board_size", "\(result.boardSize)")]))
            } else {
                print(EntryFormatting.table([result.entry]))
            }
        }
    }
}

struct Top: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The best entries: hiscore top BOARD [-n 10] [--offset K | --after CURSOR]")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String
    @Option(name: .short, help: "How many entries.") var n: UInt32 = 10
    @Option(help: "Skip this many entries.") var offset: UInt64 = 0
    @Option(help: "Continue after a page: the cursor the last one printed (stderr) as 'next page: --after CURSOR'.")
    var after: String?
    @Option(help: "ordinal, competition or dense.") var mode: RankMode?
    @Option(help: "An archived period (see describe); 0 = live.") var period: UInt64 = 0

    func validate() throws {
        if after != nil && offset != 0 { throw ValidationError("give --offset or --after, not both") }
        if let after, Base64URL.decode(after) == nil { throw ValidationError("--after: '\(after)' is not a cursor this command printed") }
    }

    func run() async throws {
        try await withClient(connection) { client in
            let page: TopResponse
            if let after, let cursor = Base64URL.decode(after) {
                page = try await client.top(board: board, limit: n, after: cursor, mode: mode, period: period)
            } else {
                page = try await client.top(board: board, limit: n, offset: offset, mode: mode, period: period)
            }
            print(connection.json ? EntryFormatting.jsonLines(page.entries) : EntryFormatting.table(page.entries))
            // On stderr: the entries stay the only output a script reads.
            if !page.nextCursor.isEmpty { printError("next page: --after \(Base64URL.encode(page.nextCursor))") }
        }
    }
}

struct Around: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Entries around a player: hiscore around BOARD PLAYER")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String
    @Argument var player: String
    @Option(help: "Better entries to show.") var before: UInt32 = 5
    @Option(help: "Worse entries to show.") var after: UInt32 = 5
    @Option(help: "ordinal, competition or dense.") var mode: RankMode?
    @Option(help: "An archived period (see describe); 0 = live.") var period: UInt64 = 0

    func run() async throws {
        try await withClient(connection) { client in
            let result = try await client.around(board: board, player: player, before: before, after: after, mode: mode, period: period)
            print(connection.json ? EntryFormatting.jsonLines(result.entries) : EntryFormatting.table(result.entries, highlight: player))
        }
    }
}

struct Boards: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List boards: hiscore boards")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in
            var after = ""
            var rows: [[String]] = []
            var jsonLines: [String] = []
            while true {
                // 0: the server's default page, which respects its max_page_entries (1000 did not).
                let page = try await client.listBoards(after: after, limit: 0)
                for board in page.boards {
                    let config = board.config
                    rows.append([config.id, "\(board.size)", "\(config.scoreOrder)", "\(config.writeOperator)", "\(config.rankMode)", "\(board.version)"])
                    jsonLines.append(#"{"board_id":\#(EntryFormatting.quoted(config.id)),"size":\#(board.size),"score_order":"\#(config.scoreOrder)","operator":"\#(config.writeOperator)","rank_mode":"\#(config.rankMode)","version":\#(board.version)}"#)
                }
                guard page.more, let last = page.boards.last else { break }
                after = last.config.id
            }
            if connection.json {
                print(jsonLines.joined(separator: "\n"))
            } else {
                print(TextTable.render(header: ["BOARD", "PLAYERS", "ORDER", "OPERATOR", "RANKS", "VERSION"], rows: rows))
            }
        }
    }
}

/// `hiscore describe BOARD`: a board's config, size and seasons, archived ones with the ids
/// `--period` takes.
struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A board's config, size and seasons: hiscore describe BOARD")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String

    func run() async throws {
        try await withClient(connection) { client in
            let info = try await client.describeBoard(board)
            let config = info.config
            let schedule = config.resetSchedule.map(ResetSpec.describe) ?? "none"
            if connection.json {
                let periods = info.periods.map {
                    #"{"period_id":\#($0.periodID),"started_at_us":\#($0.startedAtMicros),"ended_at_us":\#($0.endedAtMicros),"size":\#($0.size)}"#
                }
                print(#"{"board_id":\#(EntryFormatting.quoted(config.id)),"size":\#(info.size),"version":\#(info.version),"score_order":"\#(config.scoreOrder)","subscore_order":"\#(config.subscoreOrder)","operator":"\#(config.writeOperator)","rank_mode":"\#(config.rankMode)","max_entries":\#(config.limits.maxEntries),"max_metadata_bytes":\#(config.limits.maxMetadataBytes),"client_writes":\#(config.clientWrites),"reset":\#(ResetSpec.json(config.resetSchedule)),"current_period_id":\#(info.currentPeriodID),"current_period_started_at_us":\#(info.currentPeriodStartedAtMicros),"periods":[\#(periods.joined(separator: ","))]}"#)
                return
            }
            print("""
                board \(config.id): \(info.size) players, version \(info.version)
                  order \(config.scoreOrder) (subscore \(config.subscoreOrder)), operator \(config.writeOperator), ranks \(config.rankMode)
                  max entries \(config.limits.maxEntries == 0 ? "unlimited" : "\(config.limits.maxEntries)"), metadata up to \(config.limits.maxMetadataBytes) bytes, client writes \(config.clientWrites ? "on" : "off")
                  resets \(schedule); live period \(info.currentPeriodID) since \(Self.utc(info.currentPeriodStartedAtMicros))
                """)
            guard !info.periods.isEmpty else { return }
            let rows = info.periods.map { ["\($0.periodID)", Self.utc($0.startedAtMicros), Self.utc($0.endedAtMicros), "\($0.size)"] }
            print("archived periods (query them with --period ID):")
            print(TextTable.render(header: ["PERIOD", "STARTED (UTC)", "ENDED (UTC)", "PLAYERS"], rows: rows))
        }
    }

    static func utc(_ micros: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(micros) / 1_000_000))
    }
}

struct CreateBoard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create-board", abstract: "Create a board with a config.")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String
    @Option(help: "desc or asc.") var order: SortOrder = .descending
    @Option(help: "desc or asc.") var subscoreOrder: SortOrder = .descending
    @Option(name: .customLong("operator"), help: "best, set, incr or decr.") var writeOperator: WriteOperator = .best
    @Option(help: "ordinal, competition or dense.") var mode: RankMode = .ordinal
    @Option(help: "Maximum players (0 = unlimited).") var maxEntries: Int = 0
    @Option(help: "Largest metadata a player may store, in bytes (0...4096).") var maxMetadataBytes: Int = 256
    @Flag(help: "Let game clients with a player token submit their own scores.") var clientWrites = false
    @Option(help: "Season resets (UTC): daily@HH:MM, weekly@DAY@HH:MM (DAY 1=Monday..7), monthly@DAY@HH:MM (DAY 1..28).")
    var reset: String?
    @Option(help: "Archived periods to keep, with --reset (default 10).") var keepPeriods: Int?

    /// Checked before connecting, so that a bad --reset is reported as the usage error it is.
    func validate() throws {
        if reset == nil, keepPeriods != nil {
            throw ValidationError("--keep-periods needs --reset: a board without a schedule keeps the last \(ResetSchedule.defaultKeepPeriods) periods its reset-board calls archive")
        }
        if let keepPeriods, !(1...ResetSchedule.maxKeepPeriods).contains(keepPeriods) {
            throw ValidationError("--keep-periods must be in 1...\(ResetSchedule.maxKeepPeriods), got \(keepPeriods)")
        }
        if let reset { _ = try ResetSpec.parse(reset, keep: keepPeriods ?? 10) }
    }

    func run() async throws {
        try await withClient(connection) { client in
            let config = BoardConfig(
                id: board, scoreOrder: order, subscoreOrder: subscoreOrder, writeOperator: writeOperator, rankMode: mode,
                limits: BoardLimits(maxEntries: maxEntries, maxMetadataBytes: maxMetadataBytes), clientWrites: clientWrites,
                resetSchedule: try reset.map { try ResetSpec.parse($0, keep: keepPeriods ?? 10) })
            let info = try await client.createBoard(config)
            if connection.json {
                print(EntryFormatting.jsonObject([("board_id", EntryFormatting.quoted(info.config.id)), ("size", "\(info.size)")]))
            } else {
                print("board \(info.config.id): \(info.size) players")
            }
        }
    }
}

/// `daily@02:00`, `weekly@1@00:00`, `monthly@28@12:30`.
enum ResetSpec {
    /// The spec `--reset` takes for `schedule`, and how many periods it keeps.
    static func describe(_ schedule: ResetSchedule) -> String {
        "\(spec(schedule)), keeping \(schedule.keepPeriods) periods"
    }

    /// `schedule` as `--reset` takes it.
    static func spec(_ schedule: ResetSchedule) -> String {
        func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let clock = "\(twoDigits(schedule.minuteOfDay / 60)):\(twoDigits(schedule.minuteOfDay % 60))"
        return switch schedule.period {
        case .daily: "daily@\(clock)"
        case .weekly: "weekly@\(schedule.weekday)@\(clock)"
        case .monthly: "monthly@\(schedule.dayOfMonth)@\(clock)"
        }
    }

    /// `schedule` as a JSON object: its `--reset` spec and its fields; `null` without one.
    static func json(_ schedule: ResetSchedule?) -> String {
        guard let schedule else { return "null" }
        return EntryFormatting.jsonObject([
            ("spec", EntryFormatting.quoted(spec(schedule))), ("period", EntryFormatting.quoted("\(schedule.period)")),
            ("minute_of_day", "\(schedule.minuteOfDay)"), ("weekday", "\(schedule.weekday)"),
            ("day_of_month", "\(schedule.dayOfMonth)"), ("keep_periods", "\(schedule.keepPeriods)"),
        ])
    }

    static func parse(_ text: String, keep: Int) throws -> ResetSchedule {
        let parts = text.split(separator: "@").map(String.init)
        func minute(_ clock: String) throws -> Int {
            let hm = clock.split(separator: ":").compactMap { Int($0) }
            guard hm.count == 2, (0..<24).contains(hm[0]), (0..<60).contains(hm[1]) else {
                throw ValidationError("--reset: '\(clock)' is not HH:MM")
            }
            return hm[0] * 60 + hm[1]
        }
        switch (parts.first, parts.count) {
        case ("daily", 2): return ResetSchedule(period: .daily, minuteOfDay: try minute(parts[1]), keepPeriods: keep)
        case ("weekly", 3):
            guard let day = Int(parts[1]), (1...7).contains(day) else {
                throw ValidationError("--reset: the weekday must be 1 (Monday)...7 (Sunday), got '\(parts[1])'")
            }
            return ResetSchedule(period: .weekly, minuteOfDay: try minute(parts[2]), weekday: day, keepPeriods: keep)
        case ("monthly", 3):
            guard let day = Int(parts[1]), (1...28).contains(day) else {
                throw ValidationError("--reset: the day of the month must be 1...28 (every month has it), got '\(parts[1])'")
            }
            return ResetSchedule(period: .monthly, minuteOfDay: try minute(parts[2]), dayOfMonth: day, keepPeriods: keep)
        default:
            throw ValidationError("--reset must be daily@HH:MM, weekly@DAY@HH:MM or monthly@DAY@HH:MM")
        }
    }
}

struct ResetBoard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reset-board", abstract: "End a board's season now (admin).")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String

    func run() async throws {
        try await withClient(connection) { client in
            let result = try await client.resetBoard(board)
            if connection.json {
                print(EntryFormatting.jsonObject([
                    ("board_id", EntryFormatting.quoted(board)), ("archived_period_id", "\(result.archivedPeriodID)"),
                    ("archived_entries", "\(result.archivedEntries)"),
                ]))
            } else {
                print("board \(board): \(result.archivedEntries) entries archived as period \(result.archivedPeriodID) (query it with --period \(result.archivedPeriodID))")
            }
        }
    }
}

struct ErasePlayer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase-player", abstract: "Remove a player from every board and every archived period (admin).")
    @OptionGroup var connection: ConnectionOptions
    @Argument var player: String

    func run() async throws {
        try await withClient(connection) { client in
            let removed = try await client.erasePlayer(player)
            if connection.json {
                print(EntryFormatting.jsonObject([("player_id", EntryFormatting.quoted(player)), ("removed_entries", "\(removed)")]))
            } else {
                print("erased player \(player) (\(removed) entries)")
            }
        }
    }
}

struct DeleteBoard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete-board", abstract: "Delete a board and its entries.")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String

    func run() async throws {
        try await withClient(connection) { client in
            let removed = try await client.deleteBoard(board)
            if connection.json {
                print(EntryFormatting.jsonObject([("board_id", EntryFormatting.quoted(board)), ("removed_entries", "\(removed)")]))
            } else {
                print("deleted board \(board) (\(removed) entries)")
            }
        }
    }
}
