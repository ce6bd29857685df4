import ArgumentParser
import Foundation
import HiscoreAuth
import HiscoreClient
import HiscoreCore
import HiscoreWire

/// `hiscore watch BOARD --top 10` redraws a live table; `--player ID` prints rank changes.
struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Watch live standings: hiscore watch BOARD --top 10 | --player ID")
    @OptionGroup var connection: ConnectionOptions
    @Argument var board: String
    @Option(help: "Watch the best N entries.") var top: UInt32?
    @Option(help: "Watch one player's rank.") var player: String?
    @Option(help: "Minimum milliseconds between updates (server default 100, floor 20).") var interval: UInt32 = 0

    func validate() throws {
        guard (top == nil) != (player == nil) else { throw ValidationError("give exactly one of --top N or --player ID") }
    }

    func run() async throws {
        try await withClient(connection) { client in
            let target: SubscriptionTarget = top.map { .top($0) } ?? .player(player ?? "")
            let terminal = isatty(STDOUT_FILENO) == 1
            // A season reset ends the stream (ABORTED): watch goes on with the new period, as a
            // dashboard on a daily board should. A subscription refused before its first event
            // (its snapshot) is not retried: that error is the answer.
            while true {
                var view = StandingsView()
                var received = 0
                do {
                    for try await event in client.subscribe(board: board, target: target, minInterval: .milliseconds(Int(interval))) {
                        // Into a pipe stdout is block-buffered: each event would wait for 4 KiB
                        // more, and be lost when watch is stopped.
                        defer { fflush(nil) }  // nil: every output stream (stdout itself is not concurrency-safe to name)
                        view.apply(event)
                        received += 1
                        show(view, terminal: terminal)
                    }
                    return
                } catch let error as HiscoreError where error.code == .aborted && received > 0 {
                    printError("hiscore: \(board): season reset (\(error.message)); watching the new period")
                }
            }
        }
    }

    private func show(_ view: StandingsView, terminal: Bool) {
        if connection.json {
            if let change = view.player { print(EntryFormatting.json(change.entry, extra: [("previous_rank", "\(change.previousRank)"), ("present", "\(change.present)")])) }
            else { print("[" + view.window.map { EntryFormatting.json($0) }.joined(separator: ",") + "]") }
            return
        }
        if let change = view.player {
            let now = ISO8601DateFormatter().string(from: Date())
            if !change.present {
                print("\(now) \(change.entry.playerID) is not on \(board)")
            } else if change.previousRank == 0 {
                print("\(now) \(change.entry.playerID) is #\(change.entry.rank) with \(change.entry.score)")
            } else {
                let arrow = change.entry.rank < change.previousRank ? "up" : (change.entry.rank > change.previousRank ? "down" : "same")
                print("\(now) \(change.entry.playerID) is #\(change.entry.rank) (\(arrow) from #\(change.previousRank)) with \(change.entry.score)")
            }
        } else {
            // On a terminal the table is redrawn in place; into a file or a pipe, one after another.
            let clear = terminal ? "\u{1B}[2J\u{1B}[H" : ""
            print("\(clear)\(board) — top \(top ?? 0), board version \(view.boardVersion)\n")
            print(EntryFormatting.table(view.window))
        }
    }
}

/// `hiscore mint-token`: what a game server does to let a client read (and maybe submit).
struct MintToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mint-token", abstract: "Mint a player token (JWT HS256) with the server's token secret.")
    @Option(help: "The token secret (HISCORE_TOKEN_SECRET).") var secret: String?
    @Option(help: "Player id the token is bound to.") var player: String
    @Option(help: "Comma-separated boards it may read, or * for all.") var boards: String = "*"
    @Option(help: "Lifetime in seconds (1 ... 315360000, ten years).") var ttl: Int64 = 3600

    func validate() throws {
        guard (1...315_360_000).contains(ttl) else { throw ValidationError("--ttl must be 1 ... 315360000 seconds, got \(ttl)") }
        // The server refuses a token whose player or board is not an id: say so before minting it.
        do {
            try Identifier.validate(player, field: "--player")
            for board in boards.split(separator: ",") where board != "*" {
                try Identifier.validate(String(board), field: "--boards")
            }
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() throws {
        guard let secret = secret ?? ProcessInfo.processInfo.environment["HISCORE_TOKEN_SECRET"] else {
            throw ValidationError("give --secret or set HISCORE_TOKEN_SECRET")
        }
        let verifier: PlayerTokenVerifier
        do {
            verifier = try PlayerTokenVerifier(secret: secret)
        } catch {
            throw ValidationError("\(error)")
        }
        let now = Int64(Date().timeIntervalSince1970)
        print(verifier.mint(
            playerID: player, boards: boards.split(separator: ",").map(String.init), expiresAt: now + ttl, issuedAt: now))
    }
}
