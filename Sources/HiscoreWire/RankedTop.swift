import CProtobufC
import HiscoreCore
import HiscoreProtoC

/// A top or page result still in the engine's form: its `LeaderboardEntry` values with their
/// ranks beside them. A server answers pages with it so that encoding builds protobuf-c's
/// entries straight from the engine's values: a page of 50 otherwise made 50 `WireEntry` copies
/// (their strings and metadata retained, then released with both arrays), ~9% of the call's
/// server CPU. Never produced by decoding: a client reads the same bytes as `.top`.
public struct RankedTop: Sendable, Equatable {
    public var entries: [LeaderboardEntry]
    /// One per entry, 1-based, in the requested rank mode.
    public var ranks: [UInt64]
    public var nextCursor: [UInt8]
    public var boardSize: UInt64

    public init(entries: [LeaderboardEntry], ranks: [UInt64], nextCursor: [UInt8], boardSize: UInt64) {
        precondition(entries.count == ranks.count, "a rank per entry")
        self.entries = entries
        self.ranks = ranks
        self.nextCursor = nextCursor
        self.boardSize = boardSize
    }

    /// The result as a client decodes it.
    public var response: TopResponse {
        TopResponse(
            entries: zip(entries, ranks).map { WireEntry($0.0, rank: $0.1) }, nextCursor: nextCursor,
            boardSize: boardSize)
    }

    func protoC(in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__TopResponse> {
        let body = arena.message(hiscore__v1__top_response__init)
        body.pointee.n_entries = entries.count
        if !entries.isEmpty {
            let array = arena.allocate(UnsafeMutablePointer<Hiscore__V1__Entry>?.self, count: entries.count)
            for index in entries.indices {
                (array + index).initialize(to: WireEntry.protoC(entries[index], rank: ranks[index], in: arena))
            }
            body.pointee.entries = array
        }
        body.pointee.next_cursor = arena.binaryData(nextCursor)
        body.pointee.board_size = boardSize
        return body
    }
}

extension WireEntry {
    /// A board entry as the wire shows it: its sequence is the time it was reached.
    public init(_ entry: LeaderboardEntry, rank: UInt64) {
        self.init(
            playerID: entry.playerID, score: entry.score, subscore: entry.subscore, rank: rank,
            metadata: entry.metadata, reachedAtMicros: Self.reachedAtMicros(entry))
    }

    static func reachedAtMicros(_ entry: LeaderboardEntry) -> Int64 { Int64(truncatingIfNeeded: entry.sequence) }

    /// `WireEntry(entry, rank: rank).protoC(in: arena)` without the copy.
    static func protoC(_ entry: LeaderboardEntry, rank: UInt64, in arena: WireArena) -> UnsafeMutablePointer<Hiscore__V1__Entry> {
        protoC(
            playerID: entry.playerID, score: entry.score, subscore: entry.subscore, rank: rank,
            metadata: entry.metadata, reachedAtMicros: reachedAtMicros(entry), in: arena)
    }
}
